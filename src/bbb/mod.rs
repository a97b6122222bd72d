//! The BigBlueButton HTTP API: checksums, typed calls and XML answers, behind the [`BbbApi`]
//! trait so business code and tests can swap the transport. Facts: `docs/ref/bbb-api.md`.

pub mod callbacks;
pub mod checksum;
pub mod client;
pub mod error;
pub mod query;
pub mod webhooks;
pub mod xml;

pub use client::Client;
pub use error::{Error, MessageKey};

use crate::redact::Redacted;
use std::collections::BTreeMap;

/// A role at `join`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Moderator,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "MODERATOR",
            Role::Viewer => "VIEWER",
        }
    }
}

/// Slides for `create` or `insertDocument`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    /// BBB downloads the file.
    Url { url: String, filename: String },
    /// The file travels base64-encoded in the request body (at most
    /// [`client::INLINE_SLIDES_MAX_BYTES`]; `create` refuses larger ones).
    Inline { filename: String, bytes: Vec<u8> },
}

impl Document {
    /// Slides as Pod sends them: inline up to [`client::INLINE_SLIDES_MAX_BYTES`], otherwise
    /// by the URL where amphi serves the file (`url` is only called then).
    pub fn slides(filename: &str, bytes: Vec<u8>, url: impl FnOnce() -> String) -> Document {
        if bytes.len() <= client::INLINE_SLIDES_MAX_BYTES {
            Document::Inline {
                filename: filename.to_owned(),
                bytes,
            }
        } else {
            Document::Url {
                url: url(),
                filename: filename.to_owned(),
            }
        }
    }
}

/// Parameters of `create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateParams {
    pub name: String,
    pub meeting_id: String,
    pub attendee_pw: Option<String>,
    pub moderator_pw: Option<String>,
    pub welcome: Option<String>,
    pub record: bool,
    pub auto_start_recording: Option<bool>,
    pub allow_start_stop_recording: Option<bool>,
    pub duration_minutes: Option<u32>,
    pub max_participants: Option<u32>,
    pub logout_url: Option<String>,
    pub voice_bridge: Option<String>,
    /// `ALWAYS_ACCEPT`, `ALWAYS_DENY` or `ASK_MODERATOR`.
    pub guest_policy: Option<String>,
    pub webcams_only_for_moderator: Option<bool>,
    pub parent_meeting_id: Option<String>,
    /// `lockSettings*` parameters, sent as given.
    pub lock_settings: Vec<(String, String)>,
    /// `meta_*` parameters without the prefix (e.g. `endCallbackUrl`).
    pub metadata: BTreeMap<String, String>,
    /// Slides: with any, `create` is a POST with a `<modules>` body.
    pub documents: Vec<Document>,
}

/// Parameters of `join`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinParams {
    pub meeting_id: String,
    pub full_name: String,
    pub role: Role,
    /// External user id (stable per person or per bot).
    pub user_id: Option<String>,
    pub create_time: Option<i64>,
    pub avatar_url: Option<String>,
    /// Flags an automated participant (BBB 3.0.x).
    pub bot: bool,
}

/// What a bot gets from `join` with `redirect=false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotJoin {
    /// Internal meeting id.
    pub meeting_id: String,
    /// Internal user id (`w_…`).
    pub user_id: String,
    pub auth_token: Redacted<String>,
    pub session_token: Redacted<String>,
    /// `ALLOW`, `WAIT` or `DENY`.
    pub guest_status: String,
    /// The servlet session cookie later calls must carry.
    pub jsessionid: Option<Redacted<String>>,
}

/// Filters of `getRecordings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingsQuery {
    pub meeting_ids: Vec<String>,
    pub record_ids: Vec<String>,
    /// processing, processed, published, unpublished, deleted, any.
    pub states: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub offset: Option<u32>,
    /// 1 to 100.
    pub limit: Option<u32>,
}

/// Every BBB API call amphi makes.
#[async_trait::async_trait]
pub trait BbbApi: Send + Sync {
    /// `GET /bigbluebutton/api`: versions and GraphQL URLs (no checksum).
    async fn api_version(&self) -> Result<xml::ApiVersion, Error>;
    /// `create`; the flag tells whether the meeting already existed (`duplicateWarning`).
    async fn create(&self, params: &CreateParams) -> Result<(xml::CreateMeeting, bool), Error>;
    /// A signed `join` URL for a browser redirect.
    fn join_url(&self, params: &JoinParams) -> Redacted<String>;
    /// `join` with `redirect=false`, keeping the tokens and the session cookie.
    async fn join_bot(&self, params: &JoinParams) -> Result<BotJoin, Error>;
    async fn is_meeting_running(&self, meeting_id: &str) -> Result<bool, Error>;
    async fn get_meeting_info(&self, meeting_id: &str) -> Result<xml::MeetingInfo, Error>;
    async fn get_meetings(&self) -> Result<Vec<xml::MeetingInfo>, Error>;
    async fn end(&self, meeting_id: &str) -> Result<(), Error>;
    async fn get_recordings(&self, filter: &RecordingsQuery) -> Result<xml::Recordings, Error>;
    /// `publishRecordings`: the answer's `<published>`, which bbb-web sets to the `publish`
    /// value asked for (so `false` after a successful unpublish).
    async fn publish_recordings(&self, record_ids: &[String], publish: bool)
    -> Result<bool, Error>;
    async fn delete_recordings(&self, record_ids: &[String]) -> Result<bool, Error>;
    async fn update_recordings(
        &self,
        record_ids: &[String],
        metadata: &BTreeMap<String, String>,
    ) -> Result<bool, Error>;
    async fn insert_document(&self, meeting_id: &str, documents: &[Document]) -> Result<(), Error>;
    /// `sendChatMessage` (BBB 3.0): into the meeting's public chat.
    async fn send_chat_message(
        &self,
        meeting_id: &str,
        message: &str,
        user_name: Option<&str>,
    ) -> Result<(), Error>;
    /// `hooks/create`; the flag tells whether the hook already existed.
    async fn hooks_create(
        &self,
        callback_url: &str,
        meeting_id: Option<&str>,
        event_ids: &[String],
        raw: bool,
    ) -> Result<(xml::HookCreated, bool), Error>;
    async fn hooks_destroy(&self, hook_id: &str) -> Result<bool, Error>;
    async fn hooks_list(&self, meeting_id: Option<&str>) -> Result<Vec<xml::Hook>, Error>;
    /// `stuns?sessionToken=` (session-based, with the join's cookie): the STUN and TURN
    /// servers the bot's media connections should use.
    async fn stuns(
        &self,
        session_token: &Redacted<String>,
        cookie: Option<&Redacted<String>>,
    ) -> Result<IceServers, Error>;
}

/// The answer of `stuns`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServers {
    #[serde(default)]
    pub stun_servers: Vec<StunServer>,
    #[serde(default)]
    pub turn_servers: Vec<TurnServer>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StunServer {
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct TurnServer {
    pub url: String,
    #[serde(default)]
    pub username: String,
    /// A short-lived credential: kept out of logs.
    #[serde(default)]
    pub password: Redacted<String>,
}

impl IceServers {
    /// Reads `stuns`' JSON; `{"returncode":"FAILED","message":…}` is a typed error.
    pub fn parse(body: &str) -> Result<Self, Error> {
        if body.len() > xml::MAX_RESPONSE_BYTES {
            return Err(Error::Parse("the answer is too large".into()));
        }
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| Error::Parse(e.to_string()))?;
        if value.get("returncode").and_then(|r| r.as_str()) == Some("FAILED") {
            let message = value
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default();
            return Err(Error::Api {
                key: MessageKey::InvalidSession,
                message: message.to_owned(),
            });
        }
        serde_json::from_value(value).map_err(|e| Error::Parse(e.to_string()))
    }
}

/// Pod's Scalelite workaround, done once: when `create` fails because the server is in a
/// bad state for that meeting (an HTTP error, or a refusal that is not about the request
/// itself), end the meeting and create it again. Pod does this on any failure, so a wrong
/// checksum or a too-short name ended a meeting people were in; amphi does not.
pub async fn create_with_recovery(
    api: &dyn BbbApi,
    params: &CreateParams,
) -> Result<(xml::CreateMeeting, bool), Error> {
    let recoverable = |error: &Error| match error {
        Error::Http(_) => true,
        Error::Api { key, .. } => !key.is_about_the_request(),
        _ => false,
    };
    match api.create(params).await {
        Ok(created) => Ok(created),
        Err(first) if recoverable(&first) => {
            tracing::warn!(meeting_id = %params.meeting_id, error = %first, "create failed; ending the meeting and creating it again");
            if let Err(e) = api.end(&params.meeting_id).await {
                tracing::debug!(error = %e, "end before re-create failed");
            }
            api.create(params).await
        }
        Err(other) => Err(other),
    }
}
