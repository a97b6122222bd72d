//! The simulator's in-memory BBB: meetings, attendees, chat, hooks.

use super::outbox::{Delivery, Outbox};
use crate::config::ChecksumAlgorithm;
use crate::redact::Redacted;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast;

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
    /// Put single-use tokens on playback URLs, as the ESR Scalelite does.
    pub esr_tokens: bool,
    /// How long a simulated minute lasts: `duration`, the one minute an empty meeting
    /// survives and the five minutes a meeting waits for its first user are counted in it.
    pub minute: Duration,
    /// Time between a recorded meeting's end and its recordings being published.
    pub processing: Duration,
    /// Where the generated playback video is kept; `None`: the system's temporary folder.
    pub media_dir: Option<PathBuf>,
    /// bbb-webhooks' `hookChecksumAlgorithm`.
    pub hook_checksum: ChecksumAlgorithm,
    /// Played in the meetings it names (or in every meeting) from their creation.
    pub scenario: Option<super::scenario::Scenario>,
    /// Faults the SFU injects.
    pub sfu: SfuFaults,
}

/// Faults of the simulator's SFU, for tests of amphi's recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuFaults {
    /// Answer this many `start`s with error 2201 (MEDIA_NOT_FOUND) before serving.
    pub refuse_not_found: u32,
    /// Offer this many sessions without candidates and ignore their answer: ICE never
    /// completes.
    pub stall_ice: u32,
    /// Send a message with an id the SFU never uses before each `startResponse`.
    pub unknown_messages: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            secret: Redacted::new("amphi-simulator-secret".to_owned()),
            checksums: ChecksumAlgorithm::ALL.to_vec(),
            bbb_version: "3.0.19".to_owned(),
            fail_next: 0,
            esr_tokens: false,
            minute: Duration::from_secs(60),
            processing: Duration::from_secs(3),
            media_dir: None,
            hook_checksum: ChecksumAlgorithm::Sha1,
            scenario: None,
            sfu: SfuFaults::default(),
        }
    }
}

/// Unused ESR playback tokens kept at most (every `getRecordings` makes new ones).
pub const MAX_PLAYBACK_TOKENS: usize = 10_000;

/// A participant.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct SimUser {
    pub internal_id: String,
    pub external_id: String,
    pub full_name: String,
    pub role: String,
    pub bot: bool,
    pub session_token: String,
    pub auth_token: String,
    /// The `JSESSIONID` cookie `join` set: GraphQL connections must carry it.
    #[serde(skip)]
    pub jsessionid: String,
    /// `userJoinMeeting` done over GraphQL.
    pub client_joined: bool,
    /// The camera this user shares (its SFU stream id).
    pub camera: Option<String>,
}

/// A screen being shared.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct SimScreenshare {
    pub id: String,
    pub stream: String,
    pub has_audio: bool,
    pub width: u32,
    pub height: u32,
    pub started_at: i64,
}

/// A public chat message.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct ChatMessage {
    /// Stable id (BBB's `messageId`); given when the message is stored.
    #[serde(default)]
    pub id: String,
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
    /// Users removed from the meeting: their session still authenticates (as in BBB) and
    /// `userJoinMeeting` brings them back.
    #[serde(skip)]
    pub departed: Vec<SimUser>,
    /// Internal id of the presenter.
    pub presenter: Option<String>,
    pub screenshare: Option<SimScreenshare>,
    /// The slide on screen (1-based) of the presentation's pages.
    pub slide: u32,
    pub slides: u32,
    pub forcibly_ended: bool,
    pub start_time: i64,
    pub auto_start_recording: bool,
    /// Recording was switched on at some point (BBB's "recording marks").
    pub recording_marked: bool,
    /// Recording is on now.
    pub recording: bool,
    /// Somebody (a bot included) joined: BBB's meeting is running from then until it ends.
    pub started: bool,
    /// Somebody other than a bot joined at some point.
    pub ever_joined: bool,
    /// How many people (bots excluded) joined in all.
    pub participants_seen: u32,
    /// Since when only bots (or nobody) have been in the meeting, after someone joined.
    pub empty_since: Option<i64>,
    /// `meetingEndedURL`, called unchanged when the meeting ends.
    pub meeting_ended_url: Option<String>,
    /// Every parameter `create` received (checksum aside), for tests and operators to check
    /// what a client sent.
    pub create_params: BTreeMap<String, String>,
}

impl SimMeeting {
    /// People in the meeting, bots excluded.
    pub fn humans(&self) -> usize {
        self.users.iter().filter(|u| !u.bot).count()
    }
}

/// Why a meeting ended (akka's `endedReasonCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndReason {
    EndedFromApi,
    EndedWhenNotJoined,
    EndedWhenLastUserLeft,
    EndedAfterExceedingDuration,
}

/// A meeting that has ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EndedMeeting {
    pub meeting_id: String,
    pub internal_id: String,
    pub reason: EndReason,
    pub recording_marks: bool,
    pub time_ms: i64,
}

/// A playback format of a recording.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimFormat {
    /// `presentation` or `video`.
    pub kind: String,
    pub length_minutes: u32,
    pub size: u64,
    pub processing_time_ms: u64,
}

/// A recording as bbb-web lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimRecording {
    pub record_id: String,
    pub meeting_id: String,
    pub name: String,
    /// processing, published, unpublished or deleted.
    pub state: String,
    pub start_time: i64,
    pub end_time: i64,
    pub participants: u32,
    pub raw_size: u64,
    pub metadata: BTreeMap<String, String>,
    pub formats: Vec<SimFormat>,
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
    /// Slide PNGs are not made (bbb-web's `generatePngs=false`): their URLs answer 404.
    pub svg_only: bool,
    pub ended: Vec<EndedMeeting>,
    pub recordings: BTreeMap<String, SimRecording>,
    /// ESR single-use playback tokens: token → (record id, format).
    pub playback_tokens: HashMap<String, (String, String)>,
    /// The same tokens, oldest first, to forget the oldest past [`MAX_PLAYBACK_TOKENS`].
    pub playback_token_order: std::collections::VecDeque<String>,
    /// Playback sessions opened by a token (cookie values).
    pub playback_sessions: HashSet<String>,
    pub deliveries: Vec<Delivery>,
    /// API calls received, by name (checksum refusals included).
    pub calls: BTreeMap<String, u64>,
    /// Open GraphQL sockets by (meeting id, internal user id), with the number of times the
    /// count fell to zero (a grace timer only removes the user if it has not changed since).
    pub sockets: HashMap<(String, String), (u32, u64)>,
    /// SFU faults still to inject: `start`s refused with 2201, sessions whose ICE stalls.
    pub sfu_refusals: u32,
    pub sfu_stalls: u32,
    /// SFU `start`s still to leave unanswered.
    pub sfu_silences: u32,
    /// API calls still to hold without an answer, and for how long.
    pub api_hangs: (u32, Duration),
}

/// Shared simulator state.
#[derive(Debug, Clone)]
pub struct SimState {
    pub(crate) options: Arc<SimOptions>,
    pub(crate) inner: Arc<Mutex<Inner>>,
    /// `http://host:port` of the simulator itself.
    pub base_url: String,
    pub(crate) outbox: Outbox,
    pub(crate) delivered: broadcast::Sender<Delivery>,
    pub(crate) media: Arc<tokio::sync::OnceCell<Result<PathBuf, String>>>,
    /// Wakes the GraphQL connections of a meeting (its id) when something changed.
    pub(crate) changes: broadcast::Sender<String>,
    /// Keyframe requests (PLI, FIR) the SFU's senders received, in total.
    pub(crate) keyframe_requests: Arc<tokio::sync::watch::Sender<u64>>,
}

impl SimState {
    pub fn new(options: SimOptions, base_url: String) -> Self {
        let inner = Inner {
            fail_next: options.fail_next,
            sfu_refusals: options.sfu.refuse_not_found,
            sfu_stalls: options.sfu.stall_ice,
            next_hook_id: 1,
            ..Inner::default()
        };
        let delivered = broadcast::channel(1024).0;
        let inner = Arc::new(Mutex::new(inner));
        let outbox = Outbox::start(Arc::clone(&inner), delivered.clone());
        Self {
            options: Arc::new(options),
            inner,
            base_url,
            outbox,
            delivered,
            media: Arc::new(tokio::sync::OnceCell::new()),
            changes: broadcast::channel(4096).0,
            keyframe_requests: Arc::new(tokio::sync::watch::channel(0).0),
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

    /// Every change of a meeting from now on (its id), for tests that wait on the simulator.
    pub fn watch_changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Tells the GraphQL connections of `meeting_id` to look again.
    pub(crate) fn changed(&self, meeting_id: &str) {
        let _ = self.changes.send(meeting_id.to_owned());
    }

    /// Meetings that have ended, oldest first.
    pub fn ended(&self) -> Vec<EndedMeeting> {
        self.lock().ended.clone()
    }

    /// Every recording, deleted ones included.
    pub fn recordings(&self) -> Vec<SimRecording> {
        self.lock().recordings.values().cloned().collect()
    }

    /// Every callback and webhook delivery attempted so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Deliveries as they complete (tests wait on this rather than on time).
    pub fn subscribe_deliveries(&self) -> broadcast::Receiver<Delivery> {
        self.delivered.subscribe()
    }

    /// How many `call` requests arrived (tests check that a page makes one call, not one per
    /// meeting).
    pub fn call_count(&self, call: &str) -> u64 {
        self.lock().calls.get(call).copied().unwrap_or(0)
    }

    /// Counts the keyframe requests (PLI, FIR) the SFU's senders received; tests wait on it.
    pub fn keyframe_requests(&self) -> tokio::sync::watch::Receiver<u64> {
        self.keyframe_requests.subscribe()
    }

    /// Stops (or resumes) serving slide PNGs, as a server without `generatePngs`.
    pub fn set_svg_only(&self, svg_only: bool) {
        self.lock().svg_only = svg_only;
    }

    /// Makes the next `refusals` SFU `start`s fail with 2201 and the next `stalls` sessions
    /// stall their ICE.
    pub fn inject_sfu_faults(&self, refusals: u32, stalls: u32) {
        let mut inner = self.lock();
        inner.sfu_refusals = refusals;
        inner.sfu_stalls = stalls;
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
