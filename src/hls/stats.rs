//! What a live's pipeline did, counted as it runs: frames in from the inputs, frames composed,
//! frames and bytes out of each encoder, and how long the encoders hold a frame. The pipeline
//! updates the counters (lock-free); `/metrics` and the admin read them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// One rendition's output.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// A video rendition (its encoder takes the composed pictures).
    pub video: bool,
    /// Frames the encoder took in.
    pub frames_in: AtomicU64,
    /// Encoded frames (audio: encoded buffers).
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Time between a frame entering the encoder and leaving it, in microseconds: the last one
    /// and the largest since the live started.
    pub latency_us: AtomicU64,
    pub latency_max_us: AtomicU64,
}

impl OutputStats {
    pub fn encoded(&self, bytes: usize, latency_us: Option<u64>) {
        self.frames_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(us) = latency_us {
            self.latency_us.store(us, Ordering::Relaxed);
            self.latency_max_us.fetch_max(us, Ordering::Relaxed);
        }
    }
}

/// A live's counters.
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Video frames the inputs (cameras, screenshare, slide) brought to the compositor.
    pub frames_in: AtomicU64,
    /// Those of them that came from the meeting (cameras and screenshare, not the slide).
    pub meeting_frames_in: AtomicU64,
    /// Pictures the compositor made (the output frame rate).
    pub frames_composed: AtomicU64,
    /// By rendition name.
    pub outputs: BTreeMap<String, OutputStats>,
}

/// A reading of the counters, for rates between two readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub frames_in: u64,
    pub meeting_frames_in: u64,
    pub frames_composed: u64,
    pub outputs: BTreeMap<String, OutputSnapshot>,
}

/// A reading of one rendition's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputSnapshot {
    pub video: bool,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    pub latency_us: u64,
    pub latency_max_us: u64,
}

impl LiveStats {
    /// Counters for renditions given as (name, is video).
    pub fn new<'a>(renditions: impl IntoIterator<Item = (&'a str, bool)>) -> Self {
        Self {
            outputs: renditions
                .into_iter()
                .map(|(name, video)| {
                    (
                        name.to_owned(),
                        OutputStats {
                            video,
                            ..OutputStats::default()
                        },
                    )
                })
                .collect(),
            ..Self::default()
        }
    }

    pub fn output(&self, rendition: &str) -> Option<&OutputStats> {
        self.outputs.get(rendition)
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            frames_in: self.frames_in.load(Ordering::Relaxed),
            meeting_frames_in: self.meeting_frames_in.load(Ordering::Relaxed),
            frames_composed: self.frames_composed.load(Ordering::Relaxed),
            outputs: self
                .outputs
                .iter()
                .map(|(name, o)| {
                    (
                        name.clone(),
                        OutputSnapshot {
                            video: o.video,
                            frames_in: o.frames_in.load(Ordering::Relaxed),
                            frames_out: o.frames_out.load(Ordering::Relaxed),
                            bytes_out: o.bytes_out.load(Ordering::Relaxed),
                            latency_us: o.latency_us.load(Ordering::Relaxed),
                            latency_max_us: o.latency_max_us.load(Ordering::Relaxed),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Rates between two readings `seconds` apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub input_fps: f64,
    pub output_fps: f64,
    /// By rendition: (frames per second out, bits per second out, frames dropped before the
    /// encoder).
    pub outputs: BTreeMap<String, (f64, f64, u64)>,
}

impl Snapshot {
    pub fn rates(&self, later: &Snapshot, seconds: f64) -> Rates {
        let per_second = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds.max(1e-9);
        Rates {
            input_fps: per_second(self.frames_in, later.frames_in),
            output_fps: per_second(self.frames_composed, later.frames_composed),
            outputs: later
                .outputs
                .iter()
                .map(|(name, now)| {
                    let before = self.outputs.get(name).copied().unwrap_or_default();
                    let composed = later.frames_composed.saturating_sub(self.frames_composed);
                    let taken = now.frames_in.saturating_sub(before.frames_in);
                    let dropped = if now.video {
                        composed.saturating_sub(taken)
                    } else {
                        0
                    };
                    (
                        name.clone(),
                        (
                            per_second(before.frames_out, now.frames_out),
                            per_second(before.bytes_out, now.bytes_out) * 8.0,
                            dropped,
                        ),
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_between_two_readings() {
        let stats = LiveStats::new([("720p", true), ("audio", false)]);
        let before = stats.snapshot();
        stats.frames_in.fetch_add(50, Ordering::Relaxed);
        stats.frames_composed.fetch_add(50, Ordering::Relaxed);
        let out = stats.output("720p").unwrap();
        out.frames_in.fetch_add(48, Ordering::Relaxed);
        for _ in 0..48 {
            out.encoded(1000, Some(12_000));
        }
        out.encoded(0, Some(40_000));
        out.encoded(0, Some(8_000));
        let later = stats.snapshot();
        let rates = before.rates(&later, 2.0);
        assert_eq!(rates.input_fps, 25.0);
        assert_eq!(rates.output_fps, 25.0);
        let (fps, bps, dropped) = rates.outputs["720p"];
        assert_eq!(fps, 25.0);
        assert_eq!(bps, 48.0 * 1000.0 * 8.0 / 2.0);
        assert_eq!(dropped, 2);
        assert_eq!(rates.outputs["audio"], (0.0, 0.0, 0));
        assert_eq!(later.outputs["720p"].latency_us, 8_000, "the last latency");
        assert_eq!(later.outputs["720p"].latency_max_us, 40_000, "the largest");
    }
}
