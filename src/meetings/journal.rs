//! Keeps meetings and their session journal in step with BBB: the end callback and webhooks
//! say when a meeting ends and who comes and goes; while a meeting runs, `getMeetingInfo` is
//! sampled for the participant count and for those who left when no webhook says so.

use super::start::StatusCache;
use crate::bbb::callbacks::{BbbEvent, HookEvent};
use crate::bbb::{BbbApi, MessageKey};
use crate::clock::Clock;
use crate::db::{self, Db, MeetingSearch};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast;

/// How often running meetings are sampled.
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// A journal entry younger than this is not marked as left by sampling: the person may still
/// be on their way from amphi to BBB.
const GRACE: Duration = Duration::minutes(2);

/// Applies one BBB event to the meetings it is about.
pub async fn apply(
    db: &Db,
    status: &StatusCache,
    event: &BbbEvent,
    now: DateTime<Utc>,
) -> Result<(), db::Error> {
    match event {
        BbbEvent::MeetingEnded { meeting_id, .. } => ended(db, status, meeting_id, now).await,
        BbbEvent::Hook(HookEvent::MeetingEnded { meeting }) => {
            ended(db, status, &meeting.external_id, now).await
        }
        BbbEvent::Hook(HookEvent::UserJoined { meeting, user }) => {
            let Some(found) = db.meeting_by_bbb_id(&meeting.external_id).await? else {
                return Ok(());
            };
            db.set_meeting_running(&meeting.external_id, true).await?;
            let session = match db.current_session(found.id).await? {
                Some(session) if session.ended_at.is_none() => session.id,
                _ => {
                    db.open_session(found.id, None, &meeting.internal_id, now)
                        .await?
                }
            };
            db.link_participant(
                session,
                &user.external_id,
                user.name.as_deref().unwrap_or_default(),
                user.role.as_deref().unwrap_or("VIEWER"),
                &user.internal_id,
                now,
            )
            .await?;
            Ok(())
        }
        BbbEvent::Hook(HookEvent::UserLeft { meeting, user }) => {
            let Some(found) = db.meeting_by_bbb_id(&meeting.external_id).await? else {
                return Ok(());
            };
            if let Some(session) = db.current_session(found.id).await? {
                db.participant_left(session.id, &user.internal_id, now)
                    .await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn ended(
    db: &Db,
    status: &StatusCache,
    meeting_id: &str,
    now: DateTime<Utc>,
) -> Result<(), db::Error> {
    let Some(meeting) = db.meeting_by_bbb_id(meeting_id).await? else {
        return Ok(());
    };
    db.set_meeting_running(meeting_id, false).await?;
    let closed = db.close_sessions(meeting.id, now).await?;
    status.invalidate().await;
    tracing::info!(meeting_id, sessions = closed, "meeting ended");
    Ok(())
}

/// How long one event is tried again while the database fails (a restart, a failover); the
/// events after it wait in the channel, so the journal keeps their order.
const DATABASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(600);

/// Applies one event, trying again with backoff (0.1 s doubling to 5 s) while the database
/// fails. `now` is when the event came, whenever it is recorded.
async fn record(db: &Db, status: &StatusCache, event: &BbbEvent, now: DateTime<Utc>) {
    let give_up = tokio::time::Instant::now() + DATABASE_PATIENCE;
    let mut delay = std::time::Duration::from_millis(100);
    let mut failures = 0u32;
    loop {
        let error = match apply(db, status, event, now).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(failures, "BBB event recorded in the journal after all");
                }
                return;
            }
            Err(e) => e,
        };
        failures += 1;
        if !matches!(error, db::Error::Query(_)) || tokio::time::Instant::now() >= give_up {
            tracing::error!(error = %error, failures, "a BBB event is left out of the journal");
            return;
        }
        if failures == 1 {
            tracing::warn!(error = %error, "cannot record a BBB event in the journal yet: trying again");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
}

/// Follows the BBB events until the channel closes.
pub async fn follow(
    db: Db,
    status: Arc<StatusCache>,
    clock: Arc<dyn Clock>,
    mut events: broadcast::Receiver<BbbEvent>,
) {
    loop {
        match events.recv().await {
            Ok(event) => record(&db, &status, &event, clock.now()).await,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // Sampling catches up with what was missed.
                tracing::warn!(missed, "journal fell behind BBB events");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// One pass over the meetings amphi believes running: count the participants, close the
/// entries of those who left, and notice meetings that ended without telling.
pub async fn sample(
    db: &Db,
    api: &dyn BbbApi,
    status: &StatusCache,
    now: DateTime<Utc>,
) -> Result<(), db::Error> {
    let (running, _) = db
        .search_meetings(&MeetingSearch {
            running: Some(true),
            limit: 200,
            ..MeetingSearch::default()
        })
        .await?;
    for meeting in running {
        let info = match api.get_meeting_info(&meeting.meeting_id).await {
            Ok(info) => info,
            Err(e) if matches!(e.key(), Some(MessageKey::NotFound)) => {
                ended(db, status, &meeting.meeting_id, now).await?;
                continue;
            }
            Err(e) => {
                tracing::debug!(meeting_id = %meeting.meeting_id, error = %e, "cannot sample a meeting");
                continue;
            }
        };
        let Some(session) = db
            .current_session(meeting.id)
            .await?
            .filter(|s| s.ended_at.is_none())
        else {
            continue;
        };
        db.record_participant_count(session.id, info.participant_count, now)
            .await?;
        let present: HashSet<&str> = info
            .attendees
            .items
            .iter()
            .flat_map(|a| [a.full_name.as_str(), a.user_id.as_str()])
            .collect();
        let gone: Vec<i64> = db
            .present_participants(session.id)
            .await?
            .into_iter()
            .filter(|(_, name, username, joined)| {
                *joined + GRACE < now
                    && !present.contains(name.as_str())
                    && !username.as_deref().is_some_and(|u| present.contains(u))
            })
            .map(|(id, ..)| id)
            .collect();
        db.mark_left(&gone, now).await?;
    }
    Ok(())
}

/// Samples every [`SAMPLE_EVERY`], forever.
pub async fn sample_forever(
    db: Db,
    api: Arc<dyn BbbApi>,
    status: Arc<StatusCache>,
    clock: Arc<dyn Clock>,
) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sample(&db, api.as_ref(), &status, clock.now()).await {
            tracing::warn!(error = %e, "cannot sample running meetings");
        }
    }
}
