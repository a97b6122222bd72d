//! Inputs coming and going in a running live: the simulator's screenshare, audio and slide
//! through the bridge into the pipeline, a camera joining and leaving mid-stream; the HLS
//! timeline stays continuous (no discontinuity, contiguous segments of about a second, the
//! wall clock moving forward), and the camera's own time stamp is read back from the decoded
//! 720p output once the layout shows it full frame.

use super::bridge::{Meeting, quick};
use crate::support::media::decode_segment;
use amphi::bridge::appsrc::Feeder;
use amphi::bridge::{Event, Item, Media, MediaBridge, Subscription, TrackKind};
use amphi::hls::{Live, Wait};
use amphi::media::inputs::{self, Input, Role};
use amphi::media::layout::Layout;
use amphi::media::{Ladder, LivePipeline};
use amphi::sim::{SfuFaults, stamp};
use gst::prelude::*;
use gst_video::prelude::VideoFrameExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(60);

/// Moves a subscription's packets into its input until it ends; says how it ended.
fn pump(
    mut subscription: Subscription,
    mut feeder: Feeder,
    kind: TrackKind,
) -> tokio::task::JoinHandle<Option<Event>> {
    tokio::spawn(async move {
        while let Some(item) = subscription.next().await {
            match item {
                Item::Rtp(packet) if packet.kind == kind => {
                    // A refused push means the input was detached: its end event follows.
                    let _ = feeder.push(&packet);
                }
                Item::Event(event @ Event::Ended(_)) => return Some(event),
                _ => {}
            }
        }
        None
    })
}

fn png() -> Vec<u8> {
    amphi::media::init().unwrap();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=1 pattern=smpte100 ! video/x-raw,width=1280,height=720 \
         ! pngenc ! appsink name=out sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample().unwrap();
    let bytes = sample.buffer().unwrap().map_readable().unwrap().to_vec();
    pipeline.set_state(gst::State::Null).unwrap();
    bytes
}

async fn segments(live: &Live, from: u64, count: u64) {
    let rendition = live.rendition("720p").unwrap();
    for msn in from..from + count {
        let started = std::time::Instant::now();
        let waited = rendition.wait_for_segment(msn, PATIENCE).await;
        assert_eq!(
            waited,
            Wait::Ready,
            "segment {msn} after {:?}; edge {:?}",
            started.elapsed(),
            rendition.edge()
        );
    }
}

/// Stamps read from one decoded segment of the 720p rendition.
fn stamps(live: &Live, msn: u64) -> Vec<u64> {
    let samples = decode_segment(
        &live.rendition("720p").unwrap(),
        1,
        msn,
        "h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! appsink name=out sync=false",
    );
    samples
        .iter()
        .filter_map(|sample| {
            let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
            let frame =
                gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().unwrap(), &info)
                    .unwrap();
            let stride = frame.plane_stride()[0] as usize;
            stamp::read(
                frame.plane_data(0).unwrap(),
                stride,
                info.width() as usize,
                info.height() as usize,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_joins_and_leaves_without_breaking_the_timeline() {
    let (meeting, api) = Meeting::start("live-inputs", SfuFaults::default()).await;
    meeting
        .events(serde_json::json!([{"type": "screenshare_start"}]))
        .await;
    let bridge = meeting.bridge(&api, quick()).await;

    let ladder = Ladder {
        preset: "ultrafast".to_owned(),
        fps: 15,
        ..Ladder::default()
    };
    let live = Arc::new(Live::new(
        "inputs",
        ladder.variants(),
        ladder.audio(),
        ladder.window,
    ));
    let (events_tx, _events) = mpsc::unbounded_channel();
    let pipeline = LivePipeline::start(
        &ladder,
        Arc::clone(&live),
        "Le webinaire va bientôt commencer",
        events_tx,
    )
    .unwrap();
    let gst_pipeline = pipeline.pipeline().clone();
    let strip = Layout::named("presentation-strip").unwrap();
    let size = (ladder.width, ladder.height);

    // Inputs arrive once the live runs, as they do in a meeting.
    segments(&live, 0, 1).await;

    // The slide, the screenshare above it, and the meeting's audio.
    let slide = inputs::slide(&gst_pipeline, ladder.fps, inputs::ImageFormat::Png).unwrap();
    slide.show(&png()).unwrap();

    let (screen, feeder) = inputs::rtp(&gst_pipeline, Role::Screenshare, TrackKind::Video).unwrap();
    let screen_pump = pump(
        bridge.subscribe(Media::Screenshare {
            voice_conf: meeting.voice_conf(),
            has_audio: false,
        }),
        feeder,
        TrackKind::Video,
    );
    let (audio, feeder) = inputs::rtp(
        &gst_pipeline,
        Role::Audio {
            id: "meeting".into(),
        },
        TrackKind::Audio,
    )
    .unwrap();
    let _audio_pump = pump(bridge.subscribe(Media::Audio), feeder, TrackKind::Audio);
    let placement = inputs::arrange(&gst_pipeline, &strip, &[&slide, &screen, &audio], size);
    assert_eq!(placement.main, Some([128, 0, 1024, 576]));
    let edge = live.rendition("720p").unwrap().edge().unwrap().msn;
    segments(&live, edge, 3).await;

    // A camera joins mid-stream, full frame in the cameras layout.
    meeting
        .events(serde_json::json!([{"type": "camera_on", "name": "Prof. Curie"}]))
        .await;
    let (camera, feeder) = inputs::rtp(
        &gst_pipeline,
        Role::Camera {
            rank: 0,
            id: meeting.camera(),
        },
        TrackKind::Video,
    )
    .unwrap();
    let camera_pump = pump(
        bridge.subscribe(Media::Camera {
            stream_id: meeting.camera(),
        }),
        feeder,
        TrackKind::Video,
    );
    let cameras = Layout::named("cameras").unwrap();
    let all: Vec<&Input> = vec![&slide, &screen, &audio, &camera];
    let placement = inputs::arrange(&gst_pipeline, &cameras, &all, size);
    assert_eq!(placement.cameras, vec![[0, 0, 1280, 720]]);
    let edge = live.rendition("720p").unwrap().edge().unwrap().msn;
    segments(&live, edge, 4).await;
    let seen = stamps(&live, edge + 2);
    assert!(
        seen.len() >= 5,
        "the camera's stamps are in the output: {seen:?}"
    );
    let now = stamp::now_ms();
    assert!(
        seen.iter().all(|ms| *ms <= now && now - ms < 20_000),
        "{seen:?} vs {now}"
    );

    // The camera leaves: its subscription ends, its input goes, the strip comes back.
    meeting
        .events(serde_json::json!([{"type": "camera_off", "name": "Prof. Curie"}]))
        .await;
    let ended = tokio::time::timeout(PATIENCE, camera_pump)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ended, Some(Event::Ended(_))), "{ended:?}");
    inputs::detach(&gst_pipeline, camera);
    inputs::arrange(&gst_pipeline, &strip, &[&slide, &screen, &audio], size);
    let edge = live.rendition("720p").unwrap().edge().unwrap().msn;
    segments(&live, edge, 3).await;

    // The screenshare stops too: the slide is the presentation now.
    meeting
        .events(serde_json::json!([{"type": "screenshare_stop"}]))
        .await;
    tokio::time::timeout(PATIENCE, screen_pump)
        .await
        .unwrap()
        .unwrap();
    inputs::detach(&gst_pipeline, screen);
    let placement = inputs::arrange(&gst_pipeline, &strip, &[&slide, &audio], size);
    assert_eq!(placement.main, Some([128, 0, 1024, 576]));
    let edge = live.rendition("720p").unwrap().edge().unwrap().msn;
    segments(&live, edge, 2).await;

    // One continuous timeline.
    let playlist = live.rendition("720p").unwrap().playlist(false);
    let newest = super::live_pipeline::check_timeline("720p", &playlist);
    assert!(newest >= 10, "{playlist}");
    drop(pipeline);
}
