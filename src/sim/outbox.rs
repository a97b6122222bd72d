//! What the simulated BBB sends on its own: end callbacks, recording-ready callbacks and
//! webhook deliveries. One worker sends them in the order they were queued (so a hook never
//! sees `meeting-ended` before `user-left`), with the retry rules of the real senders, and logs
//! every delivery for inspection (`GET /sim/callbacks`).

use super::state::Inner;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Which sender a delivery imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryKind {
    /// `meta_endCallbackUrl` GET (bbb-web; retried).
    EndCallback,
    /// `meetingEndedURL` GET (bbb-web; retried).
    MeetingEndedUrl,
    /// `meta_bbb-recording-ready-url` POST (post-publish script; not retried).
    RecordingReady,
    /// A bbb-webhooks POST (retried; 401 counts as delivered).
    Webhook,
}

/// One delivery, once it succeeded or was given up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub kind: DeliveryKind,
    /// The URL without its query string (tokens and checksums stay out of the log).
    pub url: String,
    /// The webhook event id or the recording id, for readers of the log.
    pub subject: String,
    /// Last HTTP status, if any answer came.
    pub status: Option<u16>,
    pub attempts: u32,
    pub delivered: bool,
    pub error: Option<String>,
}

pub(crate) struct Outgoing {
    pub kind: DeliveryKind,
    pub url: String,
    /// `Some(form body)` for a POST.
    pub form: Option<String>,
    pub subject: String,
    /// The webhook this delivery is for: bbb-webhooks drops a (non-permanent) hook whose
    /// deliveries keep failing.
    pub hook_id: Option<u64>,
}

/// Delays between attempts; bbb-webhooks uses seconds, the simulator tenths of them.
const RETRY_DELAYS_MS: [u64; 3] = [100, 500, 2000];

/// The queue of outgoing calls.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    queue: mpsc::UnboundedSender<Outgoing>,
}

impl Outbox {
    pub fn start(inner: Arc<Mutex<Inner>>, delivered: broadcast::Sender<Delivery>) -> Self {
        let (queue, mut receiver) = mpsc::unbounded_channel::<Outgoing>();
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .unwrap_or_default();
        tokio::spawn(async move {
            while let Some(outgoing) = receiver.recv().await {
                let delivery = send(&http, &outgoing).await;
                if !delivery.delivered {
                    tracing::warn!(kind = ?delivery.kind, url = %delivery.url, error = ?delivery.error, status = ?delivery.status, "simulator: delivery failed");
                }
                {
                    let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
                    let given_up = !delivery.delivered && delivery.status != Some(401);
                    if let (Some(id), true) = (outgoing.hook_id, given_up) {
                        tracing::warn!(
                            hook_id = id,
                            "simulator: dropping a hook whose deliveries keep failing"
                        );
                        inner.hooks.retain(|h| h.id != id);
                    }
                    inner.deliveries.push(delivery.clone());
                }
                let _ = delivered.send(delivery);
            }
        });
        Self { queue }
    }

    pub fn send(&self, outgoing: Outgoing) {
        // The worker lives as long as the runtime; a closed queue means the simulator stopped.
        let _ = self.queue.send(outgoing);
    }
}

async fn send(http: &reqwest::Client, outgoing: &Outgoing) -> Delivery {
    let retries: &[u64] = match outgoing.kind {
        DeliveryKind::RecordingReady => &[],
        _ => &RETRY_DELAYS_MS,
    };
    let mut delivery = Delivery {
        kind: outgoing.kind,
        url: outgoing
            .url
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned(),
        subject: outgoing.subject.clone(),
        status: None,
        attempts: 0,
        delivered: false,
        error: None,
    };
    let mut delays = retries.iter();
    loop {
        delivery.attempts += 1;
        let request = match &outgoing.form {
            Some(body) => http
                .post(&outgoing.url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone()),
            None => http.get(&outgoing.url),
        };
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                delivery.status = Some(status.as_u16());
                delivery.error = None;
                let done = status.is_success()
                    || (outgoing.kind == DeliveryKind::Webhook && status.as_u16() == 401);
                if done {
                    delivery.delivered = status.is_success();
                    return delivery;
                }
            }
            Err(e) => delivery.error = Some(e.without_url().to_string()),
        }
        match delays.next() {
            Some(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            None => return delivery,
        }
    }
}
