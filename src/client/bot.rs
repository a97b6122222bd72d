//! The bot's shell: joins BBB as a moderator bot through the API, opens the GraphQL WebSocket
//! with the session cookie and the subprotocol, and runs the [`Session`] state machine over it,
//! moving bytes and time, nothing else. The meeting state is published on a `watch` channel
//! and each change on a `broadcast` channel; chat and leaving are commands.

use super::protocol::SUBPROTOCOL;
use super::session::{Credentials, Input, Output, Session, StopReason};
use super::state::{Change, MeetingState};
use crate::bbb::{self, BbbApi, JoinParams, Role};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;

/// Who the bot is in the meeting.
#[derive(Debug, Clone)]
pub struct BotOptions {
    pub meeting_id: String,
    /// Shown in BBB's user list ("Live stream").
    pub display_name: String,
    /// Stable external user id, one per live.
    pub user_id: String,
}

/// Why the bot could not start.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("the bot could not join: {0}")]
    Join(#[from] bbb::Error),
    #[error("the BBB server announces no GraphQL endpoint (BBB 3.0 or later is needed)")]
    NoGraphql,
}

/// Commands to a running bot.
#[derive(Debug, Clone)]
pub enum Command {
    SendChat(String),
    Leave,
}

/// A running bot.
pub struct Bot {
    pub state: watch::Receiver<MeetingState>,
    /// What the join gave (the media bridge uses the same session); `None` for a session
    /// started with given credentials.
    pub joined: Option<bbb::BotJoin>,
    cookie: Option<crate::redact::Redacted<String>>,
    changes: broadcast::Sender<Change>,
    commands: mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<StopReason>,
}

impl Bot {
    /// The session cookie, for the slide images ([`super::slides::SlideCache`]).
    pub fn session_cookie(&self) -> Option<crate::redact::Redacted<String>> {
        self.cookie.clone()
    }

    /// Every change from now on.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Posts in the public chat (queued until the bot is in the meeting).
    pub async fn send_chat(&self, text: &str) {
        let _ = self.commands.send(Command::SendChat(text.to_owned())).await;
    }

    /// Leaves the meeting and waits for the session to end.
    pub async fn leave(self) -> StopReason {
        let _ = self.commands.send(Command::Leave).await;
        self.task.await.unwrap_or(StopReason::GaveUp)
    }

    /// Waits for the session to end by itself (meeting over, refused).
    pub async fn finished(self) -> StopReason {
        self.task.await.unwrap_or(StopReason::GaveUp)
    }
}

/// Joins the meeting and starts the bot.
pub async fn start(api: Arc<dyn BbbApi>, options: BotOptions) -> Result<Bot, BotError> {
    let version = api.api_version().await?;
    let url = version
        .graphql_websocket_url
        .filter(|u| !u.is_empty())
        .ok_or(BotError::NoGraphql)?;
    let joined = api
        .join_bot(&JoinParams {
            meeting_id: options.meeting_id.clone(),
            full_name: options.display_name.clone(),
            role: Role::Moderator,
            user_id: Some(options.user_id.clone()),
            create_time: None,
            avatar_url: None,
            bot: true,
        })
        .await?;
    let credentials = Credentials {
        session_token: joined.session_token.clone(),
        auth_token: joined.auth_token.clone(),
        client_session_uuid: crate::accounts::random_chars(b"0123456789abcdef", 32),
    };
    let cookie = joined.jsessionid.as_ref().map(|c| c.expose().clone());
    let joined_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut bot = start_session(url, cookie, Session::new(credentials, &joined_at));
    bot.joined = Some(joined);
    Ok(bot)
}

/// Runs a session over a WebSocket to `url` (tests start sessions with forged credentials).
pub fn start_session(url: String, cookie: Option<String>, session: Session) -> Bot {
    let (state_tx, state) = watch::channel(MeetingState::default());
    let (changes, _) = broadcast::channel(1024);
    let (commands, command_rx) = mpsc::channel(256);
    let kept = cookie.clone().map(crate::redact::Redacted::new);
    let task = tokio::spawn(run(
        url,
        cookie,
        session,
        state_tx,
        changes.clone(),
        command_rx,
    ));
    Bot {
        state,
        joined: None,
        cookie: kept,
        changes,
        commands,
        task,
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, cookie: Option<&str>) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    if let Some(cookie) = cookie
        && let Ok(value) = HeaderValue::from_str(&format!("JSESSIONID={cookie}"))
    {
        headers.insert("Cookie", value);
    }
    let connecting = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(Duration::from_secs(15), connecting).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connection timed out".to_owned()),
    }
}

async fn run(
    url: String,
    cookie: Option<String>,
    mut session: Session,
    state: watch::Sender<MeetingState>,
    changes: broadcast::Sender<Change>,
    mut commands: mpsc::Receiver<Command>,
) -> StopReason {
    crate::install_crypto_provider();
    let mut socket: Option<Socket> = None;
    loop {
        while let Some(output) = session.poll_output() {
            match output {
                Output::Connect => match connect(&url, cookie.as_deref()).await {
                    Ok(s) => {
                        socket = Some(s);
                        session.handle(Instant::now(), Input::Connected);
                    }
                    Err(reason) => {
                        session.handle(Instant::now(), Input::Closed { code: None, reason })
                    }
                },
                Output::Send(frame) => {
                    if let Some(s) = socket.as_mut()
                        && let Err(e) = s.send(Message::text(frame.to_text())).await
                    {
                        socket = None;
                        session.handle(
                            Instant::now(),
                            Input::Closed {
                                code: None,
                                reason: e.to_string(),
                            },
                        );
                    }
                }
                Output::Close => {
                    if let Some(mut s) = socket.take() {
                        let _ = s.close(None).await;
                        if !session.is_stopped() {
                            session.handle(
                                Instant::now(),
                                Input::Closed {
                                    code: None,
                                    reason: "closed by the bot".to_owned(),
                                },
                            );
                        }
                    }
                }
                Output::Change(change) => {
                    state.send_replace(session.state().clone());
                    let _ = changes.send(change);
                }
                Output::Stopped(reason) => {
                    tracing::info!(?reason, "bot stopped");
                    state.send_replace(session.state().clone());
                    return reason;
                }
            }
        }
        let timer = session.next_timer();
        let sleep = async {
            match timer {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            frame = async {
                match socket.as_mut() {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            } => {
                let input = match frame {
                    Some(Ok(Message::Text(text))) => Input::Frame(text.to_string()),
                    Some(Ok(Message::Close(close))) => {
                        socket = None;
                        Input::Closed {
                            code: close.as_ref().map(|c| u16::from(c.code)),
                            reason: close.map(|c| c.reason.to_string()).unwrap_or_default(),
                        }
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        socket = None;
                        Input::Closed { code: None, reason: e.to_string() }
                    }
                    None => {
                        socket = None;
                        Input::Closed { code: None, reason: "socket closed".to_owned() }
                    }
                };
                session.handle(Instant::now(), input);
            }
            command = commands.recv() => {
                let input = match command {
                    Some(Command::SendChat(text)) => Input::SendChat(text),
                    Some(Command::Leave) | None => Input::Leave,
                };
                session.handle(Instant::now(), input);
            }
            () = sleep => session.handle(Instant::now(), Input::Tick),
        }
    }
}
