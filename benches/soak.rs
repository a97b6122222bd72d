//! A soak run under a time bound: one webinar captured by amphi (in this process) from the BBB
//! simulator (a child process: this binary with `--sim`), an audience writing into the chat
//! and the presenter answering from the meeting, while faults are injected in turn (see
//! [`FAULTS`]): the bot's GraphQL socket dropped, its SFU (media) sockets dropped, dropped and
//! then refused with 2201, BBB's API answering 503, BBB's API not answering at all, the SFU
//! leaving the new sessions unanswered. For each fault: how long the live went without the
//! meeting's camera, how long until a message from the meeting reached the audience again, and
//! the longest an audience message took to reach the meeting. At the end, every message must
//! have been kept once, every audience message must have reached the meeting once, and the live
//! must have kept up with real time; otherwise the tool fails.
//!
//! `cargo bench --bench soak -- [--seconds 120] [--fault-every 15] [--rate 2] [--viewers 20]`
//! (CI runs a short variant, built in the test profile: `cargo test --bench soak -- --seconds
//! 100 --fault-every 12`, one of each fault, see `.ci/run`).

mod common;
#[path = "common/webinar.rs"]
mod webinar;

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The faults injected in turn: a name, the simulator events that make it, and whether it
/// touches the meeting's media (the camera's gap is measured until the next such fault).
const FAULTS: [(&str, &str, bool); 6] = [
    (
        "GraphQL socket dropped",
        r#"[{"type": "drop_sockets"}]"#,
        false,
    ),
    (
        "SFU sockets dropped",
        r#"[{"type": "drop_media_sockets"}]"#,
        true,
    ),
    (
        "SFU sockets dropped, the next 3 starts refused (2201)",
        r#"[{"type": "refuse_media", "count": 3}, {"type": "drop_media_sockets"}]"#,
        true,
    ),
    (
        "BBB API: the next 3 calls answered 503",
        r#"[{"type": "fail_api", "count": 3}]"#,
        false,
    ),
    (
        "BBB API: the next call held 25 s unanswered",
        r#"[{"type": "hang_api", "count": 1, "seconds": 25}]"#,
        false,
    ),
    (
        "SFU sockets dropped, the next 2 starts never answered",
        r#"[{"type": "silence_media", "count": 2}, {"type": "drop_media_sockets"}]"#,
        true,
    ),
];

struct Options {
    seconds: u64,
    fault_every: u64,
    rate: f64,
    viewers: usize,
    preset: String,
    fps: u32,
}

fn options() -> Options {
    Options {
        seconds: common::arg("--seconds", 120),
        fault_every: common::arg("--fault-every", 15),
        rate: common::arg("--rate", 2.0),
        viewers: common::arg("--viewers", 20),
        preset: common::arg("--preset", "veryfast".to_owned()),
        fps: common::arg("--fps", 25),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    webinar::simulate_if_asked(&runtime);
    runtime.block_on(run(options()));
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// When each message text was first seen by the steady viewer.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

/// A viewer that reads everything; the first one records what it sees.
async fn viewer(url: String, seen: Option<Seen>, reconnects: Arc<Mutex<u32>>) {
    loop {
        let Ok((mut socket, _)) = tokio_tungstenite::connect_async(&url).await else {
            *reconnects.lock().unwrap() += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        while let Some(Ok(message)) = socket.next().await {
            let (Some(seen), Message::Text(text)) = (&seen, message) else {
                continue;
            };
            for line in text.lines() {
                let event: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                let texts: Vec<&serde_json::Value> = match event["type"].as_str() {
                    Some("message") => vec![&event["message"]["text"]],
                    Some("history") => event["messages"]
                        .as_array()
                        .map(|m| m.iter().map(|m| &m["text"]).collect())
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                let mut seen = seen.lock().unwrap();
                for text in texts.into_iter().filter_map(|t| t.as_str()) {
                    seen.entry(text.to_owned()).or_insert_with(Instant::now);
                }
            }
        }
        *reconnects.lock().unwrap() += 1;
    }
}

/// Sends `text` as a guest and waits for the room to show it; reconnects and sends again when
/// the socket breaks (as the page does). Returns whether it was accepted.
async fn write(url: &str, socket: &mut Option<Socket>, text: &str) -> bool {
    for _ in 0..5 {
        if socket.is_none() {
            *socket = tokio_tungstenite::connect_async(url)
                .await
                .ok()
                .map(|s| s.0);
        }
        let Some(ws) = socket.as_mut() else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let frame = serde_json::json!({"type": "message", "text": text, "nickname": "Zoé"});
        if ws.send(Message::text(frame.to_string())).await.is_err() {
            *socket = None;
            continue;
        }
        let echoed = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(t) = message
                    && t.lines().any(|l| {
                        let e: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
                        e["type"] == "message" && e["message"]["text"] == text
                    })
                {
                    return true;
                }
            }
            false
        })
        .await;
        if echoed == Ok(true) {
            return true;
        }
        *socket = None;
    }
    false
}

/// The longest time between two increases of the live's count of the meeting's frames in
/// `[from, to)`, from the samples taken every 20 ms.
fn longest_gap(samples: &[(Instant, u64)], from: Instant, to: Instant) -> Duration {
    let mut longest = Duration::ZERO;
    let mut last_change = from;
    let mut last_value = None;
    for &(at, frames) in samples.iter().filter(|(at, _)| *at >= from && *at < to) {
        if last_value.is_some_and(|v| v != frames) {
            longest = longest.max(at - last_change);
            last_change = at;
        }
        last_value = Some(frames);
    }
    longest
}

async fn run(o: Options) {
    let stack = webinar::Stack::start(&o.preset, o.fps, 1).await;
    let meeting = stack.webinar("Soak").await;
    let id = meeting.meeting_id.clone();
    stack
        .state
        .webinars
        .start(&meeting, chrono::Utc::now())
        .await
        .unwrap();
    let live = stack.live(&meeting).await;
    let rendition = live.rendition("720p").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while live.stats.snapshot().meeting_frames_in == 0 {
        assert!(Instant::now() < deadline, "no meeting media in the live");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/live/{id}/chat", listener.local_addr().unwrap());
    let app = amphi::web::router(stack.state.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let seen: Seen = Arc::default();
    let reconnects = Arc::new(Mutex::new(0u32));
    let mut tasks = Vec::new();
    for n in 0..o.viewers {
        let record = (n == 0).then(|| Arc::clone(&seen));
        tasks.push(tokio::spawn(viewer(
            url.clone(),
            record,
            Arc::clone(&reconnects),
        )));
    }
    // The live's frames from the meeting (the camera), sampled.
    let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    tasks.push(tokio::spawn({
        let (live, samples) = (Arc::clone(&live), Arc::clone(&samples));
        async move {
            loop {
                let frames = live.stats.snapshot().meeting_frames_in;
                samples.lock().unwrap().push((Instant::now(), frames));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }));

    println!(
        "soak: {} s, a fault every {} s, {} audience messages/s, {} viewers, preset {}, {} fps",
        o.seconds, o.fault_every, o.rate, o.viewers, o.preset, o.fps
    );
    let started = Instant::now();
    let first_msn = rendition.edge().map_or(0, |p| p.msn);
    let mut next_fault = started + Duration::from_secs(o.fault_every);
    let mut fault_times: Vec<(usize, Instant, String)> = Vec::new();
    let mut audience: Vec<String> = Vec::new();
    // When each audience message was accepted, in the simulator's clock (ms since 1970).
    let mut accepted_ms: HashMap<String, (Instant, i64)> = HashMap::new();
    let mut refused = 0;
    let mut from_meeting: Vec<String> = Vec::new();
    // Guests write in turn: one guest may write three messages in two seconds, so each
    // writes one every two seconds at most.
    let writers = ((o.rate * 2.0).ceil() as usize).max(1);
    let mut sockets: Vec<Option<Socket>> = (0..writers).map(|_| None).collect();
    let every = Duration::from_secs_f64(1.0 / o.rate.max(0.01));
    let mut next_message = Instant::now();
    let mut next_answer = Instant::now();
    while started.elapsed() < Duration::from_secs(o.seconds) {
        let now = Instant::now();
        if now >= next_fault {
            let kind = fault_times.len() % FAULTS.len();
            let events: serde_json::Value = serde_json::from_str(FAULTS[kind].1).unwrap();
            stack.events(&id, events).await;
            // A message from the meeting right after the fault: how long until the audience
            // gets it is the chat's recovery.
            let probe = format!("après la panne {}", fault_times.len() + 1);
            stack
                .events(
                    &id,
                    serde_json::json!([{"type": "chat", "name": "Prof. Curie", "text": probe}]),
                )
                .await;
            from_meeting.push(probe.clone());
            fault_times.push((kind, Instant::now(), probe));
            next_fault += Duration::from_secs(o.fault_every);
        }
        if now >= next_answer {
            let text = format!("réponse {}", from_meeting.len() + 1);
            stack
                .events(
                    &id,
                    serde_json::json!([{"type": "chat", "name": "Prof. Curie", "text": text}]),
                )
                .await;
            from_meeting.push(text);
            next_answer += Duration::from_secs(3);
        }
        if now >= next_message {
            let n = audience.len() + refused;
            let text = format!("question {}", n + 1);
            let sent = (Instant::now(), amphi::clock::unix_ms());
            if write(&url, &mut sockets[n % writers], &text).await {
                accepted_ms.insert(text.clone(), sent);
                audience.push(text);
            } else {
                refused += 1;
            }
            next_message += every;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let last_msn = rendition.edge().map_or(0, |p| p.msn);

    // Everything settles: kept once in the database, audience messages in the meeting once.
    let settle = Instant::now() + Duration::from_secs(60);
    let expected: usize = audience.len() + from_meeting.len();
    let (kept, in_meeting) = loop {
        let kept: Vec<String> = stack
            .db
            .chat_history(&id, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        let chat: serde_json::Value =
            reqwest::get(format!("{}/sim/meetings/{id}/chat", stack.sim_url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        // The audience's messages in the meeting, with when they arrived there.
        let in_meeting: Vec<(String, i64)> = chat
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["sender_name"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("(live)"))
            })
            .filter_map(|m| Some((m["message"].as_str()?.to_owned(), m["time_ms"].as_i64()?)))
            .collect();
        if (kept.len() >= expected && in_meeting.len() >= audience.len()) || Instant::now() > settle
        {
            break (kept, in_meeting);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let samples = samples.lock().unwrap().clone();
    let seen = seen.lock().unwrap().clone();
    let ended = started + Duration::from_secs_f64(wall);
    // How long each audience message took to reach the meeting.
    let reached: HashMap<&str, i64> = in_meeting.iter().map(|(t, ms)| (t.as_str(), *ms)).collect();
    println!(
        "fault | live without the meeting's camera (longest gap) | meeting message → audience | audience → meeting (longest)"
    );
    for (n, (kind, at, probe)) in fault_times.iter().enumerate() {
        let (name, _, media) = FAULTS[*kind];
        let next = fault_times.get(n + 1).map_or(ended, |f| f.1);
        let next_media = fault_times[n + 1..]
            .iter()
            .find(|f| FAULTS[f.0].2)
            .map_or(ended, |f| f.1);
        let gap = longest_gap(&samples, *at, if media { next_media } else { next });
        let chat = seen.get(probe).map_or("never".to_owned(), |t| {
            format!("{:.2} s", (*t - *at).as_secs_f64())
        });
        let to_meeting = accepted_ms
            .iter()
            .filter(|(_, (sent, _))| *sent >= *at && *sent < next)
            .filter_map(|(text, (_, ms))| Some(reached.get(text.as_str())? - ms))
            .max()
            .map_or("—".to_owned(), |ms| {
                format!("{:.2} s", ms as f64 / 1000.0)
            });
        println!(
            "{name} | {:.2} s | {chat} | {to_meeting}",
            gap.as_secs_f64()
        );
    }
    let baseline = longest_gap(
        &samples,
        started,
        started + Duration::from_secs(o.fault_every.min(o.seconds)),
    );
    println!(
        "before any fault, the longest gap between camera frames: {:.2} s",
        baseline.as_secs_f64()
    );
    let segments_per_second = (last_msn - first_msn) as f64 / wall;
    println!(
        "live: {} segments in {wall:.1} s ({segments_per_second:.3} per second)",
        last_msn - first_msn
    );
    println!(
        "chat: {} audience messages accepted ({refused} refused), {} from the meeting; {} kept, {} in the meeting from the audience; viewer reconnections {}",
        audience.len(),
        from_meeting.len(),
        kept.len(),
        in_meeting.len(),
        reconnects.lock().unwrap()
    );
    server.abort();
    for task in tasks {
        task.abort();
    }
    // The meeting ends: the live ends with it, and its pipeline is brought down before the
    // process goes.
    let _ = stack.api.end(&id).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rendition.is_ended() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(live);
    drop(rendition);
    drop(stack);

    let count = |list: &[String], text: &str| list.iter().filter(|t| *t == text).count();
    let mut failures = Vec::new();
    for text in audience.iter().chain(&from_meeting) {
        if count(&kept, text) != 1 {
            failures.push(format!("{text:?} kept {} times", count(&kept, text)));
        }
    }
    let in_meeting: Vec<String> = in_meeting.into_iter().map(|(t, _)| t).collect();
    for text in &audience {
        if count(&in_meeting, text) != 1 {
            failures.push(format!(
                "{text:?} reached the meeting {} times",
                count(&in_meeting, text)
            ));
        }
    }
    if refused > 0 {
        failures.push(format!("{refused} audience messages were refused"));
    }
    if segments_per_second < 0.95 {
        failures.push(format!(
            "the live fell behind real time: {segments_per_second:.3} segments per second"
        ));
    }
    if !failures.is_empty() {
        eprintln!("soak FAILED:\n  {}", failures.join("\n  "));
        std::process::exit(1);
    }
    println!("soak passed: nothing lost, nothing twice, the live kept up");
}
