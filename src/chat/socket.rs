//! One audience connection: moves frames between a WebSocket and its room, nothing else. It is
//! generic over the socket's two halves ([`SocketIn`] items in, [`SocketOut`] items out), so the
//! web handler plugs axum's WebSocket in and tests plug channels in.
//!
//! Frames for everyone and answers for this connection are written as they come; under load,
//! whatever is already queued is written in one go (one flush). A connection whose queue
//! overflowed (the room dropped it), that stopped answering pings, or that sends oversized
//! frames twice is closed with a code saying why.

use super::hub::{Frame, HubError, RoomHandle};
use super::protocol::{self, ErrorCode, FrameError, ServerEvent};
use super::room::Member;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::time::Duration;
use tokio::sync::broadcast;

/// What the socket received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketIn {
    Text(String),
    Binary,
    Pong,
    Close,
}

/// What to write on the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketOut {
    Text(Frame),
    Ping,
    Close { code: u16, reason: &'static str },
}

/// Close codes (RFC 6455).
pub mod close {
    /// The live ended or the room closed.
    pub const GOING_AWAY: u16 = 1001;
    /// Oversized frames, twice.
    pub const TOO_BIG: u16 = 1009;
    /// The connection fell behind and was dropped.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// No answer to pings.
    pub const POLICY: u16 = 1008;
}

/// Timing of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Keepalive {
    /// A ping after this long without anything from the client…
    pub ping_every: Duration,
    /// …and the connection is closed after this long without anything at all.
    pub timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Self {
            ping_every: Duration::from_secs(30),
            timeout: Duration::from_secs(75),
        }
    }
}

/// Frames written in one flush at most.
const BATCH: usize = 64;

fn error(code: ErrorCode, reason: &str) -> SocketOut {
    SocketOut::Text(
        protocol::encode(&ServerEvent::Error {
            code,
            reason: reason.to_owned(),
        })
        .into(),
    )
}

/// Serves one connection until either side ends it.
pub async fn serve<O, I>(
    mut out: O,
    mut input: I,
    room: RoomHandle,
    member: Member,
    keepalive: Keepalive,
) where
    O: Sink<SocketOut> + Unpin,
    I: Stream<Item = SocketIn> + Unpin,
{
    let Ok(joined) = room.join(member.clone()).await else {
        let _ = out
            .send(SocketOut::Close {
                code: close::GOING_AWAY,
                reason: "this live has no chat",
            })
            .await;
        return;
    };
    let conn = joined.conn;
    let mut events = joined.events;
    let mut replies = joined.replies;
    for frame in joined.first {
        if out.feed(SocketOut::Text(frame)).await.is_err() {
            room.leave(conn);
            return;
        }
    }
    let _ = out.flush().await;
    let mut oversized = 0;
    let mut last_heard = tokio::time::Instant::now();
    let mut ping =
        tokio::time::interval_at(last_heard + keepalive.ping_every, keepalive.ping_every);
    let ending: Option<SocketOut> = loop {
        tokio::select! {
            received = input.next() => {
                last_heard = tokio::time::Instant::now();
                let text = match received {
                    None | Some(SocketIn::Close) => break None,
                    Some(SocketIn::Pong) => continue,
                    Some(SocketIn::Binary) => {
                        let _ = out.send(error(ErrorCode::BadFrame, "Frames are JSON text.")).await;
                        continue;
                    }
                    Some(SocketIn::Text(text)) => text,
                };
                let answer = match protocol::parse(&text) {
                    Ok(frame) => match room.frame(conn, member.clone(), frame, crate::clock::unix_ms()) {
                        Ok(()) => None,
                        Err(HubError::Busy) => Some(error(ErrorCode::RateLimited, "The chat is busy; try again in a moment.")),
                        Err(HubError::NoRoom) => break Some(SocketOut::Close { code: close::GOING_AWAY, reason: "the chat is closed" }),
                    },
                    Err(FrameError::TooLarge) => {
                        oversized += 1;
                        if oversized >= 2 {
                            break Some(SocketOut::Close { code: close::TOO_BIG, reason: "frames too large" });
                        }
                        Some(error(ErrorCode::TooLong, "This frame is too large."))
                    }
                    Err(e) => Some(error(ErrorCode::BadFrame, &e.to_string())),
                };
                if let Some(answer) = answer
                    && out.send(answer).await.is_err()
                {
                    break None;
                }
            }
            event = events.recv() => {
                let frame = match event {
                    Ok(frame) => frame,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        break Some(SocketOut::Close { code: close::TRY_AGAIN_LATER, reason: "too slow" });
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        break Some(SocketOut::Close { code: close::GOING_AWAY, reason: "the chat is closed" });
                    }
                };
                if out.feed(SocketOut::Text(frame)).await.is_err() {
                    break None;
                }
                // Whatever else is already waiting goes in the same write.
                let mut written = 1;
                while written < BATCH {
                    match events.try_recv() {
                        Ok(frame) => {
                            if out.feed(SocketOut::Text(frame)).await.is_err() {
                                break;
                            }
                            written += 1;
                        }
                        Err(_) => break,
                    }
                }
                if out.flush().await.is_err() {
                    break None;
                }
            }
            reply = replies.recv() => {
                let Some(frame) = reply else {
                    break Some(SocketOut::Close { code: close::TRY_AGAIN_LATER, reason: "too slow" });
                };
                if out.send(SocketOut::Text(frame)).await.is_err() {
                    break None;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() >= keepalive.timeout {
                    break Some(SocketOut::Close { code: close::POLICY, reason: "no answer to pings" });
                }
                if out.send(SocketOut::Ping).await.is_err() {
                    break None;
                }
            }
        }
    };
    room.leave(conn);
    if let Some(ending) = ending {
        let _ = out.send(ending).await;
    }
    let _ = out.close().await;
}
