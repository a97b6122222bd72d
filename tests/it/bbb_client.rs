//! The BBB client against the simulator over real HTTP on 127.0.0.1.

use amphi::bbb::{
    self, BbbApi, Client, CreateParams, Document, Error, JoinParams, MessageKey, RecordingsQuery,
    Role,
};
use amphi::config::ChecksumAlgorithm;
use amphi::redact::Redacted;
use amphi::sim::{self, SimOptions};
use std::time::Duration;

const SECRET: &str = "sim-secret-0123456789";

async fn simulator(checksums: Vec<ChecksumAlgorithm>) -> sim::Running {
    amphi::install_crypto_provider();
    let options = SimOptions {
        secret: Redacted::new(SECRET.to_owned()),
        checksums,
        ..SimOptions::default()
    };
    sim::start("127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap()
}

fn client(sim: &sim::Running, algorithm: ChecksumAlgorithm) -> Client {
    Client::new(&sim.api_url(), Redacted::new(SECRET.to_owned()), algorithm)
        .unwrap()
        .with_retries(3, Duration::from_millis(5))
}

fn meeting(id: &str) -> CreateParams {
    CreateParams {
        name: format!("Cours {id}"),
        meeting_id: id.to_owned(),
        ..CreateParams::default()
    }
}

fn bot(meeting_id: &str) -> JoinParams {
    JoinParams {
        meeting_id: meeting_id.to_owned(),
        full_name: "Live stream".to_owned(),
        role: Role::Moderator,
        user_id: Some("amphi-live-1".to_owned()),
        create_time: None,
        avatar_url: None,
        bot: true,
    }
}

#[tokio::test]
async fn all_four_checksum_algorithms_are_accepted() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    for algorithm in ChecksumAlgorithm::ALL {
        let api = client(&sim, algorithm);
        api.create(&meeting(&format!("algo-{}", algorithm.name())))
            .await
            .unwrap();
        assert!(
            api.get_meetings()
                .await
                .unwrap()
                .iter()
                .any(|m| m.meeting_id == format!("algo-{}", algorithm.name()))
        );
    }
}

#[tokio::test]
async fn wrong_secret_and_disallowed_algorithm_are_checksum_errors() {
    let sim = simulator(vec![ChecksumAlgorithm::Sha1, ChecksumAlgorithm::Sha256]).await;
    let wrong = Client::new(
        &sim.api_url(),
        Redacted::new("not-the-secret".into()),
        ChecksumAlgorithm::Sha256,
    )
    .unwrap();
    let err = wrong.get_meetings().await.unwrap_err();
    assert_eq!(err.key(), Some(&MessageKey::ChecksumError), "{err}");
    assert!(err.to_string().contains("shared secret"), "{err}");
    let sha512 = client(&sim, ChecksumAlgorithm::Sha512);
    assert_eq!(
        sha512.get_meetings().await.unwrap_err().key(),
        Some(&MessageKey::ChecksumError)
    );
    assert!(!format!("{wrong:?}").contains("not-the-secret"));
}

#[tokio::test]
async fn create_join_info_chat_end() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha256);

    let version = api.api_version().await.unwrap();
    assert_eq!(version.bbb_version, "3.0.19");
    assert!(
        version
            .graphql_websocket_url
            .unwrap()
            .starts_with("ws://127.0.0.1:")
    );

    let mut params = meeting("0001-amphi");
    params.metadata.insert(
        "endCallbackUrl".into(),
        "https://amphi.example/cb?t=x".into(),
    );
    let (created, duplicate) = api.create(&params).await.unwrap();
    assert!(!duplicate);
    let (sha, time) = created.internal_meeting_id.split_once('-').unwrap();
    assert_eq!(sha.len(), 40);
    assert_eq!(time, created.create_time.to_string());
    let (again, duplicate) = api.create(&params).await.unwrap();
    assert!(duplicate);
    assert_eq!(again.internal_meeting_id, created.internal_meeting_id);

    let mut other_passwords = params.clone();
    other_passwords.attendee_pw = Some("different".into());
    assert_eq!(
        api.create(&other_passwords).await.unwrap_err().key(),
        Some(&MessageKey::IdNotUnique)
    );

    assert!(!api.is_meeting_running("0001-amphi").await.unwrap());
    let joined = api.join_bot(&bot("0001-amphi")).await.unwrap();
    assert!(joined.user_id.starts_with("w_") && joined.user_id.len() == 14);
    assert_eq!(joined.session_token.expose().len(), 16);
    assert_eq!(joined.auth_token.expose().len(), 12);
    assert!(
        joined.jsessionid.is_some(),
        "redirect=false sets the session cookie too"
    );
    assert_eq!(joined.meeting_id, created.internal_meeting_id);
    assert!(api.is_meeting_running("0001-amphi").await.unwrap());

    let info = api.get_meeting_info("0001-amphi").await.unwrap();
    assert_eq!(info.attendees.items.len(), 1);
    assert_eq!(info.attendees.items[0].full_name, "Live stream");
    assert_eq!(info.attendees.items[0].user_id, "amphi-live-1");
    assert_eq!(
        info.metadata.get("endcallbackurl").map(String::as_str),
        Some("https://amphi.example/cb?t=x")
    );
    assert_eq!(info.moderator_count, 1);

    api.send_chat_message(
        "0001-amphi",
        "Question : peut-on revoir la diapo 3 ?",
        Some("Ann (live)"),
    )
    .await
    .unwrap();
    let chat: serde_json::Value =
        reqwest::get(format!("http://{}/sim/meetings/0001-amphi/chat", sim.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(chat[0]["sender_name"], "Ann (live)");
    assert_eq!(chat[0]["message_type"], "api");
    assert_eq!(chat[0]["message"], "Question : peut-on revoir la diapo 3 ?");

    api.end("0001-amphi").await.unwrap();
    assert_eq!(
        api.get_meeting_info("0001-amphi").await.unwrap_err().key(),
        Some(&MessageKey::NotFound)
    );
    assert_eq!(
        api.end("0001-amphi").await.unwrap_err().key(),
        Some(&MessageKey::NotFound)
    );
    let err = api
        .send_chat_message("0001-amphi", "hello", None)
        .await
        .unwrap_err();
    assert_eq!(err.key(), Some(&MessageKey::MeetingNotFound));
}

#[tokio::test]
async fn browser_join_url_redirects_to_the_client_page() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha1);
    api.create(&meeting("0002-td")).await.unwrap();
    let mut params = bot("0002-td");
    params.bot = false;
    params.role = Role::Viewer;
    params.full_name = "Chloé Martin".into();
    let url = api.join_url(&params);
    assert_eq!(format!("{url:?}"), "[redacted]");
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = no_redirect.get(url.expose()).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    let page = reqwest::get(url.expose())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("You joined as <strong>Chloé Martin</strong> (VIEWER)"),
        "{page}"
    );
}

#[tokio::test]
async fn join_errors_are_typed() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha256);
    assert_eq!(
        api.join_bot(&bot("nope")).await.unwrap_err().key(),
        Some(&MessageKey::InvalidMeetingIdentifier)
    );
    let (created, _) = api.create(&meeting("0003-x")).await.unwrap();
    let mut stale = bot("0003-x");
    stale.create_time = Some(created.create_time - 1);
    assert_eq!(
        api.join_bot(&stale).await.unwrap_err().key(),
        Some(&MessageKey::MismatchCreateTimeParam)
    );
    let mut bad = meeting("a,b");
    bad.name = "ok name".into();
    assert_eq!(
        api.create(&bad).await.unwrap_err().key(),
        Some(&MessageKey::ValidationError)
    );
}

#[tokio::test]
async fn slides_travel_in_the_create_body_and_insert_document() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha256);
    let mut params = meeting("0004-slides");
    params.documents = vec![
        Document::Inline {
            filename: "intro.pdf".into(),
            bytes: b"%PDF-1.4 tiny".to_vec(),
        },
        Document::Url {
            url: "https://files.example/cours.pdf".into(),
            filename: "cours.pdf".into(),
        },
    ];
    api.create(&params).await.unwrap();
    api.insert_document(
        "0004-slides",
        &[Document::Url {
            url: "https://files.example/td.pdf".into(),
            filename: "td.pdf".into(),
        }],
    )
    .await
    .unwrap();
    let documents = &sim.state.meetings()[0].documents;
    assert_eq!(documents, &["intro.pdf", "cours.pdf", "td.pdf"]);
}

#[tokio::test]
async fn recordings_calls_answer_like_bbb() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha256);
    let filter = RecordingsQuery {
        meeting_ids: vec!["0005".into()],
        limit: Some(10),
        ..Default::default()
    };
    assert!(
        api.get_recordings(&filter)
            .await
            .unwrap()
            .recordings
            .items
            .is_empty()
    );
    let ids = vec!["abc-1".to_owned()];
    assert_eq!(
        api.publish_recordings(&ids, true).await.unwrap_err().key(),
        Some(&MessageKey::NotFound)
    );
    assert_eq!(
        api.delete_recordings(&ids).await.unwrap_err().key(),
        Some(&MessageKey::NotFound)
    );
    assert_eq!(
        api.update_recordings(&ids, &Default::default())
            .await
            .unwrap_err()
            .key(),
        Some(&MessageKey::NotFound)
    );
}

#[tokio::test]
async fn hooks_create_list_destroy() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha1);
    let (hook, duplicate) = api
        .hooks_create("https://amphi.example/bbb/hooks?t=1", None, &[], false)
        .await
        .unwrap();
    assert!(!duplicate);
    let (same, duplicate) = api
        .hooks_create("https://amphi.example/bbb/hooks?t=1", None, &[], false)
        .await
        .unwrap();
    assert!(duplicate);
    assert_eq!(same.hook_id, hook.hook_id);
    let hooks = api.hooks_list(None).await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].callback_url, "https://amphi.example/bbb/hooks?t=1");
    assert!(api.hooks_destroy(&hook.hook_id).await.unwrap());
    assert_eq!(
        api.hooks_destroy(&hook.hook_id).await.unwrap_err().key(),
        Some(&MessageKey::DestroyMissingHook)
    );
}

#[tokio::test]
async fn reads_are_retried_changes_are_not() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha256);
    api.create(&meeting("0006-retry")).await.unwrap();

    sim.state.fail_next(2);
    assert_eq!(
        api.get_meetings().await.unwrap().len(),
        1,
        "two outages, third attempt succeeds"
    );

    sim.state.fail_next(3);
    assert!(
        matches!(api.get_meetings().await, Err(Error::Http(503))),
        "three attempts at most"
    );

    sim.state.fail_next(1);
    assert!(
        matches!(api.end("0006-retry").await, Err(Error::Http(503))),
        "end is sent once"
    );
    assert!(
        api.get_meeting_info("0006-retry").await.is_ok(),
        "the meeting was not ended by a retry"
    );
}

#[tokio::test]
async fn create_is_recovered_once_by_ending_the_meeting() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha256);
    api.create(&meeting("0007-scalelite")).await.unwrap();
    let mut changed = meeting("0007-scalelite");
    changed.moderator_pw = Some("new-password".into());
    let (created, duplicate) = bbb::create_with_recovery(&api, &changed).await.unwrap();
    assert!(!duplicate);
    assert_eq!(created.moderator_pw.as_deref(), Some("new-password"));

    // A request BBB refuses for what it is (here a one-letter name) never ends the meeting.
    let mut invalid = meeting("0007-scalelite");
    invalid.name = "x".into();
    let err = bbb::create_with_recovery(&api, &invalid).await.unwrap_err();
    assert_eq!(err.key(), Some(&MessageKey::ValidationError), "{err:?}");
    assert!(
        sim.state
            .meetings()
            .iter()
            .any(|m| m.meeting_id == "0007-scalelite"),
        "the meeting is still there"
    );
}

#[tokio::test]
async fn slides_over_one_megabyte_go_by_url() {
    let small = Document::slides("cours.pdf", vec![b'%'; 1000], || unreachable!());
    assert!(matches!(small, Document::Inline { .. }));
    let big = Document::slides("cours.pdf", vec![b'%'; 1_000_001], || {
        "https://amphi.univ.example/slides/cours.pdf".to_owned()
    });
    assert!(matches!(&big, Document::Url { url, .. } if url.ends_with("/slides/cours.pdf")));

    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha256);
    let mut params = meeting("0009-slides");
    params.documents = vec![Document::Inline {
        filename: "huge.pdf".into(),
        bytes: vec![0; 1_000_001],
    }];
    let err = api.create(&params).await.unwrap_err();
    assert!(matches!(err, Error::Request(_)), "{err:?}");
    assert!(sim.state.meetings().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    amphi::install_crypto_provider();
    let api = Client::new(
        "http://127.0.0.1:1/bigbluebutton/api",
        Redacted::new(SECRET.into()),
        ChecksumAlgorithm::Sha256,
    )
    .unwrap()
    .with_retries(2, Duration::from_millis(1));
    let err = api.get_meetings().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(!err.to_string().contains("checksum="), "{err}");
    assert!(matches!(
        Client::new("", Redacted::new(String::new()), ChecksumAlgorithm::Sha256),
        Err(Error::NotConfigured)
    ));
}

#[tokio::test]
async fn bbb_check_command_against_the_simulator() {
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let url = sim.api_url();
    let run = |secret: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(crate::support::amphi_bin())
                .args(["bbb", "check", "--url", &url, "--secret", secret])
                .env_remove("AMPHI_CONFIG")
                .output()
                .unwrap()
        })
    };
    let ok = run(SECRET).await.unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("BigBlueButton 3.0.19") && stdout.contains("secret is accepted"),
        "{stdout}"
    );

    let bad = run("wrong-secret").await.unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("the shared secret is refused"), "{stderr}");
    assert!(
        !stderr.contains("wrong-secret") && !stderr.contains("checksum="),
        "{stderr}"
    );
}

#[tokio::test]
async fn sim_command_serves_the_api() {
    let mut child = std::process::Command::new(crate::support::amphi_bin())
        .args(["sim", "--listen", "127.0.0.1:0", "--checksums", "sha1"])
        .env("AMPHI_SIM_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next().unwrap().unwrap();
        std::thread::spawn(move || for _ in lines {});
        first
    })
    .await
    .unwrap();
    let url = line
        .strip_prefix("BBB simulator API: ")
        .expect(&line)
        .to_owned();
    let sha1 = Client::new(&url, Redacted::new(SECRET.into()), ChecksumAlgorithm::Sha1).unwrap();
    sha1.create(&meeting("0008-cli")).await.unwrap();
    let sha256 = Client::new(
        &url,
        Redacted::new(SECRET.into()),
        ChecksumAlgorithm::Sha256,
    )
    .unwrap();
    assert_eq!(
        sha256.get_meetings().await.unwrap_err().key(),
        Some(&MessageKey::ChecksumError)
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A server that answers like a broken or hostile BBB: an endless chunked body without a
/// length, truncated XML, HTML instead of XML, an unknown messageKey.
async fn hostile_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 16 * 1024];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&request[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                if path.contains("/getMeetings") {
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b'x'; 64 * 1024];
                    // 20 MiB, more than any BBB answer, announced by no Content-Length.
                    for _ in 0..320 {
                        let frame =
                            [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                        if socket.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                    return;
                }
                let body = if path.contains("/isMeetingRunning") {
                    "<response><returncode>SUCCESS</returncode><running>tr"
                } else if path.contains("/end") {
                    "<!doctype html><html><body>502 Bad Gateway</body></html>"
                } else {
                    "<response><returncode>FAILED</returncode><messageKey>somethingNew</messageKey><message>A key no reference lists</message></response>"
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn hostile_answers_give_typed_errors() {
    amphi::install_crypto_provider();
    let addr = hostile_server().await;
    let client = Client::new(
        &format!("http://{addr}/bigbluebutton/api"),
        Redacted::new(SECRET.to_owned()),
        ChecksumAlgorithm::Sha256,
    )
    .unwrap()
    .with_retries(1, Duration::from_millis(1));

    match client.get_meetings().await {
        Err(Error::Parse(reason)) => assert!(reason.contains("too large"), "{reason}"),
        other => panic!("an endless answer: {other:?}"),
    }
    assert!(
        matches!(client.is_meeting_running("m-1").await, Err(Error::Parse(_))),
        "truncated XML"
    );
    assert!(
        matches!(client.end("m-1").await, Err(Error::Parse(_))),
        "HTML instead of XML"
    );
    match client.get_meeting_info("m-1").await {
        Err(error @ Error::Api { .. }) => {
            let text = error.to_string();
            assert!(text.contains("somethingNew"), "{text}");
            assert!(!text.contains(SECRET));
        }
        other => panic!("an unknown messageKey: {other:?}"),
    }
}

/// Sends a hand-made signed call, for refusals the typed client cannot provoke (it never
/// leaves a required parameter out).
async fn raw_call(
    sim: &sim::Running,
    call: &str,
    query: bbb::query::Query,
    body: Option<(&str, &str)>,
) -> Error {
    let url = query
        .signed(call, SECRET, ChecksumAlgorithm::Sha256)
        .url(&sim.api_url(), call);
    let http = reqwest::Client::new();
    let request = match body {
        Some((content_type, body)) => http
            .post(url.expose())
            .header("content-type", content_type)
            .body(body.to_owned()),
        None => http.get(url.expose()),
    };
    let text = request.send().await.unwrap().text().await.unwrap();
    bbb::client::parse_answer::<serde::de::IgnoredAny>(&text)
        .err()
        .unwrap_or_else(|| panic!("{call} succeeded: {text}"))
}

#[tokio::test]
async fn every_refusal_the_simulator_makes_is_a_typed_error() {
    use bbb::query::Query;
    let sim = simulator(ChecksumAlgorithm::ALL.to_vec()).await;
    let api = client(&sim, ChecksumAlgorithm::Sha256);
    let mut small = meeting("0010-keys");
    small.max_participants = Some(1);
    api.create(&small).await.unwrap();
    let key = |e: Error| e.key().cloned();

    let cases: Vec<(MessageKey, Error)> = vec![
        (
            MessageKey::MissingParamMeetingId,
            raw_call(&sim, "getMeetingInfo", Query::new(), None).await,
        ),
        (
            MessageKey::MissingParamFullName,
            raw_call(
                &sim,
                "join",
                Query::new()
                    .param("meetingID", "0010-keys")
                    .param("role", "VIEWER"),
                None,
            )
            .await,
        ),
        (
            MessageKey::InvalidPassword,
            raw_call(
                &sim,
                "join",
                Query::new()
                    .param("meetingID", "0010-keys")
                    .param("fullName", "Eve")
                    .param("password", "guess"),
                None,
            )
            .await,
        ),
        (
            MessageKey::UnsupportedContentType,
            raw_call(
                &sim,
                "insertDocument",
                Query::new().param("meetingID", "0010-keys"),
                Some(("text/plain", "x")),
            )
            .await,
        ),
        (
            MessageKey::MissingParamRecordId,
            raw_call(&sim, "deleteRecordings", Query::new(), None).await,
        ),
        (
            MessageKey::MissingParamPublish,
            raw_call(
                &sim,
                "publishRecordings",
                Query::new().param("recordID", "r-1"),
                None,
            )
            .await,
        ),
        (
            MessageKey::MissingParamCallbackUrl,
            raw_call(&sim, "hooks/create", Query::new(), None).await,
        ),
        (
            MessageKey::MissingParamHookId,
            raw_call(&sim, "hooks/destroy", Query::new(), None).await,
        ),
    ];
    for (expected, error) in cases {
        assert_eq!(key(error.clone()), Some(expected.clone()), "{error:?}");
        // Every key reads as a sentence naming it.
        assert!(error.to_string().contains(expected.as_str()), "{error}");
    }

    // maxParticipants counts people, not bots.
    let viewer = |name: &str, bot: bool| JoinParams {
        meeting_id: "0010-keys".into(),
        full_name: name.into(),
        role: Role::Viewer,
        user_id: None,
        create_time: None,
        avatar_url: None,
        bot,
    };
    api.join_bot(&viewer("Ann", false)).await.unwrap();
    api.join_bot(&viewer("Live stream", true)).await.unwrap();
    let full = api.join_bot(&viewer("Bob", false)).await.unwrap_err();
    assert_eq!(full.key(), Some(&MessageKey::MaxParticipantsReached));

    // Nothing recorded: noRecordings, an empty list, not an error.
    let none = api
        .get_recordings(&RecordingsQuery {
            meeting_ids: vec!["0010-keys".into()],
            ..RecordingsQuery::default()
        })
        .await
        .unwrap();
    assert!(none.recordings.items.is_empty());

    // A meeting ended with `end` cannot be joined again until it is created anew.
    api.end("0010-keys").await.unwrap();
    let ended = api.join_bot(&viewer("Carl", false)).await.unwrap_err();
    assert_eq!(ended.key(), Some(&MessageKey::MeetingForciblyEnded));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    amphi::install_crypto_provider();
    // Accepts connections and reads requests, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = held_tx.send(socket);
        }
    });
    let api = Client::new(
        &format!("http://{addr}/bigbluebutton/api"),
        Redacted::new(SECRET.to_owned()),
        ChecksumAlgorithm::Sha256,
    )
    .unwrap()
    .with_timeout(Duration::from_millis(300))
    .unwrap()
    .with_retries(2, Duration::from_millis(1));
    let err = api.get_meetings().await.unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(err.is_transient());
    // The read was retried once: two connections reached the stalled server.
    for _ in 0..2 {
        assert!(held_rx.recv().await.is_some());
    }
    assert!(held_rx.try_recv().is_err(), "no third attempt");
    // A change is not retried.
    let err = api.end("m-1").await.unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert_eq!(held_rx.recv().await.map(|_| 1), Some(1));
    assert!(held_rx.try_recv().is_err(), "end was sent once");
}
