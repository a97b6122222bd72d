//! Decoding what the origin holds, with a real decoder (GStreamer), for tests that look at the
//! pictures and the sound.

use amphi::hls::Rendition;
use gst::prelude::*;

/// The decoded samples of segment `msn` of `rendition` (behind its init segment `init`):
/// `decode` is the gst-launch text after `qtdemux !`, ending in an appsink named `out`.
pub fn decode_segment(
    rendition: &Rendition,
    init: u32,
    msn: u64,
    decode: &str,
) -> Vec<gst::Sample> {
    let mut file = rendition.init(init).expect("the init segment").to_vec();
    for part in rendition.segment(msn).expect("the segment") {
        file.extend_from_slice(&part);
    }
    decode_bytes(&file, &format!("qtdemux ! {decode}"))
}

/// The decoded samples of a file's bytes: `decode` is the gst-launch text that reads it,
/// ending in an appsink named `out`.
pub fn decode_bytes(data: &[u8], decode: &str) -> Vec<gst::Sample> {
    amphi::media::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, data).unwrap();
    let pipeline = gst::parse::launch(&format!("filesrc location={} ! {decode}", path.display()))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut samples = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        samples.push(sample);
    }
    pipeline.set_state(gst::State::Null).unwrap();
    samples
}
