//! The audience chat, room task and connection shell together, with channels for sockets and
//! the BBB simulator as the meeting: audience messages reach every viewer and the meeting's
//! public chat (once, in order, even while BBB cannot be reached), the meeting's messages reach
//! every viewer, moderation and the limits hold over the wire, a stuck viewer slows nobody, and
//! the history survives a restart.

use super::bridge::Meeting as SimMeeting;
use crate::support::TestDb;
use amphi::bbb::BbbApi;
use amphi::chat::hub::{self, Hub, Meeting, RoomHandle};
use amphi::chat::room::{Member, Settings};
use amphi::chat::socket::{self, Keepalive, SocketIn, SocketOut, close};
use amphi::client::bot::{self, BotOptions};
use amphi::sim::SfuFaults;
use futures_util::{Sink, Stream};
use serde_json::{Value, json};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(60);

type Out = Pin<Box<dyn Sink<SocketOut, Error = ()> + Send>>;
type In = Pin<Box<dyn Stream<Item = SocketIn> + Send>>;

/// A viewer's socket, as two channels.
pub(crate) struct Viewer {
    pub(crate) to_server: mpsc::Sender<SocketIn>,
    from_server: mpsc::Receiver<SocketOut>,
    /// Events of a frame not read yet (a frame may carry several, one per line).
    waiting: std::collections::VecDeque<Value>,
}

pub(crate) fn connect(room: &RoomHandle, member: Member, queue: usize) -> Viewer {
    let (out_tx, from_server) = mpsc::channel::<SocketOut>(queue);
    let (to_server, in_rx) = mpsc::channel::<SocketIn>(16);
    let out: Out = Box::pin(futures_util::sink::unfold(
        out_tx,
        |tx, item: SocketOut| async move {
            tx.send(item).await.map_err(|_| ())?;
            Ok::<_, ()>(tx)
        },
    ));
    let input: In = Box::pin(futures_util::stream::unfold(in_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    tokio::spawn(socket::serve(
        out,
        input,
        room.clone(),
        member,
        Keepalive::default(),
    ));
    Viewer {
        to_server,
        from_server,
        waiting: Default::default(),
    }
}

impl Viewer {
    pub(crate) async fn send(&self, frame: Value) {
        self.to_server
            .send(SocketIn::Text(frame.to_string()))
            .await
            .unwrap();
    }

    /// The next event, pings aside; `None` when the server closed (with its code).
    async fn next(&mut self) -> Result<Value, Option<u16>> {
        loop {
            if let Some(event) = self.waiting.pop_front() {
                return Ok(event);
            }
            let item = tokio::time::timeout(PATIENCE, self.from_server.recv())
                .await
                .expect("an event in time");
            match item {
                Some(SocketOut::Text(text)) => {
                    for line in text.lines() {
                        self.waiting.push_back(serde_json::from_str(line).unwrap());
                    }
                }
                Some(SocketOut::Ping) => continue,
                Some(SocketOut::Close { code, .. }) => return Err(Some(code)),
                None => return Err(None),
            }
        }
    }

    /// Reads events until one of `kind` matches `wanted`; returns it.
    pub(crate) async fn until(&mut self, kind: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                Ok(event) if event["type"] == kind && wanted(&event) => return event,
                Ok(event) => seen.push(event),
                Err(code) => panic!("closed ({code:?}) before a {kind}; seen {seen:?}"),
            }
        }
    }

    /// Reads `welcome` and `history`; returns the history.
    pub(crate) async fn welcomed(&mut self) -> (Value, Vec<Value>) {
        let welcome = self.next().await.unwrap();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let history = self.next().await.unwrap();
        assert_eq!(history["type"], "history", "{history}");
        (welcome, history["messages"].as_array().unwrap().clone())
    }
}

fn signed_in(id: u32, name: &str) -> Member {
    Member {
        key: format!("user:{id}"),
        name: Some(name.to_owned()),
        moderator: false,
    }
}

pub(crate) fn teacher() -> Member {
    Member {
        key: "user:1".into(),
        name: Some("Prof. Curie".into()),
        moderator: true,
    }
}

pub(crate) fn say(text: &str) -> Value {
    json!({"type": "message", "text": text})
}

/// The texts of the simulated meeting's public chat, with their senders.
fn meeting_chat(meeting: &SimMeeting) -> Vec<(String, String)> {
    meeting
        .sim
        .state
        .chat(&meeting.id)
        .unwrap()
        .into_iter()
        .map(|m| (m.sender_name, m.message))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_and_meeting_talk_both_ways_without_echoes() {
    let (meeting, api) = SimMeeting::start("chat-both-ways", SfuFaults::default()).await;
    let test_db = TestDb::sqlite().await;
    let bot = bot::start(
        Arc::clone(&api),
        BotOptions {
            meeting_id: meeting.id.clone(),
            display_name: "Live stream".into(),
            user_id: "amphi-live-chat".into(),
        },
    )
    .await
    .unwrap();
    let mut state = bot.state.clone();
    tokio::time::timeout(PATIENCE, state.wait_for(|s| s.joined))
        .await
        .unwrap()
        .unwrap();
    let hub = Hub::default();
    let room = hub
        .open(
            "chimie",
            Settings {
                // Ten minutes by default.
                viewers_post_every: Some(Duration::from_millis(500)),
                ..Settings::default()
            },
            test_db.db.clone(),
            meeting_for(Arc::clone(&api), &meeting.id),
        )
        .await
        .unwrap();
    let mut seen_by_bot = bot.changes();
    tokio::spawn(hub::follow_meeting(
        bot.changes(),
        room.clone(),
        bot.joined.as_ref().map(|j| j.user_id.clone()),
    ));

    let mut viewers: Vec<Viewer> = (0..3)
        .map(|i| connect(&room, signed_in(10 + i, &format!("Student {i}")), 64))
        .collect();
    for viewer in &mut viewers {
        let (welcome, history) = viewer.welcomed().await;
        assert_eq!(welcome["can_write"], true);
        assert!(history.is_empty());
    }

    // A student asks; every viewer sees it, and so does the meeting, as "Student 0 (live)".
    viewers[0].send(say("Is the exam in June?")).await;
    for viewer in &mut viewers {
        let event = viewer.until("message", |_| true).await;
        assert_eq!(event["message"]["text"], "Is the exam in June?");
        assert_eq!(event["message"]["origin"], "audience");
        assert_eq!(event["message"]["author"], "Student 0");
    }
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(amphi::client::state::Change::Chat(m)) = seen_by_bot.recv().await
                && m.text == "Is the exam in June?"
            {
                return;
            }
        }
    })
    .await
    .expect("the message reaches the meeting's chat");
    assert!(
        meeting_chat(&meeting)
            .contains(&("Student 0 (live)".into(), "Is the exam in June?".into())),
        "{:?}",
        meeting_chat(&meeting)
    );

    // The presenter answers in BBB: every viewer sees it, marked as from the meeting, and the
    // question (back from BBB through the bot) was not shown a second time.
    meeting
        .events(json!([{"type": "chat", "name": "Prof. Curie", "text": "Yes, on the 12th."}]))
        .await;
    for viewer in &mut viewers {
        let mut before = Vec::new();
        let answer = loop {
            let event = viewer.next().await.unwrap();
            if event["type"] == "message" && event["message"]["origin"] == "meeting" {
                break event;
            }
            before.push(event);
        };
        assert_eq!(answer["message"]["text"], "Yes, on the 12th.");
        assert_eq!(answer["message"]["author"], "Prof. Curie");
        assert!(
            before.iter().all(|e| e["type"] != "message"),
            "no echo of the question: {before:?}"
        );
    }
    // The meeting hears how many students watch; the post comes back through the bot and is
    // not shown to the audience.
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(amphi::client::state::Change::Chat(m)) = seen_by_bot.recv().await
                && m.text == "3 students are watching the live"
            {
                assert_eq!(m.sender_name, "amphi");
                return;
            }
        }
    })
    .await
    .expect("the viewer count reaches the meeting's chat");
    meeting
        .events(json!([{"type": "chat", "name": "Prof. Curie", "text": "Next question?"}]))
        .await;
    for viewer in &mut viewers {
        let next = viewer.until("message", |_| true).await;
        assert_eq!(next["message"]["text"], "Next question?", "{next}");
    }

    // The three messages are kept, not the count.
    let kept = test_db.db.chat_history("chimie", 50).await.unwrap();
    let texts: Vec<&str> = kept.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Is the exam in June?",
            "Yes, on the 12th.",
            "Next question?"
        ]
    );
    let mut delivered = room.delivered();
    tokio::time::timeout(PATIENCE, delivered.wait_for(|id| *id == 1))
        .await
        .unwrap()
        .unwrap();
    assert!(
        test_db
            .db
            .chat_pending("chimie", 10)
            .await
            .unwrap()
            .is_empty()
    );
    bot.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bbb_unreachable_delays_messages_but_loses_none() {
    let (meeting, api) = SimMeeting::start("chat-unreachable", SfuFaults::default()).await;
    let test_db = TestDb::sqlite().await;
    // The next three API calls fail with 503: the relay's first attempt and two retries.
    meeting.sim.state.fail_next(3);
    let hub = Hub::default();
    let room = hub
        .open(
            "physique",
            Settings::default(),
            test_db.db.clone(),
            meeting_for(Arc::clone(&api), &meeting.id),
        )
        .await
        .unwrap();
    let mut viewer = connect(&room, signed_in(7, "Ann"), 64);
    viewer.welcomed().await;
    let written = std::time::Instant::now();
    for text in ["first", "second", "third"] {
        viewer.send(say(text)).await;
        viewer
            .until("message", |e| e["message"]["text"] == text)
            .await;
    }
    // They arrive, all three, in order, once the server answers again.
    let expected: Vec<(String, String)> = ["first", "second", "third"]
        .map(|t| ("Ann (live)".to_owned(), t.to_owned()))
        .to_vec();
    let mut changes = meeting.sim.state.watch_changes();
    tokio::time::timeout(PATIENCE, async {
        // The relay retries after 1, 2, 4… s; each delivery changes the meeting.
        while meeting_chat(&meeting).len() < expected.len() {
            let _ = changes.recv().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("delivered: {:?}", meeting_chat(&meeting)));
    assert_eq!(meeting_chat(&meeting), expected, "once each, in order");
    eprintln!(
        "recovery: three messages in the meeting {:.2} s after the first was written, BBB having answered the relay's first three calls with 503",
        written.elapsed().as_secs_f64()
    );
    let mut delivered = room.delivered();
    tokio::time::timeout(PATIENCE, delivered.wait_for(|id| *id == 3))
        .await
        .unwrap()
        .unwrap();
    assert!(
        test_db
            .db
            .chat_pending("physique", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn moderation_and_limits_hold_over_the_socket() {
    let test_db = TestDb::sqlite().await;
    let (meeting, api) = offline_meeting();
    let hub = Hub::default();
    let room = hub
        .open(
            "maths",
            Settings::default(),
            test_db.db.clone(),
            meeting_for(api, &meeting),
        )
        .await
        .unwrap();
    let mut prof = connect(&room, teacher(), 64);
    let mut ann = connect(&room, signed_in(7, "Ann"), 64);
    let mut guest = connect(
        &room,
        Member {
            key: "guest:q1".into(),
            name: None,
            moderator: false,
        },
        64,
    );
    assert_eq!(prof.welcomed().await.0["moderator"], true);
    ann.welcomed().await;
    assert_eq!(guest.welcomed().await.0["can_write"], false);

    // Bad input gets a clear error and changes nothing.
    guest.send(say("hello")).await;
    assert_eq!(guest.until("error", |_| true).await["code"], "not_allowed");
    ann.send(json!({"type": "message", "text": "x".repeat(501)}))
        .await;
    assert_eq!(ann.until("error", |_| true).await["code"], "too_long");
    ann.send(json!({"type": "shout"})).await;
    assert_eq!(ann.until("error", |_| true).await["code"], "bad_frame");
    ann.to_server.send(SocketIn::Binary).await.unwrap();
    assert_eq!(ann.until("error", |_| true).await["code"], "bad_frame");
    ann.send(json!({"type": "hide", "id": 1})).await;
    assert_eq!(ann.until("error", |_| true).await["code"], "not_allowed");
    ann.send(say("<img src=x onerror=alert(1)>")).await;
    let posted = prof.until("message", |_| true).await;
    assert_eq!(
        posted["message"]["text"], "<img src=x onerror=alert(1)>",
        "text stays text"
    );
    let id = posted["message"]["id"].as_u64().unwrap();

    // A moderator hides it: everyone is told, and it is gone from the history.
    prof.send(json!({"type": "hide", "id": id})).await;
    assert_eq!(ann.until("hidden", |_| true).await["id"], id);
    let mut late = connect(&room, signed_in(8, "Bob"), 64);
    assert!(late.welcomed().await.1.is_empty());

    // A flood: three go through, the fourth mutes for 10 s.
    for i in 0..4 {
        ann.send(say(&format!("spam {i}"))).await;
    }
    let muted = ann.until("muted", |_| true).await;
    assert_eq!(muted["author_key"], "user:7");
    assert!(muted["reason"].as_str().unwrap().contains("10 seconds"));
    ann.send(say("let me in")).await;
    ann.until("muted", |_| true).await;

    // Slow mode, Q&A, chat off: each change reaches everyone.
    prof.send(json!({"type": "question_mode", "enabled": true}))
        .await;
    assert_eq!(
        late.until("mode", |_| true).await["mode"]["questions"],
        true
    );
    late.send(say("When is the exam?")).await;
    let question = prof
        .until("message", |e| e["message"]["question"] == true)
        .await;
    let qid = question["message"]["id"].as_u64().unwrap();
    ann.send(json!({"type": "upvote", "id": qid})).await;
    ann.send(json!({"type": "upvote", "id": qid})).await;
    assert_eq!(late.until("question", |_| true).await["votes"], 1);
    prof.send(json!({"type": "answered", "id": qid})).await;
    late.until("question", |e| e["answered"] == true).await;
    prof.send(json!({"type": "enable", "enabled": false})).await;
    late.until("mode", |e| e["mode"]["enabled"] == false).await;
    late.send(say("hello?")).await;
    assert_eq!(late.until("error", |_| true).await["code"], "chat_off");

    // Oversized frames: an error, then the connection is closed.
    let huge = format!(r#"{{"type":"message","text":"{}"}}"#, "a".repeat(5000));
    late.to_server
        .send(SocketIn::Text(huge.clone()))
        .await
        .unwrap();
    assert_eq!(late.until("error", |_| true).await["code"], "too_long");
    late.to_server.send(SocketIn::Text(huge)).await.unwrap();
    loop {
        match late.next().await {
            Ok(_) => continue,
            Err(code) => {
                assert_eq!(code, Some(close::TOO_BIG));
                break;
            }
        }
    }
    // What was kept: the hidden message is hidden, the question answered, nothing twice.
    let kept = test_db.db.chat_history("maths", 50).await.unwrap();
    assert!(kept.iter().all(|m| m.id != id));
    let q = kept.iter().find(|m| m.id == qid).unwrap();
    assert!(q.question && q.answered && q.votes == 1, "{q:?}");
}

#[tokio::test]
async fn a_stuck_viewer_slows_nobody_and_is_dropped() {
    let test_db = TestDb::sqlite().await;
    let (meeting, api) = offline_meeting();
    let room = Hub::default()
        .open(
            "bio",
            // A short queue, so that falling behind does not take long here.
            Settings {
                broadcast_queue: 4,
                ..Settings::default()
            },
            test_db.db.clone(),
            meeting_for(api, &meeting),
        )
        .await
        .unwrap();
    // This viewer never reads: its socket's queue holds one frame.
    let mut stuck = connect(&room, signed_in(9, "Stuck"), 1);
    let mut reader = connect(&room, signed_in(10, "Reader"), 1024);
    reader.welcomed().await;
    let prof = teacher();
    let mut prof_socket = connect(&room, prof, 1024);
    prof_socket.welcomed().await;
    // Enough for more frames than the queue holds (events share frames under load).
    let count = hub::BATCH_EVENTS * 10;
    for i in 0..count {
        prof_socket.send(say(&format!("slide note {i}"))).await;
    }
    // The reader gets every message although the stuck one reads nothing.
    let last = format!("slide note {}", count - 1);
    reader
        .until("message", |e| e["message"]["text"] == last.as_str())
        .await;
    // Once it reads, the stuck viewer finds it was dropped as too slow.
    let code = loop {
        match stuck.next().await {
            Ok(_) => continue,
            Err(code) => break code,
        }
    };
    assert_eq!(code, Some(close::TRY_AGAIN_LATER));
}

#[tokio::test]
async fn the_history_survives_a_restart() {
    let test_db = TestDb::sqlite().await;
    let (meeting, api) = offline_meeting();
    let open = |hub: Hub| {
        let (db, api, meeting) = (test_db.db.clone(), Arc::clone(&api), meeting.clone());
        async move {
            hub.open(
                "histoire",
                Settings::default(),
                db,
                meeting_for(api, &meeting),
            )
            .await
            .unwrap()
        }
    };
    let first = Hub::default();
    let room = open(first.clone()).await;
    let mut ann = connect(&room, signed_in(7, "Ann"), 64);
    ann.welcomed().await;
    ann.send(say("before the restart")).await;
    ann.until("message", |_| true).await;
    first.close("histoire");
    drop(room);

    let room = open(Hub::default()).await;
    let mut bob = connect(&room, signed_in(8, "Bob"), 64);
    let (_, history) = bob.welcomed().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["text"], "before the restart");
    bob.send(say("after")).await;
    let after = bob.until("message", |_| true).await;
    assert_eq!(after["message"]["id"], 2, "numbering goes on");
}

/// A BBB client pointed at nothing (the relay keeps retrying in the background).
pub(crate) fn offline_meeting() -> (String, Arc<dyn BbbApi>) {
    amphi::install_crypto_provider();
    let api: Arc<dyn BbbApi> = Arc::new(
        amphi::bbb::Client::new(
            "http://127.0.0.1:9/bigbluebutton/api",
            amphi::redact::Redacted::new("unused".to_owned()),
            amphi::config::ChecksumAlgorithm::Sha256,
        )
        .unwrap(),
    );
    ("offline".to_owned(), api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_pages_socket_speaks_the_protocol() {
    use crate::support::TestApp;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let test_db = TestDb::sqlite().await;
    let mut app = TestApp::with_db(amphi::config::Config::default(), test_db.db.clone()).await;
    app.add_user("ann", "correct horse battery").await;
    app.login("ann", "correct horse battery").await;
    let session = app.cookie("amphi_session").unwrap().clone();
    // Two connections per address at most, for this test.
    app.state.chat = Hub::with_connection_cap(2);
    let (meeting, api) = offline_meeting();
    app.state
        .chat
        .open(
            "amphi-b",
            Settings::default(),
            test_db.db.clone(),
            meeting_for(api, &meeting),
        )
        .await
        .unwrap();
    let addr = crate::support::serve_app(app.state.clone()).await;
    let url = format!("ws://{addr}/live/amphi-b/chat");
    let next = |text: Option<Message>| -> Value {
        match text {
            Some(Message::Text(t)) => serde_json::from_str(&t).unwrap(),
            other => panic!("{other:?}"),
        }
    };

    // Signed in: Ann writes under her name.
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "cookie",
        format!("amphi_session={session}").parse().unwrap(),
    );
    let (mut ann, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let welcome = next(ann.next().await.map(Result::unwrap));
    assert_eq!(welcome["name"], "ann", "{welcome}");
    assert_eq!(welcome["can_write"], true);
    next(ann.next().await.map(Result::unwrap));
    ann.send(Message::text(say("Bonjour").to_string()))
        .await
        .unwrap();
    let posted = next(ann.next().await.map(Result::unwrap));
    assert_eq!(posted["message"]["author"], "ann", "{posted}");

    // A guest reads, and may not write here.
    let (mut guest, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    assert_eq!(
        next(guest.next().await.map(Result::unwrap))["can_write"],
        false
    );
    let history = next(guest.next().await.map(Result::unwrap));
    assert_eq!(history["messages"][0]["text"], "Bonjour");
    guest
        .send(Message::text(say("hi").to_string()))
        .await
        .unwrap();
    assert_eq!(
        next(guest.next().await.map(Result::unwrap))["code"],
        "not_allowed"
    );

    // A third connection from the same address is refused.
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503),
        "{refused:?}"
    );
    // A frame far over the limit is cut by the socket itself.
    guest
        .send(Message::text("x".repeat(64 * 1024)))
        .await
        .unwrap();
    let end = guest.next().await;
    assert!(
        matches!(&end, Some(Ok(Message::Close(_))) | Some(Err(_)) | None),
        "the connection is closed: {end:?}"
    );
    // Unknown lives have no chat.
    let unknown = tokio_tungstenite::connect_async(format!("ws://{addr}/live/nope/chat")).await;
    assert!(
        matches!(&unknown, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 404),
        "{unknown:?}"
    );
}

/// The BBB side of a test room: no bot, delivery through `api`.
pub(crate) fn meeting_for(api: Arc<dyn BbbApi>, meeting_id: &str) -> Meeting {
    Meeting {
        api,
        meeting_id: meeting_id.to_owned(),
        bot: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storms_release_their_places_and_an_ended_live_refuses_writing() {
    use crate::support::TestApp;
    use futures_util::StreamExt;
    let test_db = TestDb::sqlite().await;
    let mut config = amphi::config::Config::default();
    config.chat.connections_per_address = 40;
    let app = TestApp::with_db(config, test_db.db.clone()).await;
    let (meeting, api) = offline_meeting();
    let room = app
        .state
        .chat
        .open(
            "amphi-d",
            Settings {
                anonymous: true,
                ..Settings::default()
            },
            test_db.db.clone(),
            meeting_for(api, &meeting),
        )
        .await
        .unwrap();
    let addr = crate::support::serve_app(app.state.clone()).await;
    let url = format!("ws://{addr}/live/amphi-d/chat");

    // Three waves of 40 connections that open, read their welcome and drop at once: each wave
    // fits under the cap only if the previous one gave its places back.
    for wave in 0..3 {
        let mut sockets = Vec::new();
        for _ in 0..40 {
            let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .unwrap_or_else(|e| panic!("wave {wave}: {e}"));
            let first = socket.next().await.unwrap().unwrap();
            assert!(first.to_text().unwrap().contains("\"welcome\""), "{first}");
            sockets.push(socket);
        }
        let refused = tokio_tungstenite::connect_async(url.as_str()).await;
        assert!(refused.is_err(), "wave {wave}: the 41st is refused");
        drop(sockets);
        let dropped = std::time::Instant::now();
        // The places come back as the server sees the sockets close.
        let localhost = "127.0.0.1".parse().unwrap();
        let deadline = std::time::Instant::now() + PATIENCE;
        while app.state.chat.connections_from(localhost) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "wave {wave}: {} places still held",
                app.state.chat.connections_from(localhost)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!(
            "recovery: wave {wave}: the 40 places given back {:.2} s after the sockets dropped",
            dropped.elapsed().as_secs_f64()
        );
    }

    // The live ends: the page is told, and nobody writes any more.
    let mut viewer = connect(&room, signed_in(7, "Ann"), 64);
    viewer.welcomed().await;
    room.end();
    assert_eq!(viewer.until("status", |_| true).await["status"], "ended");
    viewer.send(say("still there?")).await;
    assert_eq!(viewer.until("error", |_| true).await["code"], "ended");
    assert!(
        test_db
            .db
            .chat_history("amphi-d", 50)
            .await
            .unwrap()
            .is_empty(),
        "nothing kept after the end"
    );
}
