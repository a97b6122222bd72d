//! The HLS origin under load, side by side with nginx, on loopback.
//!
//! `cargo bench --bench hls_load -- [--seconds 10] [--connections 64] [--rounds 3] [--viewers 500]`
//!
//! Two measurements, each bounded in time:
//!
//! 1. **Plain segment GETs, amphi against nginx.** amphi's origin (the same router `amphi
//!    serve` mounts, in this process, two worker threads) holds a live of 1 s segments of
//!    2.5 Mbit/s (about 312 KB each, four parts); the same bytes are written to files that
//!    nginx (Debian's, started here with its own configuration, `sendfile on`, access log off)
//!    serves under the same paths. `wrk` (Debian's) then fetches segments from each server in
//!    turn, `--rounds` times, alternating which goes first; the report gives requests per
//!    second, throughput and latency percentiles, and the ratio amphi / nginx.
//! 2. **LL-HLS viewers** (`--viewers N`, amphi only: nginx has no blocking reloads). A feeder
//!    publishes a part every 250 ms as a live does; each simulated viewer asks the blocking
//!    playlist reload for the next part (`_HLS_msn`, `_HLS_part`), then GETs that part, as
//!    hls.js in low-latency mode does. Reported: how long after a part was published each
//!    viewer had it (publication → part received), the blocking reloads' and part GETs'
//!    latency, requests per second and bytes served.
//!
//! Needs `nginx` and `wrk`: `scripts/bench-deps.sh` installs them (as root).

mod common;

use amphi::hls::playlist::Variant;
use amphi::hls::{AudioInfo, Live, Lives, WindowConfig};
use bytes::Bytes;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    seconds: u64,
    connections: u32,
    rounds: u32,
    viewers: usize,
}

fn options() -> Options {
    Options {
        seconds: common::arg("--seconds", 10),
        connections: common::arg("--connections", 64),
        rounds: common::arg("--rounds", 3),
        viewers: common::arg("--viewers", 500),
    }
}

const SLUG: &str = "bench";
const PART_BYTES: usize = 78_125; // 250 ms at 2.5 Mbit/s
const PARTS: usize = 4;

/// Bytes that look like media to nobody but have the right size.
fn part(msn: u64, index: usize) -> Bytes {
    let seed = (msn as usize * PARTS + index) as u8;
    Bytes::from(
        (0..PART_BYTES)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

fn live() -> Arc<Live> {
    let variants = vec![Variant {
        name: "720p".to_owned(),
        bandwidth: 2_750_000,
        codecs: "avc1.4d401f".to_owned(),
        width: 1280,
        height: 720,
        frame_rate: 25.0,
    }];
    let audio = AudioInfo {
        name: "audio".to_owned(),
        codecs: "mp4a.40.2".to_owned(),
        bandwidth: 128_000,
    };
    Arc::new(Live::new(SLUG, variants, audio, WindowConfig::default()))
}

/// Publishes segment `msn` whole (its four parts).
fn publish(live: &Live, msn: u64) {
    let rendition = live.rendition("720p").expect("720p");
    for index in 0..PARTS {
        rendition.push_part(
            part(msn, index),
            0.25,
            index == 0,
            index == 0,
            amphi::clock::unix_ms(),
        );
    }
}

/// What `wrk` printed, the numbers kept.
#[derive(Debug, Clone, Default)]
struct WrkRun {
    requests_per_second: f64,
    megabytes_per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn wrk_duration_ms(text: &str) -> f64 {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text, "ms"), |at| text.split_at(at));
    let value: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, options: &Options) -> WrkRun {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", options.connections),
            &format!("-d{}s", options.seconds),
            "--latency",
            url,
        ])
        .output()
        .expect("wrk runs (scripts/bench-deps.sh installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut run = WrkRun::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", value] => run.requests_per_second = value.parse().unwrap_or(0.0),
            ["Transfer/sec:", value] => {
                let mb = if let Some(v) = value.strip_suffix("GB") {
                    v.parse::<f64>().unwrap_or(0.0) * 1024.0
                } else if let Some(v) = value.strip_suffix("MB") {
                    v.parse().unwrap_or(0.0)
                } else if let Some(v) = value.strip_suffix("KB") {
                    v.parse::<f64>().unwrap_or(0.0) / 1024.0
                } else {
                    0.0
                };
                run.megabytes_per_second = mb;
            }
            ["50%", value] => run.p50_ms = wrk_duration_ms(value),
            ["90%", value] => run.p90_ms = wrk_duration_ms(value),
            ["99%", value] => run.p99_ms = wrk_duration_ms(value),
            ["Non-2xx", "or", "3xx", "responses:", value] => {
                run.errors += value.parse::<u64>().unwrap_or(0);
            }
            ["Socket", "errors:", ..] => {
                run.errors += line
                    .split(',')
                    .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    assert!(
        run.requests_per_second > 0.0,
        "wrk printed nothing usable:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    run
}

/// nginx with its own configuration, serving `root` on 127.0.0.1:`port`; killed when dropped.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would leave them running).
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn nginx(dir: &std::path::Path, port: u16) -> Nginx {
    let conf = dir.join("nginx.conf");
    let root = dir.join("www");
    let temp = dir.join("temp");
    std::fs::create_dir_all(&temp).unwrap();
    // The same machine's two cores for both servers: one worker each side would favour
    // nobody, `auto` is what an operator leaves.
    let text = format!(
        "daemon off;\nworker_processes auto;\npid {pid};\nerror_log stderr warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n\
           client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n\
           fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n\
           types {{ video/iso.segment m4s; application/vnd.apple.mpegurl m3u8; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    root {root};\n\
             location / {{ add_header Cache-Control \"public, max-age=31536000, immutable\"; add_header Access-Control-Allow-Origin *; }}\n  }}\n}}\n",
        pid = dir.join("nginx.pid").display(),
        temp = temp.display(),
        root = root.display(),
    );
    std::fs::write(&conf, text).unwrap();
    let child = Command::new("nginx")
        .args(["-e", "stderr", "-p"])
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx runs (scripts/bench-deps.sh installs it)");
    // Ready when it answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    common::percentile(&values, 0.5)
}

/// Phase 1: plain segment GETs, amphi and nginx in turn.
fn segments_against_nginx(amphi_port: u16, live: &Live, options: &Options) {
    let dir = tempfile::tempdir().unwrap();
    let rendition = live.rendition("720p").unwrap();
    let msn = rendition.complete_segments()[2].msn;
    let path = format!("live/{SLUG}/hls/720p/seg-{msn}.m4s");
    let bytes: Vec<u8> = rendition
        .segment(msn)
        .unwrap()
        .iter()
        .flat_map(|p| p.iter().copied())
        .collect();
    let file = dir.path().join("www").join(&path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, &bytes).unwrap();
    let nginx_port = free_port();
    let _nginx = nginx(dir.path(), nginx_port);
    let amphi_url = format!("http://127.0.0.1:{amphi_port}/{path}");
    let nginx_url = format!("http://127.0.0.1:{nginx_port}/{path}");
    // Same bytes from both.
    for url in [&amphi_url, &nginx_url] {
        let output = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_download}",
                url,
            ])
            .output();
        if let Ok(output) = output {
            let text = String::from_utf8_lossy(&output.stdout);
            assert_eq!(text, format!("200 {}", bytes.len()), "{url}");
        }
    }
    println!(
        "segment GETs: {} bytes each, {} connections, {} s per run, {} rounds",
        bytes.len(),
        options.connections,
        options.seconds,
        options.rounds
    );
    let mut amphi_runs = Vec::new();
    let mut nginx_runs = Vec::new();
    for round in 0..options.rounds {
        let order: [(&str, &String); 2] = if round % 2 == 0 {
            [("amphi", &amphi_url), ("nginx", &nginx_url)]
        } else {
            [("nginx", &nginx_url), ("amphi", &amphi_url)]
        };
        for (name, url) in order {
            let run = wrk(url, options);
            println!(
                "  round {} {name:5}: {:>9.0} req/s {:>8.1} MB/s  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  errors {}",
                round + 1,
                run.requests_per_second,
                run.megabytes_per_second,
                run.p50_ms,
                run.p90_ms,
                run.p99_ms,
                run.errors
            );
            if name == "amphi" {
                amphi_runs.push(run);
            } else {
                nginx_runs.push(run);
            }
        }
    }
    let rps = |runs: &[WrkRun]| median(runs.iter().map(|r| r.requests_per_second).collect());
    let p99 = |runs: &[WrkRun]| median(runs.iter().map(|r| r.p99_ms).collect());
    let (a, n) = (rps(&amphi_runs), rps(&nginx_runs));
    println!(
        "median: amphi {a:.0} req/s (p99 {:.2} ms), nginx {n:.0} req/s (p99 {:.2} ms): amphi / nginx = {:.2}",
        p99(&amphi_runs),
        p99(&nginx_runs),
        a / n
    );
}

/// Phase 2: LL-HLS viewers against amphi while a feeder publishes parts in real time.
async fn low_latency_viewers(port: u16, live: Arc<Live>, options: &Options) {
    let rendition = live.rendition("720p").unwrap();
    let seconds = options.seconds;
    // Part publication times by (msn, part), for the viewers' latency.
    let published: Arc<std::sync::Mutex<std::collections::HashMap<(u64, usize), Instant>>> =
        Arc::default();
    let feeder = {
        let rendition = Arc::clone(&rendition);
        let published = Arc::clone(&published);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut index = 0usize;
            let mut msn = rendition.edge().map_or(0, |e| e.msn + 1);
            loop {
                tick.tick().await;
                let at = rendition.push_part(
                    part(msn, index),
                    0.25,
                    index == 0,
                    index == 0,
                    amphi::clock::unix_ms(),
                );
                published
                    .lock()
                    .unwrap()
                    .insert((at.msn, at.part), Instant::now());
                index += 1;
                if index == PARTS {
                    index = 0;
                    msn += 1;
                }
            }
        })
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.viewers)
        .build()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(seconds);
    let base = format!("http://127.0.0.1:{port}/live/{SLUG}/hls/720p");
    let mut tasks = Vec::new();
    for _ in 0..options.viewers {
        let client = client.clone();
        let base = base.clone();
        let rendition = Arc::clone(&rendition);
        let published = Arc::clone(&published);
        tasks.push(tokio::spawn(async move {
            let mut delivery = Vec::new();
            let mut reloads = Vec::new();
            let mut gets = Vec::new();
            let mut bytes = 0u64;
            let mut failures = 0u64;
            let after_edge = |rendition: &amphi::hls::Rendition| {
                rendition.edge().map_or((0, 0), |e| {
                    if e.part + 1 >= PARTS {
                        (e.msn + 1, 0)
                    } else {
                        (e.msn, e.part + 1)
                    }
                })
            };
            let mut next = after_edge(&rendition);
            while Instant::now() < end {
                let (msn, part) = next;
                let started = Instant::now();
                let reload = client
                    .get(format!("{base}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"))
                    .send()
                    .await;
                let Ok(reload) = reload else {
                    failures += 1;
                    continue;
                };
                if !reload.status().is_success() {
                    failures += 1;
                    next = after_edge(&rendition);
                    continue;
                }
                let playlist = reload.bytes().await.unwrap_or_default();
                bytes += playlist.len() as u64;
                reloads.push(started.elapsed().as_secs_f64() * 1000.0);
                // The playlist names the part: fetch it as a player does.
                let part_started = Instant::now();
                let answer = client
                    .get(format!("{base}/part-{msn}.{part}.m4s"))
                    .send()
                    .await;
                match answer {
                    Ok(answer) if answer.status().is_success() => {
                        let body = answer.bytes().await.unwrap_or_default();
                        bytes += body.len() as u64;
                        gets.push(part_started.elapsed().as_secs_f64() * 1000.0);
                        if let Some(at) = published.lock().unwrap().get(&(msn, part)) {
                            delivery.push(at.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    _ => failures += 1,
                }
                next = if part + 1 >= PARTS {
                    (msn + 1, 0)
                } else {
                    (msn, part + 1)
                };
            }
            (delivery, reloads, gets, bytes, failures)
        }));
    }
    let mut delivery = Vec::new();
    let mut reloads = Vec::new();
    let mut gets = Vec::new();
    let mut bytes = 0u64;
    let mut failures = 0u64;
    for task in tasks {
        let (d, r, g, b, f) = task.await.unwrap();
        delivery.extend(d);
        reloads.extend(r);
        gets.extend(g);
        bytes += b;
        failures += f;
    }
    feeder.abort();
    for values in [&mut delivery, &mut reloads, &mut gets] {
        values.sort_by(f64::total_cmp);
    }
    let requests = reloads.len() + gets.len();
    println!(
        "LL-HLS viewers: {} viewers, {seconds} s, a part every 250 ms",
        options.viewers
    );
    println!(
        "  part published → received by a viewer: p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms ({} parts received)",
        common::percentile(&delivery, 0.5),
        common::percentile(&delivery, 0.95),
        common::percentile(&delivery, 0.99),
        delivery.last().copied().unwrap_or(f64::NAN),
        delivery.len()
    );
    println!(
        "  blocking reload (includes the wait for the part): p50 {:.1} ms  p99 {:.1} ms; part GET: p50 {:.2} ms  p99 {:.2} ms",
        common::percentile(&reloads, 0.5),
        common::percentile(&reloads, 0.99),
        common::percentile(&gets, 0.5),
        common::percentile(&gets, 0.99)
    );
    println!(
        "  {:.0} requests/s, {:.1} MB/s served, {failures} failed requests",
        requests as f64 / seconds as f64,
        bytes as f64 / seconds as f64 / 1_048_576.0
    );
}

fn main() {
    amphi::install_crypto_provider();
    let options = options();
    for tool in ["nginx", "wrk"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!("{tool} is missing: run scripts/bench-deps.sh (as root) first");
            std::process::exit(2);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let live = live();
        let rendition = live.rendition("720p").unwrap();
        rendition.push_init(Bytes::from_static(b"\0\0\0\x18ftypiso6"));
        for msn in 0..6 {
            publish(&live, msn);
        }
        let lives = Lives::default();
        lives.insert(Arc::clone(&live));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            axum::serve(listener, amphi::hls::http::router(lives))
                .await
                .unwrap();
        });
        let live_for_get = Arc::clone(&live);
        let options = tokio::task::spawn_blocking(move || {
            segments_against_nginx(port, &live_for_get, &options);
            options
        })
        .await
        .unwrap();
        if options.viewers > 0 {
            low_latency_viewers(port, live, &options).await;
        }
        server.abort();
    });
}
