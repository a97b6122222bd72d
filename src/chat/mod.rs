//! The audience chat of a live: a room per live whose logic (who may write, limits,
//! moderation, Q&A, the meeting's messages) has no sockets (`room`), the frames it speaks over
//! WebSocket (`protocol`, documented in `docs/ref/chat-protocol.md`), the task that runs each
//! room, keeps its messages and delivers them into the meeting (`hub`), the Redis link that
//! shares rooms between instances (`cluster`), and the shell that serves one connection
//! (`socket`).

pub mod cluster;
pub mod hub;
pub mod protocol;
pub mod room;
pub mod socket;
