//! What the bot knows of the meeting, built from the subscriptions' results, and the changes
//! between two results that the rest of amphi acts on (a camera to add to the picture, a slide
//! to show, a chat message to relay).

use super::operations::Feed;
use serde_json::Value;
use std::collections::BTreeMap;

/// A participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub user_id: String,
    /// The external user id of the join (`userID`; amphi's users join with their username).
    pub ext_id: String,
    pub name: String,
    /// `MODERATOR` or `VIEWER`.
    pub role: String,
    pub presenter: bool,
    pub bot: bool,
}

/// A camera being shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camera {
    /// The SFU `cameraId`.
    pub stream_id: String,
    pub user_id: String,
    pub name: String,
    pub presenter: bool,
}

/// The active screen share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screenshare {
    pub id: String,
    pub stream: String,
    /// The SFU `voiceBridge` of the screenshare viewer.
    pub voice_conf: String,
    pub has_audio: bool,
    pub width: u32,
    pub height: u32,
}

/// The slide on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slide {
    pub presentation_id: String,
    pub page_id: String,
    pub num: u32,
    pub total: u32,
    pub width: u32,
    pub height: u32,
    pub svg_url: Option<String>,
    pub png_url: Option<String>,
}

/// A public chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: String,
    pub created_at: String,
    pub text: String,
    /// `default`, `api` (from `sendChatMessage`), …
    pub kind: String,
    pub sender_id: String,
    pub sender_name: String,
    pub sender_role: String,
}

/// Which media server carries each kind of media (`bbb-webrtc-sfu` or `livekit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridges {
    pub camera: String,
    pub screenshare: String,
    pub audio: String,
}

impl Default for Bridges {
    /// BBB 3.0's default, also what a server that does not tell uses.
    fn default() -> Self {
        Self {
            camera: "bbb-webrtc-sfu".to_owned(),
            screenshare: "bbb-webrtc-sfu".to_owned(),
            audio: "bbb-webrtc-sfu".to_owned(),
        }
    }
}

/// How the meeting ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub reason: Option<String>,
    pub by: Option<String>,
}

/// The meeting as the bot sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeetingState {
    /// The bot's own user id, once known.
    pub me: Option<String>,
    /// `userJoinMeeting` took effect.
    pub joined: bool,
    pub ended: Option<Ended>,
    pub participants: BTreeMap<String, Participant>,
    pub cameras: BTreeMap<String, Camera>,
    pub screenshare: Option<Screenshare>,
    pub slide: Option<Slide>,
    pub bridges: Bridges,
}

impl MeetingState {
    /// The presenter's user id.
    pub fn presenter(&self) -> Option<&str> {
        self.participants
            .values()
            .find(|p| p.presenter)
            .map(|p| p.user_id.as_str())
    }

    /// Moderators present, bots aside.
    pub fn moderators(&self) -> usize {
        self.participants
            .values()
            .filter(|p| p.role == "MODERATOR" && !p.bot)
            .count()
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Joined,
    /// The join was refused (`joinErrorCode`), or the bot was ejected or logged out.
    Refused {
        reason: String,
    },
    Ended(Ended),
    BridgesChanged(Bridges),
    PresenterChanged(Option<String>),
    ParticipantsChanged,
    CameraStarted(Camera),
    CameraStopped {
        stream_id: String,
    },
    ScreenshareStarted(Screenshare),
    ScreenshareStopped,
    SlideChanged(Slide),
    Chat(ChatMessage),
}

fn text(row: &Value, key: &str) -> String {
    row.get(key)
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

fn flag(row: &Value, key: &str) -> bool {
    row.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn number(row: &Value, key: &str) -> u32 {
    row.get(key)
        .and_then(Value::as_f64)
        .map_or(0, |n| n.clamp(0.0, f64::from(u32::MAX)) as u32)
}

fn rows<'a>(payload: &'a Value, field: &str) -> &'a [Value] {
    payload
        .pointer(&format!("/data/{field}"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

impl MeetingState {
    /// Applies one `next` payload of `feed`; returns what changed.
    pub fn apply(&mut self, feed: Feed, payload: &Value) -> Vec<Change> {
        let mut changes = Vec::new();
        match feed {
            Feed::UserCurrent => {
                let Some(row) = rows(payload, "user_current").first() else {
                    return changes;
                };
                self.me = Some(text(row, "userId")).filter(|s| !s.is_empty());
                // After a long outage BBB removes the user: `joined` may stay true while
                // `currentlyInMeeting` turns false, and the bot must join again.
                let joined = flag(row, "joined")
                    && row
                        .get("currentlyInMeeting")
                        .is_none_or(|v| v.as_bool().unwrap_or(true));
                if joined && !self.joined {
                    changes.push(Change::Joined);
                }
                self.joined = joined;
                let error = text(row, "joinErrorCode");
                if !error.is_empty() {
                    changes.push(Change::Refused { reason: error });
                } else if flag(row, "ejected") {
                    changes.push(Change::Refused {
                        reason: format!("ejected ({})", text(row, "ejectReasonCode")),
                    });
                } else if flag(row, "loggedOut") {
                    changes.push(Change::Refused {
                        reason: "logged out".to_owned(),
                    });
                }
                if let Some(meeting) = row.get("meeting") {
                    self.note_end(meeting, &mut changes);
                }
            }
            Feed::Meeting => {
                if let Some(meeting) = rows(payload, "meeting").first() {
                    self.note_end(meeting, &mut changes);
                }
            }
            Feed::Bridges => {
                if let Some(row) = rows(payload, "meeting").first() {
                    let or_default = |key: &str, default: &str| {
                        Some(text(row, key))
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| default.to_owned())
                    };
                    let defaults = Bridges::default();
                    let bridges = Bridges {
                        camera: or_default("cameraBridge", &defaults.camera),
                        screenshare: or_default("screenShareBridge", &defaults.screenshare),
                        audio: or_default("audioBridge", &defaults.audio),
                    };
                    if bridges != self.bridges {
                        self.bridges = bridges.clone();
                        changes.push(Change::BridgesChanged(bridges));
                    }
                }
            }
            Feed::Users => {
                let before = self.presenter().map(str::to_owned);
                let people: BTreeMap<String, Participant> = rows(payload, "user")
                    .iter()
                    .map(|row| Participant {
                        user_id: text(row, "userId"),
                        ext_id: text(row, "extId"),
                        name: text(row, "name"),
                        role: text(row, "role"),
                        presenter: flag(row, "presenter"),
                        bot: flag(row, "bot"),
                    })
                    .filter(|p| !p.user_id.is_empty())
                    .map(|p| (p.user_id.clone(), p))
                    .collect();
                if people != self.participants {
                    self.participants = people;
                    changes.push(Change::ParticipantsChanged);
                }
                let after = self.presenter().map(str::to_owned);
                if before != after {
                    changes.push(Change::PresenterChanged(after));
                }
            }
            Feed::Cameras => {
                let cameras: BTreeMap<String, Camera> = rows(payload, "user_camera")
                    .iter()
                    .map(|row| {
                        let user = row.get("user").unwrap_or(&Value::Null);
                        Camera {
                            stream_id: text(row, "streamId"),
                            user_id: text(row, "userId"),
                            name: text(user, "name"),
                            presenter: flag(user, "presenter"),
                        }
                    })
                    .filter(|c| !c.stream_id.is_empty())
                    .map(|c| (c.stream_id.clone(), c))
                    .collect();
                for gone in self.cameras.keys().filter(|k| !cameras.contains_key(*k)) {
                    changes.push(Change::CameraStopped {
                        stream_id: gone.clone(),
                    });
                }
                for (id, camera) in &cameras {
                    if !self.cameras.contains_key(id) {
                        changes.push(Change::CameraStarted(camera.clone()));
                    }
                }
                self.cameras = cameras;
            }
            Feed::Screenshare => {
                let share = rows(payload, "screenshare")
                    .iter()
                    .find(|row| row.get("stoppedAt").is_none_or(Value::is_null))
                    .map(|row| Screenshare {
                        id: text(row, "screenshareId"),
                        stream: text(row, "stream"),
                        voice_conf: text(row, "voiceConf"),
                        has_audio: flag(row, "hasAudio"),
                        width: number(row, "vidWidth"),
                        height: number(row, "vidHeight"),
                    });
                match (&self.screenshare, &share) {
                    (None, Some(new)) => changes.push(Change::ScreenshareStarted(new.clone())),
                    (Some(_), None) => changes.push(Change::ScreenshareStopped),
                    (Some(old), Some(new)) if old.id != new.id => {
                        changes.push(Change::ScreenshareStopped);
                        changes.push(Change::ScreenshareStarted(new.clone()));
                    }
                    _ => {}
                }
                self.screenshare = share;
            }
            Feed::CurrentPage => {
                let slide = rows(payload, "pres_page_curr").first().map(|row| Slide {
                    presentation_id: text(row, "presentationId"),
                    page_id: text(row, "pageId"),
                    num: number(row, "num"),
                    total: number(row, "totalPages"),
                    width: number(row, "width"),
                    height: number(row, "height"),
                    svg_url: Some(text(row, "svgUrl")).filter(|s| !s.is_empty()),
                    png_url: Some(text(row, "pngUrl")).filter(|s| !s.is_empty()),
                });
                if let Some(slide) = &slide
                    && self.slide.as_ref() != Some(slide)
                {
                    changes.push(Change::SlideChanged(slide.clone()));
                }
                self.slide = slide;
            }
            Feed::Chat => {
                for row in rows(payload, "chat_message_public_stream") {
                    let message = ChatMessage {
                        id: text(row, "messageId"),
                        created_at: text(row, "createdAt"),
                        text: text(row, "message"),
                        kind: text(row, "messageType"),
                        sender_id: text(row, "senderId"),
                        sender_name: text(row, "senderName"),
                        sender_role: text(row, "senderRole"),
                    };
                    // The bot's own messages come back through the stream: not news.
                    if self.me.as_deref().is_some_and(|me| me == message.sender_id) {
                        continue;
                    }
                    changes.push(Change::Chat(message));
                }
            }
        }
        changes
    }

    fn note_end(&mut self, meeting: &Value, changes: &mut Vec<Change>) {
        if flag(meeting, "ended") && self.ended.is_none() {
            let ended = Ended {
                reason: Some(text(meeting, "endedReasonCode")).filter(|s| !s.is_empty()),
                by: Some(text(meeting, "endedByUserName")).filter(|s| !s.is_empty()),
            };
            self.ended = Some(ended.clone());
            changes.push(Change::Ended(ended));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cameras_and_presenters_become_changes() {
        let mut state = MeetingState::default();
        let users = json!({"data": {"user": [
            {"userId": "w_1", "name": "Ann", "role": "MODERATOR", "presenter": true, "bot": false},
            {"userId": "w_bot", "name": "Live stream", "role": "MODERATOR", "presenter": false, "bot": true}
        ]}});
        assert_eq!(
            state.apply(Feed::Users, &users),
            [
                Change::ParticipantsChanged,
                Change::PresenterChanged(Some("w_1".into()))
            ]
        );
        assert_eq!(state.moderators(), 1, "bots do not count");
        assert!(
            state.apply(Feed::Users, &users).is_empty(),
            "same result, no change"
        );

        let one = json!({"data": {"user_camera": [{"streamId": "w_1_abc_dev", "userId": "w_1", "user": {"name": "Ann", "presenter": true, "role": "MODERATOR"}}]}});
        let changes = state.apply(Feed::Cameras, &one);
        assert!(
            matches!(&changes[..], [Change::CameraStarted(c)] if c.stream_id == "w_1_abc_dev" && c.presenter)
        );
        let none = json!({"data": {"user_camera": []}});
        assert_eq!(
            state.apply(Feed::Cameras, &none),
            [Change::CameraStopped {
                stream_id: "w_1_abc_dev".into()
            }]
        );
    }

    #[test]
    fn own_chat_messages_are_filtered_and_the_end_is_reported_once() {
        let mut state = MeetingState::default();
        let me = json!({"data": {"user_current": [{"userId": "w_bot", "joined": true, "meeting": {"ended": false}}]}});
        assert_eq!(state.apply(Feed::UserCurrent, &me), [Change::Joined]);
        let chat = json!({"data": {"chat_message_public_stream": [
            {"messageId": "1", "message": "mine", "senderId": "w_bot", "senderName": "Live stream"},
            {"messageId": "2", "message": "Bonjour", "senderId": "w_1", "senderName": "Ann", "senderRole": "MODERATOR", "messageType": "default"}
        ]}});
        let changes = state.apply(Feed::Chat, &chat);
        assert!(matches!(&changes[..], [Change::Chat(m)] if m.text == "Bonjour"));
        let ended =
            json!({"data": {"meeting": [{"ended": true, "endedReasonCode": "ENDED_FROM_API"}]}});
        assert_eq!(
            state.apply(Feed::Meeting, &ended),
            [Change::Ended(Ended {
                reason: Some("ENDED_FROM_API".into()),
                by: None
            })]
        );
        assert!(state.apply(Feed::Meeting, &ended).is_empty());
    }

    #[test]
    fn screenshares_slides_and_nonsense() {
        let mut state = MeetingState::default();
        let share = json!({"data": {"screenshare": [{"screenshareId": "s1", "stream": "st", "voiceConf": "71234-SCREENSHARE", "hasAudio": true, "vidWidth": 1920, "vidHeight": 1080, "stoppedAt": null}]}});
        assert!(
            matches!(&state.apply(Feed::Screenshare, &share)[..], [Change::ScreenshareStarted(s)] if s.voice_conf == "71234-SCREENSHARE" && s.width == 1920)
        );
        let stopped = json!({"data": {"screenshare": []}});
        assert_eq!(
            state.apply(Feed::Screenshare, &stopped),
            [Change::ScreenshareStopped]
        );
        let page = json!({"data": {"pres_page_curr": [{"presentationId": "p", "pageId": "p/2", "num": 2, "totalPages": 5, "width": 1920.0, "height": 1080.0, "svgUrl": "https://bbb/svg/2", "pngUrl": null}]}});
        assert!(
            matches!(&state.apply(Feed::CurrentPage, &page)[..], [Change::SlideChanged(s)] if s.num == 2 && s.png_url.is_none())
        );
        for junk in [
            json!(null),
            json!({"data": 5}),
            json!({"data": {"user": "x"}}),
            json!({"errors": []}),
        ] {
            for feed in Feed::ALL {
                let _ = state.apply(feed, &junk);
            }
        }
    }
}
