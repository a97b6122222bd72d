//! A meeting's slides: the owners upload a file (30 MB at most, a format BBB converts), BBB
//! receives it inline when small or downloads it from an unguessable URL when large.

use super::extract::Form;
use super::meetings::{allowed, meeting_from_link};
use super::pages::html;
use super::{AppError, AppState, Msg, RequestContext};
use crate::db::Meeting;
use crate::meetings::policy::Action;
use crate::meetings::start::{SLIDES_EXTENSIONS, SLIDES_MAX_BYTES, slides_key, slides_path};
use axum::Extension;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;

fn page(
    state: &AppState,
    ctx: &RequestContext,
    meeting: &Meeting,
    error: Option<Msg>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let body = html(
        state,
        ctx,
        "meetings/slides.html",
        context! {
            meeting => context! { link => &meeting.meeting_id, name => &meeting.fields.name, slides => &meeting.slides },
            error => error.map(|m| m.sentence(state.templates.catalog(), ctx.lang)),
            max_mb => SLIDES_MAX_BYTES / (1024 * 1024),
            extensions => SLIDES_EXTENSIONS.join(", "),
        },
    )?;
    Ok((status, body).into_response())
}

/// `GET /meeting/slides/{link}`.
pub async fn form(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::Edit).await?;
    page(&state, &ctx, &meeting, None, StatusCode::OK)
}

/// A file name safe to keep and to put in a URL: letters, digits, `.`, `-`, `_`.
fn safe_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next()?;
    let extension = base.rsplit_once('.')?.1.to_ascii_lowercase();
    if !SLIDES_EXTENSIONS.contains(&extension.as_str()) {
        return None;
    }
    let stem: String = crate::meetings::slugify(base.rsplit_once('.')?.0)
        .chars()
        .take(80)
        .collect();
    let stem = if stem.is_empty() {
        "slides".to_owned()
    } else {
        stem
    };
    Some(format!("{stem}.{extension}"))
}

/// `POST /meeting/slides/{link}` (multipart: `csrf_token` first, then `slides`).
pub async fn upload(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::Edit).await?;
    let refuse = |key: &'static str| {
        page(
            &state,
            &ctx,
            &meeting,
            Some(
                Msg::new(key)
                    .arg("max", (SLIDES_MAX_BYTES / (1024 * 1024)).to_string())
                    .arg("extensions", SLIDES_EXTENSIONS.join(", ")),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| AppError::BadRequest(Msg::new("error.bad_form")))?
    {
        if field.name() != Some("slides") {
            continue;
        }
        let Some(name) = field.file_name().and_then(safe_name) else {
            return refuse("slides.bad_type");
        };
        let bytes = field
            .bytes()
            .await
            .map_err(|_| AppError::BadRequest(Msg::new("error.form_too_large")))?;
        file = Some((name, bytes));
    }
    let Some((name, bytes)) = file else {
        return refuse("slides.missing");
    };
    if bytes.is_empty() {
        return refuse("slides.missing");
    }
    if bytes.len() > SLIDES_MAX_BYTES {
        return refuse("slides.too_large");
    }
    let path = slides_path(&state.config, meeting.id, &name);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| AppError::Internal(format!("cannot create {}: {e}", dir.display())))?;
    }
    tokio::fs::write(&path, &bytes)
        .await
        .map_err(|e| AppError::Internal(format!("cannot write {}: {e}", path.display())))?;
    if let Some(old) = meeting.slides.as_deref().filter(|old| *old != name) {
        let _ = tokio::fs::remove_file(slides_path(&state.config, meeting.id, old)).await;
    }
    state.db.set_meeting_slides(meeting.id, Some(&name)).await?;
    tracing::info!(meeting_id = %meeting.meeting_id, bytes = bytes.len(), "slides uploaded");
    Ok(Redirect::to(&format!("/meeting/slides/{}", meeting.meeting_id)).into_response())
}

/// `POST /meeting/slides/{link}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(link): Path<String>,
    Form(_): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let meeting = meeting_from_link(&state, &link).await?;
    allowed(&state, &ctx, Some(&meeting), Action::Edit).await?;
    if let Some(name) = &meeting.slides {
        let _ = tokio::fs::remove_file(slides_path(&state.config, meeting.id, name)).await;
    }
    state.db.set_meeting_slides(meeting.id, None).await?;
    Ok(Redirect::to(&format!("/meeting/slides/{}", meeting.meeting_id)).into_response())
}

/// `GET /meeting/slides/{id}/{key}/{name}`: the file BBB downloads; the key proves amphi made
/// the URL.
pub async fn file(
    State(state): State<AppState>,
    Path((id, key, name)): Path<(i64, String, String)>,
) -> Result<Response, AppError> {
    let meeting = state.db.meeting(id).await?.ok_or(AppError::NotFound)?;
    let current = meeting.slides.as_deref().ok_or(AppError::NotFound)?;
    if current != name
        || !crate::bbb::checksum::checksums_match(
            &slides_key(state.secret_key.expose(), id, current),
            &key,
        )
    {
        return Err(AppError::NotFound);
    }
    let bytes = tokio::fs::read(slides_path(&state.config, id, current))
        .await
        .map_err(|_| AppError::NotFound)?;
    let content_type = match current.rsplit('.').next().unwrap_or("") {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let mut response = bytes.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(
            safe_name("Cours n°3 (version finale).PDF").as_deref(),
            Some("cours-n3-version-finale.pdf")
        );
        assert_eq!(
            safe_name("../../etc/passwd.pdf").as_deref(),
            Some("passwd.pdf")
        );
        assert_eq!(
            safe_name("C:\\\\Users\\\\ann\\\\slides.pptx").as_deref(),
            Some("slides.pptx")
        );
        assert_eq!(safe_name("script.sh"), None);
        assert_eq!(safe_name("no-extension"), None);
        assert_eq!(safe_name(".pdf").as_deref(), Some("slides.pdf"));
    }
}
