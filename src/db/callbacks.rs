//! Receipts of BBB callbacks, for exactly-once events.

use super::{Db, Result, execute};

impl Db {
    /// Records that a callback `kind`/`key` was received at `now_ms`; `true` the first time only.
    pub async fn first_receipt(&self, kind: &str, key: &str, now_ms: i64) -> Result<bool> {
        let inserted = execute!(self, pool => {
            sqlx::query(
                "INSERT INTO callback_receipts (kind, key, received_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, key) DO NOTHING",
            )
            .bind(kind)
            .bind(key)
            .bind(now_ms)
            .execute(pool)
            .await
        })?;
        Ok(inserted == 1)
    }
}
