//! Recovery: `amphi serve` is killed (SIGKILL) in the middle of a live, and started again on
//! the same database. The new process takes the live back (its instance name is stable), the
//! playlists go on under the same slug after a discontinuity, with higher segment numbers and
//! a new init segment, and the chat message written just before the kill is not lost: it is
//! in the history and reaches the meeting. (Delivery is at least once: a process killed
//! between BBB's answer and recording it would deliver that message again.)

use crate::support::{amphi_bin, amphi_with};
use amphi::redact::Redacted;
use amphi::sim::{self, SimOptions, scenario::Event};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "recovery-sim-secret";
const PATIENCE: Duration = Duration::from_secs(120);

/// An `amphi serve` process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `amphi serve`; returns once it listens.
async fn serve(config: &std::path::Path) -> Server {
    let mut child = Command::new(amphi_bin())
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening")
                && let Some(addr) = line.split("addr=").nth(1)
            {
                let _ = addr_tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = tokio::task::spawn_blocking(move || addr_rx.recv_timeout(PATIENCE))
        .await
        .unwrap()
        .expect("the server logs its address");
    Server { child, addr }
}

/// `(first media sequence number, discontinuity sequence, playlist)` of the 720p playlist once
/// it has at least `segments` whole segments.
async fn playlist_with(base: &str, slug: &str, segments: usize) -> (u64, u64, String) {
    let url = format!("{base}/live/{slug}/hls/720p/index.m3u8");
    let number = |playlist: &str, tag: &str| -> Option<u64> {
        playlist
            .lines()
            .find_map(|l| l.strip_prefix(tag))
            .and_then(|n| n.parse().ok())
    };
    tokio::time::timeout(PATIENCE, async {
        let mut next = None;
        loop {
            let url = match next {
                Some(msn) => format!("{url}?_HLS_msn={msn}"),
                None => url.clone(),
            };
            let Ok(answer) = reqwest::get(&url).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            if answer.status() != 200 {
                // Not captured yet: the capture starts within a few seconds.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let text = answer.text().await.unwrap();
            let first = number(&text, "#EXT-X-MEDIA-SEQUENCE:").unwrap();
            let count = text.lines().filter(|l| l.starts_with("#EXTINF")).count();
            if count >= segments {
                let dseq = number(&text, "#EXT-X-DISCONTINUITY-SEQUENCE:").unwrap();
                return (first, dseq, text);
            }
            // A blocking reload: answered when the segment being cut is complete.
            next = Some(first + count as u64);
        }
    })
    .await
    .expect("the playlist fills")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_resumes_its_live_without_losing_chat() {
    amphi::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let sim = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimOptions {
            secret: Redacted::new(SECRET.to_owned()),
            media_dir: Some(dir.path().join("sim")),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let config = dir.path().join("amphi.toml");
    let write_config = |listen: &str| {
        std::fs::write(
            &config,
            format!(
                r#"listen = "{listen}"
data_dir = "{data}"

[bbb]
api_url = "{api}"
secret = "{SECRET}"

[media]
udp_bind = "127.0.0.1:0"
preset = "ultrafast"
fps = 15

[webinar]
instance = "node-a"
"#,
                data = dir.path().join("data").display(),
                api = sim.api_url(),
            ),
        )
        .unwrap();
    };
    write_config("127.0.0.1:0");
    amphi_with(
        &config,
        &[
            "user",
            "add",
            "curie",
            "--password",
            "correct horse battery",
            "--superuser",
        ],
    );
    let token = amphi_with(&config, &["token", "create", "curie"])
        .trim()
        .to_owned();
    let first = serve(&config).await;
    let base = format!("http://{}", first.addr);
    let client = reqwest::Client::new();
    let api = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .header("authorization", format!("Token {token}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            assert!(status.is_success(), "{status}: {body}");
            body
        }
    };
    let meeting = api(
        reqwest::Method::POST,
        "/api/v1/meetings".to_owned(),
        Some(super::webinar::chemistry()),
    )
    .await;
    let (id, slug) = (
        meeting["id"].as_i64().unwrap(),
        meeting["meeting_id"].as_str().unwrap().to_owned(),
    );
    api(
        reqwest::Method::POST,
        format!("/api/v1/meetings/{id}/live/start"),
        None,
    )
    .await;
    for event in [
        Event::Join {
            name: "Prof. Curie".into(),
            role: "MODERATOR".into(),
            ext_id: None,
        },
        Event::Presenter {
            name: "Prof. Curie".into(),
        },
    ] {
        sim.state.apply_event(&slug, &event).unwrap();
    }
    let (first_msn, _, before) = playlist_with(&base, &slug, 3).await;
    let edge_before =
        first_msn + before.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;

    // A student writes; the room keeps the message before anyone sees it. Then the process dies.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/live/{slug}/chat", first.addr))
            .await
            .unwrap();
    socket
        .send(Message::text(
            json!({"type": "message", "text": "Question avant la panne", "nickname": "Zoé"})
                .to_string(),
        ))
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Text(text) = frame
                && text.contains("Question avant la panne")
            {
                return;
            }
        }
        panic!("the chat closed");
    })
    .await
    .expect("the message is accepted");
    let addr = first.addr.clone();
    drop(first); // SIGKILL
    let killed = std::time::Instant::now();

    // The same instance starts again on the same address and database.
    write_config(&addr);
    let second = serve(&config).await;
    assert_eq!(second.addr, addr);
    let listening = killed.elapsed();
    playlist_with(&base, &slug, 1).await;
    eprintln!(
        "recovery: amphi serve listening again {:.2} s after SIGKILL, the live's first new segment served {:.2} s after",
        listening.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    let (after_msn, dseq, after) = playlist_with(&base, &slug, 2).await;
    assert!(
        after_msn > edge_before,
        "the numbering goes on: {after_msn} after {edge_before}\n{after}"
    );
    assert!(dseq >= 1, "the break counts as a discontinuity: {after}");
    assert!(!after.contains("init-1.mp4"), "a new init segment: {after}");

    // The message is in the history, and reaches the meeting.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/{slug}/chat"))
        .await
        .unwrap();
    let history = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Text(text) = frame
                && text.contains("\"type\":\"history\"")
            {
                return text.to_string();
            }
        }
        panic!("the chat closed");
    })
    .await
    .unwrap();
    assert!(history.contains("Question avant la panne"), "{history}");
    let mut changes = sim.state.watch_changes();
    let delivered = |sim: &sim::Running| {
        sim.state
            .chat(&slug)
            .unwrap_or_default()
            .iter()
            .filter(|m| m.message == "Question avant la panne")
            .count()
    };
    tokio::time::timeout(PATIENCE, async {
        while delivered(&sim) == 0 {
            let _ = changes.recv().await;
        }
    })
    .await
    .expect("the message reaches the meeting");
    eprintln!(
        "recovery: the message written before the kill reached the meeting {:.2} s after SIGKILL",
        killed.elapsed().as_secs_f64()
    );
    drop(second);
}
