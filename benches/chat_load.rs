//! Audience chat under load, on loopback: N WebSocket viewers in this process, the amphi web
//! server in a child process (this binary with `--serve`), senders writing M messages a second
//! in all. Every viewer times every message it receives (the text carries when it was sent);
//! the report gives the delivery latency's percentiles, what was lost, and the server's memory
//! per connection and CPU.
//!
//! `cargo bench --bench chat_load -- [--sockets 10000] [--rate 20] [--seconds 30] [--split]`
//!
//! `--measure N` decodes and times the frames of the first N viewers only; the others read
//! and discard their bytes without decoding them (as `wrk` does), so that on a small machine
//! the load generator's own decoding does not delay what it measures. The server serves every
//! viewer the same way either way.
//!
//! `--split` gives each side a core of its own (`taskset`: the server on CPU 0, the viewers on
//! CPU 1), the nearest this machine gets to a load generator on another machine.
//!
//! Bounded: it stops after the given time and kills the server.

mod common;

use amphi::chat::hub::{Hub, Meeting};
use amphi::chat::room::Settings;
use futures_util::{SinkExt, StreamExt};
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

struct Options {
    sockets: usize,
    rate: u32,
    seconds: u64,
    split: bool,
    /// Viewers that decode and time what they receive (`None`: all).
    measure: Option<usize>,
}

fn options() -> Options {
    Options {
        sockets: common::arg("--sockets", 10_000),
        rate: common::arg("--rate", 20),
        seconds: common::arg("--seconds", 30),
        split: common::flag("--split"),
        measure: common::flag("--measure").then(|| common::arg("--measure", 0)),
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Latency histogram: one bucket per millisecond up to 10 s.
struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: (0..10_001).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, micros: u64) {
        let ms = (micros / 1000).min(10_000) as usize;
        self.buckets[ms].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The upper bound (ms) of the bucket holding percentile `p`.
    fn percentile(&self, p: f64) -> u64 {
        let total = self.count();
        let wanted = ((total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= wanted {
                return ms as u64 + 1;
            }
        }
        10_001
    }
}

/// The child: amphi's web server with one open chat room, on 127.0.0.1.
async fn serve() {
    amphi::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = amphi::config::Config {
        data_dir: dir.path().to_path_buf(),
        ..amphi::config::Config::default()
    };
    let db = amphi::server::open_database(&config).await.unwrap();
    let mut state =
        amphi::server::build_state(config, db.clone(), Arc::new(amphi::clock::SystemClock))
            .await
            .unwrap();
    // Every viewer comes from 127.0.0.1 here.
    state.chat = Hub::with_connection_cap(1_000_000);
    // No BBB: the delivery into the meeting retries in the background, as when BBB is down.
    let api: Arc<dyn amphi::bbb::BbbApi> = Arc::new(
        amphi::bbb::Client::new(
            "http://127.0.0.1:9/bigbluebutton/api",
            amphi::redact::Redacted::new("unused".to_owned()),
            amphi::config::ChecksumAlgorithm::Sha256,
        )
        .unwrap(),
    );
    state
        .chat
        .open(
            "load",
            Settings::from_config(&amphi::config::ChatConfig::default(), true, true),
            db,
            Meeting {
                api,
                meeting_id: "load".to_owned(),
                bot: None,
            },
        )
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    let app =
        amphi::web::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).await.unwrap();
}

/// (resident memory in KiB, user + system CPU seconds) of a process.
fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (rss, common::cpu_seconds(&pid.to_string()))
}

fn main() {
    let serving = common::flag("--serve");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if serving {
        runtime.block_on(serve());
        return;
    }
    let o = options();
    let exe = std::env::current_exe().unwrap();
    let mut command = if o.split {
        let status = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("taskset (util-linux) for --split");
        assert!(
            status.success(),
            "taskset could not pin the viewers to CPU 1"
        );
        let mut command = std::process::Command::new("taskset");
        command.args(["-c", "0"]).arg(&exe);
        command
    } else {
        std::process::Command::new(&exe)
    };
    let mut child = command
        .arg("--serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the server's port");
    let pid = child.id();
    runtime.block_on(run(o, port, pid));
    let _ = child.kill();
    let _ = child.wait();
}

async fn run(o: Options, port: u16, pid: u32) {
    let url = format!("ws://127.0.0.1:{port}/live/load/chat");
    let (rss_before, _) = usage(pid);
    let histogram = Arc::new(Histogram::new());
    let received = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let connected = Arc::new(AtomicUsize::new(0));
    let measuring = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(AtomicU64::new(0));
    let measured = o.measure.unwrap_or(o.sockets).min(o.sockets);
    let started = Instant::now();
    // Viewers, connected 200 at a time.
    let mut viewers = Vec::with_capacity(o.sockets);
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    for n in 0..o.sockets {
        let (url, histogram, received, closed, connected, gate) = (
            url.clone(),
            Arc::clone(&histogram),
            Arc::clone(&received),
            Arc::clone(&closed),
            Arc::clone(&connected),
            Arc::clone(&gate),
        );
        let (measuring, drained) = (Arc::clone(&measuring), Arc::clone(&drained));
        viewers.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let Ok((socket, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
                closed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            drop(permit);
            connected.fetch_add(1, Ordering::Relaxed);
            if n >= measured {
                // Read and discard: the bytes are counted, not decoded.
                use tokio::io::AsyncReadExt;
                let mut stream = socket.into_inner();
                let mut buffer = vec![0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => {
                            closed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Ok(read) => {
                            drained.fetch_add(read as u64, Ordering::Relaxed);
                        }
                    }
                }
            }
            measuring.fetch_add(1, Ordering::Relaxed);
            let (_write, mut read) = socket.split();
            while let Some(frame) = read.next().await {
                match frame {
                    Ok(Message::Text(text)) => {
                        // One event per line; each message carries when it was sent.
                        let now = now_us();
                        for (at, _) in text.match_indices("\"text\":\"t=") {
                            let digits: String = text[at + 10..]
                                .chars()
                                .take_while(char::is_ascii_digit)
                                .collect();
                            if let Ok(sent) = digits.parse::<u64>() {
                                histogram.record(now.saturating_sub(sent));
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(Message::Close(_)) | Err(_) => {
                        closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Ok(_) => {}
                }
            }
        }));
    }
    while connected.load(Ordering::Relaxed) + closed.load(Ordering::Relaxed) < o.sockets {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "connecting took more than 5 minutes"
        );
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_connected, cpu_start) = usage(pid);
    let (_, own_start) = usage(std::process::id());

    // Senders: one message a second each (the room allows 3 per 2 s per author).
    let senders = o.rate.max(1) as usize;
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let mut writing = Vec::new();
    for s in 0..senders {
        let (url, sent) = (url.clone(), Arc::clone(&sent));
        writing.push(tokio::spawn(async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .unwrap();
            // Spread the senders over the second.
            tokio::time::sleep(Duration::from_millis((s as u64 * 1000) / senders as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while Instant::now() < deadline {
                tick.tick().await;
                let frame = serde_json::json!({
                    "type": "message",
                    "nickname": format!("sender {s}"),
                    "text": format!("t={}", now_us()),
                });
                if socket.send(Message::text(frame.to_string())).await.is_err() {
                    return;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                // Drain what the server sends this connection.
                while let Ok(Some(_)) =
                    tokio::time::timeout(Duration::from_millis(1), socket.next()).await
                {
                }
            }
        }));
    }
    for w in writing {
        let _ = w.await;
    }
    // Let the last messages arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after, cpu_end) = usage(pid);
    let (_, own_end) = usage(std::process::id());
    let dropped = closed.load(Ordering::Relaxed);
    let wall = o.seconds as f64 + 2.0;
    let sent = sent.load(Ordering::Relaxed);
    let expected = sent * measuring.load(Ordering::Relaxed) as u64;
    let got = received.load(Ordering::Relaxed);
    println!(
        "chat_load: {} viewers connected in {connect_seconds:.1} s ({} refused or closed), {} senders, {sent} messages in {} s",
        connected.load(Ordering::Relaxed),
        closed.load(Ordering::Relaxed),
        senders,
        o.seconds
    );
    println!(
        "deliveries {got} of {expected} ({:.3} %) to the {} timing viewers; viewers closed by the end: {dropped}",
        got as f64 * 100.0 / expected.max(1) as f64,
        measuring.load(Ordering::Relaxed)
    );
    if measured < o.sockets {
        println!(
            "the {} other viewers read {:.1} MiB ({:.0} KiB each)",
            o.sockets - measured,
            drained.load(Ordering::Relaxed) as f64 / 1048576.0,
            drained.load(Ordering::Relaxed) as f64 / 1024.0 / (o.sockets - measured).max(1) as f64
        );
    }
    println!(
        "delivery_ms p50 {} p99 {} p999 {} max {}",
        histogram.percentile(0.5),
        histogram.percentile(0.99),
        histogram.percentile(0.999),
        histogram.percentile(1.0)
    );
    println!(
        "server_rss_kib before {rss_before} connected {rss_connected} after {rss_after}; per_socket_kib {:.1}",
        (rss_connected.saturating_sub(rss_before)) as f64
            / connected.load(Ordering::Relaxed).max(1) as f64
    );
    println!(
        "server_cpu_cores {:.3} while sending; load generator (this process) {:.3}",
        (cpu_end - cpu_start) / wall,
        (own_end - own_start) / wall
    );
    for v in viewers {
        v.abort();
    }
}
