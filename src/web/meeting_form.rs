//! The meeting form pages (`/meeting/add`, `/meeting/edit/{link}`): values, field sets,
//! messages next to fields, and the checks that need the database (usernames, groups).

use super::extract::Form;
use super::meetings::{allowed, meeting_from_link, now, settings};
use super::pages::html;
use super::{AppError, AppState, RequestContext};
use crate::db::{Meeting, MeetingFields};
use crate::meetings::form::{self, Audience, Errors, Input, Kept};
use crate::meetings::policy::{self, Action, Actor, Decision};
use crate::meetings::{self as m};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use std::collections::BTreeMap;

/// The audience of the form for this user and meeting.
pub(super) fn audience(state: &AppState, actor: &Actor, meeting: Option<&Meeting>) -> Audience {
    Audience {
        can_choose_owner: policy::decide(actor, None, Action::ChooseOwner, settings(state))
            == Decision::Allow,
        can_make_webinars: state.config.webinar.enabled && actor.webinar_capable,
        personal_room: meeting.is_some_and(|m| m.is_personal),
    }
}

/// The form's values for a meeting (or the defaults of a new one).
fn form_values(
    state: &AppState,
    lang: super::i18n::Lang,
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
            put("webinar_layout", f.webinar_layout.clone());
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
                ("webinar_anonymous_chat", f.webinar_anonymous_chat),
                ("webinar_keep_video", f.webinar_keep_video),
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
            put(
                "welcome_text",
                state.templates.catalog().get(lang, "meetings.welcome", &[]),
            );
            if state.config.meetings.recordings {
                put("record", "on".to_owned());
            }
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
        layouts => crate::media::layout::BUILT_IN.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
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
    let input = form_values(&state, ctx.lang, None, "", &[], &[]);
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
    let input = form_values(
        &state,
        ctx.lang,
        Some(&meeting),
        &owner,
        &co_owners,
        &groups,
    );
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
pub(super) async fn checked_fields(
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
    // Pod's capacity rule: a webinar whose time would need more captures than the instances
    // can run is refused, and the administrators hear of it.
    if submission.is_webinar && audience.can_make_webinars {
        let end = submission.start_at
            + chrono::Duration::minutes(i64::from(submission.expected_duration_minutes));
        if let Err(overbooked) = state
            .webinars
            .room_for(submission.start_at, end, meeting.map(|m| m.id))
            .await?
        {
            errors.insert(
                "is_webinar",
                form::FieldError {
                    key: "meetings.error.webinar_capacity",
                    args: vec![
                        ("count", overbooked.overlapping.len().to_string()),
                        ("capacity", overbooked.capacity.to_string()),
                    ],
                },
            );
            tell_admins(state, &submission.name, submission.start_at, overbooked);
        }
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let mut fields = MeetingFields {
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
        webinar_layout: submission.webinar_layout,
        webinar_anonymous_chat: submission.webinar_anonymous_chat,
        webinar_keep_video: submission.webinar_keep_video,
    };
    // Someone who may not make webinars keeps what the meeting had (Pod hides the fields, it
    // does not clear them): every webinar option at once.
    if !audience.can_make_webinars {
        let kept = meeting.map(|m| &m.fields);
        fields.is_webinar = kept.is_some_and(|f| f.is_webinar);
        fields.enable_chat = kept.is_some_and(|f| f.enable_chat);
        fields.webinar_layout = kept.map_or_else(
            || crate::media::layout::DEFAULT.to_owned(),
            |f| f.webinar_layout.clone(),
        );
        fields.webinar_anonymous_chat = kept.is_some_and(|f| f.webinar_anonymous_chat);
        fields.webinar_keep_video = kept.is_some_and(|f| f.webinar_keep_video);
    }
    Ok(Ok(fields))
}

/// Mails the administrators (`site.admins`) that a webinar was refused for lack of capacity
/// (Pod's "Too many webinars" mail), in the site's language; in the background.
fn tell_admins(
    state: &AppState,
    name: &str,
    start: chrono::DateTime<chrono::Utc>,
    overbooked: crate::webinar::Overbooked,
) {
    let Some(mailer) = state.mailer.clone() else {
        tracing::warn!(
            webinar = name,
            "a webinar was refused for lack of capacity (no mail configured to tell the administrators)"
        );
        return;
    };
    let catalog = state.templates.catalog();
    let lang = crate::web::i18n::Lang::from_code(&state.config.site.default_language)
        .unwrap_or(crate::web::i18n::Lang::Fr);
    let when = m::utc_to_local(state.config.site.tz(), start)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let others: Vec<String> = overbooked
        .overlapping
        .iter()
        .map(|o| format!("- {}", o.name))
        .collect();
    let (count, capacity) = (
        overbooked.overlapping.len().to_string(),
        overbooked.capacity.to_string(),
    );
    let args = [
        ("site", state.config.site.title.as_str()),
        ("name", name),
        ("when", when.as_str()),
        ("count", count.as_str()),
        ("capacity", capacity.as_str()),
    ];
    let subject = catalog.get(lang, "mail.overbooked.subject", &args);
    let text = format!(
        "{}\n\n{}\n",
        catalog.get(lang, "mail.overbooked.body", &args),
        others.join("\n")
    );
    let html = format!(
        "<p>{}</p><ul>{}</ul>",
        minijinja::HtmlEscape(&catalog.get(lang, "mail.overbooked.body", &args)),
        overbooked
            .overlapping
            .iter()
            .map(|o| format!("<li>{}</li>", minijinja::HtmlEscape(&o.name)))
            .collect::<String>()
    );
    let admins = state.config.site.admins.clone();
    tokio::spawn(async move {
        for admin in admins {
            let mail = crate::mail::Mail {
                to: admin.clone(),
                reply_to: None,
                subject: subject.clone(),
                text: text.clone(),
                html: html.clone(),
                attachments: Vec::new(),
            };
            if let Err(e) = mailer.send(&mail).await {
                tracing::warn!(error = %e, "the administrators could not be told of a refused webinar");
            }
        }
    });
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
