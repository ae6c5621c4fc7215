//! Command line of `gate-agent`: the field tools `decode` and `verify`.
//!
//! Exit codes: 0 accept / success; 1 reject, or `decode` read no code (any
//! reason, one line on stderr); 2 usage error (bad arguments; for `verify`, an
//! unreadable keyring or image file).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use schema::{DecisionLine, Keyring, Reason, UnixSeconds, check_offline};
use time::OffsetDateTime;

use crate::qr::{self, QrError};

/// Exit code of an accepted ticket or a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code of a rejected ticket, or of an image with no readable code.
pub const EXIT_REJECT: u8 = 1;
/// Exit code of a usage error: bad arguments or unreadable input files.
pub const EXIT_USAGE: u8 = 2;

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
        /// Read the barcode from a photo instead of the argument.
        #[arg(long, conflicts_with = "barcode", required_unless_present = "barcode")]
        image: Option<PathBuf>,
        /// The barcode text.
        barcode: Option<String>,
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
        Command::Verify {
            keyring,
            event,
            at,
            image,
            barcode,
        } => {
            let now = keys_time(at.unwrap_or_else(OffsetDateTime::now_utc));
            verify(
                &keyring,
                event,
                now,
                image.as_deref(),
                barcode.as_deref(),
                out,
                err,
            )
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

fn verify(
    keyring: &Path,
    event: Option<u64>,
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
    print_decision(&check_offline(&ring, &scanned, event, now), out, err)
}

/// Reads and checks a keyring file; the error names the file.
pub fn load_keyring(path: &Path) -> Result<Keyring, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read keyring {}: {e}", path.display()))?;
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
