//! Webinars end to end on this machine: N webinars started at once by their owners, captured
//! by amphi (in this process) from the BBB simulator (a child process: this binary with
//! `--sim`), each with a presenter who shows slides and a camera. Reports, per live, the time
//! from the owner's start to the first playable segment, to the bot being in the meeting and
//! to the meeting's media reaching the live; then, over a window, whether every live keeps up
//! with real time (segments published per second of wall clock, frames dropped) and amphi's
//! CPU.
//!
//! `cargo bench --bench webinar_lives -- [--lives 3] [--seconds 30] [--preset veryfast] [--fps 25]`
//!
//! Bounded: it stops after the window and kills the simulator.

mod common;
#[path = "common/webinar.rs"]
mod webinar;

use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    lives: usize,
    seconds: u64,
    preset: String,
    fps: u32,
}

fn options() -> Options {
    Options {
        lives: common::arg("--lives", 3),
        seconds: common::arg("--seconds", 30),
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

struct Timing {
    first_segment: Duration,
    bot_in: Duration,
    media_in: Duration,
}

async fn run(o: Options) {
    let stack = webinar::Stack::start(&o.preset, o.fps, o.lives as u32).await;
    let (state, api) = (stack.state.clone(), Arc::clone(&stack.api));
    let mut meetings = Vec::new();
    for n in 0..o.lives {
        meetings.push(stack.webinar(&format!("Webinaire {n}")).await);
    }

    // Every owner starts at once.
    let started = Instant::now();
    for meeting in &meetings {
        state
            .webinars
            .start(meeting, chrono::Utc::now())
            .await
            .unwrap();
    }
    let bot_name = state.config.bot_name();
    let mut timings = Vec::new();
    for meeting in &meetings {
        let state = state.clone();
        let bot_name = bot_name.clone();
        let api = Arc::clone(&api);
        let meeting = meeting.clone();
        timings.push(tokio::spawn(async move {
            let live = loop {
                if let amphi::hls::Lookup::Live(live) = state.lives.lookup(&meeting.meeting_id) {
                    break live;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            // The three are watched together: each is timed when first seen.
            let rendition = live.rendition("720p").unwrap();
            let (mut first_segment, mut bot_in, mut media_in) = (None, None, None);
            while first_segment.is_none() || bot_in.is_none() || media_in.is_none() {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the live did not start"
                );
                if first_segment.is_none() && rendition.segment(0).is_some() {
                    first_segment = Some(started.elapsed());
                }
                if media_in.is_none() && live.stats.snapshot().frames_in > 0 {
                    media_in = Some(started.elapsed());
                }
                if bot_in.is_none() {
                    let info = api.get_meeting_info(&meeting.meeting_id).await;
                    if info.is_ok_and(|i| i.attendees.items.iter().any(|a| a.full_name == bot_name))
                    {
                        bot_in = Some(started.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let (first_segment, bot_in, media_in) =
                (first_segment.unwrap(), bot_in.unwrap(), media_in.unwrap());
            Timing {
                first_segment,
                bot_in,
                media_in,
            }
        }));
    }
    let mut results = Vec::new();
    for t in timings {
        results.push(t.await.unwrap());
    }
    println!(
        "webinar_lives: {} lives, {} fps, preset {}",
        o.lives, o.fps, o.preset
    );
    for (n, t) in results.iter().enumerate() {
        println!(
            "live {n}: start -> first playable segment {:.2} s; bot in the meeting {:.2} s; meeting media in the live {:.2} s",
            t.first_segment.as_secs_f64(),
            t.bot_in.as_secs_f64(),
            t.media_in.as_secs_f64()
        );
    }

    // Real time: over the window, each live publishes a segment per second of wall clock.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lives: Vec<Arc<amphi::hls::Live>> = meetings
        .iter()
        .map(|m| match state.lives.lookup(&m.meeting_id) {
            amphi::hls::Lookup::Live(live) => live,
            _ => panic!("the live vanished"),
        })
        .collect();
    let edges = |lives: &[Arc<amphi::hls::Live>]| -> Vec<(u64, amphi::hls::stats::Snapshot)> {
        lives
            .iter()
            .map(|l| {
                (
                    l.rendition("720p").unwrap().edge().map_or(0, |p| p.msn),
                    l.stats.snapshot(),
                )
            })
            .collect()
    };
    let before = edges(&lives);
    let cpu_before = common::cpu_seconds("self");
    let window_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let wall = window_start.elapsed().as_secs_f64();
    let cpu = (common::cpu_seconds("self") - cpu_before) / wall;
    let after = edges(&lives);
    for (n, ((msn0, s0), (msn1, s1))) in before.iter().zip(&after).enumerate() {
        let hd0 = s0.outputs.get("720p").copied().unwrap_or_default();
        let hd1 = s1.outputs.get("720p").copied().unwrap_or_default();
        let composed = s1.frames_composed - s0.frames_composed;
        let encoded = hd1.frames_out - hd0.frames_out;
        println!(
            "live {n}: {} segments in {wall:.1} s ({:.3} per second); 720p frames composed {composed}, encoded {encoded} ({:.1} fps, {} dropped before the encoder)",
            msn1 - msn0,
            (msn1 - msn0) as f64 / wall,
            encoded as f64 / wall,
            (hd1.frames_in - hd0.frames_in).saturating_sub(encoded)
        );
    }
    println!(
        "amphi_cpu_cores {cpu:.2} for {} lives ({:.2} per live); the simulator runs in another process",
        o.lives,
        cpu / o.lives as f64
    );
    for meeting in &meetings {
        let _ = api.end(&meeting.meeting_id).await;
    }
}
