//! The meetings JSON API with API tokens, against the BBB simulator: create, read, update,
//! join by role, status, end, delete; field errors as JSON; the OpenAPI document.

use crate::support::TestApp;
use amphi::config::Config;
use amphi::redact::Redacted;
use amphi::sim::{self, SimOptions};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

struct Api {
    app: TestApp,
    _sim: sim::Running,
}

async fn api() -> Api {
    amphi::install_crypto_provider();
    let sim = sim::start("127.0.0.1:0".parse().unwrap(), SimOptions::default())
        .await
        .unwrap();
    let mut config = Config::default();
    config.bbb.api_url = sim.api_url();
    config.bbb.secret = Redacted::new(SimOptions::default().secret.expose().clone());
    let app = TestApp::new(config).await;
    Api { app, _sim: sim }
}

async fn token(app: &TestApp, username: &str) -> String {
    app.add_user(username, "correct horse battery").await;
    app.state
        .accounts
        .create_api_token(username, "tests")
        .await
        .unwrap()
        .expose()
        .clone()
}

/// Sends a JSON request with `Authorization: Token …`; returns status and JSON body.
pub(crate) async fn call(
    app: &mut TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.forget_cookies();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Token {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT_LANGUAGE, "en")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let page = app.send(request).await;
    let json = serde_json::from_str(&page.body).unwrap_or(Value::Null);
    (page.status, json)
}

fn physics() -> Value {
    json!({
        "name": "Physique quantique",
        "attendee_password": "quanta42",
        "start": "2026-12-07",
        "start_time": "14:00",
        "expected_duration": 2,
        "recurrence": "weekly",
        "weekdays": [0, 2],
        "nb_occurrences": 6,
        "record": true,
        "max_participants": 80
    })
}

#[tokio::test]
async fn meetings_through_the_api() {
    let Api { mut app, _sim } = api().await;
    let ann = token(&app, "ann").await;
    let bob = token(&app, "bob").await;

    let (status, created) = call(&mut app, "POST", "/api/v1/meetings", &ann, Some(physics())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["meeting_id"], format!("{id:04}-physique-quantique"));
    assert_eq!(created["owner"], "ann");
    assert_eq!(created["recurrence"]["count"], 6);
    assert_eq!(created["recurrence"]["weekdays"], json!([0, 2]));
    assert_eq!(created["attendee_password"], "quanta42");

    // Invalid fields: a message per field, nothing stored.
    let (status, errors) = call(
        &mut app,
        "POST",
        "/api/v1/meetings",
        &ann,
        Some(json!({"name": "x", "voice_bridge": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["name", "attendee_password", "start", "voice_bridge"] {
        assert!(errors["errors"][field].is_string(), "{field}: {errors}");
    }

    // Others see it without the password, cannot change it.
    let (status, seen) = call(
        &mut app,
        "GET",
        &format!("/api/v1/meetings/{id}"),
        &bob,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(seen["attendee_password"].is_null(), "{seen}");
    assert!(
        seen["voice_bridge"].is_null() && seen["additional_owners"].is_null(),
        "{seen}"
    );
    assert_eq!(seen["name"], "Physique quantique");
    let (status, _) = call(
        &mut app,
        "PUT",
        &format!("/api/v1/meetings/{id}"),
        &bob,
        Some(physics()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Renaming keeps the BBB meeting id.
    let mut renamed = physics();
    renamed["name"] = json!("Mécanique quantique");
    let (status, updated) = call(
        &mut app,
        "PUT",
        &format!("/api/v1/meetings/{id}"),
        &ann,
        Some(renamed),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Mécanique quantique");
    assert_eq!(updated["meeting_id"], created["meeting_id"]);

    // A viewer before the start, without and with the password.
    let join = format!("/api/v1/meetings/{id}/join");
    let (status, _) = call(&mut app, "POST", &join, &bob, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, early) = call(
        &mut app,
        "POST",
        &join,
        &bob,
        Some(json!({"password": "quanta42"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{early}");

    // The owner starts it and gets a moderator URL; then the viewer gets in.
    let (status, owner_join) = call(&mut app, "POST", &join, &ann, None).await;
    assert_eq!(status, StatusCode::OK, "{owner_join}");
    assert_eq!(owner_join["role"], "MODERATOR");
    let url = owner_join["url"].as_str().unwrap();
    assert!(url.contains("role=MODERATOR") && url.contains("checksum="));
    reqwest::get(url).await.unwrap();
    // The API path sends BBB what the pages send.
    let bbb = _sim.state.meetings();
    let params = &bbb[0].create_params;
    assert_eq!(
        params.get("attendeePW").map(String::as_str),
        Some("quanta42")
    );
    assert_eq!(
        params.get("maxParticipants").map(String::as_str),
        Some("80")
    );
    assert!(
        params.contains_key("meta_endCallbackUrl")
            && params.contains_key("meta_bbb-recording-ready-url")
    );
    // A wrong case is a wrong password; the direct key works without one.
    let (status, _) = call(
        &mut app,
        "POST",
        &join,
        &bob,
        Some(json!({"password": "QUANTA42"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let key = amphi::meetings::direct_access_key(b"test-secret-key-for-csrf", id, "quanta42");
    let (status, direct) = call(
        &mut app,
        "POST",
        &join,
        &bob,
        Some(json!({"direct_key": key})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{direct}");
    assert_eq!(direct["role"], "VIEWER");
    let (status, viewer) = call(
        &mut app,
        "POST",
        &join,
        &bob,
        Some(json!({"password": "quanta42"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{viewer}");
    assert_eq!(viewer["role"], "VIEWER");
    let (_, running) = call(
        &mut app,
        "GET",
        &format!("/api/v1/meetings/{id}/status"),
        &bob,
        None,
    )
    .await;
    assert_eq!(running["running"], true);

    // Ending and deleting are the owner's.
    let (status, _) = call(
        &mut app,
        "POST",
        &format!("/api/v1/meetings/{id}/end"),
        &bob,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &mut app,
        "POST",
        &format!("/api/v1/meetings/{id}/end"),
        &ann,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, running) = call(
        &mut app,
        "GET",
        &format!("/api/v1/meetings/{id}/status"),
        &ann,
        None,
    )
    .await;
    assert_eq!(running["running"], false);
    let (status, list) = call(&mut app, "GET", "/api/v1/meetings", &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 1, "no personal room through the API: {list}");
    let (status, _) = call(
        &mut app,
        "DELETE",
        &format!("/api/v1/meetings/{id}"),
        &bob,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &mut app,
        "DELETE",
        &format!("/api/v1/meetings/{id}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &mut app,
        "GET",
        &format!("/api/v1/meetings/{id}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // No token, a wrong token.
    let (status, _) = call(&mut app, "GET", "/api/v1/meetings", "not-a-token", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let Api { mut app, _sim } = api().await;
    let page = app.get("/api/v1/openapi.json").await;
    assert_eq!(page.status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/meetings",
        "/meetings/{id}",
        "/meetings/{id}/status",
        "/meetings/{id}/join",
        "/meetings/{id}/end",
        "/meetings/{id}/invite",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    // Every form field is described.
    for field in amphi::meetings::form::FIELDS
        .iter()
        .filter(|f| **f != "slides")
    {
        assert!(
            doc["components"]["schemas"]["MeetingInput"]["properties"][*field].is_object(),
            "{field}"
        );
    }
}

#[tokio::test]
async fn wrong_passwords_through_the_api_are_throttled_before_any_answer() {
    let Api { mut app, _sim } = api().await;
    let ann = token(&app, "ann").await;
    let eve = token(&app, "eve").await;
    let (_, created) = call(&mut app, "POST", "/api/v1/meetings", &ann, Some(physics())).await;
    let id = created["id"].as_i64().unwrap();
    let join = format!("/api/v1/meetings/{id}/join");
    let limit = app.state.config.auth.login_max_failures_per_ip;
    let creates_before = _sim.state.call_count("isMeetingRunning");
    for attempt in 0..limit {
        let (status, _) = call(
            &mut app,
            "POST",
            &join,
            &eve,
            Some(json!({"password": format!("guess{attempt}")})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "attempt {attempt}");
    }
    let (status, _) = call(
        &mut app,
        "POST",
        &join,
        &eve,
        Some(json!({"password": "quanta42"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert_eq!(
        _sim.state.call_count("isMeetingRunning"),
        creates_before,
        "BBB never asked"
    );
}
