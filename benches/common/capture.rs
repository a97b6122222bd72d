//! One live of the simulator's camera, shown full frame, as the latency tools measure it: the
//! BBB simulator in its own process (`amphi sim`), and in this process the media bridge
//! (WebRTC), the live pipeline and the HLS origin. The simulator stamps its wall clock into
//! every camera picture ([`amphi::sim::stamp`]); [`capture_latencies`] reads the stamps back
//! from the decoded segments. Used by `live_capture` and `latency`.
#![allow(dead_code)]

use amphi::bbb::{BbbApi, Client, CreateParams, JoinParams, Role};
use amphi::bridge::sfu::{SfuBridge, SfuConfig};
use amphi::bridge::{Item, Media, MediaBridge, TrackKind};
use amphi::config::ChecksumAlgorithm;
use amphi::hls::{Live, Position, Rendition, Wait};
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
use std::time::Duration;

const SECRET: &str = "bench-secret";

/// A running live of the simulator's camera and the meeting's audio.
pub struct CameraLive {
    pub live: Arc<Live>,
    pub rendition: Arc<Rendition>,
    pipeline: Option<LivePipeline>,
    pumps: Vec<tokio::task::JoinHandle<()>>,
    _inputs: Vec<inputs::Input>,
    sim: std::process::Child,
}

impl CameraLive {
    /// Starts the simulator, a meeting with a presenter's camera, the bot's media bridge and
    /// the live pipeline under `slug`; returns once the first 720p part is published.
    pub async fn start(ladder: &Ladder, slug: &str) -> Self {
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

        let live = Arc::new(
            Live::new(slug, ladder.variants(), ladder.audio(), ladder.window)
                .with_title("Banc de mesure"),
        );
        let (events, _events) = tokio::sync::mpsc::unbounded_channel();
        let pipeline = LivePipeline::start(ladder, Arc::clone(&live), "…", events).unwrap();
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
        Self {
            live,
            rendition,
            pipeline: Some(pipeline),
            pumps,
            _inputs: attached,
            sim,
        }
    }
}

impl Drop for CameraLive {
    fn drop(&mut self) {
        for pump in &self.pumps {
            pump.abort();
        }
        self.pipeline.take();
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

/// When each part of a rendition was published (milliseconds since 1970), by watching the
/// live edge from now on.
pub type Published = Arc<Mutex<HashMap<Position, u64>>>;

/// Watches `rendition`'s live edge until the task is aborted.
pub fn watch_parts(rendition: &Arc<Rendition>) -> (Published, tokio::task::JoinHandle<()>) {
    let published: Published = Arc::default();
    let task = {
        let rendition = Arc::clone(rendition);
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
    (published, task)
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

/// Decodes segments `msns` of `rendition` again and returns (frames decoded, capture → part
/// latency in seconds of every frame whose stamp and part are known, sorted).
pub fn capture_latencies(
    rendition: &Rendition,
    published: &Published,
    msns: std::ops::RangeInclusive<u64>,
) -> (usize, Vec<f64>) {
    let published = published.lock().unwrap().clone();
    let mut latencies = Vec::new();
    let mut frames_total = 0;
    for msn in msns {
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
    (frames_total, latencies)
}
