//! Log set-up: `tracing` with an env filter, text or JSON lines on stderr.
//!
//! Secrets never reach the logs because they are held in [`crate::redact::Redacted`]; the
//! integration test `tests/redaction.rs` runs the real binary and fails if the BBB secret shows.

use crate::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured filter.
pub fn init(config: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::try_new(&config.filter).unwrap_or_else(|_| "info".into()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true);
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second call (tests, `demo` after `serve`) keeps the first subscriber.
    let _ = result;
}
