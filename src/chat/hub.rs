//! The running chat rooms: one task per live owns its [`Room`], keeps what it says in the
//! database and fans events out. Events for everyone are encoded once and go through one
//! bounded broadcast channel; each connection also has a small queue for the answers meant for
//! it alone. A connection that falls behind either is dropped, never waited for.
//!
//! A second task per live delivers the audience's messages into the meeting: it reads what is
//! due from the database, posts it with `sendChatMessage` (or through the bot when the server
//! has no such call), and on failure tries again later with backoff, so a message written while
//! BBB is unreachable arrives late but arrives.

use super::protocol::{self, ClientFrame, Message, ServerEvent};
use super::room::{ConnId, Member, Out, Room, Settings};
use crate::bbb::BbbApi;
use crate::db::Db;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

/// Answers for one connection queued before it is dropped.
const REPLY_QUEUE: usize = 32;
/// Commands queued for a room's task.
const COMMANDS: usize = 1024;
/// Messages delivered into the meeting per round.
const DELIVERY_BATCH: u32 = 20;

/// A frame ready to send.
pub type Frame = Arc<str>;

/// Posts into the meeting through the bot (`chatSendMessage`), for servers without
/// `sendChatMessage`.
pub type BotChat = Arc<dyn Fn(String) + Send + Sync>;

/// Where a live's chat goes in BBB.
#[derive(Clone)]
pub struct Meeting {
    pub api: Arc<dyn BbbApi>,
    pub meeting_id: String,
    pub bot: Option<BotChat>,
}

/// A new connection's side of the room.
pub struct Joined {
    pub conn: ConnId,
    /// `welcome` and `history`, to send first.
    pub first: Vec<Frame>,
    pub events: broadcast::Receiver<Frame>,
    pub replies: mpsc::Receiver<Frame>,
}

enum Command {
    Join {
        member: Member,
        reply: oneshot::Sender<Joined>,
    },
    Frame {
        conn: ConnId,
        member: Member,
        frame: ClientFrame,
        now: i64,
    },
    Leave(ConnId),
    Meeting {
        now: i64,
        sender: String,
        sender_key: String,
        text: String,
        api: bool,
        from_bot: bool,
    },
    Say(ServerEvent),
    End,
}

/// A live's room, for the web handlers and the live's task.
#[derive(Clone)]
pub struct RoomHandle {
    commands: mpsc::Sender<Command>,
    delivered: tokio::sync::watch::Receiver<u64>,
    /// Member keys (`user:<id>`) of the webinar's owners and BBB moderators.
    moderators: Arc<std::sync::RwLock<std::collections::HashSet<String>>>,
}

/// Why a room could not take a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("this live has no chat")]
    NoRoom,
    #[error("the chat is busy; try again in a moment")]
    Busy,
}

impl RoomHandle {
    /// Whether `key` moderates this room.
    pub fn is_moderator(&self, key: &str) -> bool {
        self.moderators
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Sets who moderates (the owners, then BBB moderators as they join).
    pub fn set_moderators(&self, keys: impl IntoIterator<Item = String>) {
        *self.moderators.write().unwrap_or_else(|e| e.into_inner()) = keys.into_iter().collect();
    }

    /// The id of the last audience message the meeting took (0 before the first).
    pub fn delivered(&self) -> tokio::sync::watch::Receiver<u64> {
        self.delivered.clone()
    }

    fn send(&self, command: Command) -> Result<(), HubError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => HubError::Busy,
            mpsc::error::TrySendError::Closed(_) => HubError::NoRoom,
        })
    }

    /// Opens a connection for `member`.
    pub async fn join(&self, member: Member) -> Result<Joined, HubError> {
        let (reply, joined) = oneshot::channel();
        self.send(Command::Join { member, reply })?;
        joined.await.map_err(|_| HubError::NoRoom)
    }

    /// A frame a connection sent, already parsed.
    pub fn frame(
        &self,
        conn: ConnId,
        member: Member,
        frame: ClientFrame,
        now: i64,
    ) -> Result<(), HubError> {
        self.send(Command::Frame {
            conn,
            member,
            frame,
            now,
        })
    }

    pub fn leave(&self, conn: ConnId) {
        let _ = self.send(Command::Leave(conn));
    }

    /// A public chat message from the meeting (see [`Room::from_meeting`]).
    pub fn from_meeting(
        &self,
        now: i64,
        sender: &str,
        sender_key: &str,
        text: &str,
        api: bool,
        from_bot: bool,
    ) -> Result<(), HubError> {
        self.send(Command::Meeting {
            now,
            sender: sender.to_owned(),
            sender_key: sender_key.to_owned(),
            text: text.to_owned(),
            api,
            from_bot,
        })
    }

    /// Tells every connection something (viewer count, live status).
    pub fn say(&self, event: ServerEvent) -> Result<(), HubError> {
        self.send(Command::Say(event))
    }

    /// The live ended: the room closes to writing.
    pub fn end(&self) {
        let _ = self.send(Command::End);
    }
}

/// Chat connections one address may hold at once (a lecture hall behind one NAT address
/// counts as one address).
pub const CONNECTIONS_PER_ADDRESS: usize = 500;

/// The rooms of this instance, by live slug.
#[derive(Clone)]
pub struct Hub {
    rooms: Arc<Mutex<HashMap<String, RoomHandle>>>,
    connections: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
    per_address: usize,
}

impl Default for Hub {
    fn default() -> Self {
        Self::with_connection_cap(CONNECTIONS_PER_ADDRESS)
    }
}

/// A connection counted against its address until dropped.
pub struct Admitted {
    connections: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
    address: std::net::IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = connections.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                connections.remove(&self.address);
            }
        }
    }
}

impl Hub {
    /// A hub that lets one address hold at most `per_address` connections.
    pub fn with_connection_cap(per_address: usize) -> Self {
        Self {
            rooms: Arc::default(),
            connections: Arc::default(),
            per_address,
        }
    }

    /// Connections `address` holds now.
    pub fn connections_from(&self, address: std::net::IpAddr) -> usize {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&address)
            .copied()
            .unwrap_or(0)
    }

    /// Counts a new connection from `address`; `None` past the cap.
    pub fn admit(&self, address: std::net::IpAddr) -> Option<Admitted> {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let count = connections.entry(address).or_default();
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(Admitted {
            connections: Arc::clone(&self.connections),
            address,
        })
    }

    /// The room of `live`, if it is open.
    pub fn room(&self, live: &str) -> Option<RoomHandle> {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(live)
            .cloned()
    }

    /// Opens the room of `live` (its history comes back from the database) and starts
    /// delivering its messages into `meeting`. Opening an open room returns it.
    pub async fn open(
        &self,
        live: &str,
        settings: Settings,
        db: Db,
        meeting: Meeting,
    ) -> Result<RoomHandle, crate::db::Error> {
        if let Some(room) = self.room(live) {
            return Ok(room);
        }
        let mut room = Room::new(settings.clone(), db.chat_next_id(live).await?);
        room.restore(db.chat_history(live, settings.history as u32).await?);
        let (commands, receiver) = mpsc::channel(COMMANDS);
        let (delivered_tx, delivered) = tokio::sync::watch::channel(0);
        let handle = RoomHandle {
            commands,
            delivered,
            moderators: Arc::default(),
        };
        let delivery = Arc::new(Notify::new());
        // Messages left undelivered by an earlier run go first.
        delivery.notify_one();
        // The delivery stops when the room's task does.
        let (open, closed) = tokio::sync::watch::channel(());
        tokio::spawn(run(
            live.to_owned(),
            room,
            db.clone(),
            receiver,
            Arc::clone(&delivery),
            open,
        ));
        tokio::spawn(deliver(
            live.to_owned(),
            db,
            meeting,
            delivery,
            closed,
            delivered_tx,
        ));
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(live.to_owned(), handle.clone());
        Ok(handle)
    }

    /// Closes the room of `live` (after [`RoomHandle::end`]); its connections end.
    pub fn close(&self, live: &str) {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(live);
    }
}

/// How long events for everyone may wait to share a frame, when they come faster than that.
pub const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// Events in one frame at most.
pub const BATCH_EVENTS: usize = 32;

/// Events for everyone: the first after a quiet moment goes at once; those that follow within
/// [`BATCH_WINDOW`] share one frame (one event per line), sent when the window closes. Under
/// load this divides the frames, writes and wake-ups per connection; when quiet it adds nothing.
#[derive(Default)]
struct Batch {
    lines: Vec<String>,
    last_sent: Option<tokio::time::Instant>,
}

impl Batch {
    fn push(&mut self, line: String, everyone: &broadcast::Sender<Frame>) {
        let now = tokio::time::Instant::now();
        let quiet = self.last_sent.is_none_or(|t| now - t >= BATCH_WINDOW);
        self.lines.push(line);
        if (quiet && self.lines.len() == 1) || self.lines.len() >= BATCH_EVENTS {
            self.flush(everyone);
        }
    }

    /// Completes when the waiting events are due.
    async fn due(&self) {
        match (self.lines.is_empty(), self.last_sent) {
            (false, Some(at)) => tokio::time::sleep_until(at + BATCH_WINDOW).await,
            (false, None) => {}
            (true, _) => std::future::pending().await,
        }
    }

    fn flush(&mut self, everyone: &broadcast::Sender<Frame>) {
        if self.lines.is_empty() {
            return;
        }
        let frame = self.lines.join("\n");
        self.lines.clear();
        self.last_sent = Some(tokio::time::Instant::now());
        let _ = everyone.send(Arc::from(frame));
    }
}

fn encode(event: &ServerEvent) -> Frame {
    Arc::from(protocol::encode(event))
}

async fn run(
    live: String,
    mut room: Room,
    db: Db,
    mut commands: mpsc::Receiver<Command>,
    delivery: Arc<Notify>,
    _open: tokio::sync::watch::Sender<()>,
) {
    let (everyone, _) = broadcast::channel::<Frame>(room.settings().broadcast_queue.max(1));
    let mut replies: HashMap<ConnId, mpsc::Sender<Frame>> = HashMap::new();
    let mut next_conn: ConnId = 1;
    let mut batch = Batch::default();
    loop {
        let command = tokio::select! {
            command = commands.recv() => match command {
                Some(command) => command,
                None => break,
            },
            () = batch.due() => {
                batch.flush(&everyone);
                continue;
            }
        };
        let (outs, from) = match command {
            Command::Join { member, reply } => {
                let conn = next_conn;
                next_conn += 1;
                let (tx, rx) = mpsc::channel(REPLY_QUEUE);
                let joined = Joined {
                    conn,
                    first: room.join(&member).iter().map(encode).collect(),
                    events: everyone.subscribe(),
                    replies: rx,
                };
                if reply.send(joined).is_ok() {
                    replies.insert(conn, tx);
                }
                continue;
            }
            Command::Leave(conn) => {
                replies.remove(&conn);
                room.leave(conn);
                continue;
            }
            Command::Frame {
                conn,
                member,
                frame,
                now,
            } => (room.handle(now, conn, &member, frame), Some(conn)),
            Command::Meeting {
                now,
                sender,
                sender_key,
                text,
                api,
                from_bot,
            } => (
                room.from_meeting(now, &sender, &sender_key, &text, api, from_bot),
                None,
            ),
            Command::Say(event) => (vec![Out::All(event)], None),
            Command::End => (room.end(), None),
        };
        for out in outs {
            match out {
                Out::All(event) => {
                    keep_moderation(&db, &live, &event).await;
                    batch.push(protocol::encode(&event), &everyone);
                }
                Out::Reply(event) => {
                    if let Some(conn) = from
                        && let Some(tx) = replies.get(&conn)
                        && tx.try_send(encode(&event)).is_err()
                    {
                        // Too slow or gone: its socket task ends when the queue closes.
                        replies.remove(&conn);
                    }
                }
                Out::Forward { message, sender } => {
                    keep(&db, &live, &message, Some(&sender)).await;
                    delivery.notify_one();
                }
                Out::Keep(message) => keep(&db, &live, &message, None).await,
            }
        }
    }
    batch.flush(&everyone);
}

async fn keep(db: &Db, live: &str, message: &Message, sender: Option<&str>) {
    if let Err(e) = db.chat_keep(live, message, sender).await {
        tracing::error!(live, id = message.id, error = %e, "a chat message could not be kept");
    }
}

/// Hidden messages and question states are kept too.
async fn keep_moderation(db: &Db, live: &str, event: &ServerEvent) {
    let kept = match event {
        ServerEvent::Hidden { id } => db.chat_hide(live, *id).await,
        ServerEvent::Question {
            id,
            votes,
            answered,
        } => db.chat_question(live, *id, *votes, *answered).await,
        _ => Ok(()),
    };
    if let Err(e) = kept {
        tracing::error!(live, error = %e, "a moderation action could not be kept");
    }
}

/// Relays the meeting's public chat, as the bot sees it, into the room until the bot stops.
/// `bot_user_id` tells the bot's own messages apart.
pub async fn follow_meeting(
    mut changes: broadcast::Receiver<crate::client::state::Change>,
    room: RoomHandle,
    bot_user_id: Option<String>,
) {
    use crate::client::state::Change;
    loop {
        match changes.recv().await {
            Ok(Change::Chat(m)) => {
                let from_bot = bot_user_id.as_deref() == Some(m.sender_id.as_str());
                let relayed = room.from_meeting(
                    crate::clock::unix_ms(),
                    &m.sender_name,
                    &m.sender_id,
                    &m.text,
                    m.kind == "api",
                    from_bot,
                );
                if relayed == Err(HubError::NoRoom) {
                    return;
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "the chat relay fell behind the meeting's changes");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// How long to wait before attempt `attempts + 1`: 1 s, doubling, at most a minute.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(6)).min(Duration::from_secs(60))
}

/// The server has no `sendChatMessage` (before BBB 3.0).
fn no_api_call(e: &crate::bbb::Error) -> bool {
    matches!(e, crate::bbb::Error::Http(404))
        || e.key().is_some_and(|k| k.as_str() == "unsupportedRequest")
}

async fn deliver(
    live: String,
    db: Db,
    meeting: Meeting,
    wake: Arc<Notify>,
    mut closed: tokio::sync::watch::Receiver<()>,
    delivered: tokio::sync::watch::Sender<u64>,
) {
    let mut use_bot = false;
    let mut wait = Duration::from_secs(1);
    loop {
        // A new message wakes the loop at once; a retry is looked at when it is due.
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = closed.changed() => return,
        }
        wait = Duration::from_secs(1);
        let pending = match db.chat_pending(&live, DELIVERY_BATCH).await {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(live, error = %e, "cannot read the chat messages to deliver");
                continue;
            }
        };
        for message in pending {
            let now = crate::clock::unix_ms();
            if message.next_attempt_ms > now {
                // Later messages wait their turn: the meeting sees them in order.
                wait = Duration::from_millis((message.next_attempt_ms - now) as u64);
                break;
            }
            let sent = match (&meeting.bot, use_bot) {
                (Some(bot), true) => {
                    bot(format!("{}: {}", message.sender, message.text));
                    Ok(())
                }
                _ => {
                    meeting
                        .api
                        .send_chat_message(
                            &meeting.meeting_id,
                            &message.text,
                            Some(&message.sender),
                        )
                        .await
                }
            };
            match sent {
                Ok(()) => {
                    if let Err(e) = db.chat_delivered(&live, message.id).await {
                        tracing::error!(live, error = %e, "cannot record a delivered chat message");
                    }
                    delivered.send_replace(message.id);
                }
                Err(e) if !use_bot && no_api_call(&e) && meeting.bot.is_some() => {
                    tracing::info!(
                        live,
                        "the BBB server has no sendChatMessage: the bot posts the audience's messages"
                    );
                    use_bot = true;
                    wait = Duration::ZERO;
                    break;
                }
                Err(e) => {
                    let delay = backoff(message.attempts);
                    tracing::warn!(live, id = message.id, attempts = message.attempts + 1, error = %e,
                        "a chat message could not reach the meeting; trying again in {delay:?}");
                    let next = crate::clock::unix_ms() + delay.as_millis() as i64;
                    if let Err(e) = db.chat_retry_at(&live, message.id, next).await {
                        tracing::error!(live, error = %e, "cannot record a delivery attempt");
                    }
                    wait = delay;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<u64> = (0..9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
