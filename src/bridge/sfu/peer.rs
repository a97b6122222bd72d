//! The WebRTC side of a viewer session, on the `webrtc` crate: a receive-only peer that
//! answers the SFU's offer with VP8 (PT 96) and Opus (PT 111) only, NACK and RTCP reports,
//! and hands each remote track's packets to the subscription. Video tracks get a PLI when
//! they start, every second until a keyframe arrives, and whenever the subscriber asks.

use crate::bridge::{Item, RtpPacket, TrackKind, rtp};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::shared::marshal::Marshal;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder, register_default_interceptors,
};

/// A STUN or TURN server (from BBB's `stuns`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    /// A short-lived TURN password: never shown by `Debug`.
    pub credential: String,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field(
                "credential",
                &if self.credential.is_empty() {
                    ""
                } else {
                    "[redacted]"
                },
            )
            .finish()
    }
}

/// Where the peer listens and which servers help it through NATs.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    /// UDP addresses to bind (`0.0.0.0:0` binds every interface but loopback; tests give
    /// `127.0.0.1:0`).
    pub udp_addrs: Vec<String>,
    pub ice_servers: Vec<IceServer>,
    /// Longest wait for ICE gathering before answering with what was found.
    pub gathering_timeout: Duration,
}

impl Default for PeerSettings {
    fn default() -> Self {
        Self {
            udp_addrs: vec!["0.0.0.0:0".to_owned()],
            ice_servers: Vec::new(),
            gathering_timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) fn vp8() -> RTCRtpCodec {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![
            feedback("nack", ""),
            feedback("nack", "pli"),
            feedback("ccm", "fir"),
        ],
    }
}

pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: Vec::new(),
    }
}

/// A media engine that knows only what bbb-webrtc-sfu sends, with NACK and RTCP reports.
pub(crate) fn engine() -> Result<(MediaEngine, Registry), String> {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8(),
                payload_type: crate::bridge::appsrc::VP8_PAYLOAD_TYPE,
            },
            RtpCodecKind::Video,
        )
        .map_err(|e| e.to_string())?;
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: crate::bridge::appsrc::OPUS_PAYLOAD_TYPE,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| e.to_string())?;
    let registry =
        register_default_interceptors(Registry::new(), &mut engine).map_err(|e| e.to_string())?;
    Ok((engine, registry))
}

/// What the peer reports to the session's shell.
#[derive(Debug)]
pub enum PeerEvent {
    /// A local candidate (JSON as a browser's `RTCIceCandidate.toJSON()`).
    Candidate(Value),
    Connected,
    Failed(String),
}

struct Handler {
    events: mpsc::UnboundedSender<PeerEvent>,
    gathering: watch::Sender<RTCIceGatheringState>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json()
            && let Ok(value) = serde_json::to_value(init)
        {
            let _ = self.events.send(PeerEvent::Candidate(value));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let event = match state {
            RTCPeerConnectionState::Connected => PeerEvent::Connected,
            RTCPeerConnectionState::Failed => PeerEvent::Failed("ICE or DTLS failed".to_owned()),
            RTCPeerConnectionState::Disconnected => {
                PeerEvent::Failed("the media connection was lost".to_owned())
            }
            _ => return,
        };
        let _ = self.events.send(event);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

/// Builds a peer connection with the handler wired to channels.
pub(crate) async fn build(
    settings: &PeerSettings,
    engine: MediaEngine,
    registry: Registry,
) -> Result<
    (
        Arc<dyn PeerConnection>,
        mpsc::UnboundedReceiver<PeerEvent>,
        watch::Receiver<RTCIceGatheringState>,
        mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    ),
    String,
> {
    let servers = settings
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    let configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(servers)
        .build();
    let setting = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .build();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (tracks_tx, tracks) = mpsc::unbounded_channel();
    let (gathering_tx, gathering) = watch::channel(RTCIceGatheringState::New);
    let handler = Arc::new(Handler {
        events: events_tx,
        gathering: gathering_tx,
        tracks: tracks_tx,
    });
    let pc = PeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(setting)
        .with_handler(handler)
        .with_udp_addrs(settings.udp_addrs.clone())
        .build()
        .await
        .map_err(|e| format!("cannot open the media connection: {e}"))?;
    Ok((Arc::new(pc), events, gathering, tracks))
}

/// Waits (bounded) until ICE gathering completes, then reads the local description.
pub(crate) async fn local_sdp(
    pc: &Arc<dyn PeerConnection>,
    gathering: &mut watch::Receiver<RTCIceGatheringState>,
    timeout: Duration,
) -> Result<String, String> {
    let complete = gathering.wait_for(|s| *s == RTCIceGatheringState::Complete);
    let _ = tokio::time::timeout(timeout, complete).await;
    pc.local_description()
        .await
        .map(|d| d.sdp)
        .ok_or_else(|| "no local description".to_owned())
}

/// A receiving peer for one attempt.
pub struct Receiver {
    pc: Arc<dyn PeerConnection>,
    pub events: mpsc::UnboundedReceiver<PeerEvent>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Bumped to ask every video track for a keyframe.
    keyframe: Arc<watch::Sender<u64>>,
    tracks_task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Answers the SFU's offer; packets go to `items`. Returns the answer SDP (with the
    /// candidates: the SFU does not need trickle).
    pub async fn answer(
        settings: &PeerSettings,
        offer: &str,
        items: mpsc::Sender<Item>,
    ) -> Result<(Self, String), String> {
        let offer = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| format!("bad offer: {e}"))?;
        let (engine, registry) = engine()?;
        let (pc, events, mut gathering, mut tracks) = build(settings, engine, registry).await?;
        let negotiated = async {
            pc.set_remote_description(offer)
                .await
                .map_err(|e| format!("offer refused: {e}"))?;
            let answer = pc
                .create_answer(None)
                .await
                .map_err(|e| format!("no answer to the offer: {e}"))?;
            pc.set_local_description(answer)
                .await
                .map_err(|e| format!("answer refused: {e}"))?;
            local_sdp(&pc, &mut gathering, settings.gathering_timeout).await
        };
        let sdp = match negotiated.await {
            Ok(sdp) => sdp,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let keyframe = Arc::new(watch::channel(0u64).0);
        let wake = Arc::clone(&keyframe);
        let tracks_task = tokio::spawn(async move {
            let mut readers = Vec::new();
            while let Some(track) = tracks.recv().await {
                readers.push(tokio::spawn(read_track(
                    track,
                    items.clone(),
                    wake.subscribe(),
                )));
            }
            for reader in readers {
                reader.abort();
            }
        });
        Ok((
            Self {
                pc,
                events,
                readers: Vec::new(),
                keyframe,
                tracks_task: Some(tracks_task),
            },
            sdp,
        ))
    }

    /// Adds a candidate the SFU trickled.
    pub async fn add_candidate(&self, candidate: Value) -> Result<(), String> {
        let init: RTCIceCandidateInit =
            serde_json::from_value(candidate).map_err(|e| format!("bad candidate: {e}"))?;
        self.pc
            .add_ice_candidate(init)
            .await
            .map_err(|e| format!("candidate refused: {e}"))
    }

    /// Asks every video track's sender for a keyframe.
    pub fn request_keyframe(&self) {
        self.keyframe.send_modify(|n| *n += 1);
    }

    pub async fn close(mut self) {
        if let Some(task) = self.tracks_task.take() {
            task.abort();
        }
        for reader in self.readers.drain(..) {
            reader.abort();
        }
        let _ = self.pc.close().await;
    }
}

/// How often a PLI is repeated until the first keyframe arrives.
const PLI_UNTIL_KEYFRAME: Duration = Duration::from_secs(1);

async fn read_track(
    track: Arc<dyn TrackRemote>,
    items: mpsc::Sender<Item>,
    mut keyframe: watch::Receiver<u64>,
) {
    let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
    let kind = match track.kind().await {
        RtpCodecKind::Video => TrackKind::Video,
        _ => TrackKind::Audio,
    };
    let pli = || async {
        let packet = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        let _ = track.write_rtcp(vec![Box::new(packet)]).await;
    };
    let mut waiting_keyframe = kind == TrackKind::Video;
    let mut last_pli: Option<Instant> = None;
    loop {
        if waiting_keyframe && last_pli.is_none_or(|t| t.elapsed() >= PLI_UNTIL_KEYFRAME) {
            last_pli = Some(Instant::now());
            pli().await;
        }
        let event = tokio::select! {
            event = track.poll() => event,
            Ok(()) = keyframe.changed(), if kind == TrackKind::Video => {
                waiting_keyframe = true;
                last_pli = None;
                continue;
            }
            () = tokio::time::sleep(PLI_UNTIL_KEYFRAME), if waiting_keyframe => continue,
        };
        match event {
            Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                let Ok(data) = packet.marshal() else { continue };
                let data = data.freeze();
                if waiting_keyframe && rtp::starts_vp8_keyframe(&data) {
                    waiting_keyframe = false;
                }
                let item = Item::Rtp(RtpPacket {
                    kind,
                    data,
                    received: Instant::now(),
                });
                // A full queue drops the packet rather than stall the network side; the
                // jitter buffer and NACK deal with the gap.
                if let Err(mpsc::error::TrySendError::Closed(_)) = items.try_send(item) {
                    return;
                }
            }
            Some(TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError) | None => return,
            Some(_) => {}
        }
    }
}
