//! Any `signed_parameters` value is refused or accepted, never a panic; a token accepted under
//! one secret is refused under another.
#![no_main]

use amphi::bbb::callbacks::verify_recording_ready;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        if verify_recording_ready(token, b"fuzz-secret").is_ok() {
            assert!(verify_recording_ready(token, b"another-secret").is_err());
        }
    }
});
