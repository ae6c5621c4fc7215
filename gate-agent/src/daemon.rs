//! `gate-agent run`: the gate daemon.
//!
//! Input sources (today: lines on stdin, as from a keyboard-wedge scanner or
//! manual entry) are tasks that send [`Input`]s into one channel. One owner
//! thread holds the [`Gate`] and handles inputs in order: decide, commit to the
//! ledger, then announce — so what is shown has always been stored first.
//! Shutdown: the token is cancelled (SIGTERM/SIGINT) or every source ends; sources
//! stop, the owner drains what was already read, commits, and returns.

use std::io::Write;

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::gate::{Gate, GateError, ScanResult};
use schema::DecisionLine;
use schema::entry::Direction;

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
    type_name: Option<&'a str>,
    holder: Option<&'a str>,
    first_entry: Option<FirstEntry<'a>>,
    not_in_replica: bool,
}

#[derive(Debug, Serialize)]
struct FirstEntry<'a> {
    at_ms: u64,
    gate: &'a str,
}

fn announce(result: &ScanResult, out: &mut dyn Write) -> std::io::Result<()> {
    let display = &result.outcome.display;
    let line = Announcement {
        scan_id: &result.record.scan_id,
        line: &result.line,
        words: result.line.reason.map(schema::Reason::words),
        type_name: display.type_name.as_deref(),
        holder: display.holder.as_deref(),
        first_entry: display.first_entry.as_ref().map(|(at, gate)| FirstEntry { at_ms: at.millis(), gate }),
        not_in_replica: result.outcome.not_in_replica,
    };
    writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default())?;
    out.flush()
}

/// Runs the daemon until `shutdown` is cancelled or its input ends.
pub async fn run<R>(
    gate: Gate,
    input: R,
    direction: Direction,
    shutdown: CancellationToken,
    out: Box<dyn Write + Send>,
) -> Result<(), DaemonError>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUE);
    let owner = std::thread::spawn(move || owner_loop(gate, rx, out));
    read_lines(input, direction, tx, shutdown).await;
    // The sender is gone: the owner drains what is queued, then returns.
    tokio::task::spawn_blocking(move || owner.join())
        .await
        .map_err(|_| DaemonError::OwnerLost)?
        .map_err(|_| DaemonError::OwnerLost)?
}

/// The one place scans are decided and recorded, in arrival order.
fn owner_loop(
    mut gate: Gate,
    mut rx: mpsc::Receiver<Input>,
    mut out: Box<dyn Write + Send>,
) -> Result<(), DaemonError> {
    while let Some(Input::Scan { text, direction }) = rx.blocking_recv() {
        let result = gate.scan(&text, direction, now_ms())?;
        // Announcing fails only if nobody listens any more; the scan is stored.
        let _ = announce(&result, &mut *out);
    }
    Ok(())
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
