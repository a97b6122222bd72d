//! The "a recording is available" mail (Pod's recording-ready mail): when BBB's
//! recording-ready callback arrives (once per recording, whatever the number of formats; the
//! receipt is in the database), the meeting's owner is told in their language, with the link
//! to the meeting's recordings; additional owners too when `videos.ready_mail_additional_owners`.
//! Receipts left unhandled (no mail server reachable, a restart) are tried again every minute
//! and at start-up, for a day; a receipt is claimed before its mail goes so two instances never
//! both send.

use crate::bbb::callbacks::{BbbEvent, RecordingReady};
use crate::config::Config;
use crate::db::{Db, Receipt};
use crate::mail::{Mail, Mailer};
use crate::web::callbacks::RECORDING_READY;
use crate::web::i18n::{Catalog, Lang};
use std::sync::Arc;
use std::time::Duration;

/// A recording older than this when its mail could go is not mailed any more (a mail server
/// configured long after, a server that kept refusing).
const TOO_OLD_MS: i64 = 24 * 3600 * 1000;
use tokio::sync::broadcast;

/// Follows the callbacks until aborted.
pub async fn follow(
    db: Db,
    clock: Arc<dyn crate::clock::Clock>,
    config: Arc<Config>,
    mailer: Option<Arc<dyn Mailer>>,
    catalog: Arc<Catalog>,
    mut events: broadcast::Receiver<BbbEvent>,
) {
    let mut retry = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(BbbEvent::RecordingReady(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = retry.tick() => {}
        }
        let Some(mailer) = mailer.as_deref() else {
            continue;
        };
        match db.unhandled_receipts(RECORDING_READY).await {
            Ok(receipts) => {
                for receipt in receipts {
                    let now = clock.now().timestamp_millis();
                    send(&db, now, &config, mailer, &catalog, &receipt).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the recording-ready receipts"),
        }
    }
}

async fn send(
    db: &Db,
    now: i64,
    config: &Config,
    mailer: &dyn Mailer,
    catalog: &Catalog,
    receipt: &Receipt,
) {
    if now - receipt.received_at_ms > TOO_OLD_MS {
        tracing::warn!(
            key = receipt.key,
            "recording-ready mail not sent within a day: given up"
        );
        let _ = db
            .mark_receipt_handled(RECORDING_READY, &receipt.key, now)
            .await;
        return;
    }
    let Ok(ready) = serde_json::from_str::<RecordingReady>(&receipt.payload) else {
        tracing::warn!(
            key = receipt.key,
            "unreadable recording-ready receipt left aside"
        );
        let _ = db
            .mark_receipt_handled(RECORDING_READY, &receipt.key, now)
            .await;
        return;
    };
    let meeting = match db.meeting_by_bbb_id(&ready.meeting_id).await {
        Ok(Some(meeting)) => meeting,
        Ok(None) => {
            tracing::info!(
                meeting = ready.meeting_id,
                "recording ready for a meeting amphi does not know (deleted?): no mail"
            );
            let _ = db
                .mark_receipt_handled(RECORDING_READY, &receipt.key, now)
                .await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the recording's meeting; trying again later");
            return;
        }
    };
    // Claimed first: another instance following the same receipts sends nothing.
    match db
        .mark_receipt_handled(RECORDING_READY, &receipt.key, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim a recording-ready receipt");
            return;
        }
    }
    let mut recipients = vec![meeting.fields.owner_id];
    if config.videos.ready_mail_additional_owners {
        recipients.extend(meeting.fields.additional_owners.iter().copied());
    }
    let link = format!(
        "{}/meeting/recordings/{}/",
        config.public_url.trim_end_matches('/'),
        meeting.meeting_id
    );
    let mut failed = false;
    for user_id in recipients {
        let user = match db.user_by_id(user_id).await {
            Ok(Some(user)) => user,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a recipient of the recording-ready mail");
                failed = true;
                continue;
            }
        };
        if user.email.trim().is_empty() {
            tracing::info!(
                user = user.username,
                "recording ready, but the owner has no mail address"
            );
            continue;
        }
        let lang = Lang::from_code(&user.language)
            .or_else(|| Lang::from_code(&config.site.default_language))
            .unwrap_or(Lang::Fr);
        let args = [
            ("site", config.site.title.as_str()),
            ("name", meeting.fields.name.as_str()),
            ("link", link.as_str()),
        ];
        let body = catalog.get(lang, "mail.recording_ready.body", &args);
        let mail = Mail {
            to: user.email.clone(),
            reply_to: None,
            subject: catalog.get(lang, "mail.recording_ready.subject", &args),
            text: format!("{body}\n\n{link}\n"),
            html: format!(
                "<p>{}</p><p><a href=\"{link}\">{link}</a></p>",
                minijinja::HtmlEscape(&body),
                link = minijinja::HtmlEscape(&link)
            ),
            attachments: Vec::new(),
        };
        match mailer.send(&mail).await {
            Ok(()) => tracing::info!(
                meeting = ready.meeting_id,
                record_id = ready.record_id,
                "recording-ready mail sent"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "the recording-ready mail could not be sent; trying again later");
                failed = true;
            }
        }
    }
    if failed {
        // Sent again on the next round, for a day at most (the recipients that did get it may
        // get it twice).
        let _ = db.unmark_receipt(RECORDING_READY, &receipt.key).await;
    }
}
