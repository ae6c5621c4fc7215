//! `gate-agent run`: the gate daemon.
//!
//! Input sources — lines on stdin (keyboard-wedge scanner, manual entry), a
//! serial barcode scanner, a camera — send [`Input`]s into one channel, as does the
//! turnstile driver when nobody passed. One owner thread holds the [`Gate`] and
//! handles inputs in order: decide, commit to the ledger, then drive the
//! turnstile and announce — so nothing acts on a scan that is not stored.
//! Shutdown: the token is cancelled (SIGTERM/SIGINT) or every source ends; sources
//! stop, the owner drains what was already read, commits, and returns.

use std::io::Write;

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::display::{self, Screen};
use crate::gate::{Gate, GateError, ScanResult};
use crate::hardware::camera::{self, FrameOrigin};
use crate::hardware::scanner;
use crate::hardware::turnstile::{self, Command};
use crate::hub_link::{self, HubLink};
use firmware_config::{CameraProfile, ScannerProfile, TurnstileProfile};
use schema::entry::Direction;
use schema::{DecisionLine, Reason};

/// Something the owner loop must handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A code read by a source.
    Scan {
        /// The raw text as the source delivered it.
        text: String,
        /// Entry or exit.
        direction: Direction,
    },
    /// The turnstile was released for admission `seq` and nobody went through.
    NobodyPassed {
        /// Ledger sequence of the admission.
        seq: u64,
    },
    /// The hub holds every scan up to `through`.
    Acked {
        /// Cumulative sequence.
        through: u64,
    },
    /// Admissions and exits at other gates, from the hub.
    Admissions(Vec<schema::sync::Admission>),
    /// The hub link came up (the hub welcomed us) or went down.
    HubLink {
        /// Up.
        online: bool,
    },
    /// A ticket list is coming from the hub.
    ReplicaDownload {
        /// Its version.
        version: u64,
        /// Bytes on disk.
        received: u64,
        /// Bytes in all.
        total: u64,
        /// Bytes that were already on disk when the download (re)started.
        resumed_from: u64,
    },
    /// A downloaded manifest file, hash checked, to verify and apply.
    Manifest {
        /// The file; removed once handled.
        path: std::path::PathBuf,
    },
}

/// The serial devices a gate drives, from its configuration.
#[derive(Debug, Clone, Default)]
pub struct Devices {
    /// Barcode scanner: port and profile.
    pub scanner: Option<(String, ScannerProfile)>,
    /// Turnstile or relay controller: port and profile.
    pub turnstile: Option<(String, TurnstileProfile)>,
    /// Camera (or recorded frames) and profile.
    pub camera: Option<(FrameOrigin, CameraProfile)>,
}

/// Inputs queued between sources and the owner; a burst larger than this waits.
const QUEUE: usize = 256;

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Opening the gate or recording a scan failed.
    #[error(transparent)]
    Gate(#[from] GateError),
    /// The owner thread died.
    #[error("the scan loop stopped unexpectedly")]
    OwnerLost,
}

/// One announced decision: the `scan` JSON line plus what the ledger assigned
/// and what staff need to see.
#[derive(Debug, Serialize)]
struct Announcement<'a> {
    scan_id: &'a str,
    #[serde(flatten)]
    line: &'a DecisionLine,
    words: Option<&'static str>,
    /// For `other_entrance`: the entrances that admit the ticket.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    go_to: &'a [String],
    type_name: Option<&'a str>,
    holder: Option<&'a str>,
    first_entry: Option<FirstEntry<'a>>,
    not_in_replica: bool,
    /// Decided without the hub's word.
    offline: bool,
}

#[derive(Debug, Serialize)]
struct FirstEntry<'a> {
    at_ms: u64,
    gate: &'a str,
}

/// Where decisions go.
pub enum Output {
    /// One JSON line per decision, for integration and logs.
    Json(Box<dyn Write + Send>),
    /// The full-screen display for door staff.
    Screen(Box<dyn Write + Send>, Screen),
}

impl Output {
    // Showing fails only if nobody looks any more; the scan is stored regardless.
    fn scan(&mut self, result: &ScanResult) {
        let _ = match self {
            Output::Json(out) => announce(result, &mut **out),
            Output::Screen(out, screen) => {
                screen.show(result);
                display::draw(out, screen)
            }
        };
    }

    fn annulled(&mut self, scan_id: &str) {
        let _ = match self {
            Output::Json(out) => announce_annulled(scan_id, &mut **out),
            Output::Screen(out, screen) => {
                screen.annulled();
                display::draw(out, screen)
            }
        };
    }

    fn hub_link(&mut self, online: bool) {
        let _ = match self {
            Output::Json(out) => writeln!(out, "{}", serde_json::json!({ "event": "hub_link", "online": online }))
                .and_then(|()| out.flush()),
            Output::Screen(out, screen) => {
                screen.hub_link(online);
                display::draw(out, screen)
            }
        };
    }

    fn replica_download(&mut self, version: u64, received: u64, total: u64, resumed_from: u64) {
        let _ = match self {
            Output::Json(out) => {
                let line = serde_json::json!({
                    "event": "replica_download",
                    "version": version,
                    "received": received,
                    "total": total,
                    "resumed_from": resumed_from,
                });
                writeln!(out, "{line}").and_then(|()| out.flush())
            }
            Output::Screen(out, screen) => {
                screen.replica_download(received, total);
                display::draw(out, screen)
            }
        };
    }

    /// A manifest from the hub was applied (`error`: refused).
    fn replica_applied(&mut self, version: u64, error: Option<&str>) {
        let _ = match self {
            Output::Json(out) => {
                let line = match error {
                    None => serde_json::json!({ "event": "replica", "version": version }),
                    Some(error) => serde_json::json!({ "event": "replica", "error": error }),
                };
                writeln!(out, "{line}").and_then(|()| out.flush())
            }
            Output::Screen(out, screen) => {
                screen.replica_download(1, 1);
                display::draw(out, screen)
            }
        };
    }

    fn start(&mut self) {
        if let Output::Screen(out, screen) = self {
            let _ = display::draw(out, screen);
        }
    }

    /// The gate needs an entrance: staff choose one of `choices` by number.
    fn choose_entrance(&mut self, choices: &[(u32, String)]) {
        let names: Vec<String> = choices.iter().map(|(_, name)| name.clone()).collect();
        let _ = match self {
            Output::Json(out) => {
                let line = serde_json::json!({ "event": "choose_entrance", "entrances": names });
                writeln!(out, "{line}").and_then(|()| out.flush())
            }
            Output::Screen(out, screen) => {
                screen.choose_entrance(names);
                display::draw(out, screen)
            }
        };
    }

    /// The gate works entrance `name` (`None`: a pinned list, or none yet).
    fn entrance(&mut self, name: Option<String>) {
        let _ = match self {
            Output::Json(out) => match &name {
                Some(name) => writeln!(out, "{}", serde_json::json!({ "event": "entrance", "name": name }))
                    .and_then(|()| out.flush()),
                None => Ok(()),
            },
            Output::Screen(out, screen) => {
                screen.entrance(name);
                display::draw(out, screen)
            }
        };
    }
}

/// Tells staff where the gate stands: its entrance, or the entrances to choose from.
fn show_post(gate: &Gate, output: &mut Output) -> Result<(), GateError> {
    let choices = gate.entrance_choices()?;
    if choices.is_empty() {
        output.entrance(gate.entrance_name()?);
    } else {
        output.choose_entrance(&choices);
    }
    Ok(())
}

/// A line typed while the gate has no entrance: its number among `choices`.
fn chosen_entrance(text: &str, choices: &[(u32, String)]) -> Option<u32> {
    let number: usize = text.trim().parse().ok()?;
    choices.get(number.checked_sub(1)?).map(|(id, _)| *id)
}

fn announce(result: &ScanResult, out: &mut dyn Write) -> std::io::Result<()> {
    let display = &result.outcome.display;
    let line = Announcement {
        scan_id: &result.record.scan_id,
        line: &result.line,
        words: result.line.reason.map(schema::Reason::words),
        go_to: &display.go_to,
        type_name: display.type_name.as_deref(),
        holder: display.holder.as_deref(),
        first_entry: display.first_entry.as_ref().map(|(at, gate)| FirstEntry { at_ms: at.millis(), gate }),
        not_in_replica: result.outcome.not_in_replica,
        offline: result.record.offline,
    };
    writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default())?;
    out.flush()
}

/// Runs the daemon until `shutdown` is cancelled or every source has ended
/// (stdin at end of input and no serial scanner).
pub async fn run<R>(
    gate: Gate,
    stdin: Option<R>,
    devices: Devices,
    direction: Direction,
    shutdown: CancellationToken,
    output: Output,
) -> Result<(), DaemonError>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUE);
    let turnstile =
        devices.turnstile.map(|(port, profile)| turnstile::spawn(port, profile, tx.downgrade(), shutdown.clone()));
    let link = gate.config().hub.clone().map(|settings| {
        let config = gate.config();
        let ledger = config.state_dir.join(crate::gate::LEDGER_FILE);
        let link = hub_link::spawn(settings, config.gate_id.clone(), ledger, tx.downgrade(), shutdown.clone());
        link.set_replica_version(gate.replica().version().ok().flatten().unwrap_or(0));
        link.set_admissions_through(gate.admissions_through().unwrap_or(0));
        link
    });
    let owner = std::thread::spawn(move || owner_loop(gate, rx, turnstile, link, output));
    if let Some(input) = stdin {
        tokio::spawn(read_lines(input, direction, tx.clone(), shutdown.clone()));
    }
    if let Some((port, profile)) = devices.scanner {
        let (tx, shutdown) = (tx.clone(), shutdown.clone());
        std::thread::spawn(move || scanner::run(&port, &profile, direction, &tx, &shutdown));
    }
    if let Some((origin, profile)) = devices.camera {
        let (tx, shutdown) = (tx.clone(), shutdown.clone());
        std::thread::spawn(move || camera::run(&origin, &profile, direction, &tx, &shutdown));
    }
    drop(tx);
    // When every source has dropped its sender, the owner drains what is queued
    // and returns.
    tokio::task::spawn_blocking(move || owner.join())
        .await
        .map_err(|_| DaemonError::OwnerLost)?
        .map_err(|_| DaemonError::OwnerLost)?
}

/// The one place scans are decided and recorded, in arrival order.
fn owner_loop(
    mut gate: Gate,
    mut rx: mpsc::Receiver<Input>,
    turnstile: Option<std::sync::mpsc::Sender<Command>>,
    link: Option<HubLink>,
    mut output: Output,
) -> Result<(), DaemonError> {
    output.start();
    show_post(&gate, &mut output)?;
    while let Some(input) = rx.blocking_recv() {
        match input {
            Input::Scan { text, direction } => {
                let choices = gate.entrance_choices()?;
                if let Some(entrance) = chosen_entrance(&text, &choices) {
                    gate.choose_entrance(entrance)?;
                    tracing::info!(entrance, "entrance chosen at the gate");
                    show_post(&gate, &mut output)?;
                    continue;
                }
                let now = now_ms();
                let mut decided = match gate.decide(&text, direction, now) {
                    Ok(decided) => decided,
                    // No list here: none imported, the gate's list or entrance
                    // went out of the manifest, or staff have yet to choose the
                    // entrance. Nobody is let in; the gate keeps running.
                    Err(GateError::NoList) => {
                        tracing::error!("this gate serves no check-in list: scan refused");
                        if let Some(turnstile) = &turnstile {
                            let _ = turnstile.send(Command::Deny);
                        }
                        show_post(&gate, &mut output)?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if let Some(link) = &link {
                    link.arbitrate(&mut gate, &mut decided, now);
                }
                let result = gate.record(decided)?;
                if let Some(link) = &link {
                    link.recorded();
                }
                // The scan is on disk; only now does anything act on it.
                if let Some(turnstile) = &turnstile {
                    let command = match result.line.reason {
                        None => Command::Admit { seq: result.record.seq },
                        Some(_) => Command::Deny,
                    };
                    let _ = turnstile.send(command);
                }
                output.scan(&result);
            }
            Input::NobodyPassed { seq } => {
                if let Some(record) = gate.annul(seq)? {
                    if let Some(link) = &link {
                        link.reopened(seq);
                    }
                    output.annulled(&record.scan_id);
                }
            }
            Input::Acked { through } => gate.acked(through)?,
            Input::HubLink { online } => output.hub_link(online),
            Input::Admissions(admissions) => {
                gate.apply_admissions(&admissions, now_ms())?;
            }
            Input::ReplicaDownload { version, received, total, resumed_from } => {
                output.replica_download(version, received, total, resumed_from);
            }
            Input::Manifest { path } => {
                let applied = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| gate.import(&bytes, now_ms() / 1_000).map_err(|e| e.to_string()));
                let _ = std::fs::remove_file(&path);
                match applied {
                    Ok(applied) => {
                        if let Some(link) = &link {
                            link.set_replica_version(applied.version);
                        }
                        output.replica_applied(applied.version, None);
                        show_post(&gate, &mut output)?;
                    }
                    Err(why) => {
                        tracing::warn!(%why, "manifest from the hub refused");
                        output.replica_applied(0, Some(&why));
                    }
                }
            }
        }
    }
    Ok(())
}

fn announce_annulled(scan_id: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let line = serde_json::json!({
        "scan_id": scan_id,
        "decision": "annulled",
        "reason": Reason::Annulled,
        "words": Reason::Annulled.words(),
    });
    writeln!(out, "{line}")?;
    out.flush()
}

/// Longest line kept from a source; longer input is cut (and then fails to parse).
const MAX_LINE: usize = 4_096;

/// A keyboard-wedge source: one code per line. Bytes that are not UTF-8 become
/// U+FFFD and the code is rejected as malformed; they never stop the source.
async fn read_lines<R>(input: R, direction: Direction, tx: mpsc::Sender<Input>, shutdown: CancellationToken)
where
    R: AsyncRead + Unpin,
{
    let mut reader = BufReader::new(input);
    loop {
        let line = tokio::select! {
            () = shutdown.cancelled() => return,
            line = next_line(&mut reader) => line,
        };
        let Some(bytes) = line else { return };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if text.trim().is_empty() {
            continue;
        }
        if tx.send(Input::Scan { text, direction }).await.is_err() {
            return;
        }
    }
}

/// The next `\n`-terminated line, at most [`MAX_LINE`] bytes of it kept; `None` at
/// the end of input or on a read error.
async fn next_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let chunk = reader.fill_buf().await.ok()?;
        if chunk.is_empty() {
            return (!line.is_empty()).then_some(line);
        }
        let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(chunk.get(..used.min(room)).unwrap_or_default());
        reader.consume(used);
        if done {
            return Some(line);
        }
    }
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
