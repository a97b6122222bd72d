//! One live's chat room, without sockets: who may write, the limits, moderation, the Q&A
//! queue, the history sent on connect, and the meeting's messages coming the other way. Each
//! call takes the time and returns what to send to whom and what to keep and forward; the
//! WebSocket shell, the database and the BBB relay carry that out.

use super::protocol::{
    ClientFrame, ErrorCode, MAX_MESSAGE_CHARS, MAX_NICKNAME_CHARS, Message, Mode, Origin,
    ServerEvent, clean,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// A connection, numbered by the shell.
pub type ConnId = u64;

/// The room's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Anyone with a nickname may write (else only signed-in users, Pod's default).
    pub anonymous: bool,
    /// The chat is open (the webinar's `enable_chat`).
    pub enabled: bool,
    /// Messages sent to a client on connect.
    pub history: usize,
    /// At most `rate_count` messages per `rate_window_ms`, per author and per connection…
    pub rate_count: usize,
    pub rate_window_ms: i64,
    /// …then a mute of this long.
    pub rate_mute_ms: i64,
    /// Frames for everyone a connection may fall behind by before it is dropped.
    pub broadcast_queue: usize,
    /// How often the number of viewers is posted into the meeting (`None`: never)…
    pub viewers_post_every: Option<std::time::Duration>,
    /// …with this text (`{count}` is the number)…
    pub viewers_post_text: String,
    /// …under this sender name.
    pub viewers_post_sender: String,
}

impl Settings {
    /// The room settings of the `[chat]` section; `anonymous` and `enabled` come from the webinar.
    pub fn from_config(chat: &crate::config::ChatConfig, anonymous: bool, enabled: bool) -> Self {
        Self {
            anonymous,
            enabled,
            history: chat.history as usize,
            viewers_post_every: (chat.viewers_post_minutes > 0)
                .then(|| std::time::Duration::from_secs(u64::from(chat.viewers_post_minutes) * 60)),
            ..Self::default()
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            anonymous: false,
            enabled: true,
            history: 50,
            rate_count: 3,
            rate_window_ms: 2000,
            rate_mute_ms: 10_000,
            broadcast_queue: 256,
            viewers_post_every: None,
            viewers_post_text: "{count} students are watching the live".to_owned(),
            viewers_post_sender: "amphi".to_owned(),
        }
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Stable for the live: `user:<id>` for a signed-in user, `guest:<random>` otherwise.
    pub key: String,
    /// A signed-in user's name; guests give a nickname with each message.
    pub name: Option<String>,
    /// The webinar's owners and BBB moderators.
    pub moderator: bool,
}

/// What the shell does after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// To every connection of the room.
    All(ServerEvent),
    /// To the connection that sent the frame.
    Reply(ServerEvent),
    /// Keep this audience message and forward it into the meeting as `sender`.
    Forward { message: Message, sender: String },
    /// Keep this meeting message (it is broadcast by an `All` too).
    Keep(Message),
}

/// A muted author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mute {
    /// `None`: for the rest of the live.
    until: Option<i64>,
}

/// The room.
#[derive(Debug)]
pub struct Room {
    settings: Settings,
    slow_seconds: u32,
    questions: bool,
    ended: bool,
    next_id: u64,
    history: VecDeque<Message>,
    /// Votes per question id (voters' keys).
    votes: BTreeMap<u64, BTreeSet<String>>,
    muted: HashMap<String, Mute>,
    /// Times of recent messages per author key and per connection.
    recent_by_author: HashMap<String, VecDeque<i64>>,
    recent_by_conn: HashMap<ConnId, VecDeque<i64>>,
    last_by_author: HashMap<String, i64>,
    /// What amphi forwarded and has not seen come back from the meeting yet: (sender, text).
    echoes: VecDeque<(String, String)>,
}

/// Echoes remembered at most.
const ECHOES: usize = 256;
/// Questions remembered with their votes at most.
const QUESTIONS: usize = 1000;

impl Room {
    /// A room whose next message id is `next_id` (one past the last kept).
    pub fn new(settings: Settings, next_id: u64) -> Self {
        Self {
            settings,
            slow_seconds: 0,
            questions: false,
            ended: false,
            next_id: next_id.max(1),
            history: VecDeque::new(),
            votes: BTreeMap::new(),
            muted: HashMap::new(),
            recent_by_author: HashMap::new(),
            recent_by_conn: HashMap::new(),
            last_by_author: HashMap::new(),
            echoes: VecDeque::new(),
        }
    }

    /// Puts back messages kept before (oldest first), for the history.
    pub fn restore(&mut self, messages: Vec<Message>) {
        for message in messages {
            self.next_id = self.next_id.max(message.id + 1);
            self.remember(message);
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn mode(&self) -> Mode {
        Mode {
            enabled: self.settings.enabled,
            slow_seconds: self.slow_seconds,
            questions: self.questions,
            anonymous: self.settings.anonymous,
        }
    }

    fn can_write(&self, member: &Member) -> bool {
        member.moderator || member.name.is_some() || self.settings.anonymous
    }

    /// What a new connection receives first.
    pub fn join(&self, member: &Member) -> Vec<ServerEvent> {
        vec![
            ServerEvent::Welcome {
                key: member.key.clone(),
                name: member.name.clone(),
                can_write: self.can_write(member),
                moderator: member.moderator,
                mode: self.mode(),
            },
            ServerEvent::History {
                messages: self.history.iter().cloned().collect(),
            },
        ]
    }

    /// A connection closed.
    pub fn leave(&mut self, conn: ConnId) {
        self.recent_by_conn.remove(&conn);
    }

    /// amphi itself posts `text` into the meeting as `sender`: when it comes back from the
    /// meeting it is not shown.
    pub fn expect_echo(&mut self, sender: String, text: String) {
        self.echoes.push_back((sender, text));
        while self.echoes.len() > ECHOES {
            self.echoes.pop_front();
        }
    }

    /// The live ended: nobody writes any more.
    pub fn end(&mut self) -> Vec<Out> {
        self.ended = true;
        vec![Out::All(ServerEvent::Status {
            status: "ended".to_owned(),
        })]
    }

    fn remember(&mut self, message: Message) {
        self.history.push_back(message);
        while self.history.len() > self.settings.history {
            self.history.pop_front();
        }
    }

    fn refuse(code: ErrorCode, reason: &str) -> Vec<Out> {
        vec![Out::Reply(ServerEvent::Error {
            code,
            reason: reason.to_owned(),
        })]
    }

    /// A frame from `conn`, sent by `member`, at `now` (ms since the epoch).
    pub fn handle(
        &mut self,
        now: i64,
        conn: ConnId,
        member: &Member,
        frame: ClientFrame,
    ) -> Vec<Out> {
        if frame.needs_moderator() && !member.moderator {
            return Self::refuse(
                ErrorCode::NotAllowed,
                "Only the webinar's moderators can do this.",
            );
        }
        match frame {
            ClientFrame::Ping => vec![Out::Reply(ServerEvent::Pong)],
            ClientFrame::Message { text, nickname } => {
                self.post(now, conn, member, &text, nickname)
            }
            ClientFrame::Upvote { id } => self.upvote(member, id),
            ClientFrame::Hide { id } => {
                self.history.retain(|m| m.id != id);
                self.votes.remove(&id);
                vec![Out::All(ServerEvent::Hidden { id })]
            }
            ClientFrame::Answered { id } => {
                let Some(message) = self.history.iter_mut().find(|m| m.id == id && m.question)
                else {
                    return Self::refuse(ErrorCode::UnknownMessage, "There is no such question.");
                };
                message.answered = true;
                let votes = message.votes;
                vec![Out::All(ServerEvent::Question {
                    id,
                    votes,
                    answered: true,
                })]
            }
            ClientFrame::Mute { author, seconds } => {
                let until = seconds.map(|s| now + i64::from(s) * 1000);
                self.muted.insert(author.clone(), Mute { until });
                vec![Out::All(ServerEvent::Muted {
                    author_key: author,
                    until,
                    reason: "muted by a moderator".to_owned(),
                })]
            }
            ClientFrame::Unmute { author } => {
                self.muted.remove(&author);
                vec![Out::All(ServerEvent::Unmuted { author_key: author })]
            }
            ClientFrame::SlowMode { seconds } => {
                self.slow_seconds = seconds.min(3600);
                vec![Out::All(ServerEvent::Mode { mode: self.mode() })]
            }
            ClientFrame::Enable { enabled } => {
                self.settings.enabled = enabled;
                vec![Out::All(ServerEvent::Mode { mode: self.mode() })]
            }
            ClientFrame::QuestionMode { enabled } => {
                self.questions = enabled;
                vec![Out::All(ServerEvent::Mode { mode: self.mode() })]
            }
        }
    }

    /// Counts a message in a sliding window; false when over the limit.
    fn within(recent: &mut VecDeque<i64>, now: i64, count: usize, window: i64) -> bool {
        while recent.front().is_some_and(|t| now - t >= window) {
            recent.pop_front();
        }
        if recent.len() >= count {
            return false;
        }
        recent.push_back(now);
        true
    }

    fn post(
        &mut self,
        now: i64,
        conn: ConnId,
        member: &Member,
        text: &str,
        nickname: Option<String>,
    ) -> Vec<Out> {
        if self.ended {
            return Self::refuse(ErrorCode::Ended, "The webinar is over: the chat is closed.");
        }
        if !self.settings.enabled && !member.moderator {
            return Self::refuse(ErrorCode::ChatOff, "The chat is turned off.");
        }
        if !self.can_write(member) {
            return Self::refuse(ErrorCode::NotAllowed, "Sign in to write in this chat.");
        }
        let name = match (&member.name, nickname.as_deref().and_then(clean)) {
            (Some(name), _) => name.clone(),
            (None, Some(nickname)) if nickname.chars().count() <= MAX_NICKNAME_CHARS => nickname,
            (None, Some(_)) => {
                return Self::refuse(
                    ErrorCode::NicknameRequired,
                    &format!("A nickname has at most {MAX_NICKNAME_CHARS} characters."),
                );
            }
            (None, None) => {
                return Self::refuse(ErrorCode::NicknameRequired, "Choose a nickname to write.");
            }
        };
        let Some(text) = clean(text) else {
            return Self::refuse(ErrorCode::Empty, "The message is empty.");
        };
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Self::refuse(
                ErrorCode::TooLong,
                &format!("A message has at most {MAX_MESSAGE_CHARS} characters."),
            );
        }
        if let Some(mute) = self.muted.get(&member.key).copied() {
            match mute.until {
                Some(until) if until <= now => {
                    self.muted.remove(&member.key);
                }
                until => {
                    return vec![Out::Reply(ServerEvent::Muted {
                        author_key: member.key.clone(),
                        until,
                        reason: "you cannot write for now".to_owned(),
                    })];
                }
            }
        }
        if !member.moderator {
            if self.slow_seconds > 0
                && let Some(last) = self.last_by_author.get(&member.key)
                && now - last < i64::from(self.slow_seconds) * 1000
            {
                return Self::refuse(
                    ErrorCode::SlowMode,
                    &format!(
                        "Slow mode: one message every {} seconds.",
                        self.slow_seconds
                    ),
                );
            }
            let (count, window) = (self.settings.rate_count, self.settings.rate_window_ms);
            let by_author = self.recent_by_author.entry(member.key.clone()).or_default();
            let author_ok = Self::within(by_author, now, count, window);
            let by_conn = self.recent_by_conn.entry(conn).or_default();
            let conn_ok = Self::within(by_conn, now, count, window);
            if !(author_ok && conn_ok) {
                let until = now + self.settings.rate_mute_ms;
                self.muted
                    .insert(member.key.clone(), Mute { until: Some(until) });
                return vec![Out::Reply(ServerEvent::Muted {
                    author_key: member.key.clone(),
                    until: Some(until),
                    reason: format!(
                        "too many messages: you can write again in {} seconds",
                        self.settings.rate_mute_ms / 1000
                    ),
                })];
            }
        }
        self.last_by_author.insert(member.key.clone(), now);
        let message = Message {
            id: self.next_id,
            text: text.clone(),
            author: name.clone(),
            author_key: member.key.clone(),
            origin: Origin::Audience,
            at: now,
            question: self.questions,
            votes: 0,
            answered: false,
        };
        self.next_id += 1;
        if message.question {
            self.votes.insert(message.id, BTreeSet::new());
            while self.votes.len() > QUESTIONS {
                self.votes.pop_first();
            }
        }
        self.remember(message.clone());
        let sender = format!("{name} (live)");
        self.expect_echo(sender.clone(), text);
        vec![
            Out::Forward {
                message: message.clone(),
                sender,
            },
            Out::All(ServerEvent::Message { message }),
        ]
    }

    fn upvote(&mut self, member: &Member, id: u64) -> Vec<Out> {
        let Some(voters) = self.votes.get_mut(&id) else {
            return Self::refuse(ErrorCode::UnknownMessage, "There is no such question.");
        };
        voters.insert(member.key.clone());
        let votes = voters.len() as u32;
        let mut answered = false;
        if let Some(message) = self.history.iter_mut().find(|m| m.id == id) {
            message.votes = votes;
            answered = message.answered;
        }
        vec![Out::All(ServerEvent::Question {
            id,
            votes,
            answered,
        })]
    }

    /// A public chat message from the meeting. `api` says it came through `sendChatMessage`
    /// (sender name in `sender`), `from_bot` that amphi's bot wrote it: amphi's own forwarded
    /// messages come back that way and are not shown twice.
    pub fn from_meeting(
        &mut self,
        now: i64,
        sender: &str,
        sender_key: &str,
        text: &str,
        api: bool,
        from_bot: bool,
    ) -> Vec<Out> {
        let Some(text) = clean(text) else {
            return Vec::new();
        };
        if api || from_bot {
            if let Some(at) = self
                .echoes
                .iter()
                .position(|(s, t)| *t == text && (from_bot || s == sender))
            {
                self.echoes.remove(at);
                return Vec::new();
            }
            if from_bot {
                return Vec::new();
            }
        }
        let message = Message {
            id: self.next_id,
            text,
            author: sender.to_owned(),
            author_key: format!("meeting:{sender_key}"),
            origin: Origin::Meeting,
            at: now,
            question: false,
            votes: 0,
            answered: false,
        };
        self.next_id += 1;
        self.remember(message.clone());
        vec![
            Out::Keep(message.clone()),
            Out::All(ServerEvent::Message { message }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn student(key: &str, name: Option<&str>) -> Member {
        Member {
            key: key.to_owned(),
            name: name.map(str::to_owned),
            moderator: false,
        }
    }

    fn moderator() -> Member {
        Member {
            key: "user:1".into(),
            name: Some("Prof. Curie".into()),
            moderator: true,
        }
    }

    fn say(text: &str) -> ClientFrame {
        ClientFrame::Message {
            text: text.into(),
            nickname: None,
        }
    }

    fn error_code(out: &[Out]) -> Option<ErrorCode> {
        out.iter().find_map(|o| match o {
            Out::Reply(ServerEvent::Error { code, .. }) => Some(*code),
            _ => None,
        })
    }

    fn posted(out: &[Out]) -> Option<&Message> {
        out.iter().find_map(|o| match o {
            Out::All(ServerEvent::Message { message }) => Some(message),
            _ => None,
        })
    }

    #[test]
    fn a_signed_in_student_posts_and_it_is_forwarded_and_broadcast() {
        let mut room = Room::new(Settings::default(), 1);
        let ann = student("user:7", Some("Ann"));
        let out = room.handle(1000, 1, &ann, say("  Why is the sky blue?\n"));
        assert_eq!(out.len(), 2, "{out:?}");
        let Out::Forward { message, sender } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(sender, "Ann (live)");
        assert_eq!(message.text, "Why is the sky blue?");
        assert_eq!(message.origin, Origin::Audience);
        assert_eq!(posted(&out).unwrap().id, 1);
        let joined = room.join(&student("guest:x", None));
        assert!(
            matches!(
                &joined[0],
                ServerEvent::Welcome {
                    can_write: false,
                    ..
                }
            ),
            "guests read only by default: {joined:?}"
        );
        assert!(matches!(&joined[1], ServerEvent::History { messages } if messages.len() == 1));
    }

    #[test]
    fn guests_need_the_anonymous_setting_and_a_nickname() {
        let mut room = Room::new(Settings::default(), 1);
        let guest = student("guest:ab", None);
        let out = room.handle(0, 1, &guest, say("hello"));
        assert_eq!(error_code(&out), Some(ErrorCode::NotAllowed));

        let mut room = Room::new(
            Settings {
                anonymous: true,
                ..Settings::default()
            },
            1,
        );
        let out = room.handle(0, 1, &guest, say("hello"));
        assert_eq!(error_code(&out), Some(ErrorCode::NicknameRequired));
        let long = ClientFrame::Message {
            text: "hello".into(),
            nickname: Some("n".repeat(41)),
        };
        assert_eq!(
            error_code(&room.handle(0, 1, &guest, long)),
            Some(ErrorCode::NicknameRequired)
        );
        let out = room.handle(
            0,
            1,
            &guest,
            ClientFrame::Message {
                text: "hello".into(),
                nickname: Some(" Zoé \u{202e}".into()),
            },
        );
        assert_eq!(posted(&out).unwrap().author, "Zoé");
    }

    #[test]
    fn length_limits_hold() {
        let mut room = Room::new(Settings::default(), 1);
        let ann = student("user:7", Some("Ann"));
        assert_eq!(
            error_code(&room.handle(0, 1, &ann, say(" \n\u{200b} "))),
            Some(ErrorCode::Empty)
        );
        assert_eq!(
            error_code(&room.handle(0, 1, &ann, say(&"é".repeat(501)))),
            Some(ErrorCode::TooLong)
        );
        assert!(posted(&room.handle(0, 1, &ann, say(&"é".repeat(500)))).is_some());
    }

    #[test]
    fn a_flood_mutes_for_a_while_then_lets_write_again() {
        let mut room = Room::new(Settings::default(), 1);
        let ann = student("user:7", Some("Ann"));
        for i in 0..3 {
            assert!(posted(&room.handle(100 * i, 1, &ann, say("spam"))).is_some());
        }
        let out = room.handle(400, 1, &ann, say("spam"));
        let Some(Out::Reply(ServerEvent::Muted { until, reason, .. })) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(*until, Some(10_400));
        assert!(reason.contains("10 seconds"), "{reason}");
        // Muted, even after the window passed.
        assert!(posted(&room.handle(5_000, 1, &ann, say("still?"))).is_none());
        assert!(posted(&room.handle(10_400, 1, &ann, say("back"))).is_some());
        // The same author on other connections shares the limit.
        let mut room = Room::new(Settings::default(), 1);
        for conn in 0..3 {
            assert!(posted(&room.handle(0, conn, &ann, say("x"))).is_some());
        }
        assert!(posted(&room.handle(1, 9, &ann, say("x"))).is_none());
        // Moderators are not limited.
        let teacher = moderator();
        for i in 0..10 {
            assert!(posted(&room.handle(i, 2, &teacher, say("answer"))).is_some());
        }
    }

    #[test]
    fn moderation_hides_mutes_slows_and_closes() {
        let mut room = Room::new(Settings::default(), 1);
        let ann = student("user:7", Some("Ann"));
        let teacher = moderator();
        let id = posted(&room.handle(0, 1, &ann, say("rude"))).unwrap().id;
        assert_eq!(
            error_code(&room.handle(0, 1, &ann, ClientFrame::Hide { id })),
            Some(ErrorCode::NotAllowed)
        );
        assert_eq!(
            room.handle(1, 2, &teacher, ClientFrame::Hide { id }),
            vec![Out::All(ServerEvent::Hidden { id })]
        );
        assert!(
            matches!(&room.join(&ann)[1], ServerEvent::History { messages } if messages.is_empty())
        );

        room.handle(
            2,
            2,
            &teacher,
            ClientFrame::Mute {
                author: "user:7".into(),
                seconds: None,
            },
        );
        let out = room.handle(100_000, 1, &ann, say("let me talk"));
        assert!(
            matches!(
                out.first(),
                Some(Out::Reply(ServerEvent::Muted { until: None, .. }))
            ),
            "{out:?}"
        );
        room.handle(
            3,
            2,
            &teacher,
            ClientFrame::Unmute {
                author: "user:7".into(),
            },
        );
        assert!(posted(&room.handle(100_001, 1, &ann, say("thanks"))).is_some());

        room.handle(4, 2, &teacher, ClientFrame::SlowMode { seconds: 30 });
        assert_eq!(
            error_code(&room.handle(110_000, 1, &ann, say("again"))),
            Some(ErrorCode::SlowMode)
        );
        assert!(posted(&room.handle(131_001, 1, &ann, say("again"))).is_some());

        room.handle(5, 2, &teacher, ClientFrame::Enable { enabled: false });
        assert_eq!(
            error_code(&room.handle(200_000, 1, &ann, say("hello?"))),
            Some(ErrorCode::ChatOff)
        );
        assert!(
            posted(&room.handle(200_000, 2, &teacher, say("the chat is closed"))).is_some(),
            "moderators still write"
        );
        room.end();
        assert_eq!(
            error_code(&room.handle(300_000, 2, &teacher, say("bye"))),
            Some(ErrorCode::Ended)
        );
    }

    #[test]
    fn questions_are_queued_upvoted_once_per_person_and_answered() {
        let mut room = Room::new(Settings::default(), 1);
        let teacher = moderator();
        room.handle(0, 2, &teacher, ClientFrame::QuestionMode { enabled: true });
        let ann = student("user:7", Some("Ann"));
        let question = posted(&room.handle(1, 1, &ann, say("Exam date?")))
            .unwrap()
            .clone();
        assert!(question.question);
        for voter in ["user:8", "user:9", "user:8"] {
            room.handle(
                2,
                3,
                &student(voter, Some("x")),
                ClientFrame::Upvote { id: question.id },
            );
        }
        let out = room.handle(3, 2, &teacher, ClientFrame::Answered { id: question.id });
        assert_eq!(
            out,
            vec![Out::All(ServerEvent::Question {
                id: question.id,
                votes: 2,
                answered: true
            })]
        );
        assert_eq!(
            error_code(&room.handle(4, 1, &ann, ClientFrame::Upvote { id: 999 })),
            Some(ErrorCode::UnknownMessage)
        );
    }

    #[test]
    fn meeting_messages_are_shown_and_amphis_own_are_not_echoed() {
        let mut room = Room::new(Settings::default(), 1);
        let ann = student("user:7", Some("Ann"));
        room.handle(0, 1, &ann, say("Is it recorded?"));
        // Our forwarded message comes back through the chat stream: not shown twice.
        assert!(
            room.from_meeting(1, "Ann (live)", "SYSTEM", "Is it recorded?", true, false)
                .is_empty()
        );
        let out = room.from_meeting(2, "Prof. Curie", "w_abc", "Yes, it is.", false, false);
        let message = posted(&out).unwrap();
        assert_eq!(message.origin, Origin::Meeting);
        assert_eq!(message.author_key, "meeting:w_abc");
        assert!(matches!(&out[0], Out::Keep(m) if m.id == message.id));
        // The same words typed by someone in the meeting are shown.
        assert!(
            posted(&room.from_meeting(3, "Marie", "w_m", "Is it recorded?", false, false))
                .is_some()
        );
        // The bot's own other messages (e.g. the viewer count) are not relayed back.
        assert!(
            room.from_meeting(4, "Live stream", "w_bot", "42 students", false, true)
                .is_empty()
        );
    }

    #[test]
    fn restored_history_continues_the_numbering() {
        let mut room = Room::new(Settings::default(), 1);
        let mut old = Room::new(Settings::default(), 1);
        let ann = student("user:7", Some("Ann"));
        let first = posted(&old.handle(0, 1, &ann, say("one"))).unwrap().clone();
        room.restore(vec![first]);
        assert_eq!(posted(&room.handle(10, 1, &ann, say("two"))).unwrap().id, 2);
    }
}
