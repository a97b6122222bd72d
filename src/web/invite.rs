//! Invitations to a meeting (`/meeting/invite/{link}`): one mail per address, in the inviting
//! user's language, with the meeting as an iCalendar file.

use super::extract::Form;
use super::meetings::{allowed, meeting_from_link, now};
use super::pages::html;
use super::{AppError, AppState, Msg, RequestContext};
use crate::db::Meeting;
use crate::meetings::policy::Action;
use crate::meetings::{self as m};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    emails: String,
    owner_copy: Option<String>,
}

/// What a submission did: how many mails left, which addresses failed.
#[derive(Debug, Default)]
struct Outcome {
    sent: Option<usize>,
    failed: Vec<String>,
}

fn invite_page(
    state: &AppState,
    ctx: &RequestContext,
    meeting: &Meeting,
    form: &InviteForm,
    error: Option<Msg>,
    outcome: &Outcome,
    status: StatusCode,
) -> Result<Response, AppError> {
    let body = html(
        state,
        ctx,
        "meetings/invite.html",
        context! {
            meeting => context! { link => &meeting.meeting_id, name => &meeting.fields.name },
            mail_configured => state.mailer.is_some(),
            emails => &form.emails,
            owner_copy => form.owner_copy.is_some(),
            error => error.map(|m| m.sentence(state.templates.catalog(), ctx.lang)),
            sent => outcome.sent,
            failed => &outcome.failed,
        },
    )?;
    Ok((status, body).into_response())
}

/// `GET /meeting/invite/{link}`.
pub async fn invite_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::Invite).await?;
    invite_page(
        &state,
        &ctx,
        &meeting,
        &InviteForm::default(),
        None,
        &Outcome::default(),
        StatusCode::OK,
    )
}

/// Why invitations were not sent.
pub(super) enum Refusal {
    /// No SMTP server configured.
    NoMail,
    /// The addresses are wrong: the sentence says how.
    Input(Msg),
}

/// Sends the invitations of a meeting to the addresses typed (and the owners when asked):
/// one mail each. Returns how many left and which addresses failed.
pub(super) async fn send_invitations(
    state: &AppState,
    ctx: &RequestContext,
    meeting: &Meeting,
    emails: &str,
    owner_copy: bool,
) -> Result<Result<(usize, Vec<String>), Refusal>, AppError> {
    use crate::meetings::invite::{self as inv, MAX_RECIPIENTS};
    let Some(mailer) = &state.mailer else {
        return Ok(Err(Refusal::NoMail));
    };
    let mut recipients = match inv::parse_emails(emails) {
        Ok(list) => list,
        Err(bad) => {
            let msg = Msg::new("invite.bad_addresses").arg("addresses", bad.join(", "));
            return Ok(Err(Refusal::Input(msg)));
        }
    };
    let owner = state
        .db
        .user_by_id(meeting.fields.owner_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if owner_copy {
        let mut owners = vec![owner.email.clone()];
        for id in &meeting.fields.additional_owners {
            if let Some(user) = state.db.user_by_id(*id).await? {
                owners.push(user.email);
            }
        }
        for address in owners.into_iter().filter(|a| crate::mail::valid_address(a)) {
            if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
                recipients.push(address);
            }
        }
    }
    if recipients.is_empty() {
        return Ok(Err(Refusal::Input(Msg::new("invite.none"))));
    }
    if recipients.len() > MAX_RECIPIENTS {
        let msg = Msg::new("invite.too_many").arg("max", MAX_RECIPIENTS.to_string());
        return Ok(Err(Refusal::Input(msg)));
    }
    let inviter = ctx
        .user
        .as_ref()
        .map_or(owner.shown_name(), |u| u.shown_name())
        .to_owned();
    let mail = invitation(state, ctx, meeting, &owner, &inviter)?;
    let mut sent = 0;
    let mut failed = Vec::new();
    for address in &recipients {
        let mail = crate::mail::Mail {
            to: address.clone(),
            ..mail.clone()
        };
        match mailer.send(&mail).await {
            Ok(()) => sent += 1,
            Err(e) => {
                tracing::warn!(error = %e, "invitation not sent");
                failed.push(address.clone());
            }
        }
    }
    tracing::info!(meeting_id = %meeting.meeting_id, sent, failed = failed.len(), "invitations");
    Ok(Ok((sent, failed)))
}

/// `POST /meeting/invite/{link}`: one mail per address, with the calendar file.
pub async fn invite(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
    Form(form): Form<InviteForm>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::Invite).await?;
    let outcome = send_invitations(
        &state,
        &ctx,
        &meeting,
        &form.emails,
        form.owner_copy.is_some(),
    )
    .await?;
    let (error, outcome, status) = match outcome {
        Err(Refusal::NoMail) => (None, Outcome::default(), StatusCode::SERVICE_UNAVAILABLE),
        Err(Refusal::Input(msg)) => (
            Some(msg),
            Outcome::default(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Ok((sent, failed)) => {
            let status = if failed.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            };
            (
                None,
                Outcome {
                    sent: Some(sent),
                    failed,
                },
                status,
            )
        }
    };
    let shown = if status == StatusCode::OK {
        InviteForm::default()
    } else {
        form
    };
    invite_page(&state, &ctx, &meeting, &shown, error, &outcome, status)
}

/// The invitation mail of a meeting (without recipient), in the inviting user's language.
fn invitation(
    state: &AppState,
    ctx: &RequestContext,
    meeting: &Meeting,
    owner: &crate::db::User,
    inviter: &str,
) -> Result<crate::mail::Mail, AppError> {
    use crate::meetings::invite as inv;
    let tz = state.config.site.tz();
    let public = state.config.public_url.trim_end_matches('/');
    let url = format!("{public}/meeting/{}/", meeting.meeting_id);
    let host = url::Url::parse(public)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "amphi".to_owned());
    let f = &meeting.fields;
    let shown = |t: chrono::DateTime<chrono::Utc>| {
        m::utc_to_local(tz, t).format("%Y-%m-%d %H:%M").to_string()
    };
    let end = f.start_at + chrono::Duration::minutes(i64::from(f.expected_duration_minutes));
    let page = context! {
        lang => ctx.lang.code(),
        site_title => &state.config.site.title,
        owner => inviter,
        name => &f.name,
        url => &url,
        password => &f.attendee_password,
        personal => meeting.is_personal,
        recurring => f.repetition.is_some(),
        start => shown(f.start_at),
        end => shown(end),
        until => f.repetition.map(|r| r.until.to_string()),
        count => f.repetition.map(|r| r.count),
        rule => f.repetition.map(|r| state.templates.catalog().get(
            ctx.lang,
            &format!(
                "invite.every.{}{}",
                r.rule.frequency.as_str(),
                if r.rule.interval == 1 { "_1" } else { "" }
            ),
            &[("n", &r.rule.interval.to_string())],
        )),
    };
    let text = state
        .templates
        .render("mail/invite.txt", page.clone())
        .map_err(AppError::Internal)?;
    let html_body = state
        .templates
        .render("mail/invite.html", page)
        .map_err(AppError::Internal)?;
    let subject = state.templates.catalog().get(
        ctx.lang,
        "invite.subject",
        &[("owner", inviter), ("name", &f.name)],
    );
    let mut attachments = Vec::new();
    if !meeting.is_personal {
        let description = format!(
            "{url}\n{}",
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .take(4)
                .collect::<Vec<_>>()
                .join("\n")
        );
        let ics = inv::ics(&inv::Event {
            meeting_id: &meeting.meeting_id,
            host: &host,
            name: &f.name,
            description: &description,
            url: &url,
            organizer_name: owner.shown_name(),
            organizer_email: &owner.email,
            start_at: f.start_at,
            duration_minutes: f.expected_duration_minutes,
            repetition: f.repetition.as_ref(),
            tz,
            now: now(state),
        });
        attachments.push((
            format!("invite-{}.ics", meeting.id),
            "text/calendar; charset=utf-8; method=PUBLISH".to_owned(),
            ics.into_bytes(),
        ));
    }
    Ok(crate::mail::Mail {
        to: String::new(),
        reply_to: Some(owner.email.clone()).filter(|e| crate::mail::valid_address(e)),
        subject,
        text,
        html: html_body,
        attachments,
    })
}
