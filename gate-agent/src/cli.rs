//! Command line of `gate-agent`: the field tools `decode` and `verify`, and the
//! replica and ledger commands `replica import`, `scan`, `scans`.
//!
//! Exit codes: 0 accept / success; 1 reject, or `decode` read no code (any
//! reason, one line on stderr); 2 usage error (bad arguments; for `verify`, an
//! unreadable keyring or image file).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use schema::entry::Direction;
use schema::{DecisionLine, Freshness, Keyring, Reason, UnixSeconds, check_offline};
use time::OffsetDateTime;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::daemon::{self, Output};
use crate::display::Screen;
use crate::gate::Gate;
use crate::qr::{self, QrError};

/// Exit code of an accepted ticket or a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code of a rejected ticket, or of an image with no readable code.
pub const EXIT_REJECT: u8 = 1;
/// Exit code of a usage error: bad arguments or unreadable input files.
pub const EXIT_USAGE: u8 = 2;

/// The `gate-agent` command: parses the process's arguments and runs them.
/// The binary is only this call, so another binary (the venue demo) can be
/// `gate-agent` too.
pub fn main() -> std::process::ExitCode {
    // Diagnostics (hub link state) go to stderr; stdout carries decisions.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    std::process::ExitCode::from(run(cli, &mut std::io::stdout(), &mut std::io::stderr()))
}

/// tixgate gate agent.
#[derive(Debug, Parser)]
#[command(name = "gate-agent", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the text of the QR code in an image (any QR content, not only tickets).
    Decode {
        /// PNG or JPEG file.
        image: PathBuf,
    },
    /// Run the gate daemon: read codes (one per line on stdin), decide, record,
    /// and announce each decision as a JSON line. SIGTERM drains and exits 0.
    Run {
        /// Gate configuration.
        #[arg(long)]
        config: PathBuf,
        /// `json`: one line per decision; `tui`: full-screen green/red for door staff.
        #[arg(long, value_enum, default_value_t = DisplayMode::Json)]
        display: DisplayMode,
    },
    /// Manage the gate's ticket replica.
    #[command(subcommand)]
    Replica(ReplicaCommand),
    /// Decide one code against the replica and ledger, recorded like a real scan;
    /// prints the same JSON line as `verify`.
    Scan {
        /// Gate configuration.
        #[arg(long)]
        config: PathBuf,
        /// Record an exit instead of an entry.
        #[arg(long)]
        exit: bool,
        /// The barcode text.
        barcode: String,
    },
    /// Print the scan ledger as JSON lines.
    Scans {
        /// Gate configuration.
        #[arg(long)]
        config: PathBuf,
        /// Only scans after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// Verify one ticket offline and print the decision as one JSON line.
    Verify {
        /// Public keyring (JSON) of the ticket issuer.
        #[arg(long)]
        keyring: PathBuf,
        /// Only admit tickets for this event.
        #[arg(long)]
        event: Option<u64>,
        /// Decide as of this time (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_rfc3339)]
        at: Option<OffsetDateTime>,
        /// Oldest accepted holder-shown (v2) code, in seconds (10–3600, as in gate.toml).
        #[arg(long, default_value_t = Freshness::default().max_age, value_parser = clap::value_parser!(u64).range(10..=3_600))]
        max_code_age: u64,
        /// Read the barcode from a photo instead of the argument.
        #[arg(long, conflicts_with = "barcode", required_unless_present = "barcode")]
        image: Option<PathBuf>,
        /// The barcode text.
        barcode: Option<String>,
    },
}

/// How `run` shows decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DisplayMode {
    /// One JSON line per decision on stdout.
    Json,
    /// Full-screen terminal display.
    Tui,
}

/// `gate-agent replica …`
#[derive(Debug, Subcommand)]
pub enum ReplicaCommand {
    /// Verify a signed manifest file and apply it atomically.
    Import {
        /// Gate configuration.
        #[arg(long)]
        config: PathBuf,
        /// The manifest file.
        manifest: PathBuf,
    },
    /// Print the replica's version and ticket count as one JSON line.
    Status {
        /// Gate configuration.
        #[arg(long)]
        config: PathBuf,
    },
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-12-31T19:30:00Z"))
}

/// Runs a parsed command, writing to the given streams; returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match cli.command {
        Command::Decode { image } => decode(&image, out, err),
        Command::Run { config, display } => run_daemon(&config, display, err),
        Command::Replica(ReplicaCommand::Import { config, manifest }) => {
            with_gate(&config, out, err, |gate, out, err| import(gate, &manifest, out, err))
        }
        Command::Replica(ReplicaCommand::Status { config }) => {
            with_gate(&config, out, err, |gate, out, err| replica_status(gate, out, err))
        }
        Command::Scan { config, exit, barcode } => {
            let direction = if exit { Direction::Exit } else { Direction::Entry };
            with_gate(&config, out, err, |gate, out, err| scan(gate, &barcode, direction, out, err))
        }
        Command::Scans { config, since } => {
            with_gate(&config, out, err, |gate, out, err| list_scans(gate, since, out, err))
        }
        Command::Verify { keyring, event, at, max_code_age, image, barcode } => {
            let now = keys_time(at.unwrap_or_else(OffsetDateTime::now_utc));
            let freshness = Freshness { max_age: max_code_age, ..Freshness::default() };
            verify(&keyring, event, freshness, now, image.as_deref(), barcode.as_deref(), out, err)
        }
    }
}

/// Opens the gate of a config file and runs `f`; a bad config or state is a
/// usage error (exit 2).
fn with_gate(
    config: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
    f: impl FnOnce(&mut Gate, &mut dyn Write, &mut dyn Write) -> u8,
) -> u8 {
    let gate = Config::load(config).map_err(|e| e.to_string()).and_then(|c| Gate::open(c).map_err(|e| e.to_string()));
    match gate {
        Ok(mut gate) => f(&mut gate, out, err),
        Err(message) => {
            let _ = writeln!(err, "gate-agent: {}", one_line(&message));
            EXIT_USAGE
        }
    }
}

/// Exit code of `run` when the configuration is unusable (EX_CONFIG), so
/// systemd's `RestartPreventExitStatus=78` stops a restart loop.
pub const EXIT_CONFIG: u8 = 78;

fn run_daemon(config: &Path, display: DisplayMode, err: &mut dyn Write) -> u8 {
    let config = match Config::load(config) {
        Ok(config) => config,
        Err(e) => {
            let _ = writeln!(err, "gate-agent: {}", one_line(&e.to_string()));
            return EXIT_CONFIG;
        }
    };
    let (direction, devices, stdin) = (config.direction, config.devices.clone(), config.stdin);
    let gate = match Gate::open(config) {
        Ok(gate) => gate,
        Err(e) => {
            let _ = writeln!(err, "gate-agent: {}", one_line(&e.to_string()));
            return EXIT_REJECT;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(err, "gate-agent: cannot start the runtime: {e}");
            return EXIT_REJECT;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        spawn_signal_handler(shutdown.clone());
        let stdin = stdin.then(tokio::io::stdin);
        let output = match display {
            DisplayMode::Json => Output::Json(Box::new(std::io::stdout())),
            DisplayMode::Tui => Output::Screen(Box::new(std::io::stdout()), Screen::default()),
        };
        notify_ready(&format!("deciding at {}", gate.config().gate_id));
        daemon::run(gate, stdin, devices, direction, shutdown, output).await
    });
    // Every scan is committed by now; a blocking read of stdin must not hold the
    // exit (tokio cannot interrupt it).
    runtime.shutdown_background();
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(err, "gate-agent: {}", one_line(&e.to_string()));
            EXIT_REJECT
        }
    }
}

/// Tells systemd (when it started this process with `Type=notify`) that the
/// daemon is ready, and feeds its watchdog from the runtime while the runtime
/// runs, so a wedged runtime gets restarted. Without `NOTIFY_SOCKET` (not under
/// systemd) it does nothing.
fn notify_ready(status: &str) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(status)]);
    if let Some(timeout) = sd_notify::watchdog_enabled() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(timeout / 2);
            loop {
                tick.tick().await;
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        });
    }
}

/// SIGTERM and SIGINT cancel `shutdown`: the daemon drains and exits 0.
fn spawn_signal_handler(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        shutdown.cancel();
    });
}

/// Applies a manifest file; a refused manifest (forged, rolled back, another
/// venue) exits 1 and leaves the replica as it was.
fn import(gate: &mut Gate, manifest: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let bytes = match std::fs::read(manifest) {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = writeln!(err, "gate-agent: {}: {e}", manifest.display());
            return EXIT_USAGE;
        }
    };
    let now = keys_time(OffsetDateTime::now_utc());
    let applied = gate.import(&bytes, now);
    match applied {
        Ok(applied) => {
            let kind = if applied.snapshot { "snapshot" } else { "delta" };
            let _ = writeln!(out, "replica at version {}: {} tickets from a {kind}", applied.version, applied.tickets);
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(err, "gate-agent: manifest {} refused: {}", manifest.display(), one_line(&e.to_string()));
            EXIT_REJECT
        }
    }
}

fn replica_status(gate: &mut Gate, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let replica = gate.replica();
    match replica.version().and_then(|v| replica.ticket_count().map(|n| (v, n))) {
        Ok((version, tickets)) => {
            let _ = writeln!(out, "{}", serde_json::json!({ "version": version, "tickets": tickets }));
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(err, "gate-agent: {}", one_line(&e.to_string()));
            EXIT_USAGE
        }
    }
}

fn scan(gate: &mut Gate, barcode: &str, direction: Direction, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let now_ms = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    match gate.scan(barcode, direction, now_ms) {
        Ok(result) => print_decision(&result.line, out, err),
        Err(e) => {
            let _ = writeln!(err, "gate-agent: {}", one_line(&e.to_string()));
            EXIT_USAGE
        }
    }
}

fn list_scans(gate: &mut Gate, since: u64, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match gate.ledger().since(since) {
        Ok(records) => {
            for record in records {
                let _ = writeln!(out, "{}", serde_json::to_string(&record).unwrap_or_default());
            }
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(err, "gate-agent: {}", one_line(&e.to_string()));
            EXIT_USAGE
        }
    }
}

fn keys_time(t: OffsetDateTime) -> UnixSeconds {
    schema::keys::unix_seconds(t)
}

fn decode(image: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match qr::decode_file(image) {
        Ok(text) => {
            let _ = write!(out, "{text}");
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(err, "gate-agent decode: {}", one_line(&e.to_string()));
            EXIT_REJECT
        }
    }
}

#[allow(clippy::too_many_arguments, reason = "one per command-line option, named at the only call")]
fn verify(
    keyring: &Path,
    event: Option<u64>,
    freshness: Freshness,
    now: UnixSeconds,
    image: Option<&Path>,
    barcode: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let ring = match load_keyring(keyring) {
        Ok(ring) => ring,
        Err(e) => {
            let _ = writeln!(err, "gate-agent verify: {e}");
            return EXIT_USAGE;
        }
    };
    let scanned = match (image, barcode) {
        (Some(path), _) => match qr::decode_file(path) {
            Ok(text) => text,
            Err(e @ (QrError::Read { .. } | QrError::Image { .. })) => {
                let _ = writeln!(err, "gate-agent verify: {}", one_line(&e.to_string()));
                return EXIT_USAGE;
            }
            Err(e) => {
                let _ = writeln!(err, "gate-agent verify: {e}");
                return print_decision(&DecisionLine::reject(Reason::Malformed, None), out, err);
            }
        },
        (None, Some(text)) => text.to_owned(),
        (None, None) => return EXIT_USAGE, // clap requires one of them
    };
    print_decision(&check_offline(&ring, &scanned, event, freshness, now), out, err)
}

/// Reads and checks a keyring file; the error names the file.
pub fn load_keyring(path: &Path) -> Result<Keyring, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read keyring {}: {e}", path.display()))?;
    Keyring::from_json(&text).map_err(|e| format!("keyring {}: {e}", path.display()))
}

fn print_decision(line: &DecisionLine, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let json = serde_json::to_string(line).unwrap_or_default();
    let _ = writeln!(out, "{json}");
    match line.reason {
        None => EXIT_OK,
        Some(reason) => {
            let _ = writeln!(err, "REJECT: {} ({reason})", reason.words());
            EXIT_REJECT
        }
    }
}

/// Error text on one line: file names or decoder messages may hold newlines.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}
