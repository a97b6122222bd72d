//! The bot's GraphQL session as a state machine without sockets: the shell feeds it what
//! happens (`handle(now, input)`) and carries out what it asks (`poll_output()`). It
//! authenticates, joins, subscribes, answers pings, relays chat both ways, reconnects with
//! backoff and resumes its subscriptions, and stops for good on 4403, a refused join, the
//! meeting's end or a leave.

use super::operations::{self, Feed};
use super::protocol::{self, ClientFrame, InitHeaders, InitPayload, ServerFrame};
use super::state::{Change, MeetingState};
use crate::redact::Redacted;
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// First reconnection delay; doubled each attempt up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait for `joined` after `connection_ack`; then the socket is tried again.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Reconnections tried before giving up.
pub const MAX_ATTEMPTS: u32 = 20;
/// A `ping` is sent after this long without any frame, and the socket is given up when the
/// server stays silent as long again.
pub const KEEPALIVE: Duration = Duration::from_secs(20);

/// What the bot needs from `join`.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub session_token: Redacted<String>,
    pub auth_token: Redacted<String>,
    /// Random per bot; sent as `X-ClientSessionUUID`.
    pub client_session_uuid: String,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The shell opened the WebSocket.
    Connected,
    /// A text frame arrived.
    Frame(String),
    /// The socket closed (or failed to open: `code` is `None`).
    Closed { code: Option<u16>, reason: String },
    /// Time passed (timers).
    Tick,
    /// Post in the meeting's public chat.
    SendChat(String),
    /// Leave the meeting.
    Leave,
}

/// Why the session is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Close code 4403: the session token or cookie was refused. Never retried.
    Unauthorized(String),
    /// BBB refused the join or removed the bot.
    Refused(String),
    /// The meeting ended.
    MeetingEnded,
    /// The bot left as asked.
    Left,
    /// Too many reconnections failed.
    GaveUp,
}

/// What the shell must do, or report.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open the WebSocket (with the cookie and the subprotocol).
    Connect,
    /// Send this frame.
    Send(ClientFrame),
    /// Close the socket.
    Close,
    /// The meeting changed.
    Change(Change),
    /// The session is over; drop it.
    Stopped(StopReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the socket (first time or after a backoff).
    Connecting,
    /// `connection_init` sent.
    Authenticating,
    /// Acknowledged; subscribed to `user_current`, joining.
    Joining,
    /// Joined and subscribed to everything.
    Running,
    /// Waiting until `retry_at` to reconnect.
    Waiting,
    /// Leaving: the mutation is sent, the socket closes next.
    Leaving,
    Stopped,
}

/// The session.
#[derive(Debug)]
pub struct Session {
    credentials: Credentials,
    phase: Phase,
    state: MeetingState,
    outputs: VecDeque<Output>,
    /// Start of the chat stream: the bot's join time, then the last message seen.
    chat_since: String,
    seen_messages: VecDeque<String>,
    subscribed: BTreeSet<Feed>,
    join_sent: bool,
    pending_chat: VecDeque<String>,
    attempts: u32,
    retry_at: Option<Instant>,
    last_frame: Option<Instant>,
    ping_sent: bool,
    next_op: u64,
    /// When the connection was acknowledged, until the bot is in the meeting.
    joining_since: Option<Instant>,
    /// Chat messages sent but not yet confirmed, by operation id: sent again after a
    /// reconnection (at least once).
    inflight_chat: std::collections::BTreeMap<String, String>,
}

impl Session {
    /// A session that will connect first; `joined_at` (RFC 3339) starts the chat stream.
    pub fn new(credentials: Credentials, joined_at: &str) -> Self {
        let mut session = Self {
            credentials,
            phase: Phase::Connecting,
            state: MeetingState::default(),
            outputs: VecDeque::new(),
            chat_since: joined_at.to_owned(),
            seen_messages: VecDeque::new(),
            subscribed: BTreeSet::new(),
            join_sent: false,
            pending_chat: VecDeque::new(),
            attempts: 0,
            retry_at: None,
            last_frame: None,
            ping_sent: false,
            next_op: 0,
            joining_since: None,
            inflight_chat: std::collections::BTreeMap::new(),
        };
        session.outputs.push_back(Output::Connect);
        session
    }

    pub fn state(&self) -> &MeetingState {
        &self.state
    }

    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// When the shell should call `handle(Tick)` next, if any timer runs.
    pub fn next_timer(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting => self.retry_at,
            Phase::Authenticating | Phase::Joining | Phase::Running => {
                let keepalive = self.last_frame.map(|t| {
                    if self.ping_sent {
                        t + KEEPALIVE * 2
                    } else {
                        t + KEEPALIVE
                    }
                });
                let join_deadline = self.joining_since.map(|t| t + JOIN_TIMEOUT);
                match (keepalive, join_deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            _ => None,
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn send(&mut self, frame: ClientFrame) {
        self.outputs.push_back(Output::Send(frame));
    }

    fn op_id(&mut self, name: &str) -> String {
        self.next_op += 1;
        format!("{name}-{}", self.next_op)
    }

    fn stop(&mut self, reason: StopReason) {
        if self.phase != Phase::Stopped {
            self.phase = Phase::Stopped;
            self.outputs.push_back(Output::Close);
            self.outputs.push_back(Output::Stopped(reason));
        }
    }

    fn subscribe(&mut self, feed: Feed) {
        if self.subscribed.insert(feed) {
            let payload = feed.operation(&self.chat_since);
            self.send(ClientFrame::Subscribe {
                id: feed.id().to_owned(),
                payload,
            });
        }
    }

    /// Feeds one event in.
    pub fn handle(&mut self, now: Instant, input: Input) {
        if self.phase == Phase::Stopped {
            return;
        }
        match input {
            Input::Connected => {
                for (_, text) in std::mem::take(&mut self.inflight_chat).into_iter().rev() {
                    self.pending_chat.push_front(text);
                }
                self.joining_since = None;
                self.phase = Phase::Authenticating;
                self.last_frame = Some(now);
                self.ping_sent = false;
                self.subscribed.clear();
                self.join_sent = false;
                let headers = InitHeaders {
                    session_token: self.credentials.session_token.expose().clone(),
                    client_session_uuid: self.credentials.client_session_uuid.clone(),
                    client_type: "HTML5".to_owned(),
                    client_is_mobile: "false".to_owned(),
                };
                self.send(ClientFrame::ConnectionInit {
                    payload: InitPayload { headers },
                });
            }
            Input::Frame(text) => {
                self.last_frame = Some(now);
                self.ping_sent = false;
                match ServerFrame::parse(&text) {
                    Ok(frame) => self.on_frame(now, frame),
                    Err(e) => tracing::warn!(error = %e, "GraphQL frame dropped"),
                }
            }
            Input::Closed { code, reason } => self.on_closed(now, code, reason),
            Input::Tick => self.on_tick(now),
            Input::SendChat(text) => {
                self.pending_chat.push_back(text);
                self.flush_chat();
            }
            Input::Leave => {
                if matches!(self.phase, Phase::Running | Phase::Joining) {
                    let id = self.op_id("leave");
                    self.send(ClientFrame::Subscribe {
                        id,
                        payload: operations::leave_meeting(),
                    });
                }
                self.phase = Phase::Leaving;
                self.stop(StopReason::Left);
            }
        }
    }

    fn flush_chat(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        while let Some(text) = self.pending_chat.pop_front() {
            let id = self.op_id("chat");
            self.send(ClientFrame::Subscribe {
                id: id.clone(),
                payload: operations::send_chat(&text),
            });
            self.inflight_chat.insert(id, text);
        }
    }

    fn on_frame(&mut self, now: Instant, frame: ServerFrame) {
        match frame {
            ServerFrame::ConnectionAck { .. } => {
                self.phase = Phase::Joining;
                self.joining_since = Some(now);
                self.subscribe(Feed::UserCurrent);
            }
            ServerFrame::Ping { payload } => self.send(ClientFrame::Pong { payload }),
            ServerFrame::Pong { .. } => {}
            ServerFrame::Next { id, payload } => {
                if let Some(feed) = Feed::from_id(&id) {
                    let changes = self.state.apply(feed, &payload);
                    for change in changes {
                        self.on_change(change);
                    }
                    if feed == Feed::UserCurrent {
                        self.after_user_current();
                    }
                } else if let Some(errors) = payload.get("errors") {
                    tracing::warn!(operation = %id, errors = %protocol::error_messages(errors), "mutation failed");
                } else {
                    self.inflight_chat.remove(&id);
                }
            }
            ServerFrame::Error { id, payload } => {
                let errors = protocol::error_messages(&payload);
                tracing::warn!(operation = %id, %errors, "GraphQL operation refused");
                if id.starts_with("join-") {
                    // BBB refused userJoinMeeting: waiting would not help.
                    self.stop(StopReason::Refused(errors));
                } else if id == Feed::UserCurrent.id() {
                    // Without it the bot cannot know it is in: try a new connection.
                    self.outputs.push_back(Output::Close);
                } else if let Some(feed) = Feed::from_id(&id) {
                    // Subscribed again on the next connection.
                    self.subscribed.remove(&feed);
                } else if self.inflight_chat.remove(&id).is_some() {
                    tracing::warn!(operation = %id, "a chat message was refused by BBB");
                }
            }
            ServerFrame::Complete { .. } => {}
            ServerFrame::ConnectionError { payload } => {
                tracing::warn!(?payload, "GraphQL connection error");
                self.outputs.push_back(Output::Close);
            }
        }
    }

    fn after_user_current(&mut self) {
        if self.phase == Phase::Stopped {
            return;
        }
        if self.state.joined {
            if self.phase == Phase::Joining {
                self.phase = Phase::Running;
                // Only a connection that got the bot in counts as a success.
                self.attempts = 0;
                self.joining_since = None;
                for feed in Feed::ALL {
                    self.subscribe(feed);
                }
                self.flush_chat();
            }
        } else if !self.join_sent {
            self.join_sent = true;
            let id = self.op_id("join");
            let payload = operations::join_meeting(self.credentials.auth_token.expose());
            self.send(ClientFrame::Subscribe { id, payload });
        }
    }

    fn on_change(&mut self, change: Change) {
        match &change {
            Change::Refused { reason } => {
                let reason = reason.clone();
                self.outputs.push_back(Output::Change(change));
                self.stop(StopReason::Refused(reason));
                return;
            }
            Change::Ended(_) => {
                self.outputs.push_back(Output::Change(change));
                self.stop(StopReason::MeetingEnded);
                return;
            }
            Change::Chat(message) => {
                if self.seen_messages.contains(&message.id) {
                    return;
                }
                self.seen_messages.push_back(message.id.clone());
                if self.seen_messages.len() > 256 {
                    self.seen_messages.pop_front();
                }
                if !message.created_at.is_empty() {
                    self.chat_since = message.created_at.clone();
                }
            }
            _ => {}
        }
        self.outputs.push_back(Output::Change(change));
    }

    fn on_closed(&mut self, now: Instant, code: Option<u16>, reason: String) {
        if code == Some(protocol::CLOSE_UNAUTHORIZED) {
            self.stop(StopReason::Unauthorized(reason));
            return;
        }
        if self.phase == Phase::Leaving {
            self.stop(StopReason::Left);
            return;
        }
        self.attempts += 1;
        if self.attempts > MAX_ATTEMPTS {
            self.stop(StopReason::GaveUp);
            return;
        }
        let exponent = self.attempts.saturating_sub(1).min(16);
        let delay = (FIRST_BACKOFF * 2u32.pow(exponent)).min(MAX_BACKOFF);
        tracing::info!(?code, %reason, attempt = self.attempts, delay_ms = delay.as_millis() as u64, "GraphQL socket closed; reconnecting");
        self.phase = Phase::Waiting;
        self.retry_at = Some(now + delay);
    }

    fn on_tick(&mut self, now: Instant) {
        match self.phase {
            Phase::Waiting if self.retry_at.is_some_and(|t| now >= t) => {
                self.retry_at = None;
                self.phase = Phase::Connecting;
                self.outputs.push_back(Output::Connect);
            }
            Phase::Authenticating | Phase::Joining | Phase::Running => {
                if self.joining_since.is_some_and(|t| now >= t + JOIN_TIMEOUT) {
                    tracing::warn!("not in the meeting after the join timeout; reconnecting");
                    self.joining_since = None;
                    self.outputs.push_back(Output::Close);
                    return;
                }
                let Some(last) = self.last_frame else {
                    return;
                };
                if now >= last + KEEPALIVE * 2 && self.ping_sent {
                    // Silent server: give the socket up; the close brings a reconnection.
                    self.outputs.push_back(Output::Close);
                } else if now >= last + KEEPALIVE && !self.ping_sent {
                    self.ping_sent = true;
                    self.send(ClientFrame::Ping { payload: None });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn credentials() -> Credentials {
        Credentials {
            session_token: Redacted::new("sessiontoken0001".into()),
            auth_token: Redacted::new("authtoken001".into()),
            client_session_uuid: "5f3c…uuid".into(),
        }
    }

    fn drain(session: &mut Session) -> Vec<Output> {
        std::iter::from_fn(|| session.poll_output()).collect()
    }

    fn frame(value: serde_json::Value) -> Input {
        Input::Frame(value.to_string())
    }

    fn sent_ids(outputs: &[Output]) -> Vec<String> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send(ClientFrame::Subscribe { id, .. }) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Drives a session to Running; returns it and the clock.
    fn running() -> (Session, Instant) {
        let t0 = Instant::now();
        let mut s = Session::new(credentials(), "2026-11-27T10:00:00Z");
        assert_eq!(drain(&mut s), [Output::Connect]);
        s.handle(t0, Input::Connected);
        let init = drain(&mut s);
        let [Output::Send(ClientFrame::ConnectionInit { payload })] = &init[..] else {
            panic!("{init:?}");
        };
        assert_eq!(payload.headers.session_token, "sessiontoken0001");
        assert_eq!(payload.headers.client_type, "HTML5");
        s.handle(t0, frame(json!({"type": "connection_ack"})));
        assert_eq!(sent_ids(&drain(&mut s)), ["user_current"]);
        s.handle(t0, frame(json!({"type": "next", "id": "user_current", "payload": {"data": {"user_current": [{"userId": "w_bot", "joined": false}]}}})));
        let join = drain(&mut s);
        let [Output::Send(ClientFrame::Subscribe { payload, .. })] = &join[..] else {
            panic!("{join:?}");
        };
        assert!(payload.query.starts_with("mutation UserJoinMeeting"));
        assert_eq!(payload.variables["authToken"], "authtoken001");
        s.handle(t0, frame(json!({"type": "next", "id": "user_current", "payload": {"data": {"user_current": [{"userId": "w_bot", "joined": true}]}}})));
        let subscribed = drain(&mut s);
        assert_eq!(subscribed[0], Output::Change(Change::Joined));
        assert_eq!(
            sent_ids(&subscribed),
            [
                "meeting",
                "bridges",
                "users",
                "cameras",
                "screenshare",
                "current_page",
                "chat"
            ]
        );
        (s, t0)
    }

    #[test]
    fn joins_subscribes_and_relays_chat_both_ways() {
        let (mut s, t0) = running();
        s.handle(t0, Input::SendChat("Question from Ann (live)".into()));
        let out = drain(&mut s);
        let [Output::Send(ClientFrame::Subscribe { payload, .. })] = &out[..] else {
            panic!("{out:?}");
        };
        assert_eq!(
            payload.variables["chatMessageInMarkdownFormat"],
            "Question from Ann (live)"
        );
        let chat = json!({"type": "next", "id": "chat", "payload": {"data": {"chat_message_public_stream": [
            {"messageId": "m1", "createdAt": "2026-11-27T10:01:00Z", "message": "Bonjour", "senderId": "w_1", "senderName": "Ann"},
            {"messageId": "m2", "createdAt": "2026-11-27T10:01:05Z", "message": "echo", "senderId": "w_bot", "senderName": "Live stream"}
        ]}}});
        s.handle(t0, frame(chat.clone()));
        let out = drain(&mut s);
        assert!(
            matches!(&out[..], [Output::Change(Change::Chat(m))] if m.text == "Bonjour"),
            "{out:?}"
        );
        s.handle(t0, frame(chat));
        assert!(drain(&mut s).is_empty(), "a message is relayed once");
        s.handle(t0, frame(json!({"type": "ping"})));
        assert_eq!(
            drain(&mut s),
            [Output::Send(ClientFrame::Pong { payload: None })]
        );
    }

    #[test]
    fn a_dropped_socket_reconnects_with_backoff_and_resumes() {
        let (mut s, t0) = running();
        s.handle(
            t0,
            Input::Closed {
                code: Some(1006),
                reason: "gone".into(),
            },
        );
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.next_timer(), Some(t0 + FIRST_BACKOFF));
        s.handle(t0 + Duration::from_millis(100), Input::Tick);
        assert!(drain(&mut s).is_empty(), "not before the backoff");
        s.handle(t0 + FIRST_BACKOFF, Input::Tick);
        assert_eq!(drain(&mut s), [Output::Connect]);
        // Fails again: the delay doubles.
        s.handle(
            t0 + FIRST_BACKOFF,
            Input::Closed {
                code: None,
                reason: "refused".into(),
            },
        );
        assert_eq!(s.next_timer(), Some(t0 + FIRST_BACKOFF + FIRST_BACKOFF * 2));
        let t1 = t0 + FIRST_BACKOFF * 3;
        s.handle(t1, Input::Tick);
        assert_eq!(drain(&mut s), [Output::Connect]);
        s.handle(t1, Input::Connected);
        drain(&mut s);
        s.handle(t1, frame(json!({"type": "connection_ack"})));
        assert_eq!(sent_ids(&drain(&mut s)), ["user_current"]);
        // Still in the meeting (back within the grace period): no second join, everything resumed.
        s.handle(t1, frame(json!({"type": "next", "id": "user_current", "payload": {"data": {"user_current": [{"userId": "w_bot", "joined": true}]}}})));
        let resumed = sent_ids(&drain(&mut s));
        assert_eq!(resumed.len(), 7, "{resumed:?}");
        assert!(!resumed.iter().any(|id| id.starts_with("join")));
    }

    #[test]
    fn unauthorized_stops_without_retry() {
        let t0 = Instant::now();
        let mut s = Session::new(credentials(), "2026-11-27T10:00:00Z");
        drain(&mut s);
        s.handle(t0, Input::Connected);
        drain(&mut s);
        s.handle(
            t0,
            Input::Closed {
                code: Some(4403),
                reason: "unauthorized".into(),
            },
        );
        assert_eq!(
            drain(&mut s),
            [
                Output::Close,
                Output::Stopped(StopReason::Unauthorized("unauthorized".into()))
            ]
        );
        assert!(s.is_stopped());
        s.handle(t0 + MAX_BACKOFF, Input::Tick);
        assert!(drain(&mut s).is_empty(), "never reconnects");
    }

    #[test]
    fn the_meeting_end_and_leaving_stop_the_session() {
        let (mut s, t0) = running();
        s.handle(t0, frame(json!({"type": "next", "id": "meeting", "payload": {"data": {"meeting": [{"ended": true, "endedReasonCode": "ENDED_FROM_API"}]}}})));
        let out = drain(&mut s);
        assert!(
            matches!(out.last(), Some(Output::Stopped(StopReason::MeetingEnded))),
            "{out:?}"
        );

        let (mut s, t0) = running();
        s.handle(t0, Input::Leave);
        let out = drain(&mut s);
        assert!(
            matches!(&out[0], Output::Send(ClientFrame::Subscribe { payload, .. }) if payload.query.starts_with("mutation UserLeaveMeeting"))
        );
        assert_eq!(out.last(), Some(&Output::Stopped(StopReason::Left)));
    }

    #[test]
    fn silence_brings_a_ping_then_a_new_socket_and_garbage_is_dropped() {
        let (mut s, t0) = running();
        s.handle(t0, Input::Frame("{not json".into()));
        s.handle(t0, Input::Frame(json!({"type": "surprise"}).to_string()));
        assert!(drain(&mut s).is_empty());
        s.handle(t0 + KEEPALIVE, Input::Tick);
        assert_eq!(
            drain(&mut s),
            [Output::Send(ClientFrame::Ping { payload: None })]
        );
        s.handle(t0 + KEEPALIVE * 2, Input::Tick);
        assert_eq!(drain(&mut s), [Output::Close]);
    }

    #[test]
    fn too_many_failures_give_up() {
        let t0 = Instant::now();
        let mut s = Session::new(credentials(), "2026-11-27T10:00:00Z");
        drain(&mut s);
        let mut now = t0;
        for _ in 0..MAX_ATTEMPTS {
            s.handle(
                now,
                Input::Closed {
                    code: None,
                    reason: "refused".into(),
                },
            );
            now = s.next_timer().unwrap();
            s.handle(now, Input::Tick);
            assert_eq!(drain(&mut s), [Output::Connect]);
        }
        s.handle(
            now,
            Input::Closed {
                code: None,
                reason: "refused".into(),
            },
        );
        assert_eq!(
            drain(&mut s).last(),
            Some(&Output::Stopped(StopReason::GaveUp))
        );
    }

    #[test]
    fn timers_never_spin_and_joining_has_a_deadline() {
        let (mut s, t0) = running();
        s.handle(t0 + KEEPALIVE, Input::Tick);
        drain(&mut s);
        assert_eq!(
            s.next_timer(),
            Some(t0 + KEEPALIVE * 2),
            "after the ping, the next deadline is later"
        );

        let t0 = Instant::now();
        let mut s = Session::new(credentials(), "2026-11-27T10:00:00Z");
        drain(&mut s);
        s.handle(t0, Input::Connected);
        s.handle(t0, frame(json!({"type": "connection_ack"})));
        drain(&mut s);
        // The server keeps the socket alive but never says joined.
        for i in 1..4u32 {
            s.handle(
                t0 + Duration::from_secs(u64::from(i) * 5),
                frame(json!({"type": "ping"})),
            );
        }
        drain(&mut s);
        assert_eq!(s.next_timer(), Some(t0 + JOIN_TIMEOUT));
        s.handle(t0 + JOIN_TIMEOUT, Input::Tick);
        assert_eq!(drain(&mut s), [Output::Close]);
    }

    #[test]
    fn a_server_that_acks_then_drops_is_given_up() {
        let t0 = Instant::now();
        let mut s = Session::new(credentials(), "2026-11-27T10:00:00Z");
        drain(&mut s);
        let mut now = t0;
        let mut stopped = false;
        for _ in 0..=MAX_ATTEMPTS {
            s.handle(now, Input::Connected);
            s.handle(now, frame(json!({"type": "connection_ack"})));
            s.handle(
                now,
                Input::Closed {
                    code: Some(1011),
                    reason: "gone".into(),
                },
            );
            let out = drain(&mut s);
            if out.contains(&Output::Stopped(StopReason::GaveUp)) {
                stopped = true;
                break;
            }
            now = s.next_timer().unwrap();
            s.handle(now, Input::Tick);
            drain(&mut s);
        }
        assert!(stopped, "an acknowledgement alone is not a success");
    }

    #[test]
    fn chat_in_flight_is_sent_again_after_a_reconnection() {
        let (mut s, t0) = running();
        s.handle(t0, Input::SendChat("Question (live)".into()));
        drain(&mut s);
        s.handle(
            t0,
            Input::Closed {
                code: Some(1006),
                reason: "gone".into(),
            },
        );
        let t1 = s.next_timer().unwrap();
        s.handle(t1, Input::Tick);
        drain(&mut s);
        s.handle(t1, Input::Connected);
        s.handle(t1, frame(json!({"type": "connection_ack"})));
        drain(&mut s);
        s.handle(t1, frame(json!({"type": "next", "id": "user_current", "payload": {"data": {"user_current": [{"userId": "w_bot", "joined": true, "currentlyInMeeting": true}]}}})));
        let out = drain(&mut s);
        let again = out.iter().any(|o| matches!(o, Output::Send(ClientFrame::Subscribe { payload, .. }) if payload.variables["chatMessageInMarkdownFormat"] == "Question (live)"));
        assert!(again, "{out:?}");
    }

    #[test]
    fn removed_after_a_long_outage_the_bot_joins_again_and_a_refused_join_stops() {
        let (mut s, t0) = running();
        s.handle(
            t0,
            Input::Closed {
                code: Some(1006),
                reason: "gone".into(),
            },
        );
        let t1 = s.next_timer().unwrap();
        s.handle(t1, Input::Tick);
        s.handle(t1, Input::Connected);
        s.handle(t1, frame(json!({"type": "connection_ack"})));
        drain(&mut s);
        s.handle(t1, frame(json!({"type": "next", "id": "user_current", "payload": {"data": {"user_current": [{"userId": "w_bot", "joined": true, "currentlyInMeeting": false}]}}})));
        let out = drain(&mut s);
        let join_id = sent_ids(&out)
            .into_iter()
            .find(|id| id.starts_with("join-"))
            .expect("joins again");
        s.handle(t1, frame(json!({"type": "error", "id": join_id, "payload": [{"message": "meeting is full"}]})));
        assert_eq!(
            drain(&mut s).last(),
            Some(&Output::Stopped(StopReason::Refused(
                "meeting is full".into()
            )))
        );
    }
}
