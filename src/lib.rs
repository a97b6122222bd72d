//! amphi: a BigBlueButton webinar gateway.
//!
//! One folder per external interface (see `docs/design/` and the README). This crate is both the
//! library the tests drive and the `amphi` binary's implementation.

pub mod accounts;
pub mod bbb;
pub mod bridge;
pub mod chat;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod fetch;
pub mod hls;
pub mod logging;
pub mod mail;
pub mod media;
pub mod meetings;
pub mod redact;
pub mod server;
pub mod sim;
pub mod videos;
pub mod web;
pub mod webinar;

/// Installs the process-wide rustls crypto provider (ring). Call it first thing in `main` and in
/// test setup; calling it twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
