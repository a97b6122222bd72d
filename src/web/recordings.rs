//! A meeting's recordings (Pod's `/meeting/recordings/<id>/`): asked of BBB at each visit,
//! nothing cached; playback links that ask BBB for a fresh URL at each click (ESR one-time
//! tokens then work every time); publish, unpublish and delete for those Pod lets delete;
//! "upload as a video", which queues a library job. Every action first checks that the
//! recording belongs to the meeting of the URL.

use super::extract::Form;
use super::meetings::{allowed, bbb_api, meeting_from_link, now};
use super::pages::html;
use super::{AppError, AppState, Msg, RequestContext};
use crate::bbb::RecordingsQuery;
use crate::bbb::xml::Recording;
use crate::db::Meeting;
use crate::meetings::policy::{self, Action, Decision};
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

/// The meeting's recordings as BBB lists them now.
async fn recordings_of(state: &AppState, meeting: &Meeting) -> Result<Vec<Recording>, AppError> {
    let query = RecordingsQuery {
        meeting_ids: vec![meeting.meeting_id.clone()],
        states: vec!["any".to_owned()],
        ..RecordingsQuery::default()
    };
    let found = bbb_api(state)?
        .get_recordings(&query)
        .await
        .map_err(|e| unavailable(&e))?;
    let mut items: Vec<Recording> = found
        .recordings
        .items
        .into_iter()
        .filter(|r| r.meeting_id == meeting.meeting_id && r.state != "deleted")
        .collect();
    items.sort_by_key(|r| std::cmp::Reverse(r.start_time));
    Ok(items)
}

fn unavailable(error: &crate::bbb::Error) -> AppError {
    tracing::warn!(%error, "getRecordings failed");
    AppError::Unavailable(Msg::new("meetings.bbb_failed").arg("reason", error.to_string()))
}

/// One recording of the meeting, or 404 (gone meanwhile, or not this meeting's).
async fn recording_of(
    state: &AppState,
    meeting: &Meeting,
    record_id: &str,
) -> Result<Recording, AppError> {
    let query = RecordingsQuery {
        record_ids: vec![record_id.to_owned()],
        states: vec!["any".to_owned()],
        ..RecordingsQuery::default()
    };
    bbb_api(state)?
        .get_recordings(&query)
        .await
        .map_err(|e| unavailable(&e))?
        .recordings
        .items
        .into_iter()
        .find(|r| {
            r.record_id == record_id && r.meeting_id == meeting.meeting_id && r.state != "deleted"
        })
        .ok_or(AppError::NotFound)
}

fn recordings_enabled(state: &AppState) -> Result<(), AppError> {
    if state.config.meetings.recordings {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// `GET /meeting/recordings/{link}/`.
pub async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
) -> Result<Response, AppError> {
    recordings_enabled(&state)?;
    let meeting = meeting_from_link(&state, &link).await?;
    let actor = allowed(&state, &ctx, Some(&meeting), Action::ViewRecordings).await?;
    let facts = super::meetings::facts(&meeting);
    let settings = super::meetings::settings(&state);
    let can = |action| policy::decide(&actor, Some(&facts), action, settings) == Decision::Allow;
    let (can_delete, can_upload) = (can(Action::DeleteRecording), can(Action::UploadRecording));
    let recordings = recordings_of(&state, &meeting).await?;
    let uploads = state.db.recording_uploads(meeting.id).await?;
    let tz = state.config.site.tz();
    let rows: Vec<minijinja::Value> = recordings
        .iter()
        .map(|r| {
            let formats: Vec<&str> = r.playback.formats.iter().map(|f| f.kind.as_str()).collect();
            let preview = r
                .playback
                .formats
                .iter()
                .filter_map(|f| f.preview.as_ref())
                .flat_map(|p| p.images.items.iter())
                .map(|i| i.url.trim())
                .find(|u| u.starts_with("https://") || u.starts_with("http://"));
            let upload = uploads.iter().rev().find(|u| u.record_id == r.record_id);
            let start = chrono::DateTime::from_timestamp_millis(r.start_time)
                .map(|t| crate::meetings::utc_to_local(tz, t).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let minutes = ((r.end_time - r.start_time).max(0) + 59_999) / 60_000;
            let size_mb = r.size.map(|s| format!("{:.1}", s as f64 / 1_048_576.0));
            context! {
                id => &r.record_id,
                name => &r.name,
                state => &r.state,
                published => r.state == "published",
                start => start,
                minutes => minutes,
                size_mb => size_mb,
                presentation => formats.contains(&"presentation"),
                video => formats.contains(&"video"),
                preview => preview,
                uploaded_by => upload.map(|u| u.by.clone()),
                uploaded_at => upload.map(|u| crate::meetings::utc_to_local(tz, u.at).format("%Y-%m-%d %H:%M").to_string()),
                uploaded_video => upload.map(|u| u.video_id),
            }
        })
        .collect();
    Ok(html(
        &state,
        &ctx,
        "meetings/recordings.html",
        context! {
            meeting => context! { link => &meeting.meeting_id, name => &meeting.fields.name },
            recordings => rows,
            can_delete => can_delete,
            can_upload => can_upload,
        },
    )?
    .into_response())
}

/// `GET /meeting/recordings/{link}/{record_id}/play/{kind}`: asks BBB for the playback URL now
/// and goes there (a one-time token is fresh at each click).
pub async fn play(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((link, record_id, kind)): Path<(String, String, String)>,
) -> Result<Response, AppError> {
    recordings_enabled(&state)?;
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::ViewRecordings).await?;
    let recording = recording_of(&state, &meeting, &record_id).await?;
    let url = recording
        .playback
        .formats
        .iter()
        .find(|f| f.kind == kind)
        .map(|f| f.url.trim().to_owned())
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .ok_or(AppError::NotFound)?;
    let mut response = Redirect::to(&url).into_response();
    // The token is single use: no cache may keep this answer.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    recording_name: String,
}

/// `POST /meeting/recordings/{link}/{record_id}/{action}`: publish, unpublish, delete, upload.
pub async fn act(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((link, record_id, action)): Path<(String, String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, AppError> {
    recordings_enabled(&state)?;
    let rule = match action.as_str() {
        "publish" | "unpublish" | "delete" => Action::DeleteRecording,
        "upload" => Action::UploadRecording,
        _ => return Err(AppError::NotFound),
    };
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), rule).await?;
    let recording = recording_of(&state, &meeting, &record_id).await?;
    let api = bbb_api(&state)?;
    let ids = [record_id.clone()];
    let back = format!("/meeting/recordings/{}/", meeting.meeting_id);
    match action.as_str() {
        "publish" | "unpublish" => {
            api.publish_recordings(&ids, action == "publish")
                .await
                .map_err(|e| unavailable(&e))?;
        }
        "delete" => {
            api.delete_recordings(&ids)
                .await
                .map_err(|e| unavailable(&e))?;
        }
        _ => {
            if !recording.playback.formats.iter().any(|f| f.kind == "video") {
                return Err(AppError::BadRequest(Msg::new(
                    "recordings.presentation_only",
                )));
            }
            let user = ctx.require_user()?;
            let name = match form.recording_name.trim() {
                "" => recording.name.as_str(),
                n => n,
            };
            let id = state
                .library
                .upload_recording(user, &meeting, &record_id, name, now(&state))
                .await
                .map_err(|e| match e {
                    crate::videos::QueueError::Refused(reason) => {
                        AppError::BadRequest(Msg::new("videos.refused").arg("reason", reason))
                    }
                    crate::videos::QueueError::Db(e) => AppError::from(e),
                })?;
            return Ok(Redirect::to(&format!("/video/{id}/")).into_response());
        }
    }
    Ok(Redirect::to(&back).into_response())
}
