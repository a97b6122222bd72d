//! The running chat rooms: one task per live owns its [`Room`], keeps what it says in the
//! database and fans events out. Events for everyone are encoded once and go through one
//! bounded broadcast channel; each connection also has a small queue for the answers meant for
//! it alone. A connection that falls behind either is dropped, never waited for.
//!
//! A second task per live delivers the audience's messages into the meeting: it reads what is
//! due from the database, posts it with `sendChatMessage` (or through the bot when the server
//! has no such call), and on failure tries again later with backoff, so a message written while
//! BBB is unreachable arrives late but arrives.
//!
//! With Redis (`chat.redis_url`), rooms span instances (see [`cluster`](super::cluster)): the
//! instance that opened a room owns it and also serves the connections other instances relay
//! to it; an instance without the room relays its viewers to the owner.

use super::cluster::{self, Cluster, Down, Up};
use super::protocol::{self, ClientFrame, ErrorCode, Message, ServerEvent};
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
/// Frames waiting to be published to other instances.
const OUTBOX: usize = 4096;
/// How often the viewer count is announced when it changes.
pub const VIEWERS_EVERY: Duration = Duration::from_secs(2);
/// A relay with no connection for this long closes.
const RELAY_IDLE: Duration = Duration::from_secs(30);

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
    /// amphi posts `text` into the meeting as `sender` itself: not to be shown when it comes back.
    Posted {
        sender: String,
        text: String,
    },
    /// From a relaying instance.
    Remote(Up),
    End,
}

/// A live's room, for the web handlers and the live's task.
#[derive(Clone)]
pub struct RoomHandle {
    commands: mpsc::Sender<Command>,
    delivered: tokio::sync::watch::Receiver<u64>,
    viewers: tokio::sync::watch::Receiver<usize>,
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

    /// Connections to the room, on every instance (as last announced).
    pub fn viewers(&self) -> tokio::sync::watch::Receiver<usize> {
        self.viewers.clone()
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
    cluster: Option<Arc<Cluster>>,
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
            cluster: None,
        }
    }

    /// Joins the rooms of this hub with those of other instances through `cluster`.
    pub fn with_cluster(mut self, cluster: Cluster) -> Self {
        self.cluster = Some(Arc::new(cluster));
        self
    }

    /// The rooms are shared with other instances.
    pub fn is_clustered(&self) -> bool {
        self.cluster.is_some()
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
    /// delivering its messages into `meeting`. Opening an open room returns it. With a
    /// cluster, this instance becomes the room's owner for every instance.
    pub async fn open(
        &self,
        live: &str,
        settings: Settings,
        db: Db,
        meeting: Meeting,
    ) -> Result<RoomHandle, crate::db::Error> {
        if let Some(room) = self.room(live)
            && !room.commands.is_closed()
        {
            return Ok(room);
        }
        let mut room = Room::new(settings.clone(), db.chat_next_id(live).await?);
        room.restore(db.chat_history(live, settings.history as u32).await?);
        let (commands, receiver) = mpsc::channel(COMMANDS);
        let (delivered_tx, delivered) = tokio::sync::watch::channel(0);
        let (viewers_tx, viewers) = tokio::sync::watch::channel(0);
        let handle = RoomHandle {
            commands,
            delivered,
            viewers,
            moderators: Arc::default(),
        };
        let delivery = Arc::new(Notify::new());
        // Messages left undelivered by an earlier run go first.
        delivery.notify_one();
        // The other tasks stop when the room's task does.
        let (open, closed) = tokio::sync::watch::channel(());
        let outbox = self.cluster.as_ref().map(|cluster| {
            let (outbox, queued) = mpsc::channel(OUTBOX);
            tokio::spawn(own(
                Arc::clone(cluster),
                live.to_owned(),
                handle.commands.downgrade(),
                queued,
                closed.clone(),
            ));
            outbox
        });
        if let Some(every) = settings.viewers_post_every {
            tokio::spawn(post_viewers(
                meeting.clone(),
                settings.viewers_post_text.clone(),
                settings.viewers_post_sender.clone(),
                every,
                handle.commands.downgrade(),
                handle.viewers(),
                closed.clone(),
            ));
        }
        let (queue, queued) = mpsc::unbounded_channel();
        let backlog = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        tokio::spawn(keeper(
            live.to_owned(),
            db.clone(),
            queued,
            Arc::clone(&backlog),
            Arc::clone(&delivery),
        ));
        let writes = Writes {
            live: live.to_owned(),
            db: db.clone(),
            queue,
            backlog,
            delivery: Arc::clone(&delivery),
        };
        tokio::spawn(run(
            room,
            writes,
            receiver,
            Shared {
                moderators: Arc::clone(&handle.moderators),
                viewers: viewers_tx,
                outbox,
            },
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

    /// The room of `live` for a viewer of this instance: the open room, or, with a cluster, a
    /// relay to the instance that owns it. `None` when no instance has the room.
    pub async fn room_or_relay(&self, live: &str) -> Result<Option<RoomHandle>, HubError> {
        if let Some(room) = self.room(live)
            && !room.commands.is_closed()
        {
            return Ok(Some(room));
        }
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        match cluster.owner(live).await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(live, error = %e, "cannot find the instance that owns a chat room");
                return Err(HubError::Busy);
            }
        }
        let down = cluster
            .subscribe(&cluster::down_channel(live))
            .await
            .map_err(|e| {
                tracing::warn!(live, error = %e, "cannot relay a chat room");
                HubError::Busy
            })?;
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(room) = rooms.get(live)
            && !room.commands.is_closed()
        {
            // Another viewer opened it meanwhile.
            return Ok(Some(room.clone()));
        }
        let (commands, receiver) = mpsc::channel(COMMANDS);
        let handle = RoomHandle {
            commands,
            delivered: tokio::sync::watch::channel(0).1,
            viewers: tokio::sync::watch::channel(0).1,
            moderators: Arc::default(),
        };
        tokio::spawn(relay(Arc::clone(cluster), live.to_owned(), receiver, down));
        rooms.insert(live.to_owned(), handle.clone());
        Ok(Some(handle))
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
    /// Adds an event; returns a frame when one is due now.
    fn push(&mut self, line: String) -> Option<Frame> {
        let now = tokio::time::Instant::now();
        let quiet = self.last_sent.is_none_or(|t| now - t >= BATCH_WINDOW);
        self.lines.push(line);
        if (quiet && self.lines.len() == 1) || self.lines.len() >= BATCH_EVENTS {
            return self.flush();
        }
        None
    }

    /// Completes when the waiting events are due.
    async fn due(&self) {
        match (self.lines.is_empty(), self.last_sent) {
            (false, Some(at)) => tokio::time::sleep_until(at + BATCH_WINDOW).await,
            (false, None) => {}
            (true, _) => std::future::pending().await,
        }
    }

    fn flush(&mut self) -> Option<Frame> {
        if self.lines.is_empty() {
            return None;
        }
        let frame = self.lines.join("\n");
        self.lines.clear();
        self.last_sent = Some(tokio::time::Instant::now());
        Some(Arc::from(frame))
    }
}

fn encode(event: &ServerEvent) -> Frame {
    Arc::from(protocol::encode(event))
}

/// What a room's task shares with the other tasks of the live.
struct Shared {
    moderators: Arc<std::sync::RwLock<std::collections::HashSet<String>>>,
    viewers: tokio::sync::watch::Sender<usize>,
    /// Frames for the other instances, with a cluster.
    outbox: Option<mpsc::Sender<String>>,
}

impl Shared {
    fn is_moderator(&self, key: &str) -> bool {
        self.moderators
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    fn publish(&self, down: Down<'_>) {
        if let Some(outbox) = &self.outbox
            && outbox.try_send(down.encode()).is_err()
        {
            tracing::warn!(
                "the chat's Redis link is behind: a frame for other instances was dropped"
            );
        }
    }
}

/// Where a connection's own answers go.
enum Sink {
    Local(mpsc::Sender<Frame>),
    /// A connection another instance relays.
    Remote {
        instance: String,
        conn: u64,
    },
}

/// The connections of a room, on this instance and relayed.
struct Connections {
    sinks: HashMap<ConnId, Sink>,
    /// Relayed connections: (instance, its connection number) to ours.
    remote: HashMap<(String, u64), ConnId>,
    /// When each relaying instance was last heard from.
    heard: HashMap<String, tokio::time::Instant>,
    next: ConnId,
}

impl Connections {
    fn new() -> Self {
        Self {
            sinks: HashMap::new(),
            remote: HashMap::new(),
            heard: HashMap::new(),
            next: 1,
        }
    }

    fn add(&mut self, sink: Sink) -> ConnId {
        let conn = self.next;
        self.next += 1;
        if let Sink::Remote {
            instance,
            conn: theirs,
        } = &sink
        {
            self.remote.insert((instance.clone(), *theirs), conn);
        }
        self.sinks.insert(conn, sink);
        conn
    }

    fn remove(&mut self, conn: ConnId) {
        if let Some(Sink::Remote {
            instance,
            conn: theirs,
        }) = self.sinks.remove(&conn)
        {
            self.remote.remove(&(instance, theirs));
        }
    }

    /// Our number for a relayed connection; one the owner has not seen join (it joined an
    /// earlier owner) is added.
    fn relayed(&mut self, instance: &str, theirs: u64) -> ConnId {
        match self.remote.get(&(instance.to_owned(), theirs)) {
            Some(conn) => *conn,
            None => self.add(Sink::Remote {
                instance: instance.to_owned(),
                conn: theirs,
            }),
        }
    }

    /// Forgets the connections of instances not heard from for `timeout`; returns them.
    fn prune(&mut self, timeout: Duration) -> Vec<ConnId> {
        let now = tokio::time::Instant::now();
        self.heard.retain(|_, at| now - *at < timeout);
        let gone: Vec<ConnId> = self
            .remote
            .iter()
            .filter(|((instance, _), _)| !self.heard.contains_key(instance))
            .map(|(_, conn)| *conn)
            .collect();
        for conn in &gone {
            self.remove(*conn);
        }
        gone
    }

    fn reply(&mut self, conn: ConnId, event: &ServerEvent, shared: &Shared) {
        match self.sinks.get(&conn) {
            Some(Sink::Local(tx)) if tx.try_send(encode(event)).is_err() => {
                // Too slow or gone: its socket task ends when the queue closes.
                self.sinks.remove(&conn);
            }
            Some(Sink::Local(_)) | None => {}
            Some(Sink::Remote { instance, conn }) => shared.publish(Down::To {
                instance,
                conn: *conn,
                frame: &protocol::encode(event),
            }),
        }
    }
}

/// What a relayed command asks of the room: its answers and the connection they are for.
fn relayed(
    up: Up,
    room: &mut Room,
    connections: &mut Connections,
    shared: &Shared,
) -> Option<(Vec<Out>, ConnId)> {
    connections
        .heard
        .insert(up.from().to_owned(), tokio::time::Instant::now());
    match up {
        Up::Join {
            from,
            conn,
            mut member,
        } => {
            member.moderator |= shared.is_moderator(&member.key);
            let ours = connections.relayed(&from, conn);
            let first = room.join(&member).into_iter().map(Out::Reply).collect();
            Some((first, ours))
        }
        Up::Frame {
            from,
            conn,
            mut member,
            frame,
        } => {
            member.moderator |= shared.is_moderator(&member.key);
            let ours = connections.relayed(&from, conn);
            let outs = match protocol::parse(&frame) {
                Ok(frame) => room.handle(crate::clock::unix_ms(), ours, &member, frame),
                Err(e) => vec![Out::Reply(ServerEvent::Error {
                    code: ErrorCode::BadFrame,
                    reason: e.to_string(),
                })],
            };
            Some((outs, ours))
        }
        Up::Leave { from, conn } => {
            if let Some(ours) = connections.remote.get(&(from, conn)).copied() {
                connections.remove(ours);
                room.leave(ours);
            }
            None
        }
        Up::Alive { .. } => None,
    }
}

async fn run(
    mut room: Room,
    writes: Writes,
    mut commands: mpsc::Receiver<Command>,
    shared: Shared,
    _open: tokio::sync::watch::Sender<()>,
) {
    let (everyone, _) = broadcast::channel::<Frame>(room.settings().broadcast_queue.max(1));
    let fan_out = |frame: Option<Frame>| {
        if let Some(frame) = frame {
            shared.publish(Down::All(&frame));
            let _ = everyone.send(frame);
        }
    };
    let mut connections = Connections::new();
    let mut batch = Batch::default();
    let mut tick = tokio::time::interval(VIEWERS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut announced = 0;
    loop {
        let command = tokio::select! {
            command = commands.recv() => match command {
                Some(command) => command,
                None => break,
            },
            () = batch.due() => {
                fan_out(batch.flush());
                continue;
            }
            _ = tick.tick() => {
                for conn in connections.prune(cluster::RELAY_TIMEOUT) {
                    room.leave(conn);
                }
                let count = connections.sinks.len();
                if count != announced {
                    announced = count;
                    shared.viewers.send_replace(count);
                    fan_out(batch.push(protocol::encode(&ServerEvent::Viewers { count })));
                }
                continue;
            }
        };
        let (outs, from) = match command {
            Command::Join { member, reply } => {
                let (tx, rx) = mpsc::channel(REPLY_QUEUE);
                let first = room.join(&member).iter().map(encode).collect();
                let conn = connections.add(Sink::Local(tx));
                let joined = Joined {
                    conn,
                    first,
                    events: everyone.subscribe(),
                    replies: rx,
                };
                if reply.send(joined).is_err() {
                    connections.remove(conn);
                }
                continue;
            }
            Command::Leave(conn) => {
                connections.remove(conn);
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
            Command::Posted { sender, text } => {
                room.expect_echo(sender, text);
                continue;
            }
            Command::Remote(up) => match relayed(up, &mut room, &mut connections, &shared) {
                Some((outs, conn)) => (outs, Some(conn)),
                None => continue,
            },
            Command::End => (room.end(), None),
        };
        for out in outs {
            match out {
                Out::All(event) => {
                    if matches!(
                        event,
                        ServerEvent::Hidden { .. } | ServerEvent::Question { .. }
                    ) {
                        writes.keep(Write::Moderation(event.clone())).await;
                    }
                    fan_out(batch.push(protocol::encode(&event)));
                }
                Out::Reply(event) => {
                    if let Some(conn) = from {
                        connections.reply(conn, &event, &shared);
                    }
                }
                Out::Forward { message, sender } => {
                    writes
                        .keep(Write::Message {
                            message,
                            sender: Some(sender),
                        })
                        .await;
                }
                Out::Keep(message) => {
                    writes
                        .keep(Write::Message {
                            message,
                            sender: None,
                        })
                        .await;
                }
            }
        }
    }
    fan_out(batch.flush());
}

/// The owner's side of a clustered room: announces the owner, publishes what the room says to
/// the other instances, and passes what they relay to the room, until the room closes.
async fn own(
    cluster: Arc<Cluster>,
    live: String,
    // Weak: the room closes when its last handle goes, whatever this task does.
    commands: mpsc::WeakSender<Command>,
    mut outbox: mpsc::Receiver<String>,
    mut closed: tokio::sync::watch::Receiver<()>,
) {
    use futures_util::StreamExt;
    let (up, down) = (cluster::up_channel(&live), cluster::down_channel(&live));
    let mut relayed: Option<redis::aio::PubSubStream> = None;
    let mut retry_at = tokio::time::Instant::now();
    let mut heartbeat = tokio::time::interval(cluster::HEARTBEAT);
    loop {
        let mut lost = false;
        if relayed.is_none() && tokio::time::Instant::now() >= retry_at {
            match cluster.subscribe(&up).await {
                Ok(stream) => {
                    relayed = Some(stream);
                    // Announced again at once: after a Redis restart the relays find the
                    // room without waiting for the next heartbeat.
                    if let Err(e) = cluster.claim(&live).await {
                        tracing::warn!(live, error = %e, "cannot announce this instance as the chat room's owner");
                    }
                }
                Err(e) => {
                    tracing::warn!(live, error = %e, "other instances' viewers cannot reach this chat room for now");
                    retry_at = tokio::time::Instant::now() + Duration::from_secs(2);
                }
            }
        }
        let waiting = relayed.is_none();
        let message = async {
            match relayed.as_mut() {
                Some(stream) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = closed.changed() => break,
            _ = heartbeat.tick() => {
                if let Err(e) = cluster.claim(&live).await {
                    tracing::warn!(live, error = %e, "cannot announce this instance as the chat room's owner");
                }
            }
            payload = outbox.recv() => {
                let Some(payload) = payload else { break };
                if let Err(e) = cluster.publish(&down, &payload).await {
                    tracing::warn!(live, error = %e, "a chat frame did not reach the other instances");
                }
            }
            message = message => match message {
                Some(message) => match serde_json::from_slice::<Up>(message.get_payload_bytes()) {
                    Ok(up) if up.from() == cluster.instance => {}
                    Ok(up) => {
                        let Some(commands) = commands.upgrade() else { break };
                        if commands.try_send(Command::Remote(up)).is_err() {
                            tracing::warn!(live, "the chat room is busy: a relayed frame was dropped");
                        }
                    }
                    Err(e) => tracing::warn!(live, error = %e, "a relayed chat frame was not understood"),
                },
                None => {
                    lost = true;
                }
            },
            () = tokio::time::sleep_until(retry_at), if waiting => {}
        }
        if lost {
            relayed = None;
            retry_at = tokio::time::Instant::now() + Duration::from_secs(1);
        }
    }
    if let Err(e) = cluster.release(&live).await {
        tracing::warn!(live, error = %e, "cannot give up the chat room's ownership; it expires by itself");
    }
}

/// A room owned by another instance, for this instance's viewers: their joins, frames and
/// leaves go up, the room's frames come down. It ends when its last viewer has been gone a
/// while, or when the link to Redis breaks (its viewers then reconnect).
async fn relay(
    cluster: Arc<Cluster>,
    live: String,
    mut commands: mpsc::Receiver<Command>,
    mut down: redis::aio::PubSubStream,
) {
    use futures_util::StreamExt;
    let up = cluster::up_channel(&live);
    let from = cluster.instance.clone();
    let (everyone, _) = broadcast::channel::<Frame>(Settings::default().broadcast_queue);
    let mut replies: HashMap<ConnId, mpsc::Sender<Frame>> = HashMap::new();
    let mut next_conn: ConnId = 1;
    let mut heartbeat = tokio::time::interval(cluster::HEARTBEAT);
    let mut idle_since = Some(tokio::time::Instant::now());
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                let (conn, message) = match command {
                    Command::Join { member, reply } => {
                        let conn = next_conn;
                        next_conn += 1;
                        let (tx, rx) = mpsc::channel(REPLY_QUEUE);
                        let joined = Joined { conn, first: Vec::new(), events: everyone.subscribe(), replies: rx };
                        if reply.send(joined).is_err() {
                            continue;
                        }
                        replies.insert(conn, tx);
                        idle_since = None;
                        (conn, Up::Join { from: from.clone(), conn, member })
                    }
                    Command::Frame { conn, member, frame, .. } => {
                        let frame = serde_json::to_string(&frame).unwrap_or_default();
                        (conn, Up::Frame { from: from.clone(), conn, member, frame })
                    }
                    Command::Leave(conn) => {
                        replies.remove(&conn);
                        if replies.is_empty() {
                            idle_since = Some(tokio::time::Instant::now());
                        }
                        (conn, Up::Leave { from: from.clone(), conn })
                    }
                    // The meeting's side of the room is the owner's.
                    _ => continue,
                };
                let leaving = matches!(message, Up::Leave { .. });
                let payload = serde_json::to_string(&message).unwrap_or_default();
                let reached = cluster.publish(&up, &payload).await;
                if !leaving && !matches!(reached, Ok(n) if n > 0)
                    && let Some(tx) = replies.get(&conn)
                {
                    let _ = tx.try_send(encode(&ServerEvent::Error {
                        code: ErrorCode::Unavailable,
                        reason: "The chat cannot be reached for a moment; try again shortly.".to_owned(),
                    }));
                }
            }
            message = down.next() => {
                let Some(message) = message else {
                    tracing::warn!(live, "the link to the chat's Redis server broke: this instance's viewers reconnect");
                    break;
                };
                match std::str::from_utf8(message.get_payload_bytes()).ok().and_then(Down::decode) {
                    Some(Down::All(frame)) => {
                        let _ = everyone.send(Arc::from(frame));
                    }
                    Some(Down::To { instance, conn, frame }) if instance == from => {
                        if let Some(tx) = replies.get(&conn)
                            && tx.try_send(Arc::from(frame)).is_err()
                        {
                            replies.remove(&conn);
                        }
                    }
                    Some(Down::To { .. }) => {}
                    None => tracing::warn!(live, "a chat frame from the owning instance was not understood"),
                }
            }
            _ = heartbeat.tick() => {
                if idle_since.is_some_and(|at| at.elapsed() >= RELAY_IDLE) {
                    break;
                }
                let alive = serde_json::to_string(&Up::Alive { from: from.clone() }).unwrap_or_default();
                if let Err(e) = cluster.publish(&up, &alive).await {
                    tracing::warn!(live, error = %e, "cannot reach the chat's Redis server");
                }
            }
        }
    }
    for conn in replies.keys() {
        let leave = Up::Leave {
            from: from.clone(),
            conn: *conn,
        };
        let _ = cluster
            .publish(&up, &serde_json::to_string(&leave).unwrap_or_default())
            .await;
    }
}

/// Posts "N students are watching the live" into the meeting every `every` while someone is.
async fn post_viewers(
    meeting: Meeting,
    template: String,
    sender: String,
    every: Duration,
    room: mpsc::WeakSender<Command>,
    viewers: tokio::sync::watch::Receiver<usize>,
    mut closed: tokio::sync::watch::Receiver<()>,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = closed.changed() => return,
            _ = tick.tick() => {}
        }
        let count = *viewers.borrow();
        if count == 0 {
            continue;
        }
        let text = template.replace("{count}", &count.to_string());
        let posted = Command::Posted {
            sender: sender.clone(),
            text: text.clone(),
        };
        let Some(room) = room.upgrade() else { return };
        if room.try_send(posted).is_err() {
            continue;
        }
        if let Err(e) = meeting
            .api
            .send_chat_message(&meeting.meeting_id, &text, Some(&sender))
            .await
        {
            tracing::info!(error = %e, "the viewer count could not be posted into the meeting");
        }
    }
}

/// What a room asks the database to keep, in the order it happened.
enum Write {
    /// An audience message (`sender`: to forward into the meeting as) or a meeting message.
    Message {
        message: Message,
        sender: Option<String>,
    },
    /// A message hidden, a question's votes or state.
    Moderation(ServerEvent),
}

impl Write {
    async fn apply(&self, db: &Db, live: &str) -> crate::db::Result<()> {
        match self {
            Write::Message { message, sender } => db
                .chat_keep(live, message, sender.as_deref())
                .await
                .map(drop),
            Write::Moderation(ServerEvent::Hidden { id }) => db.chat_hide(live, *id).await,
            Write::Moderation(ServerEvent::Question {
                id,
                votes,
                answered,
            }) => db.chat_question(live, *id, *votes, *answered).await,
            Write::Moderation(_) => Ok(()),
        }
    }

    /// An audience message, for the delivery into the meeting once kept.
    fn forwarded(&self) -> bool {
        matches!(
            self,
            Write::Message {
                sender: Some(_),
                ..
            }
        )
    }
}

/// How long the room waits for the database before leaving a write to the keeper.
const INLINE_WRITE: Duration = Duration::from_millis(500);
/// How long the keeper tries one write before giving it up.
const KEEP_PATIENCE: Duration = Duration::from_secs(3600);

/// The room's writes. While the database answers, each is made before the room goes on (what
/// the viewers saw is kept). When it does not answer within [`INLINE_WRITE`], that write and
/// every later one go to the [`keeper`], in order, until its backlog is empty again: a slow or
/// absent database never holds the chat up, and a restart of it loses nothing. Every write
/// may be made twice (a timed-out one may have landed): they are idempotent.
struct Writes {
    live: String,
    db: Db,
    queue: mpsc::UnboundedSender<Write>,
    /// Writes given to the keeper and not made yet.
    backlog: Arc<std::sync::atomic::AtomicUsize>,
    delivery: Arc<Notify>,
}

impl Writes {
    async fn keep(&self, write: Write) {
        use std::sync::atomic::Ordering;
        if self.backlog.load(Ordering::Acquire) == 0
            && let Ok(Ok(())) =
                tokio::time::timeout(INLINE_WRITE, write.apply(&self.db, &self.live)).await
        {
            if write.forwarded() {
                self.delivery.notify_one();
            }
            return;
        }
        self.backlog.fetch_add(1, Ordering::AcqRel);
        if self.queue.send(write).is_err() {
            self.backlog.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Makes the writes the room could not make at once, in order, each tried again until it
/// lands (waiting longer each time, up to 5 s between tries, for an hour); audience messages
/// go to the delivery once kept. Writes still queued when the room closes are made all the
/// same.
async fn keeper(
    live: String,
    db: Db,
    mut queued: mpsc::UnboundedReceiver<Write>,
    backlog: Arc<std::sync::atomic::AtomicUsize>,
    delivery: Arc<Notify>,
) {
    let mut failing = false;
    while let Some(write) = queued.recv().await {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match write.apply(&db, &live).await {
                Ok(()) => {
                    if write.forwarded() {
                        delivery.notify_one();
                    }
                    break;
                }
                Err(e) if started.elapsed() >= KEEP_PATIENCE => {
                    tracing::error!(live, error = %e, "a chat write was given up after an hour of failures");
                    break;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(live, error = %e, "the chat cannot write to the database; its writes wait and are tried again");
                        failing = true;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        if backlog.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 && failing {
            tracing::info!(live, "the chat's waiting writes are all kept");
            failing = false;
        }
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
