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

/// Whether this process runs as root (CI does): the disk tests mount, the PostgreSQL server
/// runs as `postgres`.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

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
        let root = is_root();
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
        let root = is_root();
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

    /// A pool on this server, with amphi's tables.
    async fn db(&self, options: &amphi::db::Options) -> amphi::db::Db {
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let db = amphi::db::Db::connect(&url, options).await.unwrap();
        db.migrate().await.unwrap();
        db
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
    let db = server.db(&amphi::db::Options::default()).await;
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

/// Waits for the simulator's delivery of webhook event `id` and checks amphi took it.
async fn webhook_taken(
    deliveries: &mut tokio::sync::broadcast::Receiver<amphi::sim::Delivery>,
    id: &str,
) {
    let delivery = tokio::time::timeout(PATIENCE, async {
        loop {
            let delivery = deliveries.recv().await.unwrap();
            if delivery.kind == amphi::sim::DeliveryKind::Webhook && delivery.subject == id {
                return delivery;
            }
        }
    })
    .await
    .expect("a webhook delivery");
    assert!(delivery.delivered, "{delivery:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_under_a_running_meeting_loses_no_journal_entry() {
    use amphi::bbb::callbacks::webhook_url;
    if std::env::var("AMPHI_TEST_DATABASE_URL").is_err() {
        eprintln!("skipped: set AMPHI_TEST_DATABASE_URL to run the PostgreSQL journal test");
        return;
    }
    amphi::install_crypto_provider();
    const SECRET: &str = "journal-fault-secret";
    let server = OwnPostgres::start();
    // A pool that gives up within a second, so that the outage below outlasts it.
    let options = amphi::db::Options {
        connect_timeout: Duration::from_secs(1),
        ..amphi::db::Options::default()
    };
    let db = server.db(&options).await;
    let sim = amphi::sim::start(
        "127.0.0.1:0".parse().unwrap(),
        amphi::sim::SimOptions {
            secret: amphi::redact::Redacted::new(SECRET.to_owned()),
            ..amphi::sim::SimOptions::default()
        },
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let data = tempfile::tempdir().unwrap();
    let mut config = amphi::config::Config {
        public_url: public_url.clone(),
        data_dir: data.path().to_owned(),
        ..amphi::config::Config::default()
    };
    config.bbb.api_url = sim.api_url();
    config.bbb.secret = amphi::redact::Redacted::new(SECRET.to_owned());
    let app = TestApp::with_db(config, db.clone()).await;
    let state = app.state.clone();
    let served = tokio::spawn(amphi::server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let api = app.state.bbb.clone().unwrap();
    amphi::bbb::webhooks::ensure_registered(api.as_ref(), &webhook_url(&public_url))
        .await
        .unwrap();
    let owner = app.add_user("curie", "correct horse battery").await;
    let now = chrono::Utc::now();
    let meeting = db
        .create_meeting(
            &amphi::db::MeetingFields {
                is_webinar: false,
                ..amphi::db::MeetingFields::webinar("Chimie organique", owner.id, now)
            },
            false,
            "",
            now,
        )
        .await
        .unwrap();
    let meeting = amphi::meetings::start::ensure_created(
        &db,
        api.as_ref(),
        &app.state.config,
        app.state.secret_key.expose(),
        &meeting,
        Some(owner.id),
        now,
    )
    .await
    .unwrap();
    let join = |name: &str| amphi::bbb::JoinParams {
        meeting_id: meeting.meeting_id.clone(),
        full_name: name.to_owned(),
        role: amphi::bbb::Role::Viewer,
        user_id: None,
        create_time: None,
        avatar_url: None,
        bot: false,
    };
    let mut deliveries = sim.state.subscribe_deliveries();
    let before = api.join_bot(&join("Avant la panne")).await.unwrap();
    super::meetings::wait_until("the first join in the journal", || {
        let db = db.clone();
        async move {
            match db.current_session(meeting.id).await.unwrap() {
                Some(session) => db.participants(session.id).await.unwrap().len() == 1,
                None => false,
            }
        }
    })
    .await;
    let session = db.current_session(meeting.id).await.unwrap().unwrap();

    // The server stops. Someone joins and someone leaves meanwhile: BBB's webhooks are taken
    // (amphi answers at once), the journal cannot write them yet.
    server.pg_ctl("stop");
    api.join_bot(&join("Pendant la panne")).await.unwrap();
    let left = reqwest::Client::new()
        .post(format!(
            "{}/sim/meetings/{}/users/{}/leave",
            sim.state.base_url, meeting.meeting_id, before.user_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 204);
    // The simulator sends in order: the leave's delivery comes after the join's.
    webhook_taken(&mut deliveries, "user-left").await;
    // A read made now fails when the pool gives up; the journal, which tried before it, has
    // failed too.
    assert!(db.participants(session.id).await.is_err());

    // It starts again: both changes reach the journal, in order.
    server.pg_ctl("start");
    let back = Instant::now();
    super::meetings::wait_until("the outage's journal entries", || {
        let db = db.clone();
        async move {
            let Ok(people) = db.participants(session.id).await else {
                return false;
            };
            people.len() == 2
                && people
                    .iter()
                    .any(|p| p.full_name == "Avant la panne" && p.left_at.is_some())
        }
    })
    .await;
    eprintln!(
        "recovery: the journal entries of the outage (a join, a leave) recorded {:.2} s after PostgreSQL was back",
        back.elapsed().as_secs_f64()
    );
    let people = db.participants(session.id).await.unwrap();
    let names: Vec<&str> = people.iter().map(|p| p.full_name.as_str()).collect();
    assert_eq!(names, ["Avant la panne", "Pendant la panne"]);
    assert!(people[1].left_at.is_none(), "{people:?}");
    served.abort();
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
    if !is_root() {
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

/// `seg-N.m4s` numbers in `dir`, sorted.
fn kept_segments(dir: &Path) -> Vec<u64> {
    let mut numbers: Vec<u64> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    name.strip_prefix("seg-")?
                        .strip_suffix(".m4s")?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    numbers.sort();
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_a_kept_live_spares_the_live_and_its_video_catches_up() {
    use super::webinar as w;
    if !is_root() {
        eprintln!("skipped: mounting a small disk needs root (CI runs as root)");
        return;
    }
    let db = crate::support::TestDb::sqlite().await;
    let w::Stack {
        mut app,
        sim,
        _media,
    } = w::stack(&db).await;
    // The kept videos' folder is a small disk of its own; the database is elsewhere.
    let videos = app.state.config.data_dir.join("videos");
    let _disk = SmallDisk::mount(&videos, 32).expect("mount -t tmpfs works for root");
    let (_, token) = w::teacher(&app, "curie").await;
    let (id, slug) = w::schedule(&mut app, &token).await;
    let meeting = w::created(&app, id).await;
    app.state
        .webinars
        .start(&meeting, chrono::Utc::now())
        .await
        .unwrap();
    w::presenter_arrives(&sim, &slug);
    w::segment_ready(&app, &slug, 1).await;
    let live = w::served(&app, &slug);
    let rendition = live.rendition("720p").unwrap();
    let kept_dir = || {
        std::fs::read_dir(&videos)
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with("live-"))
            .map(|e| e.path().join("720p"))
    };
    super::meetings::wait_until("the first kept segment", || {
        let found = kept_dir().is_some_and(|d| !kept_segments(&d).is_empty());
        async move { found }
    })
    .await;
    let dir = kept_dir().unwrap();

    // The disk fills up: the live goes on for its audience, four more segments.
    let ballast = videos.join("ballast");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![0u8; 1 << 20];
        while file.write_all(&chunk).is_ok() {}
    }
    let full_from = rendition.edge().unwrap().msn + 1;
    w::segment_ready(&app, &slug, full_from + 4).await;
    let written = kept_segments(&dir);
    assert!(
        written.last().is_some_and(|last| *last <= full_from),
        "nothing could be written while the disk was full: {written:?} (full from {full_from})"
    );

    // Room again: the video catches up with what is still in the live's window.
    std::fs::remove_file(&ballast).unwrap();
    let freed = Instant::now();
    super::meetings::wait_until("the segments of the full disk kept", || {
        let caught_up = kept_segments(&dir)
            .last()
            .is_some_and(|last| *last >= full_from + 4);
        async move { caught_up }
    })
    .await;
    eprintln!(
        "recovery: the kept video caught up with the 4 segments of the full disk {:.2} s after there was room again",
        freed.elapsed().as_secs_f64()
    );
    // Every file written is whole: the same bytes as the live's segment.
    for msn in kept_segments(&dir) {
        if let Some(parts) = rendition.segment(msn) {
            let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            let file = std::fs::read(dir.join(format!("seg-{msn}.m4s"))).unwrap();
            assert!(file == bytes, "seg-{msn}.m4s is whole");
        }
    }

    // The meeting ends: the video has every segment, without a break.
    sim.state
        .apply_event(&slug, &amphi::sim::scenario::Event::End)
        .unwrap();
    w::playlists_end(&live, PATIENCE).await;
    let video = w::kept_video(&app, &slug).await;
    let vod = std::fs::read_to_string(
        app.state
            .config
            .data_dir
            .join(&video.path)
            .join("720p/index.m3u8"),
    )
    .unwrap();
    let numbers: Vec<u64> = vod
        .lines()
        .filter_map(|l| l.strip_prefix("seg-")?.strip_suffix(".m4s")?.parse().ok())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1) && numbers.first() == Some(&0),
        "every segment from the first: {vod}"
    );
    assert!(!vod.contains("#EXT-X-DISCONTINUITY"), "{vod}");
    assert!(numbers.len() as u64 > full_from + 4, "{vod}");
}
