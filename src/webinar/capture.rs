//! One live's capture, supervised: the pipeline runs from the start (the "will start soon"
//! slate), the bot joins, the media bridge receives with the bot's session, the director
//! places what the meeting shows, and the chat room relays both ways. When any of them fails,
//! everything but the HLS output and the chat starts again after a backoff, on a new pipeline
//! showing the "reconnecting" slate (the playlists mark the break with a discontinuity). It
//! ends when the meeting ends, when no moderator has been in it for a while, or when the
//! owner stops it; then the playlists get `EXT-X-ENDLIST` and the chat closes to writing.

use super::{Command, Inner};
use crate::bridge::MediaBridge;
use crate::bridge::sfu::{SfuBridge, SfuConfig};
use crate::chat::hub::{self, RoomHandle};
use crate::chat::protocol::ClientFrame;
use crate::chat::room::{Member, Settings};
use crate::client::bot::{self, Bot, BotOptions};
use crate::client::slides::SlideCache;
use crate::db::{Meeting, StoredLive};
use crate::hls::{Live, Lookup};
use crate::media::director::{self, Cue, Stage};
use crate::media::layout::Layout;
use crate::media::{Ladder, LivePipeline, PipelineEvent, Slate};
use crate::web::i18n::Lang;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the bot may take to be in the meeting.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often where the HLS output stands is saved (a segment lasts a second).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Segments skipped when a capture resumes in a new process: the progress saved may be a
/// little old, and a number must never be used twice.
const RESUME_MARGIN: u64 = 10;

/// How an attempt ended.
#[derive(Debug)]
enum Outcome {
    /// The live is over (meeting ended, no moderator, owner's stop); the reason is logged.
    Ended(String),
    /// Start again after a backoff.
    Failed(String),
    /// Start again now (the owner asked).
    Restart,
    /// Another instance holds the live now: stop here without ending it.
    LeaseLost,
}

/// 1 s, doubling, at most 30 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(5)).min(Duration::from_secs(30))
}

fn lang(inner: &Inner) -> Lang {
    Lang::from_code(&inner.parts.config.site.default_language).unwrap_or(Lang::Fr)
}

/// Runs the capture of `meeting`'s live until it ends or another instance takes it.
pub(super) async fn run(
    inner: Arc<Inner>,
    meeting: Meeting,
    stored: StoredLive,
    mut commands: mpsc::Receiver<Command>,
) {
    let slug = stored.slug.clone();
    let ladder = Ladder::from_config(&inner.parts.config.media);
    let live = live_for(&inner, &stored, &meeting, &ladder);
    let room = open_room(&inner, &meeting, &stored).await;
    let keeping = meeting
        .fields
        .webinar_keep_video
        .then(|| keep(&inner, &stored, Arc::clone(&live)));
    let catalog = Arc::clone(&inner.parts.catalog);
    let mut failures = 0u32;
    let mut slate = Slate::Waiting;
    let outcome = loop {
        let began = tokio::time::Instant::now();
        let outcome = match attempt(
            &inner,
            &meeting,
            &ladder,
            &live,
            room.as_ref(),
            slate.text(&catalog, lang(&inner)),
            &mut commands,
        )
        .await
        {
            Outcome::Failed(error) => {
                // A capture that ran a good while failed afresh: the backoff starts over.
                if began.elapsed() > Duration::from_secs(60) {
                    failures = 0;
                }
                failures += 1;
                let delay = backoff(failures - 1);
                tracing::warn!(
                    live = slug,
                    failures,
                    error,
                    "the capture failed; starting again in {delay:?}"
                );
                if let Err(e) = inner.parts.db.live_restarted(meeting.id, &error).await {
                    tracing::warn!(live = slug, error = %e, "cannot record the capture's failure");
                }
                // The reconnecting slate plays meanwhile.
                match wait(
                    &inner,
                    &meeting,
                    &ladder,
                    &live,
                    &catalog,
                    delay,
                    &mut commands,
                )
                .await
                {
                    Some(outcome) => outcome,
                    None => {
                        slate = Slate::Reconnecting;
                        continue;
                    }
                }
            }
            outcome => outcome,
        };
        match outcome {
            Outcome::Restart => {
                slate = Slate::Reconnecting;
                failures = 0;
            }
            Outcome::Failed(_) => {}
            Outcome::Ended(reason) => break Some(reason),
            Outcome::LeaseLost => break None,
        }
    };
    let db = &inner.parts.db;
    match outcome {
        Some(reason) => {
            tracing::info!(live = slug, reason, "the live ended");
            live.end();
            if let Some(room) = &room {
                room.end();
            }
            save_progress(&inner, &meeting, &live).await;
            if let Err(e) = db.stop_live(meeting.id, chrono::Utc::now()).await {
                tracing::error!(live = slug, error = %e, "cannot record the end of the live");
            }
            if let Some((done, task)) = keeping {
                let _ = done.send(());
                if let Ok(keeper) = task.await {
                    register_video(&inner, &meeting, &live, keeper).await;
                }
            }
        }
        None => {
            tracing::warn!(
                live = slug,
                "another instance captures this live now: stopping here"
            );
            inner.parts.lives.remove(&slug);
            inner.parts.chat.close(&slug);
        }
    }
    let _ = db.release_live_lease(meeting.id, &inner.instance).await;
}

/// Starts keeping `live` in `data_dir/videos/live-<slug>-<start>/`; the sender ends it and
/// the task gives the files back.
fn keep(
    inner: &Inner,
    stored: &StoredLive,
    live: Arc<Live>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<super::keep::Keeper>,
) {
    let started = stored.started_at.map_or(0, |t| t.timestamp());
    let dir = inner
        .parts
        .config
        .data_dir
        .join("videos")
        .join(format!("live-{}-{started}", stored.slug));
    let mut keeper = super::keep::Keeper::new(dir);
    let (done, mut finished) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // A segment stays in the window for many seconds: once a second misses none.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        // Since when writing fails (a full disk): said once, and once when it works again.
        let mut failing: Option<tokio::time::Instant> = None;
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                _ = &mut finished => true,
            };
            match keeper.collect(&live) {
                Ok(()) => {
                    if let Some(since) = failing.take() {
                        tracing::warn!(
                            live = live.slug,
                            seconds = since.elapsed().as_secs(),
                            "the live's video is written again; the segments that left the live meanwhile are missing from it"
                        );
                    }
                }
                Err(e) if failing.is_none() => {
                    tracing::error!(live = live.slug, error = %e, "cannot write the live's video: the live goes on, its video misses what cannot be written");
                    failing = Some(tokio::time::Instant::now());
                }
                Err(_) => {}
            }
            if last {
                return keeper;
            }
        }
    });
    (done, task)
}

/// Writes the kept video's playlists and registers it for the owner.
async fn register_video(
    inner: &Inner,
    meeting: &Meeting,
    live: &Live,
    keeper: super::keep::Keeper,
) {
    let duration = match keeper.finish(live) {
        Ok(duration) => duration,
        Err(e) => {
            tracing::error!(live = live.slug, error = %e, "the live's video could not be finished");
            return;
        }
    };
    let path = keeper
        .dir()
        .strip_prefix(&inner.parts.config.data_dir)
        .unwrap_or(keeper.dir())
        .to_string_lossy()
        .into_owned();
    let video = crate::db::Video {
        id: 0,
        owner_id: meeting.fields.owner_id,
        title: meeting.fields.name.clone(),
        origin: "live".to_owned(),
        origin_ref: live.slug.clone(),
        description: String::new(),
        state: "ready".to_owned(),
        duration_ms: duration.as_millis() as i64,
        path,
        thumbnail: String::new(),
        draft: true,
        source_url: String::new(),
        meeting_id: Some(meeting.id),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    match inner.parts.db.add_video(&video).await {
        Ok(id) => tracing::info!(live = live.slug, video = id, "the live is kept as a video"),
        Err(e) => tracing::error!(live = live.slug, error = %e, "cannot register the live's video"),
    }
}

/// The live's HLS output: the one this process already serves, or a new one that goes on
/// from the numbering saved by an earlier capture.
fn live_for(inner: &Inner, stored: &StoredLive, meeting: &Meeting, ladder: &Ladder) -> Arc<Live> {
    if let Lookup::Live(live) = inner.parts.lives.lookup(&stored.slug)
        && live.status() != crate::hls::LiveStatus::Ended
    {
        return live;
    }
    let live = Arc::new(
        Live::new(
            &stored.slug,
            ladder.variants(),
            ladder.audio(),
            ladder.window,
        )
        .with_title(&meeting.fields.name),
    );
    // Something was published before (an init segment at least): go on after it.
    if stored.init_generation > 0 {
        live.resume(
            stored.next_sequence + RESUME_MARGIN,
            stored.discontinuities,
            stored.init_generation,
        );
    }
    inner.parts.lives.insert(Arc::clone(&live));
    live
}

/// The live's chat room, when the webinar has one; its history comes from the database.
async fn open_room(inner: &Inner, meeting: &Meeting, stored: &StoredLive) -> Option<RoomHandle> {
    if !meeting.fields.enable_chat {
        return None;
    }
    let api = inner.parts.api.clone()?;
    let mut settings = Settings::from_config(
        &inner.parts.config.chat,
        meeting.fields.webinar_anonymous_chat,
        stored.show_chat,
    );
    // `{count}` stays in the text: the room fills it in.
    settings.viewers_post_text =
        inner
            .parts
            .catalog
            .get(lang(inner), "live.chat_ui.viewers_post", &[]);
    let opened = inner
        .parts
        .chat
        .open(
            &stored.slug,
            settings,
            inner.parts.db.clone(),
            hub::Meeting {
                api,
                meeting_id: meeting.meeting_id.clone(),
                bot: None,
            },
        )
        .await;
    match opened {
        Ok(room) => {
            room.set_moderators(owner_keys(meeting));
            Some(room)
        }
        Err(e) => {
            tracing::error!(live = stored.slug, error = %e, "the live's chat cannot open");
            None
        }
    }
}

/// The chat keys of the webinar's owner and additional owners.
fn owner_keys(meeting: &Meeting) -> impl Iterator<Item = String> + '_ {
    std::iter::once(meeting.fields.owner_id)
        .chain(meeting.fields.additional_owners.iter().copied())
        .map(|id| format!("user:{id}"))
}

/// The room's moderators: the owners, and the meeting's BBB moderators who are amphi users
/// (amphi joins its users with their username as BBB's external user id).
async fn set_moderators(
    inner: &Inner,
    meeting: &Meeting,
    room: &RoomHandle,
    bbb_moderators: &std::collections::BTreeSet<String>,
) {
    let mut keys: Vec<String> = owner_keys(meeting).collect();
    for username in bbb_moderators {
        match inner.parts.db.user_by_username(username).await {
            Ok(Some(user)) => keys.push(format!("user:{}", user.id)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot look up a BBB moderator"),
        }
    }
    room.set_moderators(keys);
}

async fn save_progress(inner: &Inner, meeting: &Meeting, live: &Live) {
    let (next, discontinuities, generation) = live.progress();
    if let Err(e) = inner
        .parts
        .db
        .live_progress(meeting.id, next, discontinuities, generation)
        .await
    {
        tracing::warn!(live = live.slug, error = %e, "cannot save where the live stands");
    }
}

/// Renews the lease; `false` when this instance no longer holds it.
async fn renew(inner: &Inner, meeting: &Meeting) -> bool {
    let now = crate::clock::unix_ms();
    let until = now + inner.lease.as_millis() as i64;
    match inner
        .parts
        .db
        .take_live_lease(meeting.id, &inner.instance, now, until)
        .await
    {
        Ok(held) => held,
        Err(e) => {
            // The database is away: keep capturing; the lease holds a while.
            tracing::warn!(meeting = meeting.id, error = %e, "cannot renew the capture's lease");
            true
        }
    }
}

/// Why the lease could not be renewed: the live was stopped (from another instance), or
/// another instance took it.
async fn lease_lost(inner: &Inner, meeting: &Meeting) -> Outcome {
    match inner.parts.db.live_of_meeting(meeting.id).await {
        Ok(Some(live)) if !live.wanted => Outcome::Ended("the live was stopped".to_owned()),
        _ => Outcome::LeaseLost,
    }
}

/// Handles what the owner asks while nothing else runs; `Some` when it ends the attempt.
async fn obey(
    inner: &Inner,
    meeting: &Meeting,
    command: Option<Command>,
    room: Option<&RoomHandle>,
) -> Option<Outcome> {
    match command {
        None => Some(Outcome::LeaseLost),
        Some(Command::Stop { end_meeting }) => {
            if end_meeting
                && let Some(api) = &inner.parts.api
                && let Err(e) = api.end(&meeting.meeting_id).await
            {
                tracing::warn!(meeting = meeting.id, error = %e, "cannot end the BBB meeting");
            }
            Some(Outcome::Ended("the owner ended the live".to_owned()))
        }
        Some(Command::Restart) => Some(Outcome::Restart),
        Some(Command::ShowChat(shown)) => {
            if let Some(room) = room {
                let system = Member {
                    key: "system:owner".to_owned(),
                    name: None,
                    moderator: true,
                };
                let frame = ClientFrame::Enable { enabled: shown };
                let _ = room.frame(0, system, frame, crate::clock::unix_ms());
            }
            None
        }
    }
}

/// Waits `delay` on the reconnecting slate; `Some` when the owner or the lease ends the wait.
async fn wait(
    inner: &Inner,
    meeting: &Meeting,
    ladder: &Ladder,
    live: &Arc<Live>,
    catalog: &crate::web::i18n::Catalog,
    delay: Duration,
    commands: &mut mpsc::Receiver<Command>,
) -> Option<Outcome> {
    let (events, _ignored) = mpsc::unbounded_channel();
    let slate = Slate::Reconnecting.text(catalog, lang(inner));
    let _pipeline = LivePipeline::start(ladder, Arc::clone(live), &slate, events)
        .map_err(|e| tracing::warn!(live = live.slug, error = e, "the slate cannot play"))
        .ok();
    let deadline = tokio::time::Instant::now() + delay;
    // The wait can outlast a lease: it is renewed meanwhile, and a live stopped from another
    // instance ends here too.
    let mut renewal = tokio::time::interval(inner.lease / 3);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return None,
            command = commands.recv() => {
                if let Some(outcome) = obey(inner, meeting, command, None).await {
                    return Some(outcome);
                }
            }
            _ = renewal.tick() => {
                if !renew(inner, meeting).await {
                    return Some(lease_lost(inner, meeting).await);
                }
            }
        }
    }
}

/// One attempt: pipeline, bot, bridge, director and chat relay, until something ends it.
async fn attempt(
    inner: &Inner,
    meeting: &Meeting,
    ladder: &Ladder,
    live: &Arc<Live>,
    room: Option<&RoomHandle>,
    slate: String,
    commands: &mut mpsc::Receiver<Command>,
) -> Outcome {
    let Some(api) = inner.parts.api.clone() else {
        return Outcome::Ended("no BigBlueButton server is configured".to_owned());
    };
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let pipeline = match LivePipeline::start(ladder, Arc::clone(live), &slate, events_tx) {
        Ok(pipeline) => pipeline,
        Err(e) => return Outcome::Failed(e),
    };
    let bot_name = inner.parts.config.bot_name();
    let bot = match bot::start(
        Arc::clone(&api),
        BotOptions {
            meeting_id: meeting.meeting_id.clone(),
            display_name: bot_name.clone(),
            user_id: format!("amphi-live-{}", meeting.id),
        },
    )
    .await
    {
        Ok(bot) => bot,
        Err(e) => return not_joined(api.as_ref(), meeting, e.to_string()).await,
    };
    let mut state = bot.state.clone();
    let joined = tokio::time::timeout(
        JOIN_TIMEOUT,
        state.wait_for(|s| s.joined || s.ended.is_some()),
    )
    .await
    .map(|r| r.map(|s| s.ended.is_some()));
    match joined {
        Ok(Ok(true)) => {
            return Outcome::Ended("the meeting ended".to_owned());
        }
        Ok(Ok(false)) => {}
        _ => {
            let reason = match tokio::time::timeout(Duration::from_secs(5), bot.finished()).await {
                Ok(reason) => format!("the bot could not get in the meeting: {reason:?}"),
                Err(_) => "the bot could not get in the meeting in time".to_owned(),
            };
            return not_joined(api.as_ref(), meeting, reason).await;
        }
    }
    let Some(joined) = bot.joined.clone() else {
        return Outcome::Failed("the bot has no session".to_owned());
    };
    let sfu = SfuConfig::for_bot(
        api.as_ref(),
        &inner.parts.config.bbb.api_url,
        &joined,
        &bot_name,
        vec![inner.parts.config.media.udp_bind.clone()],
    )
    .await;
    let bridge: Arc<dyn MediaBridge> = match sfu {
        Ok(config) => Arc::new(SfuBridge::new(config)),
        Err(e) => return Outcome::Failed(format!("the media server cannot be reached: {e}")),
    };
    let layout = Layout::named(&meeting.fields.webinar_layout)
        .or_else(|| Layout::named(crate::media::layout::DEFAULT))
        .expect("the default layout is built in");
    let (cues_tx, mut cues) = mpsc::unbounded_channel();
    let director = director::start(
        pipeline.pipeline().clone(),
        bridge,
        bot.state.clone(),
        Arc::new(SlideCache::new(bot.session_cookie())),
        Stage {
            layout,
            size: (ladder.width, ladder.height),
            fps: ladder.fps,
        },
        cues_tx,
    );
    let relay = room.map(|room| {
        tokio::spawn(hub::follow_meeting(
            bot.changes(),
            room.clone(),
            Some(joined.user_id.clone()),
        ))
    });
    let outcome = watch(
        inner,
        meeting,
        live,
        room,
        &bot,
        &mut events,
        &mut cues,
        commands,
    )
    .await;
    if let Some(relay) = relay {
        relay.abort();
    }
    // The capture stops at once; when the live is over its playlists end now, with what they
    // have (the part being cut is lost, the rest of the last segment is kept).
    drop(director);
    drop(pipeline);
    if matches!(outcome, Outcome::Ended(_)) {
        live.end();
    }
    // Leaving takes the bot out of the user list at once.
    let _ = tokio::time::timeout(Duration::from_secs(5), bot.leave()).await;
    outcome
}

/// The bot could not get in: the meeting is over (the live ends), or something failed.
async fn not_joined(api: &dyn crate::bbb::BbbApi, meeting: &Meeting, reason: String) -> Outcome {
    match api.is_meeting_running(&meeting.meeting_id).await {
        Ok(false) => Outcome::Ended("the meeting is not running".to_owned()),
        _ => Outcome::Failed(reason),
    }
}

#[allow(clippy::too_many_arguments)]
async fn watch(
    inner: &Inner,
    meeting: &Meeting,
    live: &Arc<Live>,
    room: Option<&RoomHandle>,
    bot: &Bot,
    events: &mut mpsc::UnboundedReceiver<PipelineEvent>,
    cues: &mut mpsc::UnboundedReceiver<Cue>,
    commands: &mut mpsc::Receiver<Command>,
) -> Outcome {
    let mut state = bot.state.clone();
    let alone_for =
        Duration::from_secs(u64::from(inner.parts.config.webinar.no_moderator_minutes) * 60);
    let mut alone_since: Option<tokio::time::Instant> = None;
    let mut bbb_moderators = std::collections::BTreeSet::new();
    // Three renewals per lease: one missed renewal loses nothing.
    let mut renewal = tokio::time::interval(inner.lease / 3);
    renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let alone_deadline = alone_since.map(|since| since + alone_for);
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    return Outcome::Failed("the bot's connection to the meeting ended".to_owned());
                }
                let s = state.borrow_and_update().clone();
                if s.ended.is_some() {
                    return Outcome::Ended("the meeting ended".to_owned());
                }
                if s.moderators() == 0 {
                    alone_since.get_or_insert_with(tokio::time::Instant::now);
                } else {
                    alone_since = None;
                }
                let moderators: std::collections::BTreeSet<String> = s
                    .participants
                    .values()
                    .filter(|p| p.role == "MODERATOR" && !p.bot && !p.ext_id.is_empty())
                    .map(|p| p.ext_id.clone())
                    .collect();
                if moderators != bbb_moderators {
                    bbb_moderators = moderators;
                    if let Some(room) = room {
                        set_moderators(inner, meeting, room, &bbb_moderators).await;
                    }
                }
            }
            () = async { tokio::time::sleep_until(alone_deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if alone_deadline.is_some() => {
                return Outcome::Ended("no moderator has been in the meeting for a while".to_owned());
            }
            event = events.recv() => match event {
                Some(PipelineEvent::Warning(w)) => tracing::debug!(live = live.slug, warning = w, "pipeline"),
                Some(PipelineEvent::Error(e)) => return Outcome::Failed(format!("the pipeline failed: {e}")),
                Some(PipelineEvent::Finished) | None => return Outcome::Failed("the pipeline stopped".to_owned()),
            },
            cue = cues.recv() => match cue {
                Some(Cue::Warning(w)) => tracing::warn!(live = live.slug, warning = w, "director"),
                Some(cue) => tracing::debug!(live = live.slug, ?cue, "director"),
                None => return Outcome::Failed("the director stopped".to_owned()),
            },
            command = commands.recv() => {
                if let Some(outcome) = obey(inner, meeting, command, room).await {
                    return outcome;
                }
            }
            _ = progress.tick() => save_progress(inner, meeting, live).await,
            _ = renewal.tick() => {
                if !renew(inner, meeting).await {
                    return lease_lost(inner, meeting).await;
                }
                let viewers = room.map_or(0, |r| *r.viewers().borrow())
                    .max(live.viewers.load(std::sync::atomic::Ordering::Relaxed));
                if let Err(e) = inner.parts.db.live_viewers(meeting.id, viewers as u64).await {
                    tracing::warn!(live = live.slug, error = %e, "cannot record the viewer peak");
                }
            }
        }
    }
}
