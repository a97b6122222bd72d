//! Secrets never reach the logs: the real binary runs with debug logs while a client logs in,
//! fails, and calls the API; the BBB secret, the session token and the API token must not appear.

use crate::support::amphi_bin;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const BBB_SECRET: &str = "Wq8bBBBsharedSECRETvalue0123456789abcdef";

#[tokio::test]
async fn secrets_do_not_reach_the_logs() {
    amphi::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amphi.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[log]\nfilter = \"debug\"\n[bbb]\napi_url = \"https://bbb.univ.example/bigbluebutton/api\"\nsecret = \"{BBB_SECRET}\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| crate::support::amphi_with(&config, args);
    run(&["user", "add", "ann", "--password", "correct horse battery"]);
    let api_token = run(&["token", "create", "ann"]).trim().to_owned();

    let mut child = Command::new(amphi_bin())
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = Arc::new(Mutex::new(String::new()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&logs);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening")
                && let Some(addr) = line.split("addr=").nth(1)
            {
                let _ = addr_tx.send(addr.trim().to_owned());
            }
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let addr = tokio::task::spawn_blocking(move || {
        addr_rx.recv_timeout(std::time::Duration::from_secs(120))
    })
    .await
    .unwrap()
    .expect("the server logs its address");
    let base = format!("http://{addr}");

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let html = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::support::csrf_in(&html);
    let failed = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "ann"),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let ok = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "ann"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let me = client
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    client.get(format!("{base}/nowhere")).send().await.unwrap();

    // BBB's callbacks, genuine and forged: their tokens and checksums stay out of the logs.
    let jwt = amphi::bbb::callbacks::sign_recording_ready(
        &amphi::bbb::callbacks::RecordingReady {
            meeting_id: "0042-physique".to_owned(),
            record_id: "abc-1764234000000".to_owned(),
        },
        BBB_SECRET.as_bytes(),
    );
    let forged_jwt = amphi::bbb::callbacks::sign_recording_ready(
        &amphi::bbb::callbacks::RecordingReady {
            meeting_id: "0042-physique".to_owned(),
            record_id: "abc-1764234000000".to_owned(),
        },
        b"guessed secret",
    );
    for token in [&jwt, &forged_jwt] {
        client
            .post(format!("{base}/bbb/callbacks/recording-ready"))
            .form(&[("signed_parameters", token.as_str())])
            .send()
            .await
            .unwrap();
    }
    let body = "domain=bbb.univ.example&event=%5B%5D&timestamp=1";
    let hook_url = amphi::bbb::callbacks::webhook_url("http://127.0.0.1:8080");
    let checksum = amphi::config::ChecksumAlgorithm::Sha1.hex_digest(&[
        hook_url.as_bytes(),
        body.as_bytes(),
        BBB_SECRET.as_bytes(),
    ]);
    let hook = client
        .post(format!("{base}/bbb/callbacks/hooks?checksum={checksum}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 200);
    let end_token = "0".repeat(64);
    let end = client
        .get(format!(
            "{base}/bbb/callbacks/end?token={end_token}&meetingID=0042-physique"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 403);

    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let logs = logs.lock().unwrap().clone();

    // The logs are real and detailed: the failed login, the configuration dump, the BBB URL.
    assert!(logs.contains("login failed"), "{logs}");
    assert!(logs.contains("configuration"), "{logs}");
    assert!(logs.contains("bbb.univ.example"), "{logs}");
    assert!(
        logs.contains("[redacted]"),
        "the configuration dump shows the secret as [redacted]: {logs}"
    );
    // And hold no secret.
    assert!(
        !logs.contains(BBB_SECRET),
        "the BBB secret leaked into the logs"
    );
    assert!(
        !logs.contains(&api_token),
        "the API token leaked into the logs"
    );
    assert!(!logs.contains(&csrf), "the CSRF token leaked into the logs");
    assert!(logs.contains("BBB callback refused"), "{logs}");
    for (what, secret) in [
        ("recording-ready token", jwt.as_str()),
        ("forged token", forged_jwt.as_str()),
        ("webhook checksum", checksum.as_str()),
        ("end-callback token", end_token.as_str()),
    ] {
        let signature = secret.rsplit('.').next().unwrap_or(secret);
        assert!(!logs.contains(signature), "the {what} leaked into the logs");
    }
    assert!(
        !logs.contains("correct horse battery"),
        "a password leaked into the logs"
    );
}
