#!/usr/bin/env bash
# The encode that every restreamer pays, alone: ffmpeg makes amphi's ladder (1280x720 at
# 2500 kbit/s and 640x360 at 800 kbit/s, x264 with zero-latency tuning and a keyframe a second,
# AAC 128 kbit/s) from synthetic sources into fMP4 HLS in a temporary folder, in real time,
# for SECONDS seconds. Prints the CPU it used in cores (user + system over wall time), to read
# next to `cargo bench --bench live_capture`, which also receives, decodes and composes.
#
#   benches/baselines/ffmpeg-ladder.sh [SECONDS] [PRESET] [FPS]
set -euo pipefail
seconds="${1:-60}"
preset="${2:-veryfast}"
fps="${3:-25}"
command -v ffmpeg >/dev/null || { echo "ffmpeg is not installed (Debian package ffmpeg)" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
report="$out/time.txt"
/usr/bin/time -f "%U %S %e" -o "$report" \
  ffmpeg -hide_banner -loglevel error -re \
    -f lavfi -i "testsrc2=size=1280x720:rate=${fps}" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -t "$seconds" \
    -filter_complex "[0:v]format=yuv420p,split=2[hd][s];[s]scale=640:360[sd]" \
    -map "[hd]" -map "[sd]" -map 1:a \
    -c:v libx264 -preset "$preset" -tune zerolatency -profile:v main -bf 0 \
    -g "$fps" -keyint_min "$fps" -sc_threshold 0 \
    -b:v:0 2500k -b:v:1 800k \
    -c:a aac -b:a 128k -ac 2 \
    -f hls -hls_time 1 -hls_list_size 20 -hls_flags delete_segments+independent_segments \
    -hls_segment_type fmp4 -var_stream_map "v:0 v:1 a:0" \
    -master_pl_name master.m3u8 "$out/stream_%v.m3u8"
read -r user system wall < "$report"
awk -v u="$user" -v s="$system" -v w="$wall" -v p="$preset" -v f="$fps" 'BEGIN {
  printf "ffmpeg_ladder: preset %s, %s fps, %.1f s\ncpu_cores %.3f\n", p, f, w, (u + s) / w }'
