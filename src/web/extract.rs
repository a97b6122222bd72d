//! Extractors whose rejections become [`AppError`]s, so a malformed form or query string gets a
//! sentence in the user's language instead of the framework's internal message.

use super::{AppError, Msg};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// `axum::Form` with amphi's error page.
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(Form(value)),
            Err(rejection) => {
                tracing::debug!(%rejection, "malformed form");
                Err(AppError::BadRequest(Msg::new("error.bad_form")))
            }
        }
    }
}

/// `axum::extract::Query` with amphi's error page.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => {
                tracing::debug!(%rejection, "malformed query string");
                Err(AppError::BadRequest(Msg::new("error.bad_form")))
            }
        }
    }
}
