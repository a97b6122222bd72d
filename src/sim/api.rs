//! bbb-web's API handlers: checksum on the raw query string, then the call.
// The `Err` of these helpers is the answer itself, sent at once: boxing it gains nothing.
#![allow(clippy::result_large_err)]

use super::lifecycle::now_ms;
use super::state::{
    ChatMessage, EndReason, SimHook, SimMeeting, SimState, SimUser, random_alnum, random_digits,
};
use super::xml::{create_fields, element, escape, failure, meeting_fields, success};
use crate::bbb::checksum::verify_call;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;

/// Parsed query parameters, first value wins.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: &str) -> Self {
        Params(
            url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

fn xml(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml;charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `GET /bigbluebutton/api`: versions and GraphQL URLs, no checksum.
pub async fn root(State(state): State<SimState>) -> Response {
    let ws = state.base_url.replacen("http", "ws", 1);
    xml(success(&format!(
        "{}{}{}{}{}",
        element("version", "2.0"),
        element("apiVersion", "2.0"),
        element("bbbVersion", &state.options.bbb_version),
        element("graphqlWebsocketUrl", format!("{ws}/graphql")),
        element("graphqlApiUrl", format!("{}/api/rest", state.base_url)),
    )))
}

/// A call caught by an injected hang: held without being handled, then answered 504 (what a
/// proxy in front of a stuck bbb-web says). `None` when no hang is due.
async fn hang(state: &SimState, call: &str) -> Option<Response> {
    let held = {
        let mut inner = state.lock();
        let (count, duration) = inner.api_hangs;
        if count == 0 {
            return None;
        }
        inner.api_hangs.0 -= 1;
        *inner.calls.entry(call.to_owned()).or_default() += 1;
        duration
    };
    tokio::time::sleep(held).await;
    Some((StatusCode::GATEWAY_TIMEOUT, "simulated hang").into_response())
}

/// Checks fault injection and the checksum; `Err` is the answer to send.
fn admit(state: &SimState, call: &str, raw: &str) -> Result<Params, Response> {
    {
        let mut inner = state.lock();
        *inner.calls.entry(call.to_owned()).or_default() += 1;
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            return Err((StatusCode::SERVICE_UNAVAILABLE, "simulated outage").into_response());
        }
    }
    if !verify_call(
        call,
        raw,
        state.options.secret.expose(),
        &state.options.checksums,
    ) {
        tracing::debug!(call, "simulator: checksum refused");
        return Err(xml(failure("checksumError", "Checksums do not match")));
    }
    Ok(Params::parse(raw))
}

pub async fn call(
    State(state): State<SimState>,
    Path(call): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    if let Some(answer) = hang(&state, &call).await {
        return answer;
    }
    let params = match admit(&state, &call, &raw) {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    dispatch(&state, &call, &params, None)
}

pub async fn call_post(
    State(state): State<SimState>,
    Path(call): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = raw.unwrap_or_default();
    if let Some(answer) = hang(&state, &call).await {
        return answer;
    }
    let params = match admit(&state, &call, &raw) {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !body.is_empty() && !content_type.contains("xml") {
        return xml(failure(
            "unsupportedContentType",
            "POST request Content-Type is missing or unsupported",
        ));
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    dispatch(&state, &call, &params, Some(&text))
}

pub async fn hooks_call(
    State(state): State<SimState>,
    Path(call): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    let name = format!("hooks/{call}");
    if call == "ping" {
        return xml(success(""));
    }
    let params = match admit(&state, &name, &raw) {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    match call.as_str() {
        "create" => hooks_create(&state, &params),
        "destroy" => hooks_destroy(&state, &params),
        "list" => hooks_list(&state, &params),
        _ => xml(failure(
            "unsupportedRequest",
            "This request is not supported.",
        )),
    }
}

fn dispatch(state: &SimState, call: &str, params: &Params, body: Option<&str>) -> Response {
    // The calls about one meeting check its `meetingID` first, as bbb-web's validators do.
    let with_id = |handler: &dyn Fn(&str) -> Response| match validate_meeting_id(params) {
        Ok(id) => handler(&id),
        Err(answer) => answer,
    };
    match call {
        "create" => with_id(&|id| create(state, id, params, body)),
        "join" => with_id(&|id| join(state, id, params)),
        "isMeetingRunning" => with_id(&|id| is_meeting_running(state, id)),
        "getMeetingInfo" => with_id(&|id| get_meeting_info(state, id)),
        "getMeetings" => get_meetings(state),
        "end" => with_id(&|id| end(state, id)),
        "sendChatMessage" => with_id(&|id| send_chat_message(state, id, params)),
        "insertDocument" => with_id(&|id| insert_document(state, id, body)),
        "getRecordings" => xml(state.get_recordings(&params.0)),
        "publishRecordings" | "deleteRecordings" | "updateRecordings" => {
            xml(state.change_recordings(call, &params.0))
        }
        _ => xml(failure(
            "unsupportedRequest",
            "This request is not supported.",
        )),
    }
}

fn validate_meeting_id(params: &Params) -> Result<String, Response> {
    let Some(id) = params.get("meetingID").filter(|s| !s.is_empty()) else {
        return Err(xml(failure(
            "missingParamMeetingID",
            "You must specify a meeting ID for the meeting.",
        )));
    };
    if id.chars().count() < 2 || id.chars().count() > 256 || id.contains(',') {
        return Err(xml(failure(
            "validationError",
            "Meeting ID must be between 2 and 256 characters and cannot contain commas",
        )));
    }
    Ok(id.to_owned())
}

fn create(state: &SimState, meeting_id: &str, params: &Params, body: Option<&str>) -> Response {
    let name = params.get("name").unwrap_or("");
    if name.chars().count() < 2 || name.chars().count() > 256 {
        return xml(failure(
            "validationError",
            "Meeting name must be between 2 and 256 characters",
        ));
    }
    let mut inner = state.lock();
    if let Some(existing) = inner.meetings.get(meeting_id) {
        let same = params
            .get("attendeePW")
            .is_none_or(|p| p == existing.attendee_pw)
            && params
                .get("moderatorPW")
                .is_none_or(|p| p == existing.moderator_pw);
        if !same {
            return xml(failure(
                "idNotUnique",
                "A meeting already exists with that meeting ID.  Please use a different meeting ID.",
            ));
        }
        return xml(success(&format!(
            "{}<messageKey>duplicateWarning</messageKey><message>This conference was already in existence and may currently be in progress.</message>",
            create_fields(existing)
        )));
    }
    let create_time = now_ms();
    let internal_id = format!(
        "{}-{create_time}",
        hex::encode(Sha1::digest(meeting_id.as_bytes()))
    );
    let metadata: BTreeMap<String, String> = params
        .0
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("meta_")
                .filter(|k| is_meta_name(k))
                .map(|k| (k.to_ascii_lowercase(), v.clone()))
        })
        .collect();
    let documents = body.map(document_names).unwrap_or_default();
    let meeting = SimMeeting {
        meeting_id: meeting_id.to_owned(),
        internal_id,
        name: name.to_owned(),
        attendee_pw: params
            .get("attendeePW")
            .map_or_else(|| random_alnum(8), str::to_owned),
        moderator_pw: params
            .get("moderatorPW")
            .map_or_else(|| random_alnum(8), str::to_owned),
        create_time,
        voice_bridge: params
            .get("voiceBridge")
            .map_or_else(|| format!("7{}", random_digits(4)), str::to_owned),
        duration: params
            .get("duration")
            .and_then(|d| d.parse().ok())
            .unwrap_or(0),
        record: params.flag("record"),
        max_participants: params
            .get("maxParticipants")
            .and_then(|d| d.parse().ok())
            .unwrap_or(0),
        metadata,
        documents,
        users: Vec::new(),
        chat: Vec::new(),
        forcibly_ended: false,
        start_time: create_time,
        departed: Vec::new(),
        presenter: None,
        screenshare: None,
        slide: 1,
        slides: super::slides::PAGES,
        auto_start_recording: params.flag("autoStartRecording"),
        recording_marked: false,
        recording: false,
        started: false,
        ever_joined: false,
        participants_seen: 0,
        empty_since: None,
        meeting_ended_url: params
            .get("meetingEndedURL")
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        create_params: params
            .0
            .iter()
            .filter(|(k, _)| k != "checksum")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let answer = success(&format!(
        "{}<messageKey></messageKey><message></message>",
        create_fields(&meeting)
    ));
    state.meeting_created(&inner, &meeting);
    inner.meetings.insert(meeting_id.to_owned(), meeting);
    drop(inner);
    if let Some(scenario) = state
        .options
        .scenario
        .as_ref()
        .filter(|s| s.meeting_id.as_deref().is_none_or(|m| m == meeting_id))
    {
        let (state, meeting_id, steps) =
            (state.clone(), meeting_id.to_owned(), scenario.steps.clone());
        tokio::spawn(async move {
            if let Err(e) = state.play(&meeting_id, &steps).await {
                tracing::warn!(error = %e, "simulator: scenario stopped");
            }
        });
    }
    xml(answer)
}

/// bbb-web keeps only metadata names that are XML names: a letter, then letters, digits and
/// dashes.
pub(crate) fn is_meta_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The document names of a `<modules>` body (URL filename or inline name).
fn document_names(body: &str) -> Vec<String> {
    body.split("<document")
        .skip(1)
        .filter_map(|part| {
            ["filename=\"", "name=\""].iter().find_map(|attr| {
                let start = part.find(attr)? + attr.len();
                let end = part[start..].find('"')? + start;
                Some(part[start..end].to_owned())
            })
        })
        .collect()
}

fn join(state: &SimState, meeting_id: &str, params: &Params) -> Response {
    let Some(full_name) = params.get("fullName").filter(|s| !s.trim().is_empty()) else {
        return xml(failure(
            "missingParamFullName",
            "You must specify a name for the attendee who will be joining the meeting.",
        ));
    };
    let mut inner = state.lock();
    let forcibly_ended = inner
        .ended
        .iter()
        .rev()
        .find(|e| e.meeting_id == meeting_id)
        .is_some_and(|e| e.reason == EndReason::EndedFromApi);
    let Some(meeting) = inner.meetings.get_mut(meeting_id) else {
        // bbb-web keeps a meeting ended by `end` for a while and refuses to let anyone back in.
        if forcibly_ended {
            return xml(failure(
                "meetingForciblyEnded",
                "You can not re-join a meeting that has been forcibly ended.  However, once the meeting is removed from memory (according to the timeout configured on this server, you will be able to once again create a meeting with the same meeting ID",
            ));
        }
        return xml(failure(
            "invalidMeetingIdentifier",
            "The meeting ID that you supplied did not match any existing meetings",
        ));
    };
    if let Some(time) = params.get("createTime")
        && time != meeting.create_time.to_string()
    {
        return xml(failure(
            "mismatchCreateTimeParam",
            "The createTime parameter submitted mismatches with the current meeting.",
        ));
    }
    let role = match params.get("role").map(str::to_ascii_uppercase).as_deref() {
        Some("MODERATOR") => "MODERATOR",
        Some("VIEWER") => "VIEWER",
        _ => match params.get("password") {
            Some(p) if p == meeting.moderator_pw => "MODERATOR",
            Some(p) if p == meeting.attendee_pw => "VIEWER",
            _ => {
                return xml(failure(
                    "invalidPassword",
                    "You either did not supply a password or the password supplied is neither the attendee or moderator password for this conference.",
                ));
            }
        },
    };
    let bot = params.flag("bot");
    if !bot
        && meeting.max_participants > 0
        && meeting.users.iter().filter(|u| !u.bot).count() >= meeting.max_participants as usize
    {
        return xml(failure(
            "maxParticipantsReached",
            "The number of participants allowed for this meeting has been reached.",
        ));
    }
    let internal_user = format!("w_{}", random_alnum(12));
    let user = SimUser {
        internal_id: internal_user.clone(),
        external_id: params
            .get("userID")
            .map_or_else(|| internal_user.clone(), str::to_owned),
        full_name: full_name.chars().filter(|c| !c.is_control()).collect(),
        role: role.to_owned(),
        bot,
        session_token: random_alnum(16),
        auth_token: random_alnum(12),
        jsessionid: random_alnum(32).to_ascii_uppercase(),
        client_joined: false,
        camera: None,
    };
    let session_token = user.session_token.clone();
    let jsessionid = user.jsessionid.clone();
    meeting.started = true;
    if !bot {
        meeting.ever_joined = true;
        meeting.participants_seen += 1;
        meeting.empty_since = None;
        if meeting.record && meeting.auto_start_recording && !meeting.recording {
            meeting.recording = true;
            meeting.recording_marked = true;
        }
    }
    let answer = success(&format!(
        "<messageKey>successfullyJoined</messageKey><message>You have joined successfully.</message>{}{}{}{}{}{}",
        element("meeting_id", &meeting.internal_id),
        element("user_id", &user.internal_id),
        element("auth_token", &user.auth_token),
        element("session_token", &user.session_token),
        element("guestStatus", "ALLOW"),
        element(
            "url",
            format!(
                "{}/sim/client?sessionToken={}",
                state.base_url, user.session_token
            )
        ),
    ));
    meeting.users.push(user);
    let meeting = meeting.clone();
    state.user_joined(&inner, &meeting, meeting.users.len() - 1);
    drop(inner);
    state.changed(meeting_id);
    let cookie = format!("JSESSIONID={jsessionid}; Path=/; HttpOnly");
    let mut response = if params
        .get("redirect")
        .is_some_and(|r| r.eq_ignore_ascii_case("false"))
    {
        xml(answer)
    } else {
        let location = format!("{}/sim/client?sessionToken={session_token}", state.base_url);
        (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn is_meeting_running(state: &SimState, meeting_id: &str) -> Response {
    let running = state
        .lock()
        .meetings
        .get(meeting_id)
        .is_some_and(|m| m.started);
    xml(success(&element("running", running)))
}

fn get_meeting_info(state: &SimState, meeting_id: &str) -> Response {
    match state.lock().meetings.get(meeting_id) {
        Some(meeting) => xml(success(&meeting_fields(meeting))),
        None => xml(failure("notFound", "A meeting with that ID does not exist")),
    }
}

fn get_meetings(state: &SimState) -> Response {
    let inner = state.lock();
    let meetings: String = inner
        .meetings
        .values()
        .map(|m| format!("<meeting>{}</meeting>", meeting_fields(m)))
        .collect();
    xml(success(&format!("<meetings>{meetings}</meetings>")))
}

fn end(state: &SimState, meeting_id: &str) -> Response {
    let mut inner = state.lock();
    if !state.end_meeting(&mut inner, meeting_id, EndReason::EndedFromApi) {
        return xml(failure(
            "notFound",
            "We could not find a meeting with that meeting ID - perhaps the meeting is not yet running?",
        ));
    }
    xml(success(
        "<messageKey>sentEndMeetingRequest</messageKey><message>A request to end the meeting was sent.  Please wait a few seconds, and then use the getMeetingInfo or isMeetingRunning API calls to verify that it was ended.</message>",
    ))
}

fn send_chat_message(state: &SimState, meeting_id: &str, params: &Params) -> Response {
    let message = params.get("message").unwrap_or("");
    if message.is_empty() || message.chars().count() > 500 {
        return xml(failure(
            "validationError",
            "Message must be between 1 and 500 characters",
        ));
    }
    let user_name = params.get("userName").unwrap_or("System");
    if user_name.chars().count() > 255 {
        return xml(failure(
            "validationError",
            "User name must be at most 255 characters",
        ));
    }
    let mut inner = state.lock();
    if inner.meetings.get(meeting_id).is_none_or(|m| !m.started) {
        return xml(failure(
            "meetingNotFound",
            "Meeting not found or not active",
        ));
    }
    let message = ChatMessage {
        id: String::new(),
        sender_id: "SYSTEM".to_owned(),
        sender_name: user_name.to_owned(),
        message: message.to_owned(),
        message_type: "api".to_owned(),
        time_ms: now_ms(),
    };
    state.chat_message(&mut inner, meeting_id, message);
    xml(success("<messageKey></messageKey><message></message>"))
}

fn insert_document(state: &SimState, meeting_id: &str, body: Option<&str>) -> Response {
    let mut inner = state.lock();
    let Some(meeting) = inner.meetings.get_mut(meeting_id) else {
        return xml(failure("notFound", "A meeting with that ID does not exist"));
    };
    meeting
        .documents
        .extend(body.map(document_names).unwrap_or_default());
    xml(success("<message>Presentation is being uploaded</message>"))
}

fn hooks_create(state: &SimState, params: &Params) -> Response {
    let Some(url) = params.get("callbackURL").filter(|u| !u.is_empty()) else {
        return xml(failure(
            "missingParamCallbackURL",
            "You must specify a callbackURL in the parameters.",
        ));
    };
    let mut inner = state.lock();
    if let Some(existing) = inner.hooks.iter().find(|h| h.callback_url == url) {
        return xml(success(&format!(
            "{}{}{}<messageKey>duplicateWarning</messageKey><message>There is already a hook for this callback URL.</message>",
            element("hookID", existing.id),
            element("permanentHook", false),
            element("rawData", existing.raw)
        )));
    }
    let id = inner.next_hook_id;
    inner.next_hook_id += 1;
    let hook = SimHook {
        id,
        callback_url: url.to_owned(),
        meeting_id: params.get("meetingID").map(str::to_owned),
        event_ids: params.get("eventID").map(str::to_owned),
        raw: params.flag("getRaw"),
    };
    let answer = success(&format!(
        "{}{}{}",
        element("hookID", id),
        element("permanentHook", false),
        element("rawData", hook.raw)
    ));
    inner.hooks.push(hook);
    xml(answer)
}

fn hooks_destroy(state: &SimState, params: &Params) -> Response {
    let Some(id) = params.get("hookID").filter(|u| !u.is_empty()) else {
        return xml(failure(
            "missingParamHookID",
            "You must specify a hookID in the parameters.",
        ));
    };
    let mut inner = state.lock();
    let before = inner.hooks.len();
    inner.hooks.retain(|h| h.id.to_string() != id);
    if inner.hooks.len() == before {
        return xml(failure(
            "destroyMissingHook",
            "The hook informed was not found.",
        ));
    }
    xml(success(&element("removed", true)))
}

fn hooks_list(state: &SimState, params: &Params) -> Response {
    let inner = state.lock();
    let filter = params.get("meetingID");
    let hooks: String = inner
        .hooks
        .iter()
        .filter(|h| filter.is_none() || h.meeting_id.as_deref() == filter || h.meeting_id.is_none())
        .map(|h| {
            format!(
                "<hook>{}<callbackURL><![CDATA[{}]]></callbackURL>{}{}{}{}</hook>",
                element("hookID", h.id),
                h.callback_url.replace("]]>", "]]]]><![CDATA[>"),
                h.meeting_id
                    .as_ref()
                    .map(|m| element("meetingID", m))
                    .unwrap_or_default(),
                h.event_ids
                    .as_ref()
                    .map(|e| element("eventID", e))
                    .unwrap_or_default(),
                element("permanentHook", false),
                element("rawData", h.raw),
            )
        })
        .collect();
    xml(success(&format!("<hooks>{hooks}</hooks>")))
}

/// `GET /sim/meetings`: the simulator's state as JSON.
pub async fn sim_meetings(State(state): State<SimState>) -> Json<Vec<SimMeeting>> {
    Json(state.meetings())
}

/// `GET /sim/meetings/{meetingID}/chat`.
pub async fn sim_chat(State(state): State<SimState>, Path(meeting_id): Path<String>) -> Response {
    match state.chat(&meeting_id) {
        Some(chat) => Json(chat).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "no such meeting"})),
        )
            .into_response(),
    }
}

/// Where a browser `join` lands: a page that shows who is in the meeting.
pub async fn sim_client(State(state): State<SimState>, RawQuery(raw): RawQuery) -> Response {
    let params = Params::parse(&raw.unwrap_or_default());
    let token = params.get("sessionToken").unwrap_or("");
    let inner = state.lock();
    let found = inner.meetings.values().find_map(|m| {
        m.users
            .iter()
            .find(|u| u.session_token == token)
            .map(|u| (m, u))
    });
    let Some((meeting, user)) = found else {
        return (
            StatusCode::NOT_FOUND,
            Html(
                "<!doctype html><title>BBB simulator</title><p>Unknown or expired session.</p>"
                    .to_owned(),
            ),
        )
            .into_response();
    };
    let people: String = meeting
        .users
        .iter()
        .map(|u| format!("<li>{} ({})</li>", escape(&u.full_name), escape(&u.role)))
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{name} · BBB simulator</title>\
         <h1>{name}</h1><p>You joined as <strong>{you}</strong> ({role}).</p><h2>In the meeting</h2><ul>{people}</ul>",
        name = escape(&meeting.name),
        you = escape(&user.full_name),
        role = escape(&user.role),
    ))
    .into_response()
}

/// `GET /sim/ended`: meetings that have ended and why.
pub async fn sim_ended(State(state): State<SimState>) -> Json<Vec<super::state::EndedMeeting>> {
    Json(state.ended())
}

/// `GET /sim/recordings`: every recording, deleted ones included.
pub async fn sim_recordings(
    State(state): State<SimState>,
) -> Json<Vec<super::state::SimRecording>> {
    Json(state.recordings())
}

/// `GET /sim/callbacks`: every callback and webhook delivery so far.
pub async fn sim_callbacks(State(state): State<SimState>) -> Json<Vec<super::outbox::Delivery>> {
    Json(state.deliveries())
}

fn sim_not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": format!("no such {what}") })),
    )
        .into_response()
}

/// `POST /sim/meetings/{meetingID}/users/{userID}/leave`: a participant leaves.
pub async fn sim_leave(
    State(state): State<SimState>,
    Path((meeting_id, user_id)): Path<(String, String)>,
) -> Response {
    if state.leave(&meeting_id, &user_id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        sim_not_found("meeting or user")
    }
}

/// `POST /sim/meetings/{meetingID}/recording?on=true|false`: the record button.
pub async fn sim_recording(
    State(state): State<SimState>,
    Path(meeting_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let on = Params::parse(&raw.unwrap_or_default()).flag("on");
    if state.set_recording(&meeting_id, on) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        sim_not_found("recorded meeting")
    }
}

/// A participant's public chat message, for `POST /sim/meetings/{meetingID}/chat`.
#[derive(serde::Deserialize)]
pub struct PostedChat {
    pub sender_name: String,
    pub message: String,
}

/// `POST /sim/meetings/{meetingID}/chat`: a participant writes in the public chat.
pub async fn sim_post_chat(
    State(state): State<SimState>,
    Path(meeting_id): Path<String>,
    Json(posted): Json<PostedChat>,
) -> Response {
    let mut inner = state.lock();
    let Some(sender) = inner.meetings.get(&meeting_id).map(|m| {
        m.users
            .iter()
            .find(|u| u.full_name == posted.sender_name)
            .map_or_else(
                || format!("w_{}", random_alnum(12)),
                |u| u.internal_id.clone(),
            )
    }) else {
        return sim_not_found("meeting");
    };
    if posted.message.is_empty() || posted.message.chars().count() > 5000 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"error": "message must be 1 to 5000 characters"})),
        )
            .into_response();
    }
    let message = ChatMessage {
        id: String::new(),
        sender_id: sender,
        sender_name: posted.sender_name,
        message: posted.message,
        message_type: "default".to_owned(),
        time_ms: now_ms(),
    };
    state.chat_message(&mut inner, &meeting_id, message);
    StatusCode::NO_CONTENT.into_response()
}
