//! The media bridge against the simulator's SFU, with real WebRTC on 127.0.0.1: amphi
//! subscribes to the listen-only audio, a camera and the screenshare, receives RTP for each,
//! and GStreamer pipelines fed by `appsrc` decode real VP8 pictures (the wall-clock stamp the
//! simulator drew is read back) and the Opus tone. Camera off and screenshare stop end their
//! subscriptions; each injected fault is survived by a retry or ends with a typed error.

use amphi::bbb::{BbbApi, BotJoin, Client, CreateParams, JoinParams, Role};
use amphi::bridge::appsrc::Feeder;
use amphi::bridge::sfu::{self, Identity, PeerSettings, SfuBridge, SfuConfig, Timing};
use amphi::bridge::{
    BridgeError, EndReason, Event, Item, Media, MediaBridge, Subscription, TrackKind,
};
use amphi::config::ChecksumAlgorithm;
use amphi::redact::Redacted;
use amphi::sim::{self, SfuFaults, SimOptions, media::TONE_HZ, stamp};
use gst::prelude::*;
use gst_video::prelude::VideoFrameExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "bridge-sim-secret";
const PATIENCE: Duration = Duration::from_secs(90);

pub(crate) struct Meeting {
    pub(crate) sim: sim::Running,
    pub(crate) id: String,
}

impl Meeting {
    pub(crate) async fn start(id: &str, faults: SfuFaults) -> (Self, Arc<dyn BbbApi>) {
        amphi::install_crypto_provider();
        let sim = sim::start(
            "127.0.0.1:0".parse().unwrap(),
            SimOptions {
                secret: Redacted::new(SECRET.to_owned()),
                sfu: faults,
                ..SimOptions::default()
            },
        )
        .await
        .unwrap();
        let api: Arc<dyn BbbApi> = Arc::new(
            Client::new(
                &sim.api_url(),
                Redacted::new(SECRET.to_owned()),
                ChecksumAlgorithm::Sha256,
            )
            .unwrap(),
        );
        api.create(&CreateParams {
            name: "Amphi de chimie".into(),
            meeting_id: id.into(),
            ..CreateParams::default()
        })
        .await
        .unwrap();
        let meeting = Self {
            sim,
            id: id.to_owned(),
        };
        meeting
            .events(serde_json::json!([
                {"type": "join", "name": "Prof. Curie", "role": "MODERATOR"},
                {"type": "presenter", "name": "Prof. Curie"},
            ]))
            .await;
        (meeting, api)
    }

    pub(crate) async fn events(&self, steps: serde_json::Value) {
        let answer = reqwest::Client::new()
            .post(format!(
                "http://{}/sim/meetings/{}/events",
                self.sim.addr, self.id
            ))
            .json(&steps)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204, "{}", answer.text().await.unwrap());
    }

    pub(crate) fn camera(&self) -> String {
        self.sim.state.meetings()[0]
            .users
            .iter()
            .find_map(|u| u.camera.clone())
            .expect("a camera is on")
    }

    pub(crate) fn voice_conf(&self) -> String {
        format!("{}-SCREENSHARE", self.sim.state.meetings()[0].voice_bridge)
    }

    /// Joins as a bot ("Live stream") with the external id `user_id`.
    pub(crate) async fn join_bot(&self, api: &Arc<dyn BbbApi>, user_id: &str) -> BotJoin {
        api.join_bot(&JoinParams {
            meeting_id: self.id.clone(),
            full_name: "Live stream".into(),
            role: Role::Moderator,
            user_id: Some(user_id.into()),
            create_time: None,
            avatar_url: None,
            bot: true,
        })
        .await
        .unwrap()
    }

    /// The SFU configuration of the bot that `joined`, from its session and `stuns`.
    pub(crate) async fn sfu_config(&self, api: &Arc<dyn BbbApi>, joined: &BotJoin) -> SfuConfig {
        SfuConfig::for_bot(
            api.as_ref(),
            &self.sim.api_url(),
            joined,
            "Live stream",
            vec!["127.0.0.1:0".into()],
        )
        .await
        .unwrap()
    }

    /// Joins as the bot and builds the bridge from its session and `stuns`.
    pub(crate) async fn bridge(&self, api: &Arc<dyn BbbApi>, timing: Timing) -> SfuBridge {
        let joined = self.join_bot(api, "amphi-live-1").await;
        let mut config = self.sfu_config(api, &joined).await;
        assert!(
            config.peer.ice_servers.is_empty(),
            "no STUN/TURN on loopback"
        );
        assert_eq!(config.url, format!("ws://{}/bbb-webrtc-sfu", self.sim.addr));
        config.timing = timing;
        SfuBridge::new(config)
    }
}

pub(crate) fn quick() -> Timing {
    Timing {
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        max_attempts: 6,
        flow_timeout: Duration::from_secs(20),
        ..Timing::default()
    }
}

/// What a decoder saw.
#[derive(Debug, Default)]
struct Seen {
    pictures: u64,
    stamps: Vec<u64>,
    width: u32,
    samples: u64,
    crossings: u64,
    last_sign: bool,
}

/// `appsrc` → jitter buffer → depayloader → decoder → `appsink`, counting what comes out.
struct Decoder {
    pipeline: gst::Pipeline,
    feeder: Feeder,
    seen: Arc<Mutex<Seen>>,
}

impl Decoder {
    fn new(kind: TrackKind) -> Self {
        amphi::bridge::appsrc::init().unwrap();
        let description = match kind {
            TrackKind::Video => {
                "appsrc name=src ! rtpjitterbuffer latency=200 ! rtpvp8depay ! vp8dec \
                 ! videoconvert ! video/x-raw,format=I420 ! appsink name=out sync=false"
            }
            TrackKind::Audio => {
                "appsrc name=src ! rtpjitterbuffer latency=200 ! rtpopusdepay ! opusdec \
                 ! audioconvert ! audio/x-raw,format=S16LE,channels=1,rate=48000 \
                 ! appsink name=out sync=false"
            }
        };
        let pipeline = gst::parse::launch(description)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let src = pipeline
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        let sink = pipeline
            .by_name("out")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let counting = Arc::clone(&seen);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let mut seen = counting.lock().unwrap();
                    let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    match kind {
                        TrackKind::Video => {
                            let info = gst_video::VideoInfo::from_caps(caps).unwrap();
                            let frame =
                                gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                                    .unwrap();
                            seen.pictures += 1;
                            seen.width = info.width();
                            let stride = frame.plane_stride()[0] as usize;
                            let luma = frame.plane_data(0).unwrap();
                            if let Some(ms) = stamp::read(
                                luma,
                                stride,
                                info.width() as usize,
                                info.height() as usize,
                            ) {
                                seen.stamps.push(ms);
                            }
                        }
                        TrackKind::Audio => {
                            let map = buffer.map_readable().unwrap();
                            for pair in map.chunks_exact(2) {
                                let sample = i16::from_le_bytes([pair[0], pair[1]]);
                                let sign = sample >= 0;
                                if seen.samples > 0 && sign != seen.last_sign && sign {
                                    seen.crossings += 1;
                                }
                                seen.last_sign = sign;
                                seen.samples += 1;
                            }
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let feeder = Feeder::new(src, kind);
        pipeline.set_state(gst::State::Playing).unwrap();
        Self {
            pipeline,
            feeder,
            seen,
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Feeds a subscription's packets of `kind` to a decoder until `enough` says so; returns the
/// events seen on the way.
async fn decode_until(
    subscription: &mut Subscription,
    decoder: &mut Decoder,
    kind: TrackKind,
    enough: impl Fn(&Seen) -> bool,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut packets = 0u64;
    tokio::time::timeout(PATIENCE, async {
        loop {
            match subscription.next().await {
                Some(Item::Rtp(packet)) if packet.kind == kind => {
                    packets += 1;
                    decoder.feeder.push(&packet).unwrap();
                    if enough(&decoder.seen.lock().unwrap()) {
                        return;
                    }
                }
                Some(Item::Rtp(_)) => {}
                Some(Item::Event(event)) => {
                    assert!(
                        !matches!(event, Event::Ended(_)),
                        "ended early: {event:?}, {events:?}"
                    );
                    events.push(event);
                }
                None => panic!("subscription closed; {events:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "not enough decoded from {} in time: {packets} packets, {:?}, events {events:?}",
            subscription.media.label(),
            decoder.seen.lock().unwrap()
        )
    });
    events
}

/// Waits for the subscription's end, ignoring packets.
async fn ended(subscription: &mut Subscription) -> EndReason {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match subscription.next().await {
                Some(Item::Event(Event::Ended(reason))) => return reason,
                Some(_) => {}
                None => panic!("closed without an end event"),
            }
        }
    })
    .await
    .expect("the subscription ends")
}

fn check_stamps(seen: &Seen, label: &str) {
    let now = stamp::now_ms();
    assert!(
        seen.stamps.len() >= 10,
        "{label}: {} stamps read of {} pictures",
        seen.stamps.len(),
        seen.pictures
    );
    for pair in seen.stamps.windows(2) {
        assert!(pair[0] <= pair[1], "{label}: stamps go forward: {pair:?}");
    }
    let last = *seen.stamps.last().unwrap();
    assert!(
        last <= now && now - last < 10_000,
        "{label}: stamp {last} is the wall clock (now {now})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_camera_and_screenshare_are_received_and_decoded() {
    let (meeting, api) = Meeting::start("bridge-all", SfuFaults::default()).await;
    meeting
        .events(serde_json::json!([
            {"type": "camera_on", "name": "Prof. Curie"},
            {"type": "screenshare_start"},
        ]))
        .await;
    let bridge = meeting.bridge(&api, quick()).await;

    let mut audio = bridge.subscribe(Media::Audio);
    let mut camera = bridge.subscribe(Media::Camera {
        stream_id: meeting.camera(),
    });
    let mut screen = bridge.subscribe(Media::Screenshare {
        voice_conf: meeting.voice_conf(),
        has_audio: false,
    });

    let mut tone = Decoder::new(TrackKind::Audio);
    let events = decode_until(&mut audio, &mut tone, TrackKind::Audio, |s| {
        s.samples >= 48_000
    })
    .await;
    assert!(events.contains(&Event::Flowing), "{events:?}");
    {
        let seen = tone.seen.lock().unwrap();
        // Positive-going zero crossings per second of a 440 Hz sine.
        let hz = seen.crossings as f64 * 48_000.0 / seen.samples as f64;
        assert!((hz - f64::from(TONE_HZ)).abs() < 25.0, "heard {hz:.0} Hz");
    }

    let mut pictures = Decoder::new(TrackKind::Video);
    let events = decode_until(&mut camera, &mut pictures, TrackKind::Video, |s| {
        s.stamps.len() >= 20
    })
    .await;
    assert!(events.contains(&Event::Flowing), "{events:?}");
    check_stamps(&pictures.seen.lock().unwrap(), "camera");
    assert_eq!(pictures.seen.lock().unwrap().width, 320);
    // A PLI went out when the track started, and another goes out on demand.
    let mut requests = meeting.sim.state.keyframe_requests();
    tokio::time::timeout(PATIENCE, requests.wait_for(|n| *n >= 1))
        .await
        .expect("a PLI when the camera track starts")
        .unwrap();
    let before = *requests.borrow();
    camera.request_keyframe();
    tokio::time::timeout(PATIENCE, requests.wait_for(|n| *n > before))
        .await
        .expect("a PLI when asked")
        .unwrap();

    let mut slides = Decoder::new(TrackKind::Video);
    decode_until(&mut screen, &mut slides, TrackKind::Video, |s| {
        s.stamps.len() >= 15
    })
    .await;
    check_stamps(&slides.seen.lock().unwrap(), "screenshare");
    assert_eq!(
        slides.seen.lock().unwrap().width,
        640,
        "the screenshare is its own stream"
    );

    meeting
        .events(serde_json::json!([{"type": "camera_off", "name": "Prof. Curie"}]))
        .await;
    assert_eq!(ended(&mut camera).await, EndReason::PublisherStopped);
    meeting
        .events(serde_json::json!([{"type": "screenshare_stop"}]))
        .await;
    assert_eq!(ended(&mut screen).await, EndReason::SharingStopped);
    assert!(camera.next().await.is_none(), "nothing after the end");

    audio.request_keyframe();
    audio.unsubscribe().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_stalled_ice_unknown_messages_and_drops_are_survived() {
    let faults = SfuFaults {
        refuse_not_found: 2,
        stall_ice: 1,
        unknown_messages: true,
    };
    let (meeting, api) = Meeting::start("bridge-faults", faults).await;
    meeting
        .events(serde_json::json!([{"type": "camera_on", "name": "Prof. Curie"}]))
        .await;
    let timing = Timing {
        flow_timeout: Duration::from_secs(4),
        ..quick()
    };
    let bridge = meeting.bridge(&api, timing).await;
    let mut camera = bridge.subscribe(Media::Camera {
        stream_id: meeting.camera(),
    });
    let mut pictures = Decoder::new(TrackKind::Video);
    let events = decode_until(&mut camera, &mut pictures, TrackKind::Video, |s| {
        s.stamps.len() >= 5
    })
    .await;
    let retries: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Retrying { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        retries
            .iter()
            .filter(|r| r.contains("MEDIA_NOT_FOUND, 2201"))
            .count(),
        2,
        "{events:?}"
    );
    assert!(
        retries.iter().any(|r| r.as_str() == "no media after 4 s"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning(w) if w.contains("simulatorSaysHello"))),
        "{events:?}"
    );

    // The SFU drops every socket: the subscription comes back by itself.
    meeting
        .events(serde_json::json!([{"type": "drop_media_sockets"}]))
        .await;
    let before = pictures.seen.lock().unwrap().stamps.len();
    let events = decode_until(&mut camera, &mut pictures, TrackKind::Video, move |s| {
        s.stamps.len() >= before + 10
    })
    .await;
    assert!(
        events.iter().any(|e| matches!(e, Event::Retrying { reason, .. } if reason.starts_with("the SFU socket closed"))),
        "{events:?}"
    );
    assert!(events.contains(&Event::Flowing), "{events:?}");
    camera.unsubscribe().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_camera_gives_up_and_a_forged_session_is_refused() {
    let (meeting, api) = Meeting::start("bridge-refusals", SfuFaults::default()).await;
    let timing = Timing {
        max_attempts: 3,
        ..quick()
    };
    let bridge = meeting.bridge(&api, timing.clone()).await;
    let mut ghost = bridge.subscribe(Media::Camera {
        stream_id: "w_nobody_x_y".into(),
    });
    match ended(&mut ghost).await {
        EndReason::Failed(BridgeError::GaveUp { attempts, last, .. }) => {
            assert_eq!(attempts, 3);
            assert!(last.contains("MEDIA_NOT_FOUND"), "{last}");
        }
        other => panic!("{other:?}"),
    }

    let forged = SfuBridge::new(SfuConfig {
        url: sfu::sfu_url(&meeting.sim.api_url()).unwrap(),
        session_token: Redacted::new("forged-token".into()),
        cookie: Some(Redacted::new("forged-cookie".into())),
        identity: Identity {
            user_name: "Intruder".into(),
            user_id: "w_intruder".into(),
        },
        peer: PeerSettings {
            udp_addrs: vec!["127.0.0.1:0".into()],
            ..PeerSettings::default()
        },
        timing,
    });
    let mut refused = forged.subscribe(Media::Audio);
    match ended(&mut refused).await {
        EndReason::Failed(BridgeError::Unauthorized { status, .. }) => assert_eq!(status, 401),
        other => panic!("{other:?}"),
    }
    let answer = api
        .stuns(&Redacted::new("forged-token".into()), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&answer, amphi::bbb::Error::Api { key: amphi::bbb::MessageKey::InvalidSession, message } if message == "Could not find conference."),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_get_errors_not_crashes() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (meeting, api) = Meeting::start("bridge-garbage", SfuFaults::default()).await;
    let joined = api
        .join_bot(&JoinParams {
            meeting_id: meeting.id.clone(),
            full_name: "Live stream".into(),
            role: Role::Moderator,
            user_id: Some("amphi-live-2".into()),
            create_time: None,
            avatar_url: None,
            bot: true,
        })
        .await
        .unwrap();
    let url = format!(
        "{}?sessionToken={}",
        sfu::sfu_url(&meeting.sim.api_url()).unwrap(),
        joined.session_token.expose()
    );
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Cookie",
        format!("JSESSIONID={}", joined.jsessionid.unwrap().expose())
            .parse()
            .unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text("{\"id\":\"start\",\"type\":\"video\""))
        .await
        .unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    let answer: serde_json::Value = serde_json::from_str(answer.to_text().unwrap()).unwrap();
    assert_eq!(answer["id"], "error");
    assert_eq!(answer["code"], 2300);
    socket
        .send(Message::text("{\"id\":\"ping\"}"))
        .await
        .unwrap();
    let pong = socket.next().await.unwrap().unwrap();
    assert_eq!(pong.to_text().unwrap(), "{\"id\":\"pong\"}");
    let oversized = format!("{{\"id\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(60_000));
    let _ = socket.send(Message::text(oversized)).await;
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "a frame over 51,200 bytes closes the socket"
    );
}

/// Log lines written while the bridge runs, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn session_tokens_cookies_and_turn_passwords_stay_out_of_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (meeting, api) = Meeting::start("bridge-logs", SfuFaults::default()).await;
    let (bridge, shown) = {
        let joined = meeting.join_bot(&api, "amphi-live-3").await;
        let mut config = meeting.sfu_config(&api, &joined).await;
        config.timing = quick();
        config.peer.ice_servers.push(sfu::IceServer {
            urls: vec!["turn:turn.example.org:3478".into()],
            username: "1795000000:amphi".into(),
            credential: "turn-password-of-the-day".into(),
        });
        // Unreachable TURN would slow gathering down: kept for Debug only.
        let shown = format!("{config:?}");
        config.peer.ice_servers.clear();
        (SfuBridge::new(config), shown)
    };
    let mut audio = bridge.subscribe(Media::Audio);
    let mut tone = Decoder::new(TrackKind::Audio);
    decode_until(&mut audio, &mut tone, TrackKind::Audio, |s| {
        s.samples >= 4_800
    })
    .await;
    meeting
        .events(serde_json::json!([{"type": "drop_media_sockets"}]))
        .await;
    let events = decode_until(&mut audio, &mut tone, TrackKind::Audio, |s| {
        s.samples >= 48_000
    })
    .await;
    assert!(
        events.iter().any(|e| matches!(e, Event::Retrying { .. })),
        "{events:?}"
    );
    audio.unsubscribe().await;

    let me = meeting.sim.state.meetings()[0]
        .users
        .iter()
        .find(|u| u.bot)
        .cloned()
        .unwrap();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("SFU subscription retrying"),
        "the logs are real: {logs}"
    );
    for (what, secret) in [
        ("session token", me.session_token.as_str()),
        ("cookie", me.jsessionid.as_str()),
        ("TURN password", "turn-password-of-the-day"),
    ] {
        assert!(!logs.contains(secret), "the {what} reached the logs");
        assert!(
            !shown.contains(secret),
            "the {what} is in Debug output: {shown}"
        );
    }
}
