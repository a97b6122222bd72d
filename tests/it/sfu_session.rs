//! The SFU signalling session without sockets, driven by the flows in `tests/fixtures/sfu/`:
//! each fixture lists what amphi must do (`out`) and what happens to it (`in`), in order,
//! with frames as bbb-webrtc-sfu writes them. Every output must be listed: an unexpected one
//! fails the test.

use amphi::bridge::sfu::protocol::ClientMessage;
use amphi::bridge::sfu::{Identity, Input, Output, Session, Timing};
use amphi::bridge::{Event, Media};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sfu")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn media(spec: &Value) -> Media {
    if spec.get("audio").is_some() {
        Media::Audio
    } else if let Some(id) = spec.get("camera") {
        Media::Camera {
            stream_id: id.as_str().unwrap().to_owned(),
        }
    } else {
        let s = &spec["screenshare"];
        Media::Screenshare {
            voice_conf: s["voice_conf"].as_str().unwrap().to_owned(),
            has_audio: s["has_audio"].as_bool().unwrap(),
        }
    }
}

/// An output as the fixtures write it.
fn describe(output: &Output) -> Value {
    use serde_json::json;
    match output {
        Output::Connect => json!({ "connect": true }),
        Output::Send(message) => {
            json!({ "send": serde_json::from_str::<Value>(&message.to_text()).unwrap() })
        }
        Output::Close => json!({ "close": true }),
        Output::Offer(sdp) => json!({ "offer": sdp }),
        Output::RemoteCandidate(c) => json!({ "remote_candidate": c }),
        Output::DropPeer => json!({ "drop_peer": true }),
        Output::Keyframe => json!({ "keyframe": true }),
        Output::Event(event) => json!({ "event": match event {
            Event::Flowing => "flowing".to_owned(),
            Event::Warning(text) => format!("warning: {text}"),
            Event::Retrying { attempt, after, reason } => {
                format!("retrying {attempt} after {} ms: {reason}", after.as_millis())
            }
            Event::Ended(reason) => format!("ended: {reason}"),
        }}),
    }
}

fn play(name: &str) {
    let flow = fixture(name);
    let mut timing = Timing::default();
    if let Some(t) = flow.get("timing") {
        timing.first_backoff = Duration::from_millis(t["first_backoff_ms"].as_u64().unwrap());
        timing.max_attempts = t["max_attempts"].as_u64().unwrap() as u32;
    }
    let identity = Identity {
        user_name: "Live stream".to_owned(),
        user_id: "w_livebot".to_owned(),
    };
    let mut session = Session::new(media(&flow["media"]), identity, timing);
    let mut now = Instant::now();
    for (index, step) in flow["steps"].as_array().unwrap().iter().enumerate() {
        if let Some(expected) = step.get("out") {
            let output = session
                .poll_output()
                .unwrap_or_else(|| panic!("{name} step {index}: no output, expected {expected}"));
            assert_eq!(&describe(&output), expected, "{name} step {index}");
            if output == Output::Connect {
                session.handle(now, Input::Connected);
            }
            continue;
        }
        if let Some(output) = session.poll_output() {
            panic!(
                "{name} step {index}: unexpected output {}",
                describe(&output)
            );
        }
        let input = &step["in"];
        let handled = if let Some(frame) = input.get("frame") {
            Input::Frame(frame.to_string())
        } else if let Some(raw) = input.get("raw") {
            Input::Frame(raw.as_str().unwrap().to_owned())
        } else if let Some(sdp) = input.get("answer") {
            Input::Answer(sdp.as_str().unwrap().to_owned())
        } else if let Some(c) = input.get("local_candidate") {
            Input::LocalCandidate(c.clone())
        } else if let Some(ms) = input.get("tick_ms") {
            now += Duration::from_millis(ms.as_u64().unwrap());
            Input::Tick
        } else if input.get("stop").is_some() {
            Input::Stop
        } else {
            panic!("{name} step {index}: unknown input {input}");
        };
        session.handle(now, handled);
    }
    if let Some(output) = session.poll_output() {
        panic!(
            "{name}: unexpected output at the end: {}",
            describe(&output)
        );
    }
}

#[test]
fn listen_only_audio() {
    play("audio.json");
}

#[test]
fn camera_viewer() {
    play("camera.json");
}

#[test]
fn screenshare_viewer() {
    play("screenshare.json");
}

#[test]
fn camera_not_found_is_retried_with_backoff() {
    play("camera-not-found.json");
}

#[test]
fn refusal_is_final_and_oddities_change_nothing() {
    play("refused.json");
}

#[test]
fn every_fixture_frame_amphi_sends_parses_back_to_the_same_message() {
    for name in [
        "audio.json",
        "camera.json",
        "screenshare.json",
        "camera-not-found.json",
        "refused.json",
    ] {
        for step in fixture(name)["steps"].as_array().unwrap() {
            if let Some(sent) = step.pointer("/out/send") {
                let message = ClientMessage::parse(&sent.to_string()).unwrap();
                let back: Value = serde_json::from_str(&message.to_text()).unwrap();
                assert_eq!(&back, sent, "{name}");
            }
        }
    }
}

fn session(media: Media, timing: Timing) -> (Session, Instant) {
    let identity = Identity {
        user_name: "Live stream".to_owned(),
        user_id: "w_livebot".to_owned(),
    };
    let mut s = Session::new(media, identity, timing);
    assert_eq!(s.poll_output(), Some(Output::Connect));
    let now = Instant::now();
    s.handle(now, Input::Connected);
    assert!(matches!(s.poll_output(), Some(Output::Send(_))));
    (s, now)
}

fn drain(s: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

#[test]
fn a_start_left_unanswered_is_tried_again_sooner_and_longer_each_time() {
    let timing = Timing {
        answer_timeout: Duration::from_secs(5),
        first_backoff: Duration::from_secs(1),
        max_attempts: 3,
        ..Timing::default()
    };
    let (mut s, start) = session(Media::Audio, timing);
    // The SFU says nothing: the first attempt ends after 5 s, not the 20 s of media flowing.
    assert_eq!(s.next_timer(), Some(start + Duration::from_secs(5)));
    s.handle(start + Duration::from_secs(4), Input::Tick);
    assert_eq!(drain(&mut s), vec![]);
    let first_end = start + Duration::from_secs(5);
    s.handle(first_end, Input::Tick);
    let outputs = drain(&mut s);
    assert_eq!(outputs[0], Output::Close);
    assert!(
        matches!(&outputs[1], Output::Event(Event::Retrying { attempt: 2, reason, .. }) if reason == "the SFU did not answer the start in 5 s"),
        "{outputs:?}"
    );
    // The second attempt waits twice as long, and an answer within it is taken.
    let again = first_end + Duration::from_secs(1);
    s.handle(again, Input::Tick);
    assert_eq!(s.poll_output(), Some(Output::Connect));
    s.handle(again, Input::Connected);
    assert!(matches!(s.poll_output(), Some(Output::Send(_))));
    assert_eq!(s.next_timer(), Some(again + Duration::from_secs(10)));
    s.handle(again + Duration::from_secs(8), Input::Tick);
    assert_eq!(drain(&mut s), vec![]);
    s.handle(
        again + Duration::from_secs(8),
        Input::Frame(
            r#"{"type":"audio","id":"startResponse","response":"accepted","sdpAnswer":"v=0"}"#
                .into(),
        ),
    );
    assert_eq!(s.poll_output(), Some(Output::Offer("v=0".into())));
    // From there on, the media's own deadline (20 s from the start) holds, not the answer's.
    s.handle(again + Duration::from_secs(12), Input::Tick);
    assert_eq!(drain(&mut s), vec![]);
    s.handle(again + Duration::from_secs(20), Input::Tick);
    let outputs = drain(&mut s);
    assert!(
        outputs.iter().any(|o| matches!(o, Output::Event(Event::Retrying { attempt: 3, reason, .. }) if reason == "no media after 20 s")),
        "{outputs:?}"
    );
}

#[test]
fn media_that_never_flows_is_tried_again_then_given_up() {
    let timing = Timing {
        flow_timeout: Duration::from_secs(5),
        max_attempts: 2,
        ..Timing::default()
    };
    let (mut s, start) = session(Media::Audio, timing);
    s.handle(
        start,
        Input::Frame(
            r#"{"type":"audio","id":"startResponse","response":"accepted","sdpAnswer":"v=0"}"#
                .into(),
        ),
    );
    s.handle(start, Input::Answer("v=0 answer".into()));
    drain(&mut s);
    assert_eq!(s.next_timer(), Some(start + Duration::from_secs(5)));
    s.handle(start + Duration::from_secs(5), Input::Tick);
    let outputs = drain(&mut s);
    assert_eq!(outputs[0], Output::DropPeer);
    assert_eq!(outputs[1], Output::Close);
    assert!(
        matches!(&outputs[2], Output::Event(Event::Retrying { attempt: 2, reason, .. }) if reason == "no media after 5 s"),
        "{outputs:?}"
    );
    let retry = s.next_timer().unwrap();
    s.handle(retry, Input::Tick);
    assert_eq!(s.poll_output(), Some(Output::Connect));
    s.handle(retry, Input::Closed("connection refused".into()));
    let outputs = drain(&mut s);
    let Some(Output::Event(Event::Ended(reason))) = outputs.last() else {
        panic!("{outputs:?}");
    };
    assert_eq!(
        reason.to_string(),
        "the listen-only audio could not be received after 2 attempts; last error: the SFU socket closed: connection refused"
    );
    assert!(s.is_stopped());
    s.handle(retry, Input::Tick);
    assert_eq!(s.poll_output(), None, "a stopped session stays quiet");
}

#[test]
fn keepalive_pings_and_a_silent_sfu_is_left() {
    let timing = Timing::default();
    let (mut s, start) = session(Media::Audio, timing.clone());
    s.handle(
        start,
        Input::Frame(
            r#"{"type":"audio","id":"startResponse","response":"accepted","sdpAnswer":"v=0"}"#
                .into(),
        ),
    );
    s.handle(start, Input::Answer("a".into()));
    s.handle(
        start,
        Input::Frame(
            r#"{"type":"audio","id":"webRTCAudioSuccess","success":"MEDIA_FLOWING"}"#.into(),
        ),
    );
    drain(&mut s);
    let ping_at = s.next_timer().unwrap();
    assert_eq!(ping_at, start + timing.keepalive);
    s.handle(ping_at, Input::Tick);
    assert_eq!(
        drain(&mut s)
            .into_iter()
            .map(|o| match o {
                Output::Send(m) => m.to_text(),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>(),
        vec![r#"{"id":"ping"}"#.to_owned()]
    );
    // Nothing at all from the SFU for three intervals: the socket is given up.
    s.handle(start + timing.keepalive * 3, Input::Tick);
    let outputs = drain(&mut s);
    assert!(
        outputs.iter().any(|o| matches!(o, Output::Event(Event::Retrying { reason, .. }) if reason == "the SFU stopped answering")),
        "{outputs:?}"
    );
}

#[test]
fn a_camera_unsubscribed_is_stopped_with_its_message() {
    let (mut s, now) = session(
        Media::Camera {
            stream_id: "cam".into(),
        },
        Timing::default(),
    );
    s.handle(now, Input::Stop);
    let sent: Vec<String> = drain(&mut s)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m.to_text()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        vec![r#"{"id":"stop","type":"video","role":"viewer","cameraId":"cam"}"#.to_owned()]
    );
}

#[test]
fn an_unusable_offer_and_a_refused_socket_end_with_typed_errors() {
    let (mut s, now) = session(Media::Audio, Timing::default());
    s.handle(
        now,
        Input::Frame(
            r#"{"type":"audio","id":"startResponse","response":"accepted","sdpAnswer":"garbage"}"#
                .into(),
        ),
    );
    s.handle(
        now,
        Input::OfferRejected("bad offer: SdpInvalidSyntax".into()),
    );
    let outputs = drain(&mut s);
    let Some(Output::Event(Event::Ended(reason))) = outputs.last() else {
        panic!("{outputs:?}");
    };
    assert_eq!(
        reason.to_string(),
        "the SFU's offer for the listen-only audio is unusable: bad offer: SdpInvalidSyntax"
    );

    let identity = Identity {
        user_name: "Live stream".into(),
        user_id: "w_livebot".into(),
    };
    let mut s = Session::new(Media::Audio, identity, Timing::default());
    assert_eq!(s.poll_output(), Some(Output::Connect));
    s.handle(now, Input::Refused(401));
    let outputs = drain(&mut s);
    let Some(Output::Event(Event::Ended(reason))) = outputs.last() else {
        panic!("{outputs:?}");
    };
    assert!(reason.to_string().contains("HTTP 401"), "{reason}");
}
