//! Start-up and the HTTP server: open and migrate the database, resolve the secret key, bind,
//! serve until a shutdown signal, and purge expired sessions in the background.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::{self, Db};
use crate::redact::Redacted;
use crate::web::{self, AppState};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why amphi could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// Opens the configured database without touching its schema.
pub async fn connect_database(config: &Config) -> Result<Db, db::Error> {
    let options = db::Options {
        max_connections: config.database.max_connections,
        connect_timeout: Duration::from_secs(config.database.connect_timeout_seconds),
        schema: None,
    };
    Db::connect(&config.database_url(), &options).await
}

/// Opens the configured database and applies pending migrations.
pub async fn open_database(config: &Config) -> Result<Db, db::Error> {
    let db = connect_database(config).await?;
    db.migrate().await?;
    Ok(db)
}

/// The configured `secret_key`, or the one generated into the database on first start.
pub async fn resolve_secret_key(config: &Config, db: &Db) -> Result<Redacted<Vec<u8>>, db::Error> {
    if !config.secret_key.is_empty() {
        return Ok(Redacted::new(
            config.secret_key.expose().as_bytes().to_vec(),
        ));
    }
    let generated = crate::accounts::new_token();
    let key = db
        .setting_or_insert("secret_key", generated.expose())
        .await?;
    Ok(Redacted::new(key.into_bytes()))
}

/// Builds the application state on an open database.
pub async fn build_state(
    config: Config,
    db: Db,
    clock: Arc<dyn Clock>,
) -> Result<AppState, StartError> {
    let key = resolve_secret_key(&config, &db).await?;
    AppState::new(config, db, clock, key).map_err(StartError::Setup)
}

/// Binds the listening socket.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Serves `state` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let purge = tokio::spawn(purge_loop(state.clone()));
    let journal = tokio::spawn(crate::meetings::journal::follow(
        state.db.clone(),
        Arc::clone(&state.meeting_status),
        Arc::clone(&state.clock),
        state.events.subscribe(),
    ));
    let sampler = state.bbb.as_ref().map(|api| {
        tokio::spawn(crate::meetings::journal::sample_forever(
            state.db.clone(),
            Arc::clone(api),
            Arc::clone(&state.meeting_status),
            Arc::clone(&state.clock),
        ))
    });
    let webinars = state.webinars.spawn(state.events.subscribe());
    let library = state.library.spawn();
    let ready_mail = tokio::spawn(crate::meetings::ready::follow(
        state.db.clone(),
        Arc::clone(&state.clock),
        Arc::clone(&state.config),
        state.mailer.clone(),
        state.templates.catalog_arc(),
        state.events.subscribe(),
    ));
    let hooks = match (&state.bbb, state.config.bbb.webhooks) {
        (Some(api), true) => Some(tokio::spawn(crate::bbb::webhooks::keep_registered(
            Arc::clone(api),
            crate::bbb::callbacks::webhook_url(&state.config.public_url),
            Duration::from_secs(u64::from(state.config.bbb.webhooks_refresh_minutes) * 60),
        ))),
        _ => None,
    };
    let app = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    purge.abort();
    journal.abort();
    webinars.abort();
    library.abort();
    ready_mail.abort();
    for task in [hooks, sampler].into_iter().flatten() {
        task.abort();
    }
    result
}

async fn purge_loop(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match state.accounts.purge().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "purged expired sessions and login failures"),
            Err(e) => tracing::warn!(error = %e, "cannot purge expired sessions"),
        }
    }
}

/// `amphi serve`: the gateway with the given configuration.
pub async fn run(config: Config) -> Result<(), StartError> {
    tracing::info!(
        listen = %config.listen,
        public_url = %config.public_url,
        database = %db::display_url(&config.database_url()),
        bbb_api_url = %config.bbb.api_url,
        "starting amphi {}",
        env!("CARGO_PKG_VERSION")
    );
    tracing::debug!(?config, "configuration");
    let db = open_database(&config).await?;
    tracing::info!(engine = db.engine(), "database ready");
    let listener = bind(config.listen).await?;
    let state = build_state(config, db, Arc::new(SystemClock)).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Setup(e.to_string()))?;
    tracing::info!(%addr, "listening");
    serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| StartError::Setup(format!("server stopped: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
