//! The receivers for what BBB calls back, under `/bbb/callbacks/`. They check who is calling
//! (a JWT, a per-meeting token, a checksum), turn the call into [`BbbEvent`]s on
//! `AppState::events`, and leave every business rule to whoever listens. They are exempt from
//! CSRF checks: BBB has no cookie, and each one is authenticated by its own signature.
//!
//! Answers follow what BBB's senders expect: 2xx is done; 401 tells the recording-ready script
//! "secret mismatch" and stops bbb-webhooks from retrying a forged or misconfigured delivery.

use super::AppState;
use crate::bbb::callbacks::{self, BbbEvent, CallbackError};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Receipt kind for recording-ready callbacks: the receipt holds the [`RecordingReady`] as
/// JSON until the consumer (the recording-ready mail) marks it handled, so the event survives
/// a restart or a subscriber that fell behind.
///
/// [`RecordingReady`]: crate::bbb::callbacks::RecordingReady
pub const RECORDING_READY: &str = "recording-ready";

fn refuse(status: StatusCode, what: &str, error: &CallbackError) -> Response {
    tracing::warn!(callback = what, reason = %error, "BBB callback refused");
    (status, format!("{error}\n")).into_response()
}

fn emit(state: &AppState, event: BbbEvent) {
    tracing::debug!(?event, "BBB event");
    // Nobody listening is not an error: the event is logged and receivers come later.
    let _ = state.events.send(event);
}

fn not_configured() -> Response {
    tracing::warn!("BBB callback received but bbb.secret is not set");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "no BBB server is configured\n",
    )
        .into_response()
}

/// `POST /bbb/callbacks/recording-ready`, form `signed_parameters=<JWT>`.
pub async fn recording_ready(State(state): State<AppState>, body: Bytes) -> Response {
    let secret = state.config.bbb.secret.expose();
    if secret.is_empty() {
        return not_configured();
    }
    let token = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "signed_parameters")
        .map(|(_, value)| value.into_owned());
    let Some(token) = token else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "recording-ready",
            &CallbackError::MalformedToken,
        );
    };
    let ready = match callbacks::verify_recording_ready(&token, secret.as_bytes()) {
        Ok(ready) => ready,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, "recording-ready", &e),
    };
    let now = state.clock.now().timestamp_millis();
    let payload = serde_json::to_string(&ready).unwrap_or_default();
    match state
        .db
        .first_receipt(RECORDING_READY, &ready.record_id, &payload, now)
        .await
    {
        Ok(true) => emit(&state, BbbEvent::RecordingReady(ready)),
        Ok(false) => {
            tracing::debug!(record_id = %ready.record_id, "recording-ready repeated (another format)");
        }
        Err(e) => {
            // A 5xx makes BBB count it as a transient error; nothing is lost on our side.
            tracing::error!(error = %e, "cannot record the recording-ready callback");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
        }
    }
    (StatusCode::OK, "ok\n").into_response()
}

/// `GET /bbb/callbacks/end?token=…&meetingID=…&recordingmarks=…`.
pub async fn meeting_ended(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    match callbacks::verify_end_callback(state.secret_key.expose(), &raw.unwrap_or_default()) {
        Ok(event) => {
            emit(&state, event);
            (StatusCode::OK, "ok\n").into_response()
        }
        Err(e @ (CallbackError::MissingToken | CallbackError::WrongToken)) => {
            refuse(StatusCode::FORBIDDEN, "end", &e)
        }
        Err(e) => refuse(StatusCode::BAD_REQUEST, "end", &e),
    }
}

/// `POST /bbb/callbacks/hooks?checksum=…`, form `domain`, `event`, `timestamp`.
pub async fn webhook(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let secret = state.config.bbb.secret.expose();
    if secret.is_empty() {
        return not_configured();
    }
    let checksum = callbacks::webhook_checksum(&raw.unwrap_or_default());
    let url = callbacks::webhook_url(&state.config.public_url);
    if let Err(e) = callbacks::verify_webhook(&url, &body, checksum.as_deref(), secret) {
        return refuse(StatusCode::UNAUTHORIZED, "webhook", &e);
    }
    match callbacks::parse_webhook_body(&body) {
        Ok(delivery) => {
            for reason in &delivery.skipped {
                tracing::warn!(%reason, "webhook event left out");
            }
            for event in delivery.events {
                emit(&state, BbbEvent::Hook(event));
            }
            (StatusCode::OK, "ok\n").into_response()
        }
        Err(e) => refuse(StatusCode::BAD_REQUEST, "webhook", &e),
    }
}
