//! The `Cookie` header reader takes any header value.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, value);
        let _ = amphi::web::cookies::get(&headers, "amphi_session");
    }
});
