//! A faithful BigBlueButton simulator for tests and `amphi demo`: bbb-web's API with its
//! checksum rules, answer shapes and messageKeys, state in memory. Later layers add GraphQL,
//! the SFU and media. Never used by production code paths.

mod api;
mod state;
mod xml;

pub use state::{ChatMessage, SimMeeting, SimOptions, SimState};

use axum::Router;
use axum::routing::get;
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
        .route("/sim/meetings/{meeting_id}/chat", get(api::sim_chat))
        .route("/sim/client", get(api::sim_client))
        .with_state(state)
}

/// A running simulator.
pub struct Running {
    pub addr: SocketAddr,
    pub state: SimState,
    task: tokio::task::JoinHandle<()>,
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
    Ok(Running { addr, state, task })
}
