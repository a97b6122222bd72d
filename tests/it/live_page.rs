//! The live page in a real browser: headless Chromium (driven over the DevTools protocol)
//! opens `/live/{slug}` served by amphi while the live pipeline publishes, and the video
//! plays: its current time advances by 20 s with no fatal hls.js error. Without the player's
//! files (npm missing at build time) the page must say so instead.

use crate::browser::Browser;
use crate::support::TestApp;
use amphi::config::Config;
use amphi::hls::Live;
use amphi::media::{Ladder, LivePipeline};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const STATE: &str = "JSON.stringify({ \
    t: (document.getElementById('video') || {}).currentTime || 0, \
    fatal: (document.getElementById('player') || {dataset: {}}).dataset.fatal || null, \
    status: (document.getElementById('live-status') || {}).textContent || null, \
    levels: document.querySelectorAll('#quality option').length, \
    unavailable: document.querySelector('.player .note') ? document.querySelector('.player .note').textContent : null })";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_plays_for_twenty_seconds_in_chromium() {
    amphi::install_crypto_provider();
    let mut config = Config::default();
    config.site.title = "Université test".to_owned();
    let app = TestApp::new(config).await;
    let ladder = Ladder {
        preset: "ultrafast".to_owned(),
        fps: 15,
        ..Ladder::default()
    };
    let live = Arc::new(
        Live::new("amphi-a", ladder.variants(), ladder.audio(), ladder.window)
            .with_title("Chimie organique, cours 3"),
    );
    app.state.lives.insert(Arc::clone(&live));
    let addr = crate::support::serve_app(app.state.clone()).await;
    let (events, _events) = tokio::sync::mpsc::unbounded_channel();
    let _pipeline = LivePipeline::start(
        &ladder,
        Arc::clone(&live),
        "Le webinaire va bientôt commencer",
        events,
    )
    .unwrap();
    let segment = live.rendition("720p").unwrap();
    assert_eq!(
        segment.wait_for_segment(0, Duration::from_secs(60)).await,
        amphi::hls::Wait::Ready
    );

    let page = reqwest::get(format!("http://{addr}/live/amphi-a"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Chimie organique, cours 3"), "{html}");
    let embed = reqwest::get(format!("http://{addr}/live/amphi-a/embed"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        embed.contains("id=\"player\"") && !embed.contains("<header"),
        "{embed}"
    );
    assert_eq!(
        reqwest::get(format!("http://{addr}/live/nope"))
            .await
            .unwrap()
            .status(),
        404
    );

    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("web/static/vendor/hls.min.js")
        .exists();
    let browser = Browser::open(&format!("http://{addr}/live/amphi-a")).await;
    if !installed {
        eprintln!("hls.js is not installed (make assets): checking the page says so");
        let state = browser.evaluate(STATE).await;
        let state: serde_json::Value = serde_json::from_str(state.as_str().unwrap()).unwrap();
        assert!(
            state["unavailable"]
                .as_str()
                .unwrap_or_default()
                .contains("player"),
            "{state}"
        );
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first: Option<f64> = None;
    let mut last = serde_json::Value::Null;
    let mut viewers_seen = false;
    loop {
        assert!(
            Instant::now() < deadline,
            "the video did not play 20 s in time: {last}"
        );
        viewers_seen |= live.viewers.load(std::sync::atomic::Ordering::Relaxed) >= 1;
        let state = browser.evaluate(STATE).await;
        let state: serde_json::Value =
            serde_json::from_str(state.as_str().unwrap_or("{}")).unwrap();
        assert!(state["fatal"].is_null(), "fatal hls.js error: {state}");
        let t = state["t"].as_f64().unwrap_or(0.0);
        last = state.clone();
        if t > 0.0 {
            let start = *first.get_or_insert(t);
            if t - start >= 20.0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        last["status"] == "Live" || last["status"] == "En direct",
        "status pushed to the page: {last}"
    );
    assert!(
        last["levels"].as_u64().unwrap() >= 4,
        "auto, 720p, 360p, audio only: {last}"
    );
    assert!(
        viewers_seen,
        "the page's event stream counts it as a viewer"
    );
}

const CHAT: &str = "JSON.stringify({ \
    form: !document.getElementById('chat-form').hidden, \
    nickname: !document.getElementById('chat-nickname').hidden, \
    texts: Array.from(document.querySelectorAll('#chat-messages li .text')).map(e => e.textContent), \
    authors: Array.from(document.querySelectorAll('#chat-messages li .author')).map(e => e.textContent), \
    injected: document.querySelectorAll('#chat-messages b, #chat-messages img').length, \
    status: document.getElementById('chat-status').textContent })";

/// Evaluates [`CHAT`] until `wanted` holds (the page works on its own time); panics after a
/// minute with the last state.
async fn chat_until(
    browser: &Browser,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = browser.evaluate(CHAT).await;
        let state: serde_json::Value =
            serde_json::from_str(state.as_str().unwrap_or("{}")).unwrap_or_default();
        if wanted(&state) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "the chat panel never got there: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_panel_talks_both_ways_and_shows_text_as_text() {
    use super::chat::{connect, offline_meeting, say, teacher};
    use amphi::chat::room::Settings;
    amphi::install_crypto_provider();
    let app = TestApp::new(Config::default()).await;
    let ladder = Ladder::default();
    app.state.lives.insert(Arc::new(
        Live::new("amphi-c", ladder.variants(), ladder.audio(), ladder.window)
            .with_title("Histoire moderne"),
    ));
    let (meeting, api) = offline_meeting();
    let room = app
        .state
        .chat
        .open(
            "amphi-c",
            Settings {
                anonymous: true,
                ..Settings::default()
            },
            app.state.db.clone(),
            super::chat::meeting_for(api, &meeting),
        )
        .await
        .unwrap();
    let addr = crate::support::serve_app(app.state.clone()).await;
    let page = reqwest::get(format!("http://{addr}/live/amphi-c"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"chat-form\""), "{html}");
    let browser = Browser::open(&format!("http://{addr}/live/amphi-c")).await;
    // A guest may write here, with a nickname.
    chat_until(&browser, |s| s["form"] == true && s["nickname"] == true).await;

    // The teacher writes markup: the page shows it as text.
    let mut prof = connect(&room, teacher(), 256);
    prof.welcomed().await;
    prof.send(say("<b>Read</b> chapter 3 <img src=x onerror=alert(1)>"))
        .await;
    let state = chat_until(&browser, |s| {
        s["texts"].as_array().is_some_and(|t| !t.is_empty())
    })
    .await;
    assert_eq!(
        state["texts"][0],
        "<b>Read</b> chapter 3 <img src=x onerror=alert(1)>"
    );
    assert_eq!(
        state["injected"], 0,
        "no element made from a message: {state}"
    );

    // The student answers from the page; the room (and the teacher) get it under the nickname.
    browser
        .evaluate(
            "document.getElementById('chat-nickname').value = 'Zoé'; \
             document.getElementById('chat-text').value = 'Which chapter?'; \
             document.getElementById('chat-form').requestSubmit(); 'sent'",
        )
        .await;
    let question = prof
        .until("message", |e| e["message"]["text"] == "Which chapter?")
        .await;
    assert_eq!(question["message"]["author"], "Zoé");
    let id = question["message"]["id"].as_u64().unwrap();

    // The teacher hides it: it leaves the page.
    prof.send(serde_json::json!({"type": "hide", "id": id}))
        .await;
    chat_until(&browser, |s| {
        s["texts"].as_array().is_some_and(|t| t.len() == 1) && s["authors"][0] == "Prof. Curie"
    })
    .await;
    // The chat is turned off: the page's form goes and it says why.
    prof.send(serde_json::json!({"type": "enable", "enabled": false}))
        .await;
    let off = chat_until(&browser, |s| s["form"] == false).await;
    assert!(
        off["status"] == "The chat is turned off." || off["status"] == "Le chat est fermé.",
        "{off}"
    );
}

/// The colour at `(x, y)` (fractions of the width and height) of a PNG, and the share of its
/// pixels that are near black.
fn png_colour_and_black(png: &[u8], x: f64, y: f64) -> ([u8; 3], f64) {
    use gst_video::prelude::VideoFrameExt;
    let samples = crate::support::media::decode_bytes(
        png,
        "pngparse ! pngdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=out sync=false",
    );
    let sample = samples.first().expect("the screenshot decodes");
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().unwrap(), &info)
        .unwrap();
    let (width, height) = (info.width() as usize, info.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    let at = |px: usize, py: usize| {
        let i = py * stride + px * 3;
        [data[i], data[i + 1], data[i + 2]]
    };
    let mut black = 0usize;
    for py in (0..height).step_by(4) {
        for px in (0..width).step_by(4) {
            if at(px, py).iter().all(|c| *c < 24) {
                black += 1;
            }
        }
    }
    let total = height.div_ceil(4) * width.div_ceil(4);
    let colour = at(
        ((width as f64 * x) as usize).min(width - 1),
        ((height as f64 * y) as usize).min(height - 1),
    );
    (colour, black as f64 / total as f64)
}

/// A webinar captured by amphi from the simulator, in Chromium: the screenshot of the player
/// shows the presenter's slide (its colour, read from the picture), not a black box. It is
/// kept in `target/screenshots/webinar-live.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webinar_live_page_shows_the_slide_in_chromium() {
    use super::webinar::{presenter_arrives, schedule, segment_ready, stack, teacher};
    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("web/static/vendor/hls.min.js")
        .exists();
    if !installed {
        eprintln!("skipped: hls.js is not installed (make assets)");
        return;
    }
    let db = crate::support::TestDb::sqlite().await;
    let super::webinar::Stack { mut app, sim, .. } = stack(&db).await;
    let (_, token) = teacher(&app, "curie").await;
    let (id, slug) = schedule(&mut app, &token).await;
    let (status, body) = super::webinar::call(
        &mut app,
        "POST",
        &format!("/api/v1/meetings/{id}/live/start"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    presenter_arrives(&sim, &slug);
    segment_ready(&app, &slug, 3).await;
    let addr = crate::support::serve_app(app.state.clone()).await;
    let browser = Browser::open(&format!("http://{addr}/live/{slug}")).await;

    // Playing: the current time advances by a few seconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first = None;
    loop {
        let state: serde_json::Value =
            serde_json::from_str(browser.evaluate(STATE).await.as_str().unwrap_or("{}")).unwrap();
        assert!(state["fatal"].is_null(), "fatal hls.js error: {state}");
        assert!(Instant::now() < deadline, "the video did not play: {state}");
        let t = state["t"].as_f64().unwrap_or(0.0);
        if t > 0.0 && t - *first.get_or_insert(t) >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let rect = browser
        .evaluate(
            "(() => { const r = document.getElementById('video').getBoundingClientRect();              return {x: r.x, y: r.y, width: r.width, height: r.height}; })()",
        )
        .await;
    let shot = browser
        .command(
            "Page.captureScreenshot",
            serde_json::json!({ "format": "png", "clip": {
                "x": rect["x"], "y": rect["y"], "width": rect["width"], "height": rect["height"], "scale": 1
            }}),
        )
        .await;
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("a screenshot"))
        .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("webinar-live.png"), &png).unwrap();
    // Near the top left corner, where the slide fills the picture (the presenter's camera
    // sits in the bottom right corner).
    let (colour, black) = png_colour_and_black(&png, 0.08, 0.12);
    assert!(
        black < 0.5,
        "mostly black: {:.0} % of the player",
        black * 100.0
    );
    let slide = amphi::sim::slides::page_rgb(1);
    let far = colour
        .iter()
        .zip(slide)
        .any(|(a, b)| (i16::from(*a) - i16::from(b)).abs() > 32);
    assert!(
        !far,
        "the slide's colour {slide:?} in the player, saw {colour:?}"
    );
}
