//! The video library: videos kept from lives, uploaded from BBB recordings or imported from a
//! URL, and the jobs that download and transcode them. A job is claimed by one worker under a
//! lease; a job whose worker died (its lease ran out) is claimed again and starts over.

use super::accounts::from_millis;
use super::{Db, Result, execute, on_pool};
use chrono::{DateTime, Utc};

/// A video of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    pub id: i64,
    pub owner_id: i64,
    pub title: String,
    pub description: String,
    /// `live` (a webinar's live), `recording` (a BBB recording), `url` (imported).
    pub origin: String,
    /// The live's slug, the recording id, the URL.
    pub origin_ref: String,
    /// `processing`, `ready` or `failed`.
    pub state: String,
    pub duration_ms: i64,
    /// Folder of its files, relative to `data_dir`.
    pub path: String,
    /// File name of the thumbnail in that folder; empty: none.
    pub thumbnail: String,
    /// Seen by its owner (and admins) only.
    pub draft: bool,
    /// The page or file it came from, without one-time tokens.
    pub source_url: String,
    /// The meeting of a BBB recording.
    pub meeting_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The job filling a video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoJob {
    pub id: i64,
    pub video_id: i64,
    /// What to fetch, as JSON.
    pub source: String,
    /// `queued`, `running`, `done`, `failed`.
    pub state: String,
    /// `download`, `transcode`, `thumbnail`.
    pub step: String,
    /// Percentage of the whole job.
    pub progress: i64,
    pub error: String,
    pub attempts: i64,
}

/// A job a worker took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub job: VideoJob,
    pub video: Video,
}

/// A video with its job and its owner's name, for lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoListing {
    pub video: Video,
    pub job: Option<VideoJob>,
    pub owner_name: String,
}

/// Who put a recording into the library, and when (Pod's `uploaded_to_pod_by`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub record_id: String,
    pub video_id: i64,
    pub by: String,
    pub at: DateTime<Utc>,
}

macro_rules! video_columns {
    () => {
        "v.id, v.owner_id, v.title, v.description, v.origin, v.origin_ref, v.state, \
         v.duration_ms, v.path, v.thumbnail, v.draft, v.source_url, v.meeting_id, v.created_at, \
         v.updated_at"
    };
}

macro_rules! job_columns {
    () => {
        "j.id AS job_id, j.source AS job_source, j.state AS job_state, j.step AS job_step, \
         j.progress AS job_progress, j.error AS job_error, j.attempts AS job_attempts"
    };
}

#[derive(sqlx::FromRow)]
struct VideoRow {
    id: i64,
    owner_id: i64,
    title: String,
    description: String,
    origin: String,
    origin_ref: String,
    state: String,
    duration_ms: i64,
    path: String,
    thumbnail: String,
    draft: bool,
    source_url: String,
    meeting_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<VideoRow> for Video {
    fn from(r: VideoRow) -> Self {
        Self {
            id: r.id,
            owner_id: r.owner_id,
            title: r.title,
            description: r.description,
            origin: r.origin,
            origin_ref: r.origin_ref,
            state: r.state,
            duration_ms: r.duration_ms,
            path: r.path,
            thumbnail: r.thumbnail,
            draft: r.draft,
            source_url: r.source_url,
            meeting_id: r.meeting_id,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct ListingRow {
    #[sqlx(flatten)]
    video: VideoRow,
    job_id: Option<i64>,
    job_source: Option<String>,
    job_state: Option<String>,
    job_step: Option<String>,
    job_progress: Option<i64>,
    job_error: Option<String>,
    job_attempts: Option<i64>,
    owner_name: String,
}

impl From<ListingRow> for VideoListing {
    fn from(r: ListingRow) -> Self {
        let video = Video::from(r.video);
        let job = r.job_id.map(|id| VideoJob {
            id,
            video_id: video.id,
            source: r.job_source.unwrap_or_default(),
            state: r.job_state.unwrap_or_default(),
            step: r.job_step.unwrap_or_default(),
            progress: r.job_progress.unwrap_or_default(),
            error: r.job_error.unwrap_or_default(),
            attempts: r.job_attempts.unwrap_or_default(),
        });
        Self {
            video,
            job,
            owner_name: r.owner_name,
        }
    }
}

/// Which videos a list shows.
enum Filter {
    Id(i64),
    Owner(i64),
    All,
}

impl Db {
    /// Registers a video; returns its id.
    pub async fn add_video(&self, video: &Video) -> Result<i64> {
        let id: i64 = on_pool!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO videos (owner_id, title, description, origin, origin_ref, state, \
                 duration_ms, path, thumbnail, draft, source_url, meeting_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id",
            )
            .bind(video.owner_id)
            .bind(&video.title)
            .bind(&video.description)
            .bind(&video.origin)
            .bind(&video.origin_ref)
            .bind(&video.state)
            .bind(video.duration_ms)
            .bind(&video.path)
            .bind(&video.thumbnail)
            .bind(video.draft)
            .bind(&video.source_url)
            .bind(video.meeting_id)
            .bind(video.created_at.timestamp_millis())
            .fetch_one(pool)
            .await
        })?;
        Ok(id)
    }

    /// Registers a video in state `processing` and the job that will fill it; returns the
    /// video's id. The video's folder is `videos/<id>`.
    pub async fn queue_video(&self, video: &Video, source: &str) -> Result<i64> {
        let now = video.created_at.timestamp_millis();
        let id = self
            .add_video(&Video {
                state: "processing".to_owned(),
                ..video.clone()
            })
            .await?;
        // The folder first: a worker may claim the job the moment it exists.
        let path = format!("videos/{id}");
        let placed = execute!(self, pool => {
            sqlx::query("UPDATE videos SET path = $2 WHERE id = $1")
                .bind(id)
                .bind(&path)
                .execute(pool)
                .await
        });
        let queued = match placed {
            Ok(_) => execute!(self, pool => {
                sqlx::query(
                    "INSERT INTO video_jobs (video_id, source, created_at, updated_at) \
                     VALUES ($1, $2, $3, $3)",
                )
                .bind(id)
                .bind(source)
                .bind(now)
                .execute(pool)
                .await
            }),
            Err(e) => Err(e),
        };
        if let Err(e) = queued {
            // Nothing half-created: the video goes with its job.
            let _ = self.delete_video(id).await;
            return Err(e.into());
        }
        Ok(id)
    }

    async fn listings(&self, filter: Filter) -> Result<Vec<VideoListing>> {
        macro_rules! listing {
            ($where:literal) => {
                concat!(
                    "SELECT ",
                    video_columns!(),
                    ", ",
                    job_columns!(),
                    ", COALESCE(NULLIF(u.display_name, ''), u.username) AS owner_name \
                     FROM videos v JOIN users u ON u.id = v.owner_id \
                     LEFT JOIN video_jobs j ON j.video_id = v.id ",
                    $where,
                    " ORDER BY v.created_at DESC, v.id DESC"
                )
            };
        }
        let (sql, value) = match filter {
            Filter::Id(id) => (listing!("WHERE v.id = $1"), id),
            Filter::Owner(id) => (listing!("WHERE v.owner_id = $1"), id),
            Filter::All => (listing!("WHERE v.id > $1"), 0),
        };
        let rows: Vec<ListingRow> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(value).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(VideoListing::from).collect())
    }

    /// A video with its job and owner's name.
    pub async fn video(&self, id: i64) -> Result<Option<VideoListing>> {
        Ok(self.listings(Filter::Id(id)).await?.pop())
    }

    /// A user's videos, newest first.
    pub async fn videos_of(&self, owner_id: i64) -> Result<Vec<VideoListing>> {
        self.listings(Filter::Owner(owner_id)).await
    }

    /// Every video, newest first (the admin list).
    pub async fn all_videos(&self) -> Result<Vec<VideoListing>> {
        self.listings(Filter::All).await
    }

    /// The videos kept from `origin` `origin_ref`, oldest first.
    pub async fn videos_from(&self, origin: &str, origin_ref: &str) -> Result<Vec<Video>> {
        let sql = concat!(
            "SELECT ",
            video_columns!(),
            " FROM videos v WHERE v.origin = $1 AND v.origin_ref = $2 ORDER BY v.id"
        );
        let rows: Vec<VideoRow> = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(origin)
                .bind(origin_ref)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(Video::from).collect())
    }

    /// Who uploaded which of a meeting's recordings to the library.
    pub async fn recording_uploads(&self, meeting_id: i64) -> Result<Vec<Upload>> {
        let rows: Vec<(String, i64, String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT v.origin_ref, v.id, COALESCE(NULLIF(u.display_name, ''), u.username), \
                 v.created_at FROM videos v JOIN users u ON u.id = v.owner_id \
                 WHERE v.origin = 'recording' AND v.meeting_id = $1 ORDER BY v.id",
            )
            .bind(meeting_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(record_id, video_id, by, at)| Upload {
                record_id,
                video_id,
                by,
                at: from_millis(at),
            })
            .collect())
    }

    /// Changes what the owner may edit.
    pub async fn edit_video(
        &self,
        id: i64,
        title: &str,
        description: &str,
        draft: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let updated = execute!(self, pool => {
            sqlx::query(
                "UPDATE videos SET title = $2, description = $3, draft = $4, updated_at = $5 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(title)
            .bind(description)
            .bind(draft)
            .bind(now.timestamp_millis())
            .execute(pool)
            .await
        })?;
        Ok(updated == 1)
    }

    /// Takes the title and description a source gives (PeerTube), unless the owner edited the
    /// video meanwhile.
    pub async fn describe_video(&self, id: i64, title: &str, description: &str) -> Result<bool> {
        let updated = execute!(self, pool => {
            sqlx::query(
                "UPDATE videos SET title = $2, description = $3 \
                 WHERE id = $1 AND updated_at = created_at",
            )
            .bind(id)
            .bind(title)
            .bind(description)
            .execute(pool)
            .await
        })?;
        Ok(updated == 1)
    }

    /// Removes a video (its job goes with it); the caller removes its files.
    pub async fn delete_video(&self, id: i64) -> Result<bool> {
        let jobs = execute!(self, pool => {
            sqlx::query("DELETE FROM video_jobs WHERE video_id = $1")
                .bind(id)
                .execute(pool)
                .await
        });
        jobs?;
        let deleted = execute!(self, pool => {
            sqlx::query("DELETE FROM videos WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
        })?;
        Ok(deleted == 1)
    }

    /// Takes the oldest queued job, or one whose worker's lease ran out, for `holder` until
    /// `lease_until_ms`. `None`: nothing to do.
    pub async fn claim_video_job(
        &self,
        holder: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<Claimed>> {
        // The condition is repeated outside the subquery: on PostgreSQL a second claimant
        // waiting on the row sees it re-checked against the first one's update.
        macro_rules! claimable {
            () => {
                "(state = 'queued' OR (state = 'running' AND lease_until < $3))"
            };
        }
        let sql = concat!(
            "UPDATE video_jobs SET state = 'running', step = '', progress = 0, error = '', \
             lease_holder = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
             WHERE id = (SELECT id FROM video_jobs WHERE ",
            claimable!(),
            " ORDER BY id LIMIT 1) AND ",
            claimable!(),
            " RETURNING id, video_id, source, attempts"
        );
        let row: Option<(i64, i64, String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(holder)
                .bind(lease_until_ms)
                .bind(now_ms)
                .fetch_optional(pool)
                .await
        })?;
        let Some((id, video_id, source, attempts)) = row else {
            return Ok(None);
        };
        let Some(listing) = self.video(video_id).await? else {
            return Ok(None);
        };
        Ok(Some(Claimed {
            job: VideoJob {
                id,
                video_id,
                source,
                state: "running".to_owned(),
                step: String::new(),
                progress: 0,
                error: String::new(),
                attempts,
            },
            video: listing.video,
        }))
    }

    /// Records a running job's step and percentage and renews its lease; `false` if the
    /// job is no longer this holder's (deleted, or taken over).
    pub async fn job_progress(
        &self,
        job_id: i64,
        holder: &str,
        step: &str,
        progress: i64,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool> {
        let updated = execute!(self, pool => {
            sqlx::query(
                "UPDATE video_jobs SET step = $3, progress = $4, updated_at = $5, lease_until = $6 \
                 WHERE id = $1 AND lease_holder = $2 AND state = 'running'",
            )
            .bind(job_id)
            .bind(holder)
            .bind(step)
            .bind(progress)
            .bind(now_ms)
            .bind(lease_until_ms)
            .execute(pool)
            .await
        })?;
        Ok(updated == 1)
    }

    /// Ends a job: done (the video ready, with its duration and thumbnail) or failed (the
    /// video failed, the reason kept). `false` if the job was not this holder's any more.
    pub async fn finish_video_job(
        &self,
        job_id: i64,
        holder: &str,
        outcome: std::result::Result<(i64, &str), &str>,
        now_ms: i64,
    ) -> Result<bool> {
        let (state, error) = match outcome {
            Ok(_) => ("done", ""),
            Err(reason) => ("failed", reason),
        };
        let (video_state, duration_ms, thumbnail) = match outcome {
            Ok((duration_ms, thumbnail)) => ("ready", duration_ms, thumbnail),
            Err(_) => ("failed", 0, ""),
        };
        // One transaction: a reader never sees the video ready while its job still runs. The
        // video first, while the job still says it is this holder's.
        let updated = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let video = sqlx::query(
                "UPDATE videos SET state = $3, duration_ms = $4, thumbnail = $5, updated_at = $6 \
                 WHERE id = (SELECT video_id FROM video_jobs \
                 WHERE id = $1 AND lease_holder = $2 AND state = 'running')",
            )
            .bind(job_id)
            .bind(holder)
            .bind(video_state)
            .bind(duration_ms)
            .bind(thumbnail)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if video != 1 {
                return Ok(false);
            }
            let updated = sqlx::query(
                "UPDATE video_jobs SET state = $3, error = $4, progress = CASE WHEN $3 = 'done' \
                 THEN 100 ELSE progress END, updated_at = $5, lease_until = NULL \
                 WHERE id = $1 AND lease_holder = $2 AND state = 'running'",
            )
            .bind(job_id)
            .bind(holder)
            .bind(state)
            .bind(error)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(updated)
        })?;
        Ok(updated == 1)
    }
}
