//! The video library's jobs: a BBB recording uploaded as a video, or a video imported from a
//! URL, is queued in the database; a worker of some instance claims it under a lease,
//! downloads the file (through the SSRF [`Guard`], size capped), transcodes it to the HLS VOD
//! ladder with a thumbnail, and marks the video ready, or failed with the reason, its
//! temporary files removed. Progress (step and percentage) is saved every second and renews
//! the lease; a job whose worker died is claimed again once the lease ran out and starts over
//! from a clean folder.

pub mod source;
pub mod transcode;

use crate::bbb::BbbApi;
use crate::config::Config;
use crate::db::{Claimed, Db, Meeting, User, Video};
use crate::fetch::Guard;
use crate::media::Ladder;
use source::Source;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

/// Share of the progress bar the download takes; the transcode takes the rest.
const DOWNLOAD_SHARE: f64 = 30.0;

/// Attempts at a job before it is given up (an instance that died during each of them may
/// have died of the file itself).
const MAX_ATTEMPTS: i64 = 3;

/// The library's job runner and the actions that queue jobs.
#[derive(Clone)]
pub struct Library(Arc<Inner>);

struct Inner {
    db: Db,
    config: Arc<Config>,
    bbb: Option<Arc<dyn BbbApi>>,
    guard: Guard,
    /// The guard for BBB's own playback URLs: the BBB server's address is trusted too.
    recordings_guard: Guard,
    holder: String,
    lease: Duration,
    wake: Notify,
}

/// Why a job could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] crate::db::Error),
}

impl Library {
    /// `holder` names this instance on the jobs' leases.
    pub fn new(db: Db, config: Arc<Config>, bbb: Option<Arc<dyn BbbApi>>, holder: &str) -> Self {
        let videos = &config.videos;
        let guard = Guard::new(
            videos.fetch_allow.clone(),
            Duration::from_secs(videos.connect_timeout_seconds),
            Duration::from_secs(videos.read_timeout_seconds),
        );
        let lease = Duration::from_secs(u64::from(videos.lease_seconds.max(3)));
        // Recordings come from the configured BBB server, which may be on a private network:
        // its address (a literal in `bbb.api_url`) is allowed for them, not for user imports.
        let mut trusted = videos.fetch_allow.clone();
        if let Some(ip) = url::Url::parse(&config.bbb.api_url).ok().and_then(|u| {
            u.host_str()
                .and_then(|h| h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok())
        }) {
            trusted.push(ipnet::IpNet::from(ip));
        }
        let recordings_guard = Guard::new(
            trusted,
            Duration::from_secs(videos.connect_timeout_seconds),
            Duration::from_secs(videos.read_timeout_seconds),
        );
        Self(Arc::new(Inner {
            db,
            config,
            bbb,
            guard,
            recordings_guard,
            holder: holder.to_owned(),
            lease,
            wake: Notify::new(),
        }))
    }

    pub fn guard(&self) -> &Guard {
        &self.0.guard
    }

    /// The folder of a video's files, under `data_dir/videos/`; `None` for a stored path that
    /// would lead anywhere else (empty, absolute, with `..`): nothing outside is ever removed.
    pub fn folder(&self, video: &Video) -> Option<PathBuf> {
        inside_videos(&video.path).then(|| self.0.config.data_dir.join(&video.path))
    }

    /// Queues the import of `url` for `owner`; the title falls back to the file's name.
    pub async fn import_url(
        &self,
        owner: &User,
        url: &str,
        title: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64, QueueError> {
        let parsed = Guard::parse(url).map_err(|e| QueueError::Refused(e.to_string()))?;
        // Refused at once when the name already leads somewhere private.
        self.0
            .guard
            .resolve(&parsed)
            .await
            .map_err(|e| QueueError::Refused(e.to_string()))?;
        let title_given = title.trim();
        let title = match title_given {
            "" => parsed
                .path_segments()
                .and_then(|mut s| s.rfind(|s| !s.is_empty()).map(str::to_owned))
                .unwrap_or_else(|| parsed.host_str().unwrap_or_default().to_owned()),
            t => t.to_owned(),
        };
        let mut shown = parsed.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        // Query strings (tokens, signatures) stay in the job, out of pages.
        let video = new_video(owner.id, &title, "url", shown.as_str(), shown.as_str(), now);
        let source = Source::Url {
            url: parsed.to_string(),
            titled: !title_given.is_empty(),
        };
        self.queue(&video, &source).await
    }

    /// Queues the upload of a meeting's recording as a video of `user` (Pod's "upload to Pod
    /// as a video").
    pub async fn upload_recording(
        &self,
        user: &User,
        meeting: &Meeting,
        record_id: &str,
        name: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64, QueueError> {
        let title = match name.trim() {
            "" => meeting.fields.name.clone(),
            n => n.to_owned(),
        };
        let mut video = new_video(user.id, &title, "recording", record_id, "", now);
        video.meeting_id = Some(meeting.id);
        let source = Source::Recording {
            meeting_id: meeting.id,
            record_id: record_id.to_owned(),
        };
        self.queue(&video, &source).await
    }

    async fn queue(&self, video: &Video, source: &Source) -> Result<i64, QueueError> {
        let source = serde_json::to_string(source).unwrap_or_default();
        let id = self.0.db.queue_video(video, &source).await?;
        tracing::info!(video = id, origin = video.origin, "video job queued");
        self.0.wake.notify_one();
        Ok(id)
    }

    /// Removes a video and its files.
    pub async fn delete(&self, video: &Video) -> Result<(), crate::db::Error> {
        self.0.db.delete_video(video.id).await?;
        if let Some(folder) = self.folder(video) {
            let _ = tokio::fs::remove_dir_all(folder).await;
        }
        Ok(())
    }

    /// Runs the jobs, at most `videos.workers` at once on this instance, until aborted.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let library = self.clone();
        tokio::spawn(async move { library.run_forever().await })
    }

    async fn run_forever(self) {
        let workers = Arc::new(Semaphore::new(self.0.config.videos.workers.max(1) as usize));
        // The jobs end with this task (dropping the set aborts them): a stopped instance
        // leaves its jobs to the lease, like a crashed one.
        let mut jobs = tokio::task::JoinSet::new();
        loop {
            while jobs.try_join_next().is_some() {}
            let Ok(permit) = Arc::clone(&workers).acquire_owned().await else {
                return;
            };
            let now = crate::clock::unix_ms();
            let lease_until = now + self.0.lease.as_millis() as i64;
            match self
                .0
                .db
                .claim_video_job(&self.0.holder, now, lease_until)
                .await
            {
                Ok(Some(claimed)) => {
                    let library = self.clone();
                    jobs.spawn(async move {
                        library.run(claimed).await;
                        drop(permit);
                    });
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot look for video jobs"),
            }
            drop(permit);
            // Woken by a new job, or looking again for a job whose worker died.
            tokio::select! {
                () = self.0.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    async fn run(&self, claimed: Claimed) {
        let Claimed { job, video } = claimed;
        let data_dir = &self.0.config.data_dir;
        let Some(folder) = self.folder(&video) else {
            tracing::error!(
                video = video.id,
                path = video.path,
                "video folder outside data_dir/videos"
            );
            let reason = "this video's folder is not valid; import it again";
            let now = crate::clock::unix_ms();
            let _ = self
                .0
                .db
                .finish_video_job(job.id, &self.0.holder, Err(reason), now)
                .await;
            return;
        };
        let temp_dir = data_dir.join("tmp");
        let temp = temp_dir.join(format!("video-{}-{}.download", video.id, job.attempts));
        tracing::info!(
            video = video.id,
            attempt = job.attempts,
            "video job started"
        );
        if job.attempts > MAX_ATTEMPTS {
            let reason = format!(
                "the work stopped {MAX_ATTEMPTS} times without finishing (the instance stopped or crashed); the file may be one amphi cannot convert"
            );
            let _ = tokio::fs::remove_dir_all(&folder).await;
            remove_downloads(&data_dir.join("tmp"), video.id).await;
            let now = crate::clock::unix_ms();
            let _ = self
                .0
                .db
                .finish_video_job(job.id, &self.0.holder, Err(&reason), now)
                .await;
            tracing::warn!(
                video = video.id,
                "video job given up after {MAX_ATTEMPTS} attempts"
            );
            return;
        }
        // A clean start: whatever an earlier attempt left goes.
        let _ = tokio::fs::remove_dir_all(&folder).await;
        let _ = tokio::fs::create_dir_all(&temp_dir).await;
        remove_downloads(&temp_dir, video.id).await;
        let (report, reports) = watch::channel(("download", 0i64));
        let work = self.work(&video, &job.source, &temp, &folder, report);
        let keep_lease = self.keep_lease(job.id, reports);
        let outcome = tokio::select! {
            outcome = work => Some(outcome),
            () = keep_lease => None,
        };
        let _ = tokio::fs::remove_file(&temp).await;
        let now = crate::clock::unix_ms();
        let Some(outcome) = outcome else {
            // Deleted meanwhile, or taken over by another instance after a stall.
            if !matches!(self.0.db.video(video.id).await, Ok(Some(_))) {
                let _ = tokio::fs::remove_dir_all(&folder).await;
            }
            tracing::info!(
                video = video.id,
                "video job given up: no longer this worker's"
            );
            return;
        };
        let finished = match &outcome {
            Ok(done) => {
                let thumbnail = if done.thumbnail {
                    transcode::THUMBNAIL
                } else {
                    ""
                };
                let duration_ms = done.duration.as_millis() as i64;
                self.0
                    .db
                    .finish_video_job(job.id, &self.0.holder, Ok((duration_ms, thumbnail)), now)
                    .await
            }
            Err(reason) => {
                let _ = tokio::fs::remove_dir_all(&folder).await;
                self.0
                    .db
                    .finish_video_job(job.id, &self.0.holder, Err(reason), now)
                    .await
            }
        };
        match (outcome, finished) {
            (Ok(done), Ok(true)) => {
                tracing::info!(
                    video = video.id,
                    seconds = done.duration.as_secs(),
                    "video ready"
                );
            }
            (Err(reason), Ok(true)) => {
                tracing::warn!(video = video.id, %reason, "video job failed");
            }
            (_, Ok(false)) => {
                // Deleted while it finished: the files just made go too.
                if !matches!(self.0.db.video(video.id).await, Ok(Some(_))) {
                    let _ = tokio::fs::remove_dir_all(&folder).await;
                }
                tracing::info!(video = video.id, "video job ended elsewhere meanwhile");
            }
            (_, Err(e)) => {
                // The job stays running: its lease runs out and it starts again.
                tracing::error!(video = video.id, error = %e, "cannot record the video job's end");
            }
        }
    }

    /// Saves the progress every second, renewing the lease; returns when the job is no longer
    /// this worker's.
    async fn keep_lease(&self, job_id: i64, reports: watch::Receiver<(&'static str, i64)>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let (step, progress) = *reports.borrow();
            let now = crate::clock::unix_ms();
            let until = now + self.0.lease.as_millis() as i64;
            match self
                .0
                .db
                .job_progress(job_id, &self.0.holder, step, progress, now, until)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "cannot save a video job's progress"),
            }
        }
    }

    /// Locates, downloads and transcodes; the error is a sentence for the owner.
    async fn work(
        &self,
        video: &Video,
        source: &str,
        temp: &Path,
        folder: &Path,
        report: watch::Sender<(&'static str, i64)>,
    ) -> Result<transcode::Transcoded, String> {
        let source: Source = serde_json::from_str(source)
            .map_err(|_| "this job's source is unreadable; import the video again".to_owned())?;
        let guard = match &source {
            Source::Recording { .. } => &self.0.recordings_guard,
            Source::Url { .. } => &self.0.guard,
        };
        let located = match &source {
            Source::Recording { record_id, .. } => {
                let bbb = self.0.bbb.as_deref().ok_or("no BBB server is configured")?;
                source::recording(guard, bbb, record_id).await?.0
            }
            Source::Url { url, titled } => {
                let url = Guard::parse(url).map_err(|e| e.to_string())?;
                let located = source::from_url(guard, &url).await?;
                // PeerTube names its videos: that title, unless the user chose one.
                if let Some(title) = located.title.as_deref().filter(|_| !titled) {
                    let title: String = title.chars().take(250).collect();
                    let description = located.description.as_deref().unwrap_or_default();
                    if let Err(e) = self
                        .0
                        .db
                        .describe_video(video.id, &title, description)
                        .await
                    {
                        tracing::warn!(error = %e, "cannot take the source's title");
                    }
                }
                located
            }
        };
        let max_bytes = self.0.config.videos.max_size_mb.saturating_mul(1 << 20);
        if located.size.is_some_and(|s| s > max_bytes) {
            return Err(crate::fetch::FetchError::TooLarge {
                limit_mb: self.0.config.videos.max_size_mb,
            }
            .to_string());
        }
        let (_, content_type) = guard
            .download(
                &located.url,
                located.jar.as_ref(),
                temp,
                max_bytes,
                |done, total| {
                    let share = total
                        .filter(|t| *t > 0)
                        .map_or(0.0, |t| done as f64 / t as f64 * DOWNLOAD_SHARE);
                    report.send_replace(("download", share as i64));
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        if let Some(t) = content_type.as_deref()
            && !source::is_media_type(t)
        {
            return Err(format!(
                "the address gave “{}”, not a video",
                t.split(';').next().unwrap_or(t)
            ));
        }
        report.send_replace(("transcode", DOWNLOAD_SHARE as i64));
        let ladder = Ladder::from_config(&self.0.config.media);
        transcode::transcode(temp, folder, &ladder, |done| {
            let share = DOWNLOAD_SHARE + done * (99.0 - DOWNLOAD_SHARE);
            report.send_replace(("transcode", share as i64));
        })
        .await
    }
}

/// Whether a stored relative path names a folder under `videos/` (and nothing else).
fn inside_videos(path: &str) -> bool {
    let relative = Path::new(path);
    relative.starts_with("videos")
        && relative.components().count() >= 2
        && relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Removes the partial downloads of every attempt at video `id`.
async fn remove_downloads(temp_dir: &Path, id: i64) {
    let prefix = format!("video-{id}-");
    let Ok(mut entries) = tokio::fs::read_dir(temp_dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

fn new_video(
    owner_id: i64,
    title: &str,
    origin: &str,
    origin_ref: &str,
    source_url: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Video {
    Video {
        id: 0,
        owner_id,
        title: title.chars().take(250).collect(),
        description: String::new(),
        origin: origin.to_owned(),
        origin_ref: origin_ref.to_owned(),
        state: "processing".to_owned(),
        duration_ms: 0,
        path: String::new(),
        thumbnail: String::new(),
        draft: true,
        source_url: source_url.to_owned(),
        meeting_id: None,
        created_at: now,
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::inside_videos;

    #[test]
    fn only_folders_under_videos_are_ever_removed() {
        assert!(inside_videos("videos/12"));
        assert!(inside_videos("videos/live-0042-chimie-1795812920"));
        for outside in [
            "",
            "videos",
            "/videos/12",
            "videos/../..",
            "../videos/1",
            "videos/1/../../db",
            "data/12",
        ] {
            assert!(!inside_videos(outside), "{outside}");
        }
    }
}
