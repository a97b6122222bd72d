//! The trusted reverse-proxy mode (CAS, Shibboleth): headers believed only from the proxy.

use crate::support::TestApp;
use amphi::config::Config;
use axum::http::StatusCode;

fn proxy_config() -> Config {
    let mut config = Config::default();
    config.auth.proxy.enabled = true;
    config.auth.proxy.trusted_proxies = vec![
        "10.0.0.0/30".parse().unwrap(),
        "127.0.0.1/32".parse().unwrap(),
    ];
    config
}

const HEADERS: &[(&str, &str)] = &[
    ("x-remote-user", "dupont"),
    ("x-remote-email", "jean.dupont@univ.example"),
    ("x-remote-name", "Jean Dupont"),
    ("x-remote-affiliation", "faculty"),
    ("x-remote-groups", "faculty;meeting-admins"),
];

#[tokio::test]
async fn identity_from_the_proxy_creates_the_account() {
    let mut app = TestApp::new(proxy_config()).await;
    app.peer = "10.0.0.2:51000".parse().unwrap();
    let page = app.get_with("/account", HEADERS).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("<dd id=\"account-username\">dupont</dd>")
    );
    assert!(page.body.contains("jean.dupont@univ.example"));
    assert!(page.body.contains("meeting-admins"));
    let user = app
        .state
        .db
        .user_by_username("dupont")
        .await
        .unwrap()
        .expect("account created");
    assert_eq!(user.affiliation, "faculty");
    assert_eq!(user.display_name, "Jean Dupont");
    assert!(!user.is_staff, "the proxy never grants staff");
    // A second visit reuses the account.
    app.get_with("/account", HEADERS).await;
    assert_eq!(app.state.db.list_users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn identity_headers_from_elsewhere_are_refused() {
    let mut app = TestApp::new(proxy_config()).await;
    app.peer = "192.0.2.50:40000".parse().unwrap();
    let page = app
        .get_with(
            "/account",
            &[("x-remote-user", "admin"), ("accept-language", "en")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body
            .contains("Identity headers are accepted only from the configured login proxy."),
        "{}",
        page.body
    );
    assert!(
        app.state
            .db
            .user_by_username("admin")
            .await
            .unwrap()
            .is_none()
    );
    // A forged X-Forwarded-For does not make the peer a proxy.
    let page = app
        .get_with(
            "/account",
            &[("x-remote-user", "admin"), ("x-forwarded-for", "127.0.0.1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn headers_are_ignored_when_the_mode_is_off() {
    let mut app = TestApp::new(Config::default()).await;
    let page = app.get_with("/account", HEADERS).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "not logged in");
    assert!(
        app.state
            .db
            .user_by_username("dupont")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn forwarded_address_is_used_for_throttling_behind_the_proxy() {
    let mut config = proxy_config();
    config.auth.login_max_failures_per_ip = 2;
    let mut app = TestApp::new(config).await;
    app.add_user("ann", "correct horse battery").await;
    app.peer = "10.0.0.1:50000".parse().unwrap();
    for _ in 0..2 {
        let token = app.get("/login").await.csrf_token();
        let request = axum::http::Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", "198.51.100.7")
            .body(axum::body::Body::from(format!(
                "csrf_token={token}&username=x&password=y"
            )))
            .unwrap();
        assert_eq!(app.send(request).await.status, StatusCode::UNAUTHORIZED);
    }
    let failures = app
        .state
        .db
        .login_failures(
            amphi::db::FailuresOf::Address("198.51.100.7"),
            crate::support::start_time(),
        )
        .await
        .unwrap();
    assert_eq!(
        failures.0, 2,
        "failures are counted against the student's address, not the proxy's"
    );
    // Other students behind the same proxy can still log in.
    let token = app.get("/login").await.csrf_token();
    let request = axum::http::Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-for", "198.51.100.8")
        .body(axum::body::Body::from(format!(
            "csrf_token={token}&username=ann&password=correct+horse+battery"
        )))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::SEE_OTHER);
}
