//! `amphi demo`: the whole product on one machine. The BBB simulator plays a lecture (a
//! presenter with slides and a camera, a screenshare, answers in the chat); the gateway runs
//! on SQLite in a temporary (or given) data folder with an owner and a student account,
//! schedules a webinar where anyone may chat with a nickname, starts it, and prints the live
//! page, both logins and the simulator's API, one line each. With `--duration N` the
//! simulated meeting ends after N seconds; the live then stops, amphi serves 10 s more (the
//! ended playlists and the chat history) and exits.

use crate::accounts::UserSpec;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::db::{Meeting, MeetingFields};
use crate::redact::Redacted;
use crate::server;
use crate::sim::scenario::{Event, Scenario};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The owner's username.
pub const DEMO_USER: &str = "demo";
/// The student's username.
pub const STUDENT_USER: &str = "student";
/// How long amphi serves after the live ended, with `--duration`.
const AFTER_END: Duration = Duration::from_secs(10);
/// The lecture the simulator plays.
const LECTURE: &str = include_str!("../scenarios/lecture.json");

/// Options of `amphi demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub listen: SocketAddr,
    pub data: Option<PathBuf>,
    /// End the simulated meeting after this long (`None`: run until Ctrl-C).
    pub duration: Option<Duration>,
}

/// A random password of 16 letters and digits.
fn random_password() -> String {
    // No 0/O, 1/l/I: the password is read off a terminal.
    crate::accounts::random_chars(
        b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789",
        16,
    )
}

/// Creates `spec`'s account, or gives an existing one a new password; returns its password.
async fn account(state: &crate::web::AppState, spec: UserSpec) -> anyhow::Result<String> {
    let password = random_password();
    match state.db.user_by_username(&spec.username).await? {
        Some(_) => {
            state
                .accounts
                .set_password(&spec.username, Redacted::new(password.clone()))
                .await?
        }
        None => {
            state
                .accounts
                .create_user(&UserSpec {
                    password: Some(Redacted::new(password.clone())),
                    ..spec
                })
                .await?;
        }
    }
    Ok(password)
}

/// The demo webinar, scheduled now by `owner`: anyone may chat with a nickname.
async fn schedule(state: &crate::web::AppState, owner: i64) -> anyhow::Result<Meeting> {
    let fields = MeetingFields {
        welcome_text: "Bienvenue dans la démonstration d'amphi.".to_owned(),
        webinar_anonymous_chat: true,
        ..MeetingFields::webinar("Amphi de démonstration", owner, chrono::Utc::now())
    };
    Ok(state
        .db
        .create_meeting(&fields, false, "", chrono::Utc::now())
        .await?)
}

/// Runs the demo until Ctrl-C, or until the live ended and [`AFTER_END`] passed.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let data_dir = match options.data {
        Some(dir) => dir,
        None => {
            let mut suffix = [0u8; 4];
            getrandom::fill(&mut suffix)?;
            std::env::temp_dir().join(format!("amphi-demo-{}", hex::encode(suffix)))
        }
    };
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", data_dir.display()))?;
    let listener = server::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let bbb_secret = crate::accounts::new_token();
    let lecture: Scenario = serde_json::from_str(LECTURE)?;
    let simulator = crate::sim::start(
        SocketAddr::new(addr.ip(), 0),
        crate::sim::SimOptions {
            secret: bbb_secret.clone(),
            media_dir: Some(data_dir.join("simulator")),
            scenario: Some(lecture),
            ..Default::default()
        },
    )
    .await?;
    let mut config = Config {
        listen: addr,
        public_url: format!("http://{addr}"),
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    config.site.title = "amphi demo".to_owned();
    config.bbb.api_url = simulator.api_url();
    config.bbb.secret = bbb_secret;
    config.bbb.webhooks = true;
    // The simulator's media comes over loopback.
    config.media.udp_bind = format!("{}:0", addr.ip());
    let db = server::open_database(&config).await?;
    let state = server::build_state(config, db, Arc::new(SystemClock)).await?;

    let owner_password = account(
        &state,
        UserSpec {
            username: DEMO_USER.to_owned(),
            password: None,
            display_name: "Prof. Demo".to_owned(),
            email: "demo@amphi.invalid".to_owned(),
            staff: true,
            superuser: true,
            affiliation: "faculty".to_owned(),
            groups: vec!["faculty".to_owned()],
        },
    )
    .await?;
    let student_password = account(
        &state,
        UserSpec {
            username: STUDENT_USER.to_owned(),
            password: None,
            display_name: "Étudiante Demo".to_owned(),
            email: "student@amphi.invalid".to_owned(),
            staff: false,
            superuser: false,
            affiliation: "student".to_owned(),
            groups: vec!["student".to_owned()],
        },
    )
    .await?;
    let owner = state
        .db
        .user_by_username(DEMO_USER)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo account vanished"))?;

    // The owner starts the webinar: BBB (the simulator) creates the meeting, the lecture
    // begins in it, and the live starts.
    let meeting = schedule(&state, owner.id).await?;
    let api = state
        .bbb
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the simulator is not configured"))?;
    let meeting = crate::meetings::start::ensure_created(
        &state.db,
        api.as_ref(),
        &state.config,
        state.secret_key.expose(),
        &meeting,
        Some(owner.id),
        chrono::Utc::now(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the simulator could not start the meeting: {e}"))?;
    let live = state.webinars.start(&meeting, chrono::Utc::now()).await?;

    let announcement = format!(
        "live page: http://{addr}/live/{}
owner: {DEMO_USER} {owner_password}
student: {STUDENT_USER} {student_password}
bbb simulator: {}
",
        live.slug,
        simulator.api_url()
    );
    // Best effort: a closed stdout (the reader went away) must not stop the server.
    let mut out = std::io::stdout().lock();
    if let Err(e) = out
        .write_all(announcement.as_bytes())
        .and_then(|()| out.flush())
    {
        tracing::warn!(error = %e, "cannot print the demo's addresses and logins");
    }
    drop(out);
    tracing::info!(data = %data_dir.display(), "amphi demo: SQLite data folder");

    let shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        match options.duration {
            None => Box::pin(server::shutdown_signal()),
            Some(duration) => {
                let state = state.clone();
                let sim = simulator.state.clone();
                let meeting_id = meeting.meeting_id.clone();
                let ended = async move {
                    tokio::time::sleep(duration).await;
                    tracing::info!("amphi demo: the simulated meeting ends");
                    if let Err(e) = sim.apply_event(&meeting_id, &Event::End) {
                        tracing::warn!(error = e, "amphi demo: cannot end the simulated meeting");
                    }
                    live_stopped(&state, meeting.id).await;
                    tracing::info!("amphi demo: the live ended; serving {AFTER_END:?} more");
                    tokio::time::sleep(AFTER_END).await;
                };
                Box::pin(async move {
                    tokio::select! {
                        () = ended => {}
                        () = server::shutdown_signal() => {}
                    }
                })
            }
        };
    server::serve(listener, state, shutdown).await?;
    drop(simulator);
    Ok(())
}

/// Waits until the live of meeting `id` is stopped (after the meeting's end).
async fn live_stopped(state: &crate::web::AppState, id: i64) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        match state.db.live_of_meeting(id).await {
            Ok(Some(live)) if live.state == crate::db::LiveState::Stopped => return,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "amphi demo: cannot read the live"),
        }
    }
}
