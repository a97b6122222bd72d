//! Keeping amphi registered with bbb-webhooks. A non-permanent hook disappears when the BBB
//! server's Redis is flushed or when deliveries keep failing, so the registration is checked
//! with `hooks/list` on a timer and made again when it is missing.

use super::{BbbApi, Error};
use std::sync::Arc;
use std::time::Duration;

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The hook was there.
    Present { hook_id: String },
    /// The hook was missing and has been registered.
    Created { hook_id: String },
}

/// Makes sure a global hook (every meeting, every event, mapped data) posts to `callback_url`.
pub async fn ensure_registered(
    api: &dyn BbbApi,
    callback_url: &str,
) -> Result<Registration, Error> {
    let hooks = api.hooks_list(None).await?;
    if let Some(hook) = hooks
        .iter()
        .find(|h| h.callback_url == callback_url && h.meeting_id.is_none())
    {
        return Ok(Registration::Present {
            hook_id: hook.hook_id.clone(),
        });
    }
    let (created, existed) = api.hooks_create(callback_url, None, &[], false).await?;
    Ok(if existed {
        Registration::Present {
            hook_id: created.hook_id,
        }
    } else {
        Registration::Created {
            hook_id: created.hook_id,
        }
    })
}

/// Checks the registration every `every`, forever; failures are logged and retried at the
/// next tick.
pub async fn keep_registered(api: Arc<dyn BbbApi>, callback_url: String, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match ensure_registered(api.as_ref(), &callback_url).await {
            Ok(Registration::Created { hook_id }) => {
                tracing::info!(%hook_id, url = %callback_url, "registered with bbb-webhooks");
            }
            Ok(Registration::Present { hook_id }) => {
                tracing::debug!(%hook_id, "bbb-webhooks registration present");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot register with bbb-webhooks; retrying later");
            }
        }
    }
}
