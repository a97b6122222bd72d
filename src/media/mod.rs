//! The live pipeline: one GStreamer pipeline per live, assembled from the description kept
//! as data in `pipelines/live.pipeline`, that composes the inputs and encodes the output
//! ladder (720p and 360p H.264, AAC) into CMAF, whose parts go straight into the HLS origin.

pub mod cmaf;
pub mod director;
pub mod inputs;
pub mod layout;
pub mod metrics;

use crate::hls::{AudioInfo, Live, Variant, WindowConfig};
use gst::prelude::*;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The pipeline description, placeholders unfilled.
pub const LIVE_PIPELINE: &str = include_str!("../../pipelines/live.pipeline");

/// The output ladder.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    pub width: u32,
    pub height: u32,
    pub sd_width: u32,
    pub sd_height: u32,
    pub fps: u32,
    pub hd_kbps: u32,
    pub sd_kbps: u32,
    pub audio_kbps: u32,
    /// x264's `speed-preset`.
    pub preset: String,
    pub window: WindowConfig,
}

impl Default for Ladder {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            sd_width: 640,
            sd_height: 360,
            fps: 25,
            hd_kbps: 2500,
            sd_kbps: 800,
            audio_kbps: 128,
            preset: "veryfast".to_owned(),
            window: WindowConfig::default(),
        }
    }
}

impl Ladder {
    /// The ladder the `[media]` settings describe.
    pub fn from_config(media: &crate::config::MediaConfig) -> Self {
        Self {
            fps: media.fps,
            hd_kbps: media.hd_kbps,
            sd_kbps: media.sd_kbps,
            audio_kbps: media.audio_kbps,
            preset: media.preset.clone(),
            window: WindowConfig {
                target_duration: media.segment_seconds,
                part_target: f64::from(media.part_ms) / 1000.0,
                segments: media.window_segments as usize,
            },
            ..Self::default()
        }
    }

    /// The renditions, named as the pipeline's appsinks (`out-<name>`).
    pub fn variants(&self) -> Vec<Variant> {
        vec![
            Variant {
                name: "720p".to_owned(),
                bandwidth: u64::from(self.hd_kbps) * 1100,
                codecs: "avc1.4d401f".to_owned(),
                width: self.width,
                height: self.height,
                frame_rate: f64::from(self.fps),
            },
            Variant {
                name: "360p".to_owned(),
                bandwidth: u64::from(self.sd_kbps) * 1100,
                codecs: "avc1.4d401e".to_owned(),
                width: self.sd_width,
                height: self.sd_height,
                frame_rate: f64::from(self.fps),
            },
        ]
    }

    pub fn audio(&self) -> AudioInfo {
        AudioInfo {
            name: "audio".to_owned(),
            codecs: "mp4a.40.2".to_owned(),
            bandwidth: u64::from(self.audio_kbps) * 1000,
        }
    }

    /// The pipeline description with the settings filled in.
    pub fn description(&self) -> String {
        let fragment_ns = u64::from(self.window.target_duration) * 1_000_000_000;
        let part_ns = (self.window.part_target * 1e9) as u64;
        let values = [
            ("{width}", self.width.to_string()),
            ("{height}", self.height.to_string()),
            ("{sd_width}", self.sd_width.to_string()),
            ("{sd_height}", self.sd_height.to_string()),
            ("{fps}", self.fps.to_string()),
            // Keyframes on segment boundaries (cmafmux also asks for them).
            (
                "{gop}",
                (self.fps * self.window.target_duration).to_string(),
            ),
            ("{hd_kbps}", self.hd_kbps.to_string()),
            ("{sd_kbps}", self.sd_kbps.to_string()),
            ("{audio_bps}", (self.audio_kbps * 1000).to_string()),
            ("{preset}", self.preset.clone()),
            ("{fragment_ns}", fragment_ns.to_string()),
            ("{part_ns}", part_ns.to_string()),
            // The jitter buffer's 150 ms, decoding and scaling.
            ("{input_latency_ns}", "300000000".to_owned()),
        ];
        fill(LIVE_PIPELINE, &values)
    }
}

/// A pipeline description kept as data: its comment lines left out, its `{placeholders}`
/// replaced by `values`.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut text: String = template
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for (key, value) in values {
        text = text.replace(key, value);
    }
    text
}

/// Registers the statically linked plugins (cmafmux) and starts GStreamer, once.
pub fn init() -> Result<(), String> {
    static INIT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        gst::init().map_err(|e| e.to_string())?;
        gstfmp4::plugin_register_static().map_err(|e| e.to_string())
    })
    .clone()
}

/// Brings `element` (a bin, a pipeline) down to `NULL`, then any of its elements a failed
/// state change left above it, one by one. An element disposed while its streaming thread
/// still runs crashes the process (a source's task in `libgstbase`), so nothing may be let go
/// before this returns.
pub fn stop(element: &gst::Element) {
    if let Err(e) = element.set_state(gst::State::Null) {
        tracing::warn!(element = %element.name(), error = %e, "GStreamer state change to NULL failed; stopping its elements one by one");
    }
    let Some(bin) = element.downcast_ref::<gst::Bin>() else {
        return;
    };
    // The bin's children may change meanwhile (an input taken out by another task): the list
    // is read again until every element in it is down.
    for _ in 0..5 {
        let mut running = 0;
        for child in elements(bin) {
            if child.current_state() != gst::State::Null
                || child.pending_state() != gst::State::VoidPending
            {
                running += 1;
                if let Err(e) = child.set_state(gst::State::Null) {
                    tracing::warn!(element = %child.name(), error = %e, "GStreamer element does not stop");
                }
            }
        }
        if running == 0 {
            return;
        }
    }
}

/// Every element inside `bin`, at any depth, read again from the start when the bin changes
/// during the reading.
fn elements(bin: &gst::Bin) -> Vec<gst::Element> {
    let mut iterator = bin.iterate_recurse();
    let mut found = Vec::new();
    loop {
        match iterator.next() {
            Ok(Some(element)) => found.push(element),
            Ok(None) => return found,
            Err(gst::IteratorError::Resync) => {
                iterator.resync();
                found.clear();
            }
            Err(gst::IteratorError::Error) => return found,
        }
    }
}

/// At start-up the compositor can put out a second picture with the time stamp of the first
/// (its first output comes from a time-out, before the live inputs' latency is known). The
/// parser after each encoder then clears the repeated time stamp and `cmafmux` stops the whole
/// stream on a buffer without one. The repeat is dropped here, before the encoders.
fn drop_repeated_pictures(pipeline: &gst::Pipeline) {
    let Some(src) = pipeline.by_name("mix").and_then(|m| m.static_pad("src")) else {
        return;
    };
    let last = std::sync::Mutex::new(None::<gst::ClockTime>);
    src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            return gst::PadProbeReturn::Ok;
        };
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|l| pts <= l) {
            return gst::PadProbeReturn::Drop;
        }
        *last = Some(pts);
        gst::PadProbeReturn::Ok
    });
}

/// What the slate says when there is no picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slate {
    /// Before the first picture: "The webinar will start soon".
    Waiting,
    /// The capture was lost and is being restored.
    Reconnecting,
}

impl Slate {
    /// Its text in the live's language.
    pub fn text(self, catalog: &crate::web::i18n::Catalog, lang: crate::web::i18n::Lang) -> String {
        let key = match self {
            Self::Waiting => "live.slate.waiting",
            Self::Reconnecting => "live.slate.reconnecting",
        };
        catalog.get(lang, key, &[])
    }
}

/// What the pipeline reports to the live's task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineEvent {
    Error(String),
    Warning(String),
    /// Every output finished (after [`LivePipeline::finish`]).
    Finished,
}

/// A running live pipeline.
pub struct LivePipeline {
    pipeline: gst::Pipeline,
    bus_task: tokio::task::JoinHandle<()>,
}

impl LivePipeline {
    /// Builds and starts the pipeline; its parts go to `live`'s renditions. A live that was
    /// already published (the capture restarts) goes on after an `EXT-X-DISCONTINUITY`, with
    /// the new init segments.
    pub fn start(
        ladder: &Ladder,
        live: Arc<Live>,
        slate: &str,
        events: mpsc::UnboundedSender<PipelineEvent>,
    ) -> Result<Self, String> {
        init()?;
        let pipeline = gst::parse::launch(&ladder.description())
            .map_err(|e| format!("the live pipeline does not parse: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "the live pipeline is not a pipeline".to_owned())?;
        if let Some(overlay) = pipeline.by_name("slate") {
            overlay.set_property("text", slate);
        }
        if live.renditions().any(|r| r.edge().is_some()) {
            live.discontinuity();
        }
        drop_repeated_pictures(&pipeline);
        metrics::instrument(&pipeline, &live);
        for rendition in live.renditions() {
            let sink = pipeline
                .by_name(&format!("out-{}", rendition.name))
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .ok_or_else(|| format!("the pipeline has no appsink out-{}", rendition.name))?;
            let audio = rendition.name == live.audio.name;
            cmaf::feed(sink, Arc::clone(rendition), Arc::clone(&live), audio);
        }
        let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
        let bus_task = tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut messages = bus.stream();
            while let Some(message) = messages.next().await {
                let event = match message.view() {
                    gst::MessageView::Error(e) => PipelineEvent::Error(format!(
                        "{}: {}{}",
                        e.src().map(|s| s.name().to_string()).unwrap_or_default(),
                        e.error(),
                        e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                    )),
                    gst::MessageView::Warning(w) => PipelineEvent::Warning(format!(
                        "{}: {}",
                        w.src().map(|s| s.name().to_string()).unwrap_or_default(),
                        w.error()
                    )),
                    gst::MessageView::Eos(_) => PipelineEvent::Finished,
                    _ => continue,
                };
                let last = matches!(event, PipelineEvent::Finished | PipelineEvent::Error(_));
                if events.send(event).is_err() || last {
                    return;
                }
            }
        });
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("the live pipeline does not start: {e}"))?;
        Ok(Self { pipeline, bus_task })
    }

    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    /// Changes the slate's text ("The webinar will start soon", "Reconnecting…").
    pub fn set_slate(&self, text: &str) {
        if let Some(overlay) = self.pipeline.by_name("slate") {
            overlay.set_property("text", text);
        }
    }

    /// Ends the stream: the outputs drain their last parts (the bus then says `Finished`).
    pub fn finish(&self) {
        self.pipeline.send_event(gst::event::Eos::new());
    }
}

impl Drop for LivePipeline {
    fn drop(&mut self) {
        // Down first: the bus task's pending messages hold references to elements, and
        // whichever drops the last one must find it stopped.
        stop(self.pipeline.upcast_ref());
        self.bus_task.abort();
    }
}
