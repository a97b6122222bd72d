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

#[tokio::test]
async fn the_hls_origin_is_part_of_the_application_without_sessions() {
    use amphi::hls::{Live, WindowConfig};
    use amphi::media::Ladder;
    let mut app = TestApp::new(Config::default()).await;
    let unknown = app.get("/live/chimie-2/hls/master.m3u8").await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (StatusCode::NOT_FOUND, "No such live.\n")
    );
    let ladder = Ladder::default();
    let live = Live::new(
        "chimie-2",
        ladder.variants(),
        ladder.audio(),
        WindowConfig::default(),
    );
    live.stats
        .frames_composed
        .fetch_add(250, std::sync::atomic::Ordering::Relaxed);
    let hd = live.stats.output("720p").unwrap();
    hd.frames_in
        .fetch_add(248, std::sync::atomic::Ordering::Relaxed);
    hd.encoded(125_000, Some(21_000));
    app.state.lives.insert(std::sync::Arc::new(live));
    // Each live's counters are in /metrics.
    let metrics = app.get("/metrics").await.body;
    for line in [
        "amphi_live_composed_frames_total{live=\"chimie-2\"} 250",
        "amphi_live_output_bytes_total{live=\"chimie-2\",rendition=\"720p\"} 125000",
        "amphi_live_dropped_frames{live=\"chimie-2\",rendition=\"720p\"} 2.0",
        "amphi_live_dropped_frames{live=\"chimie-2\",rendition=\"audio\"} 0.0",
        "amphi_live_encoder_latency_seconds{live=\"chimie-2\",rendition=\"720p\"} 0.021",
        "amphi_live_viewers{live=\"chimie-2\"} 0.0",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    let master = app.get("/live/chimie-2/hls/master.m3u8").await;
    assert_eq!(master.status, StatusCode::OK);
    assert!(master.body.starts_with("#EXTM3U\n"), "{}", master.body);
    assert!(
        master.headers.get("set-cookie").is_none(),
        "no session for media"
    );
    app.state.lives.remove("chimie-2");
    assert_eq!(
        app.get("/live/chimie-2/hls/720p/index.m3u8").await.status,
        StatusCode::GONE
    );
    // The pages keep their own 404.
    assert_eq!(
        app.get("/live/chimie-2/nothing").await.status,
        StatusCode::NOT_FOUND
    );
}
