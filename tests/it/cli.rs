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

/// `amphi demo --duration N` is the whole product: it prints the live page, two logins and the
/// simulator's API; the live page is served and its playlists advance; both accounts log in;
/// when the simulated meeting ends the playlists end, and amphi exits by itself with status 0.
#[tokio::test]
async fn demo_runs_a_webinar_and_ends_it_after_its_duration() {
    amphi::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo(Some(
        Command::new(amphi_bin())
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--duration",
                "25",
                "--data",
            ])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("demo.log")).unwrap())
            .spawn()
            .unwrap(),
    ));
    // The demo's own account of what happened, for a failure's message.
    let log = dir.path().join("demo.log");
    let log_tail = move || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    let stdout = demo.0.as_mut().unwrap().stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    // Read stdout to the end, as a terminal would, so the demo never writes to a closed pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let printed = tokio::task::spawn_blocking(move || {
        let mut printed = std::collections::HashMap::new();
        while let Ok(line) = lines_rx.recv() {
            if let Some((key, value)) = line.split_once(": ") {
                printed.insert(key.to_owned(), value.to_owned());
            }
            if printed.contains_key("bbb simulator") {
                return printed;
            }
        }
        panic!("the demo exited without printing its addresses: {printed:?}");
    })
    .await
    .unwrap();
    let root = reqwest::get(&printed["bbb simulator"])
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        root.contains("<bbbVersion>"),
        "the demo's simulator answers: {root}"
    );

    // The live page, and its playlists advancing.
    let page_url = &printed["live page"];
    let page = reqwest::get(page_url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("master.m3u8"));
    let playlist_url = format!("{page_url}/hls/720p/index.m3u8");
    let edge = |playlist: &str| -> Option<u64> {
        let first: u64 = playlist
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
            .parse()
            .ok()?;
        let count = playlist
            .lines()
            .filter(|l| l.starts_with("#EXTINF"))
            .count() as u64;
        (count > 0).then(|| first + count)
    };
    let mut seen = Vec::new();
    let advanced = tokio::time::timeout(std::time::Duration::from_secs(90), async {
        loop {
            // A blocking reload: answered when the next segment is there.
            let next = seen.last().map_or(0, |e| *e);
            let url = format!("{playlist_url}?_HLS_msn={next}");
            let playlist = reqwest::get(&url).await.unwrap().text().await.unwrap();
            if let Some(e) = edge(&playlist) {
                if seen.last() != Some(&e) {
                    seen.push(e);
                }
                if seen.len() >= 3 {
                    return playlist;
                }
            }
        }
    })
    .await
    .expect("the demo's playlists advance");
    assert!(!advanced.contains("#EXT-X-ENDLIST"), "{advanced}");

    // Both accounts log in.
    let login_url = page_url.split("/live/").next().unwrap().to_owned() + "/login";
    for (who, username) in [("owner", "demo"), ("student", "student")] {
        let (user, password) = printed[who].split_once(' ').expect("user password");
        assert_eq!(user, username);
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let html = client
            .get(&login_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let token = crate::support::csrf_in(&html);
        let account = client
            .post(&login_url)
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", user),
                ("password", password),
                ("next", "/account"),
            ])
            .send()
            .await
            .unwrap();
        assert!(account.url().path().ends_with("/account"), "{who}");
        let body = account.text().await.unwrap();
        assert!(
            body.contains(&format!("<dd id=\"account-username\">{username}</dd>")),
            "{body}"
        );
    }

    // After its duration the meeting ends: the playlists end while amphi still serves.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(90), async {
        loop {
            let next = edge_of_last(&seen);
            let url = format!("{playlist_url}?_HLS_msn={next}");
            match reqwest::get(&url).await {
                Ok(answer) => {
                    let playlist = answer.text().await.unwrap();
                    if playlist.contains("#EXT-X-ENDLIST") {
                        return playlist;
                    }
                    if let Some(e) = edge(&playlist) {
                        seen.push(e);
                    }
                }
                Err(e) => panic!(
                    "amphi stopped serving before the playlists ended: {e:?}\n{}",
                    log_tail()
                ),
            }
        }
    })
    .await
    .expect("the playlists end after the demo's duration");
    assert!(ended.contains("#EXT-X-ENDLIST"));
    let mut child = demo.0.take().unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(
        status.success(),
        "the demo exits by itself with 0: {status}"
    );
}

/// The demo's process, killed if the test fails before it exits.
struct Demo(Option<std::process::Child>);

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn edge_of_last(seen: &[u64]) -> u64 {
    seen.last().copied().unwrap_or(0)
}
