//! The simulator's in-memory BBB: meetings, attendees, chat, hooks.

use crate::config::ChecksumAlgorithm;
use crate::redact::Redacted;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub secret: Redacted<String>,
    /// bbb-web's `supportedChecksumAlgorithms`.
    pub checksums: Vec<ChecksumAlgorithm>,
    /// BBB version announced at the API root.
    pub bbb_version: String,
    /// Answer this many API calls with HTTP 503 before behaving (fault injection).
    pub fail_next: u32,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            secret: Redacted::new("amphi-simulator-secret".to_owned()),
            checksums: ChecksumAlgorithm::ALL.to_vec(),
            bbb_version: "3.0.19".to_owned(),
            fail_next: 0,
        }
    }
}

/// A participant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimUser {
    pub internal_id: String,
    pub external_id: String,
    pub full_name: String,
    pub role: String,
    pub bot: bool,
    pub session_token: String,
    pub auth_token: String,
}

/// A public chat message.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct ChatMessage {
    pub sender_id: String,
    pub sender_name: String,
    pub message: String,
    /// `api` for sendChatMessage, `default` for participants.
    pub message_type: String,
    pub time_ms: i64,
}

/// A meeting as bbb-web keeps it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimMeeting {
    pub meeting_id: String,
    pub internal_id: String,
    pub name: String,
    pub attendee_pw: String,
    pub moderator_pw: String,
    pub create_time: i64,
    pub voice_bridge: String,
    pub duration: i64,
    pub record: bool,
    pub max_participants: u32,
    pub metadata: BTreeMap<String, String>,
    pub documents: Vec<String>,
    pub users: Vec<SimUser>,
    pub chat: Vec<ChatMessage>,
    pub forcibly_ended: bool,
    pub start_time: i64,
}

/// A registered webhook.
#[derive(Debug, Clone)]
pub struct SimHook {
    pub id: u64,
    pub callback_url: String,
    pub meeting_id: Option<String>,
    pub event_ids: Option<String>,
    pub raw: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub meetings: BTreeMap<String, SimMeeting>,
    pub hooks: Vec<SimHook>,
    pub next_hook_id: u64,
    pub fail_next: u32,
}

/// Shared simulator state.
#[derive(Debug, Clone)]
pub struct SimState {
    pub(crate) options: Arc<SimOptions>,
    pub(crate) inner: Arc<Mutex<Inner>>,
    /// `http://host:port` of the simulator itself.
    pub base_url: String,
}

impl SimState {
    pub fn new(options: SimOptions, base_url: String) -> Self {
        let inner = Inner {
            fail_next: options.fail_next,
            next_hook_id: 1,
            ..Inner::default()
        };
        Self {
            options: Arc::new(options),
            inner: Arc::new(Mutex::new(inner)),
            base_url,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of every meeting (tests, `/sim/meetings`).
    pub fn meetings(&self) -> Vec<SimMeeting> {
        self.lock().meetings.values().cloned().collect()
    }

    /// The public chat of a meeting.
    pub fn chat(&self, meeting_id: &str) -> Option<Vec<ChatMessage>> {
        self.lock().meetings.get(meeting_id).map(|m| m.chat.clone())
    }

    /// Makes the next `count` API calls fail with HTTP 503.
    pub fn fail_next(&self, count: u32) {
        self.lock().fail_next = count;
    }
}

/// Random lower-case letters and digits.
pub(crate) fn random_alnum(len: usize) -> String {
    crate::accounts::random_chars(b"abcdefghijklmnopqrstuvwxyz0123456789", len)
}

/// Random digits.
pub(crate) fn random_digits(len: usize) -> String {
    crate::accounts::random_chars(b"0123456789", len)
}
