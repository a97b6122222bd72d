//! The command line: help, users, tokens, migrations, and `amphi demo` end to end.

use crate::support::{TestDb, amphi_bin};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn amphi(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(amphi_bin());
    command
        .env("AMPHI_DATA_DIR", data_dir)
        .env_remove("AMPHI_DATABASE_URL")
        .env_remove("AMPHI_CONFIG");
    command
}

#[test]
fn every_subcommand_has_help() {
    let commands: &[&[&str]] = &[
        &["serve"],
        &["demo"],
        &["migrate"],
        &["user", "add"],
        &["user", "list"],
        &["user", "set-password"],
        &["user", "grant"],
        &["token", "create"],
        &["config", "print-default"],
        &["config", "check"],
        &["bbb", "check"],
        &["sim"],
    ];
    for args in commands {
        let output = Command::new(amphi_bin())
            .args(*args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: amphi"), "{args:?}: {text}");
    }
}

#[tokio::test]
async fn users_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = amphi(dir.path())
        .args([
            "user",
            "add",
            "ann",
            "--password",
            "correct horse",
            "--email",
            "ann@univ.example",
        ])
        .args([
            "--staff",
            "--affiliation",
            "faculty",
            "--group",
            "faculty",
            "--group",
            "l3-info",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("created user ann"));

    let output = amphi(dir.path())
        .args(["user", "add", "ann", "--password", "correct horse"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("user `ann` already exists"), "{stderr}");

    let output = amphi(dir.path())
        .args(["user", "add", "bob", "--password", "short"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 8 characters"));

    let output = amphi(dir.path()).args(["user", "list"]).output().unwrap();
    let listing = String::from_utf8_lossy(&output.stdout);
    let line = listing
        .lines()
        .find(|l| l.starts_with("ann "))
        .expect("ann listed");
    assert!(
        line.contains("ann@univ.example")
            && line.contains("faculty,l3-info")
            && line.contains("yes"),
        "{line}"
    );

    let output = amphi(dir.path())
        .args(["token", "create", "ann", "--label", "scripts"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);
    let output = amphi(dir.path())
        .args(["token", "create", "nobody"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("no user named `nobody`"));

    // The token authenticates ann against the same database.
    amphi::install_crypto_provider();
    let url = format!("sqlite://{}", dir.path().join("amphi.sqlite3").display());
    let db = amphi::db::Db::connect(&url, &Default::default())
        .await
        .unwrap();
    let accounts = amphi::accounts::Accounts::new(
        db,
        std::sync::Arc::new(amphi::clock::SystemClock),
        Default::default(),
    );
    assert_eq!(
        accounts.api_user(&token).await.unwrap().unwrap().username,
        "ann"
    );

    let mut child = amphi(dir.path())
        .args(["user", "set-password", "ann", "--password", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a new long password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let (user, _) = accounts
        .login("ann", "a new long password".to_owned().into(), "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(user.username, "ann");
}

#[tokio::test]
async fn migrate_on_postgres_and_unreachable_database() {
    if let Some(test_db) = TestDb::postgres().await {
        // A fresh schema of our own, passed in the URL as a libpq option; the binary migrates
        // it again and finds nothing to do.
        let schema = test_db.schema.clone().unwrap();
        let base = std::env::var("AMPHI_TEST_DATABASE_URL").unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let output = Command::new(amphi_bin())
            .arg("migrate")
            .env("AMPHI_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("PostgreSQL database is up to date")
        );
        let output = Command::new(amphi_bin())
            .args(["user", "add", "pg-user", "--password", "correct horse"])
            .env("AMPHI_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            test_db
                .db
                .user_by_username("pg-user")
                .await
                .unwrap()
                .is_some(),
            "the user landed in our schema"
        );
        test_db.cleanup().await;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = amphi(dir.path()).arg("migrate").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("SQLite database is up to date"));

    let output = Command::new(amphi_bin())
        .arg("migrate")
        .env(
            "AMPHI_DATABASE_URL",
            "postgres://amphi:pw-not-shown@127.0.0.1:1/amphi",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: cannot connect to the database at postgres://amphi:***@127.0.0.1:1/amphi"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-not-shown"));
}

/// `amphi demo` prints a URL and a login that work.
#[tokio::test]
async fn demo_serves_the_login_page_with_the_printed_account() {
    amphi::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(amphi_bin())
        .args(["demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    // Read stdout to the end, as a terminal would, so the demo never writes to a closed pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let (bbb, url, login) = tokio::task::spawn_blocking(move || {
        let mut url = None;
        let mut bbb = None;
        while let Ok(line) = lines_rx.recv() {
            if let Some(u) = line.strip_prefix("BBB simulator: ") {
                bbb = Some(u.to_owned());
            }
            if let Some(u) = line.strip_prefix("URL: ") {
                url = Some(u.to_owned());
            }
            if let Some(l) = line.strip_prefix("Login: ") {
                return (
                    bbb.expect("simulator before login"),
                    url.expect("URL before login"),
                    l.to_owned(),
                );
            }
        }
        panic!("demo exited without printing its login");
    })
    .await
    .unwrap();
    let root = reqwest::get(&bbb).await.unwrap().text().await.unwrap();
    assert!(
        root.contains("<bbbVersion>"),
        "the demo's simulator answers: {root}"
    );
    let (user, password) = login.split_once(" / ").expect("user / password");

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let page = client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let token = crate::support::csrf_in(&html);
    let account = client
        .post(&url)
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", user),
            ("password", password),
            ("next", "/account"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);
    assert!(account.url().path().ends_with("/account"));
    let body = account.text().await.unwrap();
    assert!(
        body.contains("<dd id=\"account-username\">demo</dd>"),
        "{body}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
