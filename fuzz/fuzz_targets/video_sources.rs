//! What a video import reads from servers a user chose: any HTML page searched for its
//! `<source>`, any URL classified (PeerTube watch page or not), any `Content-Type`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(src) = amphi::videos::source::source_in_page(&text) {
        assert!(!src.is_empty() && src.trim() == src, "{src:?}");
    }
    let _ = amphi::videos::source::is_media_type(&text);
    if let Ok(url) = amphi::fetch::Guard::parse(&text) {
        assert!(matches!(url.scheme(), "http" | "https"));
        if let Some(id) = amphi::videos::source::peertube_id(&url) {
            assert!(!id.is_empty() && !id.contains('/'));
        }
    }
});
