//! BBB API XML responses as serde types (quick-xml). Only the fields amphi uses are named;
//! everything else is ignored, so newer servers with more elements still parse.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Fields every response carries.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Envelope {
    /// `SUCCESS` or `FAILED`.
    #[serde(rename = "returncode", default)]
    pub return_code: String,
    #[serde(rename = "messageKey", default)]
    pub message_key: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// The multi-error form of validation failures.
    #[serde(default)]
    pub errors: Option<ErrorList>,
}

/// `<errors><error><key/><message/></error>…</errors>`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ErrorList {
    #[serde(rename = "error", default)]
    pub items: Vec<ErrorItem>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ErrorItem {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub message: String,
}

/// API root: `GET /bigbluebutton/api`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ApiVersion {
    #[serde(default)]
    pub version: String,
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    #[serde(rename = "bbbVersion", default)]
    pub bbb_version: String,
    #[serde(rename = "graphqlWebsocketUrl", default)]
    pub graphql_websocket_url: Option<String>,
    #[serde(rename = "graphqlApiUrl", default)]
    pub graphql_api_url: Option<String>,
}

/// `create` answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct CreateMeeting {
    #[serde(rename = "meetingID")]
    pub meeting_id: String,
    #[serde(rename = "internalMeetingID")]
    pub internal_meeting_id: String,
    #[serde(rename = "parentMeetingID", default)]
    pub parent_meeting_id: Option<String>,
    #[serde(rename = "attendeePW", default)]
    pub attendee_pw: Option<String>,
    #[serde(rename = "moderatorPW", default)]
    pub moderator_pw: Option<String>,
    #[serde(rename = "createTime")]
    pub create_time: i64,
    #[serde(rename = "voiceBridge", default)]
    pub voice_bridge: Option<String>,
    #[serde(rename = "dialNumber", default)]
    pub dial_number: Option<String>,
    #[serde(rename = "createDate", default)]
    pub create_date: Option<String>,
    #[serde(rename = "hasUserJoined", default)]
    pub has_user_joined: bool,
    #[serde(default)]
    pub duration: i64,
    #[serde(rename = "hasBeenForciblyEnded", default)]
    pub has_been_forcibly_ended: bool,
}

/// `join` with `redirect=false`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct JoinMeeting {
    pub meeting_id: String,
    pub user_id: String,
    pub auth_token: String,
    pub session_token: String,
    #[serde(rename = "guestStatus", default)]
    pub guest_status: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// `isMeetingRunning`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct IsMeetingRunning {
    pub running: bool,
}

/// One meeting of `getMeetingInfo` or `getMeetings`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct MeetingInfo {
    #[serde(rename = "meetingName", default)]
    pub meeting_name: String,
    #[serde(rename = "meetingID")]
    pub meeting_id: String,
    #[serde(rename = "internalMeetingID", default)]
    pub internal_meeting_id: String,
    #[serde(rename = "createTime", default)]
    pub create_time: i64,
    #[serde(rename = "createDate", default)]
    pub create_date: Option<String>,
    #[serde(rename = "voiceBridge", default)]
    pub voice_bridge: Option<String>,
    #[serde(rename = "dialNumber", default)]
    pub dial_number: Option<String>,
    #[serde(default)]
    pub running: bool,
    #[serde(default)]
    pub duration: i64,
    #[serde(rename = "hasUserJoined", default)]
    pub has_user_joined: bool,
    #[serde(default)]
    pub recording: bool,
    #[serde(rename = "hasBeenForciblyEnded", default)]
    pub has_been_forcibly_ended: bool,
    #[serde(rename = "startTime", default)]
    pub start_time: i64,
    #[serde(rename = "endTime", default)]
    pub end_time: i64,
    #[serde(rename = "participantCount", default)]
    pub participant_count: u32,
    #[serde(rename = "listenerCount", default)]
    pub listener_count: u32,
    #[serde(rename = "voiceParticipantCount", default)]
    pub voice_participant_count: u32,
    #[serde(rename = "videoCount", default)]
    pub video_count: u32,
    #[serde(rename = "maxUsers", default)]
    pub max_users: u32,
    #[serde(rename = "moderatorCount", default)]
    pub moderator_count: u32,
    #[serde(default)]
    pub attendees: Attendees,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(rename = "isBreakout", default)]
    pub is_breakout: bool,
    #[serde(rename = "parentMeetingID", default)]
    pub parent_meeting_id: Option<String>,
    #[serde(rename = "breakoutRooms", default)]
    pub breakout_rooms: Option<BreakoutRooms>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Attendees {
    #[serde(rename = "attendee", default)]
    pub items: Vec<Attendee>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct BreakoutRooms {
    #[serde(rename = "breakout", default)]
    pub items: Vec<String>,
}

/// A participant of a running meeting.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Attendee {
    #[serde(rename = "userID", default)]
    pub user_id: String,
    #[serde(rename = "fullName", default)]
    pub full_name: String,
    /// `MODERATOR` or `VIEWER`.
    #[serde(default)]
    pub role: String,
    #[serde(rename = "isPresenter", default)]
    pub is_presenter: bool,
    #[serde(rename = "isListeningOnly", default)]
    pub is_listening_only: bool,
    #[serde(rename = "hasJoinedVoice", default)]
    pub has_joined_voice: bool,
    #[serde(rename = "hasVideo", default)]
    pub has_video: bool,
    #[serde(rename = "clientType", default)]
    pub client_type: String,
    #[serde(default)]
    pub customdata: BTreeMap<String, String>,
}

/// `getMeetings`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Meetings {
    #[serde(default)]
    pub meetings: MeetingList,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct MeetingList {
    #[serde(rename = "meeting", default)]
    pub items: Vec<MeetingInfo>,
}

/// `getRecordings`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Recordings {
    #[serde(default)]
    pub recordings: RecordingList,
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct RecordingList {
    #[serde(rename = "recording", default)]
    pub items: Vec<Recording>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Pagination {
    #[serde(rename = "totalElements", default)]
    pub total_elements: u64,
    #[serde(default)]
    pub empty: bool,
}

/// One recording, all its playback formats merged.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Recording {
    #[serde(rename = "recordID")]
    pub record_id: String,
    #[serde(rename = "meetingID", default)]
    pub meeting_id: String,
    #[serde(rename = "internalMeetingID", default)]
    pub internal_meeting_id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "isBreakout", default)]
    pub is_breakout: bool,
    #[serde(default)]
    pub published: bool,
    /// processing, processed, published, unpublished, deleted.
    #[serde(default)]
    pub state: String,
    #[serde(rename = "startTime", default)]
    pub start_time: i64,
    #[serde(rename = "endTime", default)]
    pub end_time: i64,
    #[serde(default)]
    pub participants: Option<u32>,
    #[serde(rename = "rawSize", default)]
    pub raw_size: Option<u64>,
    /// Sum of every format's size, in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub playback: Playback,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Playback {
    #[serde(rename = "format", default)]
    pub formats: Vec<PlaybackFormat>,
}

/// A playback format (`presentation`, `video`, `podcast`…).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct PlaybackFormat {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    #[serde(rename = "processingTime", default)]
    pub processing_time: Option<u64>,
    /// Minutes.
    #[serde(default)]
    pub length: Option<u64>,
    /// Bytes.
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub preview: Option<Preview>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Preview {
    #[serde(default)]
    pub images: PreviewImages,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct PreviewImages {
    #[serde(rename = "image", default)]
    pub items: Vec<PreviewImage>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct PreviewImage {
    #[serde(rename = "@alt", default)]
    pub alt: Option<String>,
    #[serde(rename = "@width", default)]
    pub width: Option<u32>,
    #[serde(rename = "@height", default)]
    pub height: Option<u32>,
    #[serde(rename = "$text", default)]
    pub url: String,
}

/// `publishRecordings`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Published {
    pub published: bool,
}

/// `deleteRecordings`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Deleted {
    pub deleted: bool,
}

/// `updateRecordings`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Updated {
    pub updated: bool,
}

/// `hooks/create`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct HookCreated {
    #[serde(rename = "hookID")]
    pub hook_id: String,
    #[serde(rename = "permanentHook", default)]
    pub permanent_hook: bool,
    #[serde(rename = "rawData", default)]
    pub raw_data: bool,
}

/// `hooks/destroy`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct HookRemoved {
    pub removed: bool,
}

/// `hooks/list`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Hooks {
    #[serde(default)]
    pub hooks: HookList,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct HookList {
    #[serde(rename = "hook", default)]
    pub items: Vec<Hook>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Hook {
    #[serde(rename = "hookID")]
    pub hook_id: String,
    #[serde(rename = "callbackURL", default)]
    pub callback_url: String,
    #[serde(rename = "meetingID", default)]
    pub meeting_id: Option<String>,
    #[serde(rename = "eventID", default)]
    pub event_id: Option<String>,
    #[serde(rename = "permanentHook", default)]
    pub permanent_hook: bool,
    #[serde(rename = "rawData", default)]
    pub raw_data: bool,
}

/// Escapes text for an XML element or attribute (request bodies, the simulator's answers).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Largest response body amphi reads from BBB.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Parses a response body into its envelope and payload.
pub fn parse<T: for<'de> Deserialize<'de>>(body: &str) -> Result<(Envelope, Option<T>), String> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(format!("response of {} bytes is too large", body.len()));
    }
    let envelope: Envelope =
        quick_xml::de::from_str(body).map_err(|e| format!("malformed BBB XML: {e}"))?;
    if envelope.return_code != "SUCCESS" {
        return Ok((envelope, None));
    }
    let payload: T =
        quick_xml::de::from_str(body).map_err(|e| format!("unexpected BBB XML: {e}"))?;
    Ok((envelope, Some(payload)))
}
