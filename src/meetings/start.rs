//! What a meeting asks of BBB: `create` with every parameter Pod sends (and the end and
//! recording-ready callbacks), the join URLs by role, the session journal entries, and the
//! running state of every meeting of a page from a single `getMeetings`.

use crate::bbb::{self, BbbApi, CreateParams, Document, JoinParams, Role, callbacks};
use crate::config::Config;
use crate::db::{self, Db, Meeting};
use crate::redact::Redacted;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a meeting could not be started or joined.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bbb(#[from] bbb::Error),
    #[error(transparent)]
    Db(#[from] db::Error),
}

/// Largest slides file accepted (Pod's help text: 30 MB).
pub const SLIDES_MAX_BYTES: usize = 30 * 1024 * 1024;
/// Slides formats BBB converts.
pub const SLIDES_EXTENSIONS: [&str; 12] = [
    "pdf", "doc", "docx", "odt", "ppt", "pptx", "odp", "xls", "xlsx", "txt", "png", "jpg",
];

/// Where a meeting's slides are kept.
pub fn slides_path(config: &Config, meeting_id: i64, file_name: &str) -> std::path::PathBuf {
    config
        .data_dir
        .join("slides")
        .join(meeting_id.to_string())
        .join(file_name)
}

/// The key in the URL BBB downloads a meeting's slides from: only amphi can make it.
pub fn slides_key(secret_key: &[u8], meeting_id: i64, file_name: &str) -> String {
    crate::bbb::callbacks::end_callback_token(
        secret_key,
        &format!("slides:{meeting_id}:{file_name}"),
    )
}

/// The meeting's own slides, inline when small, by URL otherwise.
pub async fn meeting_slides(
    config: &Config,
    secret_key: &[u8],
    meeting: &Meeting,
) -> Option<Document> {
    let name = meeting.slides.as_deref()?;
    let bytes = match tokio::fs::read(slides_path(config, meeting.id, name)).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(meeting_id = %meeting.meeting_id, error = %e, "slides missing; starting without them");
            return None;
        }
    };
    let public_url = config.public_url.trim_end_matches('/');
    Some(Document::slides(name, bytes, || {
        format!(
            "{public_url}/meeting/slides/{}/{}/{}",
            meeting.id,
            slides_key(secret_key, meeting.id, name),
            url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        )
    }))
}

/// BBB's `create` for a meeting (Pod's parameters, plus the maximum duration actually sent, so
/// a forgotten meeting ends by itself). `slides` are the meeting's own; without them the site's
/// `pre_upload_slides` are sent.
pub fn create_params(
    meeting: &Meeting,
    config: &Config,
    secret_key: &[u8],
    slides: Option<Document>,
) -> CreateParams {
    let f = &meeting.fields;
    let public_url = config.public_url.trim_end_matches('/');
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert(
        "endCallbackUrl".to_owned(),
        callbacks::end_callback_url(public_url, secret_key, &meeting.meeting_id),
    );
    let record = config.meetings.recordings && f.record;
    if record {
        metadata.insert(
            "bbb-recording-ready-url".to_owned(),
            format!("{public_url}/bbb/callbacks/recording-ready"),
        );
    }
    metadata.insert("bbb-origin".to_owned(), "amphi".to_owned());
    metadata.insert(
        "bbb-origin-server-name".to_owned(),
        url::Url::parse(public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default(),
    );
    let mut documents: Vec<Document> = slides.into_iter().collect();
    let preset = config.meetings.pre_upload_slides.trim_start_matches('/');
    if documents.is_empty() && !preset.is_empty() {
        // Static slides are served by amphi; BBB fetches them by URL.
        documents.push(Document::Url {
            url: format!("{public_url}/static/{preset}"),
            filename: preset.rsplit('/').next().unwrap_or(preset).to_owned(),
        });
    }
    CreateParams {
        name: f.name.clone(),
        meeting_id: meeting.meeting_id.clone(),
        attendee_pw: Some(f.attendee_password.clone()),
        moderator_pw: Some(meeting.moderator_password.clone()).filter(|p| !p.is_empty()),
        welcome: Some(f.welcome_text.clone()).filter(|w| !w.is_empty()),
        record,
        auto_start_recording: Some(record && f.auto_start_recording),
        allow_start_stop_recording: Some(f.allow_start_stop_recording),
        duration_minutes: Some(config.meetings.max_duration_hours * 60),
        max_participants: Some(f.max_participants),
        logout_url: Some(if config.bbb.logout_url.is_empty() {
            public_url.to_owned()
        } else {
            config.bbb.logout_url.clone()
        }),
        voice_bridge: f.voice_bridge.map(|v| v.to_string()),
        guest_policy: f.guest_policy.map(|g| g.as_str().to_owned()),
        webcams_only_for_moderator: Some(f.webcam_only_for_moderators),
        parent_meeting_id: f.parent_meeting_id.clone(),
        lock_settings: f
            .lock
            .entries()
            .iter()
            .map(|(param, _, on)| {
                (
                    (*param).to_owned(),
                    if *on { "true" } else { "false" }.to_owned(),
                )
            })
            .collect(),
        metadata,
        documents,
    }
}

/// Makes sure the BBB meeting exists, creating it (and opening a session of the journal) when
/// it does not. Returns the meeting as BBB's answer updated it.
pub async fn ensure_created(
    db: &Db,
    api: &dyn BbbApi,
    config: &Config,
    secret_key: &[u8],
    meeting: &Meeting,
    creator: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Meeting, StartError> {
    if api.is_meeting_running(&meeting.meeting_id).await? {
        return Ok(meeting.clone());
    }
    let slides = meeting_slides(config, secret_key, meeting).await;
    let params = create_params(meeting, config, secret_key, slides);
    let (created, existed) = bbb::create_with_recovery(api, &params).await?;
    db.set_meeting_created(
        meeting.id,
        &created.internal_meeting_id,
        created.create_time,
        created
            .moderator_pw
            .as_deref()
            .unwrap_or(&meeting.moderator_password),
    )
    .await?;
    // A second moderator arriving before the first got in finds the meeting created, not
    // running: that is the same session.
    if !existed {
        db.open_session(meeting.id, creator, &created.internal_meeting_id, now)
            .await?;
    }
    Ok(db
        .meeting(meeting.id)
        .await?
        .unwrap_or_else(|| meeting.clone()))
}

/// A signed BBB join URL for one person, and the journal entry of their joining.
pub async fn join(
    db: &Db,
    api: &dyn BbbApi,
    meeting: &Meeting,
    full_name: &str,
    user: Option<(i64, &str)>,
    role: Role,
    now: DateTime<Utc>,
) -> Result<Redacted<String>, StartError> {
    let url = api.join_url(&JoinParams {
        meeting_id: meeting.meeting_id.clone(),
        full_name: full_name.to_owned(),
        role,
        user_id: user.map(|(_, username)| username.to_owned()),
        create_time: meeting.bbb_create_time,
        avatar_url: None,
        bot: false,
    });
    let session = match db.current_session(meeting.id).await? {
        Some(session) if session.ended_at.is_none() => session.id,
        // Started outside amphi (or before a restart): the journal starts now.
        _ => {
            db.open_session(
                meeting.id,
                None,
                meeting.internal_meeting_id.as_deref().unwrap_or_default(),
                now,
            )
            .await?
        }
    };
    db.add_participant(
        session,
        user.map(|(id, _)| id),
        full_name,
        role.as_str(),
        now,
    )
    .await?;
    Ok(url)
}

/// The BBB meeting ids running now, from one `getMeetings` shared by every page for a few
/// seconds (Pod calls `isMeetingRunning` once per card).
#[derive(Debug)]
pub struct StatusCache {
    ttl: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

impl StatusCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The running meeting ids; concurrent callers share one call.
    pub async fn running(&self, api: &dyn BbbApi) -> Result<Arc<HashSet<String>>, bbb::Error> {
        let mut cached = self.cached.lock().await;
        if let Some((at, ids)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(ids));
        }
        let ids: Arc<HashSet<String>> = Arc::new(
            api.get_meetings()
                .await?
                .into_iter()
                .filter(|m| m.running)
                .map(|m| m.meeting_id)
                .collect(),
        );
        *cached = Some((Instant::now(), Arc::clone(&ids)));
        Ok(ids)
    }

    /// Forgets the cached answer (after a create or an end).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
