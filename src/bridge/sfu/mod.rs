//! The bbb-webrtc-sfu bridge: one WebSocket and one receive-only peer per subscription, as
//! BBB's own client opens one socket per audio and screenshare session. Each subscription is
//! a [`Session`] state machine run by a thin shell (this module) that moves frames, SDP,
//! candidates and time, and nothing else.

mod errors;
pub mod peer;
pub mod protocol;
pub mod session;

pub use errors::SfuCode;
pub use peer::{IceServer, PeerSettings};
pub use session::{Identity, Input, Output, Session, Timing};

use super::{Control, Event, Item, Media, MediaBridge, QUEUE, Subscription};
use crate::redact::Redacted;
use futures_util::{SinkExt, StreamExt};
use peer::{PeerEvent, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::{Message, WebSocketConfig};

/// How to reach the SFU as the bot.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// `wss://HOST/bbb-webrtc-sfu` (see [`sfu_url`]).
    pub url: String,
    pub session_token: Redacted<String>,
    /// The `JSESSIONID` of the bot's join.
    pub cookie: Option<Redacted<String>>,
    pub identity: Identity,
    pub peer: PeerSettings,
    pub timing: Timing,
}

impl SfuConfig {
    /// The configuration for the bot that `joined`, shown as `user_name` (the bridge uses the
    /// bot's own session): see [`SfuConfig::discover`].
    pub async fn for_bot(
        api: &dyn crate::bbb::BbbApi,
        api_url: &str,
        joined: &crate::bbb::BotJoin,
        user_name: &str,
        udp_addrs: Vec<String>,
    ) -> Result<Self, crate::bbb::Error> {
        Self::discover(
            api,
            api_url,
            joined.session_token.clone(),
            joined.jsessionid.clone(),
            Identity {
                user_name: user_name.to_owned(),
                user_id: joined.user_id.clone(),
            },
            udp_addrs,
        )
        .await
    }

    /// The configuration for a bot that joined with `session_token` and `cookie`: the SFU's
    /// address next to the API, and the STUN/TURN servers `stuns` gives that session.
    pub async fn discover(
        api: &dyn crate::bbb::BbbApi,
        api_url: &str,
        session_token: Redacted<String>,
        cookie: Option<Redacted<String>>,
        identity: Identity,
        udp_addrs: Vec<String>,
    ) -> Result<Self, crate::bbb::Error> {
        let url = sfu_url(api_url).ok_or_else(|| {
            crate::bbb::Error::Transport("the BBB API address is not http(s)".to_owned())
        })?;
        let servers = api.stuns(&session_token, cookie.as_ref()).await?;
        let mut ice_servers: Vec<IceServer> = servers
            .stun_servers
            .into_iter()
            .map(|s| IceServer {
                urls: vec![s.url],
                ..IceServer::default()
            })
            .collect();
        ice_servers.extend(servers.turn_servers.into_iter().map(|t| IceServer {
            urls: vec![t.url],
            username: t.username,
            credential: t.password.expose().clone(),
        }));
        Ok(Self {
            url,
            session_token,
            cookie,
            identity,
            peer: PeerSettings {
                udp_addrs,
                ice_servers,
                ..PeerSettings::default()
            },
            timing: Timing::default(),
        })
    }
}

/// The SFU's address on the BBB server whose API is at `api_url`.
pub fn sfu_url(api_url: &str) -> Option<String> {
    let mut url = url::Url::parse(api_url).ok()?;
    let scheme = match url.scheme() {
        "https" => "wss",
        "http" => "ws",
        _ => return None,
    };
    url.set_scheme(scheme).ok()?;
    url.set_path("/bbb-webrtc-sfu");
    url.set_query(None);
    Some(url.to_string())
}

/// The bbb-webrtc-sfu [`MediaBridge`].
#[derive(Debug, Clone)]
pub struct SfuBridge {
    config: Arc<SfuConfig>,
}

impl SfuBridge {
    pub fn new(config: SfuConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

impl MediaBridge for SfuBridge {
    fn subscribe(&self, media: Media) -> Subscription {
        let (items_tx, items) = mpsc::channel(QUEUE);
        let (control, control_rx) = mpsc::channel(16);
        let session = Session::new(
            media.clone(),
            self.config.identity.clone(),
            self.config.timing.clone(),
        );
        let task = tokio::spawn(run(Arc::clone(&self.config), session, items_tx, control_rx));
        Subscription::new(media, items, control, task)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why the socket did not open.
enum ConnectError {
    /// HTTP 401 or 403: the session is refused; trying again cannot help.
    Refused(u16),
    Other(String),
}

async fn connect(config: &SfuConfig) -> Result<Socket, ConnectError> {
    let mut url = url::Url::parse(&config.url)
        .map_err(|e| ConnectError::Other(format!("bad SFU address: {e}")))?;
    url.query_pairs_mut()
        .append_pair("sessionToken", config.session_token.expose());
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|_| ConnectError::Other("bad SFU address".to_owned()))?;
    if let Some(cookie) = &config.cookie
        && let Ok(value) = HeaderValue::from_str(&format!("JSESSIONID={}", cookie.expose()))
    {
        request.headers_mut().insert("Cookie", value);
    }
    let limits = WebSocketConfig::default()
        .max_message_size(Some(protocol::MAX_FRAME_BYTES))
        .max_frame_size(Some(protocol::MAX_FRAME_BYTES));
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(limits), false);
    match tokio::time::timeout(Duration::from_secs(15), connecting).await {
        // Errors can quote the URL, which holds the session token: only the kind is kept.
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response)))
            if matches!(response.status().as_u16(), 401 | 403) =>
        {
            Err(ConnectError::Refused(response.status().as_u16()))
        }
        Ok(Err(e)) => Err(ConnectError::Other(describe(&e))),
        Err(_) => Err(ConnectError::Other("connection timed out".to_owned())),
    }
}

fn describe(error: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as E;
    match error {
        E::Http(response) => format!("HTTP {}", response.status()),
        E::Io(e) => format!("network error: {}", e.kind()),
        E::Capacity(_) => "frame too large".to_owned(),
        E::Protocol(p) => format!("protocol error: {p}"),
        E::ConnectionClosed | E::AlreadyClosed => "connection closed".to_owned(),
        _ => "WebSocket error".to_owned(),
    }
}

async fn run(
    config: Arc<SfuConfig>,
    mut session: Session,
    items: mpsc::Sender<Item>,
    mut control: mpsc::Receiver<Control>,
) {
    crate::install_crypto_provider();
    let media = session.media().label();
    let mut socket: Option<Socket> = None;
    let mut peer: Option<Receiver> = None;
    loop {
        while let Some(output) = session.poll_output() {
            match output {
                Output::Connect => match connect(&config).await {
                    Ok(s) => {
                        socket = Some(s);
                        session.handle(Instant::now(), Input::Connected);
                    }
                    Err(ConnectError::Refused(status)) => {
                        session.handle(Instant::now(), Input::Refused(status))
                    }
                    Err(ConnectError::Other(reason)) => {
                        session.handle(Instant::now(), Input::Closed(reason))
                    }
                },
                Output::Send(message) => {
                    if let Some(s) = socket.as_mut()
                        && let Err(e) = s.send(Message::text(message.to_text())).await
                    {
                        socket = None;
                        session.handle(Instant::now(), Input::Closed(describe(&e)));
                    }
                }
                Output::Close => {
                    if let Some(mut s) = socket.take() {
                        let _ = s.close(None).await;
                    }
                }
                Output::Offer(sdp) => {
                    match Receiver::answer(&config.peer, &sdp, items.clone()).await {
                        Ok((receiver, answer)) => {
                            peer = Some(receiver);
                            session.handle(Instant::now(), Input::Answer(answer));
                        }
                        Err(reason) => {
                            tracing::warn!(%media, %reason, "SFU offer unusable");
                            session.handle(Instant::now(), Input::OfferRejected(reason));
                        }
                    }
                }
                Output::RemoteCandidate(candidate) => {
                    if let Some(p) = &peer
                        && let Err(reason) = p.add_candidate(candidate).await
                    {
                        tracing::debug!(%media, %reason, "SFU candidate ignored");
                    }
                }
                Output::DropPeer => {
                    if let Some(p) = peer.take() {
                        p.close().await;
                    }
                }
                Output::Keyframe => {
                    if let Some(p) = &peer {
                        p.request_keyframe();
                    }
                }
                Output::Event(event) => {
                    match &event {
                        Event::Retrying { reason, after, .. } => {
                            tracing::info!(%media, %reason, ?after, "SFU subscription retrying");
                        }
                        Event::Warning(text) => tracing::warn!(%media, %text, "SFU"),
                        Event::Ended(reason) => {
                            tracing::info!(%media, %reason, "SFU subscription ended")
                        }
                        Event::Flowing => tracing::info!(%media, "SFU media flowing"),
                    }
                    let ended = matches!(event, Event::Ended(_));
                    let _ = items.send(Item::Event(event)).await;
                    if ended {
                        if let Some(p) = peer.take() {
                            p.close().await;
                        }
                        return;
                    }
                }
            }
        }
        let timer = session.next_timer();
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
                        Input::Closed(close.map_or_else(
                            || "closed by the SFU".to_owned(),
                            |c| format!("closed by the SFU ({})", u16::from(c.code)),
                        ))
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        socket = None;
                        Input::Closed(describe(&e))
                    }
                    None => {
                        socket = None;
                        Input::Closed("socket closed".to_owned())
                    }
                };
                session.handle(Instant::now(), input);
            }
            event = async {
                match peer.as_mut() {
                    Some(p) => p.events.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match event {
                    // The answer already carries every candidate (gathering is awaited) and
                    // mediasoup is ICE-lite: like BBB's client, amphi does not trickle.
                    Some(PeerEvent::Candidate(_)) => {}
                    Some(PeerEvent::Failed(reason)) => session.handle(Instant::now(), Input::PeerFailed(reason)),
                    Some(PeerEvent::Connected) => {}
                    None => {
                        if let Some(p) = peer.take() {
                            p.close().await;
                        }
                    }
                }
            }
            command = control.recv() => match command {
                Some(Control::Keyframe) => {
                    if let Some(p) = &peer {
                        p.request_keyframe();
                    }
                }
                Some(Control::Stop) | None => session.handle(Instant::now(), Input::Stop),
            },
            () = async {
                match timer {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => session.handle(Instant::now(), Input::Tick),
        }
    }
}
