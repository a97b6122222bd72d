//! `/healthz`, `/readyz` and `/metrics`.

use crate::support::TestApp;
use amphi::config::Config;
use axum::http::StatusCode;

#[tokio::test]
async fn health_and_readiness() {
    let mut app = TestApp::new(Config::default()).await;
    let health = app.get("/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (StatusCode::OK, "ready\n")
    );

    app.state.db.close().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body, "database unreachable\n");
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_and_logins() {
    let mut app = TestApp::new(Config::default()).await;
    app.add_user("ann", "correct horse battery").await;
    app.get("/healthz").await;
    app.login("ann", "nope").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let body = metrics.body;
    assert!(
        body.contains(
            "amphi_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains("amphi_logins_total{outcome=\"invalid\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("amphi_http_request_duration_seconds_bucket"),
        "{body}"
    );
    assert!(body.contains("amphi_build_info"), "{body}");
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let mut config = Config::default();
    config.site.metrics = false;
    let mut app = TestApp::new(config).await;
    assert_eq!(app.get("/metrics").await.status, StatusCode::NOT_FOUND);
}
