//! What BBB calls back: the receivers refuse forgeries, and the simulator fires end callbacks,
//! webhooks and recording-ready callbacks that amphi, listening on a real port, turns into
//! events exactly once.

use crate::support::{TestApp, reference_fixtures};
use amphi::bbb::callbacks::{
    BbbEvent, HookEvent, RecordingReady, end_callback_url, sign_recording_ready, webhook_url,
};
use amphi::bbb::webhooks::{Registration, ensure_registered};
use amphi::bbb::{BbbApi, Client, CreateParams, JoinParams, RecordingsQuery, Role};
use amphi::config::{ChecksumAlgorithm, Config};
use amphi::redact::Redacted;
use amphi::sim::{self, DeliveryKind, EndReason, SimOptions};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use std::time::Duration;
use tokio::sync::broadcast;

const SECRET: &str = "callback-secret-0123456789";
/// Longest wait for something the simulator or amphi does on its own.
const PATIENCE: Duration = Duration::from_secs(60);

fn config(public_url: &str) -> Config {
    let mut config = Config {
        public_url: public_url.to_owned(),
        ..Config::default()
    };
    config.bbb.api_url = "http://127.0.0.1:9/bigbluebutton/api".to_owned();
    config.bbb.secret = Redacted::new(SECRET.to_owned());
    config
}

async fn app() -> TestApp {
    TestApp::new(config("http://127.0.0.1:8080")).await
}

async fn post_raw(app: &mut TestApp, uri: &str, body: String) -> crate::support::Page {
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    app.send(request).await
}

fn signed_parameters(token: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("signed_parameters", token)
        .finish()
}

/// A token with any header, signed with HMAC-SHA-`bits` under `key`.
fn forge(header: &str, payload: &str, key: &[u8], bits: u32) -> String {
    let head = URL_SAFE_NO_PAD.encode(header);
    let body = URL_SAFE_NO_PAD.encode(payload);
    let input = format!("{head}.{body}");
    let signature = match bits {
        512 => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn drain(events: &mut broadcast::Receiver<BbbEvent>) -> Vec<BbbEvent> {
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    seen
}

#[tokio::test]
async fn recording_ready_accepts_the_real_token_once_and_refuses_forgeries() {
    let mut app = app().await;
    let mut events = app.state.events.subscribe();
    let ready = RecordingReady {
        meeting_id: "0042-physique".to_owned(),
        record_id: "f0e1d2c3-1764234000000".to_owned(),
    };
    let token = sign_recording_ready(&ready, SECRET.as_bytes());
    let uri = "/bbb/callbacks/recording-ready";

    // BBB calls once per playback format: two calls, one event.
    for _ in 0..2 {
        let page = post_raw(&mut app, uri, signed_parameters(&token)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    }
    assert_eq!(
        drain(&mut events),
        vec![BbbEvent::RecordingReady(ready.clone())]
    );
    // Kept in the database until acted upon.
    let pending = app
        .state
        .db
        .unhandled_receipts(amphi::web::callbacks::RECORDING_READY)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    let kept: RecordingReady = serde_json::from_str(&pending[0].payload).unwrap();
    assert_eq!(kept, ready);

    let payload = r#"{"meeting_id":"0042-physique","record_id":"other-1764234000000"}"#;
    let hs256 = r#"{"typ":"JWT","alg":"HS256"}"#;
    let forgeries = [
        ("wrong key", forge(hs256, payload, b"not the secret", 256)),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(payload)
            ),
        ),
        (
            "HS512, wrong key",
            forge(
                r#"{"typ":"JWT","alg":"HS512"}"#,
                payload,
                b"not the secret",
                512,
            ),
        ),
        (
            "HS512, right key",
            forge(
                r#"{"typ":"JWT","alg":"HS512"}"#,
                payload,
                SECRET.as_bytes(),
                512,
            ),
        ),
        ("tampered payload", {
            let genuine = forge(hs256, payload, SECRET.as_bytes(), 256);
            let mut parts: Vec<&str> = genuine.split('.').collect();
            let other = URL_SAFE_NO_PAD
                .encode(r#"{"meeting_id":"0001-autre","record_id":"other-1764234000000"}"#);
            parts[1] = &other;
            parts.join(".")
        }),
        ("not a JWT", "garbage".to_owned()),
    ];
    for (what, token) in forgeries {
        let page = post_raw(&mut app, uri, signed_parameters(&token)).await;
        assert_eq!(
            page.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            page.body
        );
        assert!(!page.body.contains(SECRET), "{what}");
    }
    let page = post_raw(&mut app, uri, "meeting_id=x".to_owned()).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = post_raw(
        &mut app,
        uri,
        "signed_parameters=".to_owned() + &"a".repeat(20_000),
    )
    .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(drain(&mut events), vec![], "no event from a forgery");
}

#[tokio::test]
async fn end_callbacks_need_the_meetings_own_token() {
    let mut app = app().await;
    let mut events = app.state.events.subscribe();
    let key = app.state.secret_key.expose().clone();
    let url = end_callback_url("http://127.0.0.1:8080", &key, "0042-physique");
    let path = url.trim_start_matches("http://127.0.0.1:8080");

    let page = app
        .get("/bbb/callbacks/end?meetingID=0042-physique&recordingmarks=true")
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let page = app
        .get(&format!("{path}&meetingID=0043-chimie&recordingmarks=true"))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let page = app
        .get("/bbb/callbacks/end?token=00&meetingID=0042-physique")
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(drain(&mut events), vec![]);

    let page = app
        .get(&format!(
            "{path}&recordingmarks=false&meetingID=0042-physique"
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        drain(&mut events),
        vec![BbbEvent::MeetingEnded {
            meeting_id: "0042-physique".to_owned(),
            recording_marks: false
        }]
    );
}

/// A delivery as bbb-webhooks makes it for the events in `json` (a JSON array).
fn delivery(json: &str, algorithm: ChecksumAlgorithm, secret: &str) -> (String, String) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("domain", "bbb.example.fr")
        .append_pair("event", json)
        .append_pair("timestamp", "1764234000000")
        .finish();
    let url = webhook_url("http://127.0.0.1:8080");
    let checksum = algorithm.hex_digest(&[url.as_bytes(), body.as_bytes(), secret.as_bytes()]);
    (format!("/bbb/callbacks/hooks?checksum={checksum}"), body)
}

#[tokio::test]
async fn webhooks_with_a_wrong_checksum_are_refused() {
    let mut app = app().await;
    let mut events = app.state.events.subscribe();
    let json = r#"[{"data":{"type":"event","id":"meeting-ended","attributes":{"meeting":{"internal-meeting-id":"abc-1","external-meeting-id":"0042-physique"}},"event":{"ts":1}}}]"#;

    let (uri, body) = delivery(json, ChecksumAlgorithm::Sha1, "wrong secret");
    assert_eq!(
        post_raw(&mut app, &uri, body.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let page = post_raw(&mut app, "/bbb/callbacks/hooks", body.clone()).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let (uri, _) = delivery(json, ChecksumAlgorithm::Sha1, SECRET);
    let tampered = body.replace("0042-physique", "0001-autre");
    assert_eq!(
        post_raw(&mut app, &uri, tampered).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(drain(&mut events), vec![]);

    let (uri, body) = delivery("[{\"broken", ChecksumAlgorithm::Sha1, SECRET);
    let page = post_raw(&mut app, &uri, body).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);

    // One unreadable item among good ones: the good ones still count.
    let mixed = format!(
        "[42,{}]",
        json.trim_start_matches('[').trim_end_matches(']')
    );
    let (uri, body) = delivery(&mixed, ChecksumAlgorithm::Sha1, SECRET);
    assert_eq!(post_raw(&mut app, &uri, body).await.status, StatusCode::OK);
    assert_eq!(
        drain(&mut events).len(),
        1,
        "the good event of a mixed delivery"
    );

    // Over 1 MiB: refused before anything is read.
    let (uri, _) = delivery(json, ChecksumAlgorithm::Sha1, SECRET);
    let huge = format!("domain=x&event={}", "a".repeat(1024 * 1024 + 1));
    assert_eq!(
        post_raw(&mut app, &uri, huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    for algorithm in [ChecksumAlgorithm::Sha1, ChecksumAlgorithm::Sha256] {
        let (uri, body) = delivery(json, algorithm, SECRET);
        let page = post_raw(&mut app, &uri, body).await;
        assert_eq!(page.status, StatusCode::OK, "{algorithm:?}: {}", page.body);
    }
    let ended = drain(&mut events);
    assert_eq!(ended.len(), 2);
    assert!(matches!(
        &ended[0],
        BbbEvent::Hook(HookEvent::MeetingEnded { meeting }) if meeting.external_id == "0042-physique"
    ));
}

#[tokio::test]
async fn reference_webhook_events_are_received() {
    let Some(dir) = reference_fixtures("bbb-webhooks") else {
        return;
    };
    let mut app = app().await;
    let mut events = app.state.events.subscribe();
    for (file, raw) in [("mapped-events.json", false), ("raw-events.json", true)] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "{file}");
        for line in &lines {
            let (uri, body) = delivery(&format!("[{line}]"), ChecksumAlgorithm::Sha1, SECRET);
            let page = post_raw(&mut app, &uri, body).await;
            assert_eq!(page.status, StatusCode::OK, "{file}: {line}: {}", page.body);
        }
        let received = drain(&mut events);
        assert_eq!(received.len(), lines.len(), "{file}");
        let raws = received
            .iter()
            .filter(|e| matches!(e, BbbEvent::Hook(HookEvent::Raw { .. })))
            .count();
        assert_eq!(raws, if raw { lines.len() } else { 0 }, "{file}");
        if !raw {
            let has = |f: &dyn Fn(&HookEvent) -> bool| {
                received
                    .iter()
                    .any(|e| matches!(e, BbbEvent::Hook(h) if f(h)))
            };
            assert!(has(
                &|h| matches!(h, HookEvent::MeetingCreated { meeting, .. } if meeting.external_id == "random-9019868")
            ));
            assert!(has(
                &|h| matches!(h, HookEvent::UserJoined { user, .. } if user.name.as_deref() == Some("John Doe"))
            ));
            assert!(has(
                &|h| matches!(h, HookEvent::CameraStarted { stream, .. } if stream.starts_with("w_xfsb9gxtlfom_"))
            ));
            assert!(has(&|h| matches!(h, HookEvent::ScreenshareStarted { .. })));
            assert!(has(&|h| matches!(h, HookEvent::PresenterAssigned { .. })));
            assert!(has(
                &|h| matches!(h, HookEvent::ChatMessage { text, .. } if text == "Public chat test")
            ));
            assert!(has(&|h| matches!(h, HookEvent::UserLeft { .. })));
            assert!(has(&|h| matches!(h, HookEvent::MeetingEnded { .. })));
        }
    }
}

/// amphi listening on a real port, a simulator that calls it back, and a client.
struct Stack {
    app: TestApp,
    public_url: String,
    sim: sim::Running,
    client: Client,
    server: tokio::task::JoinHandle<()>,
    _media: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn stack(options: SimOptions) -> Stack {
    let media = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::new(config(&public_url)).await;
    let state = app.state.clone();
    let server = tokio::spawn(async move {
        amphi::server::serve(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    let sim = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimOptions {
            secret: Redacted::new(SECRET.to_owned()),
            media_dir: Some(media.path().to_owned()),
            ..options
        },
    )
    .await
    .unwrap();
    let client = Client::new(
        &sim.api_url(),
        Redacted::new(SECRET.to_owned()),
        ChecksumAlgorithm::Sha256,
    )
    .unwrap();
    Stack {
        app,
        public_url,
        sim,
        client,
        server,
        _media: media,
    }
}

impl Stack {
    /// A recorded meeting whose callbacks point at amphi.
    fn recorded_meeting(&self, id: &str) -> CreateParams {
        let key = self.app.state.secret_key.expose().clone();
        let mut params = CreateParams {
            name: format!("Cours {id}"),
            meeting_id: id.to_owned(),
            record: true,
            auto_start_recording: Some(true),
            ..CreateParams::default()
        };
        params.metadata.insert(
            "endCallbackUrl".to_owned(),
            end_callback_url(&self.public_url, &key, id),
        );
        params.metadata.insert(
            "bbb-recording-ready-url".to_owned(),
            format!("{}/bbb/callbacks/recording-ready", self.public_url),
        );
        params
    }

    async fn join(&self, meeting_id: &str, name: &str) -> String {
        self.client
            .join_bot(&JoinParams {
                meeting_id: meeting_id.to_owned(),
                full_name: name.to_owned(),
                role: Role::Moderator,
                user_id: None,
                create_time: None,
                avatar_url: None,
                bot: false,
            })
            .await
            .unwrap()
            .user_id
    }
}

/// Waits for the next event that `wanted` accepts, keeping the others in `seen`.
async fn wait_for(
    events: &mut broadcast::Receiver<BbbEvent>,
    seen: &mut Vec<BbbEvent>,
    what: &str,
    wanted: impl Fn(&BbbEvent) -> bool,
) -> BbbEvent {
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            let event = events.recv().await.expect("event channel open");
            if wanted(&event) {
                return event;
            }
            seen.push(event);
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} event; saw {seen:#?}"))
}

async fn wait_deliveries(
    deliveries: &mut broadcast::Receiver<sim::Delivery>,
    kind: DeliveryKind,
    count: usize,
) -> Vec<sim::Delivery> {
    let mut found = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while found.len() < count {
            let delivery = deliveries.recv().await.expect("delivery channel open");
            if delivery.kind == kind {
                found.push(delivery);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} {kind:?} deliveries", found.len()));
    found
}

#[tokio::test]
async fn a_recorded_meeting_calls_amphi_back_from_creation_to_recording() {
    let stack = stack(SimOptions {
        minute: Duration::from_millis(1000),
        processing: Duration::ZERO,
        ..SimOptions::default()
    })
    .await;
    let mut events = stack.app.state.events.subscribe();
    let mut deliveries = stack.sim.state.subscribe_deliveries();
    let mut seen = Vec::new();

    let hook_url = webhook_url(&stack.public_url);
    let first = ensure_registered(&stack.client, &hook_url).await.unwrap();
    assert!(matches!(first, Registration::Created { .. }), "{first:?}");
    let again = ensure_registered(&stack.client, &hook_url).await.unwrap();
    assert!(matches!(again, Registration::Present { .. }), "{again:?}");
    assert_eq!(stack.client.hooks_list(None).await.unwrap().len(), 1);

    let id = "0042-physique";
    stack
        .client
        .create(&stack.recorded_meeting(id))
        .await
        .unwrap();
    let user = stack.join(id, "Ann Lefèvre").await;
    stack
        .client
        .send_chat_message(id, "Bonjour à tous", Some("Ann (live)"))
        .await
        .unwrap();

    wait_for(&mut events, &mut seen, "meeting-created", |e| {
        matches!(e, BbbEvent::Hook(HookEvent::MeetingCreated { meeting, record: true, .. }) if meeting.external_id == id)
    })
    .await;
    wait_for(&mut events, &mut seen, "user-joined", |e| {
        matches!(e, BbbEvent::Hook(HookEvent::UserJoined { user, .. }) if user.name.as_deref() == Some("Ann Lefèvre"))
    })
    .await;
    wait_for(&mut events, &mut seen, "chat", |e| {
        matches!(e, BbbEvent::Hook(HookEvent::ChatMessage { text, sender_name, .. }) if text == "Bonjour à tous" && sender_name == "Ann (live)")
    })
    .await;

    // The last person leaves; a (simulated) minute later the meeting ends by itself.
    let leave = reqwest::Client::new()
        .post(format!(
            "http://{}/sim/meetings/{id}/users/{user}/leave",
            stack.sim.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(leave.status(), 204);
    wait_for(&mut events, &mut seen, "user-left", |e| {
        matches!(e, BbbEvent::Hook(HookEvent::UserLeft { .. }))
    })
    .await;
    wait_for(&mut events, &mut seen, "end callback", |e| {
        *e == BbbEvent::MeetingEnded {
            meeting_id: id.to_owned(),
            recording_marks: true,
        }
    })
    .await;
    let ended = stack.sim.state.ended();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].reason, EndReason::EndedWhenLastUserLeft);

    // Two formats, two recording-ready calls, one event.
    let ready = wait_deliveries(&mut deliveries, DeliveryKind::RecordingReady, 2).await;
    assert!(ready.iter().all(|d| d.status == Some(200)), "{ready:#?}");
    let record_id = ended[0].internal_id.clone();
    wait_for(&mut events, &mut seen, "recording ready", |e| {
        *e == BbbEvent::RecordingReady(RecordingReady {
            meeting_id: id.to_owned(),
            record_id: record_id.clone(),
        })
    })
    .await;
    let mut later = Vec::new();
    wait_for(&mut events, &mut later, "rap-publish-ended", |e| {
        matches!(e, BbbEvent::Hook(HookEvent::RecordingStep { step, ended: true, .. }) if step == "publish")
    })
    .await;
    assert!(
        !later
            .iter()
            .chain(&seen)
            .any(|e| matches!(e, BbbEvent::RecordingReady(_))),
        "a second RecordingReady: {later:#?}"
    );

    // getRecordings: merged per record id, a size per format and their sum.
    let query = RecordingsQuery {
        meeting_ids: vec![id.to_owned()],
        ..RecordingsQuery::default()
    };
    let list = stack.client.get_recordings(&query).await.unwrap();
    assert_eq!(list.recordings.items.len(), 1);
    let recording = &list.recordings.items[0];
    assert_eq!(recording.record_id, record_id);
    assert_eq!(recording.state, "published");
    let kinds: Vec<&str> = recording
        .playback
        .formats
        .iter()
        .map(|f| f.kind.as_str())
        .collect();
    assert_eq!(kinds, ["presentation", "video"]);
    let sizes: u64 = recording
        .playback
        .formats
        .iter()
        .map(|f| f.size.unwrap_or(0))
        .sum();
    assert_eq!(recording.size, Some(sizes));

    // Filters and pages: by metadata, by record id prefix, with offset and limit.
    let by_meta = stack
        .client
        .get_recordings(&RecordingsQuery {
            metadata: [(
                "bbb-recording-ready-url".to_owned(),
                format!("{}/bbb/callbacks/recording-ready", stack.public_url),
            )]
            .into(),
            ..RecordingsQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_meta.recordings.items.len(), 1);
    let by_other_meta = stack
        .client
        .get_recordings(&RecordingsQuery {
            metadata: [("bbb-origin".to_owned(), "elsewhere".to_owned())].into(),
            ..RecordingsQuery::default()
        })
        .await
        .unwrap();
    assert!(by_other_meta.recordings.items.is_empty());
    let by_prefix = stack
        .client
        .get_recordings(&RecordingsQuery {
            record_ids: vec![record_id[..12].to_owned()],
            ..RecordingsQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_prefix.recordings.items.len(), 1);
    let second_page = stack
        .client
        .get_recordings(&RecordingsQuery {
            offset: Some(1),
            limit: Some(10),
            ..RecordingsQuery::default()
        })
        .await
        .unwrap();
    assert!(second_page.recordings.items.is_empty());
    let pagination = second_page.pagination.expect("pagination when paged");
    assert_eq!(pagination.total_elements, 1);
    assert!(pagination.empty);

    // The video playback page points to a real MP4.
    let video = &recording.playback.formats[1];
    assert!(video.size.unwrap_or(0) > 10_000, "{video:?}");
    let http = reqwest::Client::new();
    let page = http
        .get(&video.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let source = page
        .split("<source src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a <source> in the video page");
    let file = http
        .get(format!("{}{source}", video.url))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    let bytes = file.bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"ftyp", "an MP4 file");
    assert_eq!(bytes.len() as u64, video.size.unwrap());

    // Unpublish, update, delete.
    assert!(
        !stack
            .client
            .publish_recordings(std::slice::from_ref(&record_id), false)
            .await
            .unwrap()
    );
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("name".to_owned(), "Cours 1 (corrigé)".to_owned());
    assert!(
        stack
            .client
            .update_recordings(std::slice::from_ref(&record_id), &meta)
            .await
            .unwrap()
    );
    let list = stack.client.get_recordings(&query).await.unwrap();
    assert_eq!(list.recordings.items[0].state, "unpublished");
    assert_eq!(
        list.recordings.items[0]
            .metadata
            .get("name")
            .map(String::as_str),
        Some("Cours 1 (corrigé)")
    );
    assert!(
        stack
            .client
            .delete_recordings(std::slice::from_ref(&record_id))
            .await
            .unwrap()
    );
    assert!(
        stack
            .client
            .get_recordings(&query)
            .await
            .unwrap()
            .recordings
            .items
            .is_empty()
    );
    let deleted = stack
        .client
        .get_recordings(&RecordingsQuery {
            states: vec!["deleted".to_owned()],
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(deleted.recordings.items.len(), 1);
    wait_for(&mut events, &mut later, "rap-deleted", |e| {
        matches!(e, BbbEvent::Hook(HookEvent::RecordingChanged { change, .. }) if change == "deleted")
    })
    .await;
}

#[tokio::test]
async fn meetings_end_by_duration_and_when_nobody_joins() {
    let stack = stack(SimOptions {
        minute: Duration::from_millis(50),
        processing: Duration::ZERO,
        ..SimOptions::default()
    })
    .await;
    let mut events = stack.app.state.events.subscribe();
    let mut seen = Vec::new();
    let mut timed = stack.recorded_meeting("0050-duree");
    timed.record = false;
    timed.duration_minutes = Some(1);
    stack.client.create(&timed).await.unwrap();
    stack.join("0050-duree", "Ann").await;
    let mut empty = stack.recorded_meeting("0051-vide");
    empty.record = false;
    stack.client.create(&empty).await.unwrap();

    for id in ["0050-duree", "0051-vide"] {
        wait_for(&mut events, &mut seen, "end callback", |e| {
            matches!(e, BbbEvent::MeetingEnded { meeting_id, recording_marks: false } if meeting_id == id)
        })
        .await;
    }
    let reasons: Vec<(String, EndReason)> = stack
        .sim
        .state
        .ended()
        .into_iter()
        .map(|e| (e.meeting_id, e.reason))
        .collect();
    assert!(reasons.contains(&(
        "0050-duree".to_owned(),
        EndReason::EndedAfterExceedingDuration
    )));
    assert!(reasons.contains(&("0051-vide".to_owned(), EndReason::EndedWhenNotJoined)));
    assert!(stack.sim.state.recordings().is_empty(), "not recorded");
}

#[tokio::test]
async fn esr_playback_tokens_work_once() {
    let stack = stack(SimOptions {
        esr_tokens: true,
        processing: Duration::ZERO,
        ..SimOptions::default()
    })
    .await;
    let mut events = stack.app.state.events.subscribe();
    let mut seen = Vec::new();
    let id = "0060-esr";
    stack
        .client
        .create(&stack.recorded_meeting(id))
        .await
        .unwrap();
    stack.join(id, "Ann").await;
    stack.client.end(id).await.unwrap();
    wait_for(
        &mut events,
        &mut seen,
        "recording ready",
        |e| matches!(e, BbbEvent::RecordingReady(r) if r.meeting_id == id),
    )
    .await;

    let query = RecordingsQuery {
        meeting_ids: vec![id.to_owned()],
        ..RecordingsQuery::default()
    };
    let video_url = |list: amphi::bbb::xml::Recordings| {
        list.recordings.items[0]
            .playback
            .formats
            .iter()
            .find(|f| f.kind == "video")
            .unwrap()
            .url
            .clone()
    };
    let url = video_url(stack.client.get_recordings(&query).await.unwrap());
    assert!(url.contains("/video?token="), "{url}");
    let record_id = url
        .split("/recording/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();

    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let page = browser.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let file_url = format!(
        "http://{}/video/{record_id}/{}",
        stack.sim.addr,
        sim::VIDEO_FILE
    );
    let file = browser.get(&file_url).send().await.unwrap();
    assert_eq!(
        file.status(),
        200,
        "the session the token opened gets the file"
    );
    assert_eq!(&file.bytes().await.unwrap()[4..8], b"ftyp");

    let again = browser.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 403, "a token works once");
    let stranger = reqwest::Client::new().get(&file_url).send().await.unwrap();
    assert_eq!(stranger.status(), 403, "no session, no file");

    let fresh = video_url(stack.client.get_recordings(&query).await.unwrap());
    assert_ne!(fresh, url);
    assert_eq!(browser.get(&fresh).send().await.unwrap().status(), 200);
}
