//! A venue in a temp dir: one issuer, one batch of tickets, a hub (embedded
//! broker or an external Mosquitto) and any number of enrolled gates, each with
//! its own state and the batch's manifest imported. Daemons run as real
//! processes; their stdout lines are read on a thread.
#![allow(clippy::expect_used, clippy::panic, reason = "test fixture: failing loudly is its job")]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::gate_fixture::EVENT;
use crate::{binary, run};

/// Where the hub's MQTT broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerChoice {
    /// The hub's own, on a free port.
    Embedded,
    /// An external broker at `host:port` (Mosquitto on CI: 127.0.0.1:1883).
    External(String),
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// A free UDP port on loopback (bound, read, released).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("free UDP port").port()
}

/// A venue id no other run on this machine uses (topics and sessions on a shared broker).
pub fn unique_venue() -> u64 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("randomness");
    100_000 + u64::from(u32::from_le_bytes(bytes) % 1_000_000_000)
}

/// The venue's files.
pub struct VenueFixture {
    dir: TempDir,
    /// Venue id.
    pub venue_id: u64,
    /// Barcodes of the batch, ticket ids 1, 2, 3…
    pub codes: Vec<String>,
    /// Address gates connect to over MQTT.
    pub mqtt_address: String,
    /// The hub's QUIC listener.
    pub quic_address: String,
}

impl VenueFixture {
    /// An issuer with `tickets` tickets and a hub config on `broker`.
    pub fn new(tickets: u32, broker: &BrokerChoice) -> Self {
        Self::with_doors(tickets, broker, None)
    }

    /// Like [`VenueFixture::new`], with the venue's ticket types, lists and
    /// layout from `doors` (JSON, as `cloud-api tickets mint-batch --doors`
    /// reads it; tickets take the types in turn).
    pub fn with_doors(tickets: u32, broker: &BrokerChoice, doors: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let venue_id = unique_venue();
        let path = dir.path();
        ok(path, "cloud-api", &["keys", "generate", "--dir", "keys"]);
        let (count, venue, event) = (tickets.to_string(), venue_id.to_string(), EVENT.to_string());
        let mut doors_args = Vec::new();
        if let Some(doors) = doors {
            std::fs::write(path.join("doors.json"), doors).expect("doors.json");
            doors_args = vec!["--doors", "doors.json"];
        }
        ok(
            path,
            "cloud-api",
            &[
                "tickets",
                "mint-batch",
                "--key",
                "keys/signing-key.pem",
                "--event",
                &event,
                "--count",
                &count,
                "--out",
                "batch",
                "--venue",
                &venue,
                "--version",
                "1",
            ]
            .into_iter()
            .chain(doors_args)
            .collect::<Vec<_>>(),
        );
        let codes = std::fs::read_to_string(path.join("batch/barcodes.txt")).expect("barcodes");
        let (kind, mqtt_address) = match broker {
            BrokerChoice::Embedded => ("embedded", format!("127.0.0.1:{}", free_port())),
            BrokerChoice::External(address) => ("external", address.clone()),
        };
        let quic_address = format!("127.0.0.1:{}", free_udp_port());
        let hub = format!(
            "venue_id = {venue_id}\nstate_dir = \"hub-state\"\n[mqtt]\nbroker = \"{kind}\"\naddress = \"{mqtt_address}\"\n\
             [quic]\nlisten = \"{quic_address}\"\n[http]\nlisten = \"127.0.0.1:0\"\n"
        );
        std::fs::write(path.join("hub.toml"), hub).expect("hub.toml");
        Self { dir, venue_id, codes: codes.lines().map(str::to_owned).collect(), mqtt_address, quic_address }
    }

    /// Gate `gate`'s MQTT password, from its enrolment.
    pub fn mqtt_password(&self, gate: &str) -> String {
        let path = self.gate_dir(gate).join("enrolment/enrolment.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str::<schema::sync::Enrolment>(&text).expect("an enrolment").mqtt_password
    }

    /// The venue's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A gate's folder.
    pub fn gate_dir(&self, gate_id: &str) -> PathBuf {
        self.path().join("gates").join(gate_id)
    }

    /// Enrols gate `gate_id` at the hub and sets it up: config with `extra`
    /// appended, manifest imported.
    pub fn add_gate(&self, gate_id: &str, extra: &str) {
        self.add_gate_without_replica(gate_id, extra);
        let dir = self.gate_dir(gate_id);
        ok(&dir, "gate-agent", &["replica", "import", "--config", "gate.toml", "../../batch/manifest.txm"]);
    }

    /// Has the hub serve the batch's manifest from `manifests/` (`[replica] folder`).
    pub fn serve_manifests(&self) {
        let folder = self.path().join("manifests");
        std::fs::create_dir_all(&folder).expect("manifests folder");
        std::fs::copy(self.path().join("batch/manifest.txm"), folder.join("v1.txm")).expect("copy manifest");
        let mut hub = std::fs::read_to_string(self.path().join("hub.toml")).expect("hub.toml");
        hub.push_str("[replica]\nfolder = \"manifests\"\n");
        std::fs::write(self.path().join("hub.toml"), hub).expect("hub.toml");
    }

    /// Like [`VenueFixture::add_gate`], with `top` as the config's top-level
    /// lines instead of `list_id = 1` (another list, none, a direction).
    pub fn add_gate_with(&self, gate_id: &str, top: &str, extra: &str) {
        self.configure_gate(gate_id, top, extra);
        let dir = self.gate_dir(gate_id);
        ok(&dir, "gate-agent", &["replica", "import", "--config", "gate.toml", "../../batch/manifest.txm"]);
    }

    /// Enrols and configures gate `gate_id` with an empty replica.
    pub fn add_gate_without_replica(&self, gate_id: &str, extra: &str) {
        self.configure_gate(gate_id, "list_id = 1\n", extra);
    }

    fn configure_gate(&self, gate_id: &str, top: &str, extra: &str) {
        let dir = self.gate_dir(gate_id);
        std::fs::create_dir_all(&dir).expect("gate dir");
        let out = dir.join("enrolment");
        let out = out.to_str().expect("utf-8 path");
        ok(self.path(), "sync-hub", &["enroll-gate", "--config", "hub.toml", "--gate-id", gate_id, "--out", out]);
        let config = format!(
            "gate_id = \"{gate_id}\"\nvenue_id = {}\n{top}state_dir = \"state\"\nkeyring = \"../../keys/keyring.json\"\n\
             [hub]\nenrolment = \"enrolment\"\n{extra}",
            self.venue_id
        );
        std::fs::write(dir.join("gate.toml"), config).expect("gate.toml");
    }

    /// Starts the hub and waits until it takes frames; its ready line (with the
    /// dashboard's address) is kept in [`Daemon::ready`].
    pub fn start_hub(&self) -> Daemon {
        let mut hub = Daemon::spawn("sync-hub", &["run", "--config", "hub.toml"], self.path());
        let line = hub.wait_for(Duration::from_secs(20), |line| line.contains("\"event\":\"ready\""));
        hub.ready = Some(serde_json::from_str(&line).expect("ready line is JSON"));
        hub
    }

    /// Starts gate `gate_id` (stdin open) without waiting for the hub link.
    pub fn start_gate(&self, gate_id: &str) -> Daemon {
        Daemon::spawn("gate-agent", &["run", "--config", "gate.toml"], &self.gate_dir(gate_id))
    }

    /// Runs `sync-hub ARGS… --config hub.toml` and returns its JSON lines.
    pub fn hub_query(&self, subcommand: &str) -> Vec<serde_json::Value> {
        let out = ok(self.path(), "sync-hub", &[subcommand, "--config", "hub.toml"]);
        out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
    }
}

fn ok(dir: &Path, bin: &str, args: &[&str]) -> crate::Run {
    let out = run(bin, args, dir);
    assert_eq!(out.code, 0, "{bin} {args:?}: {out:?}");
    out
}

/// A running daemon: its stdin, and its stdout lines as they come.
pub struct Daemon {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    name: String,
    /// Lines read so far that no wait consumed.
    pub seen: Vec<String>,
    /// The daemon's ready line, once seen.
    pub ready: Option<serde_json::Value>,
}

impl Daemon {
    /// Starts `bin ARGS…` in `dir`.
    pub fn spawn(bin: &str, args: &[&str], dir: &Path) -> Self {
        Self::spawn_with_env(bin, args, dir, &[])
    }

    /// Starts `bin ARGS…` in `dir` with these environment variables added.
    pub fn spawn_with_env(bin: &str, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start(bin, args, dir, env, Stdio::inherit())
    }

    /// Starts `bin ARGS…` in `dir` with its log (stderr) appended to `log`.
    pub fn spawn_logged(bin: &str, args: &[&str], dir: &Path, log: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        Self::start(bin, args, dir, &[], Stdio::from(file))
    }

    fn start(bin: &str, args: &[&str], dir: &Path, env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut child = Command::new(binary(bin))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Self { child, stdin, lines, name: format!("{bin} {args:?}"), seen: Vec::new(), ready: None }
    }

    /// The next line, or panics after `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> String {
        self.lines.recv_timeout(timeout).unwrap_or_else(|e| panic!("{}: no line within {timeout:?}: {e}", self.name))
    }

    /// Reads lines until one satisfies `pred`; returns it.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let name = self.name.clone();
        self.try_wait_for(timeout, pred).unwrap_or_else(|| panic!("{name}: no such line within {timeout:?}"))
    }

    /// Reads lines until one satisfies `pred` and returns it; `None` if none
    /// came within `timeout` or the daemon closed its output.
    pub fn try_wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if pred(&line) {
                return Some(line);
            }
            self.seen.push(line);
        }
    }

    /// The next decision line (event lines are skipped), as JSON.
    pub fn next_decision(&mut self, timeout: Duration) -> serde_json::Value {
        let line = self.wait_for(timeout, |l| l.contains("\"decision\""));
        serde_json::from_str(&line).expect("decision JSON")
    }

    /// Writes one line to its stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("write to daemon");
    }

    /// Closes stdin (a gate then drains and exits).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// SIGKILL, now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain HTTP/1.1 GET on loopback: (status code, body). Enough for a JSON or
/// text endpoint; `until` stops reading once the body contains it (for streams).
pub fn http_get(addr: &str, path: &str, until: Option<&str>) -> (u16, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the dashboard");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send request");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if until.is_some_and(|u| String::from_utf8_lossy(&raw).contains(u)) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}
