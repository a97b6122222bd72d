//! `amphi demo`: the embedded default. The gateway on SQLite in a temporary (or given) data
//! folder, driving the BBB simulator started in the same process, with a demo account; it
//! prints the URL and the login on one line each.

use crate::accounts::UserSpec;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::redact::Redacted;
use crate::server;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Username of the demo account.
pub const DEMO_USER: &str = "demo";

/// Options of `amphi demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub listen: SocketAddr,
    pub data: Option<PathBuf>,
}

/// A random password of 16 letters and digits.
fn random_password() -> String {
    // No 0/O, 1/l/I: the password is read off a terminal.
    crate::accounts::random_chars(
        b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789",
        16,
    )
}

/// Runs the demo until Ctrl-C.
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
    let simulator = crate::sim::start(
        SocketAddr::new(addr.ip(), 0),
        crate::sim::SimOptions {
            secret: bbb_secret.clone(),
            media_dir: Some(data_dir.join("simulator")),
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
    let db = server::open_database(&config).await?;
    let state = server::build_state(config, db, Arc::new(SystemClock)).await?;

    let password = random_password();
    match state.db.user_by_username(DEMO_USER).await? {
        Some(_) => {
            state
                .accounts
                .set_password(DEMO_USER, Redacted::new(password.clone()))
                .await?
        }
        None => {
            state
                .accounts
                .create_user(&UserSpec {
                    username: DEMO_USER.to_owned(),
                    password: Some(Redacted::new(password.clone())),
                    display_name: "Demo".to_owned(),
                    email: "demo@amphi.invalid".to_owned(),
                    staff: true,
                    superuser: true,
                    affiliation: "faculty".to_owned(),
                    groups: vec!["faculty".to_owned()],
                })
                .await?;
        }
    }

    let announcement = format!(
        "amphi demo: SQLite data in {}\nBBB simulator: {}\nURL: http://{addr}/login\nLogin: {DEMO_USER} / {password}\nPress Ctrl-C to stop.\n",
        data_dir.display(),
        simulator.api_url()
    );
    // Best effort: a closed stdout (the reader went away) must not stop the server.
    let mut out = std::io::stdout().lock();
    if let Err(e) = out
        .write_all(announcement.as_bytes())
        .and_then(|()| out.flush())
    {
        tracing::warn!(error = %e, "cannot print the demo URL and login");
    }
    drop(out);

    server::serve(listener, state, server::shutdown_signal()).await?;
    drop(simulator);
    Ok(())
}
