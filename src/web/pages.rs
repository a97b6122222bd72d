//! Page handlers: home, login, logout, account, language switch, and `GET /api/v1/me`.

use super::context::{AuthMethod, LANG_COOKIE, SESSION_COOKIE};
use super::cookies::{self, CookieSpec};
use super::error::throttled;
use super::extract::{Form, Query};
use super::i18n::Lang;
use super::{AppError, AppState, Msg, RequestContext};
use crate::accounts::LoginError;
use crate::redact::Redacted;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use minijinja::{Value, context};
use serde::Deserialize;

/// Renders a page inside the layout with what every page needs.
pub(crate) fn render_page(
    state: &AppState,
    ctx: &RequestContext,
    template: &str,
    page: Value,
) -> Result<String, String> {
    let user = ctx.user.as_ref().map(|u| {
        context! {
            username => &u.username,
            name => u.shown_name(),
            is_staff => u.is_staff,
            is_superuser => u.is_superuser,
        }
    });
    let base = context! {
        lang => ctx.lang.code(),
        site_title => &state.config.site.title,
        user => user,
        csrf_token => &ctx.csrf_token,
        current_path => &ctx.path,
        local_login => state.config.auth.local_login,
        languages => Lang::ALL.iter().map(|l| l.code()).collect::<Vec<_>>(),
    };
    state
        .templates
        .render(template, context! { ..page, ..base })
}

pub(crate) fn html(
    state: &AppState,
    ctx: &RequestContext,
    template: &str,
    page: Value,
) -> Result<Html<String>, AppError> {
    render_page(state, ctx, template, page)
        .map(Html)
        .map_err(AppError::Internal)
}

/// Only local absolute paths are followed after login, never another site.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.contains(['\r', '\n']) =>
        {
            n.to_owned()
        }
        _ => "/account".to_owned(),
    }
}

pub async fn home(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Html<String>, AppError> {
    html(&state, &ctx, "home.html", context! {})
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    let next = safe_next(query.next.as_deref());
    if ctx.user.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    Ok(html(
        &state,
        &ctx,
        "login.html",
        context! { next => next, username => "" },
    )?
    .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    if !state.config.auth.local_login {
        return Err(AppError::Forbidden(Msg::new("login.local_disabled")));
    }
    let username = form.username.trim().to_owned();
    let result = state
        .accounts
        .login(
            &username,
            Redacted::new(form.password),
            &ctx.client_ip.to_string(),
        )
        .await;
    let (status, msg, retry_after) = match result {
        Ok((_, token)) => {
            state.metrics.login("success");
            if let Some(old) = &ctx.session_token {
                state.accounts.logout(old.expose()).await?;
            }
            let spec = session_cookie(
                &state,
                Some(i64::from(state.config.auth.session_hours) * 3600),
            );
            let mut response = Redirect::to(&next).into_response();
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookies::set(spec, token.expose()));
            return Ok(response);
        }
        Err(LoginError::InvalidCredentials) => {
            state.metrics.login("invalid");
            (StatusCode::UNAUTHORIZED, Msg::new("login.invalid"), None)
        }
        Err(
            LoginError::AccountThrottled { retry_after }
            | LoginError::AddressThrottled { retry_after },
        ) => {
            state.metrics.login("throttled");
            let (seconds, msg) = throttled(retry_after);
            (StatusCode::TOO_MANY_REQUESTS, msg, Some(seconds))
        }
        Err(LoginError::Db(e)) => return Err(e.into()),
    };
    let error = msg.sentence(state.templates.catalog(), ctx.lang);
    let page = html(
        &state,
        &ctx,
        "login.html",
        context! { next => next, username => username, error => error },
    )?;
    let mut response = (status, page).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"amphi\""),
        );
    }
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

fn session_cookie(state: &AppState, max_age_seconds: Option<i64>) -> CookieSpec<'static> {
    CookieSpec {
        name: SESSION_COOKIE,
        http_only: true,
        secure: state.config.cookies_secure(),
        same_site: "Lax",
        max_age_seconds,
    }
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Response, AppError> {
    if let Some(token) = &ctx.session_token {
        state.accounts.logout(token.expose()).await?;
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(session_cookie(&state, Some(0)), ""),
    );
    Ok(response)
}

pub async fn account(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Html<String>, AppError> {
    let user = ctx.require_user()?;
    let groups: Vec<Value> = state
        .db
        .user_access_groups(user.id)
        .await?
        .into_iter()
        .map(|g| context! { code_name => g.code_name, display_name => g.display_name })
        .collect();
    let permissions = state.db.user_permissions(user.id).await?;
    let permission_groups = state.db.user_permission_groups(user.id).await?;
    let via_proxy = ctx.auth == Some(AuthMethod::Proxy);
    html(
        &state,
        &ctx,
        "account.html",
        context! {
            account => context! {
                username => &user.username,
                display_name => &user.display_name,
                email => &user.email,
                affiliation => &user.affiliation,
                is_staff => user.is_staff,
                is_superuser => user.is_superuser,
                language => &user.language,
                created_at => user.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                last_login_at => user.last_login_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
            },
            groups => groups,
            permissions => permissions,
            permission_groups => permission_groups,
            via_proxy => via_proxy,
        },
    )
}

#[derive(Deserialize)]
pub struct LanguageForm {
    lang: String,
    next: Option<String>,
}

pub async fn language(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Form(form): Form<LanguageForm>,
) -> Result<Response, AppError> {
    let lang = Lang::from_code(&form.lang)
        .ok_or(AppError::BadRequest(Msg::new("error.unknown_language")))?;
    if let Some(user) = &ctx.user {
        state.db.set_user_language(user.id, lang.code()).await?;
    }
    let next = match form.next.as_deref() {
        Some(n) => safe_next(Some(n)),
        None => "/".to_owned(),
    };
    let spec = CookieSpec {
        name: LANG_COOKIE,
        http_only: false,
        secure: state.config.cookies_secure(),
        same_site: "Lax",
        max_age_seconds: Some(365 * 24 * 3600),
    };
    let mut response = Redirect::to(&next).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookies::set(spec, lang.code()));
    Ok(response)
}

/// The caller's account as JSON (API tokens, sessions and proxy identities alike).
pub async fn api_me(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Response, AppError> {
    let user = ctx
        .user
        .as_ref()
        .ok_or(AppError::Unauthorized(Msg::new("error.invalid_token")))?;
    let groups: Vec<String> = state
        .db
        .user_access_groups(user.id)
        .await?
        .into_iter()
        .map(|g| g.code_name)
        .collect();
    Ok(Json(serde_json::json!({
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "affiliation": user.affiliation,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": groups,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_site() {
        assert_eq!(safe_next(Some("/meetings/?a=1")), "/meetings/?a=1");
        assert_eq!(safe_next(Some("//evil.example/x")), "/account");
        assert_eq!(safe_next(Some("/\\evil.example")), "/account");
        assert_eq!(safe_next(Some("https://evil.example/")), "/account");
        assert_eq!(safe_next(Some("/a\r\nSet-Cookie: x")), "/account");
        assert_eq!(safe_next(None), "/account");
    }
}
