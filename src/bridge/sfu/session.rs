//! One viewer session with bbb-webrtc-sfu as a state machine without sockets: the shell feeds
//! it what happens (`handle(now, input)`) and carries out what it asks (`poll_output()`).
//! It sends `start`, hands the server's offer to the shell's peer, sends the answer in the
//! field the media type wants, relays candidates, waits for media to flow, keeps the socket
//! alive, and tries again with backoff when the stream is not there yet (2201), the socket
//! drops or the media never starts; refusals stop it with a typed error.

use super::SfuCode;
use super::protocol::{self as p, ClientMessage, ServerMessage};
use crate::bridge::{BridgeError, EndReason, Event, Media};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How a session paces itself.
#[derive(Debug, Clone)]
pub struct Timing {
    /// First delay before trying again; doubled each attempt up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts (the first one included) before giving up.
    pub max_attempts: u32,
    /// From `start` to media flowing; longer means the attempt failed (stalled ICE).
    pub flow_timeout: Duration,
    /// From `start` to the SFU's `startResponse`, this much longer after each start left
    /// unanswered in a row (5, 10, 15 s…, at most `flow_timeout`): a stalled SFU is tried
    /// again well before media that never flows would be, and a slow one gets more time at
    /// each attempt.
    pub answer_timeout: Duration,
    /// A `ping` this often (the HTML5 client's 15 s); the socket is given up after three
    /// intervals without any frame.
    pub keepalive: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(15),
            max_attempts: 12,
            flow_timeout: Duration::from_secs(20),
            answer_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
        }
    }
}

/// Who amphi is to the SFU, for the screenshare `start` (the SFU takes the real identity
/// from the headers its proxy adds).
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_name: String,
    pub user_id: String,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The shell opened the WebSocket.
    Connected,
    /// A text frame arrived.
    Frame(String),
    /// The socket closed or failed to open.
    Closed(String),
    /// The upgrade was refused with this HTTP status (401/403: the session is not valid).
    Refused(u16),
    /// Time passed.
    Tick,
    /// The shell's peer answered the offer (SDP with its candidates).
    Answer(String),
    /// The peer could not use the offer.
    OfferRejected(String),
    /// A local candidate to trickle (as the browser's `RTCIceCandidate.toJSON()`).
    LocalCandidate(Value),
    /// The peer's connection failed (ICE or DTLS).
    PeerFailed(String),
    /// Stop receiving.
    Stop,
}

/// What the shell must do, or report.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open the WebSocket (`?sessionToken=`, with the cookie).
    Connect,
    Send(ClientMessage),
    Close,
    /// Build a fresh peer from this server offer and answer it with [`Input::Answer`].
    Offer(String),
    /// Add a remote candidate to the current peer.
    RemoteCandidate(Value),
    /// Close the current peer (an attempt ended).
    DropPeer,
    /// Media flows: ask the sender for a keyframe now (video).
    Keyframe,
    Event(Event),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    /// `start` sent, waiting for `startResponse`.
    Starting,
    /// The offer is with the peer.
    Answering,
    /// The answer is sent, waiting for `playStart` / `webRTCAudioSuccess`.
    Negotiated,
    Flowing,
    /// Waiting until `retry_at`.
    Waiting,
    Stopped,
}

/// A viewer session for one [`Media`].
#[derive(Debug)]
pub struct Session {
    media: Media,
    identity: Identity,
    timing: Timing,
    phase: Phase,
    outputs: VecDeque<Output>,
    attempts: u32,
    /// Starts the SFU left unanswered in a row.
    unanswered: u32,
    retry_at: Option<Instant>,
    started_at: Option<Instant>,
    last_frame: Option<Instant>,
    last_ping: Option<Instant>,
    socket_open: bool,
    peer_open: bool,
    last_error: String,
    /// `clientSessionNumber` of the next audio start (kept increasing, as the HTML5 client).
    audio_session: u32,
}

impl Session {
    pub fn new(media: Media, identity: Identity, timing: Timing) -> Self {
        Self {
            media,
            identity,
            timing,
            phase: Phase::Connecting,
            outputs: VecDeque::from([Output::Connect]),
            attempts: 1,
            unanswered: 0,
            retry_at: None,
            started_at: None,
            last_frame: None,
            last_ping: None,
            socket_open: false,
            peer_open: false,
            last_error: String::new(),
            audio_session: 1,
        }
    }

    pub fn media(&self) -> &Media {
        &self.media
    }

    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    pub fn is_flowing(&self) -> bool {
        self.phase == Phase::Flowing
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the shell must call `handle(now, Tick)` at the latest.
    pub fn next_timer(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting => self.retry_at,
            Phase::Stopped | Phase::Connecting => None,
            _ => {
                let ping = self.last_ping.or(self.last_frame)? + self.timing.keepalive;
                let flow = match self.phase {
                    Phase::Flowing => None,
                    Phase::Starting => self.started_at.map(|t| t + self.answer_timeout()),
                    _ => self.started_at.map(|t| t + self.timing.flow_timeout),
                };
                Some(flow.map_or(ping, |f| f.min(ping)))
            }
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) {
        if self.phase == Phase::Stopped {
            return;
        }
        match input {
            Input::Connected => {
                self.socket_open = true;
                self.last_frame = Some(now);
                self.last_ping = Some(now);
                self.started_at = Some(now);
                self.phase = Phase::Starting;
                let start = self.start_message();
                self.outputs.push_back(Output::Send(start));
            }
            Input::Frame(text) => {
                self.last_frame = Some(now);
                self.frame(now, &text);
            }
            Input::Closed(reason) => {
                self.socket_open = false;
                self.retry(now, format!("the SFU socket closed: {reason}"));
            }
            Input::Refused(status) => {
                let error = BridgeError::Unauthorized {
                    media: self.media.label(),
                    status,
                };
                self.stop(EndReason::Failed(error));
            }
            Input::Tick => self.tick(now),
            Input::Answer(sdp) => {
                if self.phase == Phase::Answering {
                    self.phase = Phase::Negotiated;
                    let answer = self.answer_message(sdp);
                    self.outputs.push_back(Output::Send(answer));
                }
            }
            Input::OfferRejected(reason) => {
                let error = BridgeError::BadOffer {
                    media: self.media.label(),
                    reason,
                };
                self.stop(EndReason::Failed(error));
            }
            Input::LocalCandidate(candidate) => {
                if matches!(self.phase, Phase::Negotiated | Phase::Flowing) {
                    let message = self.candidate_message(candidate);
                    self.outputs.push_back(Output::Send(message));
                }
            }
            Input::PeerFailed(reason) => {
                if matches!(self.phase, Phase::Negotiated | Phase::Flowing) {
                    self.retry(now, format!("the media connection failed: {reason}"));
                }
            }
            Input::Stop => self.stop(EndReason::Unsubscribed),
        }
    }

    fn tick(&mut self, now: Instant) {
        match self.phase {
            Phase::Waiting => {
                if self.retry_at.is_some_and(|t| now >= t) {
                    self.retry_at = None;
                    self.phase = Phase::Connecting;
                    self.outputs.push_back(Output::Connect);
                }
            }
            Phase::Starting | Phase::Answering | Phase::Negotiated | Phase::Flowing => {
                let silent_since = self.last_frame.unwrap_or(now);
                if now.duration_since(silent_since) >= self.timing.keepalive * 3 {
                    self.retry(now, "the SFU stopped answering".to_owned());
                    return;
                }
                if self.phase == Phase::Starting
                    && self
                        .started_at
                        .is_some_and(|t| now.duration_since(t) >= self.answer_timeout())
                {
                    let waited = self.answer_timeout().as_secs();
                    self.unanswered += 1;
                    self.retry(
                        now,
                        format!("the SFU did not answer the start in {waited} s"),
                    );
                    return;
                }
                if self.phase != Phase::Flowing
                    && self
                        .started_at
                        .is_some_and(|t| now.duration_since(t) >= self.timing.flow_timeout)
                {
                    let waited = self.timing.flow_timeout.as_secs();
                    self.retry(now, format!("no media after {waited} s"));
                    return;
                }
                if self
                    .last_ping
                    .is_none_or(|t| now.duration_since(t) >= self.timing.keepalive)
                {
                    self.last_ping = Some(now);
                    let ping = ClientMessage::Ping(p::Ping { id: p::IdPing });
                    self.outputs.push_back(Output::Send(ping));
                }
            }
            Phase::Connecting | Phase::Stopped => {}
        }
    }

    /// Whether a message from the SFU is about this session's media.
    fn concerns(&self, kind: &str, camera_id: Option<&str>) -> bool {
        match &self.media {
            Media::Audio => kind == "audio",
            Media::Camera { stream_id } => {
                kind == "video" && camera_id.is_none_or(|c| c == stream_id)
            }
            Media::Screenshare { .. } => kind == "screenshare",
        }
    }

    fn frame(&mut self, now: Instant, text: &str) {
        let message = match ServerMessage::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.warn(e.to_string());
                return;
            }
        };
        match message {
            ServerMessage::StartResponse {
                kind,
                camera_id,
                response,
                sdp_answer,
                ..
            } if self.concerns(&kind, camera_id.as_deref()) => {
                self.unanswered = 0;
                if self.phase != Phase::Starting {
                    self.warn("startResponse out of turn, ignored".to_owned());
                } else if response.as_deref().is_some_and(|r| r != "accepted") {
                    let reason = format!("start not accepted ({})", response.unwrap_or_default());
                    self.retry(now, reason);
                } else {
                    self.phase = Phase::Answering;
                    self.peer_open = true;
                    self.outputs.push_back(Output::Offer(sdp_answer));
                }
            }
            ServerMessage::IceCandidate {
                kind,
                camera_id,
                candidate,
                ..
            } if self.concerns(&kind, camera_id.as_deref()) => {
                if self.peer_open {
                    self.outputs.push_back(Output::RemoteCandidate(candidate));
                }
            }
            ServerMessage::PlayStart {
                kind, camera_id, ..
            } if self.concerns(&kind, camera_id.as_deref()) => self.flowing(),
            ServerMessage::WebRtcAudioSuccess { kind, .. } if self.concerns(&kind, None) => {
                self.flowing()
            }
            ServerMessage::PlayStop {
                kind, camera_id, ..
            } if self.concerns(&kind, camera_id.as_deref()) => {
                self.stop(EndReason::PublisherStopped)
            }
            ServerMessage::StopSharing { kind, .. } if self.concerns(&kind, None) => {
                self.stop(EndReason::SharingStopped)
            }
            ServerMessage::WebRtcAudioError { kind, code, .. } if self.concerns(&kind, None) => {
                self.error(now, SfuCode(code))
            }
            ServerMessage::Error {
                kind,
                camera_id,
                code,
                ..
            } if self.concerns(&kind, camera_id.as_deref()) => self.error(now, SfuCode(code)),
            ServerMessage::Pong {} => {}
            ServerMessage::RestartIceResponse { .. } => {}
            ServerMessage::Unknown => {
                let id = serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                let mut id = id;
                id.truncate(64);
                self.warn(format!("unknown SFU message \"{id}\" ignored"));
            }
            _ => self.warn("SFU message about another stream ignored".to_owned()),
        }
    }

    fn flowing(&mut self) {
        if matches!(self.phase, Phase::Negotiated | Phase::Answering) {
            self.phase = Phase::Flowing;
            self.attempts = 1;
            self.outputs.push_back(Output::Event(Event::Flowing));
            if !matches!(self.media, Media::Audio) {
                self.outputs.push_back(Output::Keyframe);
            }
        }
    }

    fn error(&mut self, now: Instant, code: SfuCode) {
        // An error is an answer too.
        self.unanswered = 0;
        if code.is_retryable() {
            self.retry(now, code.to_string());
        } else {
            let error = BridgeError::Refused {
                media: self.media.label(),
                code,
            };
            self.stop(EndReason::Failed(error));
        }
    }

    fn warn(&mut self, text: String) {
        self.outputs.push_back(Output::Event(Event::Warning(text)));
    }

    /// How long this attempt waits for `startResponse`.
    fn answer_timeout(&self) -> Duration {
        (self.timing.answer_timeout * (self.unanswered + 1)).min(self.timing.flow_timeout)
    }

    /// Ends this attempt and schedules the next one, or gives up.
    fn retry(&mut self, now: Instant, reason: String) {
        if matches!(self.phase, Phase::Waiting | Phase::Stopped) {
            return;
        }
        self.end_attempt();
        self.last_error = reason.clone();
        if self.attempts >= self.timing.max_attempts {
            let error = BridgeError::GaveUp {
                media: self.media.label(),
                attempts: self.attempts,
                last: reason,
            };
            self.finish(EndReason::Failed(error));
            return;
        }
        let exponent = self.attempts.saturating_sub(1).min(16);
        let after = (self.timing.first_backoff * 2u32.pow(exponent)).min(self.timing.max_backoff);
        self.attempts += 1;
        self.phase = Phase::Waiting;
        self.retry_at = Some(now + after);
        self.outputs.push_back(Output::Event(Event::Retrying {
            attempt: self.attempts,
            after,
            reason,
        }));
    }

    fn end_attempt(&mut self) {
        if self.peer_open {
            self.peer_open = false;
            self.outputs.push_back(Output::DropPeer);
        }
        if self.socket_open {
            self.socket_open = false;
            self.outputs.push_back(Output::Close);
        }
        self.started_at = None;
        self.last_ping = None;
    }

    fn stop(&mut self, reason: EndReason) {
        if self.socket_open
            && matches!(reason, EndReason::Unsubscribed)
            && let Media::Camera { stream_id } = &self.media
        {
            let stop = ClientMessage::StopCamera(p::StopCamera {
                id: p::IdStop,
                kind: p::TypeVideo,
                role: p::RoleViewer,
                camera_id: stream_id.clone(),
            });
            self.outputs.push_back(Output::Send(stop));
        }
        self.end_attempt();
        self.finish(reason);
    }

    fn finish(&mut self, reason: EndReason) {
        self.phase = Phase::Stopped;
        self.outputs.push_back(Output::Event(Event::Ended(reason)));
    }

    /// The last reason an attempt failed (for logs).
    pub fn last_error(&self) -> &str {
        &self.last_error
    }

    fn start_message(&mut self) -> ClientMessage {
        match &self.media {
            Media::Audio => {
                let number = self.audio_session;
                self.audio_session += 1;
                ClientMessage::StartAudio(p::StartAudio {
                    id: p::IdStart,
                    kind: p::TypeAudio,
                    role: p::RoleRecv,
                    client_session_number: number,
                    transparent_listen_only: false,
                })
            }
            Media::Camera { stream_id } => ClientMessage::StartCamera(p::StartCamera {
                id: p::IdStart,
                kind: p::TypeVideo,
                role: p::RoleViewer,
                camera_id: stream_id.clone(),
                media_server: "mediasoup".to_owned(),
            }),
            Media::Screenshare {
                voice_conf,
                has_audio,
            } => ClientMessage::StartScreenshare(p::StartScreenshare {
                id: p::IdStart,
                kind: p::TypeScreenshare,
                role: p::RoleRecv,
                voice_bridge: voice_conf.clone(),
                user_name: self.identity.user_name.clone(),
                caller_name: self.identity.user_id.clone(),
                has_audio: *has_audio,
                content_type: "screenshare".to_owned(),
                media_server: "mediasoup".to_owned(),
            }),
        }
    }

    fn answer_message(&self, sdp: String) -> ClientMessage {
        match &self.media {
            Media::Audio => ClientMessage::AudioAnswer(p::AudioAnswer {
                id: p::IdSubscriberAnswer,
                kind: p::TypeAudio,
                role: p::RoleRecv,
                sdp_offer: sdp,
            }),
            Media::Camera { stream_id } => ClientMessage::CameraAnswer(p::CameraAnswer {
                id: p::IdSubscriberAnswer,
                kind: p::TypeVideo,
                role: p::RoleViewer,
                camera_id: stream_id.clone(),
                answer: sdp,
            }),
            Media::Screenshare { .. } => ClientMessage::ScreenshareAnswer(p::ScreenshareAnswer {
                id: p::IdSubscriberAnswer,
                kind: p::TypeScreenshare,
                role: p::RoleRecv,
                answer: sdp,
            }),
        }
    }

    fn candidate_message(&self, candidate: Value) -> ClientMessage {
        match &self.media {
            Media::Camera { stream_id } => ClientMessage::CameraCandidate(p::CameraCandidate {
                id: p::IdOnIceCandidate,
                kind: p::TypeVideo,
                role: p::RoleViewer,
                camera_id: stream_id.clone(),
                candidate,
            }),
            Media::Audio => ClientMessage::Candidate(p::Candidate {
                id: p::IdIceCandidate,
                kind: "audio".to_owned(),
                role: p::RoleRecv,
                candidate,
            }),
            Media::Screenshare { .. } => ClientMessage::Candidate(p::Candidate {
                id: p::IdIceCandidate,
                kind: "screenshare".to_owned(),
                role: p::RoleRecv,
                candidate,
            }),
        }
    }
}
