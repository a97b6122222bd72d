//! Administration of meetings (staff and administrators): the list with search and filters,
//! each meeting's session journal with participants and durations, and a CSV export of the
//! journals (Pod's admin has no export).

use super::extract::Query;
use super::meetings::now;
use super::pages::html;
use super::{AppError, AppState, Msg, RequestContext};
use crate::db::{Meeting, MeetingSearch, MeetingSession, Participant};
use crate::meetings::{self as m};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::{Value, context};
use serde::Deserialize;

/// Meetings per page of the admin list.
const PAGE: u32 = 30;

pub(super) fn staff_only(ctx: &RequestContext) -> Result<(), AppError> {
    match &ctx.user {
        None => Err(AppError::LoginRequired {
            next: ctx.path.clone(),
        }),
        Some(user) if user.is_staff || user.is_superuser => Ok(()),
        Some(_) => Err(AppError::Forbidden(Msg::new("admin.staff_only"))),
    }
}

/// A local date (site time zone) as the instant it starts.
fn day_start(state: &AppState, date: Option<&str>) -> Option<DateTime<Utc>> {
    let date: NaiveDate = crate::meetings::form::parse_date(date.filter(|d| !d.is_empty())?)?;
    Some(m::local_to_utc(
        state.config.site.tz(),
        date.and_hms_opt(0, 0, 0)?,
    ))
}

fn local(state: &AppState, t: DateTime<Utc>) -> String {
    m::utc_to_local(state.config.site.tz(), t)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    /// `yes`, `no` or empty.
    #[serde(default)]
    running: String,
    #[serde(default)]
    active: String,
    from: Option<String>,
    to: Option<String>,
    #[serde(default)]
    page: u32,
}

fn is_active(state: &AppState, meeting: &Meeting) -> bool {
    meeting.is_personal
        || m::Schedule {
            start_at: meeting.fields.start_at,
            duration: chrono::Duration::minutes(i64::from(
                meeting.fields.expected_duration_minutes,
            )),
            repetition: meeting.fields.repetition,
        }
        .is_active(state.config.site.tz(), now(state))
}

/// `GET /admin/meetings`.
pub async fn meetings(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    staff_only(&ctx)?;
    let yes_no = |v: &str| match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    // "Active" depends on the recurrence: filtered here, as Pod's admin does in Python.
    let (found, _) = state
        .db
        .search_meetings(&MeetingSearch {
            text: query.q.trim().to_owned(),
            running: yes_no(&query.running),
            from: day_start(&state, query.from.as_deref()),
            to: day_start(&state, query.to.as_deref())
                .and_then(|t| t.checked_add_signed(chrono::Duration::days(1))),
            offset: 0,
            limit: 10_000,
        })
        .await?;
    let active = yes_no(&query.active);
    let matching: Vec<&Meeting> = found
        .iter()
        .filter(|meeting| active.is_none_or(|want| is_active(&state, meeting) == want))
        .collect();
    let total = matching.len();
    let pages = total.div_ceil(PAGE as usize).max(1);
    let page = (query.page as usize).min(pages - 1);
    let mut rows = Vec::new();
    for meeting in matching
        .iter()
        .skip(page * PAGE as usize)
        .take(PAGE as usize)
    {
        let owner = state
            .db
            .user_by_id(meeting.fields.owner_id)
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        let direct = m::direct_access_key(
            state.secret_key.expose(),
            meeting.id,
            &meeting.fields.attendee_password,
        );
        rows.push(context! {
            id => meeting.id,
            link => &meeting.meeting_id,
            name => &meeting.fields.name,
            owner => owner,
            created => local(&state, meeting.created_at),
            start => local(&state, meeting.fields.start_at),
            active => is_active(&state, meeting),
            running => meeting.is_running,
            direct => format!("/meeting/{}/{direct}", meeting.meeting_id),
        });
    }
    Ok(html(
        &state,
        &ctx,
        "admin/meetings.html",
        context! {
            meetings => rows,
            total => total,
            page => page,
            pages => pages,
            q => &query.q,
            running => &query.running,
            active => &query.active,
            from => query.from.as_deref().unwrap_or(""),
            to => query.to.as_deref().unwrap_or(""),
        },
    )?
    .into_response())
}

fn minutes_between(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> Option<i64> {
    to.map(|to| (to - from).num_minutes().max(0))
}

async fn session_view(
    state: &AppState,
    session: &MeetingSession,
    people: &[Participant],
) -> Result<Value, AppError> {
    let creator = match session.creator_id {
        Some(id) => state.db.user_by_id(id).await?.map(|u| u.username),
        None => None,
    };
    let counts = state.db.participant_counts(session.id).await?;
    Ok(context! {
        id => session.id,
        started => local(state, session.created_at),
        ended => session.ended_at.map(|t| local(state, t)),
        minutes => minutes_between(session.created_at, session.ended_at),
        creator => creator,
        peak => session.peak_participants,
        samples => counts.iter().map(|(at, n)| context! { at => local(state, *at), count => n }).collect::<Vec<_>>(),
        people => people.iter().map(|p| context! {
            name => &p.full_name,
            role => &p.role,
            joined => local(state, p.joined_at),
            left => p.left_at.map(|t| local(state, t)),
            minutes => minutes_between(p.joined_at, p.left_at),
        }).collect::<Vec<_>>(),
    })
}

/// `GET /admin/meetings/{id}/journal`.
pub async fn journal(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    staff_only(&ctx)?;
    let meeting = state.db.meeting(id).await?.ok_or(AppError::NotFound)?;
    let mut sessions = Vec::new();
    for session in state.db.sessions_of(meeting.id).await? {
        let people = state.db.participants(session.id).await?;
        sessions.push(session_view(&state, &session, &people).await?);
    }
    Ok(html(
        &state,
        &ctx,
        "admin/journal.html",
        context! {
            meeting => context! { id => meeting.id, link => &meeting.meeting_id, name => &meeting.fields.name },
            sessions => sessions,
        },
    )?
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    meeting: Option<i64>,
    from: Option<String>,
    to: Option<String>,
}

/// A CSV field, quoted when needed; a leading `=`, `+`, `-` or `@` is neutralised so that a
/// participant's name cannot run as a spreadsheet formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// `GET /admin/journal.csv?meeting=&from=&to=`: one line per participant of each session.
pub async fn export(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, AppError> {
    staff_only(&ctx)?;
    let sessions = state
        .db
        .sessions_between(
            query.meeting,
            day_start(&state, query.from.as_deref()),
            day_start(&state, query.to.as_deref())
                .and_then(|t| t.checked_add_signed(chrono::Duration::days(1))),
        )
        .await?;
    let mut csv = String::from(
        "meeting_id,meeting_name,session_id,session_start,session_end,creator,participant,role,joined,left,minutes\r\n",
    );
    let mut names: std::collections::HashMap<i64, (String, String)> = Default::default();
    for session in &sessions {
        if !names.contains_key(&session.meeting_id)
            && let Some(meeting) = state.db.meeting(session.meeting_id).await?
        {
            names.insert(meeting.id, (meeting.meeting_id, meeting.fields.name));
        }
        let (link, name) = names.get(&session.meeting_id).cloned().unwrap_or_default();
        let creator = match session.creator_id {
            Some(id) => state
                .db
                .user_by_id(id)
                .await?
                .map(|u| u.username)
                .unwrap_or_default(),
            None => String::new(),
        };
        for person in state.db.participants(session.id).await? {
            let fields = [
                link.clone(),
                name.clone(),
                session.id.to_string(),
                local(&state, session.created_at),
                session
                    .ended_at
                    .map(|t| local(&state, t))
                    .unwrap_or_default(),
                creator.clone(),
                person.full_name.clone(),
                person.role.clone(),
                local(&state, person.joined_at),
                person.left_at.map(|t| local(&state, t)).unwrap_or_default(),
                minutes_between(person.joined_at, person.left_at)
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ];
            csv.push_str(
                &fields
                    .iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            csv.push_str("\r\n");
        }
    }
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"amphi-journal.csv\""),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("Ann"), "Ann");
        assert_eq!(csv_field("Martin, Ann"), "\"Martin, Ann\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
    }
}
