//! The bot against the simulator's GraphQL side, over real WebSockets on 127.0.0.1: it joins
//! as a bot moderator, follows a scenario (presenter, camera, screenshare, slide, end) in
//! order, relays chat both ways, stops on 4403 without retrying, and resumes after a drop.

use amphi::bbb::{BbbApi, Client, CreateParams};
use amphi::client::bot::{self, BotOptions};
use amphi::client::session::{Credentials, Session, StopReason};
use amphi::client::state::Change;
use amphi::config::ChecksumAlgorithm;
use amphi::redact::Redacted;
use amphi::sim::{self, SimOptions};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

const SECRET: &str = "bot-sim-secret";
const PATIENCE: Duration = Duration::from_secs(60);

async fn setup(id: &str) -> (sim::Running, Arc<dyn BbbApi>) {
    amphi::install_crypto_provider();
    let sim = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimOptions {
            secret: Redacted::new(SECRET.to_owned()),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let api: Arc<dyn BbbApi> = Arc::new(
        Client::new(
            &sim.api_url(),
            Redacted::new(SECRET.to_owned()),
            ChecksumAlgorithm::Sha256,
        )
        .unwrap(),
    );
    api.create(&CreateParams {
        name: "Amphi de physique".into(),
        meeting_id: id.into(),
        ..CreateParams::default()
    })
    .await
    .unwrap();
    (sim, api)
}

async fn events(sim: &sim::Running, id: &str, steps: serde_json::Value) {
    let answer = reqwest::Client::new()
        .post(format!("http://{}/sim/meetings/{id}/events", sim.addr))
        .json(&steps)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204, "{}", answer.text().await.unwrap());
}

/// A scenario event, what it is, and the change it must bring.
type Step = (serde_json::Value, &'static str, fn(&Change) -> bool);

/// Waits for the next change `wanted` accepts; the others are returned for inspection.
async fn expect(
    changes: &mut broadcast::Receiver<Change>,
    what: &str,
    wanted: impl Fn(&Change) -> bool,
) -> Vec<Change> {
    let mut before = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let change = changes.recv().await.expect("bot running");
            if wanted(&change) {
                return;
            }
            before.push(change);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what}; saw {before:?}"));
    before
}

fn options(id: &str) -> BotOptions {
    BotOptions {
        meeting_id: id.into(),
        display_name: "Live stream".into(),
        user_id: format!("amphi-live-{id}"),
    }
}

#[tokio::test]
async fn the_bot_follows_the_meeting_and_chats_both_ways() {
    let id = "0100-amphi";
    let (sim, api) = setup(id).await;
    events(
        &sim,
        id,
        json!([{"type": "join", "name": "Prof", "role": "MODERATOR"}]),
    )
    .await;
    let bot = bot::start(Arc::clone(&api), options(id)).await.unwrap();
    let mut changes = bot.changes();
    expect(&mut changes, "join", |c| *c == Change::Joined).await;

    // BBB lists the bot as a moderator.
    let info = api.get_meeting_info(id).await.unwrap();
    let me = info
        .attendees
        .items
        .iter()
        .find(|a| a.full_name == "Live stream")
        .expect("the bot attends");
    assert_eq!(me.role, "MODERATOR");
    assert_eq!(me.user_id, format!("amphi-live-{id}"));
    assert!(
        sim.state.meetings()[0]
            .users
            .iter()
            .any(|u| u.full_name == "Live stream" && u.bot)
    );

    // The scenario reaches the bot in order, one event after the other.
    let steps: [Step; 6] = [
        (
            json!({"type": "presenter", "name": "Prof"}),
            "presenter",
            |c| matches!(c, Change::PresenterChanged(Some(_))),
        ),
        (
            json!({"type": "camera_on", "name": "Prof"}),
            "camera",
            |c| matches!(c, Change::CameraStarted(cam) if cam.name == "Prof" && cam.presenter),
        ),
        (
            json!({"type": "slide", "page": 3}),
            "slide 3",
            |c| matches!(c, Change::SlideChanged(s) if s.num == 3 && s.total == 5),
        ),
        (
            json!({"type": "screenshare_start", "has_audio": true}),
            "screenshare",
            |c| matches!(c, Change::ScreenshareStarted(s) if s.has_audio && s.voice_conf.ends_with("-SCREENSHARE")),
        ),
        (
            json!({"type": "camera_off", "name": "Prof"}),
            "camera off",
            |c| matches!(c, Change::CameraStopped { .. }),
        ),
        (
            json!({"type": "screenshare_stop"}),
            "screenshare stop",
            |c| *c == Change::ScreenshareStopped,
        ),
    ];
    for (event, what, wanted) in steps {
        events(&sim, id, json!([event])).await;
        expect(&mut changes, what, wanted).await;
    }
    let state = bot.state.borrow().clone();
    assert_eq!(state.slide.as_ref().map(|s| s.num), Some(3));
    assert!(state.cameras.is_empty() && state.screenshare.is_none());

    // The slide image is real, and fetched once.
    let cache = amphi::client::slides::SlideCache::new(bot.session_cookie());
    let slide = state.slide.clone().unwrap();
    let image = cache.image(&slide).await.unwrap();
    assert_eq!(image.content_type, "image/png");
    assert_eq!(&image.bytes[1..4], b"PNG");
    assert_eq!(cache.image(&slide).await.unwrap(), image);
    assert_eq!(cache.downloads(), 1);

    // Chat: the bot's message lands in BBB's public chat; the presenter's reaches the bot, the
    // bot's own never comes back.
    bot.send_chat("Question d'Ann (live) : et la décohérence ?")
        .await;
    events(
        &sim,
        id,
        json!([{"type": "chat", "name": "Prof", "text": "Bonne question !"}]),
    )
    .await;
    let seen = expect(
        &mut changes,
        "presenter's message",
        |c| matches!(c, Change::Chat(m) if m.text == "Bonne question !" && m.sender_name == "Prof"),
    )
    .await;
    assert!(
        !seen
            .iter()
            .any(|c| matches!(c, Change::Chat(m) if m.sender_name == "Live stream"))
    );
    let chat = sim.state.chat(id).unwrap();
    assert!(
        chat.iter()
            .any(|m| m.message.starts_with("Question d'Ann") && m.sender_name == "Live stream"),
        "{chat:?}"
    );

    // The meeting ends: the bot hears it and stops.
    events(&sim, id, json!([{"type": "end"}])).await;
    expect(&mut changes, "end", |c| matches!(c, Change::Ended(_))).await;
    assert_eq!(bot.finished().await, StopReason::MeetingEnded);
}

#[tokio::test]
async fn a_bad_session_token_stops_with_4403_and_no_retry() {
    let id = "0101-refus";
    let (sim, _api) = setup(id).await;
    let url = format!("ws://{}/graphql", sim.addr);
    let session = Session::new(
        Credentials {
            session_token: Redacted::new("forgedsession000".into()),
            auth_token: Redacted::new("forged".into()),
            client_session_uuid: "uuid".into(),
        },
        "2026-11-27T10:00:00Z",
    );
    let bot = bot::start_session(url, Some("FORGED".into()), session);
    let stopped = tokio::time::timeout(PATIENCE, bot.finished())
        .await
        .unwrap();
    assert!(
        matches!(stopped, StopReason::Unauthorized(_)),
        "{stopped:?}"
    );
}

#[tokio::test]
async fn a_dropped_socket_reconnects_and_resumes() {
    let id = "0102-coupure";
    let (sim, api) = setup(id).await;
    events(
        &sim,
        id,
        json!([{"type": "join", "name": "Prof", "role": "MODERATOR"}]),
    )
    .await;
    let bot = bot::start(Arc::clone(&api), options(id)).await.unwrap();
    let mut changes = bot.changes();
    expect(&mut changes, "join", |c| *c == Change::Joined).await;
    events(&sim, id, json!([{"type": "drop_sockets"}])).await;
    // After the drop, news still arrives: the bot is back and subscribed again.
    events(
        &sim,
        id,
        json!([{"type": "slide", "page": 2, "after_ms": 0}]),
    )
    .await;
    expect(
        &mut changes,
        "slide after the drop",
        |c| matches!(c, Change::SlideChanged(s) if s.num == 2),
    )
    .await;
    events(
        &sim,
        id,
        json!([{"type": "chat", "name": "Prof", "text": "Vous m'entendez ?"}]),
    )
    .await;
    expect(
        &mut changes,
        "chat after the drop",
        |c| matches!(c, Change::Chat(m) if m.text == "Vous m'entendez ?"),
    )
    .await;
    // Still in the meeting, once.
    let bots = sim.state.meetings()[0]
        .users
        .iter()
        .filter(|u| u.bot)
        .count();
    assert_eq!(bots, 1);
    assert_eq!(bot.leave().await, StopReason::Left);
}

#[tokio::test]
async fn a_scenario_file_plays_in_new_meetings() {
    amphi::install_crypto_provider();
    let scenario = amphi::sim::scenario::Scenario::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/lecture.json"),
    )
    .unwrap();
    assert!(scenario.steps.len() > 5);
    let quick = amphi::sim::scenario::Scenario {
        meeting_id: Some("0103-scenario".into()),
        steps: scenario
            .steps
            .iter()
            .take(3)
            .cloned()
            .map(|mut s| {
                s.after_ms = 0;
                s
            })
            .collect(),
    };
    let sim = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimOptions {
            secret: Redacted::new(SECRET.to_owned()),
            scenario: Some(quick),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let api: Arc<dyn BbbApi> = Arc::new(
        Client::new(
            &sim.api_url(),
            Redacted::new(SECRET.to_owned()),
            ChecksumAlgorithm::Sha256,
        )
        .unwrap(),
    );
    api.create(&CreateParams {
        name: "Cours".into(),
        meeting_id: "0103-scenario".into(),
        ..CreateParams::default()
    })
    .await
    .unwrap();
    let bot = bot::start(Arc::clone(&api), options("0103-scenario"))
        .await
        .unwrap();
    let mut changes = bot.changes();
    expect(
        &mut changes,
        "the scenario's camera",
        |c| matches!(c, Change::CameraStarted(cam) if cam.name == "Prof. Martin"),
    )
    .await;
    assert_eq!(bot.leave().await, StopReason::Left);
}

/// Log lines written while `run` runs, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_and_cookies_stay_out_of_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let id = "0104-logs";
    let (sim, api) = setup(id).await;
    events(
        &sim,
        id,
        json!([{"type": "join", "name": "Prof", "role": "MODERATOR"}]),
    )
    .await;
    let bot = bot::start(Arc::clone(&api), options(id)).await.unwrap();
    let mut changes = bot.changes();
    expect(&mut changes, "join", |c| *c == Change::Joined).await;
    events(&sim, id, json!([{"type": "drop_sockets"}])).await;
    events(
        &sim,
        id,
        json!([{"type": "chat", "name": "Prof", "text": "encore là ?"}]),
    )
    .await;
    expect(&mut changes, "chat after the drop", |c| {
        matches!(c, Change::Chat(_))
    })
    .await;
    let me = sim.state.meetings()[0]
        .users
        .iter()
        .find(|u| u.bot)
        .cloned()
        .unwrap();
    assert_eq!(bot.leave().await, StopReason::Left);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("reconnecting"), "the logs are real: {logs}");
    for (what, secret) in [
        ("session token", &me.session_token),
        ("auth token", &me.auth_token),
        ("cookie", &me.jsessionid),
    ] {
        assert!(
            !logs.contains(secret.as_str()),
            "the {what} reached the logs"
        );
    }
    assert!(!logs.contains("JSESSIONID="), "the cookie reached the logs");
}

#[tokio::test]
async fn the_simulator_wants_the_sessions_own_cookie() {
    let id = "0105-auth";
    let (sim, api) = setup(id).await;
    let joined = api
        .join_bot(&amphi::bbb::JoinParams {
            meeting_id: id.into(),
            full_name: "Live stream".into(),
            role: amphi::bbb::Role::Moderator,
            user_id: None,
            create_time: None,
            avatar_url: None,
            bot: true,
        })
        .await
        .unwrap();
    let url = format!("ws://{}/graphql", sim.addr);
    // The right session token with another session's cookie: 4403.
    let session = Session::new(
        Credentials {
            session_token: joined.session_token.clone(),
            auth_token: joined.auth_token.clone(),
            client_session_uuid: "uuid".into(),
        },
        "2026-11-27T10:00:00Z",
    );
    let bot = bot::start_session(url.clone(), Some("NOTTHECOOKIE".into()), session);
    let stopped = tokio::time::timeout(PATIENCE, bot.finished())
        .await
        .unwrap();
    assert!(
        matches!(stopped, StopReason::Unauthorized(_)),
        "{stopped:?}"
    );
}
