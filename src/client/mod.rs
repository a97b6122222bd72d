//! The native BBB participant (the "bot"): the GraphQL protocol of BBB 3.0 as types
//! (`protocol`), the operations it sends (`operations`), the meeting state built from the
//! subscriptions (`state`), and the session as a socket-free state machine (`session`).
//! The WebSocket shell around it comes with the simulator's GraphQL side.

pub mod bot;
pub mod operations;
pub mod protocol;
pub mod session;
pub mod slides;
pub mod state;
