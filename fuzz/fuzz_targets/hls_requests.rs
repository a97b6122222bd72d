//! The HLS origin's routes on arbitrary request targets: any path under a live and any query
//! (`_HLS_msn`, `_HLS_part`, `_HLS_skip`, repeated, empty, huge, not numbers) against a live
//! holding a few segments. Time is paused, so requests that wait for a part to come are
//! answered at once by their timeout. Property: an answer always comes, with a status the
//! origin documents, and a playlist answer is a playlist.
#![no_main]

use amphi::hls::{AudioInfo, Live, Lives, Variant, WindowConfig};
use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

fn lives() -> &'static Lives {
    static LIVES: OnceLock<Lives> = OnceLock::new();
    LIVES.get_or_init(|| {
        let variants = vec![Variant {
            name: "720p".to_owned(),
            bandwidth: 2_750_000,
            codecs: "avc1.4d401f".to_owned(),
            width: 1280,
            height: 720,
            frame_rate: 25.0,
        }];
        let audio = AudioInfo {
            name: "audio".to_owned(),
            codecs: "mp4a.40.2".to_owned(),
            bandwidth: 128_000,
        };
        let live = Arc::new(Live::new("fuzz", variants, audio, WindowConfig::default()));
        for rendition in live.renditions() {
            rendition.push_init(Bytes::from_static(b"\0\0\0\x08ftyp"));
            for msn in 0..5u64 {
                for part in 0..4usize {
                    rendition.push_part(
                        Bytes::from(vec![part as u8; 64]),
                        0.25,
                        part == 0,
                        part == 0,
                        1_795_000_000_000 + (msn * 1000 + part as u64 * 250) as i64,
                    );
                }
            }
        }
        let lives = Lives::default();
        lives.insert(live);
        lives
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(request) = Request::get(format!("/live/fuzz/hls/{text}")).body(Body::empty()) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = amphi::hls::http::router(lives().clone())
            .oneshot(request)
            .await
            .expect("the router always answers");
        let status = response.status().as_u16();
        assert!(
            [200, 400, 404, 410, 503].contains(&status),
            "status {status} for {text:?}"
        );
        let playlist = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/vnd.apple.mpegurl");
        let body = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .expect("a body");
        if status == 200 && playlist {
            assert!(body.starts_with(b"#EXTM3U\n"), "{text:?}");
        }
    });
});
