//! Any webhook body parses into events or a typed error, and its checksum check never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = amphi::bbb::callbacks::verify_webhook(
        "http://127.0.0.1/bbb/callbacks/hooks",
        data,
        Some("0123456789abcdef0123456789abcdef01234567"),
        "fuzz-secret",
    );
    if let Err(error) = amphi::bbb::callbacks::parse_webhook_body(data) {
        let _ = error.to_string();
    }
});
