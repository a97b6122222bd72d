//! Joining a meeting (`/meeting/{link}/` and the direct link `/meeting/{link}/{key}`): owners
//! start it and enter as moderators; others pass the access rules, then the password (throttled
//! per address) or the direct link; before the start, a waiting page that lets them in by itself.

use super::extract::Form;
use super::meetings::{
    actor, bbb_api, bbb_failure, facts, join_url, meeting_from_link, moderator_url, now, require,
    settings,
};
use super::pages::html;
use super::{AppError, AppState, Msg, RequestContext};
use crate::bbb::Role;
use crate::db::Meeting;
use crate::meetings::policy::{self, Action, Decision};
use crate::meetings::{self as m};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// The join page: waiting room, password form, or messages.
fn join_page(
    state: &AppState,
    ctx: &RequestContext,
    meeting: &Meeting,
    direct: Option<&str>,
    running: bool,
    error: Option<Msg>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let tz = state.config.site.tz();
    let start = m::utc_to_local(tz, meeting.fields.start_at);
    let schedule = m::Schedule {
        start_at: meeting.fields.start_at,
        duration: chrono::Duration::minutes(i64::from(meeting.fields.expected_duration_minutes)),
        repetition: meeting.fields.repetition,
    };
    let next = schedule
        .current_or_next(tz, now(state))
        .map(|t| m::utc_to_local(tz, t))
        .unwrap_or(start);
    let message = error.map(|msg| msg.sentence(state.templates.catalog(), ctx.lang));
    let body = html(
        state,
        ctx,
        "meetings/join.html",
        context! {
            meeting => context! { link => &meeting.meeting_id, name => &meeting.fields.name },
            running => running,
            date => next.date().to_string(),
            time => next.format("%H:%M").to_string(),
            ask_name => ctx.user.is_none(),
            ask_password => direct.is_none(),
            action => match direct { Some(key) => format!("/meeting/{}/{key}", meeting.meeting_id), None => format!("/meeting/{}/", meeting.meeting_id) },
            error => message,
        },
    )?;
    Ok((status, body).into_response())
}

/// The direct key of a link, if it is right; a wrong one is refused.
fn direct_key<'a>(
    state: &AppState,
    meeting: &Meeting,
    given: Option<&'a str>,
) -> Result<Option<&'a str>, AppError> {
    match given {
        None => Ok(None),
        Some(key)
            if m::direct_access_matches(
                state.secret_key.expose(),
                meeting.id,
                &meeting.fields.attendee_password,
                key,
            ) =>
        {
            Ok(Some(key))
        }
        Some(_) => Err(AppError::BadRequest(Msg::new("meetings.bad_direct_link"))),
    }
}

async fn join_get(
    state: AppState,
    ctx: RequestContext,
    link: String,
    given: Option<String>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    let direct = direct_key(&state, &meeting, given.as_deref())?;
    let actor = actor(&state, &ctx).await?;
    let facts = facts(&meeting);
    let api = bbb_api(&state)?;
    // Owners start the meeting and enter as moderators.
    if policy::decide(
        &actor,
        Some(&facts),
        Action::JoinAsModerator,
        settings(&state),
    ) == Decision::Allow
        && let Some(user) = &ctx.user
    {
        let url = moderator_url(&state, user, &meeting).await?;
        return Ok(Redirect::to(url.expose()).into_response());
    }
    let running = api
        .is_meeting_running(&meeting.meeting_id)
        .await
        .map_err(|e| bbb_failure(&e.into()))?;
    if !running {
        return join_page(&state, &ctx, &meeting, direct, false, None, StatusCode::OK);
    }
    require(
        policy::decide(&actor, Some(&facts), Action::JoinAsViewer, settings(&state)),
        &ctx,
    )?;
    // A valid direct link lets an authenticated person straight in.
    if direct.is_some()
        && let Some(user) = &ctx.user
    {
        let url = join_url(
            &state,
            &meeting,
            user.shown_name(),
            Some(user),
            Role::Viewer,
        )
        .await?;
        return Ok(Redirect::to(url.expose()).into_response());
    }
    join_page(&state, &ctx, &meeting, direct, true, None, StatusCode::OK)
}

async fn join_post(
    state: AppState,
    ctx: RequestContext,
    link: String,
    given: Option<String>,
    form: JoinForm,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    let direct = direct_key(&state, &meeting, given.as_deref())?;
    let actor = actor(&state, &ctx).await?;
    require(
        policy::decide(
            &actor,
            Some(&facts(&meeting)),
            Action::JoinAsViewer,
            settings(&state),
        ),
        &ctx,
    )?;
    let name = match &ctx.user {
        Some(user) => user.shown_name().to_owned(),
        None => form
            .name
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect(),
    };
    if name.chars().count() < 2 {
        return join_page(
            &state,
            &ctx,
            &meeting,
            direct,
            true,
            Some(Msg::new("meetings.join.name_required")),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    if direct.is_none() {
        // Wrong passwords count with failed logins of this address and are throttled alike
        // (per address only: a stranger cannot lock everyone out of a meeting).
        let ip = ctx.client_ip.to_string();
        if let Some(retry_after) = state.accounts.address_throttle(&ip).await? {
            let (seconds, msg) = super::error::throttled(retry_after);
            let mut page = join_page(
                &state,
                &ctx,
                &meeting,
                direct,
                true,
                Some(msg),
                StatusCode::TOO_MANY_REQUESTS,
            )?;
            if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string()) {
                page.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
            return Ok(page);
        }
        if !crate::bbb::checksum::secrets_match(&form.password, &meeting.fields.attendee_password) {
            state
                .accounts
                .record_failed_attempt(&format!("meeting:{}", meeting.id), &ip)
                .await?;
            return join_page(
                &state,
                &ctx,
                &meeting,
                direct,
                true,
                Some(Msg::new("meetings.join.wrong_password")),
                StatusCode::UNAUTHORIZED,
            );
        }
    }
    // BBB is asked only once the request is known to be good.
    let running = bbb_api(&state)?
        .is_meeting_running(&meeting.meeting_id)
        .await
        .map_err(|e| bbb_failure(&e.into()))?;
    if !running {
        return join_page(&state, &ctx, &meeting, direct, false, None, StatusCode::OK);
    }
    let url = join_url(&state, &meeting, &name, ctx.user.as_ref(), Role::Viewer).await?;
    Ok(Redirect::to(url.expose()).into_response())
}

/// `GET /meeting/{link}/`.
pub async fn join(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
) -> Result<Response, AppError> {
    join_get(state, ctx, link, None).await
}

/// `GET /meeting/{link}/{direct}`.
pub async fn join_direct(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((link, direct)): Path<(String, String)>,
) -> Result<Response, AppError> {
    join_get(state, ctx, link, Some(direct)).await
}

/// `POST /meeting/{link}/`.
pub async fn join_submit(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
    Form(form): Form<JoinForm>,
) -> Result<Response, AppError> {
    join_post(state, ctx, link, None, form).await
}

/// `POST /meeting/{link}/{direct}`.
pub async fn join_direct_submit(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((link, direct)): Path<(String, String)>,
    Form(form): Form<JoinForm>,
) -> Result<Response, AppError> {
    join_post(state, ctx, link, Some(direct), form).await
}
