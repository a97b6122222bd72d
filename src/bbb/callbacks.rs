//! What BBB calls back, checked and parsed: the recording-ready JWT, the end-callback token
//! amphi puts in the URL it registers, and bbb-webhooks deliveries. Pure functions, no I/O: the
//! axum receivers in `web::callbacks` and the simulator both use them, and the fuzz targets
//! call them directly.

use crate::config::ChecksumAlgorithm;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

/// Largest `signed_parameters` token accepted (BBB's are about 200 bytes).
pub const MAX_JWT_LEN: usize = 8 * 1024;
/// Largest webhook body accepted; bbb-webhooks sends one event per POST.
pub const MAX_HOOK_BODY: usize = 1024 * 1024;
/// Longest meeting or recording id accepted from a callback (bbb-web allows 256 characters).
const MAX_ID_LEN: usize = 512;

/// Why a callback was refused. The text is safe to log and to answer: it never holds the
/// secret, the token or the checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("the token is not a JSON Web Token (three base64url parts)")]
    MalformedToken,
    #[error("the token is too long")]
    TokenTooLong,
    #[error("the token's header is not valid JSON")]
    MalformedHeader,
    #[error("the token is signed with {0:?}; only HS256 is accepted")]
    Algorithm(String),
    #[error("the token's signature does not match the shared secret")]
    Signature,
    #[error("the token's payload lacks {0}")]
    Payload(&'static str),
    #[error("the end callback has no token")]
    MissingToken,
    #[error("the end callback's token does not match the meeting")]
    WrongToken,
    #[error("the callback has no meetingID")]
    MissingMeetingId,
    #[error("the webhook has no checksum")]
    MissingChecksum,
    #[error("the webhook's checksum does not match the shared secret")]
    WrongChecksum,
    #[error("the webhook body is too large")]
    BodyTooLarge,
    #[error("the webhook body has no event field")]
    MissingEvent,
    #[error("the webhook's events are not valid JSON: {0}")]
    MalformedEvents(String),
}

/// A recording has been published in one playback format.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct RecordingReady {
    /// The external meeting id (amphi's).
    pub meeting_id: String,
    /// BBB's record id (the internal meeting id).
    pub record_id: String,
}

/// Everything BBB tells amphi without being asked.
#[derive(Debug, Clone, PartialEq)]
pub enum BbbEvent {
    /// The recording-ready callback, once per recording even when BBB calls once per format.
    RecordingReady(RecordingReady),
    /// The end callback (`meta_endCallbackUrl`).
    MeetingEnded {
        meeting_id: String,
        /// The meeting was recorded and recording was switched on at least once.
        recording_marks: bool,
    },
    /// One bbb-webhooks event.
    Hook(HookEvent),
}

// ---------------------------------------------------------------------------------------------
// Recording ready: JWT HS256

type HmacSha256 = Hmac<Sha256>;

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// Verifies a recording-ready `signed_parameters` token: exactly HS256 with `secret`, a
/// `typ` of `JWT` when present, no `crit` extensions, and a payload with both ids.
pub fn verify_recording_ready(token: &str, secret: &[u8]) -> Result<RecordingReady, CallbackError> {
    if token.len() > MAX_JWT_LEN {
        return Err(CallbackError::TokenTooLong);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CallbackError::MalformedToken);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| CallbackError::MalformedToken)
    };
    let header: JwtHeader =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| CallbackError::MalformedHeader)?;
    if header.alg != "HS256" {
        return Err(CallbackError::Algorithm(truncate(&header.alg, 16)));
    }
    if header
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        || header.crit.is_some()
    {
        return Err(CallbackError::MalformedHeader);
    }
    let signature = decode(signature_b64)?;
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| CallbackError::Signature)?;
    mac.update(header_b64.as_bytes());
    mac.update(b".");
    mac.update(payload_b64.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| CallbackError::Signature)?;
    let payload: Value =
        serde_json::from_slice(&decode(payload_b64)?).map_err(|_| CallbackError::MalformedToken)?;
    let field = |name: &'static str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= MAX_ID_LEN)
            .map(str::to_owned)
            .ok_or(CallbackError::Payload(name))
    };
    Ok(RecordingReady {
        meeting_id: field("meeting_id")?,
        record_id: field("record_id")?,
    })
}

/// Signs a recording-ready token as BBB's post-publish script does (the simulator uses it).
pub fn sign_recording_ready(ready: &RecordingReady, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        serde_json::json!({"meeting_id": ready.meeting_id, "record_id": ready.record_id})
            .to_string(),
    );
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

// ---------------------------------------------------------------------------------------------
// Meeting ended: a per-meeting token in the registered URL

/// The token amphi puts in a meeting's `meta_endCallbackUrl`: an HMAC of the meeting id under
/// amphi's own `secret_key`, so nobody without that key can end-notify a meeting, and a token
/// seen for one meeting is useless for another.
pub fn end_callback_token(key: &[u8], meeting_id: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"amphi-end-callback:");
    mac.update(meeting_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The URL to register as `meta_endCallbackUrl` for a meeting; BBB appends `meetingID` and
/// `recordingmarks`.
pub fn end_callback_url(public_url: &str, key: &[u8], meeting_id: &str) -> String {
    format!(
        "{}/bbb/callbacks/end?token={}",
        public_url.trim_end_matches('/'),
        end_callback_token(key, meeting_id)
    )
}

/// Checks an end callback's query (`token`, `meetingID`, `recordingmarks`).
pub fn verify_end_callback(key: &[u8], raw_query: &str) -> Result<BbbEvent, CallbackError> {
    let mut token = None;
    let mut meeting_id = None;
    let mut marks = false;
    for (name, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        match name.as_ref() {
            "token" if token.is_none() => token = Some(value.into_owned()),
            "meetingID" if meeting_id.is_none() => meeting_id = Some(value.into_owned()),
            "recordingmarks" => marks = value.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(CallbackError::MissingToken)?;
    let meeting_id = meeting_id
        .filter(|m| !m.is_empty() && m.len() <= MAX_ID_LEN)
        .ok_or(CallbackError::MissingMeetingId)?;
    if !crate::bbb::checksum::checksums_match(&end_callback_token(key, &meeting_id), &token) {
        return Err(CallbackError::WrongToken);
    }
    Ok(BbbEvent::MeetingEnded {
        meeting_id,
        recording_marks: marks,
    })
}

// ---------------------------------------------------------------------------------------------
// bbb-webhooks

/// The path amphi registers with `hooks/create`.
pub fn webhook_url(public_url: &str) -> String {
    format!("{}/bbb/callbacks/hooks", public_url.trim_end_matches('/'))
}

/// Checks a delivery: `checksum` = `H(callbackURL + body + secret)`, the algorithm chosen by
/// the checksum's length (bbb-webhooks defaults to SHA-1; `hookChecksumAlgorithm` may pick
/// another), `callback_url` being exactly the URL amphi registered.
pub fn verify_webhook(
    callback_url: &str,
    body: &[u8],
    checksum: Option<&str>,
    secret: &str,
) -> Result<(), CallbackError> {
    let checksum = checksum
        .filter(|c| !c.is_empty())
        .ok_or(CallbackError::MissingChecksum)?;
    let algorithm =
        ChecksumAlgorithm::from_hex_len(checksum.len()).ok_or(CallbackError::WrongChecksum)?;
    let expected = algorithm.hex_digest(&[callback_url.as_bytes(), body, secret.as_bytes()]);
    if crate::bbb::checksum::checksums_match(&expected, checksum) {
        Ok(())
    } else {
        Err(CallbackError::WrongChecksum)
    }
}

/// The `checksum` query parameter of a delivery.
pub fn webhook_checksum(raw_query: &str) -> Option<String> {
    url::form_urlencoded::parse(raw_query.as_bytes())
        .find(|(name, _)| name == "checksum")
        .map(|(_, value)| value.into_owned())
}

/// A meeting as webhooks name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookMeeting {
    pub internal_id: String,
    pub external_id: String,
}

/// A user as webhooks name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookUser {
    pub internal_id: String,
    pub external_id: String,
    pub name: Option<String>,
    pub role: Option<String>,
}

/// One bbb-webhooks event, typed for what amphi acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum HookEvent {
    MeetingCreated {
        meeting: HookMeeting,
        name: String,
        record: bool,
    },
    MeetingEnded {
        meeting: HookMeeting,
    },
    UserJoined {
        meeting: HookMeeting,
        user: HookUser,
    },
    UserLeft {
        meeting: HookMeeting,
        user: HookUser,
    },
    PresenterAssigned {
        meeting: HookMeeting,
        user: HookUser,
    },
    PresenterUnassigned {
        meeting: HookMeeting,
        user: HookUser,
    },
    CameraStarted {
        meeting: HookMeeting,
        user: HookUser,
        stream: String,
    },
    CameraStopped {
        meeting: HookMeeting,
        user: HookUser,
        stream: String,
    },
    ScreenshareStarted {
        meeting: HookMeeting,
    },
    ScreenshareStopped {
        meeting: HookMeeting,
    },
    /// A public chat message (`chat-group-message-sent`).
    ChatMessage {
        meeting: HookMeeting,
        id: String,
        text: String,
        sender_id: String,
        sender_name: String,
        time_ms: i64,
    },
    /// A recording-processing step: `rap-{archive,sanity,…}-{started,ended}`.
    RecordingStep {
        record_id: String,
        step: String,
        ended: bool,
        success: Option<bool>,
    },
    /// `rap-published`, `rap-unpublished` or `rap-deleted`.
    RecordingChanged {
        record_id: String,
        change: String,
        format: Option<String>,
    },
    /// Any other mapped event (audio, polls, raised hands…), kept by id.
    Other {
        id: String,
        meeting: Option<HookMeeting>,
    },
    /// A raw akka message (hooks registered with `getRaw=true`), kept by name.
    Raw {
        name: String,
    },
}

/// A webhook POST's body: `domain`, `event` (a JSON array of events, or one event from older
/// servers) and `timestamp`.
#[derive(Debug, Clone, PartialEq)]
pub struct HookDelivery {
    pub domain: Option<String>,
    pub timestamp_ms: Option<i64>,
    pub events: Vec<HookEvent>,
    /// Why each unreadable event was left out: one bad event does not cost the others (a
    /// refused delivery is retried whole, then the hook is dropped).
    pub skipped: Vec<String>,
}

/// Parses a webhook body. Unknown event ids become [`HookEvent::Other`]; a known id with
/// missing fields is kept with empty strings rather than dropped; an item that is no event at
/// all is left out and listed in `skipped`. Only a body without readable JSON events is an
/// error.
pub fn parse_webhook_body(body: &[u8]) -> Result<HookDelivery, CallbackError> {
    if body.len() > MAX_HOOK_BODY {
        return Err(CallbackError::BodyTooLarge);
    }
    let mut domain = None;
    let mut timestamp_ms = None;
    let mut event = None;
    for (name, value) in url::form_urlencoded::parse(body) {
        match name.as_ref() {
            "domain" => domain = Some(value.into_owned()),
            "timestamp" => timestamp_ms = value.parse().ok(),
            "event" => event = Some(value.into_owned()),
            _ => {}
        }
    }
    let event = event.ok_or(CallbackError::MissingEvent)?;
    let json: Value = serde_json::from_str(&event)
        .map_err(|e| CallbackError::MalformedEvents(truncate(&e.to_string(), 120)))?;
    let items = match json {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(CallbackError::MalformedEvents(
                "expected an array of events".to_owned(),
            ));
        }
    };
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    for item in &items {
        match parse_event(item) {
            Ok(event) => events.push(event),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    Ok(HookDelivery {
        domain,
        timestamp_ms,
        events,
        skipped,
    })
}

/// One event, mapped (`{"data":{"id":…}}`) or raw (`{"envelope":{"name":…}}`).
pub fn parse_event(event: &Value) -> Result<HookEvent, CallbackError> {
    if let Some(name) = event.pointer("/envelope/name").and_then(Value::as_str) {
        return Ok(HookEvent::Raw {
            name: name.to_owned(),
        });
    }
    let Some(id) = event.pointer("/data/id").and_then(Value::as_str) else {
        return Err(CallbackError::MalformedEvents(
            "an event has neither data.id nor envelope.name".to_owned(),
        ));
    };
    let attributes = event.pointer("/data/attributes").unwrap_or(&Value::Null);
    let text = |pointer: &str| {
        attributes
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let meeting = || HookMeeting {
        internal_id: text("/meeting/internal-meeting-id"),
        external_id: text("/meeting/external-meeting-id"),
    };
    let user = || HookUser {
        internal_id: text("/user/internal-user-id"),
        external_id: text("/user/external-user-id"),
        name: attributes
            .pointer("/user/name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        role: attributes
            .pointer("/user/role")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    let record_id = || text("/record-id");
    Ok(match id {
        "meeting-created" => HookEvent::MeetingCreated {
            meeting: meeting(),
            name: text("/meeting/name"),
            record: attributes
                .pointer("/meeting/record")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        "meeting-ended" => HookEvent::MeetingEnded { meeting: meeting() },
        "user-joined" => HookEvent::UserJoined {
            meeting: meeting(),
            user: user(),
        },
        "user-left" => HookEvent::UserLeft {
            meeting: meeting(),
            user: user(),
        },
        "user-presenter-assigned" => HookEvent::PresenterAssigned {
            meeting: meeting(),
            user: user(),
        },
        "user-presenter-unassigned" => HookEvent::PresenterUnassigned {
            meeting: meeting(),
            user: user(),
        },
        "user-cam-broadcast-start" => HookEvent::CameraStarted {
            meeting: meeting(),
            user: user(),
            stream: text("/user/stream"),
        },
        "user-cam-broadcast-end" => HookEvent::CameraStopped {
            meeting: meeting(),
            user: user(),
            stream: text("/user/stream"),
        },
        "meeting-screenshare-started" => HookEvent::ScreenshareStarted { meeting: meeting() },
        "meeting-screenshare-stopped" => HookEvent::ScreenshareStopped { meeting: meeting() },
        "chat-group-message-sent" => HookEvent::ChatMessage {
            meeting: meeting(),
            id: text("/chat-message/id"),
            text: text("/chat-message/message"),
            sender_id: text("/chat-message/sender/internal-user-id"),
            sender_name: text("/chat-message/sender/name"),
            time_ms: attributes
                .pointer("/chat-message/sender/time")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
        },
        "rap-published" | "rap-unpublished" | "rap-deleted" => HookEvent::RecordingChanged {
            record_id: record_id(),
            change: id.trim_start_matches("rap-").to_owned(),
            format: attributes
                .get("format")
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        step if step.starts_with("rap-")
            && (step.ends_with("-started") || step.ends_with("-ended")) =>
        {
            let ended = step.ends_with("-ended");
            let name = step
                .trim_start_matches("rap-")
                .trim_end_matches("-started")
                .trim_end_matches("-ended");
            HookEvent::RecordingStep {
                record_id: record_id(),
                step: name.to_owned(),
                ended,
                success: attributes.get("success").and_then(Value::as_bool),
            }
        }
        other => HookEvent::Other {
            id: other.to_owned(),
            meeting: attributes.get("meeting").map(|_| meeting()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"8cd8ef52e8e101574e400365b55e11a6";

    fn ready() -> RecordingReady {
        RecordingReady {
            meeting_id: "0042-physics".to_owned(),
            record_id: "a1b2c3-1700000000000".to_owned(),
        }
    }

    #[test]
    fn a_signed_token_verifies() {
        let token = sign_recording_ready(&ready(), SECRET);
        assert_eq!(verify_recording_ready(&token, SECRET), Ok(ready()));
    }

    #[test]
    fn forged_tokens_are_refused() {
        let token = sign_recording_ready(&ready(), SECRET);
        assert_eq!(
            verify_recording_ready(&token, b"another secret"),
            Err(CallbackError::Signature)
        );
        let (head, rest) = token.split_once('.').unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let (payload, _) = rest.split_once('.').unwrap();
        assert_eq!(
            verify_recording_ready(&format!("{none_header}.{payload}."), SECRET),
            Err(CallbackError::Algorithm("none".to_owned()))
        );
        let tampered = URL_SAFE_NO_PAD
            .encode(br#"{"meeting_id":"0001-other","record_id":"a1b2c3-1700000000000"}"#);
        let signature = token.rsplit('.').next().unwrap();
        assert_eq!(
            verify_recording_ready(&format!("{head}.{tampered}.{signature}"), SECRET),
            Err(CallbackError::Signature)
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(verify_recording_ready(bad, SECRET).is_err(), "{bad}");
        }
    }

    #[test]
    fn end_tokens_are_bound_to_their_meeting() {
        let key = b"amphi key";
        let url = end_callback_url("https://amphi.example.fr/", key, "0042-physics");
        let query = url.split_once('?').unwrap().1;
        let good = format!("{query}&meetingID=0042-physics&recordingmarks=true");
        assert_eq!(
            verify_end_callback(key, &good),
            Ok(BbbEvent::MeetingEnded {
                meeting_id: "0042-physics".to_owned(),
                recording_marks: true
            })
        );
        let other = format!("{query}&meetingID=0043-chemistry&recordingmarks=false");
        assert_eq!(
            verify_end_callback(key, &other),
            Err(CallbackError::WrongToken)
        );
        assert_eq!(
            verify_end_callback(key, "meetingID=0042-physics"),
            Err(CallbackError::MissingToken)
        );
    }

    #[test]
    fn webhook_checksums_cover_url_body_and_secret() {
        let url = "https://amphi.example.fr/bbb/callbacks/hooks";
        let body = b"domain=bbb.example.fr&event=%5B%5D&timestamp=1";
        let sum = ChecksumAlgorithm::Sha1.hex_digest(&[url.as_bytes(), body, b"s3cret"]);
        assert_eq!(verify_webhook(url, body, Some(&sum), "s3cret"), Ok(()));
        assert_eq!(
            verify_webhook(url, body, Some(&sum), "other"),
            Err(CallbackError::WrongChecksum)
        );
        assert_eq!(
            verify_webhook(url, b"domain=x", Some(&sum), "s3cret"),
            Err(CallbackError::WrongChecksum)
        );
        assert_eq!(
            verify_webhook(url, body, None, "s3cret"),
            Err(CallbackError::MissingChecksum)
        );
        let sha256 = ChecksumAlgorithm::Sha256.hex_digest(&[url.as_bytes(), body, b"s3cret"]);
        assert_eq!(verify_webhook(url, body, Some(&sha256), "s3cret"), Ok(()));
    }

    #[test]
    fn webhook_bodies_parse_into_events() {
        let event = r#"[{"data":{"type":"event","id":"user-joined","attributes":{"meeting":{"internal-meeting-id":"i-1","external-meeting-id":"e-1"},"user":{"internal-user-id":"w_1","external-user-id":"u1","name":"Ann","role":"MODERATOR"}},"event":{"ts":1}}}]"#;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("domain", "bbb.example.fr")
            .append_pair("event", event)
            .append_pair("timestamp", "1700000000000")
            .finish();
        let delivery = parse_webhook_body(body.as_bytes()).unwrap();
        assert_eq!(delivery.domain.as_deref(), Some("bbb.example.fr"));
        assert_eq!(delivery.timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(
            delivery.events,
            vec![HookEvent::UserJoined {
                meeting: HookMeeting {
                    internal_id: "i-1".to_owned(),
                    external_id: "e-1".to_owned()
                },
                user: HookUser {
                    internal_id: "w_1".to_owned(),
                    external_id: "u1".to_owned(),
                    name: Some("Ann".to_owned()),
                    role: Some("MODERATOR".to_owned()),
                },
            }]
        );
        assert_eq!(
            parse_webhook_body(b"domain=x"),
            Err(CallbackError::MissingEvent)
        );
        assert!(matches!(
            parse_webhook_body(b"event=%5B%7B"),
            Err(CallbackError::MalformedEvents(_))
        ));
        assert!(matches!(
            parse_webhook_body(b"event=42"),
            Err(CallbackError::MalformedEvents(_))
        ));
    }

    #[test]
    fn recording_steps_are_split() {
        let step: Value = serde_json::from_str(
            r#"{"data":{"id":"rap-process-ended","attributes":{"record-id":"r-1","success":true}}}"#,
        )
        .unwrap();
        assert_eq!(
            parse_event(&step),
            Ok(HookEvent::RecordingStep {
                record_id: "r-1".to_owned(),
                step: "process".to_owned(),
                ended: true,
                success: Some(true)
            })
        );
        let raw: Value =
            serde_json::from_str(r#"{"envelope":{"name":"MeetingCreatedEvtMsg"}}"#).unwrap();
        assert_eq!(
            parse_event(&raw),
            Ok(HookEvent::Raw {
                name: "MeetingCreatedEvtMsg".to_owned()
            })
        );
    }
}
