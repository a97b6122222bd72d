//! CPU per live and capture → LL-HLS part latency, measured end to end on loopback.
//!
//! `cargo bench --bench live_capture -- [--seconds 60] [--warmup 10] [--preset veryfast] [--fps 25]`
//!
//! The BBB simulator runs in its own process (`amphi sim`), so this process holds only what a
//! live costs amphi: the media bridge (WebRTC), the live pipeline (decode, compose, 720p and
//! 360p x264, AAC, cmafmux) and the HLS origin. The simulator's camera stamps the wall clock
//! into each picture; the camera is shown full frame, and every frame of every 720p segment is
//! decoded again and its stamp read: latency = when the LL-HLS part holding that frame was
//! published − when the frame was drawn. CPU is the process's user + system time over the
//! measured window, in cores (1.0 = one core busy).

mod common;

use amphi::bbb::{BbbApi, Client, CreateParams, JoinParams, Role};
use amphi::bridge::sfu::{SfuBridge, SfuConfig};
use amphi::bridge::{Item, Media, MediaBridge, TrackKind};
use amphi::config::ChecksumAlgorithm;
use amphi::hls::{Live, Position, Wait};
use amphi::media::inputs::{self, Role as InputRole};
use amphi::media::layout::Layout;
use amphi::media::{Ladder, LivePipeline};
use amphi::redact::Redacted;
use amphi::sim::stamp;
use gst::prelude::*;
use gst_video::prelude::VideoFrameExt;
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret";

struct Options {
    seconds: u64,
    warmup: u64,
    preset: String,
    fps: u32,
}

fn options() -> Options {
    Options {
        seconds: common::arg("--seconds", 60),
        warmup: common::arg("--warmup", 10),
        preset: common::arg("--preset", "veryfast".to_owned()),
        fps: common::arg("--fps", 25),
    }
}

/// (PTS offset in seconds from the segment's first frame, stamp) of every decoded picture.
fn decode(file: &[u8]) -> Vec<(f64, Option<u64>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment.mp4");
    std::fs::write(&path, file).unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! videoconvert \
         ! video/x-raw,format=I420 ! appsink name=out sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    let mut first = None;
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().unwrap();
        let pts = buffer.pts().map_or(0.0, |t| t.nseconds() as f64 / 1e9);
        let base = *first.get_or_insert(pts);
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
        let stride = frame.plane_stride()[0] as usize;
        let ms = stamp::read(
            frame.plane_data(0).unwrap(),
            stride,
            info.width() as usize,
            info.height() as usize,
        );
        frames.push((pts - base, ms));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    frames
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(o));
}

async fn run(o: Options) {
    amphi::install_crypto_provider();
    amphi::media::init().unwrap();
    // The simulator, in its own process.
    let mut sim = std::process::Command::new(env!("CARGO_BIN_EXE_amphi"))
        .args(["sim", "--listen", "127.0.0.1:0", "--secret", SECRET])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("amphi sim starts");
    let mut line = String::new();
    std::io::BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let api_url = line
        .trim()
        .strip_prefix("BBB simulator API: ")
        .expect("the simulator prints its API URL")
        .to_owned();
    let base = api_url.trim_end_matches("/bigbluebutton/api").to_owned();
    let api: Arc<dyn BbbApi> = Arc::new(
        Client::new(
            &api_url,
            Redacted::new(SECRET.to_owned()),
            ChecksumAlgorithm::Sha256,
        )
        .unwrap(),
    );
    let id = "bench-live";
    api.create(&CreateParams {
        name: "Banc de mesure".into(),
        meeting_id: id.into(),
        ..CreateParams::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{base}/sim/meetings/{id}/events"))
        .json(&serde_json::json!([
            {"type": "join", "name": "Prof. Lovelace", "role": "MODERATOR"},
            {"type": "presenter", "name": "Prof. Lovelace"},
            {"type": "camera_on", "name": "Prof. Lovelace"},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    let meetings: serde_json::Value = http
        .get(format!("{base}/sim/meetings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let camera = meetings[0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|u| u["camera"].as_str())
        .expect("a camera")
        .to_owned();
    let joined = api
        .join_bot(&JoinParams {
            meeting_id: id.into(),
            full_name: "Live stream".into(),
            role: Role::Moderator,
            user_id: Some("amphi-bench".into()),
            create_time: None,
            avatar_url: None,
            bot: true,
        })
        .await
        .unwrap();
    let config = SfuConfig::for_bot(
        api.as_ref(),
        &api_url,
        &joined,
        "Live stream",
        vec!["127.0.0.1:0".into()],
    )
    .await
    .unwrap();
    let bridge = SfuBridge::new(config);

    let ladder = Ladder {
        preset: o.preset.clone(),
        fps: o.fps,
        ..Ladder::default()
    };
    let live = Arc::new(Live::new(
        "bench",
        ladder.variants(),
        ladder.audio(),
        ladder.window,
    ));
    let (events, _events) = tokio::sync::mpsc::unbounded_channel();
    let pipeline = LivePipeline::start(&ladder, Arc::clone(&live), "…", events).unwrap();
    let gst_pipeline = pipeline.pipeline().clone();
    let rendition = live.rendition("720p").unwrap();
    rendition
        .wait_for(Position { msn: 0, part: 0 }, Duration::from_secs(30))
        .await;

    let mut pumps = Vec::new();
    let mut attached = Vec::new();
    for (media, role, kind) in [
        (
            Media::Camera {
                stream_id: camera.clone(),
            },
            InputRole::Camera {
                rank: 0,
                id: camera.clone(),
            },
            TrackKind::Video,
        ),
        (
            Media::Audio,
            InputRole::Audio {
                id: "meeting".into(),
            },
            TrackKind::Audio,
        ),
    ] {
        let (input, mut feeder) = inputs::rtp(&gst_pipeline, role, kind).unwrap();
        let mut subscription = bridge.subscribe(media);
        pumps.push(tokio::spawn(async move {
            while let Some(item) = subscription.next().await {
                if let Item::Rtp(packet) = item
                    && packet.kind == kind
                {
                    let _ = feeder.push(&packet);
                }
            }
        }));
        attached.push(input);
    }
    let layout = Layout::named("cameras").unwrap();
    let refs: Vec<&inputs::Input> = attached.iter().collect();
    inputs::arrange(&gst_pipeline, &layout, &refs, (ladder.width, ladder.height));

    // When each part was published, by watching the live edge.
    let published: Arc<Mutex<HashMap<Position, u64>>> = Arc::default();
    let watcher = {
        let rendition = Arc::clone(&rendition);
        let published = Arc::clone(&published);
        tokio::spawn(async move {
            let mut next = rendition.edge().unwrap_or(Position { msn: 0, part: 0 });
            loop {
                if rendition.wait_for(next, Duration::from_secs(10)).await != Wait::Ready {
                    continue;
                }
                let now = stamp::now_ms();
                let edge = rendition.edge().unwrap();
                published.lock().unwrap().entry(edge).or_insert(now);
                next = Position {
                    msn: edge.msn,
                    part: edge.part + 1,
                };
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(o.warmup)).await;
    let first_msn = rendition.edge().unwrap().msn + 1;
    let (cpu_start, wall_start) = (common::cpu_seconds("self"), Instant::now());
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let cpu = common::cpu_seconds("self") - cpu_start;
    let wall = wall_start.elapsed().as_secs_f64();
    let last_msn = rendition.edge().unwrap().msn.saturating_sub(1);
    watcher.abort();

    // Latency of every stamped frame of the segments made in the window.
    let published = published.lock().unwrap().clone();
    let mut latencies = Vec::new();
    let mut frames_total = 0;
    for msn in first_msn..=last_msn {
        let (Some(parts), Some(durations)) =
            (rendition.segment(msn), rendition.part_durations(msn))
        else {
            continue;
        };
        let init = rendition.init(1).expect("init segment");
        let mut file = init.to_vec();
        for part in &parts {
            file.extend_from_slice(part);
        }
        for (offset, ms) in decode(&file) {
            frames_total += 1;
            let Some(ms) = ms else { continue };
            let mut start = 0.0;
            let mut part = durations.len() - 1;
            for (i, d) in durations.iter().enumerate() {
                if offset < start + d - 1e-6 {
                    part = i;
                    break;
                }
                start += d;
            }
            if let Some(at) = published.get(&Position { msn, part }) {
                latencies.push(at.saturating_sub(ms) as f64 / 1000.0);
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let cores = cpu / wall;
    println!(
        "live_capture: preset {}, {} fps, {} s measured after {} s of warm-up, {} segments, {} frames, {} with a stamp and a known part",
        o.preset,
        o.fps,
        o.seconds,
        o.warmup,
        last_msn + 1 - first_msn,
        frames_total,
        latencies.len()
    );
    println!("cpu_cores_per_live {cores:.3}");
    println!(
        "capture_to_part_seconds median {:.3} p95 {:.3} min {:.3} max {:.3}",
        common::percentile(&latencies, 0.5),
        common::percentile(&latencies, 0.95),
        latencies.first().copied().unwrap_or(f64::NAN),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    for pump in pumps {
        pump.abort();
    }
    drop(pipeline);
    let _ = sim.kill();
    let _ = sim.wait();
}
