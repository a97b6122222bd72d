//! The simulated meeting's presentation: five pages served where BBB serves them
//! (`/bigbluebutton/presentation/{meeting}/{meeting}/{presentation}/{svg|png}/{page}`), the
//! SVG drawn on the fly, the PNG rendered with GStreamer at first use (real images for the
//! pipeline to compose).

use super::state::SimState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use std::time::Duration;

/// Pages of the presentation.
pub const PAGES: u32 = 5;
/// The presentation's id.
pub const PRESENTATION_ID: &str = "sim-presentation";
/// Page size in BBB's units (the slide's pixels).
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 720;

/// `{svg,png}` URL of a page.
pub fn page_url(base_url: &str, internal_meeting_id: &str, kind: &str, page: u32) -> String {
    format!(
        "{base_url}/bigbluebutton/presentation/{internal_meeting_id}/{internal_meeting_id}/{PRESENTATION_ID}/{kind}/{page}"
    )
}

/// The background colour of a page (the same in its SVG and its PNG), so that a test can tell
/// from a decoded picture which page is on screen.
pub fn page_rgb(page: u32) -> [u8; 3] {
    const COLOURS: [[u8; 3]; 5] = [
        [0x2c, 0x4a, 0x6e],
        [0xe8, 0xc5, 0x47],
        [0x3f, 0x8f, 0x5a],
        [0xc2, 0x4b, 0x3a],
        [0x8a, 0x6f, 0xc9],
    ];
    COLOURS[(page.max(1) as usize - 1) % COLOURS.len()]
}

/// The SVG of a page.
pub fn svg(page: u32) -> String {
    let [r, g, b] = page_rgb(page);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">\
         <rect width=\"100%\" height=\"100%\" fill=\"rgb({r},{g},{b})\"/>\
         <text x=\"80\" y=\"200\" font-family=\"sans-serif\" font-size=\"96\" fill=\"#1d2430\">Slide {page} / {PAGES}</text>\
         <text x=\"80\" y=\"320\" font-family=\"sans-serif\" font-size=\"40\" fill=\"#5b6677\">BBB simulator presentation</text></svg>"
    )
}

async fn png(dir: PathBuf, page: u32) -> Result<PathBuf, String> {
    let path = dir.join(format!("slide-{page}.png"));
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.len() > 0) {
        return Ok(path);
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let partial = dir.join(format!(
        "slide-{page}.png.{}.part",
        super::state::random_alnum(12)
    ));
    let [r, g, b] = page_rgb(page);
    let pipeline = format!(
        "videotestsrc num-buffers=1 pattern=solid-color foreground-color=0xff{r:02x}{g:02x}{b:02x} \
         ! video/x-raw,width={WIDTH},height={HEIGHT} ! textoverlay text=\"Slide {page} / {PAGES}\" \
         font-desc=\"Sans 64\" valignment=center halignment=center ! pngenc ! filesink location={}",
        partial.display()
    );
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("gst-launch-1.0 -q {pipeline}"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| "gst-launch-1.0 took more than a minute".to_owned())?
    .map_err(|e| format!("cannot run gst-launch-1.0: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "gst-launch-1.0 failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|e| format!("cannot move the slide into place: {e}"))?;
    Ok(path)
}

/// `GET /bigbluebutton/presentation/{meeting}/{meeting2}/{presentation}/{kind}/{page}`.
pub async fn page(
    State(state): State<SimState>,
    Path((meeting, _again, presentation, kind, page)): Path<(String, String, String, String, u32)>,
) -> Response {
    let (known, svg_only) = {
        let inner = state.lock();
        let known = inner.meetings.values().any(|m| m.internal_id == meeting);
        (known, inner.svg_only)
    };
    if !known
        || (svg_only && kind == "png")
        || presentation != PRESENTATION_ID
        || !(1..=PAGES).contains(&page)
    {
        return (StatusCode::NOT_FOUND, "no such page\n").into_response();
    }
    match kind.as_str() {
        "svg" => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            )],
            svg(page),
        )
            .into_response(),
        "png" => {
            let dir = state
                .options
                .media_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("amphi-sim-media"));
            match png(dir, page).await {
                Ok(path) => match tokio::fs::read(path).await {
                    Ok(bytes) => (
                        [(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))],
                        bytes,
                    )
                        .into_response(),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
                },
                Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
            }
        }
        _ => (StatusCode::NOT_FOUND, "no such page\n").into_response(),
    }
}
