//! Recordings and the video library end to end, with the BBB simulator and a real SMTP server:
//! a recorded meeting ends, the recording-ready callback sends one mail, the recordings page
//! lists the recording, "upload as a video" downloads the MP4, transcodes it and the video
//! page plays it (segments decoded by GStreamer, and in headless Chromium); one-time ESR
//! tokens work twice in a row; hostile addresses are refused with a sentence; bad sources fail
//! with their reason and leave no file; a job interrupted mid-transcode starts over and
//! finishes.

use super::invitations::{Sink, read, sink};
use super::webinar::{call, teacher};
use crate::support::TestApp;
use amphi::config::{ChecksumAlgorithm, Config};
use amphi::db::VideoListing;
use amphi::redact::Redacted;
use amphi::sim::{self, SimOptions, scenario::Event};
use axum::http::StatusCode;
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "library-sim-secret";
const PASSWORD: &str = "correct horse battery";
const PATIENCE: Duration = Duration::from_secs(120);

/// amphi serving on a real port (every background task running), a simulator that records,
/// and the SMTP sink.
struct Stack {
    app: TestApp,
    public_url: String,
    sim: sim::Running,
    sink: Sink,
    server: tokio::task::JoinHandle<()>,
    _media: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub(crate) fn config(public_url: &str) -> Config {
    let mut config = Config {
        public_url: public_url.to_owned(),
        ..Config::default()
    };
    config.bbb.secret = Redacted::new(SECRET.to_owned());
    config.bbb.checksum = ChecksumAlgorithm::Sha256;
    config.media.preset = "ultrafast".to_owned();
    config.media.fps = 15;
    // The simulator and the tests' servers are on this machine.
    config.videos.fetch_allow = vec!["127.0.0.1/32".parse().unwrap()];
    config.videos.lease_seconds = 3;
    config
}

async fn stack(esr_tokens: bool) -> Stack {
    amphi::install_crypto_provider();
    let sink = sink().await;
    let media = tempfile::tempdir().unwrap();
    let sim = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimOptions {
            secret: Redacted::new(SECRET.to_owned()),
            media_dir: Some(media.path().to_owned()),
            esr_tokens,
            processing: Duration::ZERO,
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = config(&public_url);
    config.bbb.api_url = sim.api_url();
    // Recordings come from the BBB server itself: no allow-list needed.
    config.videos.fetch_allow.clear();
    config.mail.smtp_url = Redacted::new(format!("smtp://127.0.0.1:{}", sink.port));
    let app = TestApp::new(config).await;
    let state = app.state.clone();
    let server = tokio::spawn(async move {
        amphi::server::serve(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    Stack {
        app,
        public_url,
        sim,
        sink,
        server,
        _media: media,
    }
}

/// A recorded meeting of `token`'s owner, created on the simulator, attended, ended: its
/// recording is published at once. Returns the meeting's link.
async fn recorded_meeting(stack: &mut Stack, token: &str) -> String {
    let body = json!({
        "name": "Thermodynamique",
        "attendee_password": "thermo42",
        "start": "2026-12-07",
        "start_time": "10:00",
        "expected_duration": 2,
        "record": true,
        "auto_start_recording": true,
    });
    let (status, meeting) = call(
        &mut stack.app,
        "POST",
        "/api/v1/meetings",
        token,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{meeting}");
    let id = meeting["id"].as_i64().unwrap();
    let meeting = stack.app.state.db.meeting(id).await.unwrap().unwrap();
    amphi::meetings::start::ensure_created(
        &stack.app.state.db,
        stack.app.state.bbb.as_deref().unwrap(),
        &stack.app.state.config,
        stack.app.state.secret_key.expose(),
        &meeting,
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let link = meeting.meeting_id.clone();
    let state = &stack.sim.state;
    state
        .apply_event(
            &link,
            &Event::Join {
                name: "Prof. Curie".into(),
                role: "MODERATOR".into(),
                ext_id: None,
            },
        )
        .unwrap();
    // The moderator's record button.
    let recording = reqwest::Client::new()
        .post(format!(
            "http://{}/sim/meetings/{link}/recording?on=true",
            stack.sim.addr
        ))
        .send()
        .await
        .unwrap();
    assert!(recording.status().is_success(), "{}", recording.status());
    state.apply_event(&link, &Event::End).unwrap();
    link
}

/// The meeting's recording id, as BBB lists it.
async fn published_recording(app: &TestApp, link: &str) -> String {
    let query = amphi::bbb::RecordingsQuery {
        meeting_ids: vec![link.to_owned()],
        ..Default::default()
    };
    let found = app
        .state
        .bbb
        .as_ref()
        .unwrap()
        .get_recordings(&query)
        .await
        .unwrap();
    found
        .recordings
        .items
        .first()
        .expect("a recording")
        .record_id
        .clone()
}

/// Waits until video `id` is no longer being made.
pub(crate) async fn finished(app: &TestApp, id: i64) -> VideoListing {
    let last = std::sync::Mutex::new(None);
    tokio::time::timeout(PATIENCE, async {
        loop {
            let listing = app.state.db.video(id).await.unwrap().expect("the video");
            if listing.video.state != "processing" {
                return listing;
            }
            *last.lock().unwrap() = listing.job;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the video job ends; it is at {:?}", last.lock().unwrap()))
}

/// The video id a "303 to /video/{id}/" names.
pub(crate) fn video_id(location: Option<&str>) -> i64 {
    location
        .and_then(|l| l.strip_prefix("/video/"))
        .and_then(|l| l.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("not a video page: {location:?}"))
}

/// Uploads the recording as a video from the recordings page's button.
async fn upload(app: &mut TestApp, link: &str, record_id: &str) -> i64 {
    let page = app.get(&format!("/meeting/recordings/{link}/")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let uploaded = app
        .post_form(
            &format!("/meeting/recordings/{link}/{record_id}/upload"),
            &[
                ("csrf_token", page.csrf_token().as_str()),
                ("recording_name", "Thermodynamique, cours 1"),
            ],
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.body);
    video_id(uploaded.location())
}

/// The files of a ready video decode: every rendition's first segment behind its init
/// segment gives pictures of the ladder's size (or sound).
async fn decodes(app: &mut TestApp, id: i64) {
    let master = app.get(&format!("/video/{id}/files/master.m3u8")).await;
    assert_eq!(master.status, StatusCode::OK);
    assert!(master.body.contains("720p/index.m3u8"), "{}", master.body);
    assert!(master.body.contains("audio/index.m3u8"), "{}", master.body);
    for (rendition, decode, check) in [
        (
            "720p",
            "h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! appsink name=out sync=false",
            "width=(int)1280",
        ),
        (
            "360p",
            "h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! appsink name=out sync=false",
            "width=(int)640",
        ),
        (
            "audio",
            "aacparse ! avdec_aac ! audioconvert ! appsink name=out sync=false",
            "rate=(int)48000",
        ),
    ] {
        let playlist = app
            .get(&format!("/video/{id}/files/{rendition}/index.m3u8"))
            .await;
        assert_eq!(playlist.status, StatusCode::OK, "{rendition}");
        assert!(
            playlist.body.contains("#EXT-X-PLAYLIST-TYPE:VOD"),
            "{}",
            playlist.body
        );
        assert!(
            playlist.body.contains("#EXT-X-ENDLIST"),
            "{}",
            playlist.body
        );
        let segment = playlist
            .body
            .lines()
            .find(|l| l.starts_with("seg-"))
            .expect("a segment")
            .to_owned();
        let init = playlist
            .body
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("an init segment")
            .to_owned();
        let mut file = app
            .get_bytes(&format!("/video/{id}/files/{rendition}/{init}"))
            .await;
        file.extend(
            app.get_bytes(&format!("/video/{id}/files/{rendition}/{segment}"))
                .await,
        );
        let samples = crate::support::media::decode_bytes(&file, &format!("qtdemux ! {decode}"));
        assert!(samples.len() > 10, "{rendition}: {} samples", samples.len());
        let caps = samples[0].caps().unwrap().to_string();
        assert!(caps.contains(check), "{rendition}: {caps}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_meeting_is_mailed_once_listed_uploaded_and_plays() {
    let mut stack = stack(false).await;
    let (_, token) = teacher(&stack.app, "curie").await;
    let mut deliveries = stack.sim.state.subscribe_deliveries();
    let link = recorded_meeting(&mut stack, &token).await;

    // Two formats, two recording-ready calls; one mail, to the owner, with the page's link.
    let mut calls = 0;
    tokio::time::timeout(PATIENCE, async {
        while calls < 2 {
            let delivery = deliveries.recv().await.unwrap();
            if delivery.kind == sim::DeliveryKind::RecordingReady {
                calls += 1;
            }
        }
    })
    .await
    .expect("the simulator calls back once per format");
    let mail = stack.sink.next().await;
    let headers = read(&mail, "headers");
    assert!(headers.contains("To: curie@univ.example"), "{headers}");
    assert!(headers.contains("Thermodynamique"), "{headers}");
    let text = read(&mail, "txt");
    let page_link = format!("{}/meeting/recordings/{link}/", stack.public_url);
    assert!(text.contains(&page_link), "{text}");
    assert!(
        stack
            .app
            .state
            .db
            .unhandled_receipts("recording-ready")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(stack.sink.stored(), 1, "one mail for two callbacks");

    // The recordings page, from BBB, with both playbacks and the upload button.
    let app = &mut stack.app;
    app.login("curie", PASSWORD).await;
    let record_id = published_recording(app, &link).await;
    let page = app.get(&format!("/meeting/recordings/{link}/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&format!("data-record=\"{record_id}\"")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("/{record_id}/play/video")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("/{record_id}/upload")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-state=\"published\""),
        "{}",
        page.body
    );

    // Each click asks BBB for the playback URL.
    let play = app
        .get(&format!(
            "/meeting/recordings/{link}/{record_id}/play/video"
        ))
        .await;
    assert_eq!(play.status, StatusCode::SEE_OTHER);
    let player = reqwest::get(play.location().unwrap()).await.unwrap();
    assert_eq!(player.status(), 200);
    assert!(player.text().await.unwrap().contains("<source"));

    // Upload as a video: queued, downloaded, transcoded; the page shows the job meanwhile.
    let id = upload(app, &link, &record_id).await;
    let waiting = app.get(&format!("/video/{id}/")).await;
    assert_eq!(waiting.status, StatusCode::OK);
    assert!(
        waiting.body.contains("id=\"job\"") || waiting.body.contains("id=\"player\""),
        "{}",
        waiting.body
    );
    let done = finished(app, id).await;
    assert_eq!(done.video.state, "ready", "{:?}", done.job);
    let job = done.job.clone().unwrap();
    assert_eq!((job.state.as_str(), job.progress), ("done", 100));
    assert!(
        (4_000..=6_500).contains(&done.video.duration_ms),
        "{}",
        done.video.duration_ms
    );
    assert_eq!(done.video.thumbnail, "thumbnail.jpg");
    assert_eq!(done.video.title, "Thermodynamique, cours 1");
    assert!(done.video.draft);
    let status: serde_json::Value =
        serde_json::from_str(&app.get(&format!("/video/{id}/status")).await.body).unwrap();
    assert_eq!(status["state"], "ready");
    decodes(app, id).await;
    let thumbnail = app
        .get_bytes(&format!("/video/{id}/files/thumbnail.jpg"))
        .await;
    assert_eq!(&thumbnail[..2], &[0xff, 0xd8], "a JPEG");
    let tmp = app.state.config.data_dir.join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "no temporary file left"
    );

    // The recordings page says who put it in the library.
    let page = app.get(&format!("/meeting/recordings/{link}/")).await;
    assert!(
        page.body.contains(&format!("href=\"/video/{id}/\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("Prof. Curie"), "{}", page.body);

    // A draft is its owner's only; published, anyone watches it, in a real browser.
    let mut visitor = app.another_browser();
    visitor.forget_cookies();
    assert_eq!(
        visitor
            .get(&format!("/video/{id}/files/master.m3u8"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        visitor.get(&format!("/video/{id}/")).await.status,
        StatusCode::SEE_OTHER
    );
    let form = app.get(&format!("/video/{id}/edit")).await;
    let saved = app
        .post_form(
            &format!("/video/{id}/edit"),
            &[
                ("csrf_token", form.csrf_token().as_str()),
                ("title", "Thermodynamique, cours 1"),
                ("description", "Premier principe.\n<b>pas du HTML</b>"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let public = visitor.get(&format!("/video/{id}/")).await;
    assert_eq!(public.status, StatusCode::OK);
    assert!(
        public.body.contains("&lt;b&gt;pas du HTML"),
        "{}",
        public.body
    );
    assert!(!public.body.contains("<b>pas"), "{}", public.body);
    let browser = crate::browser::Browser::open(&format!("{}/video/{id}/", stack.public_url)).await;
    let played = tokio::time::timeout(PATIENCE, async {
        loop {
            let state = browser
                .evaluate(
                    "(function () { var v = document.getElementById('video'); if (!v) return null; \
                     v.muted = true; if (v.paused) v.play().catch(function () {}); \
                     return JSON.stringify({ t: v.currentTime, fatal: document.getElementById('player').dataset.fatal || null }); })()",
                )
                .await;
            if let Some(text) = state.as_str() {
                let state: serde_json::Value = serde_json::from_str(text).unwrap();
                assert!(state["fatal"].is_null(), "hls.js: {state}");
                if state["t"].as_f64().unwrap_or(0.0) >= 2.0 {
                    return state;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .expect("Chromium plays the video");
    assert!(played["t"].as_f64().unwrap() >= 2.0);

    // Unpublish, then delete, on the BBB server.
    let app = &mut stack.app;
    let page = app.get(&format!("/meeting/recordings/{link}/")).await;
    let token = page.csrf_token();
    let unpublished = app
        .post_form(
            &format!("/meeting/recordings/{link}/{record_id}/unpublish"),
            &[("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(unpublished.status, StatusCode::SEE_OTHER);
    let page = app.get(&format!("/meeting/recordings/{link}/")).await;
    assert!(
        page.body.contains("data-state=\"unpublished\""),
        "{}",
        page.body
    );
    let deleted = app
        .post_form(
            &format!("/meeting/recordings/{link}/{record_id}/delete"),
            &[("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    let page = app.get(&format!("/meeting/recordings/{link}/")).await;
    assert!(page.body.contains("id=\"no-recordings\""), "{}", page.body);
    // Gone between the listing and the click: the upload is refused, nothing is queued.
    let videos_before = app.state.db.all_videos().await.unwrap().len();
    let vanished = app
        .post_form(
            &format!("/meeting/recordings/{link}/{record_id}/upload"),
            &[("csrf_token", token.as_str()), ("recording_name", "x")],
        )
        .await;
    assert_eq!(vanished.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.state.db.all_videos().await.unwrap().len(),
        videos_before
    );
    // A recording of another meeting cannot be reached through this one.
    let other = app
        .get(&format!(
            "/meeting/recordings/{link}/not-this-meetings/play/video"
        ))
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esr_one_time_tokens_play_twice_in_a_row_and_upload() {
    let mut stack = stack(true).await;
    let (_, token) = teacher(&stack.app, "curie").await;
    let mut deliveries = stack.sim.state.subscribe_deliveries();
    let link = recorded_meeting(&mut stack, &token).await;
    tokio::time::timeout(PATIENCE, async {
        while deliveries.recv().await.unwrap().kind != sim::DeliveryKind::RecordingReady {}
    })
    .await
    .expect("the recording is published");
    let app = &mut stack.app;
    app.login("curie", PASSWORD).await;
    let record_id = published_recording(app, &link).await;

    // Two clicks, two fresh single-use URLs, both play (the page, then its video file in the
    // session the token opened).
    let mut seen = Vec::new();
    for _ in 0..2 {
        let play = app
            .get(&format!(
                "/meeting/recordings/{link}/{record_id}/play/video"
            ))
            .await;
        assert_eq!(play.status, StatusCode::SEE_OTHER);
        assert_eq!(play.headers["cache-control"], "no-store");
        let url = play.location().unwrap().to_owned();
        assert!(url.contains("?token="), "{url}");
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let page = browser.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200, "{url}");
        assert!(page.text().await.unwrap().contains("<source"));
        let file = browser
            .get(format!(
                "http://{}/video/{record_id}/video-0.m4v",
                stack.sim.addr
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(file.status(), 200);
        assert!(!seen.contains(&url), "a fresh token each time");
        seen.push(url);
    }
    // A token used once is spent.
    let again = reqwest::get(&seen[0]).await.unwrap();
    assert_ne!(again.status(), 200);

    // The upload asks for a fresh token too, and fetches the file in its session.
    let id = upload(app, &link, &record_id).await;
    let done = finished(app, id).await;
    assert_eq!(done.video.state, "ready", "{:?}", done.job);
    decodes(app, id).await;
    assert!(
        !done.video.source_url.contains("token"),
        "{}",
        done.video.source_url
    );
}

/// A small web server on 127.0.0.1 for the sources a user might give: video files, a page
/// without a video, text, a truncated download, a redirect to the metadata service.
pub(crate) async fn sources(files: &std::path::Path) -> String {
    use axum::body::Body;
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::get;
    let dir = files.to_owned();
    let file = move |name: &'static str| {
        let path = dir.join(name);
        get(move || async move {
            let bytes = tokio::fs::read(&path).await.unwrap();
            ([(header::CONTENT_TYPE, "video/mp4")], bytes).into_response()
        })
    };
    let router = axum::Router::new()
        .route("/short.mp4", file("short.mp4"))
        .route("/lecture.mp4", file("lecture.mp4"))
        .route(
            "/page.html",
            get(|| async {
                axum::response::Html("<html><body><p>Pas de lecteur ici.</p></body></html>")
            }),
        )
        .route(
            "/notes.txt",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "des notes") }),
        )
        .route(
            "/truncated.mp4",
            get(|| async {
                // A length promised, a tenth of it sent, then the connection closed.
                let chunk: Result<bytes::Bytes, std::io::Error> =
                    Ok(bytes::Bytes::from(vec![0u8; 10_000]));
                let failure: Result<bytes::Bytes, std::io::Error> = Err(std::io::Error::other(
                    "the disk of the source server failed",
                ));
                let body = Body::from_stream(futures_util::stream::iter([chunk, failure]));
                (
                    [
                        (header::CONTENT_TYPE, "video/mp4"),
                        (header::CONTENT_LENGTH, "100000"),
                    ],
                    body,
                )
                    .into_response()
            }),
        )
        // A PeerTube instance: the watch page, and its API naming the file and its size.
        .route(
            "/w/{id}",
            get(|| async { axum::response::Html("<html><body>PeerTube</body></html>") }),
        )
        .route(
            "/api/v1/videos/{id}",
            get(
                |axum::extract::Path(id): axum::extract::Path<String>,
                 headers: axum::http::HeaderMap| async move {
                    let host = headers["host"].to_str().unwrap().to_owned();
                    let (file, size) = match id.as_str() {
                        "kkGMgK9ZtnKfYAgnEtQxbv" => ("short.mp4", 300_000),
                        _ => ("lecture.mp4", 5_000_000_000u64),
                    };
                    axum::Json(serde_json::json!({
                        "name": "Cours filmé",
                        "description": "Publié sur PeerTube",
                        "files": [],
                        "streamingPlaylists": [{ "files": [{
                            "fileDownloadUrl": format!("http://{host}/{file}"),
                            "size": size,
                        }]}],
                    }))
                },
            ),
        )
        .route(
            "/redirect",
            get(|| async {
                axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data/")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// `seconds` of moving test pattern and tone as MP4.
pub(crate) fn sample(path: &std::path::Path, seconds: u32) {
    let text = format!(
        "videotestsrc num-buffers={} pattern=ball ! video/x-raw,width=320,height=180,framerate=25/1,format=I420 \
         ! x264enc speed-preset=ultrafast key-int-max=50 ! h264parse ! mp4mux name=mux ! filesink location={} \
         audiotestsrc num-buffers={} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=1 \
         ! audioconvert ! avenc_aac ! aacparse ! mux.",
        seconds * 25,
        path.display(),
        seconds * 48_000 / 1024 + 1
    );
    let status = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .arg("-e")
        .args(text.split_whitespace())
        .status()
        .expect("gst-launch-1.0 (gstreamer1.0-tools)");
    assert!(status.success());
}

/// A signed-in user on an app whose library worker runs; `allow` lets 127.0.0.1 through.
async fn importer(allow: bool) -> (TestApp, tokio::task::JoinHandle<()>) {
    amphi::install_crypto_provider();
    let mut config = config("http://127.0.0.1:1");
    if !allow {
        config.videos.fetch_allow.clear();
    }
    let mut app = TestApp::new(config).await;
    app.add_user("ada", PASSWORD).await;
    app.login("ada", PASSWORD).await;
    let worker = app.state.library.spawn();
    (app, worker)
}

pub(crate) async fn import(app: &mut TestApp, url: &str) -> crate::support::Page {
    let page = app.get("/videos/").await;
    app.post_form(
        "/videos/import",
        &[
            ("csrf_token", page.csrf_token().as_str()),
            ("url", url),
            ("title", ""),
        ],
    )
    .await
}

#[tokio::test]
async fn hostile_addresses_are_refused_with_a_clear_message() {
    let (mut app, worker) = importer(false).await;
    for (url, expected) in [
        ("http://127.0.0.1/video.mp4", "127.0.0.1"),
        ("http://[::1]:8080/video.mp4", "::1"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
        ("http://10.20.30.40/video.mp4", "10.20.30.40"),
        ("http://localhost:9000/video.mp4", "localhost"),
        ("file:///etc/passwd", "file:"),
        ("gopher://127.0.0.1/", "gopher:"),
    ] {
        let page = import(&mut app, url).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(
            page.body.contains("id=\"import-error\""),
            "{url}: {}",
            page.body
        );
        assert!(page.body.contains(expected), "{url}: {}", page.body);
    }
    assert!(
        app.state.db.all_videos().await.unwrap().is_empty(),
        "nothing queued"
    );
    worker.abort();

    // Allowed at first, a redirect to the metadata service is refused at the hop.
    let files = tempfile::tempdir().unwrap();
    let server = sources(files.path()).await;
    let (mut app, worker) = importer(true).await;
    let page = import(&mut app, &format!("{server}/redirect")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let done = finished(&app, video_id(page.location())).await;
    assert_eq!(done.video.state, "failed");
    let error = done.job.unwrap().error;
    assert!(
        error.contains("169.254.169.254") && error.contains("private"),
        "{error}"
    );
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_fail_with_their_reason_and_leave_nothing() {
    let files = tempfile::tempdir().unwrap();
    sample(&files.path().join("short.mp4"), 3);
    let server = sources(files.path()).await;
    let (mut app, worker) = importer(true).await;
    for (path, expected) in [
        ("/page.html", "no video in it"),
        ("/notes.txt", "text/plain"),
        ("/truncated.mp4", "127.0.0.1"),
        ("/missing.mp4", "404"),
    ] {
        let page = import(&mut app, &format!("{server}{path}")).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}: {}", page.body);
        let id = video_id(page.location());
        let done = finished(&app, id).await;
        assert_eq!(done.video.state, "failed", "{path}");
        let error = done.job.clone().unwrap().error;
        assert!(error.contains(expected), "{path}: {error}");
        let shown = app.get(&format!("/video/{id}/")).await;
        assert!(shown.body.contains("id=\"job-failed\""), "{}", shown.body);
        assert!(
            !app.state.library.folder(&done.video).unwrap().exists(),
            "{path}: no folder left"
        );
    }
    let tmp = app.state.config.data_dir.join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "no temporary file left"
    );

    // A PeerTube video too big for the library is refused before any download.
    let page = import(&mut app, &format!("{server}/w/aaaaaaaaaaaaaaaaaaaaaa")).await;
    let done = finished(&app, video_id(page.location())).await;
    assert_eq!(done.video.state, "failed");
    let error = done.job.unwrap().error;
    assert!(error.contains("larger than the 4096 MB allowed"), "{error}");

    // A PeerTube watch page leads to its file through the API.
    let page = import(&mut app, &format!("{server}/w/kkGMgK9ZtnKfYAgnEtQxbv")).await;
    let done = finished(&app, video_id(page.location())).await;
    assert_eq!(done.video.state, "ready", "{:?}", done.job);
    assert_eq!(
        (done.video.title.as_str(), done.video.description.as_str()),
        ("Cours filmé", "Publié sur PeerTube")
    );

    // A good file from the same server works, titled after its name.
    let page = import(&mut app, &format!("{server}/short.mp4")).await;
    let id = video_id(page.location());
    let done = finished(&app, id).await;
    assert_eq!(done.video.state, "ready", "{:?}", done.job);
    assert_eq!(done.video.title, "short.mp4");
    decodes(&mut app, id).await;
    // Its owner deletes it: the row and the files go.
    let folder = app.state.library.folder(&done.video).unwrap();
    assert!(folder.join("master.m3u8").exists());
    let page = app.get(&format!("/video/{id}/")).await;
    let deleted = app
        .post_form(
            &format!("/video/{id}/delete"),
            &[("csrf_token", page.csrf_token().as_str())],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(app.state.db.video(id).await.unwrap().is_none());
    assert!(!folder.exists());
    worker.abort();
}

/// The worker stops in the middle of a transcode (as a crashed instance does); another
/// instance takes the job over once the lease ran out, starts it over from a clean folder and
/// finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_mid_transcode_starts_over_and_finishes() {
    let files = tempfile::tempdir().unwrap();
    sample(&files.path().join("lecture.mp4"), 90);
    let server = sources(files.path()).await;
    let (mut app, worker) = importer(true).await;
    let page = import(&mut app, &format!("{server}/lecture.mp4")).await;
    let id = video_id(page.location());
    tokio::time::timeout(PATIENCE, async {
        loop {
            let job = app.state.db.video(id).await.unwrap().unwrap().job.unwrap();
            assert!(
                matches!(job.state.as_str(), "queued" | "running"),
                "{job:?}"
            );
            if job.step == "transcode" && job.progress > 35 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the transcode gets under way");
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    let stopped = std::time::Instant::now();

    let second = amphi::videos::Library::new(
        app.state.db.clone(),
        std::sync::Arc::clone(&app.state.config),
        None,
        "second-instance",
    );
    let worker = second.spawn();
    tokio::time::timeout(PATIENCE, async {
        while app
            .state
            .db
            .video(id)
            .await
            .unwrap()
            .unwrap()
            .job
            .unwrap()
            .attempts
            < 2
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the other instance claims the job");
    let claimed = stopped.elapsed();
    let done = finished(&app, id).await;
    eprintln!(
        "recovery: the other instance claimed the job {:.2} s after the first stopped (lease {} s) and finished it {:.2} s after (the transcode starts over)",
        claimed.as_secs_f64(),
        app.state.config.videos.lease_seconds,
        stopped.elapsed().as_secs_f64()
    );
    assert_eq!(done.video.state, "ready", "{:?}", done.job);
    assert_eq!(done.job.as_ref().unwrap().attempts, 2, "{:?}", done.job);
    assert!(
        (88_000..=92_000).contains(&done.video.duration_ms),
        "{}",
        done.video.duration_ms
    );
    decodes(&mut app, id).await;
    let tmp = app.state.config.data_dir.join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "no temporary file left"
    );
    worker.abort();
}
