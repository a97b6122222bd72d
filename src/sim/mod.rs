//! A faithful BigBlueButton simulator for tests and `amphi demo`: bbb-web's API with its
//! checksum rules, answer shapes and messageKeys, state in memory. Later layers add GraphQL,
//! the SFU and media. Never used by production code paths.

mod api;
mod graphql;
mod lifecycle;
pub mod media;
mod outbox;
mod recordings;
pub mod scenario;
mod sfu;
pub mod slides;
pub mod stamp;
mod state;
mod xml;

pub use outbox::{Delivery, DeliveryKind};
pub use recordings::VIDEO_FILE;
pub use state::{
    ChatMessage, EndReason, EndedMeeting, SfuFaults, SimFormat, SimMeeting, SimOptions,
    SimRecording, SimState,
};

use axum::Router;
use axum::routing::{get, post};
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The simulator's HTTP application.
pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/bigbluebutton/api", get(api::root))
        .route("/bigbluebutton/api/", get(api::root))
        .route(
            "/bigbluebutton/api/{call}",
            get(api::call).post(api::call_post),
        )
        .route("/bigbluebutton/api/hooks/{call}", get(api::hooks_call))
        .route("/sim/meetings", get(api::sim_meetings))
        .route(
            "/sim/meetings/{meeting_id}/chat",
            get(api::sim_chat).post(api::sim_post_chat),
        )
        .route(
            "/sim/meetings/{meeting_id}/users/{user_id}/leave",
            post(api::sim_leave),
        )
        .route(
            "/sim/meetings/{meeting_id}/recording",
            post(api::sim_recording),
        )
        .route("/graphql", get(graphql::upgrade))
        .route("/bbb-webrtc-sfu", get(sfu::upgrade))
        .route("/bigbluebutton/api/stuns", get(sfu::stuns))
        .route(
            "/bigbluebutton/presentation/{meeting}/{again}/{presentation}/{kind}/{page}",
            get(slides::page),
        )
        .route(
            "/sim/meetings/{meeting_id}/events",
            post(scenario::post_events),
        )
        .route("/sim/ended", get(api::sim_ended))
        .route("/sim/recordings", get(api::sim_recordings))
        .route("/sim/callbacks", get(api::sim_callbacks))
        .route("/sim/client", get(api::sim_client))
        .route(
            "/playback/presentation/2.3/{record_id}",
            get(recordings::presentation),
        )
        .route("/playback/video/{record_id}/", get(recordings::video))
        .route(
            "/playback/video/{record_id}/{file}",
            get(recordings::video_file),
        )
        .route("/video/{record_id}/{file}", get(recordings::video_file))
        .route(
            "/recording/{record_id}/{file}",
            get(recordings::esr_playback_or_file),
        )
        .with_state(state)
}

/// A running simulator.
pub struct Running {
    pub addr: SocketAddr,
    pub state: SimState,
    task: tokio::task::JoinHandle<()>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Running {
    /// `http://ADDR/bigbluebutton/api`.
    pub fn api_url(&self) -> String {
        format!("http://{}/bigbluebutton/api", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        self.ticker.abort();
    }
}

/// Starts the simulator on `listen` (port 0 picks a free port).
pub async fn start(listen: SocketAddr, options: SimOptions) -> std::io::Result<Running> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let state = SimState::new(options, format!("http://{addr}"));
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    let ticking = state.clone();
    let ticker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(ticking.tick_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            ticking.tick();
        }
    });
    Ok(Running {
        addr,
        state,
        task,
        ticker,
    })
}
