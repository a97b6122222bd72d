//! Pad probes that keep a live's counters ([`crate::hls::stats::LiveStats`]): every buffer an
//! input brings to the compositor, every composed picture, and for each encoder (`enc-<name>`
//! in the pipeline) what goes in, what comes out, its size and how long it stayed inside.

use crate::hls::Live;
use gst::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Frames remembered per encoder while they are inside it (x264 with zero-latency tuning holds
/// one or two).
const IN_FLIGHT: usize = 64;

fn count_buffers(pad: &gst::Pad, count: impl Fn(&gst::Buffer) + Send + Sync + 'static) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            count(buffer);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Installs the probes on a pipeline built from `pipelines/live.pipeline`.
pub fn instrument(pipeline: &gst::Pipeline, live: &Arc<Live>) {
    if let Some(mix) = pipeline.by_name("mix") {
        // Inputs attach later on request pads; the slate's pad exists already and is not an
        // input.
        let weak = Arc::downgrade(live);
        mix.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Sink {
                return;
            }
            let weak = weak.clone();
            // Whether the input linked to this pad brings the meeting's video, known once the
            // first buffer comes (the input links after asking for the pad).
            let meeting = std::sync::OnceLock::new();
            let pad_ref = pad.downgrade();
            count_buffers(pad, move |_| {
                let Some(live) = weak.upgrade() else { return };
                live.stats.frames_in.fetch_add(1, Ordering::Relaxed);
                let from_meeting = *meeting.get_or_init(|| {
                    pad_ref
                        .upgrade()
                        .and_then(|p| p.peer())
                        .and_then(|p| p.parent_element())
                        .is_some_and(|e| e.name().starts_with(crate::media::inputs::MEETING_VIDEO))
                });
                if from_meeting {
                    live.stats.meeting_frames_in.fetch_add(1, Ordering::Relaxed);
                }
            });
        });
        if let Some(src) = mix.static_pad("src") {
            let weak = Arc::downgrade(live);
            count_buffers(&src, move |_| {
                if let Some(live) = weak.upgrade() {
                    live.stats.frames_composed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
    for name in live.stats.outputs.keys() {
        let Some(encoder) = pipeline.by_name(&format!("enc-{name}")) else {
            continue;
        };
        let (Some(sink), Some(src)) = (encoder.static_pad("sink"), encoder.static_pad("src"))
        else {
            continue;
        };
        // Video frames leave the encoder in the order they entered (no B-frames), with
        // time stamps it shifted: the oldest frame inside is the one coming out. Audio
        // encoders regroup samples, so only their output is counted.
        let video = live.stats.output(name).is_some_and(|o| o.video);
        let inside: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
        let (weak, rendition, entered) = (Arc::downgrade(live), name.clone(), Arc::clone(&inside));
        count_buffers(&sink, move |_| {
            let Some(live) = weak.upgrade() else { return };
            if let Some(stats) = live.stats.output(&rendition) {
                stats.frames_in.fetch_add(1, Ordering::Relaxed);
            }
            if video {
                let mut entered = entered.lock().unwrap_or_else(|e| e.into_inner());
                if entered.len() == IN_FLIGHT {
                    entered.pop_front();
                }
                entered.push_back(Instant::now());
            }
        });
        let (weak, rendition) = (Arc::downgrade(live), name.clone());
        count_buffers(&src, move |buffer| {
            let Some(live) = weak.upgrade() else { return };
            let latency = inside
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()
                .map(|at| at.elapsed().as_micros() as u64);
            if let Some(stats) = live.stats.output(&rendition) {
                stats.encoded(buffer.size(), latency);
            }
        });
    }
}
