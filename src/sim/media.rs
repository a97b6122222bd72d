//! Live test media for the simulator's SFU, made by GStreamer as RTP packets: VP8 video from
//! `videotestsrc` with the wall-clock time stamped into every picture ([`super::stamp`]) and
//! Opus from `audiotestsrc` (a 440 Hz tone). Cameras show a moving ball, the screenshare SMPTE
//! bars, so the two cannot be mistaken for each other.

use super::stamp;
use bytes::Bytes;
use gst::prelude::*;
use gst_video::prelude::VideoFrameExt;
use tokio::sync::mpsc;

/// What a source shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Camera,
    Screenshare,
    Tone,
}

/// Picture sizes and rates (small by default: the simulator shares the machine with amphi).
#[derive(Debug, Clone, Copy)]
pub struct VideoFormat {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub kbps: u32,
}

impl Pattern {
    fn format(self) -> VideoFormat {
        match self {
            Self::Camera => VideoFormat {
                width: 320,
                height: 180,
                fps: 15,
                kbps: 300,
            },
            _ => VideoFormat {
                width: 640,
                height: 360,
                fps: 10,
                kbps: 600,
            },
        }
    }
}

/// Frequency of the tone, for tests that check they hear it.
pub const TONE_HZ: u32 = 440;

/// A running source; dropping it stops the pipeline.
pub struct Source {
    pipeline: gst::Pipeline,
    encoder: Option<gst::Element>,
}

impl Source {
    /// Starts a source sending RTP packets (PT 96 for VP8, 111 for Opus) on `packets`.
    /// Packets are dropped when the receiver lags.
    pub fn start(pattern: Pattern, packets: mpsc::Sender<Bytes>) -> Result<Self, String> {
        gst::init().map_err(|e| e.to_string())?;
        let description = match pattern {
            Pattern::Tone => format!(
                "audiotestsrc is-live=true wave=sine freq={TONE_HZ} volume=0.3 samplesperbuffer=960 \
                 ! audio/x-raw,rate=48000,channels=2 ! opusenc frame-size=20 \
                 ! rtpopuspay pt=111 mtu=1200 ! appsink name=out sync=false"
            ),
            Pattern::Camera | Pattern::Screenshare => {
                let f = pattern.format();
                let look = if pattern == Pattern::Camera {
                    "pattern=ball background-color=0xff203040"
                } else {
                    "pattern=smpte"
                };
                format!(
                    "videotestsrc is-live=true {look} \
                     ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 \
                     ! identity name=stamp \
                     ! vp8enc name=encoder deadline=1 cpu-used=8 lag-in-frames=0 \
                       keyframe-max-dist={gop} target-bitrate={bps} error-resilient=partitions \
                     ! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit ! appsink name=out sync=false",
                    w = f.width,
                    h = f.height,
                    fps = f.fps,
                    gop = f.fps * 2,
                    bps = f.kbps * 1000,
                )
            }
        };
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| e.to_string())?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline".to_owned())?;
        if pattern != Pattern::Tone {
            stamp_pictures(&pipeline, pattern.format())?;
        }
        let sink = pipeline
            .by_name("out")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or("appsink missing")?;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(buffer) = sample.buffer()
                        && let Ok(map) = buffer.map_readable()
                    {
                        let _ = packets.try_send(Bytes::copy_from_slice(&map));
                    }
                    if packets.is_closed() {
                        return Err(gst::FlowError::Eos);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| e.to_string())?;
        let encoder = pipeline.by_name("encoder");
        Ok(Self { pipeline, encoder })
    }

    /// The video encoder, to ask it for keyframes ([`force_keyframe`]).
    pub fn encoder(&self) -> Option<gst::Element> {
        self.encoder.clone()
    }
}

/// Makes a video encoder send a keyframe now (the receiver sent a PLI).
pub fn force_keyframe(encoder: &gst::Element) {
    let event = gst_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    if let Some(pad) = encoder.static_pad("src") {
        pad.send_event(event);
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Draws the wall-clock time into every raw picture before the encoder.
fn stamp_pictures(pipeline: &gst::Pipeline, format: VideoFormat) -> Result<(), String> {
    let pad = pipeline
        .by_name("stamp")
        .and_then(|e| e.static_pad("src"))
        .ok_or("stamp element missing")?;
    let info =
        gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, format.width, format.height)
            .build()
            .map_err(|e| e.to_string())?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, probe| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = probe.data.as_mut() {
            let buffer = buffer.make_mut();
            if let Ok(mut frame) = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &info)
            {
                let stride = frame.plane_stride()[0] as usize;
                if let Ok(luma) = frame.plane_data_mut(0) {
                    stamp::draw(
                        luma,
                        stride,
                        format.width as usize,
                        format.height as usize,
                        stamp::now_ms(),
                    );
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}
