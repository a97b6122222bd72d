//! Integration tests: one binary, one module per capability.

mod support;

mod admin;
mod bbb_callbacks;
mod bbb_client;
mod bbb_fixtures;
mod bot;
mod bridge;
mod browser;
mod chat;
mod chat_cluster;
mod cli;
mod config;
mod db;
mod faults;
mod graphql_frames;
mod health;
mod i18n;
mod invitations;
mod live_chain;
mod live_inputs;
mod live_page;
mod live_pipeline;
mod meetings;
mod meetings_api;
mod meetings_db;
mod proxy;
mod redaction;
mod screenshots;
mod sfu_session;
mod videos;
mod web_auth;
mod webinar;
mod webinar_recovery;
