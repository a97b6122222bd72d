//! Chat rooms shared by several amphi instances through Redis pub/sub, so that any instance
//! can serve any viewer.
//!
//! One instance owns a live's room (the one that opened it with the meeting, the instance that
//! captures the live): its [`Room`](super::room::Room) is the only one, so limits, votes, mutes
//! and the order of messages are the same for everyone. The other instances relay: their
//! viewers' joins, frames and leaves go up to the owner on `amphi:chat:<live>:up`, and what the
//! room says comes down on `amphi:chat:<live>:down`, either for everyone or for one connection
//! of one instance. The owner announces itself under `amphi:chat:<live>:owner` with a short
//! expiry it keeps renewing, which is how a relay knows the live has a chat at all.
//!
//! Only the owner writes to the database and into the meeting; relays keep nothing.

use super::room::Member;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;

/// How long the owner key lives without renewal.
pub const OWNER_TTL: Duration = Duration::from_secs(30);
/// How often the owner renews it, and relays say they are alive.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A relay not heard from for this long has lost its connections.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one Redis command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// What a relay sends up to the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Up {
    Join {
        from: String,
        conn: u64,
        member: Member,
    },
    /// `frame` is the client's frame as JSON; the owner parses it again.
    Frame {
        from: String,
        conn: u64,
        member: Member,
        frame: String,
    },
    Leave {
        from: String,
        conn: u64,
    },
    /// The relay is up; without it for [`RELAY_TIMEOUT`], its connections are dropped.
    Alive {
        from: String,
    },
}

impl Up {
    /// The instance that sent it.
    pub fn from(&self) -> &str {
        match self {
            Self::Join { from, .. }
            | Self::Frame { from, .. }
            | Self::Leave { from, .. }
            | Self::Alive { from } => from,
        }
    }
}

/// What the owner sends down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down<'a> {
    /// A frame for every connection.
    All(&'a str),
    /// A frame for one connection of one instance.
    To {
        instance: &'a str,
        conn: u64,
        frame: &'a str,
    },
}

impl Down<'_> {
    /// `*<frame>` or `@<instance> <conn>\n<frame>`.
    pub fn encode(&self) -> String {
        match self {
            Self::All(frame) => format!("*{frame}"),
            Self::To {
                instance,
                conn,
                frame,
            } => format!("@{instance} {conn}\n{frame}"),
        }
    }

    pub fn decode(text: &str) -> Option<Down<'_>> {
        if let Some(frame) = text.strip_prefix('*') {
            return Some(Down::All(frame));
        }
        let (head, frame) = text.strip_prefix('@')?.split_once('\n')?;
        let (instance, conn) = head.split_once(' ')?;
        Some(Down::To {
            instance,
            conn: conn.parse().ok()?,
            frame,
        })
    }
}

pub fn up_channel(live: &str) -> String {
    format!("amphi:chat:{live}:up")
}

pub fn down_channel(live: &str) -> String {
    format!("amphi:chat:{live}:down")
}

fn owner_key(live: &str) -> String {
    format!("amphi:chat:{live}:owner")
}

/// Why Redis could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the chat's Redis server is unreachable: {0}")]
    Redis(String),
    #[error("the chat's Redis server did not answer in time")]
    Timeout,
}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        // The error names the operation and the server's reply, never the URL's password.
        Self::Redis(format!("{:?}: {}", e.kind(), e.detail().unwrap_or("")))
    }
}

/// This instance's link to the other instances.
pub struct Cluster {
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
    /// This instance's name on the channels (random, new at each start).
    pub instance: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A link through the Redis server at `url` (`redis://[user:password@]host[:port][/db]`);
    /// nothing connects until it is used.
    pub fn new(url: &str) -> Result<Self, String> {
        if !url.starts_with("redis://") {
            return Err("the chat's Redis URL must start with redis://".to_owned());
        }
        let client = redis::Client::open(url)
            .map_err(|e| format!("the chat's Redis URL is not valid ({:?})", e.kind()))?;
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            connection: Mutex::new(None),
            instance: hex::encode(id),
        })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, ClusterError> {
        if let Some(connection) = self
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(connection);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection.clone());
        Ok(connection)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, ClusterError> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            failed => {
                // The next call connects again.
                *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = None;
                match failed {
                    Ok(Err(e)) => Err(e.into()),
                    _ => Err(ClusterError::Timeout),
                }
            }
        }
    }

    /// Publishes `payload`; returns how many subscribers got it.
    pub async fn publish(&self, channel: &str, payload: &str) -> Result<usize, ClusterError> {
        self.query(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await
    }

    /// Announces this instance as the owner of `live`'s room (renewed every [`HEARTBEAT`]).
    pub async fn claim(&self, live: &str) -> Result<(), ClusterError> {
        self.query::<()>(
            redis::cmd("SET")
                .arg(owner_key(live))
                .arg(&self.instance)
                .arg("PX")
                .arg(OWNER_TTL.as_millis() as u64),
        )
        .await
    }

    /// Gives `live`'s room up, if this instance still owns it.
    pub async fn release(&self, live: &str) -> Result<(), ClusterError> {
        let script = redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        );
        let mut connection = self.connection().await?;
        let mut invocation = script.key(owner_key(live));
        let released = invocation
            .arg(&self.instance)
            .invoke_async::<i64>(&mut connection);
        match tokio::time::timeout(COMMAND_TIMEOUT, released).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ClusterError::Timeout),
        }
    }

    /// The instance that owns `live`'s room, if any.
    pub async fn owner(&self, live: &str) -> Result<Option<String>, ClusterError> {
        self.query(redis::cmd("GET").arg(owner_key(live))).await
    }

    /// A subscription to `channel`; it ends when the connection does.
    pub async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSubStream, ClusterError> {
        let subscribed = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub.into_on_message())
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, subscribed).await {
            Ok(subscribed) => Ok(subscribed?),
            Err(_) => Err(ClusterError::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_frames_round_trip() {
        let frames = [
            Down::All("{\"type\":\"pong\"}\n{\"type\":\"pong\"}"),
            Down::To {
                instance: "a1b2c3",
                conn: 42,
                frame: "{\"type\":\"pong\"}\n{\"type\":\"pong\"}",
            },
        ];
        for frame in frames {
            assert_eq!(Down::decode(&frame.encode()), Some(frame));
        }
    }

    #[test]
    fn malformed_down_frames_are_ignored() {
        for text in ["", "{}", "@abc", "@abc x\n{}", "@abc\n{}", "#{}"] {
            assert_eq!(Down::decode(text), None, "{text:?}");
        }
    }

    #[test]
    fn up_frames_are_tagged_json() {
        let up = Up::Leave {
            from: "a1".to_owned(),
            conn: 3,
        };
        let text = serde_json::to_string(&up).unwrap();
        assert_eq!(text, r#"{"kind":"leave","from":"a1","conn":3}"#);
        assert_eq!(serde_json::from_str::<Up>(&text).unwrap(), up);
        assert!(serde_json::from_str::<Up>(r#"{"kind":"leave","from":"a1"}"#).is_err());
    }

    #[test]
    fn only_redis_urls_are_taken() {
        assert!(Cluster::new("http://127.0.0.1:6379").is_err());
        let cluster = Cluster::new("redis://:hunter2@127.0.0.1:6379/0").unwrap();
        assert!(!format!("{cluster:?}").contains("hunter2"));
        assert_eq!(cluster.instance.len(), 12);
    }
}
