//! Any text given as a configuration file is refused or accepted, never a panic, and a refusal
//! never quotes a secret value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = amphi::config::Config::from_toml(text, Path::new("fuzz.toml")) {
            let _ = config.validate();
        }
    }
});
