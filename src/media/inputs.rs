//! Inputs that come and go while the live pipeline runs: RTP from the bridge (a camera, the
//! screenshare, the meeting's audio) through `appsrc`, the jitter buffer, the depayloader and
//! the decoder; the current slide as a still picture. Each input is a bin linked to a request
//! pad of the compositor or the audio mixer; adding or removing one never stops the pipeline
//! or its output timeline. Placement follows the layout; with no picture the slate shows.

use super::layout::{Layout, Placement};
use crate::bridge::TrackKind;
use crate::bridge::appsrc::Feeder;
use gst::prelude::*;

/// What an input is, for the layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A camera; lower ranks are placed first (the presenter has rank 0).
    Camera {
        rank: u32,
        id: String,
    },
    Screenshare,
    Slide,
    Audio {
        id: String,
    },
}

/// What a slide picture is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// From the content type, or from the first bytes when the server did not say.
    pub fn of(content_type: &str, bytes: &[u8]) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "image/png" => return Some(Self::Png),
            "image/svg+xml" => return Some(Self::Svg),
            _ => {}
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(Self::Png);
        }
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
        head.contains("<svg").then_some(Self::Svg)
    }

    fn decoder(self) -> (&'static str, &'static str) {
        match self {
            Self::Png => ("image/png", "pngdec"),
            Self::Svg => ("image/svg+xml", "rsvgdec"),
        }
    }
}

/// An input attached to the pipeline.
pub struct Input {
    pub role: Role,
    bin: gst::Bin,
    pad: gst::Pad,
    appsrc: Option<gst_app::AppSrc>,
    /// What a slide input decodes.
    format: Option<ImageFormat>,
}

impl Input {
    /// The mixer pad this input feeds (for probes and metrics).
    pub fn pad(&self) -> &gst::Pad {
        &self.pad
    }

    /// Replaces the picture of a slide input (of its format: see [`show_slide`]).
    pub fn show(&self, image: &[u8]) -> Result<(), String> {
        let src = self.appsrc.as_ref().ok_or("not a slide input")?;
        src.push_buffer(gst::Buffer::from_slice(image.to_vec()))
            .map(|_| ())
            .map_err(|e| format!("the slide was refused: {e:?}"))
    }
}

fn bin(description: &str) -> Result<gst::Bin, String> {
    gst::parse::bin_from_description(description, true)
        .map_err(|e| format!("input does not parse: {e}"))
}

/// Builds an input bin and links it to a new request pad of `mixer`.
fn attach(pipeline: &gst::Pipeline, mixer: &str, bin: gst::Bin) -> Result<gst::Pad, String> {
    let mixer = pipeline
        .by_name(mixer)
        .ok_or_else(|| format!("the pipeline has no {mixer}"))?;
    // A bin added to a playing pipeline keeps its own base time (zero) unless given the
    // pipeline's: its running time would then be the clock itself, far in the future.
    if let Some(base) = pipeline.base_time() {
        bin.set_base_time(base);
    }
    bin.set_start_time(gst::ClockTime::NONE);
    pipeline.add(&bin).map_err(|e| e.to_string())?;
    let pad = mixer
        .request_pad_simple("sink_%u")
        .ok_or("the mixer gave no pad")?;
    let src = bin.static_pad("src").ok_or("the input has no output")?;
    src.link(&pad)
        .map_err(|e| format!("cannot link the input: {e:?}"))?;
    bin.sync_state_with_parent().map_err(|e| e.to_string())?;
    // The new branch brings its own latency (the jitter buffer): tell the sinks.
    let _ = pipeline.recalculate_latency();
    Ok(pad)
}

/// The name prefix of the inputs that bring the meeting's video (cameras, screenshare).
pub const MEETING_VIDEO: &str = "meeting-video-";

/// RTP from the bridge: a camera or the screenshare (VP8), or audio (Opus). The feeder
/// takes the subscription's packets.
pub fn rtp(
    pipeline: &gst::Pipeline,
    role: Role,
    kind: TrackKind,
) -> Result<(Input, Feeder), String> {
    let (description, mixer) = match kind {
        TrackKind::Video => (
            "appsrc name=src ! rtpjitterbuffer latency=150 drop-on-latency=true \
             ! rtpvp8depay ! vp8dec ! videoconvert ! videoscale \
             ! video/x-raw,format=I420,pixel-aspect-ratio=1/1 \
             ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=500000000 leaky=downstream"
                .to_owned(),
            "mix",
        ),
        TrackKind::Audio => (
            "appsrc name=src ! rtpjitterbuffer latency=150 drop-on-latency=true \
             ! rtpopusdepay ! opusdec plc=true ! audioconvert ! audioresample \
             ! audio/x-raw,rate=48000,channels=2 \
             ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=500000000 leaky=downstream"
                .to_owned(),
            "amix",
        ),
    };
    let bin = bin(&description)?;
    if kind == TrackKind::Video {
        // Named so that the live's counters tell the meeting's pictures from the slide's.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bin.set_property("name", format!("{MEETING_VIDEO}{n}"));
    }
    let appsrc = bin
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or("the input has no appsrc")?;
    // Caps, time format and liveness before the source starts: its first segment event is
    // sent with the format it has then.
    let feeder = Feeder::new(appsrc, kind);
    let pad = attach(pipeline, mixer, bin.clone())?;
    Ok((
        Input {
            role,
            bin,
            pad,
            appsrc: None,
            format: None,
        },
        feeder,
    ))
}

/// The current slide: pictures of one format pushed with [`Input::show`], each held until the
/// next one. Each picture is converted once, before it is frozen: converting the frozen
/// picture again at every frame cost a tenth of a webinar's CPU.
pub fn slide(pipeline: &gst::Pipeline, fps: u32, format: ImageFormat) -> Result<Input, String> {
    let (caps, decoder) = format.decoder();
    let description = format!(
        "appsrc name=src is-live=true do-timestamp=true format=time \
         ! {decoder} ! videoconvert ! capsfilter caps=video/x-raw,format=I420 \
         ! imagefreeze is-live=true allow-replace=true \
         ! capsfilter caps=video/x-raw,framerate={fps}/1 \
         ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=500000000 leaky=downstream"
    );
    let bin = bin(&description)?;
    let appsrc = bin
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or("the input has no appsrc")?;
    appsrc.set_caps(Some(&gst::Caps::builder(caps).build()));
    let pad = attach(pipeline, "mix", bin.clone())?;
    Ok(Input {
        role: Role::Slide,
        bin,
        pad,
        appsrc: Some(appsrc),
        format: Some(format),
    })
}

/// Shows a slide picture, PNG or SVG: in the slide input when it takes that format, else in a
/// new one that replaces it. Returns whether the input was replaced (place it again then).
pub fn show_slide(
    pipeline: &gst::Pipeline,
    current: &mut Option<Input>,
    content_type: &str,
    image: &[u8],
    fps: u32,
) -> Result<bool, String> {
    let format = ImageFormat::of(content_type, image)
        .ok_or_else(|| format!("a slide picture of type {content_type} cannot be shown"))?;
    if let Some(input) = current.as_ref()
        && input.format == Some(format)
    {
        input.show(image)?;
        return Ok(false);
    }
    let input = slide(pipeline, fps, format)?;
    input.show(image)?;
    if let Some(old) = current.replace(input) {
        detach(pipeline, old);
    }
    Ok(true)
}

/// Takes an input out of the running pipeline.
pub fn detach(pipeline: &gst::Pipeline, input: Input) {
    let mixer = input.pad.parent_element();
    if let Some(src) = input.bin.static_pad("src") {
        let _ = src.unlink(&input.pad);
    }
    // Out of the pipeline's state changes from now on: one made meanwhile by another task
    // would bring the input back to PAUSED after it was stopped.
    input.bin.set_locked_state(true);
    super::stop(input.bin.upcast_ref());
    let _ = pipeline.remove(&input.bin);
    if let Some(mixer) = mixer {
        mixer.release_request_pad(&input.pad);
    }
}

/// Places the video inputs as `layout` says on an output of `size`; the slate shows only
/// when nothing else does. Returns the placement.
pub fn arrange(
    pipeline: &gst::Pipeline,
    layout: &Layout,
    inputs: &[&Input],
    size: (u32, u32),
) -> Placement {
    let screenshare = inputs.iter().find(|i| i.role == Role::Screenshare);
    let slide = inputs.iter().find(|i| i.role == Role::Slide);
    let main = screenshare.or(slide);
    let mut cameras: Vec<&&Input> = inputs
        .iter()
        .filter(|i| matches!(i.role, Role::Camera { .. }))
        .collect();
    cameras.sort_by(|a, b| a.role.cmp(&b.role));
    let placement = layout.place(main.is_some(), cameras.len(), size);
    let hide = |pad: &gst::Pad| {
        pad.set_property("alpha", 0.0f64);
    };
    let show = |pad: &gst::Pad, rect: [u32; 4], zorder: u32| {
        pad.set_property("xpos", rect[0] as i32);
        pad.set_property("ypos", rect[1] as i32);
        pad.set_property("width", rect[2] as i32);
        pad.set_property("height", rect[3] as i32);
        pad.set_property("zorder", zorder);
        pad.set_property_from_str("sizing-policy", "keep-aspect-ratio");
        pad.set_property("alpha", 1.0f64);
    };
    for input in inputs
        .iter()
        .filter(|i| !matches!(i.role, Role::Audio { .. }))
    {
        hide(&input.pad);
    }
    if let (Some(main), Some(rect)) = (main, placement.main) {
        show(&main.pad, rect, 1);
    }
    for (camera, rect) in cameras.iter().zip(&placement.cameras) {
        show(&camera.pad, *rect, 2);
    }
    if let Some(slate) = slate_pad(pipeline) {
        if placement.is_empty() {
            slate.set_property("alpha", 1.0f64);
        } else {
            slate.set_property("alpha", 0.0f64);
        }
    }
    placement
}

/// The compositor pad the slate feeds.
fn slate_pad(pipeline: &gst::Pipeline) -> Option<gst::Pad> {
    pipeline.by_name("slate-out")?.static_pad("src")?.peer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slide_formats_from_the_type_or_the_bytes() {
        assert_eq!(ImageFormat::of("image/png", b""), Some(ImageFormat::Png));
        assert_eq!(
            ImageFormat::of("image/svg+xml; charset=utf-8", b""),
            Some(ImageFormat::Svg)
        );
        assert_eq!(
            ImageFormat::of("application/octet-stream", b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::of("text/plain", b"<?xml version=\"1.0\"?>\n<SVG width=\"10\">"),
            Some(ImageFormat::Svg)
        );
        assert_eq!(ImageFormat::of("text/html", b"<html>nope</html>"), None);
    }
}
