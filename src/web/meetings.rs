//! Meeting pages under `/meeting/` (Pod's URL map, so links keep working): "My meetings", the
//! form, deletion, joining (by role, password or direct link) with a waiting page, status,
//! meeting information and ending.

use super::extract::{Form, Query};
use super::pages::html;
use super::{AppError, AppState, Msg, RequestContext};
use crate::bbb::{MessageKey, Role};
use crate::db::{Meeting, MeetingFields};
use crate::meetings::form::{self, Audience, Errors, Input, Kept};
use crate::meetings::policy::{self, Action, Actor, Decision, MeetingFacts};
use crate::meetings::{self as m, start};
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Who is asking, with the permissions and groups the rules read.
pub(crate) async fn actor(state: &AppState, ctx: &RequestContext) -> Result<Actor, AppError> {
    let Some(user) = &ctx.user else {
        return Ok(Actor::anonymous());
    };
    let perms = state.db.user_permissions(user.id).await?;
    let groups = state.db.user_access_groups(user.id).await?;
    Ok(Actor {
        user_id: Some(user.id),
        is_staff: user.is_staff,
        is_superuser: user.is_superuser,
        perms: perms.into_iter().collect(),
        groups: groups.into_iter().map(|g| g.id).collect(),
    })
}

fn facts(meeting: &Meeting) -> MeetingFacts {
    MeetingFacts {
        owner_id: meeting.fields.owner_id,
        additional_owners: meeting.fields.additional_owners.iter().copied().collect(),
        is_personal: meeting.is_personal,
        is_restricted: meeting.fields.is_restricted,
        groups: meeting.fields.groups.iter().copied().collect(),
    }
}

fn settings(state: &AppState) -> policy::Settings {
    policy::Settings {
        restrict_edit_to_staff: state.config.meetings.restrict_edit_to_staff,
    }
}

/// Applies a decision: login page for anonymous visitors, a sentence otherwise.
fn require(decision: Decision, ctx: &RequestContext) -> Result<(), AppError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Login => Err(AppError::LoginRequired {
            next: ctx.path.clone(),
        }),
        Decision::Deny(denial) => Err(AppError::Forbidden(Msg::new(denial.message_key()))),
    }
}

async fn allowed(
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
async fn meeting_from_link(state: &AppState, link: &str) -> Result<Meeting, AppError> {
    let id = m::id_from_link(link).ok_or(AppError::NotFound)?;
    state.db.meeting(id).await?.ok_or(AppError::NotFound)
}

fn bbb_api(state: &AppState) -> Result<&dyn crate::bbb::BbbApi, AppError> {
    state
        .bbb
        .as_deref()
        .ok_or_else(|| AppError::Unavailable(Msg::new("meetings.no_bbb")))
}

/// A BBB failure as a sentence (never the URL, the secret or a checksum).
fn bbb_failure(error: &start::StartError) -> AppError {
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

fn now(state: &AppState) -> chrono::DateTime<chrono::Utc> {
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
fn card(state: &AppState, meeting: &Meeting, running: bool, actor: &Actor) -> Value {
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
    context! {
        id => meeting.id,
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

/// The audience of the form for this user and meeting.
fn audience(state: &AppState, actor: &Actor, meeting: Option<&Meeting>) -> Audience {
    Audience {
        can_choose_owner: policy::decide(actor, None, Action::ChooseOwner, settings(state))
            == Decision::Allow,
        can_make_webinars: state.config.webinar.enabled && actor.is_superuser,
        personal_room: meeting.is_some_and(|m| m.is_personal),
    }
}

/// The form's values for a meeting (or the defaults of a new one).
fn form_values(
    state: &AppState,
    meeting: Option<&Meeting>,
    owner_name: &str,
    co_owners: &[String],
    groups: &[String],
) -> Input {
    let tz = state.config.site.tz();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| pairs.push((k.to_owned(), v));
    match meeting {
        Some(meeting) => {
            let f = &meeting.fields;
            let local = m::utc_to_local(tz, f.start_at);
            put("name", f.name.clone());
            put("owner", owner_name.to_owned());
            put("additional_owners", co_owners.join(", "));
            put("attendee_password", f.attendee_password.clone());
            put("start", local.date().to_string());
            put("start_time", local.format("%H:%M").to_string());
            put(
                "expected_duration",
                (f.expected_duration_minutes / 60).max(1).to_string(),
            );
            if let Some(r) = &f.repetition {
                put("recurrence", r.rule.frequency.as_str().to_owned());
                put("frequency", r.rule.interval.to_string());
                put("recurring_until", r.until.to_string());
                put("nb_occurrences", r.count.to_string());
                put("monthly_type", r.rule.monthly.as_str().to_owned());
                for day in r.rule.weekdays.days() {
                    put("weekdays", day.num_days_from_monday().to_string());
                }
            }
            put("max_participants", f.max_participants.to_string());
            put("welcome_text", f.welcome_text.clone());
            put(
                "guest_policy",
                f.guest_policy
                    .map(|g| g.as_str().to_owned())
                    .unwrap_or_default(),
            );
            put(
                "parent_meeting_id",
                f.parent_meeting_id.clone().unwrap_or_default(),
            );
            put(
                "voice_bridge",
                f.voice_bridge.map(|v| v.to_string()).unwrap_or_default(),
            );
            for group in groups {
                put("restrict_access_to_groups", group.clone());
            }
            let flags = [
                ("is_restricted", f.is_restricted),
                ("record", f.record),
                ("auto_start_recording", f.auto_start_recording),
                ("allow_start_stop_recording", f.allow_start_stop_recording),
                ("webcam_only_for_moderators", f.webcam_only_for_moderators),
                ("is_webinar", f.is_webinar),
                ("enable_chat", f.enable_chat),
            ];
            for (name, on) in flags
                .into_iter()
                .chain(f.lock.entries().map(|(_, field, on)| (field, on)))
            {
                if on {
                    put(name, "on".to_owned());
                }
            }
        }
        None => {
            // Pod's initial values: the next half hour, two hours, a random password.
            let local = m::utc_to_local(tz, now(state) + chrono::Duration::minutes(30));
            let minute = if local.format("%M").to_string().parse::<u32>().unwrap_or(0) < 30 {
                "00"
            } else {
                "30"
            };
            put("start", local.date().to_string());
            put("start_time", format!("{}:{minute}", local.format("%H")));
            put("expected_duration", "2".to_owned());
            put("attendee_password", m::random_password());
            put("max_participants", "150".to_owned());
            put("frequency", "1".to_owned());
            put("welcome_text", String::new());
            put("allow_start_stop_recording", "on".to_owned());
            put("voice_bridge", m::random_voice_bridge().to_string());
        }
    }
    Input(pairs)
}

/// Renders the form with values and messages.
async fn render_form(
    state: &AppState,
    ctx: &RequestContext,
    meeting: Option<&Meeting>,
    audience: Audience,
    input: &Input,
    errors: &Errors,
    status: StatusCode,
) -> Result<Response, AppError> {
    let catalog = state.templates.catalog();
    let messages: BTreeMap<&str, String> = errors
        .iter()
        .map(|(field, e)| {
            let args: Vec<(&str, &str)> = e.args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            (*field, catalog.get(ctx.lang, e.key, &args))
        })
        .collect();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &input.0 {
        values.entry(k.clone()).or_default().push(v.clone());
    }
    let groups = state.db.access_groups().await?;
    let sets: Vec<Value> = form::fieldsets(&state.config.meetings, audience)
        .into_iter()
        .map(|set| context! { legend => set.legend, fields => set.fields, collapsed => set.collapsed })
        .collect();
    let page = context! {
        meeting => meeting.map(|m| context! { id => m.id, link => &m.meeting_id, name => &m.fields.name, personal => m.is_personal }),
        fieldsets => sets,
        values => values,
        errors => messages,
        has_errors => !errors.is_empty(),
        start_times => form::start_times(),
        max_duration => state.config.meetings.max_duration_hours,
        groups => groups.iter().map(|g| context! { code => &g.code_name, name => if g.display_name.is_empty() { &g.code_name } else { &g.display_name } }).collect::<Vec<_>>(),
        guest_policies => m::GuestPolicy::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
    };
    let body = html(state, ctx, "meetings/form.html", page)?;
    Ok((status, body).into_response())
}

/// `GET /meeting/add`.
pub async fn add_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Response, AppError> {
    let actor = allowed(&state, &ctx, None, Action::Add).await?;
    let input = form_values(&state, None, "", &[], &[]);
    render_form(
        &state,
        &ctx,
        None,
        audience(&state, &actor, None),
        &input,
        &Errors::new(),
        StatusCode::OK,
    )
    .await
}

/// `GET /meeting/edit/{link}`.
pub async fn edit_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    let actor = allowed(&state, &ctx, Some(&meeting), Action::Edit).await?;
    let owner = state
        .db
        .user_by_id(meeting.fields.owner_id)
        .await?
        .map(|u| u.username)
        .unwrap_or_default();
    let mut co_owners = Vec::new();
    for id in &meeting.fields.additional_owners {
        if let Some(user) = state.db.user_by_id(*id).await? {
            co_owners.push(user.username);
        }
    }
    let all_groups = state.db.access_groups().await?;
    let groups: Vec<String> = all_groups
        .iter()
        .filter(|g| meeting.fields.groups.contains(&g.id))
        .map(|g| g.code_name.clone())
        .collect();
    let input = form_values(&state, Some(&meeting), &owner, &co_owners, &groups);
    render_form(
        &state,
        &ctx,
        Some(&meeting),
        audience(&state, &actor, Some(&meeting)),
        &input,
        &Errors::new(),
        StatusCode::OK,
    )
    .await
}

/// Checks a submitted form and resolves its usernames and groups.
async fn checked_fields(
    state: &AppState,
    ctx: &RequestContext,
    input: &Input,
    audience: Audience,
    meeting: Option<&Meeting>,
) -> Result<Result<MeetingFields, Errors>, AppError> {
    let kept = meeting.map(|m| Kept {
        name: m.fields.name.clone(),
        start_at: m.fields.start_at,
        expected_duration_minutes: m.fields.expected_duration_minutes,
    });
    let submission = match form::check(
        input,
        &state.config.meetings,
        audience,
        state.config.site.tz(),
        kept.as_ref(),
    ) {
        Ok(s) => s,
        Err(errors) => return Ok(Err(errors)),
    };
    let mut errors = Errors::new();
    let me = ctx.user.as_ref().map(|u| u.id).unwrap_or_default();
    let owner_id = match &submission.owner {
        Some(username) => match state.db.user_by_username(username).await? {
            Some(user) => user.id,
            None => {
                errors.insert(
                    "owner",
                    form::FieldError {
                        key: "meetings.error.unknown_user",
                        args: vec![("name", username.clone())],
                    },
                );
                me
            }
        },
        None => meeting.map_or(me, |m| m.fields.owner_id),
    };
    let mut additional_owners = Vec::new();
    for username in &submission.additional_owners {
        match state.db.user_by_username(username).await? {
            Some(user) if user.id == owner_id => {
                errors.insert(
                    "additional_owners",
                    form::FieldError {
                        key: "meetings.error.owner_twice",
                        args: vec![],
                    },
                );
            }
            Some(user) => {
                if !additional_owners.contains(&user.id) {
                    additional_owners.push(user.id);
                }
            }
            None => {
                errors.insert(
                    "additional_owners",
                    form::FieldError {
                        key: "meetings.error.unknown_user",
                        args: vec![("name", username.clone())],
                    },
                );
            }
        }
    }
    let known = state.db.access_groups().await?;
    let mut groups = Vec::new();
    for code in &submission.groups {
        match known.iter().find(|g| &g.code_name == code) {
            Some(g) => groups.push(g.id),
            None => {
                errors.insert(
                    "restrict_access_to_groups",
                    form::FieldError {
                        key: "meetings.error.choice",
                        args: vec![],
                    },
                );
            }
        }
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    Ok(Ok(MeetingFields {
        name: submission.name,
        owner_id,
        additional_owners,
        attendee_password: submission.attendee_password,
        is_restricted: submission.is_restricted,
        groups,
        start_at: submission.start_at,
        expected_duration_minutes: submission.expected_duration_minutes,
        repetition: submission.repetition,
        max_participants: submission.max_participants,
        welcome_text: submission.welcome_text,
        webcam_only_for_moderators: submission.webcam_only_for_moderators,
        record: submission.record,
        auto_start_recording: submission.auto_start_recording,
        allow_start_stop_recording: submission.allow_start_stop_recording,
        guest_policy: submission.guest_policy,
        lock: submission.lock,
        parent_meeting_id: submission.parent_meeting_id,
        voice_bridge: Some(
            submission
                .voice_bridge
                .unwrap_or_else(m::random_voice_bridge),
        ),
        is_webinar: submission.is_webinar,
        enable_chat: submission.enable_chat,
    }))
}

/// `POST /meeting/add`.
pub async fn add(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let actor = allowed(&state, &ctx, None, Action::Add).await?;
    let input = Input(pairs);
    let audience = audience(&state, &actor, None);
    match checked_fields(&state, &ctx, &input, audience, None).await? {
        Ok(fields) => {
            let meeting = state
                .db
                .create_meeting(&fields, false, "", now(&state))
                .await?;
            tracing::info!(meeting_id = %meeting.meeting_id, "meeting created");
            Ok(Redirect::to("/meeting/").into_response())
        }
        Err(errors) => {
            render_form(
                &state,
                &ctx,
                None,
                audience,
                &input,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// `POST /meeting/edit/{link}`.
pub async fn edit(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    let actor = allowed(&state, &ctx, Some(&meeting), Action::Edit).await?;
    let input = Input(pairs);
    let audience = audience(&state, &actor, Some(&meeting));
    match checked_fields(&state, &ctx, &input, audience, Some(&meeting)).await? {
        Ok(fields) => {
            state
                .db
                .update_meeting(meeting.id, &fields, now(&state))
                .await?;
            Ok(Redirect::to("/meeting/").into_response())
        }
        Err(errors) => {
            render_form(
                &state,
                &ctx,
                Some(&meeting),
                audience,
                &input,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
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
    state.db.delete_meeting(meeting.id).await?;
    tracing::info!(meeting_id = %meeting.meeting_id, "meeting deleted");
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
) -> Result<Json<serde_json::Value>, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::Info).await?;
    let api = bbb_api(&state)?;
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
    let api = bbb_api(&state)?;
    match api.end(&meeting.meeting_id).await {
        Ok(()) => {}
        Err(e) if matches!(e.key(), Some(MessageKey::NotFound)) => {}
        Err(e) => return Err(bbb_failure(&e.into())),
    }
    state
        .db
        .set_meeting_running(&meeting.meeting_id, false)
        .await?;
    state.db.close_sessions(meeting.id, now(&state)).await?;
    state.meeting_status.invalidate().await;
    tracing::info!(meeting_id = %meeting.meeting_id, "meeting ended by its owner");
    Ok(Redirect::to("/meeting/").into_response())
}

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
        let started = start::ensure_created(
            &state.db,
            api,
            &state.config,
            state.secret_key.expose(),
            &meeting,
            Some(user.id),
            now(&state),
        )
        .await
        .map_err(|e| bbb_failure(&e))?;
        state.meeting_status.invalidate().await;
        let url = start::join(
            &state.db,
            api,
            &started,
            user.shown_name(),
            Some((user.id, &user.username)),
            Role::Moderator,
            now(&state),
        )
        .await
        .map_err(|e| bbb_failure(&e))?;
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
        let url = start::join(
            &state.db,
            api,
            &meeting,
            user.shown_name(),
            Some((user.id, &user.username)),
            Role::Viewer,
            now(&state),
        )
        .await
        .map_err(|e| bbb_failure(&e))?;
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
    let api = bbb_api(&state)?;
    if !api
        .is_meeting_running(&meeting.meeting_id)
        .await
        .map_err(|e| bbb_failure(&e.into()))?
    {
        return join_page(&state, &ctx, &meeting, direct, false, None, StatusCode::OK);
    }
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
        if !crate::bbb::checksum::checksums_match(&form.password, &meeting.fields.attendee_password)
        {
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
    let user = ctx.user.as_ref().map(|u| (u.id, u.username.as_str()));
    let url = start::join(
        &state.db,
        api,
        &meeting,
        &name,
        user,
        Role::Viewer,
        now(&state),
    )
    .await
    .map_err(|e| bbb_failure(&e))?;
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
