//! The simulator's bbb-webrtc-sfu: `GET /bbb-webrtc-sfu?sessionToken=` (with the session's
//! `JSESSIONID`, else HTTP 401 as BBB's nginx `auth_request` answers) and the three viewer
//! flows with server offers from a real WebRTC sender playing live test media
//! ([`super::media`]). Cameras and the screenshare exist only while the scenario says so:
//! a `start` for anything else gets 2201, and a viewer gets `playStop` / `stopSharing` when
//! its stream goes away. Faults come from [`super::SfuFaults`] and the `drop_media_sockets`
//! event. Also `GET /bigbluebutton/api/stuns` (session-based, no checksum).

use super::media::{Pattern, Source, force_keyframe};
use super::state::SimState;
use crate::bridge::sfu::peer;
use crate::bridge::sfu::protocol::{ClientMessage, MAX_FRAME_BYTES};
use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rtc::interceptor::{
    Attribute, Interceptor, Packet as Intercepted, Slot, StreamInfo, TaggedPacket,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::marshal::Unmarshal;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

#[derive(serde::Deserialize)]
pub struct TokenQuery {
    #[serde(rename = "sessionToken", default)]
    session_token: String,
}

/// Who a connection is (from the session, as nginx's headers would say).
#[derive(Debug, Clone)]
struct Caller {
    meeting_id: String,
    voice_bridge: String,
}

fn caller(state: &SimState, token: &str, cookie: Option<&str>) -> Option<Caller> {
    if token.is_empty() {
        return None;
    }
    let inner = state.lock();
    inner.meetings.values().find_map(|m| {
        m.users
            .iter()
            .find(|u| u.session_token == token && cookie == Some(u.jsessionid.as_str()))
            .map(|_| Caller {
                meeting_id: m.meeting_id.clone(),
                voice_bridge: m.voice_bridge.clone(),
            })
    })
}

/// `GET /bigbluebutton/api/stuns?sessionToken=`: no STUN or TURN on a loopback simulator.
pub async fn stuns(
    State(state): State<SimState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let cookie = crate::web::cookies::get(&headers, "JSESSIONID");
    if caller(&state, &query.session_token, cookie.as_deref()).is_none() {
        return Json(json!({
            "returncode": "FAILED",
            "message": "Could not find conference.",
            "logoutURL": "",
        }))
        .into_response();
    }
    Json(json!({ "stunServers": [], "turnServers": [], "remoteIceCandidates": [] })).into_response()
}

/// `GET /bbb-webrtc-sfu` (WebSocket).
pub async fn upgrade(
    State(state): State<SimState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let cookie = crate::web::cookies::get(&headers, "JSESSIONID");
    let Some(caller) = caller(&state, &query.session_token, cookie.as_deref()) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| connection(state, caller, socket))
}

/// What a viewer session watches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Audio,
    Camera(String),
    Screenshare,
}

impl Key {
    fn kind(&self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Camera(_) => "video",
            Self::Screenshare => "screenshare",
        }
    }

    /// The fields every answer about this session carries.
    fn envelope(&self, id: &str) -> Value {
        let mut v = json!({ "type": self.kind(), "id": id });
        match self {
            Self::Audio => {}
            Self::Camera(camera) => {
                v["role"] = json!("viewer");
                v["cameraId"] = json!(camera);
            }
            Self::Screenshare => v["role"] = json!("recv"),
        }
        v
    }
}

/// One viewer session: its peer, and the media it plays once connected.
struct Viewer {
    pc: Arc<dyn PeerConnection>,
    tracks: Vec<(Pattern, Arc<TrackLocalStaticRTP>, u32)>,
    stalled: bool,
    playing: Vec<(Source, tokio::task::JoinHandle<()>)>,
    /// Signals the connection that this peer connected or failed.
    events: tokio::task::JoinHandle<()>,
}

impl Viewer {
    async fn close(self) {
        self.events.abort();
        for (_, writer) in &self.playing {
            writer.abort();
        }
        drop(self.playing);
        let _ = self.pc.close().await;
    }
}

enum Note {
    Connected(Key),
    Failed(Key),
}

async fn send(socket: &mut WebSocket, value: Value) -> bool {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .is_ok()
}

fn error(key: &Key, code: u16, reason: &str) -> Value {
    let mut v = key.envelope("error");
    v["code"] = json!(code);
    v["message"] = json!(reason);
    v["reason"] = json!(reason);
    v
}

/// Whether the stream a key names exists now.
fn exists(state: &SimState, caller: &Caller, key: &Key) -> bool {
    let inner = state.lock();
    let Some(meeting) = inner.meetings.get(&caller.meeting_id) else {
        return false;
    };
    match key {
        Key::Audio => true,
        Key::Camera(id) => meeting
            .users
            .iter()
            .any(|u| u.camera.as_deref() == Some(id)),
        Key::Screenshare => meeting.screenshare.is_some(),
    }
}

async fn connection(state: SimState, caller: Caller, mut socket: WebSocket) {
    let mut viewers: HashMap<Key, Viewer> = HashMap::new();
    let mut changes = state.changes.subscribe();
    let (notes_tx, mut notes) = mpsc::unbounded_channel::<Note>();
    let drop_signal = format!("!dropsfu:{}", caller.meeting_id);
    loop {
        tokio::select! {
            frame = socket.recv() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                if !handle(&state, &caller, &mut socket, &mut viewers, &notes_tx, &text).await {
                    break;
                }
            }
            note = notes.recv() => {
                let Some(note) = note else { break };
                match note {
                    Note::Connected(key) => {
                        if let Some(viewer) = viewers.get_mut(&key) && viewer.playing.is_empty() {
                            for (pattern, track, ssrc) in &viewer.tracks {
                                match play(&state, *pattern, Arc::clone(track), *ssrc) {
                                    Ok(playing) => viewer.playing.push(playing),
                                    Err(e) => tracing::warn!(error = %e, "simulator: test media failed"),
                                }
                            }
                            let started = match key {
                                Key::Audio => {
                                    let mut v = key.envelope("webRTCAudioSuccess");
                                    v["success"] = json!("MEDIA_FLOWING");
                                    v
                                }
                                _ => key.envelope("playStart"),
                            };
                            if !send(&mut socket, started).await {
                                break;
                            }
                        }
                    }
                    Note::Failed(key) => {
                        if let Some(viewer) = viewers.remove(&key) {
                            viewer.close().await;
                            let _ = send(&mut socket, error(&key, 2022, "ICE_STATE_FAILED")).await;
                        }
                    }
                }
            }
            change = changes.recv() => {
                match change {
                    Ok(signal) if signal == drop_signal => break,
                    Ok(meeting) if meeting == caller.meeting_id => {}
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
                if !state.lock().meetings.contains_key(&caller.meeting_id) {
                    break;
                }
                let gone: Vec<Key> = viewers
                    .keys()
                    .filter(|k| !exists(&state, &caller, k))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(viewer) = viewers.remove(&key) {
                        viewer.close().await;
                    }
                    let message = match &key {
                        Key::Screenshare => key.envelope("stopSharing"),
                        _ => key.envelope("playStop"),
                    };
                    if !send(&mut socket, message).await {
                        break;
                    }
                }
            }
        }
    }
    for (_, viewer) in viewers.drain() {
        viewer.close().await;
    }
}

/// Handles one frame; `false` closes the connection.
async fn handle(
    state: &SimState,
    caller: &Caller,
    socket: &mut WebSocket,
    viewers: &mut HashMap<Key, Viewer>,
    notes: &mpsc::UnboundedSender<Note>,
    text: &str,
) -> bool {
    let message = match ClientMessage::parse(text) {
        Ok(m) => m,
        Err(_) => {
            // The SFU answers what it cannot route with SFU_INVALID_REQUEST.
            let kind = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                .filter(|t| ["audio", "video", "screenshare"].contains(&t.as_str()))
                .unwrap_or_else(|| "video".to_owned());
            let v = json!({ "type": kind, "id": "error", "code": 2300,
                "message": "SFU_INVALID_REQUEST", "reason": "SFU_INVALID_REQUEST" });
            return send(socket, v).await;
        }
    };
    match message {
        ClientMessage::Ping(_) => send(socket, json!({ "id": "pong" })).await,
        ClientMessage::StartAudio(_) => {
            start(state, caller, socket, viewers, notes, Key::Audio).await
        }
        ClientMessage::StartCamera(s) => {
            start(
                state,
                caller,
                socket,
                viewers,
                notes,
                Key::Camera(s.camera_id),
            )
            .await
        }
        ClientMessage::StartScreenshare(s) => {
            if s.voice_bridge != format!("{}-SCREENSHARE", caller.voice_bridge) {
                return send(socket, error(&Key::Screenshare, 2201, "MEDIA_NOT_FOUND")).await;
            }
            start(state, caller, socket, viewers, notes, Key::Screenshare).await
        }
        ClientMessage::AudioAnswer(a) => answer(socket, viewers, Key::Audio, a.sdp_offer).await,
        ClientMessage::CameraAnswer(a) => {
            answer(socket, viewers, Key::Camera(a.camera_id), a.answer).await
        }
        ClientMessage::ScreenshareAnswer(a) => {
            answer(socket, viewers, Key::Screenshare, a.answer).await
        }
        ClientMessage::CameraCandidate(c) => {
            candidate(viewers, &Key::Camera(c.camera_id), c.candidate).await;
            true
        }
        ClientMessage::Candidate(c) => {
            let key = if c.kind == "audio" {
                Key::Audio
            } else {
                Key::Screenshare
            };
            candidate(viewers, &key, c.candidate).await;
            true
        }
        ClientMessage::StopCamera(s) => {
            if let Some(viewer) = viewers.remove(&Key::Camera(s.camera_id)) {
                viewer.close().await;
            }
            true
        }
    }
}

async fn candidate(viewers: &HashMap<Key, Viewer>, key: &Key, candidate: Value) {
    if let Some(viewer) = viewers.get(key)
        && !viewer.stalled
        && let Ok(init) = serde_json::from_value(candidate)
    {
        let _ = viewer.pc.add_ice_candidate(init).await;
    }
}

async fn answer(
    socket: &mut WebSocket,
    viewers: &mut HashMap<Key, Viewer>,
    key: Key,
    sdp: String,
) -> bool {
    let Some(viewer) = viewers.get(&key) else {
        return send(socket, error(&key, 2209, "MEDIA_ADAPTER_OBJECT_NOT_FOUND")).await;
    };
    if viewer.stalled {
        return true;
    }
    let applied = match RTCSessionDescription::answer(sdp) {
        Ok(answer) => viewer.pc.set_remote_description(answer).await.is_ok(),
        Err(_) => false,
    };
    if applied {
        true
    } else {
        if let Some(viewer) = viewers.remove(&key) {
            viewer.close().await;
        }
        send(socket, error(&key, 2202, "MEDIA_INVALID_SDP")).await
    }
}

async fn start(
    state: &SimState,
    caller: &Caller,
    socket: &mut WebSocket,
    viewers: &mut HashMap<Key, Viewer>,
    notes: &mpsc::UnboundedSender<Note>,
    key: Key,
) -> bool {
    if state.options.sfu.unknown_messages
        && !send(
            socket,
            json!({ "type": key.kind(), "id": "simulatorSaysHello" }),
        )
        .await
    {
        return false;
    }
    let refused = take_one(&mut state.lock().sfu_refusals);
    if refused || !exists(state, caller, &key) {
        return send(socket, error(&key, 2201, "MEDIA_NOT_FOUND")).await;
    }
    if take_one(&mut state.lock().sfu_silences) {
        // Left unanswered: a stalled SFU.
        return true;
    }
    if let Some(old) = viewers.remove(&key) {
        old.close().await;
    }
    let stalled = take_one(&mut state.lock().sfu_stalls);
    let has_audio = key == Key::Screenshare && {
        let inner = state.lock();
        inner
            .meetings
            .get(&caller.meeting_id)
            .and_then(|m| m.screenshare.as_ref())
            .is_some_and(|s| s.has_audio)
    };
    let patterns: Vec<Pattern> = match &key {
        Key::Audio => vec![Pattern::Tone],
        Key::Camera(_) => vec![Pattern::Camera],
        Key::Screenshare if has_audio => vec![Pattern::Screenshare, Pattern::Tone],
        Key::Screenshare => vec![Pattern::Screenshare],
    };
    match offer(&key, &patterns, stalled, notes.clone()).await {
        Ok((viewer, sdp)) => {
            viewers.insert(key.clone(), viewer);
            let mut v = key.envelope("startResponse");
            if !matches!(key, Key::Camera(_)) {
                // Video's startResponse has no `response` field.
                v["response"] = json!("accepted");
            }
            v["sdpAnswer"] = json!(sdp);
            send(socket, v).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "simulator: SFU offer failed");
            send(socket, error(&key, 2200, "MEDIA_GENERIC_ERROR")).await
        }
    }
}

/// Takes one fault from a count of faults still to inject; whether there was one.
fn take_one(left: &mut u32) -> bool {
    let due = *left > 0;
    *left = left.saturating_sub(1);
    due
}

/// Builds a sending peer with one track per pattern and makes its offer.
async fn offer(
    key: &Key,
    patterns: &[Pattern],
    stalled: bool,
    notes: mpsc::UnboundedSender<Note>,
) -> Result<(Viewer, String), String> {
    let (engine, registry) = peer::engine()?;
    // Last in the chain, after NACK and reports have read what they need.
    let registry = registry.with(Slot::from(14_000), KeyframeRequests::default());
    let settings = peer::PeerSettings {
        udp_addrs: vec!["127.0.0.1:0".to_owned()],
        ..peer::PeerSettings::default()
    };
    let (pc, mut events, mut gathering, _tracks) = peer::build(&settings, engine, registry).await?;
    let mut tracks = Vec::new();
    for (index, pattern) in patterns.iter().enumerate() {
        let (kind, codec) = if *pattern == Pattern::Tone {
            (RtpCodecKind::Audio, peer::opus())
        } else {
            (RtpCodecKind::Video, peer::vp8())
        };
        let ssrc: u32 = 0x5151_0000 + rand_u16() as u32 * 4 + index as u32;
        let id = format!("{}-{index}", key.kind());
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "amphi-sim".to_owned(),
            id.clone(),
            id,
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        )));
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        };
        pc.add_transceiver_from_track(Arc::clone(&track) as Arc<dyn TrackLocal>, Some(init))
            .await
            .map_err(|e| e.to_string())?;
        tracks.push((*pattern, track, ssrc));
    }
    let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| e.to_string())?;
    let mut sdp = peer::local_sdp(&pc, &mut gathering, settings.gathering_timeout).await?;
    if stalled {
        sdp = sdp
            .lines()
            .filter(|l| !l.starts_with("a=candidate"))
            .map(|l| format!("{l}\r\n"))
            .collect();
    }
    let watched = key.clone();
    let events_task = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let note = match event {
                peer::PeerEvent::Connected => Note::Connected(watched.clone()),
                peer::PeerEvent::Failed(_) => Note::Failed(watched.clone()),
                peer::PeerEvent::Candidate(_) => continue,
            };
            if notes.send(note).is_err() {
                return;
            }
        }
    });
    Ok((
        Viewer {
            pc,
            tracks,
            stalled,
            playing: Vec::new(),
            events: events_task,
        },
        sdp,
    ))
}

fn rand_u16() -> u16 {
    let mut bytes = [0u8; 2];
    let _ = getrandom::fill(&mut bytes);
    u16::from_be_bytes(bytes)
}

/// Starts a test source and a task writing its packets to the track (and forcing a
/// keyframe when the receiver asks for one).
fn play(
    state: &SimState,
    pattern: Pattern,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
) -> Result<(Source, tokio::task::JoinHandle<()>), String> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(512);
    let source = Source::start(pattern, tx)?;
    let payload_type = if pattern == Pattern::Tone { 111 } else { 96 };
    let feedback = Arc::clone(&track);
    let encoder = source.encoder();
    let counter = Arc::clone(&state.keyframe_requests);
    let requests = tokio::spawn(async move {
        while let Some(event) = feedback.poll().await {
            let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                continue;
            };
            if packets.iter().any(|p| asks_keyframe(p.as_ref())) {
                if let Some(encoder) = &encoder {
                    force_keyframe(encoder);
                }
                counter.send_modify(|n| *n += 1);
            }
        }
    });
    let writer = tokio::spawn(async move {
        let _requests = AbortOnDrop(requests);
        while let Some(bytes) = rx.recv().await {
            let Ok(mut packet) = rtc::rtp::Packet::unmarshal(&mut &bytes[..]) else {
                continue;
            };
            packet.header.ssrc = ssrc;
            packet.header.payload_type = payload_type;
            if track.write_rtp(packet).await.is_err() {
                return;
            }
        }
    });
    Ok((source, writer))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn asks_keyframe(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Hands keyframe requests to the application: the stock interceptors consume inbound RTCP,
/// so without this the sender's tracks would never hear a PLI.
#[derive(Default)]
struct KeyframeRequests {
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = std::time::Instant;

    fn handle_read(&mut self, mut message: TaggedPacket) -> Result<(), Self::Error> {
        if let Intercepted::Rtcp(packets) = &message.message.packet {
            let wanted: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| asks_keyframe(p.as_ref()))
                .cloned()
                .collect();
            if wanted.is_empty() {
                return Ok(());
            }
            message.message.packet = Intercepted::Rtcp(wanted);
            message.message.add(Attribute::DeliverToApplication);
        }
        self.inbound.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.inbound.pop_front()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.outbound.push_back(message);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.outbound.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}
