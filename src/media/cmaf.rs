//! From `cmafmux` to the origin. With `buffer-list=true` each appsink sample is one chunk:
//! `[init?][moof][samples…]`. The init segment (ftyp+moov) is flagged DISCONT|HEADER; a chunk
//! that starts a fragment (a segment) has HEADER without DELTA_UNIT, later chunks of the same
//! fragment HEADER|DELTA_UNIT; the moof buffer's duration is the chunk's. Each chunk becomes
//! one LL-HLS part.

use crate::hls::{Live, Rendition};
use bytes::Bytes;
use gst::prelude::*;
use std::sync::Arc;

/// The RFC 6381 codec string of an H.264 init segment (`avc1.PPCCLL` from its `avcC` box).
pub fn avc_codecs(init: &[u8]) -> Option<String> {
    let at = init.windows(4).position(|w| w == b"avcC")? + 4;
    let config = init.get(at..at + 4)?;
    Some(format!(
        "avc1.{:02x}{:02x}{:02x}",
        config[1], config[2], config[3]
    ))
}

/// Wires an appsink to a rendition.
pub fn feed(sink: gst_app::AppSink, rendition: Arc<Rendition>, live: Arc<Live>, audio: bool) {
    feed_then(sink, rendition, live, audio, Arc::new(|| true));
}

/// Wires an appsink to a rendition and calls `after` once each chunk is in it; `after`
/// answering `false` stops the stream with an error (the caller knows why).
pub fn feed_then(
    sink: gst_app::AppSink,
    rendition: Arc<Rendition>,
    live: Arc<Live>,
    audio: bool,
    after: Arc<dyn Fn() -> bool + Send + Sync>,
) {
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let segment = sample.segment();
                if let Some(list) = sample.buffer_list() {
                    let buffers: Vec<&gst::BufferRef> = list.iter().collect();
                    take(&buffers, &rendition, &live, audio, sink, segment);
                } else if let Some(buffer) = sample.buffer() {
                    take(&[buffer], &rendition, &live, audio, sink, segment);
                }
                if after() {
                    Ok(gst::FlowSuccess::Ok)
                } else {
                    Err(gst::FlowError::Error)
                }
            })
            .build(),
    );
}

fn take(
    buffers: &[&gst::BufferRef],
    rendition: &Rendition,
    live: &Live,
    audio: bool,
    sink: &gst_app::AppSink,
    segment: Option<&gst::Segment>,
) {
    let mut rest = buffers;
    if let Some(first) = rest.first()
        && first
            .flags()
            .contains(gst::BufferFlags::DISCONT | gst::BufferFlags::HEADER)
    {
        if let Ok(map) = first.map_readable() {
            let init = Bytes::copy_from_slice(&map);
            if !audio && let Some(codecs) = avc_codecs(&init) {
                live.set_codecs(&rendition.name, &codecs);
            }
            rendition.push_init(init);
        }
        rest = &rest[1..];
    }
    let Some(moof) = rest.first() else {
        return;
    };
    let flags = moof.flags();
    let new_segment =
        flags.contains(gst::BufferFlags::HEADER) && !flags.contains(gst::BufferFlags::DELTA_UNIT);
    let duration = moof.duration().map_or(0.0, |d| d.nseconds() as f64 / 1e9);
    let size: usize = rest.iter().map(|b| b.size()).sum();
    let mut data = Vec::with_capacity(size);
    for buffer in rest {
        if let Ok(map) = buffer.map_readable() {
            data.extend_from_slice(&map);
        }
    }
    // The part's first sample was captured this long before now.
    let age_ms = match (moof.pts(), sink.current_running_time(), segment) {
        (Some(pts), Some(now), Some(segment)) => segment
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_running_time(pts))
            .map_or(0, |start| now.saturating_sub(start).mseconds() as i64),
        _ => 0,
    };
    rendition.push_part(
        Bytes::from(data),
        duration,
        new_segment || audio,
        new_segment,
        crate::clock::unix_ms() - age_ms,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_codec_string_of_an_avcc_box() {
        let mut init = b"....moov....avcC".to_vec();
        init.extend_from_slice(&[1, 0x4d, 0x40, 0x1f, 0xff]);
        assert_eq!(avc_codecs(&init).as_deref(), Some("avc1.4d401f"));
        assert_eq!(avc_codecs(b"no box here"), None);
        assert_eq!(avc_codecs(b"avcC\x01"), None, "truncated");
    }
}
