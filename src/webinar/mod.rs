//! Webinar mode end to end: each webinar meeting has a live; when its owner starts it, one
//! amphi instance takes the live's lease in the database and runs its capture (bot, media
//! bridge, director, pipeline, HLS output and chat room) as one supervised task, restarted
//! with backoff when it fails, until the meeting ends or the owner stops it.
//!
//! Instances share the database: every few seconds each one looks for wanted lives nobody
//! holds (never started here, or whose holder stopped renewing its lease because it died) and
//! takes as many as it can capture. A live's HLS numbering and chat are in the database too,
//! so a capture that starts again in another process goes on where the last one stopped.

mod capture;
pub mod keep;

use crate::bbb::BbbApi;
use crate::bbb::callbacks::{BbbEvent, HookEvent};
use crate::config::Config;
use crate::db::{Db, Meeting, StoredLive};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How often instances look for lives to capture.
pub const SCAN: Duration = Duration::from_secs(2);
/// An instance counts in the cluster's capacity this long after it last looked.
const INSTANCE_SEEN: Duration = Duration::from_secs(60);

/// Scheduling a webinar then would need more captures than the cluster can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overbooked {
    /// The other webinars planned at that time.
    pub overlapping: Vec<crate::db::Overlapping>,
    /// Lives the cluster can capture at once.
    pub capacity: u64,
}

/// What the owner asks of a running live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// End the live; with `end_meeting`, end the BBB meeting too.
    Stop { end_meeting: bool },
    /// Start the capture again (bot, bridge and pipeline).
    Restart,
    /// Show or hide the live page's chat.
    ShowChat(bool),
}

/// Why a webinar action could not be done.
#[derive(Debug, thiserror::Error)]
pub enum WebinarError {
    #[error("this meeting is not a webinar")]
    NotWebinar,
    #[error("no BigBlueButton server is configured")]
    NoBbb,
    #[error("the live is not running")]
    NotRunning,
    #[error(transparent)]
    Db(#[from] crate::db::Error),
    #[error("the BigBlueButton server could not do it: {0}")]
    Bbb(#[from] crate::bbb::Error),
}

/// Everything a capture needs from the application.
pub struct Parts {
    pub db: Db,
    pub config: Arc<Config>,
    pub api: Option<Arc<dyn BbbApi>>,
    pub lives: crate::hls::Lives,
    pub chat: crate::chat::hub::Hub,
    pub catalog: Arc<crate::web::i18n::Catalog>,
}

struct Inner {
    parts: Parts,
    /// This instance's name on leases.
    instance: String,
    /// How long a lease lasts without renewal (`webinar.lease_seconds`).
    lease: Duration,
    scans: tokio::sync::watch::Sender<u64>,
    running: Mutex<HashMap<i64, Running>>,
}

struct Running {
    commands: mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
}

/// The webinars this instance captures.
#[derive(Clone)]
pub struct Webinars(Arc<Inner>);

impl Webinars {
    pub fn new(parts: Parts) -> Self {
        let instance = match parts.config.webinar.instance.trim() {
            "" => {
                let host = std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_default();
                let mut suffix = [0u8; 3];
                let _ = getrandom::fill(&mut suffix);
                format!(
                    "{}:{}-{}",
                    if host.is_empty() { "amphi" } else { &host },
                    parts.config.listen.port(),
                    hex::encode(suffix)
                )
            }
            name => name.to_owned(),
        };
        let lease = Duration::from_secs(u64::from(parts.config.webinar.lease_seconds.max(3)));
        Self(Arc::new(Inner {
            parts,
            instance,
            lease,
            scans: tokio::sync::watch::channel(0).0,
            running: Mutex::new(HashMap::new()),
        }))
    }

    /// This instance's name on leases.
    pub fn instance(&self) -> &str {
        &self.0.instance
    }

    /// How many times this instance has looked for lives to capture.
    pub fn scans(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.scans.subscribe()
    }

    /// Stops every capture of this instance at once without giving its lives up, as a crash
    /// would: another instance takes them over when their leases expire. (For tests and for
    /// a process that must stop now.)
    pub fn abandon(&self) {
        let running =
            std::mem::take(&mut *self.0.running.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, run) in running {
            run.task.abort();
        }
    }

    /// Lives the instances can capture at once, in all: those that looked for lives in the
    /// last minute, this one at least.
    pub async fn capacity(&self) -> Result<u64, WebinarError> {
        let since = crate::clock::unix_ms() - INSTANCE_SEEN.as_millis() as i64;
        let seen = self.0.parts.db.capture_capacity(since).await?;
        Ok(seen.max(u64::from(self.0.parts.config.webinar.max_lives)))
    }

    /// Whether a webinar planned over `[start, end)` (`except`: the one being edited) leaves
    /// a capture free at every moment; Pod's test, counting every overlapping webinar.
    pub async fn room_for(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        except: Option<i64>,
    ) -> Result<Result<(), Overbooked>, WebinarError> {
        let overlapping = self
            .0
            .parts
            .db
            .overlapping_webinars(start, end, except)
            .await?;
        let capacity = self.capacity().await?;
        if overlapping.len() as u64 + 1 > capacity {
            return Ok(Err(Overbooked {
                overlapping,
                capacity,
            }));
        }
        Ok(Ok(()))
    }

    /// Lives captured here now.
    pub fn capturing(&self) -> Vec<i64> {
        let mut running = self.0.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|_, r| !r.task.is_finished());
        running.keys().copied().collect()
    }

    /// The live of a webinar meeting, created if needed.
    pub async fn live_of(&self, meeting: &Meeting) -> Result<StoredLive, WebinarError> {
        if !meeting.fields.is_webinar {
            return Err(WebinarError::NotWebinar);
        }
        Ok(self
            .0
            .parts
            .db
            .ensure_live(meeting.id, &meeting.meeting_id)
            .await?)
    }

    /// The owner starts the live (by starting the meeting, or explicitly): it is wanted from
    /// now, and captured here at once when this instance can take it.
    pub async fn start(
        &self,
        meeting: &Meeting,
        now: DateTime<Utc>,
    ) -> Result<StoredLive, WebinarError> {
        if self.0.parts.api.is_none() {
            return Err(WebinarError::NoBbb);
        }
        let live = self.live_of(meeting).await?;
        if !live.wanted {
            self.0.parts.db.want_live(meeting.id, now).await?;
            tracing::info!(live = live.slug, meeting = meeting.id, "the live starts");
        }
        self.take(meeting.clone()).await?;
        self.live_of(meeting).await
    }

    /// Sends `command` to the live of `meeting`, captured here. A stop for a live captured
    /// elsewhere (or nowhere) is recorded in the database: its holder sees it and finishes.
    pub async fn command(
        &self,
        meeting: &Meeting,
        command: Command,
        now: DateTime<Utc>,
    ) -> Result<(), WebinarError> {
        let db = &self.0.parts.db;
        if let Command::ShowChat(shown) = command {
            db.set_live_chat(meeting.id, shown).await?;
        }
        let local = self
            .0
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&meeting.id)
            .filter(|r| !r.task.is_finished())
            .map(|r| r.commands.clone());
        match (local, command) {
            (Some(commands), _) => commands
                .send(command)
                .await
                .map_err(|_| WebinarError::NotRunning),
            (None, Command::Stop { end_meeting }) => {
                db.stop_live(meeting.id, now).await?;
                if end_meeting {
                    self.0
                        .parts
                        .api
                        .as_ref()
                        .ok_or(WebinarError::NoBbb)?
                        .end(&meeting.meeting_id)
                        .await?;
                }
                Ok(())
            }
            (None, Command::ShowChat(_)) => Ok(()),
            (None, Command::Restart) => Err(WebinarError::NotRunning),
        }
    }

    /// Takes the lease of `meeting`'s live and starts its capture, when this instance can.
    async fn take(&self, meeting: Meeting) -> Result<bool, WebinarError> {
        let inner = &self.0;
        let max = inner.parts.config.webinar.max_lives as usize;
        let capturing = self.capturing();
        if capturing.contains(&meeting.id) {
            return Ok(true);
        }
        if capturing.len() >= max {
            tracing::info!(
                meeting = meeting.id,
                max,
                "this instance captures as many lives as it can; another one will take this live"
            );
            return Ok(false);
        }
        let now = crate::clock::unix_ms();
        let taken = inner
            .parts
            .db
            .take_live_lease(
                meeting.id,
                &inner.instance,
                now,
                now + inner.lease.as_millis() as i64,
            )
            .await?;
        if !taken {
            return Ok(false);
        }
        let Some(stored) = inner.parts.db.live_of_meeting(meeting.id).await? else {
            return Ok(false);
        };
        let (commands, receiver) = mpsc::channel(8);
        let id = meeting.id;
        let task = tokio::spawn(capture::run(Arc::clone(inner), meeting, stored, receiver));
        inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Running { commands, task });
        Ok(true)
    }

    /// Looks for lives to capture every [`SCAN`] and follows BBB's end callbacks and webhooks,
    /// until the task is aborted.
    pub fn spawn(&self, events: broadcast::Receiver<BbbEvent>) -> tokio::task::JoinHandle<()> {
        let webinars = self.clone();
        tokio::spawn(async move {
            let scanning = async {
                let mut tick = tokio::time::interval(SCAN);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = webinars.scan().await {
                        tracing::warn!(error = %e, "cannot look for lives to capture");
                    }
                    webinars.0.scans.send_modify(|n| *n += 1);
                }
            };
            tokio::join!(scanning, webinars.follow(events));
        })
    }

    async fn scan(&self) -> Result<(), WebinarError> {
        let db = &self.0.parts.db;
        let max = self.0.parts.config.webinar.max_lives;
        db.capture_instance_seen(&self.0.instance, max, crate::clock::unix_ms())
            .await?;
        let instance = self.0.instance.as_str();
        for live in db
            .lives_to_capture(crate::clock::unix_ms(), instance)
            .await?
        {
            if self.capturing().contains(&live.meeting_id) {
                continue;
            }
            let Some(meeting) = db.meeting(live.meeting_id).await? else {
                continue;
            };
            if live.lease_holder.as_deref() == Some(instance) {
                tracing::warn!(
                    live = live.slug,
                    "this instance was capturing this live before it stopped: taking it back"
                );
            } else if live.lease_holder.is_some() {
                tracing::warn!(
                    live = live.slug,
                    holder = live.lease_holder.as_deref().unwrap_or_default(),
                    "the instance capturing this live stopped renewing its lease: taking it over"
                );
            }
            if !self.take(meeting).await? {
                break;
            }
        }
        Ok(())
    }

    /// The end callback and webhooks say a meeting ended: its live stops.
    async fn follow(&self, mut events: broadcast::Receiver<BbbEvent>) {
        loop {
            let ended = match events.recv().await {
                Ok(BbbEvent::MeetingEnded { meeting_id, .. }) => meeting_id,
                Ok(BbbEvent::Hook(HookEvent::MeetingEnded { meeting })) => meeting.external_id,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let meeting = match self.0.parts.db.meeting_by_bbb_id(&ended).await {
                Ok(Some(meeting)) if meeting.fields.is_webinar => meeting,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot find the meeting that ended");
                    continue;
                }
            };
            let stop = Command::Stop { end_meeting: false };
            match self.command(&meeting, stop, Utc::now()).await {
                Ok(()) | Err(WebinarError::NotRunning) => {}
                Err(e) => tracing::warn!(meeting = meeting.id, error = %e, "cannot stop the live"),
            }
        }
    }
}
