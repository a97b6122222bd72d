//! Login sessions, API tokens and failed-login records. Tokens are stored as SHA-256 hashes only.

use super::accounts::{UserRow, from_millis, user_columns};
use super::{Db, Result, User, execute, on_pool};
use chrono::{DateTime, Utc};

/// Whose failed logins to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailuresOf<'a> {
    /// A username.
    Account(&'a str),
    /// A client address.
    Address(&'a str),
}

/// A stored API token (its hash never leaves the database layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

impl Db {
    pub async fn insert_session(
        &self,
        token_hash: &str,
        user_id: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at) \
                 VALUES ($1, $2, $3, $4, $3)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(now.timestamp_millis())
            .bind(expires_at.timestamp_millis())
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    /// The active user of a session that has not expired at `now`.
    pub async fn session_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE is_active AND id = \
             (SELECT user_id FROM sessions WHERE token_hash = $1 AND expires_at > $2)"
        );
        let row: Option<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(token_hash)
                .bind(now.timestamp_millis())
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(User::from))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await
        })?;
        Ok(())
    }

    /// Removes expired sessions and failed-login records older than `failures_before`.
    pub async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        failures_before: DateTime<Utc>,
    ) -> Result<u64> {
        let removed = on_pool!(self, pool => {
            let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now.timestamp_millis())
                .execute(pool)
                .await?;
            let failures = sqlx::query("DELETE FROM login_failures WHERE at < $1")
                .bind(failures_before.timestamp_millis())
                .execute(pool)
                .await?;
            Ok::<u64, sqlx::Error>(sessions.rows_affected() + failures.rows_affected())
        })?;
        Ok(removed)
    }

    pub async fn insert_api_token(
        &self,
        user_id: i64,
        token_hash: &str,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiToken> {
        let id: i64 = on_pool!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO api_tokens (user_id, token_hash, label, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(user_id)
            .bind(token_hash)
            .bind(label)
            .bind(now.timestamp_millis())
            .fetch_one(pool)
            .await
        })?;
        Ok(ApiToken {
            id,
            user_id,
            label: label.to_owned(),
            created_at: now,
        })
    }

    /// The active user owning an API token, and marks the token used.
    pub async fn api_token_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        let user_id: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(
                "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 RETURNING user_id",
            )
            .bind(token_hash)
            .bind(now.timestamp_millis())
            .fetch_optional(pool)
            .await
        })?;
        match user_id {
            Some(id) => Ok(self.user_by_id(id).await?.filter(|u| u.is_active)),
            None => Ok(None),
        }
    }

    pub async fn record_login_failure(
        &self,
        username: &str,
        ip: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("INSERT INTO login_failures (username, ip, at) VALUES ($1, $2, $3)")
                .bind(username)
                .bind(ip)
                .bind(at.timestamp_millis())
                .execute(pool)
                .await
        })?;
        Ok(())
    }

    /// Failed logins of one account or from one address since `since`: how many, and the
    /// oldest one's time.
    pub async fn login_failures(
        &self,
        by: FailuresOf<'_>,
        since: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>)> {
        let (sql, value) = match by {
            FailuresOf::Account(username) => (
                "SELECT COUNT(*), MIN(at) FROM login_failures WHERE username = $1 AND at >= $2",
                username,
            ),
            FailuresOf::Address(ip) => (
                "SELECT COUNT(*), MIN(at) FROM login_failures WHERE ip = $1 AND at >= $2",
                ip,
            ),
        };
        let (count, oldest): (i64, Option<i64>) = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(value)
                .bind(since.timestamp_millis())
                .fetch_one(pool)
                .await
        })?;
        Ok((count, oldest.map(from_millis)))
    }

    pub async fn clear_login_failures(&self, username: &str) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("DELETE FROM login_failures WHERE username = $1")
                .bind(username)
                .execute(pool)
                .await
        })?;
        Ok(())
    }
}
