//! The webinars' lives on the web: the public "Lives" page (those in progress and those to
//! come; restricted ones only for signed-in users), and the owners' controls (start the live,
//! restart it, end the live only, end the webinar, show or hide the chat), from the meeting
//! list and through the API.

use super::meetings::{actor, allowed, bbb_api, bbb_failure, meeting_from_link, now};
use super::pages::html;
use super::{AppError, AppState, Msg, RequestContext};
use crate::db::{LiveState, Meeting, StoredLive};
use crate::meetings::policy::{self, Action, Decision};
use crate::webinar::Command;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use minijinja::context;

/// What an owner may ask of a live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveAction {
    Start,
    Restart,
    /// End the live only (the meeting goes on).
    Stop,
    /// End the webinar: the BBB meeting and the live.
    End,
    ShowChat,
    HideChat,
}

impl LiveAction {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "start" => Self::Start,
            "restart" => Self::Restart,
            "stop" => Self::Stop,
            "end" => Self::End,
            "show_chat" => Self::ShowChat,
            "hide_chat" => Self::HideChat,
            _ => return None,
        })
    }

    /// The rule that allows it: starting is joining as a moderator, the rest is ending.
    fn rule(self) -> Action {
        match self {
            Self::Start => Action::JoinAsModerator,
            _ => Action::End,
        }
    }
}

/// Carries out `action` on `meeting`'s live, for someone the rules allowed.
async fn act(
    state: &AppState,
    meeting: &Meeting,
    user: Option<&crate::db::User>,
    action: LiveAction,
) -> Result<StoredLive, AppError> {
    let webinars = &state.webinars;
    let now = now(state);
    match action {
        LiveAction::Start => {
            let started = crate::meetings::start::ensure_created(
                &state.db,
                bbb_api(state)?,
                &state.config,
                state.secret_key.expose(),
                meeting,
                user.map(|u| u.id),
                now,
            )
            .await
            .map_err(|e| bbb_failure(&e))?;
            state.meeting_status.invalidate().await;
            webinars.start(&started, now).await?;
        }
        LiveAction::Restart => webinars.command(meeting, Command::Restart, now).await?,
        LiveAction::Stop => {
            let stop = Command::Stop { end_meeting: false };
            webinars.command(meeting, stop, now).await?;
        }
        LiveAction::End => {
            let stop = Command::Stop { end_meeting: true };
            webinars.command(meeting, stop, now).await?;
            state.meeting_status.invalidate().await;
        }
        LiveAction::ShowChat => {
            webinars
                .command(meeting, Command::ShowChat(true), now)
                .await?
        }
        LiveAction::HideChat => {
            webinars
                .command(meeting, Command::ShowChat(false), now)
                .await?
        }
    }
    Ok(webinars.live_of(meeting).await?)
}

/// `POST /meeting/live/{link}/{action}`: the owners' buttons on the meeting list.
pub async fn control(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((link, action)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let action = LiveAction::parse(&action).ok_or(AppError::NotFound)?;
    let meeting = meeting_from_link(&state, &link).await?;
    if !meeting.fields.is_webinar {
        return Err(AppError::NotFound);
    }
    allowed(&state, &ctx, Some(&meeting), action.rule()).await?;
    act(&state, &meeting, ctx.user.as_ref(), action).await?;
    Ok(Redirect::to("/meeting/").into_response())
}

/// `POST /api/v1/meetings/{id}/live/{action}`: the same for API clients; answers the live.
pub async fn api_control(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, AppError> {
    let action = LiveAction::parse(&action).ok_or(AppError::NotFound)?;
    let meeting = state.db.meeting(id).await?.ok_or(AppError::NotFound)?;
    if !meeting.fields.is_webinar {
        return Err(AppError::NotFound);
    }
    let who = actor(&state, &ctx).await?;
    let facts = super::meetings::facts(&meeting);
    if policy::decide(
        &who,
        Some(&facts),
        action.rule(),
        super::meetings::settings(&state),
    ) != Decision::Allow
    {
        return Err(AppError::Forbidden(Msg::new("meetings.denied.no_access")));
    }
    let live = act(&state, &meeting, ctx.user.as_ref(), action).await?;
    Ok(Json(live_json(&state, &meeting, &live)).into_response())
}

/// A live as the API shows it.
pub fn live_json(state: &AppState, meeting: &Meeting, live: &StoredLive) -> serde_json::Value {
    let public = state.config.public_url.trim_end_matches('/');
    serde_json::json!({
        "slug": live.slug,
        "url": format!("{public}/live/{}", live.slug),
        "meeting": meeting.id,
        "title": meeting.fields.name,
        "status": live.state as u8,
        "state": live.state.as_str(),
        "started_at": live.started_at.map(|t| t.to_rfc3339()),
        "ended_at": live.ended_at.map(|t| t.to_rfc3339()),
        "viewer_peak": live.viewer_peak,
        "show_chat": live.show_chat,
        "restarts": live.restarts,
    })
}

/// `GET /lives`: lives in progress, then those to come (restricted ones for signed-in users
/// only), each with its page.
pub async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Response, AppError> {
    let tz = state.config.site.tz();
    let now = now(&state);
    let mut current = Vec::new();
    let mut upcoming = Vec::new();
    let capacity = state.webinars.capacity().await?;
    for live in state.db.all_lives().await? {
        let Some(meeting) = state.db.meeting(live.meeting_id).await? else {
            continue;
        };
        if !meeting.fields.is_webinar || (meeting.fields.is_restricted && ctx.user.is_none()) {
            continue;
        }
        let start = meeting.fields.start_at;
        let end =
            start + chrono::Duration::minutes(i64::from(meeting.fields.expected_duration_minutes));
        // The planned load: webinars captured at the same time, this one included.
        let planned = if live.state == LiveState::NotStarted && end > now {
            state
                .db
                .overlapping_webinars(start, end, Some(meeting.id))
                .await?
                .len()
                + 1
        } else {
            0
        };
        let item = context! {
            slug => &live.slug,
            title => &meeting.fields.name,
            start => crate::meetings::utc_to_local(tz, start).format("%Y-%m-%d %H:%M").to_string(),
            restricted => meeting.fields.is_restricted,
            viewers => live.viewer_peak,
            planned => planned,
        };
        match live.state {
            LiveState::InProgress => current.push((start, item)),
            LiveState::NotStarted if end > now => upcoming.push((start, item)),
            _ => {}
        }
    }
    current.sort_by_key(|(start, _)| *start);
    upcoming.sort_by_key(|(start, _)| *start);
    let strip = |v: Vec<(chrono::DateTime<chrono::Utc>, minijinja::Value)>| {
        v.into_iter().map(|(_, item)| item).collect::<Vec<_>>()
    };
    Ok(html(
        &state,
        &ctx,
        "live/list.html",
        context! { current => strip(current), upcoming => strip(upcoming), capacity => capacity },
    )?
    .into_response())
}
