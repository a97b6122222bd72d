//! A downloaded file becomes the library's HLS VOD: GStreamer decodes whatever it holds and
//! encodes the ladder (720p and 360p H.264, AAC audio) into CMAF, through the same HLS
//! renditions as a live, whose segments are written to the video's folder as each one
//! completes (the [`Keeper`] of kept lives); a JPEG thumbnail is taken on the way. A file
//! without sound gets no audio rendition; a file without pictures, audio only.

use crate::hls::playlist::{Variant, render_multivariant};
use crate::hls::{Live, WindowConfig};
use crate::media::{Ladder, cmaf};
use crate::webinar::keep::Keeper;
use gst::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The pipeline description, placeholders unfilled.
pub const TRANSCODE_PIPELINE: &str = include_str!("../../pipelines/transcode.pipeline");

/// Segment length of the library's videos, seconds.
pub const SEGMENT_SECONDS: u32 = 4;

/// How long a transcode may go without decoding anything before it is given up.
const STALL: Duration = Duration::from_secs(120);

/// The thumbnail's file name in the video's folder.
pub const THUMBNAIL: &str = "thumbnail.jpg";

/// What the transcode made.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcoded {
    pub duration: Duration,
    /// Whether `thumbnail.jpg` was written.
    pub thumbnail: bool,
}

/// The description with `ladder`'s settings filled in, segments of [`SEGMENT_SECONDS`].
pub fn description(ladder: &Ladder) -> String {
    let values = [
        ("{width}", ladder.width.to_string()),
        ("{height}", ladder.height.to_string()),
        ("{sd_width}", ladder.sd_width.to_string()),
        ("{sd_height}", ladder.sd_height.to_string()),
        ("{fps}", ladder.fps.to_string()),
        ("{gop}", (ladder.fps * SEGMENT_SECONDS).to_string()),
        ("{hd_kbps}", ladder.hd_kbps.to_string()),
        ("{sd_kbps}", ladder.sd_kbps.to_string()),
        ("{audio_bps}", (ladder.audio_kbps * 1000).to_string()),
        ("{preset}", ladder.preset.clone()),
        (
            "{fragment_ns}",
            (u64::from(SEGMENT_SECONDS) * 1_000_000_000).to_string(),
        ),
    ];
    crate::media::fill(TRANSCODE_PIPELINE, &values)
}

/// The running transcode; dropping it stops the pipeline.
struct Running {
    pipeline: gst::Pipeline,
}

impl Drop for Running {
    fn drop(&mut self) {
        crate::media::stop(self.pipeline.upcast_ref());
    }
}

/// Transcodes `input` into `out` (created), calling `progress` with the fraction done (0 to 1)
/// about twice a second. The error is a sentence for the video's owner.
pub async fn transcode(
    input: &Path,
    out: &Path,
    ladder: &Ladder,
    mut progress: impl FnMut(f64) + Send,
) -> Result<Transcoded, String> {
    crate::media::init()?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create the video's folder: {e}"))?;
    let pipeline = gst::parse::launch(&description(ladder))
        .map_err(|e| format!("the transcode pipeline does not parse: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the transcode pipeline is not a pipeline".to_owned())?;
    let running = Running {
        pipeline: pipeline.clone(),
    };
    let named = |name: &str| {
        pipeline
            .by_name(name)
            .ok_or_else(|| format!("the transcode pipeline has no element {name}"))
    };
    named("source")?.set_property("location", input);

    let window = WindowConfig {
        target_duration: SEGMENT_SECONDS,
        part_target: f64::from(SEGMENT_SECONDS),
        segments: 4,
    };
    let live = Arc::new(Live::new("vod", ladder.variants(), ladder.audio(), window));
    let keeper = Arc::new(Mutex::new(Keeper::new(out.to_path_buf())));
    let write_error: Arc<Mutex<Option<String>>> = Arc::default();
    for rendition in live.renditions() {
        let sink = named(&format!("out-{}", rendition.name))?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| format!("out-{} is not an appsink", rendition.name))?;
        let audio = rendition.name == live.audio.name;
        // Each completed segment goes to disk before the window could let it go.
        let after = {
            let keeper = Arc::clone(&keeper);
            let live = Arc::clone(&live);
            let write_error = Arc::clone(&write_error);
            Arc::new(move || {
                let mut keeper = keeper.lock().unwrap_or_else(|e| e.into_inner());
                match keeper.collect(&live) {
                    Ok(()) => true,
                    Err(e) => {
                        *write_error.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(format!("cannot write the video's files: {e}"));
                        false
                    }
                }
            })
        };
        cmaf::feed_then(sink, Arc::clone(rendition), Arc::clone(&live), audio, after);
    }
    let thumbnail = Arc::new(Mutex::new(None::<Vec<u8>>));
    let thumbnail_sink = named("thumbnail")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "thumbnail is not an appsink".to_owned())?;
    take_thumbnail(&thumbnail_sink, Arc::clone(&thumbnail));

    // decodebin's pads go to the inputs; an input the file does not have ends at once.
    let video_in = named("video-in")?;
    let audio_in = named("audio-in")?;
    let position = Arc::new(AtomicU64::new(0));
    for input in [&video_in, &audio_in] {
        watch_position(input, Arc::clone(&position));
    }
    let has_video = Arc::new(AtomicBool::new(false));
    let has_audio = Arc::new(AtomicBool::new(false));
    let decode = named("decode")?;
    {
        let (video_in, audio_in) = (video_in.clone(), audio_in.clone());
        let (has_video, has_audio) = (Arc::clone(&has_video), Arc::clone(&has_audio));
        decode.connect_pad_added(move |_, pad| {
            let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
            let kind = caps
                .as_ref()
                .and_then(|c| c.structure(0))
                .map(|s| s.name().to_string())
                .unwrap_or_default();
            let (input, seen) = if kind.starts_with("video/") {
                (&video_in, &has_video)
            } else if kind.starts_with("audio/") {
                (&audio_in, &has_audio)
            } else {
                return;
            };
            // The first stream of each kind; others (a second audio track) are left out.
            if seen.swap(true, Ordering::SeqCst) {
                return;
            }
            if let Some(sink) = input.static_pad("sink")
                && let Err(e) = pad.link(&sink)
            {
                tracing::warn!(error = ?e, kind, "transcode: cannot link the decoded stream");
            }
        });
    }
    {
        let (video_in, audio_in) = (video_in.clone(), audio_in.clone());
        let (has_video, has_audio) = (Arc::clone(&has_video), Arc::clone(&has_audio));
        decode.connect_no_more_pads(move |_| {
            for (input, seen) in [(&video_in, &has_video), (&audio_in, &has_audio)] {
                if !seen.load(Ordering::SeqCst)
                    && let Some(sink) = input.static_pad("sink")
                {
                    sink.send_event(gst::event::Eos::new());
                }
            }
        });
    }

    let bus = pipeline.bus().ok_or("the transcode pipeline has no bus")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "the transcode cannot start: the file is not a video GStreamer can read")?;
    let mut messages = bus.stream();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut duration: Option<gst::ClockTime> = None;
    // A pipeline that neither ends nor fails must not hold a worker for ever.
    let mut moved = (0u64, std::time::Instant::now());
    use futures_util::StreamExt;
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Err("the transcode stopped without a word".to_owned());
                };
                match message.view() {
                    gst::MessageView::Eos(_) => break,
                    gst::MessageView::Error(e) => {
                        if let Some(written) = write_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
                            return Err(written);
                        }
                        let from = e.src().map(|s| s.name().to_string()).unwrap_or_default();
                        tracing::warn!(element = from, error = %e.error(), debug = ?e.debug(), "transcode failed");
                        return Err(if from.starts_with("decode") || from == "source" || from.starts_with("qtdemux") || from.starts_with("typefind") {
                            format!("the file is not a video amphi can read ({})", e.error())
                        } else {
                            format!("the transcode failed ({})", e.error())
                        });
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                let now_at = position.load(Ordering::Relaxed);
                if now_at != moved.0 {
                    moved = (now_at, std::time::Instant::now());
                } else if moved.1.elapsed() > STALL {
                    return Err(format!(
                        "the conversion made no progress for {} seconds",
                        STALL.as_secs()
                    ));
                }
                if duration.is_none() {
                    duration = pipeline.query_duration::<gst::ClockTime>().filter(|d| !d.is_zero());
                }
                if let Some(total) = duration {
                    let done = position.load(Ordering::Relaxed) as f64 / total.nseconds() as f64;
                    progress(done.clamp(0.0, 1.0));
                }
            }
        }
    }
    drop(running);
    live.end();
    let mut keeper = keeper.lock().unwrap_or_else(|e| e.into_inner());
    keeper
        .collect(&live)
        .map_err(|e| format!("cannot write the video's files: {e}"))?;
    let kept: Vec<String> = keeper.kept().map(str::to_owned).collect();
    if kept.is_empty() {
        return Err("the file holds neither pictures nor sound amphi can read".to_owned());
    }
    let duration = keeper
        .write_media_playlists()
        .map_err(|e| format!("cannot write the video's playlists: {e}"))?;
    let variants: Vec<Variant> = ladder
        .variants()
        .into_iter()
        .filter(|v| kept.contains(&v.name))
        .map(|v| Variant {
            codecs: live.codecs_of(&v.name).unwrap_or_else(|| v.codecs.clone()),
            ..v
        })
        .collect();
    let audio = kept.iter().any(|k| *k == live.audio.name);
    std::fs::write(
        out.join("master.m3u8"),
        render_multivariant(
            &variants,
            audio.then(|| {
                (
                    live.audio.name.as_str(),
                    live.audio.codecs.as_str(),
                    live.audio.bandwidth,
                )
            }),
        ),
    )
    .map_err(|e| format!("cannot write the video's playlists: {e}"))?;
    let jpeg = thumbnail.lock().unwrap_or_else(|e| e.into_inner()).take();
    let thumbnail = match jpeg {
        Some(jpeg) => std::fs::write(out.join(THUMBNAIL), jpeg).is_ok(),
        None => false,
    };
    Ok(Transcoded {
        duration,
        thumbnail,
    })
}

/// Keeps the picture at ten seconds in (past the black of a start, before the talk is long under
/// way), or the last one of a shorter video.
fn take_thumbnail(sink: &gst_app::AppSink, slot: Arc<Mutex<Option<Vec<u8>>>>) {
    let taken = Arc::new(AtomicBool::new(false));
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if taken.load(Ordering::Relaxed) {
                    return Ok(gst::FlowSuccess::Ok);
                }
                let Some(buffer) = sample.buffer() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let at = buffer.pts().map_or(0, gst::ClockTime::seconds);
                let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                if (slot.is_none() || at <= 10)
                    && let Ok(map) = buffer.map_readable()
                {
                    *slot = Some(map.to_vec());
                }
                if at >= 10 {
                    taken.store(true, Ordering::Relaxed);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// Counts how far the decoded stream went (nanoseconds) through an input's output.
fn watch_position(input: &gst::Element, position: Arc<AtomicU64>) {
    if let Some(pad) = input.static_pad("src") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data
                && let Some(pts) = buffer.pts()
            {
                position.fetch_max(pts.nseconds(), Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five seconds of test pattern and tone in MP4, as BBB's video playback holds.
    fn sample_file(dir: &Path, audio: bool) -> std::path::PathBuf {
        let path = dir.join("input.mp4");
        let sound = if audio {
            " audiotestsrc num-buffers=235 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=1 \
             ! audioconvert ! avenc_aac ! aacparse ! mux."
        } else {
            ""
        };
        let text = format!(
            "videotestsrc num-buffers=125 pattern=smpte ! video/x-raw,width=320,height=180,framerate=25/1,format=I420 \
             ! x264enc speed-preset=ultrafast key-int-max=25 ! h264parse ! mp4mux name=mux ! filesink location={}{sound}",
            path.display()
        );
        let status = std::process::Command::new("gst-launch-1.0")
            .arg("-q")
            .arg("-e")
            .args(text.split_whitespace())
            .status()
            .expect("gst-launch-1.0");
        assert!(status.success());
        path
    }

    fn ladder() -> Ladder {
        Ladder {
            fps: 15,
            preset: "ultrafast".to_owned(),
            ..Ladder::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_file_becomes_the_vod_ladder_with_a_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let input = sample_file(dir.path(), true);
        let out = dir.path().join("out");
        let mut seen = Vec::new();
        let done = tokio::time::timeout(
            Duration::from_secs(120),
            transcode(&input, &out, &ladder(), |f| seen.push(f)),
        )
        .await
        .expect("the transcode ends")
        .unwrap();
        assert!(
            (4.5..=5.5).contains(&done.duration.as_secs_f64()),
            "{:?}",
            done.duration
        );
        assert!(done.thumbnail);
        let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
        for rendition in ["720p", "360p", "audio"] {
            assert!(
                master.contains(&format!("{rendition}/index.m3u8")),
                "{master}"
            );
            let playlist = std::fs::read_to_string(out.join(rendition).join("index.m3u8")).unwrap();
            assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
            let init = playlist
                .lines()
                .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
                .and_then(|l| l.strip_suffix('"'))
                .expect("an init segment");
            assert!(out.join(rendition).join(init).exists(), "{init}");
        }
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_without_sound_gets_no_audio_rendition() {
        let dir = tempfile::tempdir().unwrap();
        let input = sample_file(dir.path(), false);
        let out = dir.path().join("out");
        tokio::time::timeout(
            Duration::from_secs(120),
            transcode(&input, &out, &ladder(), |_| {}),
        )
        .await
        .expect("the transcode ends")
        .unwrap();
        let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
        assert!(master.contains("720p/index.m3u8"), "{master}");
        assert!(!master.contains("audio"), "{master}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_that_is_not_a_video_fails_with_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("notes.txt");
        std::fs::write(&input, "Ceci n'est pas une vidéo.\n".repeat(100)).unwrap();
        let error = transcode(&input, &dir.path().join("out"), &ladder(), |_| {})
            .await
            .unwrap_err();
        assert!(error.contains("not a video"), "{error}");
    }
}
