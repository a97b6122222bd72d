//! The meetings JSON API under `/api/v1/meetings` (API tokens: `Authorization: Token …` or
//! `Bearer …`), described by the OpenAPI document at `/api/v1/openapi.json`. The same rules and
//! checks as the pages: fields are named as in the form and checked by the same code.

use super::meeting_form::{audience, checked_fields};
use super::meetings::{
    actor, bbb_api, bbb_failure, delete_meeting, end_meeting, facts, join_url, moderator_url, now,
    settings,
};
use super::{AppError, AppState, Msg, RequestContext};
use crate::bbb::Role;
use crate::db::Meeting;
use crate::meetings::form::{Errors, Input};
use crate::meetings::policy::{self, Action, Actor, Decision};
use crate::meetings::{self as m};
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

fn decide(
    state: &AppState,
    actor: &Actor,
    meeting: Option<&Meeting>,
    action: Action,
) -> Result<(), AppError> {
    let facts = meeting.map(facts);
    match policy::decide(actor, facts.as_ref(), action, settings(state)) {
        Decision::Allow => Ok(()),
        Decision::Login => Err(AppError::Unauthorized(Msg::new("error.invalid_token"))),
        Decision::Deny(denial) => Err(AppError::Forbidden(Msg::new(denial.message_key()))),
    }
}

async fn caller(state: &AppState, ctx: &RequestContext) -> Result<Actor, AppError> {
    if ctx.user.is_none() {
        return Err(AppError::Unauthorized(Msg::new("error.invalid_token")));
    }
    actor(state, ctx).await
}

async fn by_id(state: &AppState, id: i64) -> Result<Meeting, AppError> {
    state.db.meeting(id).await?.ok_or(AppError::NotFound)
}

/// A meeting as JSON; the attendee password only for those who manage it.
async fn to_json(state: &AppState, meeting: &Meeting, actor: &Actor) -> Result<Value, AppError> {
    let f = &meeting.fields;
    let username =
        |id: i64| async move { state.db.user_by_id(id).await.map(|u| u.map(|u| u.username)) };
    let owner = username(f.owner_id).await?;
    let mut co_owners = Vec::new();
    for id in &f.additional_owners {
        co_owners.extend(username(*id).await?);
    }
    let groups: Vec<String> = state
        .db
        .access_groups()
        .await?
        .into_iter()
        .filter(|g| f.groups.contains(&g.id))
        .map(|g| g.code_name)
        .collect();
    let manages = policy::decide(actor, Some(&facts(meeting)), Action::Edit, settings(state))
        == Decision::Allow;
    let public = state.config.public_url.trim_end_matches('/');
    if !manages {
        // Those who may only join see what an invitation says, not the dial-in number, the
        // co-owners or the settings.
        return Ok(json!({
            "id": meeting.id,
            "meeting_id": meeting.meeting_id,
            "name": f.name,
            "is_restricted": f.is_restricted,
            "start_at": f.start_at.to_rfc3339(),
            "expected_duration_minutes": f.expected_duration_minutes,
            "is_personal": meeting.is_personal,
            "is_webinar": f.is_webinar,
            "live_url": f.is_webinar.then(|| format!("{public}/live/{}", meeting.meeting_id)),
            "is_running": meeting.is_running,
            "join_url": format!("{public}/meeting/{}/", meeting.meeting_id),
        }));
    }
    Ok(json!({
        "id": meeting.id,
        "meeting_id": meeting.meeting_id,
        "name": f.name,
        "owner": owner,
        "additional_owners": co_owners,
        "attendee_password": f.attendee_password,
        "is_restricted": f.is_restricted,
        "restrict_access_to_groups": groups,
        "start_at": f.start_at.to_rfc3339(),
        "expected_duration_minutes": f.expected_duration_minutes,
        "recurrence": f.repetition.map(|r| json!({
            "frequency": r.rule.frequency.as_str(),
            "interval": r.rule.interval,
            "weekdays": r.rule.weekdays.days().map(|d| d.num_days_from_monday()).collect::<Vec<_>>(),
            "monthly_type": r.rule.monthly.as_str(),
            "until": r.until.to_string(),
            "count": r.count,
        })),
        "max_participants": f.max_participants,
        "welcome_text": f.welcome_text,
        "record": f.record,
        "auto_start_recording": f.auto_start_recording,
        "allow_start_stop_recording": f.allow_start_stop_recording,
        "webcam_only_for_moderators": f.webcam_only_for_moderators,
        "guest_policy": f.guest_policy.map(|g| g.as_str()),
        "lock_settings": f.lock.entries().iter().map(|(_, field, on)| (field.trim_start_matches("lock_settings_").to_owned(), json!(on))).collect::<serde_json::Map<_, _>>(),
        "parent_meeting_id": f.parent_meeting_id,
        "voice_bridge": f.voice_bridge,
        "is_personal": meeting.is_personal,
        "is_webinar": f.is_webinar,
        "enable_chat": f.enable_chat,
        "webinar_layout": f.webinar_layout,
        "webinar_anonymous_chat": f.webinar_anonymous_chat,
        "webinar_keep_video": f.webinar_keep_video,
        "live_url": f.is_webinar.then(|| format!("{public}/live/{}", meeting.meeting_id)),
        "is_running": meeting.is_running,
        "join_url": format!("{public}/meeting/{}/", meeting.meeting_id),
        "created_at": meeting.created_at.to_rfc3339(),
        "updated_at": meeting.updated_at.to_rfc3339(),
    }))
}

/// A JSON object with the form's field names, as the form's input (`true` is a ticked box,
/// arrays repeat the field).
fn input_of(body: &Value) -> Result<Input, AppError> {
    let object = body
        .as_object()
        .ok_or_else(|| AppError::BadRequest(Msg::new("error.bad_form")))?;
    let mut pairs = Vec::new();
    for (name, value) in object {
        let mut push = |v: &Value| match v {
            Value::String(s) => pairs.push((name.clone(), s.clone())),
            Value::Number(n) => pairs.push((name.clone(), n.to_string())),
            Value::Bool(true) => pairs.push((name.clone(), "on".to_owned())),
            _ => {}
        };
        match value {
            Value::Array(items) if name == "additional_owners" => {
                let names: Vec<String> = items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect();
                pairs.push((name.clone(), names.join(",")));
            }
            Value::Array(items) => items.iter().for_each(&mut push),
            other => push(other),
        }
    }
    Ok(Input(pairs))
}

fn field_errors(state: &AppState, ctx: &RequestContext, errors: &Errors) -> Response {
    let catalog = state.templates.catalog();
    let shown: serde_json::Map<String, Value> = errors
        .iter()
        .map(|(field, e)| {
            let args: Vec<(&str, &str)> = e.args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            (
                (*field).to_owned(),
                json!(catalog.get(ctx.lang, e.key, &args)),
            )
        })
        .collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "errors": shown })),
    )
        .into_response()
}

/// `GET /api/v1/meetings`: the caller's meetings (owned or co-owned).
pub async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Response, AppError> {
    let actor = caller(&state, &ctx).await?;
    decide(&state, &actor, None, Action::List)?;
    let mut out = Vec::new();
    for meeting in state
        .db
        .meetings_of(actor.user_id.unwrap_or_default())
        .await?
    {
        out.push(to_json(&state, &meeting, &actor).await?);
    }
    Ok(Json(json!({ "results": out, "count": out.len() })).into_response())
}

/// `POST /api/v1/meetings`.
pub async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Json(body): Json<Value>,
) -> Result<Response, AppError> {
    let actor = caller(&state, &ctx).await?;
    decide(&state, &actor, None, Action::Add)?;
    let input = input_of(&body)?;
    match checked_fields(&state, &ctx, &input, audience(&state, &actor, None), None).await? {
        Ok(fields) => {
            let meeting = state
                .db
                .create_meeting(&fields, false, "", now(&state))
                .await?;
            if meeting.fields.is_webinar {
                state.webinars.live_of(&meeting).await?;
            }
            let body = to_json(&state, &meeting, &actor).await?;
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(errors) => Ok(field_errors(&state, &ctx, &errors)),
    }
}

/// `GET /api/v1/meetings/{id}`: owners and those who may join see it.
pub async fn read(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let actor = caller(&state, &ctx).await?;
    let meeting = by_id(&state, id).await?;
    decide(&state, &actor, Some(&meeting), Action::JoinAsViewer)?;
    Ok(Json(to_json(&state, &meeting, &actor).await?).into_response())
}

/// `PUT /api/v1/meetings/{id}` (every field, as the form sends them).
pub async fn update(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
    Json(body): Json<Value>,
) -> Result<Response, AppError> {
    let actor = caller(&state, &ctx).await?;
    let meeting = by_id(&state, id).await?;
    decide(&state, &actor, Some(&meeting), Action::Edit)?;
    let input = input_of(&body)?;
    match checked_fields(
        &state,
        &ctx,
        &input,
        audience(&state, &actor, Some(&meeting)),
        Some(&meeting),
    )
    .await?
    {
        Ok(fields) => {
            state
                .db
                .update_meeting(meeting.id, &fields, now(&state))
                .await?;
            let updated = by_id(&state, id).await?;
            if updated.fields.is_webinar {
                state.webinars.live_of(&updated).await?;
            }
            Ok(Json(to_json(&state, &updated, &actor).await?).into_response())
        }
        Err(errors) => Ok(field_errors(&state, &ctx, &errors)),
    }
}

/// `DELETE /api/v1/meetings/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let actor = caller(&state, &ctx).await?;
    let meeting = by_id(&state, id).await?;
    decide(&state, &actor, Some(&meeting), Action::Delete)?;
    delete_meeting(&state, &meeting).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/meetings/{id}/status`.
pub async fn status(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    caller(&state, &ctx).await?;
    let meeting = by_id(&state, id).await?;
    let running = bbb_api(&state)?
        .is_meeting_running(&meeting.meeting_id)
        .await
        .map_err(|e| bbb_failure(&e.into()))?;
    state
        .db
        .set_meeting_running(&meeting.meeting_id, running)
        .await?;
    Ok(Json(json!({ "running": running })).into_response())
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct JoinRequest {
    password: Option<String>,
    direct_key: Option<String>,
}

/// `POST /api/v1/meetings/{id}/join`: a BBB join URL for the caller, with the role the rules
/// give: owners start the meeting and moderate; others need the password or the direct key.
pub async fn join(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let actor = caller(&state, &ctx).await?;
    let user = ctx
        .user
        .as_ref()
        .ok_or(AppError::Unauthorized(Msg::new("error.invalid_token")))?;
    let meeting = by_id(&state, id).await?;
    // The body is optional: owners need none.
    let request: JoinRequest = if body.iter().all(u8::is_ascii_whitespace) {
        JoinRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| AppError::BadRequest(Msg::new("error.bad_form")))?
    };
    let api = bbb_api(&state)?;
    if policy::decide(
        &actor,
        Some(&facts(&meeting)),
        Action::JoinAsModerator,
        settings(&state),
    ) == Decision::Allow
    {
        let url = moderator_url(&state, user, &meeting).await?;
        return Ok(Json(json!({ "url": url.expose(), "role": "MODERATOR" })).into_response());
    }
    decide(&state, &actor, Some(&meeting), Action::JoinAsViewer)?;
    let key_ok = request.direct_key.as_deref().is_some_and(|k| {
        m::direct_access_matches(
            state.secret_key.expose(),
            meeting.id,
            &meeting.fields.attendee_password,
            k,
        )
    });
    if !key_ok {
        // Throttled first: a throttled address learns nothing about its guess.
        let ip = ctx.client_ip.to_string();
        if state.accounts.address_throttle(&ip).await?.is_some() {
            return Ok((
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({ "error": "too many wrong passwords; try again later" })),
            )
                .into_response());
        }
        let password_ok = request.password.as_deref().is_some_and(|p| {
            crate::bbb::checksum::secrets_match(&meeting.fields.attendee_password, p)
        });
        if !password_ok {
            state
                .accounts
                .record_failed_attempt(&format!("meeting:{}", meeting.id), &ip)
                .await?;
            return Err(AppError::Forbidden(Msg::new(
                "meetings.join.wrong_password",
            )));
        }
    }
    if !api
        .is_meeting_running(&meeting.meeting_id)
        .await
        .map_err(|e| bbb_failure(&e.into()))?
    {
        return Ok((
            StatusCode::CONFLICT,
            Json(json!({ "error": "the meeting has not started", "running": false })),
        )
            .into_response());
    }
    let url = join_url(
        &state,
        &meeting,
        user.shown_name(),
        Some(user),
        Role::Viewer,
    )
    .await?;
    Ok(Json(json!({ "url": url.expose(), "role": "VIEWER" })).into_response())
}

/// `POST /api/v1/meetings/{id}/end`.
pub async fn end(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let actor = caller(&state, &ctx).await?;
    let meeting = by_id(&state, id).await?;
    decide(&state, &actor, Some(&meeting), Action::End)?;
    end_meeting(&state, &meeting).await?;
    Ok(Json(json!({ "ended": true })).into_response())
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct InviteRequest {
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    owner_copy: bool,
}

/// `POST /api/v1/meetings/{id}/invite`: `{"emails": [...], "owner_copy": bool}`.
pub async fn invite(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
    Json(request): Json<InviteRequest>,
) -> Result<Response, AppError> {
    use super::invite::{Refusal, send_invitations};
    let actor = caller(&state, &ctx).await?;
    let meeting = by_id(&state, id).await?;
    decide(&state, &actor, Some(&meeting), Action::Invite)?;
    let emails = request.emails.join("\n");
    match send_invitations(&state, &ctx, &meeting, &emails, request.owner_copy).await? {
        Ok((sent, failed)) => {
            let status = if failed.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            };
            Ok((status, Json(json!({ "sent": sent, "failed": failed }))).into_response())
        }
        Err(Refusal::NoMail) => Err(AppError::Unavailable(Msg::new("invite.not_configured"))),
        Err(Refusal::Input(msg)) => {
            let error = msg.sentence(state.templates.catalog(), ctx.lang);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "errors": { "emails": error } })),
            )
                .into_response())
        }
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(super::openapi::document(&state.config.public_url))
}
