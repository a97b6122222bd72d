//! The audience chat of a live: a room per live whose logic (who may write, limits,
//! moderation, Q&A, the meeting's messages) has no sockets (`room`), and the frames it speaks
//! over WebSocket (`protocol`, documented in `docs/ref/chat-protocol.md`).

pub mod protocol;
pub mod room;
