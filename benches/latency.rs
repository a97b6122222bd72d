//! Latency from the meeting to a student's screen, measured on loopback.
//!
//! `cargo bench --bench latency -- [--seconds 30] [--warmup 8] [--runs 1] [--preset veryfast] [--fps 25]`
//!
//! The BBB simulator runs in its own process; its camera stamps the wall clock into every
//! picture. This process runs the bot's media bridge, the live pipeline (camera full frame),
//! the HLS origin and amphi's web server with the live page. Two figures:
//!
//! - capture → part: every frame of the segments made during the runs is decoded again and
//!   its stamp read; latency = when the LL-HLS part holding it was published − when it was
//!   drawn.
//! - glass to glass: headless Chromium opens the live page (`/live/bench`, its own hls.js
//!   settings) and, for every frame the page composes (`requestVideoFrameCallback`), draws the
//!   top of the picture into a canvas, reads the stamp and keeps (the time the frame is
//!   expected on screen − the stamp). Once with the page as it is (hls.js low-latency mode),
//!   once with low-latency mode turned off (standard HLS: whole segments, as a player without
//!   LL-HLS support plays them). Same clock, same machine.

#[path = "../tests/it/browser.rs"]
mod browser;
#[path = "common/capture.rs"]
mod capture;
mod common;

use amphi::media::Ladder;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    seconds: u64,
    warmup: u64,
    runs: u32,
    preset: String,
    fps: u32,
}

fn options() -> Options {
    Options {
        seconds: common::arg("--seconds", 30),
        warmup: common::arg("--warmup", 8),
        runs: common::arg("--runs", 1),
        preset: common::arg("--preset", "veryfast".to_owned()),
        fps: common::arg("--fps", 25),
    }
}

/// Run in the page before its own scripts: times every composed video frame by its stamp
/// (the layout of `amphi::sim::stamp`: 48 bits in three rows of sixteen blocks, each row
/// followed by its inverse, on the top third of a 16:9 camera picture shown full frame).
const MEASURE: &str = r#"
(function () {
  var g = window.__g2g = { samples: [], unstamped: 0, frames: 0 };
  function install() {
    var video = document.getElementById("video");
    if (!video || !video.requestVideoFrameCallback) { g.unsupported = true; return; }
    var canvas = document.createElement("canvas");
    canvas.width = 320; canvas.height = 60;
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    function mean(d, x0, y0) {
      var s = 0, n = 0;
      for (var y = y0 + 2; y < y0 + 8; y++) {
        for (var x = x0 + 5; x < x0 + 15; x++) {
          var i = (y * 320 + x) * 4;
          s += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]; n++;
        }
      }
      return s / n;
    }
    function read(d) {
      var v = 0;
      for (var i = 0; i < 48; i++) {
        var row = (i / 16) | 0, col = i % 16;
        var plain = mean(d, col * 20, 2 * row * 10), inverse = mean(d, col * 20, (2 * row + 1) * 10);
        if (Math.abs(plain - inverse) < 64) return null;
        v = v * 2 + (plain > inverse ? 1 : 0);
      }
      return v;
    }
    function tick(now, meta) {
      var shown = performance.timeOrigin + meta.expectedDisplayTime;
      ctx.drawImage(video, 0, 0, meta.width, meta.height / 3, 0, 0, 320, 60);
      var stamp = read(ctx.getImageData(0, 0, 320, 60).data);
      g.frames++;
      if (stamp === null) {
        g.unstamped++;
        if (!g.probe) {
          var d = ctx.getImageData(0, 0, 320, 60).data, row = [];
          for (var c = 0; c < 16; c++) row.push(Math.round(mean(d, c * 20, 0)));
          g.probe = { width: meta.width, height: meta.height, row0: row };
        }
      } else g.samples.push(shown - stamp);
      video.requestVideoFrameCallback(tick);
    }
    video.requestVideoFrameCallback(tick);
  }
  document.addEventListener("DOMContentLoaded", install);
})();
"#;

/// Run before `MEASURE` for the standard-HLS run: every `new Hls(config)` of the page gets
/// `lowLatencyMode: false` (the page's other settings kept).
const STANDARD: &str = r#"
(function () {
  var real;
  Object.defineProperty(window, "Hls", {
    configurable: true,
    get: function () { return real; },
    set: function (Hls) {
      if (typeof Hls !== "function") { real = Hls; return; }
      var Standard = function (config) {
        return new Hls(Object.assign({}, config, { lowLatencyMode: false }));
      };
      Object.setPrototypeOf(Standard, Hls);
      Standard.prototype = Hls.prototype;
      real = Standard;
    }
  });
})();
"#;

/// Takes the samples gathered so far: (glass-to-glass ms, frames composed, frames without a
/// stamp, frames the video element dropped).
const DRAIN: &str = "JSON.stringify((function () { var g = window.__g2g || {}; \
    var v = document.getElementById('video'); \
    var out = { samples: (g.samples || []).splice(0), frames: g.frames || 0, \
      unstamped: g.unstamped || 0, unsupported: !!g.unsupported, \
      dropped: v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().droppedVideoFrames : 0, \
      href: location.href, g: !!window.__g2g, text: document.body ? document.body.innerText.slice(0, 300) : null, t: v ? v.currentTime : null, ready: v ? v.readyState : null, \
      w: v ? v.videoWidth : null, first: (g.samples || [])[0] || null, probe: g.probe || null, \
      fatal: (document.getElementById('player') || { dataset: {} }).dataset.fatal || null }; \
    g.frames = 0; g.unstamped = 0; return out; })())";

struct Drained {
    raw: serde_json::Value,
    samples: Vec<f64>,
    frames: u64,
    unstamped: u64,
    dropped: u64,
}

async fn drain(browser: &browser::Browser) -> Drained {
    let text = browser.evaluate(DRAIN).await;
    let value: serde_json::Value = serde_json::from_str(text.as_str().unwrap_or("{}")).unwrap();
    assert!(
        !value["unsupported"].as_bool().unwrap_or(false),
        "this Chromium has no requestVideoFrameCallback"
    );
    assert!(value["fatal"].is_null(), "hls.js failed: {value}");
    Drained {
        raw: value.clone(),
        samples: value["samples"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_f64())
                    .map(|ms| ms / 1000.0)
                    .collect()
            })
            .unwrap_or_default(),
        frames: value["frames"].as_u64().unwrap_or(0),
        unstamped: value["unstamped"].as_u64().unwrap_or(0),
        dropped: value["dropped"].as_u64().unwrap_or(0),
    }
}

/// One player in Chromium for `seconds` after the first stamped frame and `warmup` more:
/// (sorted glass-to-glass seconds, frames composed, frames without a stamp, frames dropped).
async fn watch(url: &str, standard: bool, o: &Options) -> (Vec<f64>, u64, u64, u64) {
    let script = if standard {
        format!("{STANDARD}{MEASURE}")
    } else {
        MEASURE.to_owned()
    };
    let browser = browser::Browser::open_with_script(url, &script).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen = serde_json::Value::Null;
    loop {
        assert!(
            Instant::now() < deadline,
            "no stamped frame on the page within 90 s; the page's player: {seen}"
        );
        let drained = drain(&browser).await;
        if !drained.samples.is_empty() {
            break;
        }
        if drained.raw["frames"].as_u64().unwrap_or(0) > 0 || seen.is_null() {
            seen = drained.raw;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(o.warmup)).await;
    let before = drain(&browser).await.dropped;
    let end = Instant::now() + Duration::from_secs(o.seconds);
    let (mut samples, mut frames, mut unstamped, mut dropped) = (Vec::new(), 0, 0, 0);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let d = drain(&browser).await;
        samples.extend(d.samples);
        frames += d.frames;
        unstamped += d.unstamped;
        dropped = d.dropped - before;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    (samples, frames, unstamped, dropped)
}

fn summary(label: &str, sorted: &[f64]) {
    println!(
        "{label} median {:.3} p95 {:.3} p99 {:.3} min {:.3} max {:.3} (n {})",
        common::percentile(sorted, 0.5),
        common::percentile(sorted, 0.95),
        common::percentile(sorted, 0.99),
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN),
        sorted.len(),
    );
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(o));
}

async fn run(o: Options) {
    amphi::install_crypto_provider();
    amphi::media::init().unwrap();
    let installed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("web/static/vendor/hls.min.js")
        .exists();
    assert!(installed, "the live page's player is missing: make assets");
    let ladder = Ladder {
        preset: o.preset.clone(),
        fps: o.fps,
        ..Ladder::default()
    };
    let camera = capture::CameraLive::start(&ladder, "bench").await;
    let (published, watcher) = capture::watch_parts(&camera.rendition);
    let first_msn = camera.rendition.edge().unwrap().msn + 1;

    // amphi's web server with the live page, on SQLite in a temporary folder.
    let dir = tempfile::tempdir().unwrap();
    let config = amphi::config::Config {
        data_dir: dir.path().to_path_buf(),
        ..amphi::config::Config::default()
    };
    let db = amphi::server::open_database(&config).await.unwrap();
    let state = amphi::server::build_state(config, db, Arc::new(amphi::clock::SystemClock))
        .await
        .unwrap();
    state.lives.insert(Arc::clone(&camera.live));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/live/bench", listener.local_addr().unwrap());
    let app =
        amphi::web::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    eprintln!("live page: {url}");
    println!(
        "latency: preset {}, {} fps, {} run(s) of {} s per player after {} s of warm-up",
        o.preset, o.fps, o.runs, o.seconds, o.warmup
    );
    for (name, standard) in [("low-latency", false), ("standard", true)] {
        for run in 1..=o.runs {
            let (g2g, frames, unstamped, dropped) = watch(&url, standard, &o).await;
            println!(
                "{name} run {run}: {frames} frames composed, {unstamped} without a stamp, {dropped} dropped by the player"
            );
            summary(&format!("glass_to_glass_seconds {name}"), &g2g);
        }
    }
    let last_msn = camera.rendition.edge().unwrap().msn.saturating_sub(1);
    watcher.abort();
    let (frames, capture) =
        capture::capture_latencies(&camera.rendition, &published, first_msn..=last_msn);
    println!(
        "capture: {frames} frames decoded from the segments the origin still holds, {} timed",
        capture.len()
    );
    summary("capture_to_part_seconds", &capture);
    server.abort();
    drop(camera);
}
