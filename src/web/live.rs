//! The live page (`/live/{slug}`), its embeddable player (`/live/{slug}/embed`, for an iframe
//! in Pod's live page) and the event stream that pushes the live's status and the number of
//! open pages (`/live/{slug}/events`, server-sent events). The player is hls.js, served by
//! amphi from `web/static/vendor/` (obtained with npm at build time); without it the page says
//! the player is unavailable.

use super::pages::html;
use super::{AppError, AppState, RequestContext};
use crate::hls::{Live, LiveStatus, Lookup};
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Whether the front-end build put hls.js in place.
pub(super) fn player_available() -> bool {
    super::StaticFiles::get("vendor/hls.min.js").is_some()
}

/// The webinar behind a live, if it is one: restricted webinars are for signed-in users.
async fn webinar(
    state: &AppState,
    ctx: &RequestContext,
    slug: &str,
) -> Result<Option<(crate::db::StoredLive, crate::db::Meeting)>, AppError> {
    let Some(stored) = state.db.live_by_slug(slug).await? else {
        return Ok(None);
    };
    let Some(meeting) = state.db.meeting(stored.meeting_id).await? else {
        return Ok(None);
    };
    if meeting.fields.is_restricted && ctx.user.is_none() {
        return Err(AppError::LoginRequired {
            next: format!("/live/{slug}"),
        });
    }
    Ok(Some((stored, meeting)))
}

async fn page(
    state: &AppState,
    ctx: &RequestContext,
    slug: &str,
    template: &str,
) -> Result<Html<String>, AppError> {
    let webinar = webinar(state, ctx, slug).await?;
    let (title, status) = match (state.lives.lookup(slug), &webinar) {
        (Lookup::Live(live), _) => (live.title.clone(), live.status()),
        // Known, not captured here (yet): the page waits for it.
        (_, Some((stored, meeting))) => (
            meeting.fields.name.clone(),
            match stored.state {
                crate::db::LiveState::Stopped => LiveStatus::Ended,
                _ => LiveStatus::Waiting,
            },
        ),
        _ => return Err(AppError::NotFound),
    };
    let chat = webinar.as_ref().is_none_or(|(_, m)| m.fields.enable_chat);
    html(
        state,
        ctx,
        template,
        context! {
            live => context! {
                slug => slug,
                title => title,
                status => status,
                playlist => format!("/live/{slug}/hls/master.m3u8"),
            },
            chat => chat,
            player_available => player_available(),
        },
    )
}

pub async fn live_page(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(slug): Path<String>,
) -> Result<Html<String>, AppError> {
    page(&state, &ctx, &slug, "live/page.html").await
}

pub async fn embed(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(slug): Path<String>,
) -> Result<Html<String>, AppError> {
    page(&state, &ctx, &slug, "live/embed.html").await
}

/// Counts an open page for as long as its stream lives.
struct Watching(Arc<Live>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How often the stream looks at the live.
const TICK: Duration = Duration::from_secs(1);

/// `GET /live/{slug}/events`: `status` events (`{"status", "viewers"}`) whenever either changes.
/// A webinar's live that has not started here yet is `waiting` until its capture begins.
pub async fn events(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let webinar = webinar(&state, &ctx, &slug).await?;
    let watch = |live: Arc<Live>| {
        live.viewers.fetch_add(1, Ordering::Relaxed);
        Watching(live)
    };
    let watching = match state.lives.lookup(&slug) {
        Lookup::Live(live) => Some(watch(live)),
        _ if webinar.is_some() => None,
        _ => return Err(AppError::NotFound),
    };
    let lives = state.lives.clone();
    let stream = futures_util::stream::unfold(
        (watching, None::<(LiveStatus, usize)>),
        move |(mut watching, last)| {
            let (lives, slug) = (lives.clone(), slug.clone());
            async move {
                loop {
                    if watching.is_none()
                        && let Lookup::Live(live) = lives.lookup(&slug)
                    {
                        watching = Some(watch(live));
                    }
                    let now = match &watching {
                        Some(w) => (w.0.status(), w.0.viewers.load(Ordering::Relaxed)),
                        None => (LiveStatus::Waiting, 0),
                    };
                    if last != Some(now) {
                        let data = serde_json::json!({ "status": now.0, "viewers": now.1 });
                        let event = Event::default().event("status").data(data.to_string());
                        return Some((Ok::<_, Infallible>(event), (watching, Some(now))));
                    }
                    tokio::time::sleep(TICK).await;
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `GET /live/{slug}/chat`: the audience chat's WebSocket (`docs/ref/chat-protocol.md`).
/// Signed-in users write under their name; others read, and write with a nickname where the
/// webinar allows it.
pub async fn chat(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(slug): Path<String>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Result<Response, AppError> {
    use crate::chat::room::Member;
    // A restricted webinar's chat is for signed-in users, as its page is.
    webinar(&state, &ctx, &slug).await?;
    let room = match state.chat.room_or_relay(&slug).await {
        Ok(Some(room)) => room,
        Ok(None) => return Err(AppError::NotFound),
        Err(_) => {
            return Err(AppError::Unavailable(super::Msg::new(
                "live.chat_unavailable",
            )));
        }
    };
    let admitted = state
        .chat
        .admit(ctx.client_ip)
        .ok_or_else(|| AppError::Unavailable(super::Msg::new("live.chat_full")))?;
    let member = match &ctx.user {
        Some(user) => Member {
            key: format!("user:{}", user.id),
            name: Some(user.shown_name().to_owned()),
            moderator: room.is_moderator(&format!("user:{}", user.id)) || user.is_superuser,
        },
        None => {
            // Stable for this browser (its CSRF token derives from its own cookie).
            use sha2::Digest;
            let digest = sha2::Sha256::digest(ctx.csrf_token.as_bytes());
            Member {
                key: format!("guest:{}", hex::encode(&digest[..8])),
                name: None,
                moderator: false,
            }
        }
    };
    Ok(upgrade
        // Larger frames than a chat frame are refused by the socket itself; up to twice the
        // limit, the chat answers with an error first.
        .max_message_size(crate::chat::protocol::MAX_FRAME_BYTES * 2)
        // Chat frames are small: buffers sized for them, not the 128 KiB defaults, keep a
        // connection to a few kilobytes (ten thousand of them per live).
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| async move {
            use crate::chat::socket::{self, SocketIn, SocketOut};
            use axum::extract::ws::{CloseFrame, Message};
            use futures_util::{SinkExt, StreamExt, future::ready};
            let (sink, stream) = socket.split();
            let out = sink.with(|out: SocketOut| {
                ready(Ok::<_, axum::Error>(match out {
                    SocketOut::Text(frame) => Message::Text(frame.as_ref().into()),
                    SocketOut::Ping => Message::Ping(Default::default()),
                    SocketOut::Close { code, reason } => Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })),
                }))
            });
            let input = stream.filter_map(|received| {
                ready(match received {
                    Ok(Message::Text(text)) => Some(SocketIn::Text(text.to_string())),
                    Ok(Message::Binary(_)) => Some(SocketIn::Binary),
                    Ok(Message::Pong(_) | Message::Ping(_)) => Some(SocketIn::Pong),
                    Ok(Message::Close(_)) | Err(_) => Some(SocketIn::Close),
                })
            });
            socket::serve(
                Box::pin(out),
                Box::pin(input),
                room,
                member,
                socket::Keepalive::default(),
            )
            .await;
            drop(admitted);
        }))
}
