//! The "My meetings" page against the BBB simulator: BBB calls and time per page for an owner
//! with N meetings, a quarter of them running. Pod asks BBB once per card (`isMeetingRunning`);
//! amphi asks once per page (`getMeetings`), shared by every page for a few seconds.
//!
//! `cargo bench --bench my_meetings -- [--meetings 1,10,100,500] [--loads 30]`
//!
//! Each load is timed cold (the shared answer forgotten first, so every load asks BBB) and
//! warm (as the pages that follow within the cache's lifetime). amphi and the simulator run
//! in this process, on 127.0.0.1, SQLite in a temporary folder.

mod common;

use std::sync::Arc;
use std::time::Instant;

const SECRET: &str = "my-meetings-bench-secret";
const CALLS: [&str; 4] = [
    "getMeetings",
    "isMeetingRunning",
    "getMeetingInfo",
    "getRecordings",
];

fn main() {
    let sizes: String = common::arg("--meetings", "1,10,100,500".to_owned());
    let sizes: Vec<usize> = sizes
        .split(',')
        .map(|n| n.trim().parse().expect("--meetings takes numbers"))
        .collect();
    let loads: usize = common::arg("--loads", 30);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("my_meetings: {loads} loads per size, cold (BBB asked) and warm (shared answer)");
        println!("meetings | BBB calls per cold load | cold p50 / p95 (ms) | warm p50 / p95 (ms) | page size");
        for n in sizes {
            run(n, loads).await;
        }
    });
}

async fn run(meetings: usize, loads: usize) {
    amphi::install_crypto_provider();
    let sim = amphi::sim::start(
        "127.0.0.1:0".parse().unwrap(),
        amphi::sim::SimOptions {
            secret: amphi::redact::Redacted::new(SECRET.to_owned()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = amphi::config::Config {
        data_dir: dir.path().to_path_buf(),
        ..amphi::config::Config::default()
    };
    config.bbb.api_url = sim.api_url();
    config.bbb.secret = amphi::redact::Redacted::new(SECRET.to_owned());
    let db = amphi::server::open_database(&config).await.unwrap();
    let state = amphi::server::build_state(config, db.clone(), Arc::new(amphi::clock::SystemClock))
        .await
        .unwrap();
    let password = "correct horse battery staple";
    let owner = state
        .accounts
        .create_user(&amphi::accounts::UserSpec {
            username: "prof".to_owned(),
            password: Some(amphi::redact::Redacted::new(password.to_owned())),
            display_name: "Prof. Curie".to_owned(),
            email: "curie@univ.example".to_owned(),
            staff: true,
            superuser: false,
            affiliation: "faculty".to_owned(),
            groups: Vec::new(),
        })
        .await
        .unwrap();
    let api = state.bbb.clone().unwrap();
    let http = reqwest::Client::new();
    for n in 0..meetings {
        let fields = amphi::db::MeetingFields {
            is_webinar: false,
            ..amphi::db::MeetingFields::webinar(&format!("Cours {n}"), owner.id, chrono::Utc::now())
        };
        let meeting = db
            .create_meeting(&fields, false, "", chrono::Utc::now())
            .await
            .unwrap();
        if n % 4 == 0 {
            let created = amphi::meetings::start::ensure_created(
                &db,
                api.as_ref(),
                &state.config,
                state.secret_key.expose(),
                &meeting,
                Some(owner.id),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
            // BBB counts a meeting as running once someone is in it.
            let answer = http
                .post(format!(
                    "http://{}/sim/meetings/{}/events",
                    sim.addr, created.meeting_id
                ))
                .json(&serde_json::json!([{"type": "join", "name": "Prof. Curie", "role": "MODERATOR"}]))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 204);
        }
    }
    let (_, token) = state
        .accounts
        .login(
            "prof",
            amphi::redact::Redacted::new(password.to_owned()),
            "127.0.0.1",
        )
        .await
        .unwrap();
    let cookie = format!("amphi_session={}", token.expose());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/meeting/", listener.local_addr().unwrap());
    let app = amphi::web::router(state.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = http;
    let calls = || CALLS.iter().map(|c| sim.state.call_count(c)).sum::<u64>();

    let load = || async {
        let started = Instant::now();
        let page = client
            .get(&url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let body = page.text().await.unwrap();
        (started.elapsed().as_secs_f64() * 1000.0, body)
    };
    // The page lists every meeting, the running ones as such.
    let (_, body) = load().await;
    assert_eq!(
        body.matches("data-status=\"running\"").count(),
        meetings.div_ceil(4)
    );
    let size = body.len();

    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let before = calls();
    for _ in 0..loads {
        state.meeting_status.invalidate().await;
        cold.push(load().await.0);
    }
    let per_cold = (calls() - before) as f64 / loads as f64;
    let before = calls();
    for _ in 0..loads {
        warm.push(load().await.0);
    }
    let warm_calls = calls() - before;
    cold.sort_by(|a, b| a.total_cmp(b));
    warm.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{meetings} | {per_cold:.2} ({warm_calls} for {loads} warm loads) | {:.1} / {:.1} | {:.1} / {:.1} | {} KiB",
        common::percentile(&cold, 0.5),
        common::percentile(&cold, 0.95),
        common::percentile(&warm, 0.5),
        common::percentile(&warm, 0.95),
        size / 1024
    );
    server.abort();
}
