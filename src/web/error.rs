//! The one place where errors become HTTP: [`AppError`] picks the status and the sentence a
//! person reads; the context middleware renders it as a page (or JSON under `/api/`) in the
//! request's language. Internals are logged, never shown.

use super::i18n::{Catalog, Lang};
use crate::accounts::AccountError;
use crate::db;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A translatable sentence: catalogue key plus `{name}` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub key: &'static str,
    pub args: Vec<(&'static str, String)>,
}

impl Msg {
    pub fn new(key: &'static str) -> Self {
        Self {
            key,
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.args.push((name, value.into()));
        self
    }

    /// The sentence in `lang`, arguments filled in.
    pub fn sentence(&self, catalog: &Catalog, lang: Lang) -> String {
        let args: Vec<(&str, &str)> = self.args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        catalog.get(lang, self.key, &args)
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("login required")]
    LoginRequired { next: String },
    #[error("unauthorized: {0:?}")]
    Unauthorized(Msg),
    #[error("forbidden: {0:?}")]
    Forbidden(Msg),
    #[error("bad request: {0:?}")]
    BadRequest(Msg),
    #[error("CSRF check failed")]
    Csrf,
    #[error("service unavailable: {0:?}")]
    Unavailable(Msg),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the middleware needs to render an error; travels in the response extensions.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub status: StatusCode,
    pub title: &'static str,
    pub msg: Msg,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn page(&self) -> ErrorPage {
        let (title, msg) = match self {
            AppError::NotFound => ("error.not_found_title", Msg::new("error.not_found")),
            AppError::LoginRequired { .. } => {
                ("error.login_title", Msg::new("error.login_required"))
            }
            AppError::Unauthorized(msg) => ("error.unauthorized_title", msg.clone()),
            AppError::Forbidden(msg) => ("error.forbidden_title", msg.clone()),
            AppError::BadRequest(msg) => ("error.bad_request_title", msg.clone()),
            AppError::Csrf => ("error.forbidden_title", Msg::new("error.csrf")),
            AppError::Unavailable(msg) => ("error.unavailable_title", msg.clone()),
            AppError::Internal(_) => ("error.internal_title", Msg::new("error.internal")),
        };
        ErrorPage {
            status: self.status(),
            title,
            msg,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        let mut response = match &self {
            AppError::LoginRequired { next } => {
                let location = format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                (
                    StatusCode::SEE_OTHER,
                    [(axum::http::header::LOCATION, location)],
                )
                    .into_response()
            }
            AppError::Unauthorized(_) => (
                self.status(),
                [(
                    axum::http::header::WWW_AUTHENTICATE,
                    "Bearer realm=\"amphi\"",
                )],
            )
                .into_response(),
            _ => self.status().into_response(),
        };
        if !matches!(self, AppError::LoginRequired { .. }) {
            response.extensions_mut().insert(self.page());
        }
        response
    }
}

impl From<db::Error> for AppError {
    fn from(e: db::Error) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<crate::webinar::WebinarError> for AppError {
    fn from(e: crate::webinar::WebinarError) -> Self {
        use crate::webinar::WebinarError as W;
        match e {
            W::NotWebinar => AppError::NotFound,
            W::NoBbb => AppError::Unavailable(Msg::new("meetings.no_bbb")),
            W::NotRunning => AppError::BadRequest(Msg::new("live.not_running")),
            W::Db(e) => e.into(),
            W::Bbb(e) => {
                AppError::Unavailable(Msg::new("meetings.bbb_failed").arg("reason", e.to_string()))
            }
        }
    }
}

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Db(e) => e.into(),
            AccountError::UnknownUser(_) => AppError::NotFound,
            AccountError::InvalidUsername => {
                AppError::BadRequest(Msg::new("error.invalid_username"))
            }
            AccountError::WeakPassword => AppError::BadRequest(Msg::new("error.weak_password")),
        }
    }
}

/// Seconds to wait and the sentence for a throttled login.
pub fn throttled(retry_after: chrono::Duration) -> (i64, Msg) {
    let seconds = retry_after.num_seconds().max(1);
    let msg = Msg::new("error.throttled").arg("minutes", ((seconds + 59) / 60).to_string());
    (seconds, msg)
}
