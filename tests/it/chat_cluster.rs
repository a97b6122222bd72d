//! Two amphi instances sharing one chat room through a real Redis server (set
//! `AMPHI_TEST_REDIS_URL`; skipped without it): viewers of either instance see the same room,
//! write into the meeting, get their own answers, are counted together, and a moderator on
//! the relaying instance moderates the room.

use super::bridge::Meeting as SimMeeting;
use super::chat::meeting_for;
use crate::support::{TestApp, TestDb, serve_app};
use amphi::chat::room::Settings;
use amphi::sim::SfuFaults;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const PATIENCE: Duration = Duration::from_secs(60);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A browser's chat socket.
struct Ws {
    socket: Socket,
    waiting: VecDeque<Value>,
}

impl Ws {
    async fn open(url: &str, session: Option<&str>) -> Ws {
        let mut request = url.into_client_request().unwrap();
        if let Some(session) = session {
            request.headers_mut().insert(
                "cookie",
                format!("amphi_session={session}").parse().unwrap(),
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        Ws {
            socket,
            waiting: VecDeque::new(),
        }
    }

    async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// Reads events until one of `kind` matches `wanted`.
    async fn until(&mut self, kind: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let mut seen = Vec::new();
        loop {
            if let Some(event) = self.waiting.pop_front() {
                if event["type"] == kind && wanted(&event) {
                    return event;
                }
                seen.push(event);
                continue;
            }
            let received = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no {kind} in time; seen {seen:?}"));
            match received {
                Some(Ok(Message::Text(text))) => {
                    for line in text.lines() {
                        self.waiting.push_back(serde_json::from_str(line).unwrap());
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("the socket ended before a {kind}: {other:?}; seen {seen:?}"),
            }
        }
    }
}

fn redis_url() -> Option<String> {
    let url = std::env::var("AMPHI_TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("skipped: set AMPHI_TEST_REDIS_URL to run the two-instance chat test");
    }
    url
}

async fn instance(redis: &str, db: &TestDb) -> TestApp {
    let mut config = amphi::config::Config::default();
    config.chat.redis_url = amphi::redact::Redacted::new(redis.to_owned());
    TestApp::with_db(config, db.db.clone()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_room_through_redis() {
    let Some(redis) = redis_url() else { return };
    let (meeting, api) = SimMeeting::start("chat-cluster", SfuFaults::default()).await;
    let test_db = TestDb::sqlite().await;
    let owner = instance(&redis, &test_db).await;
    let mut relay = instance(&redis, &test_db).await;
    let ann = relay.add_user("ann", "correct horse battery").await;
    relay.login("ann", "correct horse battery").await;
    let session = relay.cookie("amphi_session").unwrap().clone();

    // A live of this run only: several runs may share the Redis server.
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix).unwrap();
    let live = format!("cluster-{}", hex::encode(suffix));
    let (a, b) = (
        serve_app(owner.state.clone()).await,
        serve_app(relay.state.clone()).await,
    );
    let url = |addr: std::net::SocketAddr| format!("ws://{addr}/live/{live}/chat");

    // No instance owns the room yet: the relaying instance has no chat to offer.
    let refused = tokio_tungstenite::connect_async(url(b)).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 404),
        "{refused:?}"
    );

    let room = owner
        .state
        .chat
        .open(
            &live,
            Settings::default(),
            test_db.db.clone(),
            meeting_for(api, &meeting.id),
        )
        .await
        .unwrap();
    room.set_moderators([format!("user:{}", ann.id)]);
    // The owner announces itself as soon as its room opens; the relay finds it.
    let mut guest_b = loop {
        match tokio_tungstenite::connect_async(url(b)).await {
            Ok((socket, _)) => {
                break Ws {
                    socket,
                    waiting: VecDeque::new(),
                };
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 404 => {
                tokio::task::yield_now().await
            }
            Err(e) => panic!("{e}"),
        }
    };
    let welcome = guest_b.until("welcome", |_| true).await;
    assert_eq!(welcome["can_write"], false, "{welcome}");
    guest_b.until("history", |_| true).await;
    let mut guest_a = Ws::open(&url(a), None).await;
    guest_a.until("history", |_| true).await;
    let mut ann_b = Ws::open(&url(b), Some(&session)).await;
    let welcome = ann_b.until("welcome", |_| true).await;
    // The owner knows Ann moderates, though she came through the other instance.
    assert_eq!(welcome["moderator"], true, "{welcome}");
    ann_b.until("history", |_| true).await;

    // Ann writes on B: everyone sees it, and it reaches the meeting once.
    ann_b
        .send(json!({"type": "message", "text": "Bonjour depuis B"}))
        .await;
    let mut delivered = room.delivered();
    let posted = guest_a
        .until("message", |e| e["message"]["text"] == "Bonjour depuis B")
        .await;
    assert_eq!(posted["message"]["author"], "ann");
    guest_b
        .until("message", |e| e["message"]["text"] == "Bonjour depuis B")
        .await;
    let id = posted["message"]["id"].as_u64().unwrap();
    tokio::time::timeout(PATIENCE, delivered.wait_for(|last| *last >= id))
        .await
        .unwrap()
        .unwrap();
    let chat = meeting.sim.state.chat(&meeting.id).unwrap();
    let from_ann: Vec<_> = chat
        .iter()
        .filter(|m| m.message == "Bonjour depuis B")
        .map(|m| m.sender_name.as_str())
        .collect();
    assert_eq!(from_ann, ["ann (live)"]);

    // Answers go to the one connection that asked: the guest on B may not write.
    guest_b.send(json!({"type": "message", "text": "hi"})).await;
    let refused = guest_b.until("error", |_| true).await;
    assert_eq!(refused["code"], "not_allowed", "{refused}");

    // The meeting's messages reach B's viewers.
    room.from_meeting(1, "Prof. Curie", "w_1", "Réponse en direct", false, false)
        .unwrap();
    guest_b
        .until("message", |e| {
            e["message"]["text"] == "Réponse en direct" && e["message"]["origin"] == "meeting"
        })
        .await;

    // Viewers are counted across both instances.
    guest_b.until("viewers", |e| e["count"] == 3).await;
    let mut viewers = room.viewers();
    tokio::time::timeout(PATIENCE, viewers.wait_for(|n| *n == 3))
        .await
        .unwrap()
        .unwrap();

    // Ann moderates from B: she hides her message for everyone, on both instances.
    ann_b.send(json!({"type": "hide", "id": id})).await;
    guest_a.until("hidden", |e| e["id"] == id).await;
    guest_b.until("hidden", |e| e["id"] == id).await;

    // A viewer of B leaves: the owner counts two.
    drop(guest_b);
    guest_a.until("viewers", |e| e["count"] == 2).await;

    // A newcomer on B gets the history from the owner: the meeting's answer, not the hidden message.
    let mut late = Ws::open(&url(b), None).await;
    let history = late.until("history", |_| true).await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Réponse en direct"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_owner_serves_its_own_viewers_and_relays_say_so() {
    // Nothing listens on port 1: every Redis call fails at once.
    let test_db = TestDb::sqlite().await;
    let owner = instance("redis://127.0.0.1:1", &test_db).await;
    let relay = instance("redis://127.0.0.1:1", &test_db).await;
    let (_, api) = super::chat::offline_meeting();
    owner
        .state
        .chat
        .open(
            "sans-redis",
            Settings {
                anonymous: true,
                ..Settings::default()
            },
            test_db.db.clone(),
            meeting_for(api, "offline"),
        )
        .await
        .unwrap();
    let (a, b) = (
        serve_app(owner.state.clone()).await,
        serve_app(relay.state.clone()).await,
    );

    let mut viewer = Ws::open(&format!("ws://{a}/live/sans-redis/chat"), None).await;
    viewer.until("history", |_| true).await;
    viewer
        .send(json!({"type": "message", "text": "still here", "nickname": "Zoé"}))
        .await;
    let posted = viewer.until("message", |_| true).await;
    assert_eq!(posted["message"]["author"], "Zoé");

    // The other instance cannot know who owns the room: it says so instead of pretending.
    let refused = tokio_tungstenite::connect_async(format!("ws://{b}/live/sans-redis/chat")).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503),
        "{refused:?}"
    );
}

/// A Redis server of this test only (Debian's `redis-server`, nothing kept on disk) on a
/// fixed port, so that it can be stopped and started again under running instances.
struct OwnRedis {
    child: Option<std::process::Child>,
    port: u16,
}

impl OwnRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { child: None, port };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) and returns once it accepts connections.
    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connects to `url` until the instance serves the room (it answers 404 or 503 while it cannot
/// tell who owns it); returns the socket after its history.
async fn join_when_served(url: &str) -> (Ws, Value) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => {
                let mut ws = Ws {
                    socket,
                    waiting: VecDeque::new(),
                };
                let history = ws.until("history", |_| true).await;
                return (ws, history);
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(r))
                if r.status() == 404 || r.status() == 503 =>
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the room was not served again in time"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{url}: {e}"),
        }
    }
}

fn texts(history: &Value) -> Vec<String> {
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_cuts_relayed_viewers_off_and_they_come_back_with_nothing_lost() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = OwnRedis::start();
    let test_db = TestDb::sqlite().await;
    let owner = instance(&redis.url(), &test_db).await;
    let relay = instance(&redis.url(), &test_db).await;
    let (_, api) = super::chat::offline_meeting();
    let live = "panne-redis";
    owner
        .state
        .chat
        .open(
            live,
            Settings {
                anonymous: true,
                ..Settings::default()
            },
            test_db.db.clone(),
            meeting_for(api, "offline"),
        )
        .await
        .unwrap();
    let (a, b) = (
        serve_app(owner.state.clone()).await,
        serve_app(relay.state.clone()).await,
    );
    let url = |addr: std::net::SocketAddr| format!("ws://{addr}/live/{live}/chat");
    let (mut on_relay, _) = join_when_served(&url(b)).await;
    let mut on_owner = Ws::open(&url(a), None).await;
    on_owner.until("history", |_| true).await;
    let say = |text: &str| json!({"type": "message", "text": text, "nickname": "Zoé"});
    on_relay.send(say("avant la panne")).await;
    on_owner
        .until("message", |e| e["message"]["text"] == "avant la panne")
        .await;

    // Redis goes away: the relaying instance's viewers are disconnected (their page
    // reconnects); the owner's viewers go on, and what they write is kept.
    redis.stop();
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match on_relay.socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the relayed viewer was not disconnected");
    on_owner.send(say("pendant la panne")).await;
    on_owner
        .until("message", |e| e["message"]["text"] == "pendant la panne")
        .await;
    let refused = tokio_tungstenite::connect_async(url(b)).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503 || r.status() == 404),
        "{refused:?}"
    );

    // Redis is back (empty): the owner subscribes and announces itself again, the relay's
    // viewers get in, and the history holds what was said before and during the outage.
    redis.restart();
    let back = std::time::Instant::now();
    let (mut again, history) = join_when_served(&url(b)).await;
    eprintln!(
        "recovery: relayed viewers served again {:.2} s after Redis came back",
        back.elapsed().as_secs_f64()
    );
    assert_eq!(texts(&history), ["avant la panne", "pendant la panne"]);
    again.send(say("après la panne")).await;
    on_owner
        .until("message", |e| e["message"]["text"] == "après la panne")
        .await;
    again
        .until("message", |e| e["message"]["text"] == "après la panne")
        .await;
}
