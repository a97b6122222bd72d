//! Meetings end to end against the BBB simulator: the owner creates a meeting with the form and
//! starts it (the simulator sees every parameter), viewers join by password and by direct
//! link, restricted meetings refuse anonymous visitors, the journal records everyone, the list
//! asks BBB once for every card, and the owner ends the meeting.

use crate::support::TestApp;
use amphi::config::{ChecksumAlgorithm, Config};
use amphi::redact::Redacted;
use amphi::sim::{self, SimOptions};
use axum::http::StatusCode;

const SECRET: &str = "meetings-sim-secret";

struct World {
    app: TestApp,
    sim: sim::Running,
}

async fn world() -> World {
    world_at("https://amphi.univ.example").await
}

/// amphi (in process) and the simulator, amphi believing it is reached at `public_url`.
async fn world_at(public_url: &str) -> World {
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
    let mut config = Config {
        public_url: public_url.to_owned(),
        ..Config::default()
    };
    config.bbb.api_url = sim.api_url();
    config.bbb.secret = Redacted::new(SECRET.to_owned());
    config.bbb.checksum = ChecksumAlgorithm::Sha256;
    let app = TestApp::new(config).await;
    World { app, sim }
}

/// Logs a new browser in as a new user.
async fn browser(world: &World, username: &str) -> TestApp {
    let mut browser = world.app.another_browser();
    browser.add_user(username, "correct horse battery").await;
    let page = browser.login(username, "correct horse battery").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    browser
}

/// Submits the new-meeting form.
async fn add_meeting(owner: &mut TestApp, fields: &[(&str, &str)]) -> crate::support::Page {
    let form = owner.get("/meeting/add").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let token = form.csrf_token();
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    owner.post_form("/meeting/add", &all).await
}

const PHYSICS: &[(&str, &str)] = &[
    ("name", "Physique quantique"),
    ("attendee_password", "quanta42"),
    ("start", "2026-12-07"),
    ("start_time", "14:00"),
    ("expected_duration", "2"),
    ("welcome_text", "Bienvenue en L3"),
    ("max_participants", "80"),
    ("voice_bridge", "71234"),
    ("record", "on"),
    ("allow_start_stop_recording", "on"),
    ("lock_settings_disable_private_chat", "on"),
    ("guest_policy", "ASK_MODERATOR"),
];

/// Follows a BBB join URL like a browser, so the simulator counts the person in.
async fn enter_bbb(url: &str) {
    let response = reqwest::Client::new().get(url).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
}

#[tokio::test]
async fn owners_start_viewers_join_and_the_journal_remembers() {
    let world = world().await;
    let mut ann = browser(&world, "ann").await;

    // The list makes the personal room on the first visit.
    let list = ann.get("/meeting/").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains("Salle de réunion personnelle")
            || list.body.contains("Personal meeting room"),
        "{}",
        list.body
    );

    let created = add_meeting(&mut ann, PHYSICS).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let ann_id = ann
        .state
        .db
        .user_by_username("ann")
        .await
        .unwrap()
        .unwrap()
        .id;
    let meetings = ann.state.db.meetings_of(ann_id).await.unwrap();
    let physics = meetings.iter().find(|m| !m.is_personal).unwrap().clone();
    assert_eq!(
        physics.meeting_id,
        format!("{:04}-physique-quantique", physics.id)
    );
    assert_eq!(
        world.sim.state.call_count("create"),
        0,
        "no BBB call before the start"
    );

    // The owner starts it: BBB create with Pod's parameters, then a moderator join.
    let start = ann.get(&format!("/meeting/{}/", physics.meeting_id)).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let join_url = start.location().unwrap().to_owned();
    assert!(
        join_url.starts_with(&world.sim.api_url()) && join_url.contains("role=MODERATOR"),
        "{join_url}"
    );
    let bbb = world.sim.state.meetings();
    let params = &bbb
        .iter()
        .find(|m| m.meeting_id == physics.meeting_id)
        .unwrap()
        .create_params;
    let expect = |name: &str, value: &str| {
        assert_eq!(
            params.get(name).map(String::as_str),
            Some(value),
            "{name} in {params:?}"
        );
    };
    expect("name", "Physique quantique");
    expect("attendeePW", "quanta42");
    expect("welcome", "Bienvenue en L3");
    expect("maxParticipants", "80");
    expect("voiceBridge", "71234");
    expect("record", "true");
    expect("autoStartRecording", "false");
    expect("allowStartStopRecording", "true");
    expect("guestPolicy", "ASK_MODERATOR");
    expect("lockSettingsDisablePrivateChat", "true");
    expect("lockSettingsDisableCam", "false");
    expect("logoutURL", "https://amphi.univ.example");
    expect("duration", "300");
    expect(
        "meta_bbb-recording-ready-url",
        "https://amphi.univ.example/bbb/callbacks/recording-ready",
    );
    let end_callback = params.get("meta_endCallbackUrl").unwrap();
    assert!(
        end_callback.starts_with("https://amphi.univ.example/bbb/callbacks/end?token="),
        "{end_callback}"
    );
    enter_bbb(&join_url).await;
    let stored = ann.state.db.meeting(physics.id).await.unwrap().unwrap();
    assert!(
        stored.is_running
            && stored.internal_meeting_id.is_some()
            && !stored.moderator_password.is_empty()
    );

    // An anonymous visitor with the password.
    let mut visitor = world.app.another_browser();
    let page = visitor
        .get(&format!("/meeting/{}/", physics.meeting_id))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("name=\"password\"") && page.body.contains("name=\"name\""),
        "{}",
        page.body
    );
    let token = page.csrf_token();
    let action = format!("/meeting/{}/", physics.meeting_id);
    let wrong = visitor
        .post_form(
            &action,
            &[
                ("csrf_token", &token),
                ("name", "Zoé"),
                ("password", "guess"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    let right = visitor
        .post_form(
            &action,
            &[
                ("csrf_token", &token),
                ("name", "Zoé"),
                ("password", "quanta42"),
            ],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.body);
    let viewer_url = right.location().unwrap();
    assert!(
        viewer_url.contains("role=VIEWER") && viewer_url.contains("fullName=Zo"),
        "{viewer_url}"
    );
    enter_bbb(viewer_url).await;

    // A logged-in user with the direct link goes straight in.
    let mut bob = browser(&world, "bob").await;
    let key =
        amphi::meetings::direct_access_key(b"test-secret-key-for-csrf", physics.id, "quanta42");
    let direct = bob
        .get(&format!("/meeting/{}/{key}", physics.meeting_id))
        .await;
    assert_eq!(direct.status, StatusCode::SEE_OTHER, "{}", direct.body);
    assert!(direct.location().unwrap().contains("userID=bob"));
    let tampered = bob
        .get(&format!(
            "/meeting/{}/{}",
            physics.meeting_id,
            "0".repeat(64)
        ))
        .await;
    assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
    // Links made before a rename still work: the number decides.
    let renamed = bob
        .get(&format!("/meeting/{:04}-old-name/{key}", physics.id))
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER);

    // The journal: one session, the owner then the viewers.
    let session = ann
        .state
        .db
        .current_session(physics.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.creator_id, Some(ann_id));
    let people: Vec<(String, String)> = ann
        .state
        .db
        .participants(session.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.full_name, p.role))
        .collect();
    assert_eq!(
        people,
        [
            ("ann".to_owned(), "MODERATOR".to_owned()),
            ("Zoé".to_owned(), "VIEWER".to_owned()),
            ("bob".to_owned(), "VIEWER".to_owned()),
            ("bob".to_owned(), "VIEWER".to_owned()),
        ]
    );

    // The list shows it running, with one getMeetings for the whole page, even twice.
    let before = world.sim.state.call_count("getMeetings");
    let running_before = world.sim.state.call_count("isMeetingRunning");
    for _ in 0..2 {
        let list = ann.get("/meeting/").await;
        assert!(
            list.body.contains("data-status=\"running\""),
            "{}",
            list.body
        );
    }
    assert_eq!(world.sim.state.call_count("getMeetings"), before + 1);
    assert_eq!(
        world.sim.state.call_count("isMeetingRunning"),
        running_before
    );

    // Meeting information for the owner, not for a viewer.
    let info = ann
        .get(&format!("/meeting/get_meeting_info/{}", physics.meeting_id))
        .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    let info: serde_json::Value = serde_json::from_str(&info.body).unwrap();
    assert_eq!(info["info"]["meetingName"], "Physique quantique");
    // Ann and Zoé went on into BBB; bob only got his links.
    assert_eq!(info["info"]["attendees"].as_array().map(Vec::len), Some(2));
    let refused = bob
        .get(&format!("/meeting/get_meeting_info/{}", physics.meeting_id))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let page = ann
        .get_with(
            &format!("/meeting/get_meeting_info/{}", physics.meeting_id),
            &[("accept", "text/html"), ("accept-language", "en")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Participants present") && page.body.contains("Zoé"),
        "{}",
        page.body
    );

    // The owner ends it.
    let list = ann.get("/meeting/").await;
    let token = list.csrf_token();
    let ended = ann
        .post_form(
            &format!("/meeting/end/{}", physics.meeting_id),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "{}", ended.body);
    assert!(
        world
            .sim
            .state
            .meetings()
            .iter()
            .all(|m| m.meeting_id != physics.meeting_id)
    );
    let stored = ann.state.db.meeting(physics.id).await.unwrap().unwrap();
    assert!(!stored.is_running);
    let session = ann
        .state
        .db
        .current_session(physics.id)
        .await
        .unwrap()
        .unwrap();
    assert!(session.ended_at.is_some());
}

#[tokio::test]
async fn restricted_meetings_refuse_anonymous_visitors_and_strangers_cannot_manage() {
    let world = world().await;
    let mut ann = browser(&world, "ann").await;
    let mut restricted = PHYSICS.to_vec();
    restricted.retain(|(k, _)| *k != "name");
    restricted.extend([("name", "Séminaire interne"), ("is_restricted", "on")]);
    assert_eq!(
        add_meeting(&mut ann, &restricted).await.status,
        StatusCode::SEE_OTHER
    );
    let seminar = ann.first_meeting_of("ann").await;
    let started = ann.get(&format!("/meeting/{}/", seminar.meeting_id)).await;
    enter_bbb(started.location().unwrap()).await;

    let mut anonymous = world.app.another_browser();
    let refused = anonymous
        .get(&format!("/meeting/{}/", seminar.meeting_id))
        .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert!(
        refused.location().unwrap().starts_with("/login?next="),
        "{:?}",
        refused.location()
    );

    // A logged-in stranger may join as a viewer but not edit, delete or end.
    let mut eve = browser(&world, "eve").await;
    let page = eve.get(&format!("/meeting/{}/", seminar.meeting_id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"password\"") && !page.body.contains("name=\"name\""));
    for path in [
        format!("/meeting/edit/{}", seminar.meeting_id),
        format!("/meeting/delete/{}", seminar.meeting_id),
    ] {
        assert_eq!(eve.get(&path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let token = page.csrf_token();
    let end = eve
        .post_form(
            &format!("/meeting/end/{}", seminar.meeting_id),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(end.status, StatusCode::FORBIDDEN);
    assert!(
        world
            .sim
            .state
            .meetings()
            .iter()
            .any(|m| m.meeting_id == seminar.meeting_id)
    );

    // Unknown ids and malformed links.
    for path in [
        "/meeting/9999-nothing/",
        "/meeting/abc/",
        "/meeting/edit/0000-x",
    ] {
        assert_eq!(ann.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_form_says_what_is_wrong_and_calls_no_one() {
    let world = world().await;
    let mut ann = browser(&world, "ann").await;
    let page = add_meeting(
        &mut ann,
        &[
            ("name", "x"),
            ("attendee_password", "pw"),
            ("start", "2026-02-30"),
            ("start_time", "14:00"),
            ("expected_duration", "2"),
            ("voice_bridge", "123"),
            ("recurrence", "weekly"),
            ("additional_owners", "ann, nobody"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["name", "start", "voice_bridge"] {
        assert!(
            page.body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            page.body
        );
    }
    // The typed values come back.
    assert!(page.body.contains("value=\"pw\""));
    let ann_id = ann
        .state
        .db
        .user_by_username("ann")
        .await
        .unwrap()
        .unwrap()
        .id;
    assert!(
        ann.state
            .db
            .meetings_of(ann_id)
            .await
            .unwrap()
            .iter()
            .all(|m| m.is_personal)
    );

    // Co-owners: the owner cannot be one, unknown users are named.
    let page = add_meeting(
        &mut ann,
        &[
            ("name", "Cours"),
            ("attendee_password", "pw"),
            ("start", "2026-12-07"),
            ("start_time", "14:00"),
            ("expected_duration", "2"),
            ("additional_owners", "nobody"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("nobody"), "{}", page.body);
    assert_eq!(world.sim.state.call_count("create"), 0);
}

/// Polls `check` until it holds (the journal applies events on its own task).
pub(crate) async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_journal_follows_bbb_through_webhooks_callbacks_and_sampling() {
    use amphi::bbb::callbacks::webhook_url;
    use amphi::bbb::webhooks::ensure_registered;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let world = world_at(&public_url).await;
    let state = world.app.state.clone();
    let server = tokio::spawn(async move {
        amphi::server::serve(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    let api = world.app.state.bbb.clone().unwrap();
    ensure_registered(api.as_ref(), &webhook_url(&public_url))
        .await
        .unwrap();

    let mut ann = browser(&world, "ann").await;
    assert_eq!(
        add_meeting(&mut ann, PHYSICS).await.status,
        StatusCode::SEE_OTHER
    );
    let db = ann.state.db.clone();
    let physics = ann.first_meeting_of("ann").await;
    let start = ann.get(&format!("/meeting/{}/", physics.meeting_id)).await;
    enter_bbb(start.location().unwrap()).await;
    // Someone joins BBB without amphi: the webhook puts them in the journal too.
    let direct = amphi::bbb::JoinParams {
        meeting_id: physics.meeting_id.clone(),
        full_name: "Dial-in guest".into(),
        role: amphi::bbb::Role::Viewer,
        user_id: None,
        create_time: None,
        avatar_url: None,
        bot: false,
    };
    let guest = api.join_bot(&direct).await.unwrap();

    let session = db.current_session(physics.id).await.unwrap().unwrap();
    wait_until("both joins linked", || {
        let db = db.clone();
        async move {
            let people = db.participants(session.id).await.unwrap();
            people.len() == 2 && people.iter().all(|p| p.bbb_user_id.is_some())
        }
    })
    .await;

    // The guest leaves: the webhook closes their entry.
    let left = reqwest::Client::new()
        .post(format!(
            "http://{}/sim/meetings/{}/users/{}/leave",
            world.sim.addr, physics.meeting_id, guest.user_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 204);
    wait_until("the guest's leave time", || {
        let db = db.clone();
        async move {
            db.participants(session.id)
                .await
                .unwrap()
                .iter()
                .any(|p| p.full_name == "Dial-in guest" && p.left_at.is_some())
        }
    })
    .await;

    // Sampling counts who is there.
    let status = amphi::meetings::start::StatusCache::new(std::time::Duration::ZERO);
    let later = chrono::Utc::now();
    amphi::meetings::journal::sample(&db, api.as_ref(), &status, later)
        .await
        .unwrap();
    let counts = db.participant_counts(session.id).await.unwrap();
    assert_eq!(counts.last().map(|(_, n)| *n), Some(1), "{counts:?}");

    // Ended in BBB directly: the end callback closes the meeting and its session.
    api.end(&physics.meeting_id).await.unwrap();
    wait_until("the end callback", || {
        let db = db.clone();
        async move {
            let meeting = db.meeting(physics.id).await.unwrap().unwrap();
            let session = db.current_session(physics.id).await.unwrap().unwrap();
            !meeting.is_running && session.ended_at.is_some()
        }
    })
    .await;
    let everyone_left = db.participants(session.id).await.unwrap();
    assert!(everyone_left.iter().all(|p| p.left_at.is_some()));
    server.abort();
}

/// A multipart body: the CSRF token first, then one file.
fn multipart(token: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "amphi-test-boundary-7d1f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"slides\"; filename=\"{file_name}\"\r\nContent-Type: application/pdf\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    app: &mut TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> crate::support::Page {
    let request = axum::http::Request::post(path)
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .unwrap();
    app.send(request).await
}

#[tokio::test]
async fn slides_travel_inline_when_small_and_by_url_when_large() {
    let world = world().await;
    let mut ann = browser(&world, "ann").await;
    assert_eq!(
        add_meeting(&mut ann, PHYSICS).await.status,
        StatusCode::SEE_OTHER
    );
    let physics = ann.first_meeting_of("ann").await;
    let path = format!("/meeting/slides/{}", physics.meeting_id);
    let page = ann.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = page.csrf_token();

    // Refused: no CSRF token, a format BBB cannot show, more than 30 MB.
    let (content_type, body) = multipart("forged", "cours.pdf", b"%PDF-1.4");
    assert_eq!(
        upload(&mut ann, &path, &content_type, body).await.status,
        StatusCode::FORBIDDEN
    );
    let (content_type, body) = multipart(&token, "virus.exe", b"MZ");
    let refused = upload(&mut ann, &path, &content_type, body).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let (content_type, body) = multipart(&token, "huge.pdf", &vec![b'%'; 30 * 1024 * 1024 + 1]);
    assert_eq!(
        upload(&mut ann, &path, &content_type, body).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Over 1 MB: BBB downloads it from amphi's URL.
    let big = vec![b'%'; 1_500_000];
    let (content_type, body) = multipart(&token, "Cours n°1.pdf", &big);
    let stored = upload(&mut ann, &path, &content_type, body).await;
    assert_eq!(stored.status, StatusCode::SEE_OTHER, "{}", stored.body);
    let meeting = ann.state.db.meeting(physics.id).await.unwrap().unwrap();
    assert_eq!(meeting.slides.as_deref(), Some("cours-n1.pdf"));
    let params = amphi::meetings::start::create_params(
        &meeting,
        &ann.state.config,
        ann.state.secret_key.expose(),
        amphi::meetings::start::meeting_slides(
            &ann.state.config,
            ann.state.secret_key.expose(),
            &meeting,
        )
        .await,
    );
    let amphi::bbb::Document::Url { url, .. } = &params.documents[0] else {
        panic!("a large file goes by URL: {:?}", params.documents.len());
    };
    let local = url.trim_start_matches("https://amphi.univ.example");
    let fetched = ann.another_browser().get(local).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body.len(), big.len());
    let forged = local.replace(&local[local.len() - 40..local.len() - 20], &"0".repeat(20));
    assert_eq!(
        ann.another_browser().get(&forged).await.status,
        StatusCode::NOT_FOUND
    );

    // Small: inline in the create body, which the simulator reads.
    let (content_type, body) = multipart(&token, "plan.pdf", b"%PDF-1.4 small");
    assert_eq!(
        upload(&mut ann, &path, &content_type, body).await.status,
        StatusCode::SEE_OTHER
    );
    let start = ann.get(&format!("/meeting/{}/", physics.meeting_id)).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let sim_meeting = world
        .sim
        .state
        .meetings()
        .into_iter()
        .find(|m| m.meeting_id == physics.meeting_id)
        .unwrap();
    assert_eq!(sim_meeting.documents, ["plan.pdf"]);
    assert!(
        !ann.state
            .config
            .data_dir
            .join("slides")
            .join(physics.id.to_string())
            .join("cours-n1.pdf")
            .exists(),
        "the old file is gone"
    );
}

#[tokio::test]
async fn wrong_meeting_passwords_are_throttled_per_address() {
    let world = world().await;
    let mut ann = browser(&world, "ann").await;
    assert_eq!(
        add_meeting(&mut ann, PHYSICS).await.status,
        StatusCode::SEE_OTHER
    );
    let physics = ann.first_meeting_of("ann").await;
    let started = ann.get(&format!("/meeting/{}/", physics.meeting_id)).await;
    enter_bbb(started.location().unwrap()).await;

    let limit = ann.state.config.auth.login_max_failures_per_ip;
    let mut guesser = world.app.another_browser();
    let path = format!("/meeting/{}/", physics.meeting_id);
    let token = guesser.get(&path).await.csrf_token();
    for attempt in 0..limit {
        let page = guesser
            .post_form(
                &path,
                &[
                    ("csrf_token", &token),
                    ("name", "Eve"),
                    ("password", &format!("guess{attempt}")),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    // Even the right password now waits: the address is throttled.
    let blocked = guesser
        .post_form(
            &path,
            &[
                ("csrf_token", &token),
                ("name", "Eve"),
                ("password", "quanta42"),
            ],
        )
        .await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        blocked.body
    );
    assert!(blocked.headers.contains_key("retry-after"));
    // Another address is not affected.
    let mut other = world.app.another_browser();
    other.peer = "192.0.2.7:40000".parse().unwrap();
    let token = other.get(&path).await.csrf_token();
    let fine = other
        .post_form(
            &path,
            &[
                ("csrf_token", &token),
                ("name", "Zoé"),
                ("password", "quanta42"),
            ],
        )
        .await;
    assert_eq!(fine.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pods_links_webinar_rights_and_co_owners() {
    let world = world().await;
    let mut ann = browser(&world, "ann").await;
    // The owner cannot also be a co-owner.
    let mut doubled = PHYSICS.to_vec();
    doubled.push(("additional_owners", "ann"));
    let page = add_meeting(&mut ann, &doubled).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("id=\"additional_owners-error\""),
        "{}",
        page.body
    );

    assert_eq!(
        add_meeting(&mut ann, PHYSICS).await.status,
        StatusCode::SEE_OTHER
    );
    let physics = ann.first_meeting_of("ann").await;
    // Pod's URLs, with their trailing slash, still work.
    for path in [
        "/meeting/add/".to_owned(),
        format!("/meeting/edit/{}/", physics.meeting_id),
        format!("/meeting/delete/{}/", physics.meeting_id),
        format!("/meeting/invite/{}/", physics.meeting_id),
    ] {
        assert_eq!(ann.get(&path).await.status, StatusCode::OK, "{path}");
    }

    // Webinar fields: for members of the affiliations of webinar.affiliations, not for ann.
    let form = ann.get("/meeting/add").await;
    assert!(!form.body.contains("name=\"is_webinar\""));
    let mut carl = world.app.another_browser();
    carl.add_user("carl", "correct horse battery").await;
    carl.state
        .db
        .set_user_access_groups(
            carl.state
                .db
                .user_by_username("carl")
                .await
                .unwrap()
                .unwrap()
                .id,
            &["faculty".to_owned()],
        )
        .await
        .unwrap();
    carl.login("carl", "correct horse battery").await;
    let form = carl.get("/meeting/add").await;
    assert!(form.body.contains("name=\"is_webinar\""), "{}", form.body);
    let token = form.csrf_token();
    let mut webinar = PHYSICS.to_vec();
    webinar.extend([
        ("csrf_token", token.as_str()),
        ("is_webinar", "on"),
        ("additional_owners", "ann"),
    ]);
    assert_eq!(
        carl.post_form("/meeting/add", &webinar).await.status,
        StatusCode::SEE_OTHER
    );
    let made = carl.first_meeting_of("carl").await;
    assert!(made.fields.is_webinar);
    // Ann, a co-owner without webinar rights, edits it: it stays a webinar.
    let edit = ann.get(&format!("/meeting/edit/{}", made.meeting_id)).await;
    let token = edit.csrf_token();
    let mut fields = PHYSICS.to_vec();
    fields.retain(|(k, _)| *k != "name");
    fields.extend([
        ("csrf_token", token.as_str()),
        ("name", "Webinaire renommé"),
    ]);
    let saved = ann
        .post_form(&format!("/meeting/edit/{}", made.meeting_id), &fields)
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let after = ann.state.db.meeting(made.id).await.unwrap().unwrap();
    assert!(after.fields.is_webinar && after.fields.name == "Webinaire renommé");
}
