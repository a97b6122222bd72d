//! CPU per live and capture → LL-HLS part latency, measured end to end on loopback.
//!
//! `cargo bench --bench live_capture -- [--seconds 60] [--warmup 10] [--preset veryfast] [--fps 25]`
//!
//! The BBB simulator runs in its own process (`amphi sim`), so this process holds only what a
//! live costs amphi: the media bridge (WebRTC), the live pipeline (decode, compose, 720p and
//! 360p x264, AAC, cmafmux) and the HLS origin. The simulator's camera stamps the wall clock
//! into each picture; the camera is shown full frame, and every frame of every 720p segment is
//! decoded again and its stamp read: latency = when the LL-HLS part holding that frame was
//! published − when the frame was drawn. CPU is the process's user + system time over the
//! measured window, in cores (1.0 = one core busy).

#[path = "common/capture.rs"]
mod capture;
mod common;

use amphi::media::Ladder;
use std::time::{Duration, Instant};

struct Options {
    seconds: u64,
    warmup: u64,
    preset: String,
    fps: u32,
}

fn options() -> Options {
    Options {
        seconds: common::arg("--seconds", 60),
        warmup: common::arg("--warmup", 10),
        preset: common::arg("--preset", "veryfast".to_owned()),
        fps: common::arg("--fps", 25),
    }
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(o));
}

async fn run(o: Options) {
    amphi::install_crypto_provider();
    amphi::media::init().unwrap();
    let ladder = Ladder {
        preset: o.preset.clone(),
        fps: o.fps,
        ..Ladder::default()
    };
    let camera = capture::CameraLive::start(&ladder, "bench").await;
    let rendition = &camera.rendition;
    let (published, watcher) = capture::watch_parts(rendition);

    tokio::time::sleep(Duration::from_secs(o.warmup)).await;
    let first_msn = rendition.edge().unwrap().msn + 1;
    let (cpu_start, wall_start) = (common::cpu_seconds("self"), Instant::now());
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let cpu = common::cpu_seconds("self") - cpu_start;
    let wall = wall_start.elapsed().as_secs_f64();
    let last_msn = rendition.edge().unwrap().msn.saturating_sub(1);
    watcher.abort();

    // Latency of every stamped frame of the segments made in the window.
    let (frames_total, latencies) =
        capture::capture_latencies(rendition, &published, first_msn..=last_msn);
    let cores = cpu / wall;
    println!(
        "live_capture: preset {}, {} fps, {} s measured after {} s of warm-up, {} segments, {} frames, {} with a stamp and a known part",
        o.preset,
        o.fps,
        o.seconds,
        o.warmup,
        last_msn + 1 - first_msn,
        frames_total,
        latencies.len()
    );
    println!("cpu_cores_per_live {cores:.3}");
    println!(
        "capture_to_part_seconds median {:.3} p95 {:.3} min {:.3} max {:.3}",
        common::percentile(&latencies, 0.5),
        common::percentile(&latencies, 0.95),
        latencies.first().copied().unwrap_or(f64::NAN),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    drop(camera);
}
