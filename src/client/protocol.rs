//! The `graphql-transport-ws` frames BBB 3.0's GraphQL endpoint speaks (bbb-graphql-middleware
//! in front of Hasura), as serde types. A frame that does not parse is a [`ParseError`] the
//! session logs and drops; it never panics.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The WebSocket subprotocol BBB 3.0 accepts.
pub const SUBPROTOCOL: &str = "graphql-transport-ws";
/// Close code of a refused `connection_init`: the client must not retry.
pub const CLOSE_UNAUTHORIZED: u16 = 4403;
/// Largest frame read (the middleware's own read limit is about 10 MB).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// The four headers bbb-graphql-middleware requires in `connection_init`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitHeaders {
    #[serde(rename = "X-Session-Token")]
    pub session_token: String,
    #[serde(rename = "X-ClientSessionUUID")]
    pub client_session_uuid: String,
    #[serde(rename = "X-ClientType")]
    pub client_type: String,
    #[serde(rename = "X-ClientIsMobile")]
    pub client_is_mobile: String,
}

impl std::fmt::Debug for InitHeaders {
    /// The session token is a credential: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitHeaders")
            .field("session_token", &"[redacted]")
            .field("client_session_uuid", &self.client_session_uuid)
            .field("client_type", &self.client_type)
            .field("client_is_mobile", &self.client_is_mobile)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitPayload {
    pub headers: InitHeaders,
}

/// An operation: a subscription, or a mutation (whose text must start with `mutation`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub operation_name: String,
    pub query: String,
    #[serde(default)]
    pub variables: Value,
}

impl std::fmt::Debug for Operation {
    /// Variables may hold the auth token (`userJoinMeeting`) or people's messages: only their
    /// names are printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .variables
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        f.debug_struct("Operation")
            .field("operation_name", &self.operation_name)
            .field("variables", &names)
            .finish()
    }
}

/// What the client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame: authenticates the session.
    ConnectionInit { payload: InitPayload },
    /// Starts an operation under `id`.
    Subscribe { id: String, payload: Operation },
    /// Stops an operation.
    Complete { id: String },
    /// Keep-alive (answered with `pong`).
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// Answer to a server `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// `connection_init` accepted.
    ConnectionAck {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// A result of operation `id` (`{"data": …}`, possibly with `errors`).
    Next { id: String, payload: Value },
    /// Operation `id` failed (a list of `{"message": …}`).
    Error { id: String, payload: Value },
    /// Operation `id` is over.
    Complete { id: String },
    /// Keep-alive: answer with `pong`.
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// Answer to a client `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// The server gives up on the connection (it closes the socket next).
    ConnectionError {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
}

/// Why a frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("frame is not a graphql-transport-ws message: {0}")]
    Malformed(String),
}

impl ServerFrame {
    /// Parses a text frame.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(ParseError::TooLarge(text.len()));
        }
        serde_json::from_str(text).map_err(|e| {
            let mut reason = e.to_string();
            reason.truncate(160);
            ParseError::Malformed(reason)
        })
    }
}

impl ClientFrame {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a text frame (the simulator reads clients with it).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(ParseError::TooLarge(text.len()));
        }
        serde_json::from_str(text).map_err(|e| {
            let mut reason = e.to_string();
            reason.truncate(160);
            ParseError::Malformed(reason)
        })
    }
}

/// The messages of an `error` payload, joined for a log line.
pub fn error_messages(payload: &Value) -> String {
    match payload {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.get("message").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("; "),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("unknown error")
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_credentials() {
        let init = ClientFrame::ConnectionInit {
            payload: InitPayload {
                headers: InitHeaders {
                    session_token: "sessiontoken0001".into(),
                    client_session_uuid: "uuid".into(),
                    client_type: "HTML5".into(),
                    client_is_mobile: "false".into(),
                },
            },
        };
        let join = ClientFrame::Subscribe {
            id: "join-1".into(),
            payload: crate::client::operations::join_meeting("authtoken001"),
        };
        let shown = format!("{init:?} {join:?}");
        assert!(
            !shown.contains("sessiontoken0001") && !shown.contains("authtoken001"),
            "{shown}"
        );
        assert!(shown.contains("authToken"), "{shown}");
    }
}
