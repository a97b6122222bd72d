//! Headless Chromium driven over the DevTools protocol, for the tests and the latency tool
//! (`benches/latency.rs` includes this file).
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// How every test runs Debian's Chromium: headless, as root in a container, nothing fetched.
pub const HEADLESS: [&str; 7] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Headless Chromium with a DevTools endpoint; killed when dropped.
pub struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    port: u16,
    /// The DevTools session that added scripts to every new document (they last as long as
    /// it stays open).
    _session: Option<tokio::task::JoinHandle<()>>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Browser {
    pub async fn open(url: &str) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let child = tokio::process::Command::new("chromium")
            .args(HEADLESS)
            .args([
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromium runs (apt-get install chromium; scripts/install-deps.sh does)");
        // Chromium writes its DevTools port into the profile once it listens.
        let file = profile.path().join("DevToolsActivePort");
        let port = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Ok(text) = tokio::fs::read_to_string(&file).await
                    && let Some(port) = text.lines().next().and_then(|l| l.parse().ok())
                {
                    return port;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("chromium opens its DevTools port");
        Self {
            _child: child,
            _profile: profile,
            port,
            _session: None,
        }
    }

    /// Opens `url` with `script` run in the page before any of its own scripts.
    pub async fn open_with_script(url: &str, script: &str) -> Self {
        let mut browser = Self::open("about:blank").await;
        let mut session = browser.page().await;
        // The page domain must be on for the script to be added to new documents.
        call(&mut session, 3, "Page.enable", serde_json::json!({})).await;
        let params = serde_json::json!({ "source": script });
        call(
            &mut session,
            1,
            "Page.addScriptToEvaluateOnNewDocument",
            params,
        )
        .await;
        call(
            &mut session,
            2,
            "Page.navigate",
            serde_json::json!({ "url": url }),
        )
        .await;
        // Read what the page says meanwhile, so that it never waits on this session.
        browser._session = Some(tokio::spawn(async move {
            while let Some(Ok(_)) = session.next().await {}
        }));
        browser
    }

    /// A DevTools connection to the page.
    async fn page(&self) -> Socket {
        let targets: serde_json::Value =
            reqwest::get(format!("http://127.0.0.1:{}/json/list", self.port))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let page = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap())
            .await
            .unwrap()
            .0
    }

    /// Sends one DevTools command to the page; returns its result.
    pub async fn command(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        call(&mut self.page().await, 1, method, params).await
    }

    /// Evaluates `expression` in the page and returns its JSON value.
    pub async fn evaluate(&self, expression: &str) -> serde_json::Value {
        let params = serde_json::json!({ "expression": expression, "returnByValue": true });
        self.command("Runtime.evaluate", params).await["result"]["value"].clone()
    }
}

/// Sends command `id` on `socket` and returns its result.
async fn call(
    socket: &mut Socket,
    id: u64,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let call = serde_json::json!({ "id": id, "method": method, "params": params });
    socket.send(Message::text(call.to_string())).await.unwrap();
    while let Some(Ok(message)) = socket.next().await {
        let Ok(text) = message.to_text() else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        if value["id"] == id {
            return value["result"].clone();
        }
    }
    panic!("no answer from the page to {method}");
}
