//! Any end-callback query string is refused or accepted, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = amphi::bbb::callbacks::verify_end_callback(b"fuzz-key", query);
        let _ = amphi::bbb::callbacks::webhook_checksum(query);
    }
});
