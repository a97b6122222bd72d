//! bbb-web's answer shapes, written as its templates write them.

use super::state::SimMeeting;
pub use crate::bbb::xml::escape;

pub fn success(body: &str) -> String {
    format!("<response><returncode>SUCCESS</returncode>{body}</response>")
}

pub fn failure(key: &str, message: &str) -> String {
    format!(
        "<response><returncode>FAILED</returncode><messageKey>{}</messageKey><message>{}</message></response>",
        escape(key),
        escape(message)
    )
}

pub fn element(name: &str, value: impl std::fmt::Display) -> String {
    format!("<{name}>{}</{name}>", escape(&value.to_string()))
}

/// The fields `create` answers with.
pub fn create_fields(meeting: &SimMeeting) -> String {
    [
        element("meetingID", &meeting.meeting_id),
        element("internalMeetingID", &meeting.internal_id),
        element("parentMeetingID", "bbb-none"),
        element("attendeePW", &meeting.attendee_pw),
        element("moderatorPW", &meeting.moderator_pw),
        element("createTime", meeting.create_time),
        element("voiceBridge", &meeting.voice_bridge),
        element("dialNumber", "613-555-1234"),
        element("createDate", create_date(meeting.create_time)),
        element("hasUserJoined", meeting.ever_joined),
        element("duration", meeting.duration),
        element("hasBeenForciblyEnded", meeting.forcibly_ended),
    ]
    .concat()
}

fn create_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a %b %d %H:%M:%S UTC %Y")
        .to_string()
}

/// One meeting as `getMeetingInfo` and `getMeetings` show it.
pub fn meeting_fields(meeting: &SimMeeting) -> String {
    let moderators = meeting
        .users
        .iter()
        .filter(|u| u.role == "MODERATOR")
        .count();
    let mut attendees = String::new();
    for user in &meeting.users {
        attendees.push_str(&format!(
            "<attendee>{}{}{}{}{}{}{}{}<customdata></customdata></attendee>",
            element("userID", &user.external_id),
            element("fullName", &user.full_name),
            element("role", &user.role),
            element("isPresenter", false),
            element("isListeningOnly", false),
            element("hasJoinedVoice", false),
            element("hasVideo", false),
            element("clientType", "HTML5"),
        ));
    }
    let metadata: String = meeting
        .metadata
        .iter()
        .map(|(k, v)| element(k, v))
        .collect();
    [
        element("meetingName", &meeting.name),
        element("meetingID", &meeting.meeting_id),
        element("internalMeetingID", &meeting.internal_id),
        element("createTime", meeting.create_time),
        element("createDate", create_date(meeting.create_time)),
        element("voiceBridge", &meeting.voice_bridge),
        element("dialNumber", "613-555-1234"),
        element("attendeePW", &meeting.attendee_pw),
        element("moderatorPW", &meeting.moderator_pw),
        element("running", meeting.started),
        element("duration", meeting.duration),
        element("hasUserJoined", meeting.ever_joined),
        element("recording", meeting.recording),
        element("hasBeenForciblyEnded", meeting.forcibly_ended),
        element("startTime", meeting.start_time),
        element("endTime", 0),
        element("participantCount", meeting.users.len()),
        element("listenerCount", 0),
        element("voiceParticipantCount", 0),
        element("videoCount", 0),
        element("maxUsers", meeting.max_participants),
        element("moderatorCount", moderators),
        format!("<attendees>{attendees}</attendees>"),
        format!("<metadata>{metadata}</metadata>"),
        element("isBreakout", false),
    ]
    .concat()
}
