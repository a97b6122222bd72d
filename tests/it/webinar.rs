//! Webinar mode end to end, with the BBB simulator: a webinar scheduled through the API and
//! started by its owner goes live (the playlists advance over HTTP), an audience message
//! reaches the meeting's public chat, and when the meeting ends the playlists get
//! `EXT-X-ENDLIST` and the live is marked stopped within 5 s.

pub(crate) use super::meetings_api::call;
use crate::support::{TestApp, TestDb, serve_app};
use amphi::config::{ChecksumAlgorithm, Config};
use amphi::db::LiveState;
use amphi::redact::Redacted;
use amphi::sim::{self, SimOptions, scenario::Event};
use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "webinar-sim-secret";
const PATIENCE: Duration = Duration::from_secs(90);

/// amphi on SQLite driving a simulator, with a light ladder for a loaded test machine.
pub(crate) struct Stack {
    pub(crate) app: TestApp,
    pub(crate) sim: sim::Running,
    pub(crate) _media: tempfile::TempDir,
}

pub(crate) async fn stack(db: &TestDb) -> Stack {
    amphi::install_crypto_provider();
    let media = tempfile::tempdir().unwrap();
    let sim = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimOptions {
            secret: Redacted::new(SECRET.to_owned()),
            media_dir: Some(media.path().to_owned()),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    // Kept videos go to the test's own folder, never /var/lib/amphi.
    let mut config = Config {
        data_dir: media.path().join("data"),
        ..Config::default()
    };
    config.bbb.api_url = sim.api_url();
    config.bbb.secret = Redacted::new(SECRET.to_owned());
    config.bbb.checksum = ChecksumAlgorithm::Sha256;
    config.media.udp_bind = "127.0.0.1:0".to_owned();
    config.media.preset = "ultrafast".to_owned();
    config.media.fps = 15;
    let app = TestApp::with_db(config, db.db.clone()).await;
    Stack {
        app,
        sim,
        _media: media,
    }
}

/// A user who may make webinars, with an API token.
pub(crate) async fn teacher(app: &TestApp, username: &str) -> (amphi::db::User, String) {
    let user = app
        .state
        .accounts
        .create_user(&amphi::accounts::UserSpec {
            username: username.to_owned(),
            password: Some(Redacted::new("correct horse battery".to_owned())),
            email: format!("{username}@univ.example"),
            display_name: "Prof. Curie".to_owned(),
            staff: true,
            affiliation: "faculty".to_owned(),
            // Access group "faculty": webinar.affiliations lets it make webinars.
            groups: vec!["faculty".to_owned()],
            ..Default::default()
        })
        .await
        .unwrap();
    let token = app
        .state
        .accounts
        .create_api_token(username, "tests")
        .await
        .unwrap()
        .expose()
        .clone();
    (user, token)
}

/// The API body of the tests' webinar: anyone may chat with a nickname, kept as a video.
pub(crate) fn chemistry() -> Value {
    json!({
        "name": "Amphi de chimie",
        "attendee_password": "chimie42",
        "start": "2026-12-07",
        "start_time": "14:00",
        "expected_duration": 2,
        "is_webinar": true,
        "enable_chat": true,
        "webinar_anonymous_chat": true,
        "webinar_layout": "presentation-pip",
        "webinar_keep_video": true,
    })
}

/// The BBB meeting of webinar `id`, created as its owner's start creates it (without starting
/// the live).
pub(crate) async fn created(app: &TestApp, id: i64) -> amphi::db::Meeting {
    let meeting = app.state.db.meeting(id).await.unwrap().unwrap();
    amphi::meetings::start::ensure_created(
        &app.state.db,
        app.state.bbb.as_deref().unwrap(),
        &app.state.config,
        app.state.secret_key.expose(),
        &meeting,
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap()
}

/// Schedules [`chemistry`] through the API; returns its id and slug.
pub(crate) async fn schedule(app: &mut TestApp, token: &str) -> (i64, String) {
    let (status, body) = call(app, "POST", "/api/v1/meetings", token, Some(chemistry())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["is_webinar"], true, "{body}");
    assert_eq!(body["webinar_anonymous_chat"], true, "{body}");
    let slug = body["meeting_id"].as_str().unwrap().to_owned();
    assert!(
        body["live_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/live/{slug}")),
        "{body}"
    );
    (body["id"].as_i64().unwrap(), slug)
}

/// The presenter of the simulated meeting: joins, presents, shares a camera.
pub(crate) fn presenter_arrives(sim: &sim::Running, meeting_id: &str) {
    for event in [
        Event::Join {
            name: "Prof. Curie".into(),
            role: "MODERATOR".into(),
            ext_id: None,
        },
        Event::Presenter {
            name: "Prof. Curie".into(),
        },
        Event::CameraOn {
            name: "Prof. Curie".into(),
        },
    ] {
        sim.state.apply_event(meeting_id, &event).unwrap();
    }
}

/// The media sequence and segment count of a media playlist fetched over HTTP.
pub(crate) async fn playlist(addr: std::net::SocketAddr, slug: &str) -> String {
    reqwest::get(format!("http://{addr}/live/{slug}/hls/720p/index.m3u8"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn media_sequence(playlist: &str) -> u64 {
    playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no media sequence in {playlist}"))
}

fn segments(playlist: &str) -> usize {
    playlist
        .lines()
        .filter(|l| l.starts_with("#EXTINF"))
        .count()
}

/// Waits until segment `msn` of the 720p rendition is complete.
pub(crate) async fn segment_ready(app: &TestApp, slug: &str, msn: u64) {
    let live = tokio::time::timeout(PATIENCE, async {
        loop {
            if let amphi::hls::Lookup::Live(live) = app.state.lives.lookup(slug) {
                return live;
            }
            // The capture starts within a scan (two seconds) or a lease.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the live is served");
    let rendition = live.rendition("720p").unwrap();
    // One segment at a time: a wait more than two segments past the edge is refused.
    let from = rendition.edge().map_or(0, |p| p.msn);
    for next in from..=msn {
        assert_eq!(
            rendition.wait_for_segment(next, PATIENCE).await,
            amphi::hls::Wait::Ready,
            "segment {next} of {slug}"
        );
    }
}

/// The live `app` serves under `slug`.
pub(crate) fn served(app: &TestApp, slug: &str) -> std::sync::Arc<amphi::hls::Live> {
    match app.state.lives.lookup(slug) {
        amphi::hls::Lookup::Live(live) => live,
        _ => panic!("{slug} is not served"),
    }
}

/// Waits until the live's playlists end (`EXT-X-ENDLIST`), within `patience`.
pub(crate) async fn playlists_end(live: &amphi::hls::Live, patience: Duration) {
    let rendition = live.rendition("720p").unwrap();
    tokio::time::timeout(patience, async {
        while !rendition.is_ended() {
            // Answered when the segment after the edge completes, or when the live ends.
            let next = rendition.edge().map_or(0, |p| p.msn + 1);
            rendition.wait_for_segment(next, PATIENCE).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the playlists of {} did not end in {patience:?}", live.slug));
}

/// The video a kept live becomes once it ended.
pub(crate) async fn kept_video(app: &TestApp, slug: &str) -> amphi::db::Video {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(video) = app.state.db.videos_from("live", slug).await.unwrap().pop() {
                return video;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the live is registered as a video")
}

/// Waits until the live is recorded as stopped, within `patience`; returns it.
async fn stopped(app: &TestApp, slug: &str, patience: Duration) -> amphi::db::StoredLive {
    tokio::time::timeout(patience, async {
        loop {
            let stored = app.state.db.live_by_slug(slug).await.unwrap().unwrap();
            if stored.state == LiveState::Stopped {
                return stored;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{slug} was not marked stopped in {patience:?}"))
}

/// `POST /api/v1/meetings` as `token`.
async fn create(app: &mut TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    call(app, "POST", "/api/v1/meetings", token, Some(body)).await
}

/// `POST /api/v1/meetings/{id}/live/{action}` as `token`; the answer must be 200.
async fn live_action(app: &mut TestApp, token: &str, id: i64, action: &str) -> Value {
    let path = format!("/api/v1/meetings/{id}/live/{action}");
    let (status, body) = call(app, "POST", &path, token, None).await;
    assert_eq!(status, StatusCode::OK, "{action}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webinar_scheduled_through_the_api_goes_live_and_stops_with_the_meeting() {
    let db = TestDb::sqlite().await;
    let Stack {
        mut app,
        sim,
        _media,
    } = stack(&db).await;
    let (_, token) = teacher(&app, "curie").await;
    let (id, slug) = schedule(&mut app, &token).await;
    let addr = serve_app(app.state.clone()).await;

    // Before the start: the live exists and has not started.
    let stored = app.state.db.live_by_slug(&slug).await.unwrap().unwrap();
    assert_eq!(stored.state, LiveState::NotStarted);

    // The owner starts the meeting: BBB creates it and the live starts.
    let (status, body) = call(
        &mut app,
        "POST",
        &format!("/api/v1/meetings/{id}/join"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "MODERATOR");
    let stored = app.state.db.live_by_slug(&slug).await.unwrap().unwrap();
    assert_eq!(stored.state, LiveState::InProgress);
    assert_eq!(
        stored.lease_holder.as_deref(),
        Some(app.state.webinars.instance())
    );
    presenter_arrives(&sim, &slug);

    // The playlists advance.
    segment_ready(&app, &slug, 2).await;
    let first = playlist(addr, &slug).await;
    assert!(first.contains("#EXT-X-PART"), "{first}");
    segment_ready(&app, &slug, 5).await;
    let later = playlist(addr, &slug).await;
    assert!(
        media_sequence(&later) + segments(&later) as u64
            > media_sequence(&first) + segments(&first) as u64,
        "the playlist advanced: {first}\n---\n{later}"
    );
    assert!(!later.contains("#EXT-X-ENDLIST"));

    // A student with a nickname writes; the meeting's public chat receives it.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/{slug}/chat"))
        .await
        .unwrap();
    let mut changes = sim.state.watch_changes();
    socket
        .send(Message::text(
            json!({"type": "message", "text": "Bonjour, on vous entend bien", "nickname": "Zoé"})
                .to_string(),
        ))
        .await
        .unwrap();
    let in_meeting =
        |sim: &sim::Running| {
            sim.state.chat(&slug).unwrap_or_default().iter().any(|m| {
                m.sender_name == "Zoé (live)" && m.message == "Bonjour, on vous entend bien"
            })
        };
    tokio::time::timeout(PATIENCE, async {
        while !in_meeting(&sim) {
            let _ = changes.recv().await;
        }
    })
    .await
    .expect("the audience's message reaches the meeting");

    // The meeting ends in BBB: within 5 s the playlists end and the live is stopped.
    let ended_at = std::time::Instant::now();
    sim.state.apply_event(&slug, &Event::End).unwrap();
    let within = Duration::from_secs(5);
    playlists_end(&served(&app, &slug), within).await;
    let stopped = stopped(&app, &slug, within.saturating_sub(ended_at.elapsed())).await;
    assert!(!stopped.wanted);
    assert!(stopped.ended_at.is_some());
    assert_eq!(stopped.lease_holder, None);
    let last = playlist(addr, &slug).await;
    assert!(last.contains("#EXT-X-ENDLIST"), "{last}");

    // The owner asked to keep it: the live is a video now, whose every segment decodes.
    let video = kept_video(&app, &slug).await;
    assert_eq!(video.title, "Amphi de chimie");
    assert_eq!(video.state, "ready");
    assert!(video.duration_ms >= 4000, "{video:?}");
    let dir = app.state.config.data_dir.join(&video.path);
    let vod = std::fs::read_to_string(dir.join("720p/index.m3u8")).unwrap();
    assert!(
        vod.contains("#EXT-X-PLAYLIST-TYPE:VOD") && vod.ends_with("#EXT-X-ENDLIST\n"),
        "{vod}"
    );
    assert!(
        std::fs::read_to_string(dir.join("master.m3u8"))
            .unwrap()
            .contains("720p/index.m3u8")
    );
    let kept: Vec<&str> = vod.lines().filter(|l| l.starts_with("seg-")).collect();
    assert!(kept.len() >= 4, "{vod}");
    let first = kept[0].trim_start_matches("seg-").trim_end_matches(".m4s");
    assert_eq!(first, "0", "kept from the first segment: {vod}");
    let mut file = std::fs::read(dir.join("720p/init-1.mp4")).unwrap();
    file.extend(std::fs::read(dir.join("720p").join(kept[1])).unwrap());
    let pictures = crate::support::media::decode_bytes(
        &file,
        "qtdemux ! h264parse ! avdec_h264 ! appsink name=out sync=false",
    );
    assert!(
        pictures.len() >= 15,
        "a second of pictures: {}",
        pictures.len()
    );
    // The chat says so and refuses writing.
    let mut ended = false;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(PATIENCE, socket.next()).await {
        if let Message::Text(text) = frame
            && text.contains("\"status\":\"ended\"")
        {
            ended = true;
            break;
        }
    }
    assert!(ended, "the chat announces the end");
}

/// Reads chat events until one matches.
async fn chat_until(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                for line in text.lines() {
                    let event: Value = serde_json::from_str(line).unwrap();
                    if wanted(&event) {
                        return event;
                    }
                    seen.push(event);
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the chat ended ({other:?}); seen {seen:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_starts_restarts_hides_the_chat_and_ends_the_webinar() {
    let db = TestDb::sqlite().await;
    let Stack {
        mut app,
        sim,
        _media,
    } = stack(&db).await;
    let (_, token) = teacher(&app, "curie").await;
    let (id, slug) = schedule(&mut app, &token).await;
    let addr = serve_app(app.state.clone()).await;

    // Before the start: listed as coming up, its page waits.
    let lives = reqwest::get(format!("http://{addr}/lives"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let upcoming = &lives[lives.find("lives-upcoming").unwrap()..];
    assert!(upcoming.contains(&format!("/live/{slug}")), "{lives}");
    // The planned load: this webinar alone, of the two lives an instance captures by default.
    assert!(
        upcoming.contains("1 directs simultanés sur 2") || upcoming.contains("1 of 2"),
        "{lives}"
    );
    let page = reqwest::get(format!("http://{addr}/live/{slug}"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-status=\"waiting\"")
    );

    // Someone who does not own it cannot start it.
    let (_, stranger) = teacher(&app, "stranger").await;
    let (status, _) = call(
        &mut app,
        "POST",
        &format!("/api/v1/meetings/{id}/live/start"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // "Start the live" creates the meeting and starts the capture.
    let body = live_action(&mut app, &token, id, "start").await;
    assert_eq!(body["state"], "in_progress");
    assert_eq!(body["status"], 1);
    presenter_arrives(&sim, &slug);
    segment_ready(&app, &slug, 2).await;
    let lives = reqwest::get(format!("http://{addr}/lives"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let current =
        &lives[lives.find("lives-current").unwrap()..lives.find("lives-upcoming").unwrap()];
    assert!(current.contains(&format!("/live/{slug}")), "{lives}");

    // Hiding the chat turns it off for the audience, live.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/{slug}/chat"))
        .await
        .unwrap();
    chat_until(&mut socket, |e| e["type"] == "history").await;
    let body = live_action(&mut app, &token, id, "hide_chat").await;
    assert_eq!(body["show_chat"], false);
    chat_until(&mut socket, |e| {
        e["type"] == "mode" && e["mode"]["enabled"] == false
    })
    .await;
    socket
        .send(Message::text(
            json!({"type": "message", "text": "hello?", "nickname": "Léo"}).to_string(),
        ))
        .await
        .unwrap();
    let refused = chat_until(&mut socket, |e| e["type"] == "error").await;
    assert_eq!(refused["code"], "chat_off", "{refused}");

    // Restarting the live starts the capture again: the playlists go on after a discontinuity.
    live_action(&mut app, &token, id, "restart").await;
    let live = served(&app, &slug);
    let rendition = live.rendition("720p").unwrap();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let (_, discontinuities, generation) = rendition.progress();
            if discontinuities >= 1 && generation >= 2 {
                return;
            }
            let next = rendition.edge().map_or(0, |p| p.msn + 1);
            rendition.wait_for_segment(next, PATIENCE).await;
        }
    })
    .await
    .expect("the restarted capture publishes after a discontinuity");
    let after = playlist(addr, &slug).await;
    assert!(after.contains("init-2.mp4"), "{after}");
    let stored = app.state.db.live_by_slug(&slug).await.unwrap().unwrap();
    assert_eq!(stored.state, LiveState::InProgress);

    // "End the webinar" ends the BBB meeting and the live.
    live_action(&mut app, &token, id, "end").await;
    playlists_end(&live, PATIENCE).await;
    let ended = stopped(&app, &slug, PATIENCE).await;
    assert!(
        ended.restarts == 0,
        "a restart asked for is not a failure: {ended:?}"
    );
    let running = sim.state.meetings().iter().any(|m| m.meeting_id == slug);
    assert!(!running, "the BBB meeting ended too");
    let page = reqwest::get(format!("http://{addr}/live/{slug}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-status=\"ended\""), "{page}");
}

/// A second instance of the stack on the same database and simulator.
async fn instance(db: &TestDb, sim: &sim::Running, name: &str) -> TestApp {
    let mut config = Config::default();
    config.bbb.api_url = sim.api_url();
    config.bbb.secret = Redacted::new(SECRET.to_owned());
    config.media.udp_bind = "127.0.0.1:0".to_owned();
    config.media.preset = "ultrafast".to_owned();
    config.media.fps = 15;
    config.webinar.instance = name.to_owned();
    config.webinar.lease_seconds = 3;
    TestApp::with_db(config, db.db.clone()).await
}

/// Waits until `app` has looked for lives to capture `count` more times.
async fn scans(app: &TestApp, count: u64) {
    let mut scans = app.state.webinars.scans();
    let from = *scans.borrow_and_update();
    tokio::time::timeout(PATIENCE, scans.wait_for(|n| *n >= from + count))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgresql_capture_a_live_exactly_once_and_take_it_over() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: set AMPHI_TEST_DATABASE_URL to run the two-instance capture test");
        return;
    };
    let Stack {
        mut app,
        sim,
        _media,
    } = stack(&db).await;
    let a = instance(&db, &sim, "instance-a").await;
    let b = instance(&db, &sim, "instance-b").await;
    let (_, token) = teacher(&app, "curie").await;
    let (id, slug) = schedule(&mut app, &token).await;
    let a_loop = a.state.webinars.spawn(a.state.events.subscribe());
    let b_loop = b.state.webinars.spawn(b.state.events.subscribe());

    // The owner starts it on instance A: A captures; B, looking all the while, does not.
    let meeting = created(&a, id).await;
    a.state
        .webinars
        .start(&meeting, chrono::Utc::now())
        .await
        .unwrap();
    presenter_arrives(&sim, &slug);
    segment_ready(&a, &slug, 2).await;
    scans(&b, 3).await;
    scans(&a, 1).await;
    assert_eq!(a.state.webinars.capturing(), [id]);
    assert!(b.state.webinars.capturing().is_empty());
    assert!(matches!(
        b.state.lives.lookup(&slug),
        amphi::hls::Lookup::Unknown
    ));
    let stored = db.db.live_by_slug(&slug).await.unwrap().unwrap();
    assert_eq!(stored.lease_holder.as_deref(), Some("instance-a"));
    let a_live = served(&a, &slug);

    // A dies (its captures stop without giving the lease up): B takes the live over once the
    // lease expires, and goes on with the numbering.
    a_loop.abort();
    a.state.webinars.abandon();
    let died = std::time::Instant::now();
    let (a_next, _, _) = a_live.progress();
    segment_ready(&b, &slug, 0).await;
    eprintln!(
        "recovery: the other instance served the live's first segment {:.2} s after the capturing one died (lease {} s)",
        died.elapsed().as_secs_f64(),
        b.state.config.webinar.lease_seconds
    );
    assert_eq!(b.state.webinars.capturing(), [id]);
    let stored = db.db.live_by_slug(&slug).await.unwrap().unwrap();
    assert_eq!(stored.lease_holder.as_deref(), Some("instance-b"));
    assert_eq!(stored.state, LiveState::InProgress);
    let b_live = served(&b, &slug);
    let first = b_live.rendition("720p").unwrap().edge().unwrap().msn;
    assert!(first >= a_next, "B numbers after A: {first} after {a_next}");
    b_loop.abort();
    b.state.webinars.abandon();
}

#[tokio::test]
async fn a_webinar_beyond_the_capacity_is_refused_and_the_admins_are_told() {
    let mut sink = super::invitations::sink().await;
    let mut config = Config::default();
    config.mail.smtp_url = Redacted::new(format!("smtp://127.0.0.1:{}", sink.port));
    config.mail.from = "amphi <noreply@univ.example>".to_owned();
    config.site.admins = vec!["admin@univ.example".to_owned()];
    config.webinar.max_lives = 1;
    let mut app = TestApp::new(config).await;
    let (_, token) = teacher(&app, "curie").await;
    let webinar = |name: &str, time: &str, is_webinar: bool| {
        json!({
            "name": name,
            "attendee_password": "chimie42",
            "start": "2026-12-07",
            "start_time": time,
            "expected_duration": 2,
            "is_webinar": is_webinar,
        })
    };
    let (status, body) = create(&mut app, &token, webinar("Chimie organique", "14:00", true)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // One capture at once here: an overlapping webinar is refused, with why.
    let (status, body) = create(&mut app, &token, webinar("Physique", "15:00", true)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let reason = body["errors"]["is_webinar"].as_str().unwrap();
    assert!(reason.contains('1'), "{reason}");
    // The administrators hear of it, in the site's language, with the other webinar named.
    let mail = sink.next().await;
    let headers = super::invitations::read(&mail, "headers");
    assert!(headers.contains("To: admin@univ.example"), "{headers}");
    assert!(headers.contains("Trop de webinaires"), "{headers}");
    let text = super::invitations::read(&mail, "txt");
    assert!(
        text.contains("Physique") && text.contains("Chimie organique"),
        "{text}"
    );

    // Later the same day, or as a plain meeting, it fits.
    let (status, body) = create(&mut app, &token, webinar("Physique", "16:00", true)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let plain = webinar("Physique (réunion)", "15:00", false);
    let (status, body) = create(&mut app, &token, plain).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Editing the first webinar does not count it against itself.
    let id = app
        .state
        .db
        .meeting_by_bbb_id("0001-chimie-organique")
        .await
        .unwrap()
        .unwrap()
        .id;
    let (status, body) = call(
        &mut app,
        "PUT",
        &format!("/api/v1/meetings/{id}"),
        &token,
        Some(webinar("Chimie organique", "14:00", true)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_callback_stops_a_live_captured_here() {
    let db = TestDb::sqlite().await;
    let Stack {
        mut app,
        sim,
        _media,
    } = stack(&db).await;
    let (_, token) = teacher(&app, "curie").await;
    let (id, slug) = schedule(&mut app, &token).await;
    let _listening = app.state.webinars.spawn(app.state.events.subscribe());
    live_action(&mut app, &token, id, "start").await;
    presenter_arrives(&sim, &slug);
    segment_ready(&app, &slug, 1).await;

    // BBB's end callback (verified by the callbacks route) arrives; the bot has seen nothing
    // yet (the simulated meeting still runs): the live stops all the same.
    app.state
        .events
        .send(amphi::bbb::callbacks::BbbEvent::MeetingEnded {
            meeting_id: slug.clone(),
            recording_marks: false,
        })
        .unwrap();
    playlists_end(&served(&app, &slug), PATIENCE).await;
    assert!(!stopped(&app, &slug, PATIENCE).await.wanted);
    // The scan does not start it again.
    scans(&app, 2).await;
    assert!(app.state.webinars.capturing().is_empty());
}

/// Polls the room of `slug` until `key`'s moderation is `wanted` (the bot sees the meeting's
/// users change, then the capture looks the accounts up).
async fn moderates(app: &TestApp, slug: &str, key: &str, wanted: bool) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if app
                .state
                .chat
                .room(slug)
                .is_some_and(|r| r.is_moderator(key) == wanted)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{key} moderating {slug} never became {wanted}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bbb_moderators_who_are_amphi_users_moderate_the_chat() {
    let db = TestDb::sqlite().await;
    let Stack {
        mut app,
        sim,
        _media,
    } = stack(&db).await;
    let (_, token) = teacher(&app, "curie").await;
    let (id, slug) = schedule(&mut app, &token).await;
    live_action(&mut app, &token, id, "start").await;
    presenter_arrives(&sim, &slug);
    segment_ready(&app, &slug, 0).await;

    // Ann, an amphi user who is neither owner nor superuser, moderates in BBB (amphi joins
    // its users with their username as BBB's external id).
    let ann = app.add_user("ann", "correct horse battery").await;
    let key = format!("user:{}", ann.id);
    assert!(!app.state.chat.room(&slug).unwrap().is_moderator(&key));
    let ann_joins = Event::Join {
        name: "Ann".into(),
        role: "MODERATOR".into(),
        ext_id: Some("ann".into()),
    };
    sim.state.apply_event(&slug, &ann_joins).unwrap();
    moderates(&app, &slug, &key, true).await;
    // The owner stays a moderator.
    let owner = app
        .state
        .db
        .user_by_username("curie")
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.state
            .chat
            .room(&slug)
            .unwrap()
            .is_moderator(&format!("user:{}", owner.id))
    );

    // Her chat says so.
    app.login("ann", "correct horse battery").await;
    let session = app.cookie("amphi_session").unwrap().clone();
    let addr = serve_app(app.state.clone()).await;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/live/{slug}/chat"
        ))
        .unwrap();
    request.headers_mut().insert(
        "cookie",
        format!("amphi_session={session}").parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let welcome = chat_until(&mut socket, |e| e["type"] == "welcome").await;
    assert_eq!(welcome["moderator"], true, "{welcome}");

    // Once she leaves the meeting, she no longer moderates.
    sim.state
        .apply_event(&slug, &Event::Leave { name: "Ann".into() })
        .unwrap();
    moderates(&app, &slug, &key, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_capture_starts_again_after_a_backoff() {
    let db = TestDb::sqlite().await;
    let Stack {
        mut app,
        sim,
        _media,
    } = stack(&db).await;
    let (_, token) = teacher(&app, "curie").await;
    let (id, slug) = schedule(&mut app, &token).await;
    let meeting = created(&app, id).await;
    presenter_arrives(&sim, &slug);
    // BBB answers the next two calls with 503: the bot cannot get in, and whether the meeting
    // runs cannot be learned. The capture fails, waits on the "reconnecting" slate, tries again.
    sim.state.fail_next(2);
    let started = std::time::Instant::now();
    app.state
        .webinars
        .start(&meeting, chrono::Utc::now())
        .await
        .unwrap();
    segment_ready(&app, &slug, 0).await;
    let slate = started.elapsed();
    let live = served(&app, &slug);
    tokio::time::timeout(PATIENCE, async {
        while live.stats.snapshot().frames_in == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the second attempt brings the meeting's media in");
    eprintln!(
        "recovery: after two 503 answers, the slate's first segment {:.2} s and the meeting's media {:.2} s after the start",
        slate.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let stored = app.state.db.live_by_slug(&slug).await.unwrap().unwrap();
    assert_eq!(stored.restarts, 1, "{stored:?}");
    assert!(
        stored
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("could not join"),
        "{stored:?}"
    );
    assert_eq!(stored.state, LiveState::InProgress);
    // The playlists went on across the restarts, with the breaks marked.
    let (_, discontinuities, generation) = live.rendition("720p").unwrap().progress();
    assert!(
        discontinuities >= 1 && generation >= 2,
        "{discontinuities} {generation}"
    );
}
