//! Webinars as their owners run them, for the tools that measure whole webinars
//! (`webinar_lives`, `soak`): the BBB simulator in a child process (the tool's own binary with
//! `--sim`), amphi in the measuring process on SQLite with its real webinar supervisor, and
//! meetings where a presenter shows slides and a camera.
#![allow(dead_code)]

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "webinar-bench-secret";

/// When the tool was started with `--sim`: runs the simulator and never returns.
pub fn simulate_if_asked(runtime: &tokio::runtime::Runtime) {
    if !crate::common::flag("--sim") {
        return;
    }
    runtime.block_on(async {
        let sim = amphi::sim::start(
            "127.0.0.1:0".parse().unwrap(),
            amphi::sim::SimOptions {
                secret: amphi::redact::Redacted::new(SECRET.to_owned()),
                media_dir: Some(std::env::temp_dir().join("amphi-bench-sim")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        println!("{}", sim.addr.port());
        std::future::pending::<()>().await;
    });
}

/// The simulator's process and amphi's state, with a staff owner for the webinars.
pub struct Stack {
    pub state: amphi::web::AppState,
    pub db: amphi::db::Db,
    pub api: Arc<dyn amphi::bbb::BbbApi>,
    pub sim_url: String,
    pub owner: amphi::db::User,
    sim: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

impl Stack {
    /// Starts the simulator (this binary with `--sim`) and amphi's state for `max_lives`.
    pub async fn start(preset: &str, fps: u32, max_lives: u32) -> Self {
        let mut sim = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--sim")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(sim.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the simulator's port");
        amphi::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let mut config = amphi::config::Config {
            data_dir: dir.path().to_path_buf(),
            ..amphi::config::Config::default()
        };
        let sim_url = format!("http://127.0.0.1:{port}");
        config.bbb.api_url = format!("{sim_url}/bigbluebutton/api");
        config.bbb.secret = amphi::redact::Redacted::new(SECRET.to_owned());
        config.media.udp_bind = "127.0.0.1:0".to_owned();
        config.media.preset = preset.to_owned();
        config.media.fps = fps;
        config.webinar.max_lives = max_lives;
        let db = amphi::server::open_database(&config).await.unwrap();
        let state =
            amphi::server::build_state(config, db.clone(), Arc::new(amphi::clock::SystemClock))
                .await
                .unwrap();
        let owner = state
            .accounts
            .create_user(&amphi::accounts::UserSpec {
                username: "owner".to_owned(),
                password: None,
                display_name: "Prof".to_owned(),
                email: "prof@univ.example".to_owned(),
                staff: true,
                superuser: true,
                affiliation: "faculty".to_owned(),
                groups: Vec::new(),
            })
            .await
            .unwrap();
        let api = state.bbb.clone().unwrap();
        Self {
            state,
            db,
            api,
            sim_url,
            owner,
            sim,
            _dir: dir,
        }
    }

    /// Sends scenario events into meeting `meeting_id` of the simulator.
    pub async fn events(&self, meeting_id: &str, events: serde_json::Value) {
        let answer = reqwest::Client::new()
            .post(format!("{}/sim/meetings/{meeting_id}/events", self.sim_url))
            .json(&events)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204);
    }

    /// A webinar (anonymous audience chat allowed) created in BBB, with a presenter showing
    /// slides and a camera, not started yet.
    pub async fn webinar(&self, name: &str) -> amphi::db::Meeting {
        let fields = amphi::db::MeetingFields {
            webinar_anonymous_chat: true,
            ..amphi::db::MeetingFields::webinar(name, self.owner.id, chrono::Utc::now())
        };
        let meeting = self
            .db
            .create_meeting(&fields, false, "", chrono::Utc::now())
            .await
            .unwrap();
        let meeting = amphi::meetings::start::ensure_created(
            &self.db,
            self.api.as_ref(),
            &self.state.config,
            self.state.secret_key.expose(),
            &meeting,
            Some(self.owner.id),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        self.events(
            &meeting.meeting_id,
            serde_json::json!([
                {"type": "join", "name": "Prof. Curie", "role": "MODERATOR"},
                {"type": "presenter", "name": "Prof. Curie"},
                {"type": "camera_on", "name": "Prof. Curie"},
            ]),
        )
        .await;
        meeting
    }

    /// The live of a started webinar, once it exists.
    pub async fn live(&self, meeting: &amphi::db::Meeting) -> Arc<amphi::hls::Live> {
        for _ in 0..6000 {
            if let amphi::hls::Lookup::Live(live) = self.state.lives.lookup(&meeting.meeting_id) {
                return live;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the live of {} did not start", meeting.meeting_id);
    }
}
