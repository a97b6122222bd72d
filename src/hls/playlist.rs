//! HLS playlists as pure functions of what the origin holds: the multivariant playlist and
//! the media playlists with the low-latency tags (RFC 8216bis: `EXT-X-PART`, `EXT-X-PART-INF`,
//! `EXT-X-PRELOAD-HINT`, `EXT-X-SERVER-CONTROL`, `EXT-X-SKIP` for delta updates). Players
//! without LL-HLS ignore those tags and see a plain live playlist of whole segments.

use std::fmt::Write;

/// A partial segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartInfo {
    /// Seconds.
    pub duration: f64,
    /// Starts with a keyframe (always for audio).
    pub independent: bool,
}

/// A segment, complete or in progress (only the last one may be in progress).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    pub msn: u64,
    pub parts: Vec<PartInfo>,
    /// Whether the segment is finished (its `EXTINF` line can be written).
    pub complete: bool,
    /// The capture restarted before this segment.
    pub discontinuity: bool,
    /// Wall-clock time of its first sample, in ms since the UNIX epoch.
    pub program_date_time_ms: i64,
    /// Which init segment it needs (`init-{n}.mp4`).
    pub init: u32,
}

impl SegmentInfo {
    /// Seconds: the sum of its parts.
    pub fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }
}

/// A media playlist's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist<'a> {
    /// Whole seconds, at least every segment's rounded duration.
    pub target_duration: u32,
    /// Seconds.
    pub part_target: f64,
    /// Discontinuities in segments that left the window.
    pub discontinuity_sequence: u64,
    /// Oldest first; the last may be in progress.
    pub segments: &'a [SegmentInfo],
    /// The live is over: `EXT-X-ENDLIST`.
    pub ended: bool,
}

/// URIs, relative to the media playlist.
pub fn init_uri(init: u32) -> String {
    format!("init-{init}.mp4")
}

pub fn segment_uri(msn: u64) -> String {
    format!("seg-{msn}.m4s")
}

pub fn part_uri(msn: u64, part: usize) -> String {
    format!("part-{msn}.{part}.m4s")
}

/// Parts stay listed for segments that started within this many target durations of the
/// live edge (the spec's recommendation: three).
const PART_WINDOW_TARGETS: f64 = 3.0;

impl MediaPlaylist<'_> {
    /// `CAN-SKIP-UNTIL`: six target durations, the least the spec allows.
    pub fn skip_until(&self) -> f64 {
        f64::from(self.target_duration) * 6.0
    }

    /// `PART-HOLD-BACK`: three part targets.
    pub fn part_hold_back(&self) -> f64 {
        self.part_target * 3.0
    }

    /// How many leading segments a delta update (`_HLS_skip=YES`) leaves out: those that
    /// end more than `CAN-SKIP-UNTIL` before the end of the playlist.
    pub fn skippable(&self) -> usize {
        let total: f64 = self.segments.iter().map(SegmentInfo::duration).sum();
        let boundary = total - self.skip_until();
        let mut end = 0.0;
        let mut count = 0;
        for segment in self.segments.iter().filter(|s| s.complete) {
            end += segment.duration();
            if end > boundary {
                break;
            }
            count += 1;
        }
        count
    }

    /// The playlist text; `skip` asks for a delta update.
    pub fn render(&self, skip: bool) -> String {
        let mut out = String::with_capacity(256 + 160 * self.segments.len());
        let first_msn = self.segments.first().map_or(0, |s| s.msn);
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:9");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        if !self.ended {
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},CAN-SKIP-UNTIL={:.1}",
                self.part_hold_back(),
                self.skip_until()
            );
        }
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.5}", self.part_target);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
        // A discontinuity on the first segment has no tag (nothing comes before it in the
        // playlist): the sequence counts it instead, as it will once the segment slides out.
        let hidden = self.segments.first().is_some_and(|s| s.discontinuity);
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.discontinuity_sequence + u64::from(hidden)
        );
        let skipped = if skip && !self.ended {
            self.skippable()
        } else {
            0
        };
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        let total: f64 = self.segments.iter().map(SegmentInfo::duration).sum();
        let part_window = total - f64::from(self.target_duration) * PART_WINDOW_TARGETS;
        let mut start = 0.0;
        let mut map: Option<u32> = None;
        for (index, segment) in self.segments.iter().enumerate() {
            let begins = start;
            start += segment.duration();
            if index < skipped {
                continue;
            }
            if segment.discontinuity && index > 0 {
                let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
            }
            if map != Some(segment.init) {
                map = Some(segment.init);
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", init_uri(segment.init));
            }
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                program_date_time(segment.program_date_time_ms)
            );
            if !self.ended && (begins >= part_window || !segment.complete) {
                for (part, info) in segment.parts.iter().enumerate() {
                    let _ = write!(
                        out,
                        "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
                        info.duration,
                        part_uri(segment.msn, part)
                    );
                    if info.independent {
                        out.push_str(",INDEPENDENT=YES");
                    }
                    out.push('\n');
                }
            }
            if segment.complete {
                let _ = writeln!(out, "#EXTINF:{:.5},", segment.duration());
                let _ = writeln!(out, "{}", segment_uri(segment.msn));
            }
        }
        if self.ended {
            let _ = writeln!(out, "#EXT-X-ENDLIST");
        } else if let Some(last) = self.segments.last() {
            let (msn, part) = if last.complete {
                (last.msn + 1, 0)
            } else {
                (last.msn, last.parts.len())
            };
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                part_uri(msn, part)
            );
        }
        out
    }
}

fn program_date_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A video rendition in the multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Its folder (`720p`).
    pub name: String,
    /// Peak bits per second, audio included.
    pub bandwidth: u64,
    /// RFC 6381 codecs of the video (`avc1.4d401f`).
    pub codecs: String,
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
}

/// The multivariant playlist: each video variant with the shared audio group, then the
/// audio-only variant (its own playlist, also the audio group's). `audio` is the audio
/// rendition's `(name, codecs, bandwidth)`; without one (a video without sound) the video
/// variants stand alone.
pub fn render_multivariant(variants: &[Variant], audio: Option<(&str, &str, u64)>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:9");
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    if let Some((name, _, _)) = audio {
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"{name}/index.m3u8\""
        );
    }
    for v in variants {
        let (codecs, bandwidth, group) = match audio {
            Some((_, codecs, bandwidth)) => (
                format!("{},{codecs}", v.codecs),
                v.bandwidth + bandwidth,
                ",AUDIO=\"audio\"",
            ),
            None => (v.codecs.clone(), v.bandwidth, ""),
        };
        let _ = writeln!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS=\"{codecs}\",RESOLUTION={}x{},FRAME-RATE={:.3}{group}",
            v.width, v.height, v.frame_rate
        );
        let _ = writeln!(out, "{}/index.m3u8", v.name);
    }
    if let Some((name, codecs, bandwidth)) = audio {
        let _ = writeln!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS=\"{codecs}\",AUDIO=\"audio\""
        );
        let _ = writeln!(out, "{name}/index.m3u8");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(independent: bool) -> PartInfo {
        PartInfo {
            duration: 0.25,
            independent,
        }
    }

    fn segment(msn: u64, parts: usize, complete: bool) -> SegmentInfo {
        SegmentInfo {
            msn,
            parts: (0..parts).map(|i| part(i == 0)).collect(),
            complete,
            discontinuity: false,
            program_date_time_ms: 1_795_000_000_000 + msn as i64 * 1000,
            init: 1,
        }
    }

    fn window(count: u64) -> Vec<SegmentInfo> {
        let mut segments: Vec<SegmentInfo> =
            (10..10 + count).map(|m| segment(m, 4, true)).collect();
        segments.push(segment(10 + count, 2, false));
        segments
    }

    #[test]
    fn live_playlist_with_parts_for_the_last_three_seconds() {
        let segments = window(5);
        let playlist = MediaPlaylist {
            target_duration: 1,
            part_target: 0.25,
            discontinuity_sequence: 0,
            segments: &segments,
            ended: false,
        };
        let expected = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.750,CAN-SKIP-UNTIL=6.0
#EXT-X-PART-INF:PART-TARGET=0.25000
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-MAP:URI=\"init-1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:50.000Z
#EXTINF:1.00000,
seg-10.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:51.000Z
#EXTINF:1.00000,
seg-11.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:52.000Z
#EXTINF:1.00000,
seg-12.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:53.000Z
#EXT-X-PART:DURATION=0.25000,URI=\"part-13.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25000,URI=\"part-13.1.m4s\"
#EXT-X-PART:DURATION=0.25000,URI=\"part-13.2.m4s\"
#EXT-X-PART:DURATION=0.25000,URI=\"part-13.3.m4s\"
#EXTINF:1.00000,
seg-13.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:54.000Z
#EXT-X-PART:DURATION=0.25000,URI=\"part-14.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25000,URI=\"part-14.1.m4s\"
#EXT-X-PART:DURATION=0.25000,URI=\"part-14.2.m4s\"
#EXT-X-PART:DURATION=0.25000,URI=\"part-14.3.m4s\"
#EXTINF:1.00000,
seg-14.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:55.000Z
#EXT-X-PART:DURATION=0.25000,URI=\"part-15.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25000,URI=\"part-15.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-15.2.m4s\"
";
        assert_eq!(playlist.render(false), expected);
    }

    #[test]
    fn delta_update_skips_what_is_older_than_six_targets() {
        let segments = window(10);
        let playlist = MediaPlaylist {
            target_duration: 1,
            part_target: 0.25,
            discontinuity_sequence: 2,
            segments: &segments,
            ended: false,
        };
        // 10.5 s in the window; the boundary is 4.5 s: segments 10-13 end before it.
        assert_eq!(playlist.skippable(), 4);
        let delta = playlist.render(true);
        let expected_head = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.750,CAN-SKIP-UNTIL=6.0
#EXT-X-PART-INF:PART-TARGET=0.25000
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-SKIP:SKIPPED-SEGMENTS=4
#EXT-X-MAP:URI=\"init-1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:54.000Z
#EXTINF:1.00000,
seg-14.m4s
";
        assert!(delta.starts_with(expected_head), "{delta}");
        assert!(!delta.contains("seg-13.m4s"));
        assert!(delta.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-20.2.m4s\"\n"));
        let full = playlist.render(false);
        assert!(full.contains("seg-10.m4s") && !full.contains("EXT-X-SKIP"));
    }

    #[test]
    fn a_restart_and_the_end() {
        let mut segments = window(2);
        segments[2] = segment(12, 3, true);
        segments[2].discontinuity = true;
        segments[2].init = 2;
        segments[2].parts[2].duration = 0.2;
        let playlist = MediaPlaylist {
            target_duration: 1,
            part_target: 0.25,
            discontinuity_sequence: 0,
            segments: &segments,
            ended: true,
        };
        let expected = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-PART-INF:PART-TARGET=0.25000
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-MAP:URI=\"init-1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:50.000Z
#EXTINF:1.00000,
seg-10.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:51.000Z
#EXTINF:1.00000,
seg-11.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init-2.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:52.000Z
#EXTINF:0.70000,
seg-12.m4s
#EXT-X-ENDLIST
";
        assert_eq!(
            playlist.render(true),
            expected,
            "no skip and no parts once ended"
        );
        // When the restart's segment is the first of the window, the sequence counts it.
        let rest = &segments[2..];
        let playlist = MediaPlaylist {
            segments: rest,
            ..playlist
        };
        let text = playlist.render(false);
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    }

    #[test]
    fn multivariant_lists_both_sizes_and_audio_only() {
        let variants = [
            Variant {
                name: "720p".into(),
                bandwidth: 2_500_000,
                codecs: "avc1.4d401f".into(),
                width: 1280,
                height: 720,
                frame_rate: 30.0,
            },
            Variant {
                name: "360p".into(),
                bandwidth: 800_000,
                codecs: "avc1.4d401e".into(),
                width: 640,
                height: 360,
                frame_rate: 30.0,
            },
        ];
        let expected = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=2628000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"audio\"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=928000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO=\"audio\"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS=\"mp4a.40.2\",AUDIO=\"audio\"
audio/index.m3u8
";
        assert_eq!(
            render_multivariant(&variants, Some(("audio", "mp4a.40.2", 128_000))),
            expected
        );
    }
}
