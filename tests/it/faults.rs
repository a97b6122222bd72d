//! Faults of what amphi stands on: its PostgreSQL server restarted under a running instance,
//! and the disk filling up during a video import. Each test says what users see, times the
//! recovery (printed as `recovery: …`, gathered in docs/RELIABILITY.md) and checks nothing was
//! lost.
//!
//! The PostgreSQL test runs its own server (Debian's PostgreSQL binaries, a fresh cluster in a
//! temporary folder) when `AMPHI_TEST_DATABASE_URL` is set, as in CI; the disk test mounts a
//! small tmpfs and runs as root only (CI runs as root).

use crate::support::{TestApp, serve_app};
use amphi::chat::room::Settings;
use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(60);

/// A PostgreSQL server of this test only, on its own port.
struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    /// Debian's newest PostgreSQL binaries.
    fn binaries() -> PathBuf {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (apt-get install postgresql)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("pg_ctl").exists())
            .collect();
        versions.sort();
        versions.pop().expect("a PostgreSQL version with pg_ctl")
    }

    /// Runs a server binary as the `postgres` user when this process is root (the server
    /// refuses to run as root).
    fn run(&self, program: &str, args: &[&str]) {
        let binary = self.bin.join(program);
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let mut command = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        let output = command
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self {
            bin: Self::binaries(),
            dir,
            port,
        };
        let data = server.data();
        server.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        server.pg_ctl("start");
        server
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("server.log").display().to_string();
        let mut args = vec!["-D", &data, "-w", "-t", "60", "-m", "fast"];
        if action == "start" {
            args.extend(["-l", &log, "-o", &options]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads chat events until one of `kind` matches `wanted`.
async fn until(socket: &mut Socket, kind: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            for line in text.lines() {
                let event: Value = serde_json::from_str(line).unwrap();
                if event["type"] == kind && wanted(&event) {
                    return event;
                }
            }
        }
        panic!("the chat socket ended before a {kind}");
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {kind} in time"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_holds_pages_back_briefly_and_loses_no_chat_message() {
    if std::env::var("AMPHI_TEST_DATABASE_URL").is_err() {
        eprintln!("skipped: set AMPHI_TEST_DATABASE_URL to run the PostgreSQL restart test");
        return;
    }
    amphi::install_crypto_provider();
    let server = OwnPostgres::start();
    let db = amphi::db::Db::connect(&server.url(), &amphi::db::Options::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let mut app = TestApp::with_db(amphi::config::Config::default(), db.clone()).await;
    let (_, api) = super::chat::offline_meeting();
    let live = "panne-postgresql";
    app.state
        .chat
        .open(
            live,
            Settings {
                anonymous: true,
                ..Settings::default()
            },
            db.clone(),
            super::chat::meeting_for(api, "offline"),
        )
        .await
        .unwrap();
    let addr = serve_app(app.state.clone()).await;
    let (mut viewer, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/{live}/chat"))
        .await
        .unwrap();
    until(&mut viewer, "history", |_| true).await;
    let say = |text: &str| {
        Message::text(json!({"type": "message", "text": text, "nickname": "Zoé"}).to_string())
    };
    viewer.send(say("avant")).await.unwrap();
    until(&mut viewer, "message", |e| e["message"]["text"] == "avant").await;
    assert_eq!(app.get("/lives").await.status, StatusCode::OK);

    // The server stops: pages that need the database answer 500 with amphi's error page,
    // readiness says why, and the chat goes on (its writes wait).
    server.pg_ctl("stop");
    let down = app.get("/lives").await;
    assert_eq!(
        down.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        down.body
    );
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
    );
    let sent = Instant::now();
    for text in ["pendant 1", "pendant 2"] {
        viewer.send(say(text)).await.unwrap();
    }
    until(&mut viewer, "message", |e| {
        e["message"]["text"] == "pendant 2"
    })
    .await;
    eprintln!(
        "recovery: two chat messages shown {:.2} s after they were sent with PostgreSQL down",
        sent.elapsed().as_secs_f64()
    );

    // It starts again: pages come back as soon as the pool reconnects, and the messages
    // written meanwhile are kept, in order, with the one after.
    server.pg_ctl("start");
    let back = Instant::now();
    loop {
        if app.get("/lives").await.status == StatusCode::OK {
            break;
        }
        assert!(back.elapsed() < PATIENCE, "pages did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "recovery: pages served again {:.2} s after PostgreSQL was back",
        back.elapsed().as_secs_f64()
    );
    // Another guest writes after it (one guest may write three messages in two seconds).
    let (mut other, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/{live}/chat"))
        .await
        .unwrap();
    until(&mut other, "history", |_| true).await;
    other.send(say("après")).await.unwrap();
    until(&mut viewer, "message", |e| e["message"]["text"] == "après").await;
    let deadline = Instant::now() + PATIENCE;
    let kept = loop {
        let kept: Vec<String> = db
            .chat_history(live, 50)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        if kept.len() >= 4 || Instant::now() > deadline {
            break kept;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "recovery: the messages of the outage kept {:.2} s after PostgreSQL was back",
        back.elapsed().as_secs_f64()
    );
    assert_eq!(kept, ["avant", "pendant 1", "pendant 2", "après"]);
    // Each is waiting for its delivery into the meeting (BBB is unreachable here).
    assert_eq!(db.chat_pending(live, 10).await.unwrap().len(), 4);
    db.close().await;
}

/// A tmpfs of `megabytes` mounted on `dir` while it lives (root only).
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, megabytes: u32) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir)
            .status()
            .ok()?;
        status.success().then(|| Self {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_import_with_its_reason_and_leaves_room_for_the_next() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        eprintln!("skipped: mounting a small disk needs root (CI runs as root)");
        return;
    }
    // The source: a 3 s video, and a 16 MiB file that cannot fit on amphi's 8 MiB disk.
    let files = tempfile::tempdir().unwrap();
    super::videos::sample(&files.path().join("short.mp4"), 3);
    std::fs::write(files.path().join("lecture.mp4"), vec![0u8; 16 << 20]).unwrap();
    let server = super::videos::sources(files.path()).await;
    let base = tempfile::tempdir().unwrap();
    let disk =
        SmallDisk::mount(&base.path().join("data"), 8).expect("mount -t tmpfs works for root");
    let mut config = super::videos::config("http://127.0.0.1:1");
    config.data_dir = disk.dir.clone();
    let mut app = TestApp::new(config).await;
    app.add_user("ada", "correct horse battery").await;
    app.login("ada", "correct horse battery").await;
    let worker = app.state.library.spawn();

    let page = super::videos::import(&mut app, &format!("{server}/lecture.mp4")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let id = super::videos::video_id(page.location());
    let done = super::videos::finished(&app, id).await;
    assert_eq!(done.video.state, "failed");
    let error = done.job.clone().unwrap().error;
    assert!(error.contains("No space left on device"), "{error}");
    let shown = app.get(&format!("/video/{id}/")).await;
    assert!(
        shown.body.contains("No space left on device"),
        "{}",
        shown.body
    );
    // Nothing of the download is left to keep the disk full.
    assert_eq!(walk(&disk.dir), Vec::<PathBuf>::new());

    // The next import fits and is made.
    let page = super::videos::import(&mut app, &format!("{server}/short.mp4")).await;
    let done = super::videos::finished(&app, super::videos::video_id(page.location())).await;
    assert_eq!(done.video.state, "ready", "{:?}", done.job);
    worker.abort();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
