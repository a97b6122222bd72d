//! The simulator's `/graphql` WebSocket: the subset of BBB 3.0's bbb-graphql-middleware a
//! client needs. `graphql-transport-ws` only; `connection_init` must carry the four headers and
//! the upgrade the `JSESSIONID` cookie of the session (close 4403 otherwise); subscriptions are
//! answered from the simulated meeting and pushed again whenever it changes (identical results
//! are not repeated, as the middleware dedupes); mutations change the meeting. While a user has
//! a socket open they stay in the meeting; when their last one closes they leave after 10 s
//! (BBB's grace period), unless a new socket comes back first.

use super::lifecycle::now_ms;
use super::slides;
use super::state::{ChatMessage, SimMeeting, SimState};
use crate::client::operations::mutation_name;
use crate::client::protocol::{self, ClientFrame, Operation, ServerFrame};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// How long a user whose sockets all closed stays in the meeting.
pub const GRACE: Duration = Duration::from_secs(10);

/// `GET /graphql` (WebSocket).
pub async fn upgrade(
    State(state): State<SimState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Like bbb-graphql-middleware (coder/websocket), graphql-transport-ws is the subprotocol
    // chosen when offered; an upgrade that offers none is not refused.
    let cookie = crate::web::cookies::get(&headers, "JSESSIONID");
    ws.protocols([protocol::SUBPROTOCOL])
        .max_message_size(protocol::MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move { connection(state, socket, cookie).await })
}

/// Who a connection is.
struct Caller {
    meeting_id: String,
    user_id: String,
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })))
        .await;
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> bool {
    let text = serde_json::to_string(frame).unwrap_or_default();
    socket.send(Message::Text(text.into())).await.is_ok()
}

/// Checks `connection_init`: the session token of a user of a running meeting, the cookie
/// that user's `join` set, and all four headers.
fn authenticate(
    state: &SimState,
    text: &str,
    cookie: Option<&str>,
) -> Result<Caller, &'static str> {
    let Ok(ClientFrame::ConnectionInit { payload }) = ClientFrame::parse(text) else {
        return Err("connection_init expected");
    };
    let h = &payload.headers;
    if h.session_token.is_empty()
        || h.client_session_uuid.is_empty()
        || h.client_type.is_empty()
        || h.client_is_mobile.is_empty()
    {
        return Err("missing connection_init headers");
    }
    let inner = state.lock();
    inner
        .meetings
        .values()
        .find_map(|m| {
            m.users
                .iter()
                .chain(&m.departed)
                .find(|u| u.session_token == h.session_token)
                .map(|u| (m, u))
        })
        .filter(|(_, u)| cookie.is_some_and(|c| c == u.jsessionid))
        .map(|(m, u)| Caller {
            meeting_id: m.meeting_id.clone(),
            user_id: u.internal_id.clone(),
        })
        .ok_or("Unauthorized")
}

/// The subscriptions a connection serves: id → (root field, last result sent, chat cursor).
struct Subscription {
    field: &'static str,
    last: Option<Value>,
    chat_after: i64,
}

/// Root fields, longest first so that `user_current` is not taken for `user`.
const FIELDS: [&str; 7] = [
    "chat_message_public_stream",
    "pres_page_curr",
    "user_current",
    "user_camera",
    "screenshare",
    "meeting",
    "user",
];

fn root_field(query: &str) -> Option<&'static str> {
    let body = &query[query.find('{')? + 1..];
    let first = body.trim_start();
    FIELDS.into_iter().find(|f| {
        first.starts_with(f)
            && first[f.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

fn user_json(meeting: &SimMeeting, user: &super::state::SimUser) -> Value {
    json!({
        "userId": user.internal_id,
        "extId": user.external_id,
        "name": user.full_name,
        "role": user.role,
        "presenter": meeting.presenter.as_deref() == Some(user.internal_id.as_str()),
        "bot": user.bot,
    })
}

/// The result of `field` for `caller`, from the meeting (or its end).
fn result(state: &SimState, caller: &Caller, sub: &mut Subscription) -> Value {
    let inner = state.lock();
    let ended = inner.ended.iter().rev().find(|e| {
        e.meeting_id == caller.meeting_id && !inner.meetings.contains_key(&caller.meeting_id)
    });
    let meeting_json = |m: Option<&SimMeeting>| match (m, ended) {
        (_, Some(e)) => {
            json!({"ended": true, "endedAt": iso(e.time_ms), "endedReasonCode": serde_json::to_value(e.reason).unwrap_or_default(), "endedByUserName": null})
        }
        _ => {
            json!({"ended": false, "endedAt": null, "endedReasonCode": null, "endedByUserName": null})
        }
    };
    let meeting = inner.meetings.get(&caller.meeting_id);
    let rows = match sub.field {
        "meeting" => {
            let mut row = meeting_json(meeting);
            // 3.0.15's `meeting` table columns; a real server may refuse them to clients.
            for bridge in ["cameraBridge", "screenShareBridge", "audioBridge"] {
                row[bridge] = json!("bbb-webrtc-sfu");
            }
            json!([row])
        }
        "user_current" => match meeting.and_then(|m| m.users.iter().find(|u| u.internal_id == caller.user_id).map(|u| (m, u))) {
            Some((m, u)) => json!([{
                "userId": u.internal_id, "authToken": u.auth_token, "joined": u.client_joined,
                "joinErrorCode": null, "joinErrorMessage": null, "ejected": false, "ejectReasonCode": null,
                "loggedOut": false, "guestStatus": "ALLOW", "isModerator": u.role == "MODERATOR",
                "presenter": m.presenter.as_deref() == Some(u.internal_id.as_str()),
                "currentlyInMeeting": u.client_joined, "meeting": meeting_json(Some(m)),
            }]),
            None => json!([{"userId": caller.user_id, "joined": true, "currentlyInMeeting": false, "loggedOut": false, "meeting": meeting_json(meeting)}]),
        },
        "user" => json!(meeting.map_or_else(Vec::new, |m| m.users.iter().map(|u| user_json(m, u)).collect::<Vec<_>>())),
        "user_camera" => json!(meeting.map_or_else(Vec::new, |m| m
            .users
            .iter()
            .filter_map(|u| u.camera.as_ref().map(|stream| json!({
                "streamId": stream, "userId": u.internal_id,
                "user": {"name": u.full_name, "presenter": m.presenter.as_deref() == Some(u.internal_id.as_str()), "role": u.role},
            })))
            .collect::<Vec<_>>())),
        "screenshare" => json!(meeting.and_then(|m| m.screenshare.as_ref().map(|s| (m, s))).map_or_else(Vec::new, |(m, s)| vec![json!({
            "screenshareId": s.id, "stream": s.stream, "voiceConf": format!("{}-SCREENSHARE", m.voice_bridge),
            "screenshareConf": format!("{}-SCREENSHARE", m.voice_bridge), "contentType": "screenshare",
            "hasAudio": s.has_audio, "vidWidth": s.width, "vidHeight": s.height,
            "startedAt": iso(s.started_at), "stoppedAt": null,
        })])),
        "pres_page_curr" => json!(meeting.map_or_else(Vec::new, |m| vec![json!({
            "presentationId": slides::PRESENTATION_ID,
            "pageId": format!("{}/{}", slides::PRESENTATION_ID, m.slide),
            "num": m.slide, "totalPages": m.slides, "width": slides::WIDTH, "height": slides::HEIGHT,
            "svgUrl": slides::page_url(&state.base_url, &m.internal_id, "svg", m.slide),
            "pngUrl": slides::page_url(&state.base_url, &m.internal_id, "png", m.slide),
        })])),
        "chat_message_public_stream" => {
            let fresh: Vec<&ChatMessage> = meeting.map_or_else(Vec::new, |m| m.chat.iter().filter(|c| c.time_ms > sub.chat_after).collect());
            if let Some(last) = fresh.last() {
                sub.chat_after = last.time_ms;
            }
            json!(fresh.iter().map(|c| json!({
                "messageId": c.id, "createdAt": iso(c.time_ms), "message": c.message,
                "messageType": c.message_type, "senderId": c.sender_id, "senderName": c.sender_name,
                "senderRole": meeting.and_then(|m| m.users.iter().find(|u| u.internal_id == c.sender_id)).map_or("", |u| u.role.as_str()),
            })).collect::<Vec<_>>())
        }
        _ => json!([]),
    };
    let mut data = serde_json::Map::new();
    data.insert(sub.field.to_owned(), rows);
    json!({ "data": data })
}

/// Applies a mutation; the answer's `data` or an error message.
fn mutate(state: &SimState, caller: &Caller, op: &Operation) -> Result<Value, String> {
    let name = mutation_name(&op.query)
        .ok_or("not a routable mutation")?
        .to_owned();
    let vars = &op.variables;
    let mut inner = state.lock();
    let Some(meeting) = inner.meetings.get_mut(&caller.meeting_id) else {
        return Err("meeting not found".to_owned());
    };
    match name.as_str() {
        "userJoinMeeting" => {
            if let Some(index) = meeting
                .departed
                .iter()
                .position(|u| u.internal_id == caller.user_id)
            {
                let back = meeting.departed.remove(index);
                meeting.users.push(back);
            }
            let user = meeting
                .users
                .iter_mut()
                .find(|u| u.internal_id == caller.user_id)
                .ok_or("user not found")?;
            if vars.get("authToken").and_then(Value::as_str) != Some(user.auth_token.as_str()) {
                return Err("invalid authToken".to_owned());
            }
            user.client_joined = true;
        }
        "chatSendMessage" => {
            let text = vars
                .get("chatMessageInMarkdownFormat")
                .and_then(Value::as_str)
                .ok_or("chatMessageInMarkdownFormat missing")?;
            if vars.get("chatId").and_then(Value::as_str)
                != Some(crate::client::operations::PUBLIC_CHAT)
            {
                return Err("only the public chat is simulated".to_owned());
            }
            if text.is_empty() || text.chars().count() > 5000 {
                return Err("message must be 1 to 5000 characters".to_owned());
            }
            let user = meeting
                .users
                .iter()
                .find(|u| u.internal_id == caller.user_id)
                .ok_or("user not found")?;
            let message = ChatMessage {
                id: String::new(),
                sender_id: user.internal_id.clone(),
                sender_name: user.full_name.clone(),
                message: text.to_owned(),
                message_type: "default".to_owned(),
                time_ms: now_ms().max(meeting.chat.last().map_or(0, |c| c.time_ms + 1)),
            };
            state.chat_message(&mut inner, &caller.meeting_id, message);
        }
        "userLeaveMeeting" => {
            drop(inner);
            state.leave(&caller.meeting_id, &caller.user_id);
            return Ok(json!({ name: true }));
        }
        "userSetConnectionAlive" => {}
        other => return Err(format!("mutation {other} is not simulated")),
    }
    drop(inner);
    state.changed(&caller.meeting_id);
    Ok(json!({ name: true }))
}

/// Rejects columns BBB 3.0.15 does not grant (Hasura refuses the whole operation).
fn refused_column(field: &str, query: &str) -> Option<String> {
    if field == "user_current"
        && query
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == "bot")
    {
        return Some("field 'bot' not found in type: 'user_current'".to_owned());
    }
    None
}

async fn connection(state: SimState, mut socket: WebSocket, cookie: Option<String>) {
    // connection_init within ten seconds.
    let first = tokio::time::timeout(Duration::from_secs(10), socket.recv()).await;
    let text = match first {
        Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
        _ => {
            close(
                &mut socket,
                protocol::CLOSE_UNAUTHORIZED,
                "connection_init expected",
            )
            .await;
            return;
        }
    };
    let caller = match authenticate(&state, &text, cookie.as_deref()) {
        Ok(caller) => caller,
        Err(reason) => {
            tracing::debug!(reason, "simulator: GraphQL connection refused");
            close(&mut socket, protocol::CLOSE_UNAUTHORIZED, reason).await;
            return;
        }
    };
    if !send(&mut socket, &ServerFrame::ConnectionAck { payload: None }).await {
        return;
    }
    state.socket_opened(&caller.meeting_id, &caller.user_id);
    let mut changes = state.changes.subscribe();
    let mut subscriptions: HashMap<String, Subscription> = HashMap::new();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { break };
                let text = match message {
                    Message::Text(text) => text.to_string(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let frame = match ClientFrame::parse(&text) {
                    Ok(frame) => frame,
                    Err(e) => {
                        tracing::debug!(error = %e, "simulator: GraphQL frame ignored");
                        continue;
                    }
                };
                match frame {
                    ClientFrame::Ping { payload } => {
                        send(&mut socket, &ServerFrame::Pong { payload }).await;
                    }
                    ClientFrame::Pong { .. } | ClientFrame::ConnectionInit { .. } => {}
                    ClientFrame::Complete { id } => {
                        subscriptions.remove(&id);
                    }
                    ClientFrame::Subscribe { id, payload } => {
                        if payload.query.starts_with("mutation") {
                            let answer = mutate(&state, &caller, &payload);
                            match answer {
                                Ok(data) => {
                                    send(&mut socket, &ServerFrame::Next { id: id.clone(), payload: json!({ "data": data }) }).await;
                                    send(&mut socket, &ServerFrame::Complete { id }).await;
                                }
                                // An error ends the operation: no `complete` follows.
                                Err(message) => {
                                    send(&mut socket, &ServerFrame::Error { id, payload: json!([{ "message": message }]) }).await;
                                }
                            }
                            continue;
                        }
                        let Some(field) = root_field(&payload.query) else {
                            send(&mut socket, &ServerFrame::Error { id, payload: json!([{ "message": "unknown subscription" }]) }).await;
                            continue;
                        };
                        if let Some(message) = refused_column(field, &payload.query) {
                            send(&mut socket, &ServerFrame::Error { id, payload: json!([{ "message": message }]) }).await;
                            continue;
                        }
                        let chat_after = payload
                            .variables
                            .get("createdAt")
                            .and_then(Value::as_str)
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                            .map_or(0, |t| t.timestamp_millis());
                        let mut sub = Subscription { field, last: None, chat_after };
                        let data = result(&state, &caller, &mut sub);
                        sub.last = Some(data.clone());
                        let skip = field == "chat_message_public_stream" && data["data"][field].as_array().is_some_and(Vec::is_empty);
                        if !skip {
                            send(&mut socket, &ServerFrame::Next { id: id.clone(), payload: data }).await;
                        }
                        subscriptions.insert(id, sub);
                    }
                }
            }
            changed = changes.recv() => {
                match changed {
                    // Fault injection: the socket just drops, without a close frame.
                    Ok(signal) if signal == format!("!drop:{}", caller.meeting_id) => break,
                    Ok(meeting) if meeting != caller.meeting_id => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    _ => {}
                }
                for (id, sub) in subscriptions.iter_mut() {
                    let data = result(&state, &caller, sub);
                    let empty_chat = sub.field == "chat_message_public_stream" && data["data"][sub.field].as_array().is_some_and(Vec::is_empty);
                    if empty_chat || sub.last.as_ref() == Some(&data) {
                        continue;
                    }
                    sub.last = Some(data.clone());
                    if !send(&mut socket, &ServerFrame::Next { id: id.clone(), payload: data }).await {
                        break;
                    }
                }
                let over = !state.lock().meetings.contains_key(&caller.meeting_id);
                if over {
                    // BBB closes the clients' sockets once the meeting is gone.
                    close(&mut socket, 1000, "meeting ended").await;
                    break;
                }
            }
        }
    }
    state.socket_closed(&caller.meeting_id, &caller.user_id);
}

impl SimState {
    fn socket_opened(&self, meeting_id: &str, user_id: &str) {
        self.lock()
            .sockets
            .entry((meeting_id.to_owned(), user_id.to_owned()))
            .or_default()
            .0 += 1;
    }

    /// The last socket of a user gone: after the grace period, unless a socket came back in
    /// the meantime (even one that closed again since: its own timer decides), the user
    /// leaves. A meeting left to bots ends a minute later, as BBB's bots do not keep a meeting
    /// alive.
    fn socket_closed(&self, meeting_id: &str, user_id: &str) {
        let key = (meeting_id.to_owned(), user_id.to_owned());
        let generation = {
            let mut inner = self.lock();
            let entry = inner.sockets.entry(key.clone()).or_default();
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 > 0 {
                return;
            }
            entry.1 += 1;
            entry.1
        };
        let state = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(GRACE).await;
            let still_gone = state
                .lock()
                .sockets
                .get(&key)
                .is_none_or(|(open, closed)| *open == 0 && *closed == generation);
            if still_gone {
                state.leave(&key.0, &key.1);
            }
        });
    }
}
