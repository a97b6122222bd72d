//! Receipts of BBB callbacks: exactly-once events that survive restarts. A receiver stores the
//! receipt with what the callback said; the consumer marks it handled once it has acted, and
//! reads the unhandled ones again after a restart.

use super::{Db, Result, execute, on_pool};

/// A callback not yet acted upon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub key: String,
    /// The callback's content as JSON.
    pub payload: String,
    pub received_at_ms: i64,
}

impl Db {
    /// Records that a callback `kind`/`key` was received at `now_ms`; `true` the first time only.
    pub async fn first_receipt(
        &self,
        kind: &str,
        key: &str,
        payload: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let inserted = execute!(self, pool => {
            sqlx::query(
                "INSERT INTO callback_receipts (kind, key, received_at, payload) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, key) DO NOTHING",
            )
            .bind(kind)
            .bind(key)
            .bind(now_ms)
            .bind(payload)
            .execute(pool)
            .await
        })?;
        Ok(inserted == 1)
    }

    /// The receipts of `kind` nobody has acted upon yet, oldest first.
    pub async fn unhandled_receipts(&self, kind: &str) -> Result<Vec<Receipt>> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT key, payload, received_at FROM callback_receipts \
                 WHERE kind = $1 AND handled_at IS NULL ORDER BY received_at, key",
            )
            .bind(kind)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(key, payload, received_at_ms)| Receipt {
                key,
                payload,
                received_at_ms,
            })
            .collect())
    }

    /// Marks a receipt as acted upon; `false` if it was already (another instance did it).
    pub async fn mark_receipt_handled(&self, kind: &str, key: &str, now_ms: i64) -> Result<bool> {
        let updated = execute!(self, pool => {
            sqlx::query(
                "UPDATE callback_receipts SET handled_at = $3 \
                 WHERE kind = $1 AND key = $2 AND handled_at IS NULL",
            )
            .bind(kind)
            .bind(key)
            .bind(now_ms)
            .execute(pool)
            .await
        })?;
        Ok(updated == 1)
    }

    /// Gives a receipt back to the unhandled ones (its action failed; it is tried again).
    pub async fn unmark_receipt(&self, kind: &str, key: &str) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("UPDATE callback_receipts SET handled_at = NULL WHERE kind = $1 AND key = $2")
                .bind(kind)
                .bind(key)
                .execute(pool)
                .await
        })?;
        Ok(())
    }
}
