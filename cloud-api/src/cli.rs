//! Command line of `cloud-api`: the service (`serve`), its accounts, and the
//! issuer's key management and ticket minting tools.
//!
//! Exit codes: 0 success, 1 failure (files, keys, store), 2 usage error.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use schema::keys::unix_seconds;
use schema::{KeyId, SeatLabel, TicketClaims, TicketFlags, Validity};
use time::OffsetDateTime;

use tokio_util::sync::CancellationToken;

use crate::accounts::auth::Role;
use crate::accounts::users::{self, Credentials};
use crate::config::{self, Config};
use crate::db::Db;
use crate::tickets::batch::{self, BatchSpec};
use crate::{common::keystore, common::qr_render, server};

/// Exit code of success.
pub const EXIT_OK: u8 = 0;
/// Exit code of a failed operation.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `serve` when the configuration is unusable (EX_CONFIG), so
/// systemd's `RestartPreventExitStatus=78` stops a restart loop.
pub const EXIT_CONFIG: u8 = 78;

/// The `cloud-api` command: parses the process's arguments and runs them.
/// The binary is only this call, so another binary (the venue demo) can be
/// `cloud-api` too.
pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    std::process::ExitCode::from(run(cli, &mut std::io::stdout(), &mut std::io::stderr()))
}

/// Why `serve` stopped.
enum Failure {
    /// The configuration is unusable: restarting will not help.
    Config(String),
    /// Anything else.
    Other(String),
}

/// tixgate cloud API and its ops tools.
#[derive(Debug, Parser)]
#[command(name = "cloud-api", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage ticket signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint and render tickets.
    #[command(subcommand)]
    Tickets(TicketsCommand),
    /// Serve the API until SIGINT or SIGTERM.
    Serve {
        /// Config file (see `print-default-config`).
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the default cloud.toml.
    PrintDefaultConfig,
    /// Create an account directly in the store (the first admin or organizer).
    AddUser {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// customer, organizer or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Password; read from the TIXGATE_PASSWORD environment variable if absent.
        #[arg(long, env = "TIXGATE_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).filter(|r| *r != Role::Hub).ok_or_else(|| "expected customer, organizer or admin".into())
}

/// `cloud-api keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create DIR/signing-key.pem (mode 0600) and add its public key to DIR/keyring.json.
    Generate {
        /// Key directory.
        #[arg(long)]
        dir: PathBuf,
        /// When gates start accepting the key (RFC 3339); default now.
        #[arg(long, value_parser = parse_rfc3339)]
        valid_from: Option<OffsetDateTime>,
    },
    /// End a key's validity in DIR/keyring.json: gates reject its tickets after AT.
    Retire {
        /// Key directory.
        #[arg(long)]
        dir: PathBuf,
        /// Key id (8 hex digits).
        #[arg(long, value_parser = parse_kid)]
        kid: KeyId,
        /// Retirement time (RFC 3339).
        #[arg(long, value_parser = parse_rfc3339)]
        at: OffsetDateTime,
    },
}

/// `cloud-api tickets …`
#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// Sign one ticket and print its barcode text.
    Mint(MintArgs),
    /// Sign N tickets into DIR/barcodes.txt and their signed full manifest DIR/manifest.txm.
    MintBatch {
        /// Private key (PKCS#8 PEM, mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// Event id.
        #[arg(long)]
        event: u64,
        /// How many tickets.
        #[arg(long)]
        count: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Venue whose gates import the manifest.
        #[arg(long, default_value_t = 1)]
        venue: u64,
        /// Ticket type id.
        #[arg(long = "type", default_value_t = 1)]
        ticket_type: u32,
        /// First ticket id.
        #[arg(long, default_value_t = 1)]
        first_ticket: u64,
        /// Manifest version.
        #[arg(long, default_value_t = 1)]
        version: u64,
        /// The venue's ticket types, check-in lists and layout as JSON (tickets
        /// take the types in turn); without it: one type, one list (id 1).
        #[arg(long)]
        doors: Option<PathBuf>,
    },
    /// Render a barcode as a QR code image.
    Qr {
        /// Output file, .png or .svg.
        #[arg(long)]
        out: PathBuf,
        /// The barcode text.
        barcode: String,
    },
}

/// Arguments of `tickets mint`.
#[derive(Debug, Args)]
pub struct MintArgs {
    /// Private key (PKCS#8 PEM, mode 0600).
    #[arg(long)]
    key: PathBuf,
    /// Event id.
    #[arg(long)]
    event: u64,
    /// Ticket id (unique, never reused).
    #[arg(long)]
    ticket: u64,
    /// Ticket type id.
    #[arg(long = "type")]
    ticket_type: u32,
    /// Seat label (1–32 bytes).
    #[arg(long, value_parser = parse_seat)]
    seat: Option<SeatLabel>,
    /// Not valid before (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339)]
    valid_from: Option<OffsetDateTime>,
    /// Not valid after (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339)]
    valid_until: Option<OffsetDateTime>,
    /// Mark as a paper ticket.
    #[arg(long)]
    paper: bool,
    /// Allow re-entry after exit.
    #[arg(long)]
    reentry: bool,
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-12-31T19:30:00Z"))
}

fn parse_kid(s: &str) -> Result<KeyId, String> {
    KeyId::from_hex(s).ok_or_else(|| "a key id is 8 hex digits".to_owned())
}

fn parse_seat(s: &str) -> Result<SeatLabel, String> {
    SeatLabel::new(s).map_err(|e| e.to_string())
}

/// Runs a parsed command; returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let result = match cli.command {
        Command::Keys(KeysCommand::Generate { dir, valid_from }) => {
            let from = unix_seconds(valid_from.unwrap_or_else(OffsetDateTime::now_utc));
            keystore::generate(&dir, from).map(|signer| signer.key_id().to_string()).map_err(|e| e.to_string())
        }
        Command::Keys(KeysCommand::Retire { dir, kid, at }) => retire(&dir, kid, at),
        Command::Tickets(TicketsCommand::Mint(args)) => mint(args),
        Command::Tickets(TicketsCommand::MintBatch {
            key,
            event,
            count,
            out: dir,
            venue,
            ticket_type,
            first_ticket,
            version,
            doors,
        }) => keystore::read_signer(&key).map_err(|e| e.to_string()).and_then(|signer| {
            let doors = doors.map(|path| read_doors(&path)).transpose()?;
            let spec = BatchSpec {
                venue_id: venue,
                event_id: event,
                ticket_type_id: ticket_type,
                first_ticket_id: first_ticket,
                count,
                version,
                now: unix_seconds(OffsetDateTime::now_utc()),
                doors,
            };
            batch::mint_batch(&signer, &spec, &dir)
                .map(|n| format!("{n} tickets in {}", dir.join(batch::BARCODES_FILE).display()))
                .map_err(|e| format!("{}: {e}", dir.display()))
        }),
        Command::Tickets(TicketsCommand::Qr { out: path, barcode }) => {
            qr_render::write_file(&barcode, &path).map(|()| String::new()).map_err(|e| e.to_string())
        }
        Command::PrintDefaultConfig => Ok(config::DEFAULT_CONFIG.trim_end().to_owned()),
        Command::Serve { config } => match serve(&config) {
            Ok(text) => Ok(text),
            Err(Failure::Other(message)) => Err(message),
            Err(Failure::Config(message)) => {
                let _ = writeln!(err, "cloud-api: {message}");
                return EXIT_CONFIG;
            }
        },
        Command::AddUser { config, email, name, role, password } => {
            add_user(&config, Credentials { email, password, name: Some(name), phone: None }, role)
        }
    };
    match result {
        Ok(text) if text.is_empty() => EXIT_OK,
        Ok(text) => {
            let _ = writeln!(out, "{text}");
            EXIT_OK
        }
        Err(message) => {
            let _ = writeln!(err, "cloud-api: {message}");
            EXIT_FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("runtime: {e}"))
}

fn serve(path: &std::path::Path) -> Result<String, Failure> {
    let config = Config::load(path).map_err(|e| Failure::Config(e.to_string()))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = runtime().map_err(Failure::Other)?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    runtime.spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => None } } => {}
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        stop.cancel();
    });
    let (ready, listening) = tokio::sync::oneshot::channel();
    runtime.spawn(async move {
        if let Ok(addr) = listening.await {
            notify_ready(&format!("serving on http://{addr}"));
        }
    });
    let result = runtime.block_on(server::run(&config, shutdown, Some(ready))).map_err(|e| e.to_string());
    runtime.shutdown_background();
    result.map(|()| String::new()).map_err(Failure::Other)
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

fn add_user(path: &std::path::Path, credentials: Credentials, role: Role) -> Result<String, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    runtime()?.block_on(async {
        let db = Db::open(&config.store).await.map_err(|e| e.to_string())?;
        let user =
            users::create(&db, &credentials, role, crate::common::clock::now()).await.map_err(|e| e.to_string())?;
        Ok(format!("user {} ({}) is {}", user.id, user.email, role.as_str()))
    })
}

fn retire(dir: &std::path::Path, kid: KeyId, at: OffsetDateTime) -> Result<String, String> {
    let path = dir.join(keystore::KEYRING_FILE);
    let mut ring = keystore::read_keyring(&path).map_err(|e| e.to_string())?;
    if !ring.retire(kid, unix_seconds(at)) {
        return Err(format!("{}: no key {kid}", path.display()));
    }
    keystore::write_keyring(&path, &ring).map_err(|e| e.to_string())?;
    Ok(String::new())
}

/// Reads a `--doors` file: checked once here, with the file named in the error.
fn read_doors(path: &std::path::Path) -> Result<batch::BatchDoors, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn mint(args: MintArgs) -> Result<String, String> {
    let signer = keystore::read_signer(&args.key).map_err(|e| e.to_string())?;
    let validity = Validity::new(args.valid_from.map(unix_seconds), args.valid_until.map(unix_seconds))
        .map_err(|e| format!("--valid-from/--valid-until: {e}"))?;
    let claims = TicketClaims {
        event_id: args.event,
        ticket_id: args.ticket,
        ticket_type_id: args.ticket_type,
        flags: TicketFlags { paper: args.paper, reentry_allowed: args.reentry },
        validity,
        seat: args.seat,
    };
    Ok(signer.mint(&claims))
}
