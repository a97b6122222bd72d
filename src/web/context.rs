//! Per-request context: who is asking (trusted proxy headers, session cookie or API token), from
//! which address, in which language, and the CSRF token of their forms. The middleware also
//! refuses unsafe requests without a valid CSRF token and renders every [`ErrorPage`].

use super::error::ErrorPage;
use super::i18n::Lang;
use super::{AppError, AppState, Msg, cookies};
use crate::accounts::{ProxyDecision, identity_from_headers, proxy::is_trusted_proxy};
use crate::db::User;
use crate::redact::Redacted;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub const SESSION_COOKIE: &str = "amphi_session";
pub const CSRF_COOKIE: &str = "amphi_csrf";
pub const LANG_COOKIE: &str = "amphi_lang";
/// Form field and header carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Where BBB calls back: authenticated by signatures, not by cookies, so no CSRF check.
const CALLBACKS: &str = "/bbb/callbacks/";
/// Largest form body the CSRF check reads.
const FORM_LIMIT_BYTES: usize = 256 * 1024;

/// How the user was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Session,
    Proxy,
    ApiToken,
}

/// What every handler knows about the request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub lang: Lang,
    pub client_ip: IpAddr,
    pub user: Option<User>,
    pub auth: Option<AuthMethod>,
    /// The session cookie's token when it names a valid session.
    pub session_token: Option<Redacted<String>>,
    /// Token to put in forms (`csrf_token` field).
    pub csrf_token: String,
    /// Path and query of the request, for "come back here" links.
    pub path: String,
}

impl RequestContext {
    /// The user, or a redirect to the login page that comes back here.
    pub fn require_user(&self) -> Result<&User, AppError> {
        self.user.as_ref().ok_or_else(|| AppError::LoginRequired {
            next: self.path.clone(),
        })
    }
}

/// The address of the client: the peer, or for a trusted proxy the last untrusted address of
/// `X-Forwarded-For`.
pub fn client_ip(state: &AppState, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let proxy = &state.config.auth.proxy;
    if !is_trusted_proxy(proxy, peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted_proxy(proxy, **ip))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
}

/// The MAC whose output is the form token of a CSRF cookie.
fn csrf_mac(state: &AppState, cookie: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(state.secret_key.expose())
        .expect("HMAC takes keys of any length");
    mac.update(b"amphi-csrf:");
    mac.update(cookie.as_bytes());
    mac
}

fn csrf_for(state: &AppState, cookie: &str) -> String {
    hex::encode(csrf_mac(state, cookie).finalize().into_bytes())
}

fn csrf_valid(state: &AppState, cookie: &str, given: &str) -> bool {
    let mac = csrf_mac(state, cookie);
    match hex::decode(given) {
        Ok(bytes) => mac.verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

fn is_token(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Resolves the context, enforces CSRF, runs the handler, renders error pages.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client_ip = client_ip(&state, peer, &parts.headers);
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let api = parts.uri.path().starts_with("/api/");

    let existing_csrf = cookies::get(&parts.headers, CSRF_COOKIE).filter(|c| is_token(c));
    let csrf_cookie = existing_csrf
        .clone()
        .unwrap_or_else(|| crate::accounts::new_token().expose().clone());
    let mut context = RequestContext {
        // Refined with the user's preference once the user is known.
        lang: negotiate_lang(&state, &parts.headers, None),
        client_ip,
        user: None,
        auth: None,
        session_token: None,
        csrf_token: csrf_for(&state, &csrf_cookie),
        path,
    };

    let outcome = async {
        resolve_user(&state, peer, &parts.headers, &mut context).await?;
        if context.user.is_some() {
            context.lang = negotiate_lang(&state, &parts.headers, context.user.as_ref());
        }
        let body = if is_unsafe(&parts.method)
            && context.auth != Some(AuthMethod::ApiToken)
            && !parts.uri.path().starts_with(CALLBACKS)
        {
            check_csrf(&state, &parts.headers, existing_csrf.as_deref(), body).await?
        } else {
            body
        };
        Ok::<Body, AppError>(body)
    }
    .await;

    let mut response = match outcome {
        Ok(body) => {
            parts.extensions.insert(context.clone());
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) => error.into_response(),
    };

    if let Some(page) = response.extensions_mut().remove::<ErrorPage>() {
        response = render_error(&state, &context, page, api, response);
    }
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "SAMEORIGIN"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if existing_csrf.is_none() {
        let spec = cookies::CookieSpec {
            name: CSRF_COOKIE,
            http_only: true,
            secure: state.config.cookies_secure(),
            same_site: "Lax",
            max_age_seconds: None,
        };
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookies::set(spec, &csrf_cookie));
    }
    response
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

async fn resolve_user(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    context: &mut RequestContext,
) -> Result<(), AppError> {
    let decision = identity_from_headers(&state.config.auth.proxy, peer, |name| {
        header_text(headers, name)
    });
    match decision {
        ProxyDecision::Untrusted { header } => {
            tracing::warn!(%peer, header, "identity header from an address that is not a trusted proxy");
            return Err(AppError::Forbidden(Msg::new("error.untrusted_proxy")));
        }
        ProxyDecision::Identity(identity) => {
            let user = state
                .db
                .upsert_proxy_user(&identity, state.clock.now())
                .await?;
            if user.is_active {
                context.user = Some(user);
                context.auth = Some(AuthMethod::Proxy);
                return Ok(());
            }
            return Err(AppError::Forbidden(Msg::new("error.account_disabled")));
        }
        ProxyDecision::NoIdentity => {}
    }
    if let Some(token) = cookies::get(headers, SESSION_COOKIE).filter(|t| is_token(t))
        && let Some(user) = state.accounts.session(&token).await?
    {
        context.user = Some(user);
        context.auth = Some(AuthMethod::Session);
        context.session_token = Some(Redacted::new(token));
        return Ok(());
    }
    if let Some(auth) = header_text(headers, header::AUTHORIZATION.as_str()) {
        // `Bearer` (RFC 6750) or `Token` (Django REST framework, as Pod's API clients send).
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("Token "))
            .map(str::trim)
            .filter(|t| is_token(t))
            .ok_or(AppError::Unauthorized(Msg::new("error.invalid_token")))?;
        let user = state
            .accounts
            .api_user(token)
            .await?
            .ok_or(AppError::Unauthorized(Msg::new("error.invalid_token")))?;
        context.user = Some(user);
        context.auth = Some(AuthMethod::ApiToken);
    }
    Ok(())
}

fn negotiate_lang(state: &AppState, headers: &HeaderMap, user: Option<&User>) -> Lang {
    cookies::get(headers, LANG_COOKIE)
        .and_then(|c| Lang::from_code(&c))
        .or_else(|| user.and_then(|u| Lang::from_code(&u.language)))
        .or_else(|| {
            header_text(headers, header::ACCEPT_LANGUAGE.as_str())
                .and_then(|h| Lang::from_accept_language(&h))
        })
        .or_else(|| Lang::from_code(&state.config.site.default_language))
        .unwrap_or(Lang::Fr)
}

/// Accepts the token from the `X-CSRF-Token` header or the form's `csrf_token` field; the
/// form body is read and handed on unchanged.
async fn check_csrf(
    state: &AppState,
    headers: &HeaderMap,
    cookie: Option<&str>,
    body: Body,
) -> Result<Body, AppError> {
    let Some(cookie) = cookie else {
        return Err(AppError::Csrf);
    };
    if let Some(given) = header_text(headers, CSRF_HEADER) {
        return if csrf_valid(state, cookie, &given) {
            Ok(body)
        } else {
            Err(AppError::Csrf)
        };
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(boundary) = multipart_boundary(content_type) {
        let bytes = to_bytes(body, UPLOAD_LIMIT_BYTES)
            .await
            .map_err(|_| AppError::BadRequest(Msg::new("error.form_too_large")))?;
        return match first_field(&bytes, &boundary, CSRF_FIELD) {
            Some(given) if csrf_valid(state, cookie, &given) => Ok(Body::from(bytes)),
            _ => Err(AppError::Csrf),
        };
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(AppError::Csrf);
    }
    let bytes = to_bytes(body, FORM_LIMIT_BYTES)
        .await
        .map_err(|_| AppError::BadRequest(Msg::new("error.form_too_large")))?;
    let given = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    match given {
        Some(given) if csrf_valid(state, cookie, &given) => Ok(Body::from(bytes)),
        _ => Err(AppError::Csrf),
    }
}

fn render_error(
    state: &AppState,
    context: &RequestContext,
    page: ErrorPage,
    api: bool,
    original: Response,
) -> Response {
    let catalog = state.templates.catalog();
    let sentence = page.msg.sentence(catalog, context.lang);
    let (mut parts, _) = original.into_parts();
    let body = if api {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Body::from(serde_json::json!({ "error": sentence }).to_string())
    } else {
        let title = catalog.get(context.lang, page.title, &[]);
        let html = super::pages::render_page(
            state,
            context,
            "error.html",
            minijinja::context! { title => title, message => sentence, status => page.status.as_u16() },
        );
        match html {
            Ok(html) => {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                Body::from(html)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot render the error page");
                parts.status = StatusCode::INTERNAL_SERVER_ERROR;
                Body::from(sentence)
            }
        }
    };
    Response::from_parts(parts, body)
}

/// Largest multipart body (slides uploads; the handler checks the file's own limit).
pub const UPLOAD_LIMIT_BYTES: usize = 32 * 1024 * 1024;

/// The boundary of a `multipart/form-data` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (name, value) = p.trim().split_once('=')?;
        name.eq_ignore_ascii_case("boundary")
            .then(|| value.trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

/// The value of the first part of a multipart body when it is the field `name` (forms put the
/// CSRF token first, so the file after it is never scanned).
pub fn first_field(body: &[u8], boundary: &str, name: &str) -> Option<String> {
    let delimiter = format!("--{boundary}\r\n");
    let rest = body.strip_prefix(delimiter.as_bytes())?;
    let headers_end = find(rest, b"\r\n\r\n")?;
    let headers = std::str::from_utf8(&rest[..headers_end]).ok()?;
    let wanted = format!("name=\"{name}\"");
    let disposition = headers
        .split("\r\n")
        .find(|h| h.to_ascii_lowercase().starts_with("content-disposition:"))?;
    if !disposition.contains(&wanted) || disposition.contains("filename=") {
        return None;
    }
    let value = &rest[headers_end + 4..];
    let end = find(value, format!("\r\n--{boundary}").as_bytes())?;
    let text = std::str::from_utf8(&value[..end]).ok()?;
    (text.len() <= 256).then(|| text.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod multipart_tests {
    use super::{first_field, multipart_boundary};

    #[test]
    fn the_token_is_read_from_the_first_part_only() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=XyZ"),
            Some("XyZ".into())
        );
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"a b\""),
            Some("a b".into())
        );
        assert_eq!(
            multipart_boundary("application/x-www-form-urlencoded"),
            None
        );
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc123\r\n--XyZ\r\nContent-Disposition: form-data; name=\"slides\"; filename=\"a.pdf\"\r\n\r\n%PDF\r\n--XyZ--\r\n";
        assert_eq!(
            first_field(body, "XyZ", "csrf_token"),
            Some("abc123".into())
        );
        let later = b"--XyZ\r\nContent-Disposition: form-data; name=\"slides\"; filename=\"a.pdf\"\r\n\r\n%PDF\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc\r\n--XyZ--\r\n";
        assert_eq!(first_field(later, "XyZ", "csrf_token"), None);
        assert_eq!(first_field(b"garbage", "XyZ", "csrf_token"), None);
        assert_eq!(first_field(b"--XyZ\r\n", "XyZ", "csrf_token"), None);
    }
}
