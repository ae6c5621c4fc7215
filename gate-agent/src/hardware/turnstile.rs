//! Turnstile, door or relay controllers driven by the text commands of a
//! `firmware-config` profile.
//!
//! The driver runs on its own thread and owns the port. After an accepted scan
//! (already in the ledger) the owner sends [`Command::Admit`]; the driver sends
//! `open`, and if the controller reports passage, waits for it. When nobody
//! passes within the profile's timeout it tells the owner, which annuls the
//! admission so the person can try again (pretix calls this annul).

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use firmware_config::TurnstileProfile;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{POLL, REOPEN_DELAY, parity};
use crate::daemon::Input;

/// What the owner asks of the turnstile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Release for the admission recorded as ledger sequence `seq`.
    Admit {
        /// Ledger sequence of the admission.
        seq: u64,
    },
    /// Show "denied".
    Deny,
}

/// Starts the driver thread; returns the sender for its commands. The thread
/// ends when the sender is dropped or `shutdown` is cancelled.
pub fn spawn(
    path: String,
    profile: TurnstileProfile,
    owner: mpsc::WeakSender<Input>,
    shutdown: CancellationToken,
) -> std_mpsc::Sender<Command> {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || drive(&path, &profile, &rx, &owner, &shutdown));
    tx
}

fn drive(
    path: &str,
    profile: &TurnstileProfile,
    commands: &std_mpsc::Receiver<Command>,
    owner: &mpsc::WeakSender<Input>,
    shutdown: &CancellationToken,
) {
    let mut port = None;
    while !shutdown.is_cancelled() {
        let command = match commands.recv_timeout(POLL) {
            Ok(command) => command,
            Err(std_mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if port.is_none() {
            port = open(path, profile).map_err(|e| eprintln!("gate-agent: turnstile {path}: {e}")).ok();
        }
        let Some(p) = port.as_mut() else {
            // No controller: an admission cannot be confirmed by anyone passing.
            if let Command::Admit { seq } = command {
                report_nobody_passed(owner, seq, profile);
            }
            std::thread::sleep(REOPEN_DELAY);
            continue;
        };
        if let Err(e) = execute(p.as_mut(), profile, command, owner) {
            eprintln!("gate-agent: turnstile {path}: {e}; reopening");
            port = None;
        }
    }
}

fn execute(
    port: &mut dyn serialport::SerialPort,
    profile: &TurnstileProfile,
    command: Command,
    owner: &mpsc::WeakSender<Input>,
) -> std::io::Result<()> {
    let pulse = Duration::from_millis(u64::from(profile.pulse_ms));
    match command {
        Command::Deny => {
            send(port, profile, &profile.deny)?;
            std::thread::sleep(pulse);
        }
        Command::Admit { seq } => {
            send(port, profile, &profile.open)?;
            match (&profile.passage, profile.passage_timeout_ms) {
                (Some(passage), Some(timeout)) => {
                    let limit = Duration::from_millis(u64::from(timeout));
                    if !wait_for_line(port, profile, passage, limit)? {
                        report_nobody_passed(owner, seq, profile);
                    }
                }
                _ => std::thread::sleep(pulse),
            }
        }
    }
    send(port, profile, &profile.idle)
}

fn report_nobody_passed(owner: &mpsc::WeakSender<Input>, seq: u64, profile: &TurnstileProfile) {
    if profile.passage.is_some()
        && let Some(owner) = owner.upgrade()
    {
        let _ = owner.blocking_send(Input::NobodyPassed { seq });
    }
}

fn send(port: &mut dyn serialport::SerialPort, profile: &TurnstileProfile, text: &str) -> std::io::Result<()> {
    port.write_all(text.as_bytes())?;
    port.write_all(profile.line_ending.bytes())?;
    port.flush()
}

/// Reads status lines until one equals `expected` or `limit` passes.
fn wait_for_line(
    port: &mut dyn serialport::SerialPort,
    profile: &TurnstileProfile,
    expected: &str,
    limit: Duration,
) -> std::io::Result<bool> {
    let deadline = Instant::now() + limit;
    let end = profile.line_ending.bytes().last().copied().unwrap_or(b'\r');
    let mut line = Vec::new();
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        let n = match port.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => return Err(e),
        };
        for &b in buf.get(..n).unwrap_or_default() {
            if b == end {
                if String::from_utf8_lossy(&line).trim() == expected {
                    return Ok(true);
                }
                line.clear();
            } else if line.len() < 256 {
                line.push(b);
            }
        }
    }
    Ok(false)
}

fn open(path: &str, p: &TurnstileProfile) -> serialport::Result<Box<dyn serialport::SerialPort>> {
    serialport::new(path, p.baud).parity(parity(firmware_config::Parity::None)).timeout(POLL).open()
}
