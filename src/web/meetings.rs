//! Meeting pages under `/meeting/` (Pod's URL map, so links keep working): "My meetings", the
//! form, deletion, joining (by role, password or direct link) with a waiting page, status,
//! meeting information and ending.

use super::extract::{Form, Query};
use super::pages::html;
use super::{AppError, AppState, Msg, RequestContext};
use crate::bbb::MessageKey;
use crate::db::{Meeting, MeetingFields};
use crate::meetings::policy::{self, Action, Actor, Decision, MeetingFacts};
use crate::meetings::{self as m, start};
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Deserialize;

/// Who is asking, with the permissions and groups the rules read.
pub(crate) async fn actor(state: &AppState, ctx: &RequestContext) -> Result<Actor, AppError> {
    let Some(user) = &ctx.user else {
        return Ok(Actor::anonymous());
    };
    let perms = state.db.user_permissions(user.id).await?;
    let groups = state.db.user_access_groups(user.id).await?;
    let webinar = &state.config.webinar;
    let webinar_capable = user.is_superuser
        || groups
            .iter()
            .any(|g| webinar.affiliations.contains(&g.code_name))
        || state
            .db
            .user_permission_groups(user.id)
            .await?
            .contains(&webinar.admin_group);
    Ok(Actor {
        user_id: Some(user.id),
        is_staff: user.is_staff,
        is_superuser: user.is_superuser,
        perms: perms.into_iter().collect(),
        groups: groups.into_iter().map(|g| g.id).collect(),
        webinar_capable,
    })
}

pub(super) fn facts(meeting: &Meeting) -> MeetingFacts {
    MeetingFacts {
        owner_id: meeting.fields.owner_id,
        additional_owners: meeting.fields.additional_owners.iter().copied().collect(),
        is_personal: meeting.is_personal,
        is_restricted: meeting.fields.is_restricted,
        groups: meeting.fields.groups.iter().copied().collect(),
    }
}

pub(super) fn settings(state: &AppState) -> policy::Settings {
    policy::Settings {
        restrict_edit_to_staff: state.config.meetings.restrict_edit_to_staff,
    }
}

/// Applies a decision: login page for anonymous visitors, a sentence otherwise.
pub(super) fn require(decision: Decision, ctx: &RequestContext) -> Result<(), AppError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Login => Err(AppError::LoginRequired {
            next: ctx.path.clone(),
        }),
        Decision::Deny(denial) => Err(AppError::Forbidden(Msg::new(denial.message_key()))),
    }
}

pub(super) async fn allowed(
    state: &AppState,
    ctx: &RequestContext,
    meeting: Option<&Meeting>,
    action: Action,
) -> Result<Actor, AppError> {
    let actor = actor(state, ctx).await?;
    let facts = meeting.map(facts);
    require(
        policy::decide(&actor, facts.as_ref(), action, settings(state)),
        ctx,
    )?;
    Ok(actor)
}

/// Loads a meeting from a link (`0042-anything`: the number decides, as in Pod).
pub(super) async fn meeting_from_link(state: &AppState, link: &str) -> Result<Meeting, AppError> {
    let id = m::id_from_link(link).ok_or(AppError::NotFound)?;
    state.db.meeting(id).await?.ok_or(AppError::NotFound)
}

pub(super) fn bbb_api(state: &AppState) -> Result<&dyn crate::bbb::BbbApi, AppError> {
    state
        .bbb
        .as_deref()
        .ok_or_else(|| AppError::Unavailable(Msg::new("meetings.no_bbb")))
}

/// A BBB failure as a sentence (never the URL, the secret or a checksum).
pub(super) fn bbb_failure(error: &start::StartError) -> AppError {
    tracing::warn!(%error, "BBB call failed");
    match error {
        start::StartError::Db(e) => AppError::Internal(e.to_string()),
        start::StartError::Bbb(crate::bbb::Error::Api {
            key: MessageKey::MaxParticipantsReached,
            ..
        }) => AppError::Unavailable(Msg::new("meetings.full")),
        start::StartError::Bbb(e) => {
            AppError::Unavailable(Msg::new("meetings.bbb_failed").arg("reason", e.to_string()))
        }
    }
}

pub(super) fn now(state: &AppState) -> chrono::DateTime<chrono::Utc> {
    state.clock.now()
}

/// The personal room, made on the first visit of "My meetings" (Pod's rule).
async fn personal_room(state: &AppState, ctx: &RequestContext) -> Result<(), AppError> {
    let Some(user) = &ctx.user else {
        return Ok(());
    };
    if state.db.personal_room(user.id).await?.is_some() {
        return Ok(());
    }
    let tz = state.config.site.tz();
    let local = m::utc_to_local(tz, now(state));
    let hour = local
        .date()
        .and_hms_opt(
            local.time().format("%H").to_string().parse().unwrap_or(0),
            0,
            0,
        )
        .unwrap_or(local);
    let name = state
        .templates
        .catalog()
        .get(ctx.lang, "meetings.personal_room", &[]);
    let fields = MeetingFields {
        name,
        owner_id: user.id,
        additional_owners: Vec::new(),
        attendee_password: m::random_password(),
        is_restricted: false,
        groups: Vec::new(),
        start_at: m::local_to_utc(tz, hour),
        expected_duration_minutes: 120,
        repetition: None,
        max_participants: 150,
        welcome_text: state
            .templates
            .catalog()
            .get(ctx.lang, "meetings.welcome", &[]),
        webcam_only_for_moderators: false,
        record: false,
        auto_start_recording: false,
        allow_start_stop_recording: true,
        guest_policy: None,
        lock: m::LockSettings::default(),
        parent_meeting_id: None,
        voice_bridge: Some(m::random_voice_bridge()),
        is_webinar: false,
        enable_chat: false,
        webinar_layout: "presentation-pip".to_owned(),
        webinar_anonymous_chat: false,
        webinar_keep_video: false,
    };
    match state
        .db
        .create_meeting(&fields, true, &m::random_password(), now(state))
        .await
    {
        // Two tabs at once: the other one made it.
        Ok(_) | Err(crate::db::Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    all: Option<String>,
}

/// A meeting as the pages show it.
fn card(
    state: &AppState,
    meeting: &Meeting,
    running: bool,
    actor: &Actor,
    live: Option<&crate::db::StoredLive>,
) -> Value {
    let tz = state.config.site.tz();
    let schedule = m::Schedule {
        start_at: meeting.fields.start_at,
        duration: chrono::Duration::minutes(i64::from(meeting.fields.expected_duration_minutes)),
        repetition: meeting.fields.repetition,
    };
    let next = schedule.current_or_next(tz, now(state));
    let local = |t: chrono::DateTime<chrono::Utc>| {
        m::utc_to_local(tz, t).format("%Y-%m-%d %H:%M").to_string()
    };
    let facts = facts(meeting);
    let can =
        |action| policy::decide(actor, Some(&facts), action, settings(state)) == Decision::Allow;
    let direct = m::direct_access_key(
        state.secret_key.expose(),
        meeting.id,
        &meeting.fields.attendee_password,
    );
    let public = state.config.public_url.trim_end_matches('/');
    let live = live.filter(|_| meeting.fields.is_webinar).map(|l| {
        let in_progress = l.state == crate::db::LiveState::InProgress;
        let mut actions = if in_progress {
            vec!["restart", "stop", "end"]
        } else {
            vec!["start"]
        };
        if in_progress && meeting.fields.enable_chat {
            actions.push(if l.show_chat {
                "hide_chat"
            } else {
                "show_chat"
            });
        }
        context! {
            url => format!("{public}/live/{}", l.slug),
            state => l.state.as_str(),
            actions => actions,
        }
    });
    context! {
        id => meeting.id,
        live => live,
        link => &meeting.meeting_id,
        name => &meeting.fields.name,
        personal => meeting.is_personal,
        webinar => meeting.fields.is_webinar,
        restricted => meeting.fields.is_restricted,
        recurring => meeting.fields.repetition.is_some(),
        active => meeting.is_personal || next.is_some(),
        running => running,
        next => next.map(local),
        start => local(meeting.fields.start_at),
        join_url => format!("{public}/meeting/{}/", meeting.meeting_id),
        direct_url => format!("{public}/meeting/{}/{direct}", meeting.meeting_id),
        can_edit => can(Action::Edit),
        can_delete => can(Action::Delete),
        can_invite => can(Action::Invite),
        can_info => can(Action::Info),
        can_end => can(Action::End),
        can_moderate => can(Action::JoinAsModerator),
        can_recordings => state.config.meetings.recordings && can(Action::ViewRecordings),
    }
}

/// `GET /meeting/`: "My meetings".
pub async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    let actor = allowed(&state, &ctx, None, Action::List).await?;
    personal_room(&state, &ctx).await?;
    let user_id = actor.user_id.unwrap_or_default();
    let meetings = state.db.meetings_of(user_id).await?;
    let lives: std::collections::HashMap<i64, crate::db::StoredLive> = state
        .db
        .all_lives()
        .await?
        .into_iter()
        .map(|l| (l.meeting_id, l))
        .collect();
    // One getMeetings for the whole page.
    let (running, bbb_down) = match &state.bbb {
        Some(api) => match state.meeting_status.running(api.as_ref()).await {
            Ok(ids) => (ids, false),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read which meetings run");
                (Default::default(), true)
            }
        },
        None => (Default::default(), true),
    };
    let show_all = query.all.as_deref() == Some("true");
    let cards: Vec<Value> = meetings
        .iter()
        .map(|meeting| {
            (
                meeting,
                card(
                    &state,
                    meeting,
                    running.contains(&meeting.meeting_id),
                    &actor,
                    lives.get(&meeting.id),
                ),
            )
        })
        .filter(|(_, card)| {
            show_all || card.get_attr("active").map(|v| v.is_true()).unwrap_or(true)
        })
        .map(|(_, card)| card)
        .collect();
    Ok(html(
        &state,
        &ctx,
        "meetings/list.html",
        context! { meetings => cards, show_all => show_all, bbb_down => bbb_down },
    )?
    .into_response())
}

/// `GET /meeting/delete/{link}`: the confirmation page.
pub async fn delete_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::Delete).await?;
    Ok(html(&state, &ctx, "meetings/delete.html", context! { meeting => context! { link => &meeting.meeting_id, name => &meeting.fields.name }, missing_agree => false })?.into_response())
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    agree: Option<String>,
}

/// `POST /meeting/delete/{link}`: needs the "I agree" box, as in Pod.
pub async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::Delete).await?;
    if form.agree.is_none() {
        let body = html(
            &state,
            &ctx,
            "meetings/delete.html",
            context! { meeting => context! { link => &meeting.meeting_id, name => &meeting.fields.name }, missing_agree => true },
        )?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response());
    }
    delete_meeting(&state, &meeting).await?;
    Ok(Redirect::to("/meeting/").into_response())
}

/// `GET /meeting/status/{link}` (public, as in Pod): `{"status": running}`.
pub async fn status(
    State(state): State<AppState>,
    Path(link): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    let api = bbb_api(&state)?;
    let running = api
        .is_meeting_running(&meeting.meeting_id)
        .await
        .map_err(|e| bbb_failure(&e.into()))?;
    state
        .db
        .set_meeting_running(&meeting.meeting_id, running)
        .await?;
    Ok(Json(serde_json::json!({ "status": running })))
}

/// `GET /meeting/get_meeting_info/{link}`: the `bbb.meeting_info` fields of `getMeetingInfo`.
pub async fn info(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, AppError> {
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let Json(answer) = info_json(&state, &ctx, &link).await?;
    if !wants_html {
        return Ok(Json(answer).into_response());
    }
    let meeting = meeting_from_link(&state, &link).await?;
    let can_end = allowed(&state, &ctx, Some(&meeting), Action::End)
        .await
        .is_ok();
    Ok(html(
        &state,
        &ctx,
        "meetings/info.html",
        context! {
            meeting => context! { link => &meeting.meeting_id, name => &meeting.fields.name },
            info => &answer["info"],
            msg => &answer["msg"],
            can_end => can_end,
        },
    )?
    .into_response())
}

/// The `getMeetingInfo` fields the site shows, as Pod's JSON.
async fn info_json(
    state: &AppState,
    ctx: &RequestContext,
    link: &str,
) -> Result<Json<serde_json::Value>, AppError> {
    let meeting = meeting_from_link(state, link).await?;
    allowed(state, ctx, Some(&meeting), Action::Info).await?;
    let api = bbb_api(state)?;
    let info = match api.get_meeting_info(&meeting.meeting_id).await {
        Ok(info) => info,
        Err(e) if matches!(e.key(), Some(MessageKey::NotFound)) => {
            let msg = state
                .templates
                .catalog()
                .get(ctx.lang, "meetings.not_running", &[]);
            return Ok(Json(serde_json::json!({ "info": {}, "msg": msg })));
        }
        Err(e) => return Err(bbb_failure(&e.into())),
    };
    let wanted = &state.config.bbb.meeting_info;
    let want = |name: &str| wanted.iter().any(|w| w == name);
    let mut shown = serde_json::Map::new();
    let mut put = |name: &str, value: serde_json::Value| {
        if want(name) {
            shown.insert(name.to_owned(), value);
        }
    };
    put("meetingName", info.meeting_name.clone().into());
    put("hasUserJoined", info.has_user_joined.into());
    put("recording", info.recording.into());
    put("participantCount", info.participant_count.into());
    put("listenerCount", info.listener_count.into());
    put("moderatorCount", info.moderator_count.into());
    if want("attendees") {
        let attendees: Vec<serde_json::Value> = info
            .attendees
            .items
            .iter()
            .map(|a| {
                let mut person = serde_json::Map::new();
                if want("fullName") {
                    person.insert("fullName".into(), a.full_name.clone().into());
                }
                if want("role") {
                    person.insert("role".into(), a.role.clone().into());
                }
                serde_json::Value::Object(person)
            })
            .collect();
        shown.insert("attendees".into(), attendees.into());
    }
    Ok(Json(serde_json::json!({ "info": shown, "msg": "" })))
}

/// `POST /meeting/end/{link}` (Pod ends on a GET; a link must not end a meeting).
pub async fn end(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::End).await?;
    end_meeting(&state, &meeting).await?;
    Ok(Redirect::to("/meeting/").into_response())
}

/// Starts the meeting if needed and returns an owner's moderator join URL.
pub(super) async fn moderator_url(
    state: &AppState,
    user: &crate::db::User,
    meeting: &Meeting,
) -> Result<crate::redact::Redacted<String>, AppError> {
    let api = bbb_api(state)?;
    let started = start::ensure_created(
        &state.db,
        api,
        &state.config,
        state.secret_key.expose(),
        meeting,
        Some(user.id),
        now(state),
    )
    .await
    .map_err(|e| bbb_failure(&e))?;
    state.meeting_status.invalidate().await;
    // A webinar's live starts when its owners start the meeting (Pod starts it when the owner
    // joins as a moderator). The join goes on whatever happens to the live.
    if started.fields.is_webinar
        && let Err(e) = state.webinars.start(&started, now(state)).await
    {
        tracing::warn!(meeting = started.id, error = %e, "the webinar's live could not start");
    }
    join_url(
        state,
        &started,
        user.shown_name(),
        Some(user),
        crate::bbb::Role::Moderator,
    )
    .await
}

/// A join URL for one person (recorded in the journal).
pub(super) async fn join_url(
    state: &AppState,
    meeting: &Meeting,
    full_name: &str,
    user: Option<&crate::db::User>,
    role: crate::bbb::Role,
) -> Result<crate::redact::Redacted<String>, AppError> {
    let api = bbb_api(state)?;
    start::join(
        &state.db,
        api,
        meeting,
        full_name,
        user.map(|u| (u.id, u.username.as_str())),
        role,
        now(state),
    )
    .await
    .map_err(|e| bbb_failure(&e))
}

/// Ends a meeting on BBB (already ended is fine) and closes its journal session.
pub(super) async fn end_meeting(state: &AppState, meeting: &Meeting) -> Result<(), AppError> {
    match bbb_api(state)?.end(&meeting.meeting_id).await {
        Ok(()) => {}
        Err(e) if matches!(e.key(), Some(MessageKey::NotFound)) => {}
        Err(e) => return Err(bbb_failure(&e.into())),
    }
    state
        .db
        .set_meeting_running(&meeting.meeting_id, false)
        .await?;
    state.db.close_sessions(meeting.id, now(state)).await?;
    state.meeting_status.invalidate().await;
    tracing::info!(meeting_id = %meeting.meeting_id, "meeting ended");
    Ok(())
}

/// Deletes a meeting with its journal and its slides.
pub(super) async fn delete_meeting(state: &AppState, meeting: &Meeting) -> Result<(), AppError> {
    state.db.delete_meeting(meeting.id).await?;
    let folder = state
        .config
        .data_dir
        .join("slides")
        .join(meeting.id.to_string());
    if let Err(e) = tokio::fs::remove_dir_all(&folder).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(folder = %folder.display(), error = %e, "slides of a deleted meeting left on disk");
    }
    tracing::info!(meeting_id = %meeting.meeting_id, "meeting deleted");
    Ok(())
}
