//! The media bridge: what amphi receives from a meeting (listen-only audio, cameras, the
//! screenshare) as RTP packets, one [`Subscription`] per stream. [`MediaBridge`] is the seam:
//! bbb-webrtc-sfu today ([`sfu`]), a LiveKit bridge for BBB 4.0 later beside it. Packets come
//! out timestamped on arrival and [`appsrc`] turns them into GStreamer buffers with caps.

pub mod appsrc;
pub mod rtp;
pub mod sfu;

use bytes::Bytes;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What to receive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Media {
    /// The meeting's mixed audio (listen-only).
    Audio,
    /// One camera, by `user_camera.streamId`.
    Camera { stream_id: String },
    /// The screenshare, by `screenshare.voiceConf`.
    Screenshare { voice_conf: String, has_audio: bool },
}

impl Media {
    /// A short label for logs and errors (stream ids are not secrets).
    pub fn label(&self) -> String {
        match self {
            Self::Audio => "listen-only audio".to_owned(),
            Self::Camera { stream_id } => format!("camera {stream_id}"),
            Self::Screenshare { .. } => "screenshare".to_owned(),
        }
    }
}

/// Audio or video, as WebRTC tracks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Audio,
    Video,
}

/// One RTP packet as received (SRTP removed), stamped on arrival.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub kind: TrackKind,
    /// The whole RTP packet: header and payload.
    pub data: Bytes,
    pub received: Instant,
}

/// What happens to a subscription besides packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The SFU says media flows (`playStart`, `webRTCAudioSuccess`).
    Flowing,
    /// The attempt failed and another starts after `after` (2201 while a camera is being
    /// published, a dropped socket, media that never started).
    Retrying {
        attempt: u32,
        after: Duration,
        reason: String,
    },
    /// Something odd that changed nothing (an unknown message, a malformed frame).
    Warning(String),
    /// The subscription is over; nothing follows.
    Ended(EndReason),
}

/// Why a subscription ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndReason {
    #[error("unsubscribed")]
    Unsubscribed,
    /// `playStop`: the camera was turned off.
    #[error("the camera was turned off")]
    PublisherStopped,
    /// `stopSharing`: the presenter stopped sharing.
    #[error("the presenter stopped sharing their screen")]
    SharingStopped,
    #[error(transparent)]
    Failed(#[from] BridgeError),
}

/// Why media could not be received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("the SFU refused the {media}: {code}")]
    Refused { media: String, code: sfu::SfuCode },
    #[error("the {media} could not be received after {attempts} attempts; last error: {last}")]
    GaveUp {
        media: String,
        attempts: u32,
        last: String,
    },
    #[error(
        "the SFU refused the bot's session for the {media} (HTTP {status}): the session token or cookie is not valid"
    )]
    Unauthorized { media: String, status: u16 },
    #[error("the SFU's offer for the {media} is unusable: {reason}")]
    BadOffer { media: String, reason: String },
}

/// What a subscription yields.
#[derive(Debug, Clone)]
pub enum Item {
    Rtp(RtpPacket),
    Event(Event),
}

/// Packets queued per subscription before the oldest are dropped (about 4 s of 720p video).
pub const QUEUE: usize = 2048;

/// Control messages to a subscription's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Ask the sender for a keyframe (RTCP PLI).
    Keyframe,
    Stop,
}

/// A stream being received. Dropping it stops the subscription too.
pub struct Subscription {
    pub media: Media,
    items: mpsc::Receiver<Item>,
    control: mpsc::Sender<Control>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Subscription {
    /// Wires a subscription to the task serving it.
    pub fn new(
        media: Media,
        items: mpsc::Receiver<Item>,
        control: mpsc::Sender<Control>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self {
            media,
            items,
            control,
            task: Some(task),
        }
    }

    /// The next packet or event; `None` after [`Event::Ended`].
    pub async fn next(&mut self) -> Option<Item> {
        self.items.recv().await
    }

    /// Asks for a keyframe (the decoder lost one).
    pub fn request_keyframe(&self) {
        let _ = self.control.try_send(Control::Keyframe);
    }

    /// Stops receiving and waits until the SFU was told. Items not yet read are dropped.
    pub async fn unsubscribe(mut self) {
        // Closed first, so the task never waits for room in a queue nobody reads any more.
        self.items.close();
        let _ = self.control.send(Control::Stop).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.task.is_some() {
            let _ = self.control.try_send(Control::Stop);
        }
    }
}

/// A way to receive a meeting's media.
pub trait MediaBridge: Send + Sync {
    /// Starts receiving `media`; failures arrive as events on the subscription.
    fn subscribe(&self, media: Media) -> Subscription;
}
