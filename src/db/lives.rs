//! The lives of webinars: one per webinar meeting, with Pod's three states, what the owner
//! asked for, the lease that makes exactly one instance capture it, and where its HLS
//! numbering goes on when the capture starts again in another process.

use super::accounts::from_millis;
use super::{Db, Result, execute, on_pool};
use chrono::{DateTime, Utc};

/// A live's state, numbered as Pod's `Livestream.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    NotStarted = 0,
    InProgress = 1,
    Stopped = 2,
}

impl LiveState {
    fn from_number(n: i64) -> Self {
        match n {
            1 => Self::InProgress,
            2 => Self::Stopped,
            _ => Self::NotStarted,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::InProgress => "in_progress",
            Self::Stopped => "stopped",
        }
    }
}

/// A stored live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLive {
    /// The webinar meeting's id (one live per webinar).
    pub meeting_id: i64,
    pub slug: String,
    pub state: LiveState,
    /// The owner started it and it has not ended: some instance should capture it.
    pub wanted: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub viewer_peak: u64,
    pub show_chat: bool,
    pub lease_holder: Option<String>,
    /// Milliseconds since the epoch.
    pub lease_until: Option<i64>,
    /// Where the HLS output goes on (see [`crate::hls::Live::resume`]).
    pub next_sequence: u64,
    pub discontinuities: u64,
    pub init_generation: u32,
    pub restarts: u64,
    pub last_error: Option<String>,
}

macro_rules! live_columns {
    () => {
        "meeting_id, slug, status, wanted, started_at, ended_at, viewer_peak, show_chat, \
         lease_holder, lease_until, next_sequence, discontinuities, init_generation, restarts, \
         last_error"
    };
}

#[derive(sqlx::FromRow)]
struct LiveRow {
    meeting_id: i64,
    slug: String,
    status: i64,
    wanted: bool,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    viewer_peak: i64,
    show_chat: bool,
    lease_holder: Option<String>,
    lease_until: Option<i64>,
    next_sequence: i64,
    discontinuities: i64,
    init_generation: i64,
    restarts: i64,
    last_error: Option<String>,
}

impl From<LiveRow> for StoredLive {
    fn from(r: LiveRow) -> Self {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Self {
            meeting_id: r.meeting_id,
            slug: r.slug,
            state: LiveState::from_number(r.status),
            wanted: r.wanted,
            started_at: r.started_at.map(from_millis),
            ended_at: r.ended_at.map(from_millis),
            viewer_peak: count(r.viewer_peak),
            show_chat: r.show_chat,
            lease_holder: r.lease_holder,
            lease_until: r.lease_until,
            next_sequence: count(r.next_sequence),
            discontinuities: count(r.discontinuities),
            init_generation: u32::try_from(r.init_generation).unwrap_or(0),
            restarts: count(r.restarts),
            last_error: r.last_error,
        }
    }
}

impl Db {
    /// The live of webinar `meeting_id`, created (not started) if it has none.
    pub async fn ensure_live(&self, meeting_id: i64, slug: &str) -> Result<StoredLive> {
        execute!(self, pool => {
            sqlx::query(
                "INSERT INTO lives (meeting_id, slug) VALUES ($1, $2) \
                 ON CONFLICT (meeting_id) DO NOTHING",
            )
            .bind(meeting_id)
            .bind(slug)
            .execute(pool)
            .await
        })?;
        self.live_of_meeting(meeting_id).await?.ok_or_else(|| {
            super::Error::Query(format!("the live of meeting {meeting_id} vanished"))
        })
    }

    pub async fn live_of_meeting(&self, meeting_id: i64) -> Result<Option<StoredLive>> {
        let row: Option<LiveRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT ", live_columns!(), " FROM lives WHERE meeting_id = $1"))
                .bind(meeting_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(Into::into))
    }

    pub async fn live_by_slug(&self, slug: &str) -> Result<Option<StoredLive>> {
        let row: Option<LiveRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT ", live_columns!(), " FROM lives WHERE slug = $1"))
                .bind(slug)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(Into::into))
    }

    /// Every live, newest meetings first (the lives page filters them).
    pub async fn all_lives(&self) -> Result<Vec<StoredLive>> {
        let rows: Vec<LiveRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ", live_columns!(), " FROM lives ORDER BY meeting_id DESC"
            ))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The owner starts the live: in progress from now, to be captured.
    pub async fn want_live(&self, meeting_id: i64, now: DateTime<Utc>) -> Result<bool> {
        let changed = execute!(self, pool => {
            sqlx::query(
                "UPDATE lives SET wanted = TRUE, status = 1, started_at = $2, ended_at = NULL, \
                 last_error = NULL WHERE meeting_id = $1",
            )
            .bind(meeting_id)
            .bind(now.timestamp_millis())
            .execute(pool)
            .await
        })?;
        Ok(changed == 1)
    }

    /// The live stopped (meeting over, or the owner ended it): nobody captures it any more.
    /// `false` when it was not running.
    pub async fn stop_live(&self, meeting_id: i64, now: DateTime<Utc>) -> Result<bool> {
        let changed = execute!(self, pool => {
            sqlx::query(
                "UPDATE lives SET wanted = FALSE, status = 2, ended_at = $2, lease_holder = NULL, \
                 lease_until = NULL WHERE meeting_id = $1 AND status = 1",
            )
            .bind(meeting_id)
            .bind(now.timestamp_millis())
            .execute(pool)
            .await
        })?;
        Ok(changed == 1)
    }

    /// Takes the capture lease of a wanted live for `holder` until `until_ms`, if nobody else
    /// holds it (or their lease expired). `true` when `holder` has it.
    pub async fn take_live_lease(
        &self,
        meeting_id: i64,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool> {
        let changed = execute!(self, pool => {
            sqlx::query(
                "UPDATE lives SET lease_holder = $2, lease_until = $4 WHERE meeting_id = $1 \
                 AND wanted AND (lease_holder IS NULL OR lease_holder = $2 OR lease_until < $3)",
            )
            .bind(meeting_id)
            .bind(holder)
            .bind(now_ms)
            .bind(until_ms)
            .execute(pool)
            .await
        })?;
        Ok(changed == 1)
    }

    /// Lets the lease go (the capture stopped on this instance).
    pub async fn release_live_lease(&self, meeting_id: i64, holder: &str) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "UPDATE lives SET lease_holder = NULL, lease_until = NULL \
                 WHERE meeting_id = $1 AND lease_holder = $2",
            )
            .bind(meeting_id)
            .bind(holder)
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    /// Wanted lives nobody holds, whose holder stopped renewing, or held by `instance` itself
    /// (it was restarted: its captures are gone), for `instance` to take.
    pub async fn lives_to_capture(&self, now_ms: i64, instance: &str) -> Result<Vec<StoredLive>> {
        let rows: Vec<LiveRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ", live_columns!(), " FROM lives WHERE wanted \
                 AND (lease_holder IS NULL OR lease_until < $1 OR lease_holder = $2) \
                 ORDER BY started_at"
            ))
            .bind(now_ms)
            .bind(instance)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Where the HLS output stands, for a capture that starts again elsewhere.
    pub async fn live_progress(
        &self,
        meeting_id: i64,
        next_sequence: u64,
        discontinuities: u64,
        init_generation: u32,
    ) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "UPDATE lives SET next_sequence = $2, discontinuities = $3, init_generation = $4 \
                 WHERE meeting_id = $1",
            )
            .bind(meeting_id)
            .bind(next_sequence as i64)
            .bind(discontinuities as i64)
            .bind(i64::from(init_generation))
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    /// The capture failed and starts again; `error` says why.
    pub async fn live_restarted(&self, meeting_id: i64, error: &str) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "UPDATE lives SET restarts = restarts + 1, last_error = $2 WHERE meeting_id = $1",
            )
            .bind(meeting_id)
            .bind(error)
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    /// Raises the viewer peak to `viewers` if it is higher.
    pub async fn live_viewers(&self, meeting_id: i64, viewers: u64) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "UPDATE lives SET viewer_peak = $2 WHERE meeting_id = $1 AND viewer_peak < $2",
            )
            .bind(meeting_id)
            .bind(viewers as i64)
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    /// The owner shows or hides the chat.
    pub async fn set_live_chat(&self, meeting_id: i64, shown: bool) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("UPDATE lives SET show_chat = $2 WHERE meeting_id = $1")
                .bind(meeting_id)
                .bind(shown)
                .execute(pool)
                .await
        })?;
        Ok(())
    }
}

/// A webinar scheduled at the same time as another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlapping {
    pub meeting_id: i64,
    pub name: String,
}

impl Db {
    /// This instance can capture `max_lives` lives; it says so every scan.
    pub async fn capture_instance_seen(
        &self,
        name: &str,
        max_lives: u32,
        now_ms: i64,
    ) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "INSERT INTO capture_instances (name, max_lives, seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET max_lives = $2, seen_at = $3",
            )
            .bind(name)
            .bind(i64::from(max_lives))
            .bind(now_ms)
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    /// Lives the instances seen since `since_ms` can capture at once, in all.
    pub async fn capture_capacity(&self, since_ms: i64) -> Result<u64> {
        let total: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT SUM(max_lives) FROM capture_instances WHERE seen_at >= $1")
                .bind(since_ms)
                .fetch_one(pool)
                .await
        })?;
        Ok(total.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Webinars (other than `except`) whose planned time overlaps `[start, end)`.
    pub async fn overlapping_webinars(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        except: Option<i64>,
    ) -> Result<Vec<Overlapping>> {
        let rows: Vec<(i64, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, name FROM meetings WHERE is_webinar AND id <> $3 AND start_at < $2 \
                 AND start_at + expected_duration_minutes * 60000 > $1 ORDER BY start_at",
            )
            .bind(start.timestamp_millis())
            .bind(end.timestamp_millis())
            .bind(except.unwrap_or(-1))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(meeting_id, name)| Overlapping { meeting_id, name })
            .collect())
    }
}
