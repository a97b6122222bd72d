//! The audience chat's messages: kept once per live and id, read back for the history when a
//! room starts again, and the delivery of audience messages into the meeting, retried while
//! BBB cannot be reached.

use super::{Db, Result, execute, on_pool};
use crate::chat::protocol::{Message, Origin};

/// An audience message waiting to reach the meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    pub id: u64,
    /// The name it is shown under in the meeting ("Ann (live)").
    pub sender: String,
    pub text: String,
    pub attempts: u32,
    /// Not before (ms since the epoch).
    pub next_attempt_ms: i64,
}

type Row = (i64, String, String, String, String, i64, bool, i32, bool);
/// id, sender, text, attempts, next attempt.
type PendingRow = (i64, Option<String>, String, i32, Option<i64>);

fn message((id, origin, author, author_key, text, at, question, votes, answered): Row) -> Message {
    Message {
        id: id as u64,
        text,
        author,
        author_key,
        origin: if origin == "meeting" {
            Origin::Meeting
        } else {
            Origin::Audience
        },
        at,
        question,
        votes: votes.max(0) as u32,
        answered,
    }
}

impl Db {
    /// Keeps a message of `live`; an audience message with its `sender` name waits for
    /// delivery. `false` when that id was kept already (nothing is kept twice).
    pub async fn chat_keep(&self, live: &str, m: &Message, sender: Option<&str>) -> Result<bool> {
        let origin = match m.origin {
            Origin::Audience => "audience",
            Origin::Meeting => "meeting",
        };
        let delivery = sender.map(|_| "pending");
        let inserted = execute!(self, pool => {
            sqlx::query(
                "INSERT INTO chat_messages (live, id, origin, author, author_key, text, at, \
                 question, votes, answered, sender, delivery, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $7) \
                 ON CONFLICT (live, id) DO NOTHING",
            )
            .bind(live)
            .bind(m.id as i64)
            .bind(origin)
            .bind(&m.author)
            .bind(&m.author_key)
            .bind(&m.text)
            .bind(m.at)
            .bind(m.question)
            .bind(m.votes as i32)
            .bind(m.answered)
            .bind(sender)
            .bind(delivery)
            .execute(pool)
            .await
        })?;
        Ok(inserted == 1)
    }

    /// The last `limit` visible messages of `live`, oldest first.
    pub async fn chat_history(&self, live: &str, limit: u32) -> Result<Vec<Message>> {
        let mut rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, origin, author, author_key, text, at, question, votes, answered \
                 FROM chat_messages WHERE live = $1 AND NOT hidden ORDER BY id DESC LIMIT $2",
            )
            .bind(live)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        rows.reverse();
        Ok(rows.into_iter().map(message).collect())
    }

    /// The id after the last message kept for `live` (1 for a new live).
    pub async fn chat_next_id(&self, live: &str) -> Result<u64> {
        let (last,): (Option<i64>,) = on_pool!(self, pool => {
            sqlx::query_as("SELECT MAX(id) FROM chat_messages WHERE live = $1")
                .bind(live)
                .fetch_one(pool)
                .await
        })?;
        Ok(last.map_or(1, |l| l as u64 + 1))
    }

    /// A moderator hid a message.
    pub async fn chat_hide(&self, live: &str, id: u64) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("UPDATE chat_messages SET hidden = TRUE WHERE live = $1 AND id = $2")
                .bind(live)
                .bind(id as i64)
                .execute(pool)
                .await
        })?;
        Ok(())
    }

    /// A question's votes or state changed.
    pub async fn chat_question(
        &self,
        live: &str,
        id: u64,
        votes: u32,
        answered: bool,
    ) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "UPDATE chat_messages SET votes = $3, answered = $4 WHERE live = $1 AND id = $2",
            )
            .bind(live)
            .bind(id as i64)
            .bind(votes as i32)
            .bind(answered)
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    /// Audience messages of `live` not delivered yet, oldest first (the meeting sees them in
    /// the order they were written: a message waiting for a retry holds back the later ones).
    pub async fn chat_pending(&self, live: &str, limit: u32) -> Result<Vec<PendingDelivery>> {
        let rows: Vec<PendingRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, sender, text, attempts, next_attempt_at FROM chat_messages \
                 WHERE live = $1 AND delivery = 'pending' ORDER BY id LIMIT $2",
            )
            .bind(live)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, sender, text, attempts, next)| PendingDelivery {
                id: id as u64,
                sender: sender.unwrap_or_default(),
                text,
                attempts: attempts.max(0) as u32,
                next_attempt_ms: next.unwrap_or(0),
            })
            .collect())
    }

    /// BBB took the message.
    pub async fn chat_delivered(&self, live: &str, id: u64) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "UPDATE chat_messages SET delivery = 'delivered', attempts = attempts + 1, \
                 next_attempt_at = NULL WHERE live = $1 AND id = $2",
            )
            .bind(live)
            .bind(id as i64)
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    /// BBB could not be reached: try again at `next_ms`.
    pub async fn chat_retry_at(&self, live: &str, id: u64, next_ms: i64) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "UPDATE chat_messages SET attempts = attempts + 1, next_attempt_at = $3 \
                 WHERE live = $1 AND id = $2 AND delivery = 'pending'",
            )
            .bind(live)
            .bind(id as i64)
            .bind(next_ms)
            .execute(pool)
            .await
        })?;
        Ok(())
    }
}
