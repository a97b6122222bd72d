//! The meeting pages as people see them: rendered by the app (French and English, a running
//! meeting, a form with mistakes) and photographed by headless Chromium into
//! `target/screenshots/`. Run alone with `cargo nextest run screenshots` to look at them.

use crate::support::TestApp;
use amphi::config::Config;
use amphi::redact::Redacted;
use amphi::sim::{self, SimOptions};
use axum::http::StatusCode;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Photographs an HTML page with the project's stylesheet.
async fn photograph(html: &str, name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let css = root.join("web/static/amphi.css");
    let page = html.replace("/static/amphi.css", &format!("file://{}", css.display()));
    let html_path = dir.join(format!("{name}.html"));
    std::fs::write(&html_path, page).unwrap();
    let png = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new("chromium");
    command
        .args(crate::browser::HEADLESS)
        .args(["--hide-scrollbars", "--window-size=1100,1500"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html_path.display()))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("chromium finishes")
        .expect("chromium runs (apt-get install chromium; scripts/install-deps.sh does)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "{name}.png is {size} bytes");
    png
}

#[tokio::test]
async fn meeting_pages_photographed_in_both_languages() {
    amphi::install_crypto_provider();
    let sim = sim::start("127.0.0.1:0".parse().unwrap(), SimOptions::default())
        .await
        .unwrap();
    let mut config = Config::default();
    config.bbb.api_url = sim.api_url();
    config.bbb.secret = Redacted::new(SimOptions::default().secret.expose().clone());
    let mut ann = TestApp::new(config).await;
    ann.add_user("ann", "correct horse battery").await;
    ann.login("ann", "correct horse battery").await;
    let form = ann.get("/meeting/add").await;
    let token = form.csrf_token();
    let created = ann
        .post_form(
            "/meeting/add",
            &[
                ("csrf_token", &token),
                ("name", "Physique quantique — L3"),
                ("attendee_password", "quanta42"),
                ("start", "2026-12-07"),
                ("start_time", "14:00"),
                ("expected_duration", "2"),
                ("recurrence", "weekly"),
                ("weekdays", "0"),
                ("nb_occurrences", "12"),
                ("is_restricted", "on"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let list = ann.get("/meeting/").await;
    let link = list
        .body
        .split("href=\"/meeting/edit/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    // Start one so the list shows a running meeting.
    let started = ann.get(&format!("/meeting/{link}/")).await;
    reqwest::get(started.location().unwrap()).await.unwrap();

    for lang in ["fr", "en"] {
        let header = [("accept-language", lang)];
        ann.forget_cookies();
        ann.login("ann", "correct horse battery").await;
        let list = ann.get_with("/meeting/", &header).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(list.body.contains(&format!("<html lang=\"{lang}\"")));
        photograph(&list.body, &format!("meetings-list-{lang}")).await;
        let form = ann.get_with("/meeting/add", &header).await;
        photograph(&form.body, &format!("meeting-form-{lang}")).await;
    }
    let form = ann.get("/meeting/add").await;
    let token = form.csrf_token();
    let wrong = ann
        .post_form(
            "/meeting/add",
            &[
                ("csrf_token", &token),
                ("name", "x"),
                ("start", "2026-02-30"),
                ("start_time", "14:00"),
                ("expected_duration", "9"),
                ("recurrence", "daily"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    photograph(&wrong.body, "meeting-form-errors").await;
}
