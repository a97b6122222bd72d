//! All of amphi's SQL: SQLite (embedded default, WAL) and PostgreSQL (selected by URL), with a
//! migration set for each. Callers get plain Rust records; no sqlx type leaves this module.
//!
//! Queries are written once in the subset both engines share (`$1` placeholders, `RETURNING`,
//! `ON CONFLICT`, integer timestamps in milliseconds) and run on whichever pool is open.

mod accounts;
mod callbacks;
mod chat;
mod lives;
mod meetings;
mod sessions;
mod videos;

pub use accounts::{AccessGroup, NewUser, ProxyIdentity, User};
pub use callbacks::Receipt;
pub use chat::PendingDelivery;
pub use lives::{LiveState, Overlapping, StoredLive};
pub use meetings::{Meeting, MeetingFields, MeetingSearch, MeetingSession, Participant};
pub use sessions::{ApiToken, FailuresOf};
pub use videos::{Claimed, Upload, Video, VideoJob, VideoListing};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Runs `$body` with `$pool` bound to the open pool, whatever its engine.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Like [`on_pool!`] for a statement run for its effect: yields the number of rows affected.
macro_rules! execute {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body.map(|r| r.rows_affected()),
            $crate::db::Db::Postgres($pool) => $body.map(|r| r.rows_affected()),
        }
    };
}
pub(crate) use execute;

/// A database failure, described without credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to the database at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("database error: {0}")]
    Query(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return Error::Conflict(db.table().unwrap_or("record").to_owned());
        }
        Error::Query(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Pool options beyond the URL.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// PostgreSQL schema to work in (created if missing); `None` uses the server's default.
    pub schema: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            schema: None,
        }
    }
}

/// An open connection pool on one of the supported engines.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The URL with any password removed, fit for messages.
pub fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => {
            let mut shown = parsed.clone();
            shown.set_query(None);
            shown.to_string()
        }
        Err(_) => url.split('?').next().unwrap_or(url).to_owned(),
    }
}

impl Db {
    /// Opens a pool for `url` and checks that the server answers.
    pub async fn connect(url: &str, options: &Options) -> Result<Self> {
        let connect_error = |e: sqlx::Error| Error::Connect {
            url: display_url(url),
            reason: e.to_string(),
        };
        if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(connect_error)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            if let Some(dir) = connect.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| Error::Connect {
                    url: display_url(url),
                    reason: format!("cannot create {}: {e}", dir.display()),
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.connect_timeout)
                .connect_with(connect)
                .await
                .map_err(connect_error)?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut connect = PgConnectOptions::from_str(url).map_err(connect_error)?;
            if let Some(schema) = &options.schema {
                if !schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(Error::Connect {
                        url: display_url(url),
                        reason: format!("invalid schema name `{schema}`"),
                    });
                }
                let bootstrap = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(options.connect_timeout)
                    .connect_with(connect.clone())
                    .await
                    .map_err(connect_error)?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS {schema}"
                )))
                .execute(&bootstrap)
                .await
                .map_err(connect_error)?;
                bootstrap.close().await;
                connect = connect.options([("search_path", schema.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.connect_timeout)
                .connect_with(connect)
                .await
                .map_err(connect_error)?;
            Ok(Db::Postgres(pool))
        } else {
            Err(Error::UnsupportedUrl(display_url(url)))
        }
    }

    /// Applies pending migrations; returns how many the database now has.
    pub async fn migrate(&self) -> Result<usize> {
        let migrate_error = |e: sqlx::migrate::MigrateError| Error::Migrate(e.to_string());
        match self {
            Db::Sqlite(pool) => {
                let migrator = sqlx::migrate!("migrations/sqlite");
                migrator.run(pool).await.map_err(migrate_error)?;
                Ok(migrator.iter().count())
            }
            Db::Postgres(pool) => {
                let migrator = sqlx::migrate!("migrations/postgres");
                migrator.run(pool).await.map_err(migrate_error)?;
                Ok(migrator.iter().count())
            }
        }
    }

    /// The engine's name, for messages.
    pub fn engine(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "SQLite",
            Db::Postgres(_) => "PostgreSQL",
        }
    }

    /// Answers when the database can run a query (`/readyz`).
    pub async fn ping(&self) -> Result<()> {
        execute!(self, pool => sqlx::query("SELECT 1").execute(pool).await)?;
        Ok(())
    }

    /// The tables that exist, sorted (migration tests).
    pub async fn table_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = match self {
            Db::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(pool)
                .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
                )
                .fetch_all(pool)
                .await?
            }
        };
        names.sort();
        Ok(names)
    }

    /// Drops a PostgreSQL schema and everything in it (test clean-up).
    pub async fn drop_schema(&self, schema: &str) -> Result<()> {
        if let Db::Postgres(pool) = self
            && schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(pool)
            .await?;
        }
        Ok(())
    }

    /// Reads a value of the `settings` table.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let value = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        Ok(value)
    }

    /// Stores `value` under `key` unless a value is already there; returns the value in force.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        execute!(self, pool => {
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(value)
                .execute(pool)
                .await
        })?;
        self.setting(key)
            .await?
            .ok_or_else(|| Error::Query(format!("setting {key} vanished")))
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}
