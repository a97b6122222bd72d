//! How simulated meetings live and end, and what BBB tells the outside world about it:
//! webhooks for every change, the end callbacks, and recordings processed and announced.

use super::outbox::{DeliveryKind, Outgoing};
use super::state::{
    ChatMessage, EndReason, EndedMeeting, Inner, SimFormat, SimMeeting, SimRecording, SimState,
};
use crate::bbb::callbacks::{RecordingReady, sign_recording_ready};
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) use crate::clock::unix_ms as now_ms;

/// The metadata keys the post-publish script reads the callback URL from, in its order.
const RECORDING_READY_KEYS: [&str; 3] = [
    "bbb-recording-ready-url",
    "bn-recording-ready-url",
    "canvas-recording-ready-url",
];

/// Minutes (simulated) an empty meeting survives after its last user left
/// (`meetingExpireWhenLastUserLeftInMinutes`).
const EMPTY_MINUTES: i64 = 1;
/// Minutes (simulated) a meeting waits for its first user
/// (`meetingExpireIfNoUserJoinedInMinutes`).
const NOT_JOINED_MINUTES: i64 = 5;

fn meeting_ref(meeting: &SimMeeting) -> Value {
    json!({
        "internal-meeting-id": meeting.internal_id,
        "external-meeting-id": meeting.meeting_id,
    })
}

fn with_separator(url: &str) -> char {
    if url.contains('?') { '&' } else { '?' }
}

impl SimState {
    fn minute_ms(&self) -> i64 {
        i64::try_from(self.options.minute.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// Queues a mapped webhook event for every hook that wants it.
    pub(crate) fn hook_event(
        &self,
        inner: &Inner,
        meeting_id: Option<&str>,
        id: &str,
        attributes: Value,
    ) {
        let ts = now_ms();
        let event = json!({
            "data": {"type": "event", "id": id, "attributes": attributes, "event": {"ts": ts}}
        });
        let domain = self
            .base_url
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        for hook in &inner.hooks {
            if hook
                .meeting_id
                .as_deref()
                .is_some_and(|m| Some(m) != meeting_id)
            {
                continue;
            }
            if hook
                .event_ids
                .as_deref()
                .is_some_and(|ids| !ids.split(',').any(|e| e.trim() == id))
            {
                continue;
            }
            // Keys in alphabetical order, the whole form string is what the checksum covers.
            let body = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("domain", domain)
                .append_pair("event", &format!("[{event}]"))
                .append_pair("timestamp", &ts.to_string())
                .finish();
            let checksum = self.options.hook_checksum.hex_digest(&[
                hook.callback_url.as_bytes(),
                body.as_bytes(),
                self.options.secret.expose().as_bytes(),
            ]);
            self.outbox.send(Outgoing {
                kind: DeliveryKind::Webhook,
                url: format!(
                    "{}{}checksum={checksum}",
                    hook.callback_url,
                    with_separator(&hook.callback_url)
                ),
                form: Some(body),
                subject: id.to_owned(),
                hook_id: Some(hook.id),
            });
        }
    }

    pub(crate) fn meeting_created(&self, inner: &Inner, meeting: &SimMeeting) {
        let mut attributes = meeting_ref(meeting);
        attributes["name"] = json!(meeting.name);
        attributes["is-breakout"] = json!(false);
        attributes["duration"] = json!(meeting.duration);
        attributes["create-time"] = json!(meeting.create_time);
        attributes["record"] = json!(meeting.record);
        attributes["voice-conf"] = json!(meeting.voice_bridge);
        attributes["max-users"] = json!(meeting.max_participants);
        attributes["metadata"] = json!(meeting.metadata);
        self.hook_event(
            inner,
            Some(&meeting.meeting_id),
            "meeting-created",
            json!({ "meeting": attributes }),
        );
    }

    pub(crate) fn user_joined(&self, inner: &Inner, meeting: &SimMeeting, user_index: usize) {
        let user = &meeting.users[user_index];
        self.hook_event(
            inner,
            Some(&meeting.meeting_id),
            "user-joined",
            json!({
                "meeting": meeting_ref(meeting),
                "user": {
                    "internal-user-id": user.internal_id,
                    "external-user-id": user.external_id,
                    "name": user.full_name,
                    "role": user.role,
                    "presenter": false,
                    "guest": false,
                },
            }),
        );
    }

    /// Stores a public chat message and tells the hooks.
    pub(crate) fn chat_message(
        &self,
        inner: &mut Inner,
        meeting_id: &str,
        mut message: ChatMessage,
    ) {
        let Some(meeting) = inner.meetings.get_mut(meeting_id) else {
            return;
        };
        // Strictly increasing times (the chat stream's cursor is a time) and a stable id.
        if let Some(last) = meeting.chat.last() {
            message.time_ms = message.time_ms.max(last.time_ms + 1);
        }
        if message.id.is_empty() {
            message.id = format!("{}-{}", message.time_ms, super::state::random_alnum(8));
        }
        let id = message.id.clone();
        let attributes = json!({
            "meeting": meeting_ref(meeting),
            "chat-message": {
                "id": id,
                "message": message.message,
                "sender": {
                    "internal-user-id": message.sender_id,
                    "name": message.sender_name,
                    "time": message.time_ms,
                },
            },
            "chat-id": "MAIN-PUBLIC-GROUP-CHAT",
        });
        meeting.chat.push(message);
        self.hook_event(
            inner,
            Some(meeting_id),
            "chat-group-message-sent",
            attributes,
        );
        self.changed(meeting_id);
    }

    /// A participant leaves (`POST /sim/meetings/{id}/users/{user}/leave`); `false` when
    /// there is no such meeting or user.
    pub fn leave(&self, meeting_id: &str, internal_user_id: &str) -> bool {
        let mut inner = self.lock();
        let Some(meeting) = inner.meetings.get_mut(meeting_id) else {
            return false;
        };
        let Some(index) = meeting
            .users
            .iter()
            .position(|u| u.internal_id == internal_user_id)
        else {
            return false;
        };
        let mut user = meeting.users.remove(index);
        if meeting.presenter.as_deref() == Some(user.internal_id.as_str()) {
            meeting.presenter = None;
        }
        user.client_joined = false;
        user.camera = None;
        meeting.departed.push(user.clone());
        if meeting.ever_joined && meeting.humans() == 0 && meeting.empty_since.is_none() {
            meeting.empty_since = Some(now_ms());
        }
        let attributes = json!({
            "meeting": meeting_ref(meeting),
            "user": {
                "internal-user-id": user.internal_id,
                "external-user-id": user.external_id,
                "guest": false,
            },
        });
        self.hook_event(&inner, Some(meeting_id), "user-left", attributes);
        self.changed(meeting_id);
        true
    }

    /// Switches recording on or off, as a moderator's record button does.
    pub fn set_recording(&self, meeting_id: &str, on: bool) -> bool {
        let mut inner = self.lock();
        let Some(meeting) = inner.meetings.get_mut(meeting_id) else {
            return false;
        };
        if !meeting.record {
            return false;
        }
        meeting.recording = on;
        meeting.recording_marked |= on;
        let id = if on {
            "meeting-recording-started"
        } else {
            "meeting-recording-stopped"
        };
        let attributes = json!({ "meeting": meeting_ref(meeting) });
        self.hook_event(&inner, Some(meeting_id), id, attributes);
        true
    }

    /// Ends a meeting: users leave, hooks hear `meeting-ended`, the end callbacks are called,
    /// and a recorded meeting goes to processing. `false` when the meeting does not exist.
    pub(crate) fn end_meeting(
        &self,
        inner: &mut Inner,
        meeting_id: &str,
        reason: EndReason,
    ) -> bool {
        let Some(meeting) = inner.meetings.remove(meeting_id) else {
            return false;
        };
        for user in &meeting.users {
            self.hook_event(
                inner,
                Some(meeting_id),
                "user-left",
                json!({
                    "meeting": meeting_ref(&meeting),
                    "user": {"internal-user-id": user.internal_id, "external-user-id": user.external_id},
                }),
            );
        }
        self.hook_event(
            inner,
            Some(meeting_id),
            "meeting-ended",
            json!({ "meeting": meeting_ref(&meeting) }),
        );
        let marks = meeting.record && meeting.recording_marked;
        let now = now_ms();
        inner.ended.push(EndedMeeting {
            meeting_id: meeting.meeting_id.clone(),
            internal_id: meeting.internal_id.clone(),
            reason,
            recording_marks: marks,
            time_ms: now,
        });
        if let Some(url) = meeting.metadata.get("endcallbackurl") {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("recordingmarks", if marks { "true" } else { "false" })
                .append_pair("meetingID", &meeting.meeting_id)
                .finish();
            self.outbox.send(Outgoing {
                kind: DeliveryKind::EndCallback,
                url: format!("{url}{}{query}", with_separator(url)),
                form: None,
                subject: meeting.meeting_id.clone(),
                hook_id: None,
            });
        }
        if let Some(url) = &meeting.meeting_ended_url {
            self.outbox.send(Outgoing {
                kind: DeliveryKind::MeetingEndedUrl,
                url: url.clone(),
                form: None,
                subject: meeting.meeting_id.clone(),
                hook_id: None,
            });
        }
        if marks {
            self.start_processing(inner, &meeting, now);
        }
        self.changed(meeting_id);
        true
    }

    fn start_processing(&self, inner: &mut Inner, meeting: &SimMeeting, end_time: i64) {
        let record_id = meeting.internal_id.clone();
        let length_minutes =
            u32::try_from(((end_time - meeting.start_time) / 60_000).max(1)).unwrap_or(u32::MAX);
        let recording = SimRecording {
            record_id: record_id.clone(),
            meeting_id: meeting.meeting_id.clone(),
            name: meeting.name.clone(),
            state: "processing".to_owned(),
            start_time: meeting.start_time,
            end_time,
            participants: meeting.participants_seen,
            raw_size: 0,
            metadata: meeting.metadata.clone(),
            formats: ["presentation", "video"]
                .map(|kind| SimFormat {
                    kind: kind.to_owned(),
                    length_minutes,
                    size: 0,
                    processing_time_ms: 0,
                })
                .to_vec(),
        };
        inner.recordings.insert(record_id.clone(), recording);
        for id in ["rap-archive-started", "rap-archive-ended"] {
            let mut attributes = json!({"meeting": meeting_ref(meeting), "record-id": record_id});
            if id.ends_with("-ended") {
                attributes["success"] = json!(true);
                attributes["step-time"] = json!(0);
            }
            self.hook_event(inner, Some(&meeting.meeting_id), id, attributes);
        }
        let state = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(state.options.processing).await;
            state.publish_processed(&record_id).await;
        });
    }

    /// Processing done: every format published, hooks told, recording-ready called per format.
    async fn publish_processed(&self, record_id: &str) {
        let started = std::time::Instant::now();
        let video_size = match self.media_file().await {
            Ok(path) => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "simulator: no playback video; the video format will not play");
                0
            }
        };
        let mut inner = self.lock();
        // Deleted (or otherwise changed) while processing: nothing to publish.
        let Some(recording) = inner
            .recordings
            .get_mut(record_id)
            .filter(|r| r.state == "processing")
        else {
            return;
        };
        recording.state = "published".to_owned();
        let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        for format in &mut recording.formats {
            format.processing_time_ms = took;
            format.size = if format.kind == "video" {
                video_size
            } else {
                // The presentation format's size: slides and events, a few kilobytes a minute.
                40_000 + u64::from(format.length_minutes) * 12_000
            };
        }
        recording.raw_size = recording.formats.iter().map(|f| f.size).sum::<u64>() * 3;
        let recording = recording.clone();
        let meeting = json!({
            "internal-meeting-id": recording.record_id,
            "external-meeting-id": recording.meeting_id,
        });
        let ready_url = RECORDING_READY_KEYS
            .iter()
            .find_map(|key| recording.metadata.get(*key))
            .cloned();
        for format in &recording.formats {
            for step in ["process", "publish"] {
                for edge in ["started", "ended"] {
                    let mut attributes = json!({
                        "meeting": meeting,
                        "record-id": recording.record_id,
                        "format": format.kind,
                    });
                    if edge == "ended" {
                        attributes["success"] = json!(true);
                        attributes["step-time"] = json!(took);
                    }
                    self.hook_event(
                        &inner,
                        Some(&recording.meeting_id),
                        &format!("rap-{step}-{edge}"),
                        attributes,
                    );
                }
            }
            // The post-publish script runs once per format, so the callback comes once each.
            if let Some(url) = &ready_url {
                let token = sign_recording_ready(
                    &RecordingReady {
                        meeting_id: recording.meeting_id.clone(),
                        record_id: recording.record_id.clone(),
                    },
                    self.options.secret.expose().as_bytes(),
                );
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("signed_parameters", &token)
                    .finish();
                self.outbox.send(Outgoing {
                    kind: DeliveryKind::RecordingReady,
                    url: url.clone(),
                    form: Some(body),
                    subject: format!("{} ({})", recording.record_id, format.kind),
                    hook_id: None,
                });
            }
        }
        drop(inner);
    }

    /// Ends meetings whose time is up: past their `duration`, empty for a minute after the
    /// last person left (bots do not count), or never joined within five minutes.
    pub fn tick(&self) {
        let now = now_ms();
        let minute = self.minute_ms();
        let mut inner = self.lock();
        let due: Vec<(String, EndReason)> = inner
            .meetings
            .values()
            .filter_map(|m| {
                let reason = if m.duration > 0
                    && now - m.start_time >= m.duration.saturating_mul(minute)
                {
                    EndReason::EndedAfterExceedingDuration
                } else if m.ever_joined
                    && m.humans() == 0
                    && m.empty_since
                        .is_some_and(|since| now - since >= EMPTY_MINUTES.saturating_mul(minute))
                {
                    EndReason::EndedWhenLastUserLeft
                } else if !m.ever_joined
                    && now - m.create_time >= NOT_JOINED_MINUTES.saturating_mul(minute)
                {
                    EndReason::EndedWhenNotJoined
                } else {
                    return None;
                };
                Some((m.meeting_id.clone(), reason))
            })
            .collect();
        for (meeting_id, reason) in due {
            tracing::info!(%meeting_id, ?reason, "simulator: meeting ended");
            self.end_meeting(&mut inner, &meeting_id, reason);
        }
    }

    /// How often [`SimState::tick`] should run: a twentieth of a simulated minute, at least
    /// every 10 ms and at most every second.
    pub fn tick_interval(&self) -> Duration {
        (self.options.minute / 20).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}
