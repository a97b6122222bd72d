//! The live pipeline into the HLS origin, for real: the slate is encoded at 720p and 360p
//! H.264 and AAC, cut by cmafmux into 1 s segments of 250 ms parts, served over HTTP with
//! LL-HLS blocking reloads, and the segments decode with ffprobe.

use amphi::hls::{self, Live, Lives, Position};
use amphi::media::{Ladder, LivePipeline, PipelineEvent};
use gst::prelude::*;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(60);

fn ladder() -> Ladder {
    Ladder {
        // The test shares two cores with the rest of the suite.
        preset: "ultrafast".to_owned(),
        fps: 15,
        ..Ladder::default()
    }
}

pub(crate) async fn serve(lives: Lives) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, hls::http::router(lives))
            .await
            .unwrap();
    });
    addr
}

/// Checks one continuous timeline in a media playlist: no discontinuity, segments of 0.5 to
/// 2.5 s numbered one after the other, parts of at most 0.5 s, program date-times moving
/// forward. Returns the newest whole segment's number.
pub(crate) fn check_timeline(name: &str, playlist: &str) -> u64 {
    assert!(
        !playlist.contains("#EXT-X-DISCONTINUITY\n"),
        "{name}: one timeline: {playlist}"
    );
    let mut last_msn = None;
    let mut last_time = None;
    let mut lines = playlist.lines();
    while let Some(line) = lines.next() {
        if let Some(time) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            let time = chrono::DateTime::parse_from_rfc3339(time).unwrap();
            assert!(last_time.is_none_or(|t| time > t), "{name}: {playlist}");
            last_time = Some(time);
        }
        if let Some(rest) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            let seconds: f64 = rest.split(',').next().unwrap().parse().unwrap();
            assert!(
                seconds > 0.0 && seconds <= 0.5,
                "{name}: part of {seconds} s"
            );
        }
        if let Some(value) = line.strip_prefix("#EXTINF:") {
            let seconds: f64 = value.trim_end_matches(',').parse().unwrap();
            assert!(
                (0.5..=2.5).contains(&seconds),
                "{name}: segment of {seconds} s: {playlist}"
            );
            let uri = lines.next().unwrap();
            let msn: u64 = uri
                .trim_start_matches("seg-")
                .trim_end_matches(".m4s")
                .parse()
                .unwrap();
            assert!(last_msn.is_none_or(|m| msn == m + 1), "{name}: {playlist}");
            last_msn = Some(msn);
        }
    }
    last_msn.expect("whole segments are listed")
}

/// A playable file over HTTP: the rendition's first init segment, then segment `msn`.
pub(crate) async fn fetch_segment(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    msn: u64,
) -> Vec<u8> {
    let mut file = Vec::new();
    for path in ["init-1.mp4".to_owned(), format!("seg-{msn}.m4s")] {
        let answer = http
            .get(format!("{base}/{name}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{name}/{path}");
        file.extend_from_slice(&answer.bytes().await.unwrap());
    }
    file
}

/// What ffprobe says about a file: (codec, width) per stream, and the frames it decoded.
pub(crate) fn probe(path: &std::path::Path) -> (Vec<(String, u64)>, u64) {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (Debian package ffmpeg) is installed");
    assert!(
        output.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let streams = json["streams"].as_array().unwrap();
    let kinds = streams
        .iter()
        .map(|s| {
            (
                s["codec_name"].as_str().unwrap_or_default().to_owned(),
                s["width"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let frames = streams
        .iter()
        .filter_map(|s| s["nb_read_frames"].as_str()?.parse::<u64>().ok())
        .sum();
    (kinds, frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slate_is_served_as_low_latency_hls_and_decodes() {
    amphi::install_crypto_provider();
    let ladder = ladder();
    let live = Arc::new(Live::new(
        "physique-101",
        ladder.variants(),
        ladder.audio(),
        ladder.window,
    ));
    let lives = Lives::default();
    lives.insert(Arc::clone(&live));
    let addr = serve(lives.clone()).await;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let pipeline = LivePipeline::start(
        &ladder,
        Arc::clone(&live),
        "Le webinaire va bientôt commencer",
        events_tx,
    )
    .unwrap();

    // Once the pipeline publishes, a blocking reload for part 2 of segment 1 comes back when
    // that part exists (the origin answers 503 past three target durations, and the pipeline's
    // own start-up can take that long on a loaded machine).
    assert_eq!(
        live.rendition("720p")
            .unwrap()
            .wait_for(Position { msn: 0, part: 0 }, PATIENCE)
            .await,
        hls::Wait::Ready
    );
    let http = reqwest::Client::new();
    let base = format!("http://{addr}/live/physique-101/hls");
    let blocked = http
        .get(format!("{base}/720p/index.m3u8?_HLS_msn=1&_HLS_part=2"))
        .timeout(PATIENCE)
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 200);
    assert_eq!(blocked.headers()["access-control-allow-origin"], "*");
    let text = blocked.text().await.unwrap();
    assert!(text.contains("URI=\"part-1.2.m4s\""), "{text}");

    for name in ["720p", "360p", "audio"] {
        let rendition = live.rendition(name).unwrap();
        // One segment at a time: a wait more than two segments ahead is refused.
        for msn in 0..=3 {
            let waited = rendition.wait_for_segment(msn, PATIENCE).await;
            assert_eq!(waited, hls::Wait::Ready, "{name} segment {msn}");
        }
    }
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, PipelineEvent::Error(_)), "{event:?}");
    }

    let master = http
        .get(format!("{base}/master.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        master.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    let master = master.text().await.unwrap();
    assert!(master.contains("RESOLUTION=1280x720"), "{master}");
    assert!(master.contains("RESOLUTION=640x360"), "{master}");
    assert!(master.contains("CODECS=\"mp4a.40.2\",AUDIO=\"audio\"\naudio/index.m3u8"));

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
        assert!(
            playlist.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"),
            "{playlist}"
        );
        assert!(playlist.contains("#EXT-X-PART-INF:PART-TARGET=0.25000"));
        assert!(playlist.contains("#EXT-X-PRELOAD-HINT:TYPE=PART"));
        check_timeline(name, &playlist);
        let init = http
            .get(format!("{base}/{name}/init-1.mp4"))
            .send()
            .await
            .unwrap();
        assert_eq!(init.status(), 200, "{name}");
        assert_eq!(
            init.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let file = init.bytes().await.unwrap().to_vec();
        if width > 0 {
            // The multivariant playlist announces what the encoder really made.
            let codecs = amphi::media::cmaf::avc_codecs(&file).expect("an avcC box");
            assert!(
                master.contains(&format!(
                    "CODECS=\"{codecs},mp4a.40.2\",RESOLUTION={width}x"
                )),
                "{codecs}: {master}"
            );
        }
        // The init segment again, with a whole segment behind it.
        let path = dir.path().join(format!("{name}.mp4"));
        std::fs::write(&path, fetch_segment(&http, &base, name, 2).await).unwrap();
        let (streams, frames) = probe(&path);
        if width > 0 {
            assert_eq!(streams, vec![("h264".to_owned(), width)], "{name}");
            assert!(
                frames >= 5,
                "{name}: {frames} frames in a segment at 15 fps"
            );
        } else {
            assert_eq!(streams, vec![("aac".to_owned(), 0)], "{name}");
            assert!(frames >= 20, "{name}: {frames} AAC frames in a segment");
        }
    }

    // Unknown lives, renditions and files; malformed and far-future blocking requests.
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        status(format!("http://{addr}/live/nope/hls/master.m3u8")).await,
        404
    );
    assert_eq!(status(format!("{base}/1080p/index.m3u8")).await, 404);
    assert_eq!(status(format!("{base}/720p/seg-999999.m4s")).await, 404);
    assert_eq!(
        status(format!("{base}/720p/index.m3u8?_HLS_msn=abc")).await,
        400
    );
    assert_eq!(
        status(format!("{base}/720p/index.m3u8?_HLS_part=1")).await,
        400
    );
    assert_eq!(
        status(format!("{base}/720p/index.m3u8?_HLS_msn=999999")).await,
        400
    );

    // The pipeline counted what it did.
    let counted = live.stats.snapshot();
    assert!(counted.frames_composed >= 45, "{counted:?}");
    for name in ["720p", "360p"] {
        let output = counted.outputs[name];
        assert!(
            output.video && output.frames_out >= 45,
            "{name}: {counted:?}"
        );
        assert!(output.bytes_out > 1000, "{name}: {counted:?}");
        assert!(
            output.latency_max_us > 0 && output.latency_max_us < 10_000_000,
            "{name}: {counted:?}"
        );
    }
    assert!(counted.outputs["audio"].frames_out >= 100, "{counted:?}");
    assert_eq!(
        counted.frames_in, 0,
        "the slate is not an input: {counted:?}"
    );

    // The capture restarts (a failed pipeline is rebuilt): the same live goes on after a
    // discontinuity, with new init segments.
    drop(pipeline);
    let rendition = live.rendition("720p").unwrap();
    let before = rendition.edge().unwrap().msn;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let pipeline =
        LivePipeline::start(&ladder, Arc::clone(&live), "Reconnexion…", events_tx).unwrap();
    for msn in before + 1..=before + 3 {
        let waited = rendition.wait_for_segment(msn, PATIENCE).await;
        let mut said = Vec::new();
        while let Ok(event) = events.try_recv() {
            said.push(event);
        }
        assert_eq!(
            waited,
            hls::Wait::Ready,
            "segment {msn} after the restart; edge {:?}; the pipeline said {said:?}; {:?}",
            rendition.edge(),
            live.stats.snapshot()
        );
    }
    let playlist = rendition.playlist(false);
    assert!(playlist.contains("#EXT-X-DISCONTINUITY\n"), "{playlist}");
    assert!(
        playlist.contains("#EXT-X-MAP:URI=\"init-2.mp4\""),
        "{playlist}"
    );
    let mut file = rendition.init(2).unwrap().to_vec();
    for part in rendition.segment(before + 2).unwrap() {
        file.extend_from_slice(&part);
    }
    let path = dir.path().join("restarted.mp4");
    std::fs::write(&path, &file).unwrap();
    let (streams, frames) = probe(&path);
    assert_eq!(streams, vec![("h264".to_owned(), 1280)]);
    assert!(frames >= 5, "{frames} frames after the restart");

    // The end: the outputs drain, the playlists close, then the live is gone.
    pipeline.finish();
    tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.recv().await {
            assert!(!matches!(event, PipelineEvent::Error(_)), "{event:?}");
            if event == PipelineEvent::Finished {
                return;
            }
        }
    })
    .await
    .expect("the pipeline finishes after EOS");
    live.end();
    let last = http
        .get(format!("{base}/720p/index.m3u8"))
        .send()
        .await
        .unwrap();
    assert!(last.text().await.unwrap().ends_with("#EXT-X-ENDLIST\n"));
    let edge = live.rendition("720p").unwrap().edge().unwrap();
    assert!(edge > Position { msn: 3, part: 0 });
    lives.remove("physique-101");
    assert_eq!(status(format!("{base}/master.m3u8")).await, 410);
}

#[test]
fn the_pipeline_description_parses_with_every_named_element() {
    amphi::media::init().unwrap();
    let ladder = Ladder::default();
    let text = ladder.description();
    assert!(!text.contains('{'), "every placeholder is filled: {text}");
    let pipeline = gst::parse::launch(&text)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    for name in [
        "mix",
        "amix",
        "slate",
        "slate-out",
        "out-720p",
        "out-360p",
        "out-audio",
    ] {
        assert!(
            pipeline.by_name(name).is_some(),
            "{name} is the contract with src/media"
        );
    }
    let renditions: Vec<String> = ladder
        .variants()
        .into_iter()
        .map(|v| v.name)
        .chain([ladder.audio().name])
        .collect();
    for name in renditions {
        assert!(pipeline.by_name(&format!("out-{name}")).is_some(), "{name}");
        assert!(
            pipeline.by_name(&format!("enc-{name}")).is_some(),
            "enc-{name} is counted"
        );
    }
}
