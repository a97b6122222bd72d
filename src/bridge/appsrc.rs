//! From bridge packets to GStreamer: caps describing each payload (VP8 PT 96, Opus PT 111),
//! and a feeder that pushes packets into an `appsrc` with presentation times taken from their
//! arrival, on the pipeline's running time, so `rtpjitterbuffer` sees the real network jitter.

use super::{RtpPacket, TrackKind};
use gst::prelude::*;
use std::time::Instant;

/// VP8 as the SFU sends it.
pub const VP8_PAYLOAD_TYPE: u8 = 96;
/// Opus as the SFU sends it.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;

/// Starts GStreamer once (every later call is free).
pub fn init() -> Result<(), gst::glib::Error> {
    gst::init()
}

/// The `application/x-rtp` caps of a track's packets.
pub fn caps(kind: TrackKind) -> gst::Caps {
    match kind {
        TrackKind::Video => gst::Caps::builder("application/x-rtp")
            .field("media", "video")
            .field("clock-rate", 90_000i32)
            .field("encoding-name", "VP8")
            .field("payload", i32::from(VP8_PAYLOAD_TYPE))
            .build(),
        TrackKind::Audio => gst::Caps::builder("application/x-rtp")
            .field("media", "audio")
            .field("clock-rate", 48_000i32)
            .field("encoding-name", "OPUS")
            .field("encoding-params", "2")
            .field("payload", i32::from(OPUS_PAYLOAD_TYPE))
            .build(),
    }
}

/// Pushes one subscription's packets of one kind into an `appsrc`.
pub struct Feeder {
    appsrc: gst_app::AppSrc,
    /// An instant and the pipeline's running time at that instant.
    anchor: Option<(Instant, gst::ClockTime)>,
}

impl Feeder {
    /// Sets the caps and live time format on `appsrc`.
    pub fn new(appsrc: gst_app::AppSrc, kind: TrackKind) -> Self {
        appsrc.set_caps(Some(&caps(kind)));
        appsrc.set_format(gst::Format::Time);
        appsrc.set_is_live(true);
        appsrc.set_do_timestamp(false);
        Self {
            appsrc,
            anchor: None,
        }
    }

    /// The packet as a buffer stamped with the running time of its arrival.
    pub fn buffer(&mut self, packet: &RtpPacket) -> gst::Buffer {
        let (at, running) = *self.anchor.get_or_insert_with(|| {
            let running = self
                .appsrc
                .current_running_time()
                .unwrap_or(gst::ClockTime::ZERO);
            (Instant::now(), running)
        });
        let pts = if packet.received >= at {
            running
                + gst::ClockTime::from_nseconds(packet.received.duration_since(at).as_nanos() as u64)
        } else {
            running.saturating_sub(gst::ClockTime::from_nseconds(
                at.duration_since(packet.received).as_nanos() as u64,
            ))
        };
        let mut buffer = gst::Buffer::from_slice(packet.data.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(pts);
        }
        buffer
    }

    /// Pushes the packet; an error means the pipeline is not accepting data (stopped, failed).
    pub fn push(&mut self, packet: &RtpPacket) -> Result<gst::FlowSuccess, gst::FlowError> {
        let buffer = self.buffer(packet);
        self.appsrc.push_buffer(buffer)
    }

    /// Tells the pipeline this source is over.
    pub fn end(&self) {
        let _ = self.appsrc.end_of_stream();
    }
}
