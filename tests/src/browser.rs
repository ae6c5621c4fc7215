//! Headless Chromium driven over the DevTools protocol: open a page, evaluate
//! JavaScript in it, take screenshots of it while it runs.
//!
//! Chromium's one-shot `--screenshot` mode runs pages on virtual time, which
//! does not wait for IndexedDB or WebCrypto; a live page over the protocol
//! behaves as on a phone.
#![allow(clippy::expect_used, reason = "test fixture: failing loudly is its job")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The Chromium on this machine, if any. CI installs it and sets
/// `TIXGATE_REQUIRE_BROWSER`, under which a missing browser is a failure;
/// elsewhere the browser tests are optional and say that they skipped.
pub fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()));
    if found.is_none() {
        assert!(std::env::var_os("TIXGATE_REQUIRE_BROWSER").is_none(), "no Chromium found (apt-get install chromium)");
    }
    found
}

/// Holds the machine's one browser slot: Chromium tests run one at a time, since
/// two at once on two cores slow each other's pages past what they wait for
/// (seen in CI: the hub dashboard's screenshot taken before its badges drew).
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SLOT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that panicked holding the slot poisons it; the slot itself is fine.
    SLOT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Flags for Chromium on a machine with no display and no way out: without the
/// background-networking ones it keeps trying to reach Google's hosts.
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

/// One browser with one page; the browser is killed when this is dropped.
pub struct Browser {
    child: Child,
    _profile: TempDir,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
}

impl Browser {
    /// Starts `chromium` with a fresh profile, opens `url` in a phone-sized page.
    pub async fn open(chromium: &str, url: &str) -> Self {
        Self::open_with(chromium, url, None).await
    }

    /// As [`Browser::open`], running `init_script` in every document before its
    /// own scripts (to set the page's clock wrong, say).
    pub async fn open_with(chromium: &str, url: &str, init_script: Option<&str>) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(chromium)
            .args(HEADLESS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromium}: {e}"));
        let endpoint = devtools_endpoint(profile.path());
        let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str()).await.expect("DevTools connection");
        let mut browser = Self { child, _profile: profile, socket, session: String::new(), next_id: 0 };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }), false).await;
        let target_id = target["targetId"].as_str().expect("target id").to_owned();
        let attached =
            browser.call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }), false).await;
        browser.session = attached["sessionId"].as_str().expect("session id").to_owned();
        let metrics = json!({ "width": 430, "height": 900, "deviceScaleFactor": 1, "mobile": true });
        browser.call("Emulation.setDeviceMetricsOverride", metrics, true).await;
        if let Some(source) = init_script {
            // Scripts for new documents are kept only while the Page domain is on.
            browser.call("Page.enable", json!({}), true).await;
            browser.call("Page.addScriptToEvaluateOnNewDocument", json!({ "source": source }), true).await;
        }
        browser.call("Page.navigate", json!({ "url": url }), true).await;
        browser
    }

    /// Evaluates `expression` in the page; its value (awaited if a promise).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let params = json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let reply = self.call("Runtime.evaluate", params, true).await;
        reply["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy (not null, false, "" or 0), or panics after `timeout`.
    pub async fn wait_for(&mut self, expression: &str, timeout: Duration) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let value = self.eval(expression).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false)) && value != json!("") && value != json!(0);
            if truthy {
                return value;
            }
            assert!(Instant::now() < end, "the page never satisfied {expression}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens `url` in the page.
    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }), true).await;
    }

    /// Reloads the page.
    pub async fn reload(&mut self) {
        self.call("Page.reload", json!({}), true).await;
    }

    /// A PNG screenshot of what the page shows now.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }), true).await;
        let data = shot["data"].as_str().expect("screenshot data");
        data_encoding::BASE64.decode(data.as_bytes()).expect("base64 screenshot")
    }

    /// Sends one command and waits for its answer, skipping events.
    async fn call(&mut self, method: &str, params: Value, in_page: bool) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if in_page {
            message["sessionId"] = json!(self.session);
        }
        self.socket.send(Message::text(message.to_string())).await.expect("send to DevTools");
        let deadline = Duration::from_secs(30);
        loop {
            let frame = tokio::time::timeout(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("DevTools closed")
                .expect("DevTools frame");
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method}: {}", reply["error"]);
                return reply["result"].clone();
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser's DevTools address, from the file Chromium writes once it listens.
fn devtools_endpoint(profile: &Path) -> String {
    let file = profile.join("DevToolsActivePort");
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Some((port, path)) = text.split_once('\n')
            && !path.trim().is_empty()
        {
            return format!("ws://127.0.0.1:{}{}", port.trim(), path.trim());
        }
        assert!(Instant::now() < end, "Chromium did not open its DevTools port");
        std::thread::sleep(Duration::from_millis(50));
    }
}
