//! The whole chain from a simulated meeting to a student's player: the bot joins over GraphQL,
//! the media bridge receives over WebRTC with the bot's session, the director follows the bot's
//! state (slides, the screenshare, a camera that joins and leaves, the meeting's audio), the
//! live pipeline composes and encodes, and the origin serves LL-HLS over HTTP. Checked: which
//! slide is on screen (its colour read from the decoded 720p picture, PNG then SVG), the
//! playlists against the HLS rules, every rendition decoding with ffprobe (H.264 at both
//! sizes, AAC), the meeting's 440 Hz tone in the audio, and one continuous timeline.

use super::bridge::{Meeting, quick};
use super::live_pipeline::{check_timeline, fetch_segment, probe, serve};
use crate::support::media::decode_segment;
use amphi::bridge::MediaBridge;
use amphi::bridge::sfu::SfuBridge;
use amphi::client::bot::{self, BotOptions};
use amphi::client::slides::SlideCache;
use amphi::hls::{Live, Lives, Wait};
use amphi::media::director::{self, Cue, Stage};
use amphi::media::layout::Layout;
use amphi::media::{Ladder, LivePipeline, PipelineEvent};
use amphi::sim::{SfuFaults, slides};
use gst_video::prelude::VideoFrameExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(90);

/// Reads cues until one matches; panics after [`PATIENCE`] with what was seen.
async fn until(cues: &mut mpsc::UnboundedReceiver<Cue>, wanted: impl Fn(&Cue) -> bool) -> Cue {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(cue) = cues.recv().await {
            if let Cue::Warning(w) = &cue {
                panic!("the director warned: {w}");
            }
            if wanted(&cue) {
                return Some(cue);
            }
            seen.push(cue);
        }
        None
    })
    .await;
    match found {
        Ok(Some(cue)) => cue,
        _ => panic!("the cue never came; seen: {seen:?}"),
    }
}

/// Waits for the next `count` whole segments of the 720p rendition; returns the last one's number.
async fn next_segments(live: &Live, count: u64) -> u64 {
    let rendition = live.rendition("720p").unwrap();
    let edge = rendition.edge().map_or(0, |p| p.msn);
    for msn in edge..edge + count {
        assert_eq!(
            rendition.wait_for_segment(msn, PATIENCE).await,
            Wait::Ready,
            "segment {msn}; edge {:?}",
            rendition.edge()
        );
    }
    edge + count - 1
}

/// The RGB colour at (x, y) of the first picture of a 720p segment.
fn colour_at(live: &Live, msn: u64, x: usize, y: usize) -> [u8; 3] {
    let samples = decode_segment(
        &live.rendition("720p").unwrap(),
        1,
        msn,
        "h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=RGB ! appsink name=out sync=false",
    );
    let sample = samples.first().expect("a picture");
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().unwrap(), &info)
        .unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    let at = y * stride + x * 3;
    [data[at], data[at + 1], data[at + 2]]
}

/// Waits until the director shows page `page`, then reads its colour from the output.
async fn slide_shown(cues: &mut mpsc::UnboundedReceiver<Cue>, live: &Live, page: u32, what: &str) {
    until(cues, |c| {
        *c == Cue::Slide {
            num: page,
            total: 5,
        }
    })
    .await;
    // The new picture reaches the output once its input has decoded it: a slide of another
    // format is a new input (an SVG is rendered first), so it is looked for in the segments
    // that follow, up to ten.
    let wanted = slides::page_rgb(page);
    let mut seen = Vec::new();
    for _ in 0..10 {
        let msn = next_segments(live, 1).await;
        let colour = colour_at(live, msn, 40, 40);
        if near(colour, wanted) {
            return;
        }
        seen.push(colour);
    }
    panic!("{what}: saw {seen:?} in ten segments, wanted about {wanted:?}");
}

fn near(seen: [u8; 3], wanted: [u8; 3]) -> bool {
    seen.iter()
        .zip(wanted)
        .all(|(a, b)| (i16::from(*a) - i16::from(b)).abs() <= 24)
}

fn assert_near(seen: [u8; 3], wanted: [u8; 3], what: &str) {
    assert!(
        near(seen, wanted),
        "{what}: saw {seen:?}, wanted about {wanted:?}"
    );
}

/// Root mean square of the decoded AAC of an audio segment (full scale = 1.0).
fn loudness(live: &Live, msn: u64) -> f64 {
    let samples = decode_segment(
        &live.rendition("audio").unwrap(),
        1,
        msn,
        "aacparse ! avdec_aac ! audioconvert ! audio/x-raw,format=F32LE,channels=1 \
         ! appsink name=out sync=false",
    );
    let (mut sum, mut count) = (0.0f64, 0usize);
    for sample in &samples {
        let map = sample.buffer().unwrap().map_readable().unwrap();
        for chunk in map.chunks_exact(4) {
            let value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            sum += f64::from(value) * f64::from(value);
            count += 1;
        }
    }
    assert!(count > 10_000, "{count} samples decoded");
    (sum / count as f64).sqrt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_webinar_reaches_students_as_low_latency_hls() {
    let (meeting, api) = Meeting::start("live-chain", SfuFaults::default()).await;

    // The bot joins; the bridge speaks to the SFU with the bot's own session.
    let bot = bot::start(
        Arc::clone(&api),
        BotOptions {
            meeting_id: meeting.id.clone(),
            display_name: "Live stream".into(),
            user_id: "amphi-live-chain".into(),
        },
    )
    .await
    .unwrap();
    let mut state = bot.state.clone();
    tokio::time::timeout(PATIENCE, state.wait_for(|s| s.joined && s.slide.is_some()))
        .await
        .expect("the bot is in the meeting")
        .unwrap();
    let joined = bot.joined.clone().unwrap();
    let mut config = meeting.sfu_config(&api, &joined).await;
    config.timing = quick();
    let bridge: Arc<dyn MediaBridge> = Arc::new(SfuBridge::new(config));

    let ladder = Ladder {
        preset: "ultrafast".to_owned(),
        fps: 15,
        ..Ladder::default()
    };
    let live = Arc::new(
        Live::new("chain", ladder.variants(), ladder.audio(), ladder.window)
            .with_title("Amphi de chimie"),
    );
    let lives = Lives::default();
    lives.insert(Arc::clone(&live));
    let addr = serve(lives).await;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let pipeline = LivePipeline::start(
        &ladder,
        Arc::clone(&live),
        "Le webinaire va bientôt commencer",
        events_tx,
    )
    .unwrap();
    let (cues_tx, mut cues) = mpsc::unbounded_channel();
    let _director = director::start(
        pipeline.pipeline().clone(),
        Arc::clone(&bridge),
        bot.state.clone(),
        Arc::new(SlideCache::new(bot.session_cookie())),
        Stage {
            layout: Layout::named("presentation-pip").unwrap(),
            size: (ladder.width, ladder.height),
            fps: ladder.fps,
        },
        cues_tx,
    );

    // The meeting's audio and the first slide (its PNG), full frame.
    until(&mut cues, |c| *c == Cue::Added("audio".into())).await;
    slide_shown(&mut cues, &live, 1, "slide 1").await;

    // The presenter moves on; then the server has no PNGs and the SVG is shown.
    meeting
        .events(serde_json::json!([{"type": "slide", "page": 2}]))
        .await;
    slide_shown(&mut cues, &live, 2, "slide 2").await;
    meeting.sim.state.set_svg_only(true);
    meeting
        .events(serde_json::json!([{"type": "slide", "page": 4}]))
        .await;
    slide_shown(&mut cues, &live, 4, "slide 4 from its SVG").await;

    // The screenshare replaces the slide.
    meeting
        .events(serde_json::json!([{"type": "screenshare_start"}]))
        .await;
    until(
        &mut cues,
        |c| matches!(c, Cue::Added(what) if what.starts_with("screenshare")),
    )
    .await;
    let msn = next_segments(&live, 3).await;
    let shared = colour_at(&live, msn, 40, 40);
    let [r, g, b] = slides::page_rgb(4);
    assert!(
        shared
            .iter()
            .zip([r, g, b])
            .any(|(a, b)| (i16::from(*a) - i16::from(b)).abs() > 24),
        "the screenshare covers the slide: {shared:?}"
    );

    // A camera joins mid-stream, then leaves.
    meeting
        .events(serde_json::json!([{"type": "camera_on", "name": "Prof. Curie"}]))
        .await;
    until(
        &mut cues,
        |c| matches!(c, Cue::Added(what) if what.starts_with("camera")),
    )
    .await;
    until(&mut cues, |c| {
        *c == Cue::Placed {
            presentation: true,
            cameras: 1,
        }
    })
    .await;
    next_segments(&live, 3).await;
    meeting
        .events(serde_json::json!([{"type": "camera_off", "name": "Prof. Curie"}]))
        .await;
    let removed = until(
        &mut cues,
        |c| matches!(c, Cue::Removed(what, _) if what.starts_with("camera")),
    )
    .await;
    assert!(
        matches!(&removed, Cue::Removed(_, why) if why == "no longer shared" || why == "the camera was turned off"),
        "{removed:?}"
    );
    next_segments(&live, 2).await;

    // The screenshare stops: the slide is back.
    meeting
        .events(serde_json::json!([{"type": "screenshare_stop"}]))
        .await;
    until(
        &mut cues,
        |c| matches!(c, Cue::Removed(what, _) if what.starts_with("screenshare")),
    )
    .await;
    let msn = next_segments(&live, 2).await;
    assert_near(
        colour_at(&live, msn, 40, 40),
        slides::page_rgb(4),
        "slide 4 after the screenshare",
    );
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, PipelineEvent::Error(_)), "{event:?}");
    }

    // What a student's player gets, over HTTP.
    let http = reqwest::Client::new();
    let base = format!("http://{addr}/live/chain/hls");
    let master = http
        .get(format!("{base}/master.m3u8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(master.starts_with("#EXTM3U\n"), "{master}");
    for wanted in [
        "RESOLUTION=1280x720",
        "RESOLUTION=640x360",
        "TYPE=AUDIO,GROUP-ID=\"audio\"",
        "CODECS=\"mp4a.40.2\",AUDIO=\"audio\"\naudio/index.m3u8",
    ] {
        assert!(master.contains(wanted), "{wanted} in {master}");
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, width) in [("720p", 1280u64), ("360p", 640), ("audio", 0)] {
        let playlist = http
            .get(format!("{base}/{name}/index.m3u8"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for tag in [
            "#EXT-X-VERSION:",
            "#EXT-X-TARGETDURATION:",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=",
            "#EXT-X-PART-INF:PART-TARGET=",
            "#EXT-X-MAP:URI=\"init-1.mp4\"",
            "#EXT-X-PROGRAM-DATE-TIME:",
            "#EXT-X-PRELOAD-HINT:TYPE=PART",
        ] {
            assert!(playlist.contains(tag), "{name}: {tag} in {playlist}");
        }
        let newest = check_timeline(name, &playlist);
        let path = dir.path().join(format!("{name}.mp4"));
        std::fs::write(&path, fetch_segment(&http, &base, name, newest).await).unwrap();
        let (streams, frames) = probe(&path);
        if width > 0 {
            assert_eq!(streams, vec![("h264".to_owned(), width)], "{name}");
            assert!(frames >= 5, "{name}: {frames} frames");
        } else {
            assert_eq!(streams, vec![("aac".to_owned(), 0)], "{name}");
            // The simulator's meeting audio is a tone: it is heard, not silence.
            let rms = loudness(&live, newest);
            assert!(rms > 0.02, "the meeting is heard: RMS {rms}");
        }
    }

    // The counters saw the inputs and the outputs.
    let counted = live.stats.snapshot();
    assert!(counted.frames_in > 100, "{counted:?}");
    assert!(counted.outputs["720p"].frames_out > 100, "{counted:?}");
    drop(pipeline);
    bot.leave().await;
}
