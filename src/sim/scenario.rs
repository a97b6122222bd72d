//! Scenarios: what happens in a simulated meeting, as a list of events applied in order
//! (`POST /sim/meetings/{meetingID}/events`), each optionally after a delay, so that tests and
//! the demo replay realistic sessions: a presenter joins, shares a camera, changes slides,
//! shares a screen, writes in the chat, and the meeting ends.

use super::lifecycle::now_ms;
use super::state::{ChatMessage, EndReason, SimScreenshare, SimState, SimUser, random_alnum};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::time::Duration;

/// One event; people are named by their full name.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Someone joins (through a BBB client: they count as in the meeting).
    Join {
        name: String,
        #[serde(default = "viewer")]
        role: String,
        /// The join's external user id (`userID`); a random one without it.
        #[serde(default)]
        ext_id: Option<String>,
    },
    Leave {
        name: String,
    },
    Presenter {
        name: String,
    },
    CameraOn {
        name: String,
    },
    CameraOff {
        name: String,
    },
    ScreenshareStart {
        #[serde(default)]
        has_audio: bool,
    },
    ScreenshareStop,
    /// Shows a page of the presentation (1-based).
    Slide {
        page: u32,
    },
    Chat {
        name: String,
        text: String,
    },
    /// Ends the meeting as a moderator's "End meeting" does.
    End,
    /// Closes every GraphQL socket of the meeting at once (fault injection).
    DropSockets,
    /// Closes every SFU socket of the meeting at once (fault injection).
    DropMediaSockets,
    /// Answers the next `count` SFU `start`s with 2201 (MEDIA_NOT_FOUND), whichever meeting
    /// they are for (fault injection).
    RefuseMedia {
        count: u32,
    },
    /// Leaves the next `count` SFU `start`s unanswered: the socket stays open and answers
    /// pings, but the stream never comes (fault injection: a stalled SFU).
    SilenceMedia {
        count: u32,
    },
    /// Answers the next `count` API calls with HTTP 503 (fault injection).
    FailApi {
        count: u32,
    },
    /// Holds the next `count` API calls, whichever meeting they are for, for `seconds` without
    /// handling them, then answers 504 (fault injection: a BBB API that stops answering).
    HangApi {
        count: u32,
        seconds: u64,
    },
}

fn viewer() -> String {
    "VIEWER".to_owned()
}

/// A scenario file (`amphi sim --scenario FILE`): played in every meeting created (or only in
/// `meeting_id`), from its creation.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub meeting_id: Option<String>,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// Reads a scenario file (JSON).
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A timed event.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Step {
    /// Wait this long after the previous step.
    #[serde(default)]
    pub after_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

impl SimState {
    /// Applies one event; `Err` says why it could not be.
    pub fn apply_event(&self, meeting_id: &str, event: &Event) -> Result<(), String> {
        let mut inner = self.lock();
        let meeting = inner
            .meetings
            .get_mut(meeting_id)
            .ok_or_else(|| format!("no running meeting {meeting_id}"))?;
        let find = |users: &[SimUser], name: &str| {
            users
                .iter()
                .position(|u| u.full_name == name)
                .ok_or_else(|| format!("nobody called {name} in the meeting"))
        };
        match event {
            Event::Join { name, role, ext_id } => {
                let internal = format!("w_{}", random_alnum(12));
                meeting.users.push(SimUser {
                    external_id: ext_id.clone().unwrap_or_else(|| internal.clone()),
                    internal_id: internal,
                    full_name: name.clone(),
                    role: role.to_ascii_uppercase(),
                    bot: false,
                    session_token: random_alnum(16),
                    auth_token: random_alnum(12),
                    jsessionid: random_alnum(32),
                    client_joined: true,
                    camera: None,
                });
                meeting.started = true;
                meeting.ever_joined = true;
                meeting.participants_seen += 1;
                meeting.empty_since = None;
                let meeting = meeting.clone();
                self.user_joined(&inner, &meeting, meeting.users.len() - 1);
            }
            Event::Leave { name } => {
                let id = meeting.users[find(&meeting.users, name)?]
                    .internal_id
                    .clone();
                drop(inner);
                self.leave(meeting_id, &id);
                return Ok(());
            }
            Event::Presenter { name } => {
                let index = find(&meeting.users, name)?;
                meeting.presenter = Some(meeting.users[index].internal_id.clone());
            }
            Event::CameraOn { name } => {
                let index = find(&meeting.users, name)?;
                let user = &mut meeting.users[index];
                // BBB's stream id: <userId>_<clientSessionUUID>_<deviceId>.
                user.camera = Some(format!(
                    "{}_{}_{}",
                    user.internal_id,
                    random_alnum(8),
                    random_alnum(16)
                ));
            }
            Event::CameraOff { name } => {
                let index = find(&meeting.users, name)?;
                meeting.users[index].camera = None;
            }
            Event::ScreenshareStart { has_audio } => {
                meeting.screenshare = Some(SimScreenshare {
                    id: random_alnum(12),
                    stream: random_alnum(16),
                    has_audio: *has_audio,
                    width: 1920,
                    height: 1080,
                    started_at: now_ms(),
                });
            }
            Event::ScreenshareStop => meeting.screenshare = None,
            Event::Slide { page } => {
                if !(1..=meeting.slides).contains(page) {
                    return Err(format!(
                        "the presentation has pages 1 to {}",
                        meeting.slides
                    ));
                }
                meeting.slide = *page;
            }
            Event::Chat { name, text } => {
                let index = find(&meeting.users, name)?;
                let sender = &meeting.users[index];
                let message = ChatMessage {
                    id: String::new(),
                    sender_id: sender.internal_id.clone(),
                    sender_name: sender.full_name.clone(),
                    message: text.clone(),
                    message_type: "default".to_owned(),
                    time_ms: now_ms().max(meeting.chat.last().map_or(0, |c| c.time_ms + 1)),
                };
                self.chat_message(&mut inner, meeting_id, message);
                return Ok(());
            }
            Event::End => {
                self.end_meeting(&mut inner, meeting_id, EndReason::EndedFromApi);
                return Ok(());
            }
            Event::DropSockets => {
                drop(inner);
                let _ = self.changes.send(format!("!drop:{meeting_id}"));
                return Ok(());
            }
            Event::DropMediaSockets => {
                drop(inner);
                let _ = self.changes.send(format!("!dropsfu:{meeting_id}"));
                return Ok(());
            }
            Event::RefuseMedia { count } => {
                inner.sfu_refusals = *count;
                return Ok(());
            }
            Event::SilenceMedia { count } => {
                inner.sfu_silences = *count;
                return Ok(());
            }
            Event::FailApi { count } => {
                inner.fail_next = *count;
                return Ok(());
            }
            Event::HangApi { count, seconds } => {
                inner.api_hangs = (*count, Duration::from_secs(*seconds));
                return Ok(());
            }
        }
        drop(inner);
        self.changed(meeting_id);
        Ok(())
    }

    /// Plays steps in order, waiting `after_ms` before each.
    pub async fn play(&self, meeting_id: &str, steps: &[Step]) -> Result<(), String> {
        for step in steps {
            if step.after_ms > 0 {
                tokio::time::sleep(Duration::from_millis(step.after_ms)).await;
            }
            self.apply_event(meeting_id, &step.event)?;
        }
        Ok(())
    }
}

/// `POST /sim/meetings/{meetingID}/events`: a JSON list of steps. Steps without delays are
/// applied before the answer; the rest is played in the background.
pub async fn post_events(
    State(state): State<SimState>,
    Path(meeting_id): Path<String>,
    Json(steps): Json<Vec<Step>>,
) -> Response {
    let immediate = steps.iter().take_while(|s| s.after_ms == 0).count();
    if let Err(e) = state.play(&meeting_id, &steps[..immediate]).await {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "error": e })),
        )
            .into_response();
    }
    let rest = steps[immediate..].to_vec();
    if !rest.is_empty() {
        tokio::spawn(async move {
            if let Err(e) = state.play(&meeting_id, &rest).await {
                tracing::warn!(error = %e, "simulator: scenario step failed");
            }
        });
    }
    StatusCode::NO_CONTENT.into_response()
}
