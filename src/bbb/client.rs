//! The BBB HTTP API client: signed GET (and POST for slides), XML answers parsed into types,
//! timeouts, bounded retries with backoff for calls that are safe to repeat.

use super::error::{Error, MessageKey};
use super::query::Query;
use super::xml::{self, Envelope};
use super::{BbbApi, BotJoin, CreateParams, Document, JoinParams, RecordingsQuery};
use crate::config::{BbbConfig, ChecksumAlgorithm};
use crate::redact::Redacted;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Slides up to this size travel inline (base64) in the `create` body; larger ones by URL
/// (Pod's limit: 1,000,000 bytes).
pub const INLINE_SLIDES_MAX_BYTES: usize = 1_000_000;

/// How long one call may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    // reqwest panics without a process-wide rustls provider; installing it twice is harmless.
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("amphi/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Transport(e.to_string()))
}

/// How a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Reads: repeated on network trouble.
    Idempotent,
    /// Changes: sent once.
    Once,
}

/// A client for one BBB (or Scalelite) API endpoint.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    api_url: String,
    secret: Redacted<String>,
    algorithm: ChecksumAlgorithm,
    /// Attempts for idempotent calls (1 = no retry).
    attempts: u32,
    /// First retry delay, doubled each time.
    backoff: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.api_url)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(
        api_url: &str,
        secret: Redacted<String>,
        algorithm: ChecksumAlgorithm,
    ) -> Result<Self, Error> {
        if api_url.is_empty() {
            return Err(Error::NotConfigured);
        }
        Ok(Self {
            http: http_client(CALL_TIMEOUT)?,
            api_url: api_url.trim_end_matches('/').to_owned(),
            secret,
            algorithm,
            attempts: 3,
            backoff: Duration::from_millis(250),
        })
    }

    pub fn from_config(config: &BbbConfig) -> Result<Self, Error> {
        Self::new(&config.api_url, config.secret.clone(), config.checksum)
    }

    /// Changes how long a call may take (20 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        self.http = http_client(timeout)?;
        Ok(self)
    }

    /// Changes the retry policy of idempotent calls (tests use short delays).
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    fn signed_url(&self, call: &str, query: &Query) -> Redacted<String> {
        query
            .signed(call, self.secret.expose(), self.algorithm)
            .url(&self.api_url, call)
    }

    async fn send_once(
        &self,
        call: &str,
        query: &Query,
        body: Option<String>,
    ) -> Result<(String, Option<String>), Error> {
        let url = self.signed_url(call, query);
        let request = match body {
            Some(body) => self
                .http
                .post(url.expose())
                .header(reqwest::header::CONTENT_TYPE, "application/xml")
                .body(body),
            None => self.http.get(url.expose()),
        };
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                Error::Timeout
            } else {
                // reqwest's message includes the URL: keep only the cause.
                Error::Transport(describe_transport(&e))
            }
        })?;
        let status = response.status();
        let session = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("JSESSIONID="))
            .map(|c| c.split(';').next().unwrap_or("").to_owned());
        if !status.is_success() {
            return Err(Error::Http(status.as_u16()));
        }
        Ok((read_capped(response).await?, session))
    }

    async fn send(
        &self,
        call: &str,
        query: &Query,
        body: Option<String>,
        retry: Retry,
    ) -> Result<(String, Option<String>), Error> {
        self.retrying(call, retry, || self.send_once(call, query, body.clone()))
            .await
    }

    /// Runs `attempt` once, or for idempotent calls up to `self.attempts` times while it fails
    /// with a transient error, doubling the delay each time.
    async fn retrying<T, F, Fut>(
        &self,
        call: &str,
        retry: Retry,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let attempts = match retry {
            Retry::Idempotent => self.attempts,
            Retry::Once => 1,
        };
        let mut delay = self.backoff;
        let mut tried = 1;
        loop {
            match attempt().await {
                Err(e) if e.is_transient() && tried < attempts => {
                    tracing::warn!(call, attempt = tried, error = %e, "BBB call failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    tried += 1;
                }
                other => return other,
            }
        }
    }

    /// Sends a call and parses its XML, turning `FAILED` into [`Error`].
    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        call: &str,
        query: Query,
        retry: Retry,
    ) -> Result<(Envelope, T), Error> {
        let (body, _) = self.send(call, &query, None, retry).await?;
        parse_answer(&body)
    }

    async fn call_with_body<T: for<'de> Deserialize<'de>>(
        &self,
        call: &str,
        query: Query,
        body: String,
    ) -> Result<(Envelope, T), Error> {
        let (text, _) = self.send(call, &query, Some(body), Retry::Once).await?;
        parse_answer(&text)
    }

    fn create_query(params: &CreateParams) -> Query {
        let mut query = Query::new()
            .param("name", &params.name)
            .param("meetingID", &params.meeting_id)
            .opt("attendeePW", params.attendee_pw.as_deref())
            .opt("moderatorPW", params.moderator_pw.as_deref())
            .opt("welcome", params.welcome.as_deref())
            .flag("record", params.record)
            .opt(
                "autoStartRecording",
                params.auto_start_recording.map(bool_str),
            )
            .opt(
                "allowStartStopRecording",
                params.allow_start_stop_recording.map(bool_str),
            )
            .opt("duration", params.duration_minutes.map(|d| d.to_string()))
            .opt(
                "maxParticipants",
                params.max_participants.map(|m| m.to_string()),
            )
            .opt("logoutURL", params.logout_url.as_deref())
            .opt("voiceBridge", params.voice_bridge.as_deref())
            .opt("guestPolicy", params.guest_policy.as_deref())
            .opt(
                "webcamsOnlyForModerator",
                params.webcams_only_for_moderator.map(bool_str),
            )
            .opt("parentMeetingID", params.parent_meeting_id.as_deref());
        for (key, value) in &params.lock_settings {
            query = query.param(key, value);
        }
        for (key, value) in &params.metadata {
            query = query.param(&format!("meta_{key}"), value);
        }
        query
    }
}

fn bool_str(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

fn describe_transport(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut cause = if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    cause
}

/// Reads an answer's body, refusing more than [`xml::MAX_RESPONSE_BYTES`] whether or not the
/// server announced a length.
async fn read_capped(mut response: reqwest::Response) -> Result<String, Error> {
    let too_large = || Error::Parse("the answer is too large".into());
    if response
        .content_length()
        .is_some_and(|l| l > xml::MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Error::Transport(describe_transport(&e)))?
    {
        if body.len() + chunk.len() > xml::MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| Error::Parse("the answer is not UTF-8".into()))
}

/// Parses one of BBB's JSON answers (`{"response": {"returncode": …}}`: getJoinUrl,
/// getRecordingTextTracks, learning dashboard, feedback); `FAILED` becomes a typed error.
pub fn parse_json_answer(body: &str) -> Result<serde_json::Value, Error> {
    if body.len() > xml::MAX_RESPONSE_BYTES {
        return Err(Error::Parse("the answer is too large".into()));
    }
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| Error::Parse(e.to_string()))?;
    let response = value
        .get("response")
        .ok_or_else(|| Error::Parse("no response object".into()))?;
    match response.get("returncode").and_then(|r| r.as_str()) {
        Some("SUCCESS") => Ok(response.clone()),
        Some(_) => {
            let text = |name: &str| {
                response
                    .get(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            Err(Error::Api {
                key: MessageKey::parse(&text("messageKey").unwrap_or_default()),
                message: text("message").unwrap_or_default(),
            })
        }
        None => Err(Error::Parse("no returncode".into())),
    }
}

/// Parses a BBB answer; `FAILED` becomes a typed error.
pub fn parse_answer<T: for<'de> Deserialize<'de>>(body: &str) -> Result<(Envelope, T), Error> {
    let (envelope, payload) = xml::parse::<T>(body).map_err(|e| {
        tracing::warn!(error = %e, "unreadable BBB answer");
        Error::Parse(e)
    })?;
    match payload {
        Some(payload) => Ok((envelope, payload)),
        None => Err(failure(&envelope)),
    }
}

fn failure(envelope: &Envelope) -> Error {
    if let Some(errors) = &envelope.errors
        && !errors.items.is_empty()
    {
        return Error::Validation {
            errors: errors
                .items
                .iter()
                .map(|e| (e.key.clone(), e.message.clone()))
                .collect(),
        };
    }
    match &envelope.message_key {
        Some(key) => Error::Api {
            key: MessageKey::parse(key),
            message: envelope.message.clone().unwrap_or_default(),
        },
        None if envelope.return_code.is_empty() => {
            Error::Parse("no returncode in the answer".into())
        }
        None => Error::Api {
            key: MessageKey::Other(String::new()),
            message: envelope.message.clone().unwrap_or_default(),
        },
    }
}

/// The `<modules>` body that carries slides.
pub fn modules_body(documents: &[Document]) -> String {
    use base64::Engine as _;
    let mut body = String::from("<modules><module name=\"presentation\">");
    for document in documents {
        match document {
            Document::Url { url, filename } => {
                body.push_str(&format!(
                    "<document url=\"{}\" filename=\"{}\"/>",
                    xml::escape(url),
                    xml::escape(filename)
                ));
            }
            Document::Inline { filename, bytes } => {
                body.push_str(&format!(
                    "<document name=\"{}\">{}</document>",
                    xml::escape(filename),
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                ));
            }
        }
    }
    body.push_str("</module></modules>");
    body
}

#[async_trait::async_trait]
impl BbbApi for Client {
    async fn stuns(
        &self,
        session_token: &Redacted<String>,
        cookie: Option<&Redacted<String>>,
    ) -> Result<super::IceServers, Error> {
        let mut url = url::Url::parse(&format!("{}/stuns", self.api_url.trim_end_matches('/')))
            .map_err(|e| Error::Transport(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("sessionToken", session_token.expose());
        self.retrying("stuns", Retry::Idempotent, || async {
            let mut request = self.http.get(url.as_str());
            if let Some(cookie) = cookie {
                request = request.header("Cookie", format!("JSESSIONID={}", cookie.expose()));
            }
            let response = request.send().await.map_err(|e| {
                if e.is_timeout() {
                    Error::Timeout
                } else {
                    Error::Transport(describe_transport(&e))
                }
            })?;
            if !response.status().is_success() {
                return Err(Error::Http(response.status().as_u16()));
            }
            let text = read_capped(response).await?;
            super::IceServers::parse(&text)
        })
        .await
    }

    async fn api_version(&self) -> Result<xml::ApiVersion, Error> {
        self.retrying("api root", Retry::Idempotent, || async {
            let response = self.http.get(&self.api_url).send().await.map_err(|e| {
                if e.is_timeout() {
                    Error::Timeout
                } else {
                    Error::Transport(describe_transport(&e))
                }
            })?;
            if !response.status().is_success() {
                return Err(Error::Http(response.status().as_u16()));
            }
            let text = read_capped(response).await?;
            parse_answer::<xml::ApiVersion>(&text).map(|(_, v)| v)
        })
        .await
    }

    async fn create(&self, params: &CreateParams) -> Result<(xml::CreateMeeting, bool), Error> {
        if let Some(Document::Inline { filename, .. }) = params.documents.iter().find(
            |d| matches!(d, Document::Inline { bytes, .. } if bytes.len() > INLINE_SLIDES_MAX_BYTES),
        ) {
            return Err(Error::Request(format!(
                "the slides {filename} are over 1 MB: give them by URL"
            )));
        }
        let query = Self::create_query(params);
        let (envelope, created): (Envelope, xml::CreateMeeting) = if params.documents.is_empty() {
            self.call("create", query, Retry::Once).await?
        } else {
            self.call_with_body("create", query, modules_body(&params.documents))
                .await?
        };
        let duplicate = envelope.message_key.as_deref() == Some("duplicateWarning");
        Ok((created, duplicate))
    }

    fn join_url(&self, params: &JoinParams) -> Redacted<String> {
        self.signed_url("join", &join_query(params, true))
    }

    async fn join_bot(&self, params: &JoinParams) -> Result<BotJoin, Error> {
        let query = join_query(params, false);
        let (body, session) = self.send("join", &query, None, Retry::Once).await?;
        let (_, join): (Envelope, xml::JoinMeeting) = parse_answer(&body)?;
        Ok(BotJoin {
            meeting_id: join.meeting_id,
            user_id: join.user_id,
            auth_token: Redacted::new(join.auth_token),
            session_token: Redacted::new(join.session_token),
            guest_status: join.guest_status.unwrap_or_default(),
            jsessionid: session.map(Redacted::new),
        })
    }

    async fn is_meeting_running(&self, meeting_id: &str) -> Result<bool, Error> {
        let (_, answer): (_, xml::IsMeetingRunning) = self
            .call(
                "isMeetingRunning",
                Query::new().param("meetingID", meeting_id),
                Retry::Idempotent,
            )
            .await?;
        Ok(answer.running)
    }

    async fn get_meeting_info(&self, meeting_id: &str) -> Result<xml::MeetingInfo, Error> {
        let (_, info) = self
            .call(
                "getMeetingInfo",
                Query::new().param("meetingID", meeting_id),
                Retry::Idempotent,
            )
            .await?;
        Ok(info)
    }

    async fn get_meetings(&self) -> Result<Vec<xml::MeetingInfo>, Error> {
        let (_, meetings): (_, xml::Meetings) = self
            .call("getMeetings", Query::new(), Retry::Idempotent)
            .await?;
        Ok(meetings.meetings.items)
    }

    async fn end(&self, meeting_id: &str) -> Result<(), Error> {
        let _: (_, Empty) = self
            .call(
                "end",
                Query::new().param("meetingID", meeting_id),
                Retry::Once,
            )
            .await?;
        Ok(())
    }

    async fn get_recordings(&self, filter: &RecordingsQuery) -> Result<xml::Recordings, Error> {
        let mut query = Query::new()
            .opt(
                "meetingID",
                (!filter.meeting_ids.is_empty()).then(|| filter.meeting_ids.join(",")),
            )
            .opt(
                "recordID",
                (!filter.record_ids.is_empty()).then(|| filter.record_ids.join(",")),
            )
            .opt(
                "state",
                (!filter.states.is_empty()).then(|| filter.states.join(",")),
            );
        for (key, value) in &filter.metadata {
            query = query.param(&format!("meta_{key}"), value);
        }
        let query = query
            .opt("offset", filter.offset.map(|o| o.to_string()))
            .opt("limit", filter.limit.map(|l| l.to_string()));
        let (_, recordings) = self.call("getRecordings", query, Retry::Idempotent).await?;
        Ok(recordings)
    }

    async fn publish_recordings(
        &self,
        record_ids: &[String],
        publish: bool,
    ) -> Result<bool, Error> {
        let query = Query::new()
            .param("recordID", record_ids.join(","))
            .flag("publish", publish);
        let (_, answer): (_, xml::Published) =
            self.call("publishRecordings", query, Retry::Once).await?;
        Ok(answer.published)
    }

    async fn delete_recordings(&self, record_ids: &[String]) -> Result<bool, Error> {
        let query = Query::new().param("recordID", record_ids.join(","));
        let (_, answer): (_, xml::Deleted) =
            self.call("deleteRecordings", query, Retry::Once).await?;
        Ok(answer.deleted)
    }

    async fn update_recordings(
        &self,
        record_ids: &[String],
        metadata: &BTreeMap<String, String>,
    ) -> Result<bool, Error> {
        let mut query = Query::new().param("recordID", record_ids.join(","));
        for (key, value) in metadata {
            query = query.param(&format!("meta_{key}"), value);
        }
        let (_, answer): (_, xml::Updated) =
            self.call("updateRecordings", query, Retry::Once).await?;
        Ok(answer.updated)
    }

    async fn insert_document(&self, meeting_id: &str, documents: &[Document]) -> Result<(), Error> {
        let _: (_, Empty) = self
            .call_with_body(
                "insertDocument",
                Query::new().param("meetingID", meeting_id),
                modules_body(documents),
            )
            .await?;
        Ok(())
    }

    async fn send_chat_message(
        &self,
        meeting_id: &str,
        message: &str,
        user_name: Option<&str>,
    ) -> Result<(), Error> {
        let query = Query::new()
            .param("meetingID", meeting_id)
            .param("message", message)
            .opt("userName", user_name);
        let _: (_, Empty) = self.call("sendChatMessage", query, Retry::Once).await?;
        Ok(())
    }

    async fn hooks_create(
        &self,
        callback_url: &str,
        meeting_id: Option<&str>,
        event_ids: &[String],
        raw: bool,
    ) -> Result<(xml::HookCreated, bool), Error> {
        let query = Query::new()
            .param("callbackURL", callback_url)
            .opt("meetingID", meeting_id)
            .opt(
                "eventID",
                (!event_ids.is_empty()).then(|| event_ids.join(",")),
            )
            .opt("getRaw", raw.then_some("true"));
        let (envelope, hook): (_, xml::HookCreated) =
            self.call("hooks/create", query, Retry::Once).await?;
        Ok((
            hook,
            envelope.message_key.as_deref() == Some("duplicateWarning"),
        ))
    }

    async fn hooks_destroy(&self, hook_id: &str) -> Result<bool, Error> {
        let (_, answer): (_, xml::HookRemoved) = self
            .call(
                "hooks/destroy",
                Query::new().param("hookID", hook_id),
                Retry::Once,
            )
            .await?;
        Ok(answer.removed)
    }

    async fn hooks_list(&self, meeting_id: Option<&str>) -> Result<Vec<xml::Hook>, Error> {
        let (_, hooks): (_, xml::Hooks) = self
            .call(
                "hooks/list",
                Query::new().opt("meetingID", meeting_id),
                Retry::Idempotent,
            )
            .await?;
        Ok(hooks.hooks.items)
    }
}

/// An answer with nothing beyond the envelope.
#[derive(Debug, Deserialize)]
struct Empty {}

fn join_query(params: &JoinParams, redirect: bool) -> Query {
    Query::new()
        .param("fullName", &params.full_name)
        .param("meetingID", &params.meeting_id)
        .param("role", params.role.as_str())
        .opt("userID", params.user_id.as_deref())
        .opt("createTime", params.create_time.map(|t| t.to_string()))
        .opt("avatarURL", params.avatar_url.as_deref())
        .opt("bot", params.bot.then_some("true"))
        .opt("redirect", (!redirect).then_some("false"))
}
