//! The video library on the web: "My videos" with the import form, the video page (player,
//! or the job's step and percentage updated without reload, or why it failed), edit and
//! delete for the owner (and administrators), the files of ready videos, and the admin list.
//! Drafts, and videos not ready, are seen by their owner and administrators only.

use super::extract::Form;
use super::meetings::now;
use super::pages::html;
use super::{AppError, AppState, Msg, RequestContext};
use crate::db::{User, Video, VideoListing};
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Deserialize;

/// Whether `user` may edit, delete and watch `video` whatever its state.
fn manages(user: Option<&User>, video: &Video) -> bool {
    user.is_some_and(|u| u.id == video.owner_id || u.is_superuser)
}

/// Whether the visitor may see the video's page.
fn sees(user: Option<&User>, video: &Video) -> bool {
    (video.state == "ready" && !video.draft) || manages(user, video)
}

async fn load(state: &AppState, id: i64) -> Result<VideoListing, AppError> {
    state.db.video(id).await?.ok_or(AppError::NotFound)
}

fn minutes_seconds(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// A video as templates see it.
fn item(state: &AppState, listing: &VideoListing) -> Value {
    let video = &listing.video;
    let tz = state.config.site.tz();
    let job = listing.job.as_ref();
    context! {
        id => video.id,
        title => &video.title,
        description => &video.description,
        paragraphs => video.description.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>(),
        owner => &listing.owner_name,
        origin => &video.origin,
        source_url => &video.source_url,
        state => &video.state,
        draft => video.draft,
        duration => minutes_seconds(video.duration_ms),
        created => crate::meetings::utc_to_local(tz, video.created_at).format("%Y-%m-%d %H:%M").to_string(),
        thumbnail => (!video.thumbnail.is_empty()).then(|| format!("/video/{}/files/{}", video.id, video.thumbnail)),
        step => job.map(|j| j.step.clone()),
        progress => job.map(|j| j.progress),
        error => job.map(|j| j.error.clone()).filter(|e| !e.is_empty()),
    }
}

/// `GET /videos/`: the signed-in user's videos and the import form.
pub async fn mine(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Response, AppError> {
    let user = ctx.require_user()?;
    render_mine(&state, &ctx, user, None, "", "").await
}

async fn render_mine(
    state: &AppState,
    ctx: &RequestContext,
    user: &User,
    error: Option<String>,
    url: &str,
    title: &str,
) -> Result<Response, AppError> {
    let videos: Vec<Value> = state
        .db
        .videos_of(user.id)
        .await?
        .iter()
        .map(|l| item(state, l))
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = html(
        state,
        ctx,
        "videos/list.html",
        context! { videos => videos, error => error, url => url, title => title },
    )?;
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    title: String,
}

/// `POST /videos/import`: queues the import of a URL.
pub async fn import(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Form(form): Form<ImportForm>,
) -> Result<Response, AppError> {
    let user = ctx.require_user()?;
    if form.url.len() > 2000 || form.title.chars().count() > 250 {
        return Err(AppError::BadRequest(Msg::new("videos.too_long")));
    }
    match state
        .library
        .import_url(user, &form.url, &form.title, now(&state))
        .await
    {
        Ok(id) => Ok(Redirect::to(&format!("/video/{id}/")).into_response()),
        Err(crate::videos::QueueError::Refused(reason)) => {
            let catalog = state.templates.catalog();
            let sentence = catalog.get(ctx.lang, "videos.refused", &[("reason", &reason)]);
            render_mine(&state, &ctx, user, Some(sentence), &form.url, &form.title).await
        }
        Err(crate::videos::QueueError::Db(e)) => Err(e.into()),
    }
}

/// `GET /video/{id}/`.
pub async fn page(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let listing = load(&state, id).await?;
    if !sees(ctx.user.as_ref(), &listing.video) {
        return match ctx.user {
            None => Err(AppError::LoginRequired {
                next: ctx.path.clone(),
            }),
            Some(_) => Err(AppError::NotFound),
        };
    }
    Ok(html(
        &state,
        &ctx,
        "videos/page.html",
        context! {
            video => item(&state, &listing),
            manages => manages(ctx.user.as_ref(), &listing.video),
            player_available => super::live::player_available(),
        },
    )?
    .into_response())
}

/// `GET /video/{id}/status`: the job's state for the page's progress bar.
pub async fn status(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let listing = load(&state, id).await?;
    if !sees(ctx.user.as_ref(), &listing.video) {
        return Err(AppError::NotFound);
    }
    let job = listing.job.as_ref();
    let mut response = Json(serde_json::json!({
        "state": listing.video.state,
        "step": job.map(|j| j.step.as_str()),
        "progress": job.map(|j| j.progress),
        "error": job.map(|j| j.error.as_str()).filter(|e| !e.is_empty()),
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /video/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let listing = owned(&state, &ctx, id).await?;
    Ok(html(
        &state,
        &ctx,
        "videos/edit.html",
        context! { video => item(&state, &listing), error => None::<String> },
    )?
    .into_response())
}

async fn owned(state: &AppState, ctx: &RequestContext, id: i64) -> Result<VideoListing, AppError> {
    let user = ctx.require_user()?;
    let listing = load(state, id).await?;
    if !manages(Some(user), &listing.video) {
        return Err(AppError::Forbidden(Msg::new("videos.not_yours")));
    }
    Ok(listing)
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    draft: Option<String>,
}

/// `POST /video/{id}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
    Form(form): Form<EditForm>,
) -> Result<Response, AppError> {
    let listing = owned(&state, &ctx, id).await?;
    let title = form.title.trim();
    if title.is_empty() || title.chars().count() > 250 || form.description.chars().count() > 10_000
    {
        let catalog = state.templates.catalog();
        let error = catalog.get(ctx.lang, "videos.edit.invalid", &[]);
        let page = html(
            &state,
            &ctx,
            "videos/edit.html",
            context! { video => item(&state, &listing), error => error },
        )?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    state
        .db
        .edit_video(
            id,
            title,
            form.description.trim(),
            form.draft.is_some(),
            now(&state),
        )
        .await?;
    Ok(Redirect::to(&format!("/video/{id}/")).into_response())
}

/// `POST /video/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let listing = owned(&state, &ctx, id).await?;
    state.library.delete(&listing.video).await?;
    Ok(Redirect::to("/videos/").into_response())
}

/// `GET /video/{id}/files/{*file}`: the HLS VOD and the thumbnail of a video one may see.
pub async fn file(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((id, file)): Path<(i64, String)>,
) -> Result<Response, AppError> {
    let listing = load(&state, id).await?;
    let video = &listing.video;
    if video.state != "ready" || !sees(ctx.user.as_ref(), video) {
        return Err(AppError::NotFound);
    }
    // Two levels at most (`720p/seg-3.m4s`), names of letters, digits, dots and dashes.
    let parts: Vec<&str> = file.split('/').collect();
    let safe = parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        });
    if !safe {
        return Err(AppError::NotFound);
    }
    let path = state
        .library
        .folder(video)
        .ok_or(AppError::NotFound)?
        .join(&file);
    let content_type = match file.rsplit_once('.').map(|(_, e)| e) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("jpg") => "image/jpeg",
        _ => return Err(AppError::NotFound),
    };
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| AppError::NotFound)?;
    let cache = if video.draft {
        "private, max-age=60"
    } else {
        "public, max-age=3600"
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// `GET /admin/videos`: every video, for staff and administrators.
pub async fn admin_list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Response, AppError> {
    super::admin::staff_only(&ctx)?;
    let videos: Vec<Value> = state
        .db
        .all_videos()
        .await?
        .iter()
        .map(|l| item(&state, l))
        .collect();
    Ok(html(
        &state,
        &ctx,
        "admin/videos.html",
        context! { videos => videos },
    )?
    .into_response())
}
