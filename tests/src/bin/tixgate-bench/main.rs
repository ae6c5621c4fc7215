//! `tixgate-bench`: every benchmark of the workspace, one sub-command per area.
//! Each prints readable figures, measures its reference in the same run, and ends
//! with one JSON line. Run in release: `cargo run --release --bin tixgate-bench -- AREA`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod codes;
mod gate;
mod hub;
mod qr;
mod sale;

/// tixgate benchmarks.
#[derive(Debug, Parser)]
#[command(name = "tixgate-bench", version, about)]
struct Args {
    /// The area to measure.
    #[command(subcommand)]
    area: Area,
}

#[derive(Debug, Subcommand)]
enum Area {
    /// Static (v1) against rotating (v2) ticket codes: size, QR version and
    /// module size, and read rate and time on generated photos of a phone
    /// screen (perspective, glare, moiré, blur, noise), each pair photographed alike.
    Codes {
        /// Also write the first photos of each version into this folder, to look at.
        #[arg(long)]
        save: Option<std::path::PathBuf>,
    },
    /// A gate with a 1,000,000-ticket replica: decision and durable-scan latency
    /// against bare verify+lookup and bare fsynced commit, import time, daemon
    /// memory, camera path.
    Gate,
    /// The venue hub with 100 simulated gates over the embedded broker,
    /// Mosquitto and QUIC: claim round trip against a bare ping-pong, durable
    /// ingest against one fsynced commit per scan, broadcast spread.
    Hub {
        /// Only these transports (embedded, mosquitto, quic); default all.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Camera path: QR decode rate and time on real photos, synthetic degraded
    /// tickets and 1280x720 frames, against a single rxing pass.
    Qr,
    /// Flash sale through the cloud API on SQLite and PostgreSQL: 1,000
    /// tickets, 200 clients, 50,000 reserve attempts; oversold count, holds/s
    /// and latency against the store's bare hot-row update rate; the session
    /// check's share of an authenticated request.
    Sale {
        /// Only these stores (sqlite, postgres); default both.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
}

/// The p-quantile (nearest rank) of sorted values; NaN when there are none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(rank).copied().unwrap_or(f64::NAN)
}

fn main() -> ExitCode {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; figures mean little. Use --release.");
    }
    let result = match Args::parse().area {
        Area::Codes { save } => codes::run(save.as_deref()),
        Area::Gate => gate::run(),
        Area::Hub { only } => hub::run(&only),
        Area::Qr => qr::run(),
        Area::Sale { only } => sale::run(&only),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tixgate-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
