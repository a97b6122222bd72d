//! HTTP for the origin: `/live/{slug}/hls/master.m3u8`, `/live/{slug}/hls/{rendition}/index.m3u8`
//! (blocking reloads with `_HLS_msn` / `_HLS_part`, delta updates with `_HLS_skip=YES`) and the
//! init segments, segments and parts beside it. Media is immutable (a CDN may keep it for a
//! year), playlists are cached briefly, every answer allows cross-origin players, and lives
//! that are over answer 410.

use super::{Live, Lives, Lookup, Position, Rendition, Wait};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use std::sync::Arc;

/// The origin's routes (no session, no CSRF: public media, cheap per request).
pub fn router(lives: Lives) -> Router {
    Router::new()
        .route("/live/{slug}/hls/master.m3u8", get(master))
        .route("/live/{slug}/hls/{rendition}/{file}", get(file))
        .with_state(lives)
}

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn answer(status: StatusCode, content_type: &str, cache: &str, body: Body) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn error(status: StatusCode, text: &'static str) -> Response {
    answer(
        status,
        "text/plain; charset=utf-8",
        "no-cache",
        Body::from(text),
    )
}

fn live(lives: &Lives, slug: &str) -> Result<Arc<Live>, (StatusCode, &'static str)> {
    match lives.lookup(slug) {
        Lookup::Live(live) => Ok(live),
        Lookup::Gone => Err((StatusCode::GONE, "This live is over.\n")),
        Lookup::Unknown => Err((StatusCode::NOT_FOUND, "No such live.\n")),
    }
}

async fn master(State(lives): State<Lives>, Path(slug): Path<String>) -> Response {
    match live(&lives, &slug) {
        Ok(live) => answer(
            StatusCode::OK,
            PLAYLIST,
            "public, max-age=2",
            Body::from(live.multivariant()),
        ),
        Err((status, text)) => error(status, text),
    }
}

/// The LL-HLS query of a media playlist request.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Delivery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<String>,
    #[serde(rename = "_HLS_part")]
    part: Option<String>,
    #[serde(rename = "_HLS_skip")]
    skip: Option<String>,
}

async fn file(
    State(lives): State<Lives>,
    Path((slug, rendition, file)): Path<(String, String, String)>,
    Query(delivery): Query<Delivery>,
) -> Response {
    let live = match live(&lives, &slug) {
        Ok(live) => live,
        Err((status, text)) => return error(status, text),
    };
    let Some(rendition) = live.rendition(&rendition) else {
        return error(StatusCode::NOT_FOUND, "No such rendition.\n");
    };
    let audio = rendition.name == live.audio.name;
    let media_type = if audio { "audio/mp4" } else { "video/mp4" };
    if file == "index.m3u8" {
        return playlist(&rendition, &delivery).await;
    }
    let timeout = rendition.target_duration() * 3;
    if let Some(generation) = parse(&file, "init-", ".mp4") {
        return match u32::try_from(generation)
            .ok()
            .and_then(|g| rendition.init(g))
        {
            Some(data) => answer(StatusCode::OK, media_type, IMMUTABLE, Body::from(data)),
            None => error(StatusCode::NOT_FOUND, "No such init segment.\n"),
        };
    }
    if let Some(msn) = parse(&file, "seg-", ".m4s") {
        if rendition.segment(msn).is_none() {
            // The segment being made (or the next one): answered when complete.
            rendition.wait_for_segment(msn, timeout).await;
        }
        return match rendition.segment(msn) {
            Some(parts) => chained(media_type, parts),
            None => error(StatusCode::NOT_FOUND, "No such segment.\n"),
        };
    }
    if let Some(rest) = file
        .strip_prefix("part-")
        .and_then(|f| f.strip_suffix(".m4s"))
        && let Some((msn, part)) = rest.split_once('.')
        && let (Ok(msn), Ok(part)) = (msn.parse::<u64>(), part.parse::<usize>())
    {
        if rendition.part(msn, part).is_none() {
            // The preload hint names the next part before it exists: hold the request.
            rendition.wait_for(Position { msn, part }, timeout).await;
        }
        return match rendition.part(msn, part) {
            Some(data) => answer(StatusCode::OK, media_type, IMMUTABLE, Body::from(data)),
            None => error(StatusCode::NOT_FOUND, "No such part.\n"),
        };
    }
    error(StatusCode::NOT_FOUND, "No such file.\n")
}

fn parse(file: &str, prefix: &str, suffix: &str) -> Option<u64> {
    file.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// A segment sent as its parts' buffers one after the other, without copying them.
fn chained(media_type: &str, parts: Vec<Bytes>) -> Response {
    let length: usize = parts.iter().map(Bytes::len).sum();
    let stream = futures_util::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>));
    let mut response = answer(
        StatusCode::OK,
        media_type,
        IMMUTABLE,
        Body::from_stream(stream),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

async fn playlist(rendition: &Rendition, delivery: &Delivery) -> Response {
    let skip = delivery
        .skip
        .as_deref()
        .is_some_and(|s| s == "YES" || s == "v2");
    let blocking = delivery.msn.is_some();
    if let Some(msn) = &delivery.msn {
        let Ok(msn) = msn.parse::<u64>() else {
            return error(StatusCode::BAD_REQUEST, "_HLS_msn must be a number.\n");
        };
        let part = match delivery.part.as_deref().map(str::parse::<usize>) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                return error(StatusCode::BAD_REQUEST, "_HLS_part must be a number.\n");
            }
        };
        let timeout = rendition.target_duration() * 3;
        let waited = match part {
            Some(part) => rendition.wait_for(Position { msn, part }, timeout).await,
            None => rendition.wait_for_segment(msn, timeout).await,
        };
        match waited {
            Wait::Ready => {}
            Wait::TooFar => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "_HLS_msn is more than two segments ahead of the live edge.\n",
                );
            }
            Wait::TimedOut => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The requested part did not arrive in time.\n",
                );
            }
        }
    } else if delivery.part.is_some() {
        return error(StatusCode::BAD_REQUEST, "_HLS_part needs _HLS_msn.\n");
    }
    // A blocking request names a future state: its answer never changes, so it may be cached
    // longer than a plain reload.
    let cache = if blocking {
        "public, max-age=6"
    } else {
        "public, max-age=1"
    };
    answer(
        StatusCode::OK,
        PLAYLIST,
        cache,
        Body::from(rendition.playlist(skip)),
    )
}
