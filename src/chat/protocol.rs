//! The audience chat's frames, one JSON object per WebSocket text frame with a `type` field
//! (`docs/ref/chat-protocol.md`). What a browser sends is [`ClientFrame`], what amphi sends is
//! [`ServerEvent`]. A frame that does not parse gets an `error` event back and changes nothing.

use serde::{Deserialize, Serialize};

/// Largest frame a client may send, in bytes (a 500-character message in any script, a
/// nickname and the JSON around them fit in it).
pub const MAX_FRAME_BYTES: usize = 4096;
/// Longest message, in characters (BBB's `sendChatMessage` takes 1 to 500).
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Longest nickname, in characters.
pub const MAX_NICKNAME_CHARS: usize = 40;
/// Deepest JSON nesting accepted (frames are flat objects).
const MAX_DEPTH: usize = 4;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// A message (a question in Q&A mode); `nickname` where anonymous writing is allowed.
    Message {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nickname: Option<String>,
    },
    /// Adds the sender's vote to a queued question.
    Upvote { id: u64 },
    /// Moderators: hides a message from everyone.
    Hide { id: u64 },
    /// Moderators: a question was answered.
    Answered { id: u64 },
    /// Moderators: mutes an author for `seconds` (for the rest of the live without it).
    Mute {
        author: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u32>,
    },
    /// Moderators: lets a muted author write again.
    Unmute { author: String },
    /// Moderators: at most one message per `seconds` per author (0 turns it off).
    SlowMode { seconds: u32 },
    /// Moderators: turns the chat on or off for the audience.
    Enable { enabled: bool },
    /// Moderators: Q&A mode (messages become questions, queued and upvoted).
    QuestionMode { enabled: bool },
    /// Keeps an idle connection open through proxies; answered with `pong`.
    Ping,
}

impl ClientFrame {
    /// Only the webinar's moderators may send it.
    pub fn needs_moderator(&self) -> bool {
        !matches!(
            self,
            Self::Message { .. } | Self::Upvote { .. } | Self::Ping
        )
    }
}

/// Where a message comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Written on the live page.
    Audience,
    /// Written in the BBB meeting (presenters' answers, participants).
    Meeting,
}

/// A message as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: u64,
    pub text: String,
    /// The name shown.
    pub author: String,
    /// The author's key, for moderators' mute (`user:12`, `guest:…`, `meeting:…`).
    pub author_key: String,
    pub origin: Origin,
    /// Milliseconds since the UNIX epoch.
    pub at: i64,
    /// A question of the Q&A mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub question: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub votes: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub answered: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The chat's settings as clients see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mode {
    pub enabled: bool,
    pub slow_seconds: u32,
    pub questions: bool,
    /// Anyone with a nickname may write (else only signed-in users).
    pub anonymous: bool,
}

/// What amphi sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// First frame of a connection: who the client is for the chat and what it may do.
    Welcome {
        /// This connection's author key (what `muted` events name).
        key: String,
        name: Option<String>,
        can_write: bool,
        moderator: bool,
        mode: Mode,
    },
    /// The last messages, oldest first (on connect).
    History {
        messages: Vec<Message>,
    },
    Message {
        message: Message,
    },
    /// A question's votes or state changed.
    Question {
        id: u64,
        votes: u32,
        answered: bool,
    },
    /// A moderator hid this message.
    Hidden {
        id: u64,
    },
    /// An author may not write until `until` (ms since the epoch; `None`: for the rest of the
    /// live).
    Muted {
        author_key: String,
        until: Option<i64>,
        reason: String,
    },
    Unmuted {
        author_key: String,
    },
    Mode {
        mode: Mode,
    },
    Viewers {
        count: usize,
    },
    /// `waiting`, `live` or `ended`.
    Status {
        status: String,
    },
    Pong,
    /// What the client sent could not be done; `reason` is a sentence for the user.
    Error {
        code: ErrorCode,
        reason: String,
    },
}

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadFrame,
    TooLong,
    Empty,
    NotAllowed,
    NicknameRequired,
    Muted,
    SlowMode,
    RateLimited,
    ChatOff,
    Ended,
    UnknownMessage,
    /// The instance serving the connection cannot reach the room for now.
    Unavailable,
}

/// Why a frame did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the frame is larger than {MAX_FRAME_BYTES} bytes")]
    TooLarge,
    #[error("the frame is nested too deeply")]
    TooDeep,
    #[error("the frame is not a chat frame: {0}")]
    Invalid(String),
}

/// Parses a client's text frame.
pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge);
    }
    // Depth before parsing: serde_json's own limit (128) is far above what a frame needs.
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(FrameError::TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    serde_json::from_str(text).map_err(|e| {
        // serde's message names the field or the variant, never quotes the input.
        let message = e.to_string();
        let short = message.split(" at line ").next().unwrap_or(&message);
        FrameError::Invalid(short.chars().take(200).collect())
    })
}

/// Serialises an event (they always serialise).
pub fn encode(event: &ServerEvent) -> String {
    serde_json::to_string(event).unwrap_or_else(|_| "{\"type\":\"pong\"}".to_owned())
}

/// Cleans a message or nickname: control characters go (line breaks in messages become
/// spaces), surrounding space is trimmed. Returns `None` when nothing is left.
pub fn clean(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Characters that draw nothing and only serve to fake or hide text.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_by_type() {
        assert_eq!(
            parse(r#"{"type":"message","text":"Bonjour"}"#),
            Ok(ClientFrame::Message {
                text: "Bonjour".into(),
                nickname: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"message","text":"Hi","nickname":"Ann"}"#),
            Ok(ClientFrame::Message {
                text: "Hi".into(),
                nickname: Some("Ann".into())
            })
        );
        assert_eq!(
            parse(r#"{"type":"mute","author":"user:4"}"#),
            Ok(ClientFrame::Mute {
                author: "user:4".into(),
                seconds: None
            })
        );
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping));
        assert_eq!(
            parse(r#"{"type":"slow_mode","seconds":10}"#),
            Ok(ClientFrame::SlowMode { seconds: 10 })
        );
    }

    #[test]
    fn bad_frames_are_refused_with_a_reason() {
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"text":"no type"}"#,
            r#"{"type":"shout","text":"x"}"#,
            r#"{"type":"message"}"#,
            r#"{"type":"message","text":"x","admin":true}"#,
            r#"{"type":"upvote","id":-1}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(FrameError::Invalid(_))),
                "{bad}: {:?}",
                parse(bad)
            );
        }
        let big = format!(
            r#"{{"type":"message","text":"{}"}}"#,
            "a".repeat(MAX_FRAME_BYTES)
        );
        assert_eq!(parse(&big), Err(FrameError::TooLarge));
        let deep = format!("{}{}", "[".repeat(50), "]".repeat(50));
        assert_eq!(parse(&deep), Err(FrameError::TooDeep));
        // Brackets inside strings are text, not nesting.
        assert!(parse(r#"{"type":"message","text":"[[[[[[{{{{{{"}"#).is_ok());
    }

    #[test]
    fn events_serialise_with_their_type() {
        let event = ServerEvent::Error {
            code: ErrorCode::RateLimited,
            reason: "Slow down".into(),
        };
        assert_eq!(
            encode(&event),
            r#"{"type":"error","code":"rate_limited","reason":"Slow down"}"#
        );
        let message = ServerEvent::Message {
            message: Message {
                id: 7,
                text: "<b>x</b>".into(),
                author: "Ann (live)".into(),
                author_key: "guest:ab".into(),
                origin: Origin::Audience,
                at: 1,
                question: false,
                votes: 0,
                answered: false,
            },
        };
        let json = encode(&message);
        assert!(json.contains(r#""origin":"audience""#), "{json}");
        assert!(!json.contains("votes"), "{json}");
        assert!(
            json.contains(r#""text":"<b>x</b>""#),
            "kept as text: {json}"
        );
    }

    #[test]
    fn text_is_cleaned() {
        assert_eq!(clean("  hello\nworld \u{7}"), Some("hello world".into()));
        assert_eq!(clean("a\u{202e}b\u{200b}c"), Some("abc".into()));
        assert_eq!(clean(" \u{200b} \n"), None);
        assert_eq!(clean("élève 😀"), Some("élève 😀".into()));
    }
}
