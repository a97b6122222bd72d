//! Login, sessions, CSRF, throttling, language and the API token, through the real router.

use crate::support::{TestApp, TestDb};
use amphi::config::Config;
use axum::http::StatusCode;
use chrono::Duration;

#[tokio::test]
async fn login_success_opens_a_session_with_safe_cookie_flags() {
    for test_db in TestDb::all().await {
        let config = Config {
            public_url: "https://webinaires.univ.example".into(),
            ..Config::default()
        };
        let mut app = TestApp::with_db(config, test_db.db.clone()).await;
        app.add_user("ann", "correct horse battery").await;

        let page = app.login("ann", "correct horse battery").await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{}: {}",
            test_db.label,
            page.body
        );
        assert_eq!(page.location(), Some("/account"));
        let cookie = page
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("amphi_session="))
            .expect("session cookie");
        for flag in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        }

        let account = app.get("/account").await;
        assert_eq!(account.status, StatusCode::OK);
        assert!(
            account
                .body
                .contains("<dd id=\"account-username\">ann</dd>"),
            "{}",
            account.body
        );
        assert!(account.body.contains("ann@univ.example"));

        // Logging out ends the session on the server, not only in the browser.
        let session = app.cookie("amphi_session").unwrap().clone();
        let token = account.csrf_token();
        let out = app.post_form("/logout", &[("csrf_token", &token)]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        assert!(app.cookie("amphi_session").is_none());
        let replay = app
            .get_with(
                "/account",
                &[("cookie", &format!("amphi_session={session}; amphi_csrf=x"))],
            )
            .await;
        assert_eq!(replay.status, StatusCode::SEE_OTHER);
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn wrong_password_gets_a_sentence_and_401() {
    let mut app = TestApp::new(Config::default()).await;
    app.add_user("ann", "correct horse battery").await;
    let page = app.login("ann", "wrong").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        page.body.contains("Identifiant ou mot de passe incorrect"),
        "{}",
        page.body
    );
    assert!(app.cookie("amphi_session").is_none());
    // Unknown users get the same answer.
    let page = app.login("nobody", "whatever").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("Identifiant ou mot de passe incorrect"));
    assert!(
        page.body.contains("value=\"nobody\""),
        "the username is kept in the form"
    );
}

#[tokio::test]
async fn failed_logins_lock_the_account_then_the_window_passes() {
    let mut app = TestApp::new(Config::default()).await;
    app.add_user("ann", "correct horse battery").await;
    for _ in 0..5 {
        assert_eq!(
            app.login("ann", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused while the account is locked.
    let page = app.login("ann", "correct horse battery").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    let retry: i64 = page.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(page.body.contains("checs de connexion"), "{}", page.body);
    assert!(page.body.contains("15 minute"), "{}", page.body);

    // Another account from the same address is not locked by ann's failures.
    app.add_user("bob", "another good one").await;
    assert_eq!(
        app.login("bob", "another good one").await.status,
        StatusCode::SEE_OTHER
    );

    app.clock.advance(Duration::minutes(16));
    app.forget_cookies();
    assert_eq!(
        app.login("ann", "correct horse battery").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn failed_logins_from_one_address_are_throttled() {
    let mut config = Config::default();
    config.auth.login_max_failures_per_ip = 3;
    let mut app = TestApp::new(config).await;
    app.add_user("ann", "correct horse battery").await;
    for name in ["a", "b", "c"] {
        assert_eq!(app.login(name, "x").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.login("ann", "correct horse battery").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client address is unaffected.
    app.peer = "127.0.0.2:5000".parse().unwrap();
    assert_eq!(
        app.login("ann", "correct horse battery").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let mut app = TestApp::new(Config::default()).await;
    app.add_user("ann", "correct horse battery").await;

    // No cookie and no token at all.
    let page = app
        .post_form(
            "/login",
            &[("username", "ann"), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body.contains("Ce formulaire a expiré"),
        "{}",
        page.body
    );
    assert!(app.cookie("amphi_session").is_none());

    // A cookie, but a token forged for another cookie.
    app.get("/login").await;
    let forged = "0".repeat(64);
    let page = app
        .post_form(
            "/login",
            &[
                ("csrf_token", &forged),
                ("username", "ann"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(app.cookie("amphi_session").is_none());

    // The header form works for scripts.
    let token = app.get("/login").await.csrf_token();
    let request = axum::http::Request::post("/language")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-csrf-token", token)
        .body(axum::body::Body::from("lang=en"))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::SEE_OTHER);

    // JSON bodies need the header.
    let request = axum::http::Request::post("/logout")
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sessions_expire() {
    let mut app = TestApp::new(Config::default()).await;
    app.add_user("ann", "correct horse battery").await;
    assert_eq!(
        app.login("ann", "correct horse battery").await.status,
        StatusCode::SEE_OTHER
    );
    app.clock
        .advance(Duration::hours(11) + Duration::minutes(59));
    assert_eq!(app.get("/account").await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(2));
    let page = app.get("/account").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/login?next=%2Faccount"));
}

#[tokio::test]
async fn login_redirect_stays_on_site() {
    let mut app = TestApp::new(Config::default()).await;
    app.add_user("ann", "correct horse battery").await;
    let token = app.get("/login").await.csrf_token();
    let page = app
        .post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", "ann"),
                ("password", "correct horse battery"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(page.location(), Some("/account"));
}

#[tokio::test]
async fn language_follows_switch_then_accept_language() {
    let mut app = TestApp::new(Config::default()).await;
    let english = app
        .get_with("/", &[("accept-language", "en-GB,en;q=0.9,fr;q=0.5")])
        .await;
    assert!(
        english.body.contains("<html lang=\"en\">") && english.body.contains("Log in"),
        "{}",
        english.body
    );
    let default = app.get_with("/", &[("accept-language", "de")]).await;
    assert!(default.body.contains("<html lang=\"fr\">"));

    let token = default.csrf_token();
    let switched = app
        .post_form(
            "/language",
            &[("csrf_token", &token), ("lang", "en"), ("next", "/login")],
        )
        .await;
    assert_eq!(switched.location(), Some("/login"));
    let page = app.get_with("/login", &[("accept-language", "fr")]).await;
    assert!(
        page.body.contains("<html lang=\"en\">"),
        "the switch wins over the browser"
    );

    let bad = app
        .post_form("/language", &[("csrf_token", &token), ("lang", "xx")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("This language is not available."),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn unknown_pages_get_a_sentence_in_the_right_language() {
    let mut app = TestApp::new(Config::default()).await;
    let page = app
        .get_with("/no/such/page", &[("accept-language", "en")])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("This page does not exist or was moved."));
    let api = app.get("/api/v1/nothing").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert!(json["error"].as_str().unwrap().contains("page"));
}

#[tokio::test]
async fn api_tokens_authenticate_json_requests() {
    let mut app = TestApp::new(Config::default()).await;
    app.add_user("ann", "correct horse battery").await;
    let token = app
        .state
        .accounts
        .create_api_token("ann", "tests")
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token.expose());
    let page = app
        .get_with("/api/v1/me", &[("authorization", &bearer)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let me: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(me["username"], "ann");

    let page = app
        .get_with(
            "/api/v1/me",
            &[("authorization", &format!("Bearer {}", "f".repeat(64)))],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.headers.contains_key("www-authenticate"));
    let anonymous = app.get("/api/v1/me").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn static_files_are_served() {
    let mut app = TestApp::new(Config::default()).await;
    let css = app.get("/static/amphi.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(css.body.contains("--accent"));
    assert_eq!(css.headers["x-content-type-options"], "nosniff");
    let home = app.get("/").await;
    assert_eq!(home.headers["x-frame-options"], "SAMEORIGIN");
    assert_eq!(home.headers["referrer-policy"], "same-origin");
    assert_eq!(
        app.get("/static/../Cargo.toml").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn malformed_and_oversized_forms_get_a_sentence() {
    let mut app = TestApp::new(Config::default()).await;
    let token = app.get("/").await.csrf_token();
    let page = app.post_form("/language", &[("csrf_token", &token)]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body.contains("Ce formulaire était incomplet"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("missing field"),
        "no framework internals: {}",
        page.body
    );

    let huge = "x".repeat(300 * 1024);
    let page = app
        .post_form("/login", &[("csrf_token", &token), ("username", &huge)])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("trop volumineux"), "{}", page.body);

    let request = axum::http::Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!(
            "csrf_token={token}&username=%FF%FE&password=\u{0}%zz"
        )))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::UNAUTHORIZED);
}
