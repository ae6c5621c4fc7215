//! The command line: `run`, `enroll-gate`, `revoke-gate`, `gates`, `conflicts`,
//! `broker-files`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::HubConfig;
use crate::core::now_ms;
use crate::daemon;
use crate::enroll;
use crate::status::Status;

/// Exit code for a configuration error (EX_CONFIG), so systemd does not restart in a loop.
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(name = "sync-hub", about = "tixgate venue hub: one ticket, one entry, across every gate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the hub.
    Run {
        /// hub.toml
        #[arg(long)]
        config: PathBuf,
    },
    /// Enrols a gate: makes its key, registers it, writes its folder.
    EnrollGate {
        /// hub.toml
        #[arg(long)]
        config: PathBuf,
        /// The gate's id.
        #[arg(long)]
        gate_id: String,
        /// The folder to write (`gate-key.pem`, `enrolment.json`).
        #[arg(long)]
        out: PathBuf,
    },
    /// Revokes a gate: its frames are refused from now on.
    RevokeGate {
        /// hub.toml
        #[arg(long)]
        config: PathBuf,
        /// The gate's id.
        #[arg(long)]
        gate_id: String,
    },
    /// Lists enrolled gates as JSON lines.
    Gates {
        /// hub.toml
        #[arg(long)]
        config: PathBuf,
    },
    /// Lists recorded conflicts (double entries) as JSON lines.
    Conflicts {
        /// hub.toml
        #[arg(long)]
        config: PathBuf,
    },
    /// Writes an external Mosquitto's `password_file` and `acl_file` (each gate
    /// its own topics only); run again after enrolling or revoking a gate.
    BrokerFiles {
        /// hub.toml
        #[arg(long)]
        config: PathBuf,
        /// The folder to write `passwd` and `acl` into.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,rumqttd=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config_path = match &cli.command {
        Command::Run { config }
        | Command::EnrollGate { config, .. }
        | Command::RevokeGate { config, .. }
        | Command::Gates { config }
        | Command::Conflicts { config }
        | Command::BrokerFiles { config, .. } => config.clone(),
    };
    let config = match HubConfig::load(&config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sync-hub: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match execute(cli.command, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sync-hub: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command, config: HubConfig) -> anyhow::Result<()> {
    match command {
        Command::Run { .. } => run(config),
        Command::EnrollGate { gate_id, out, .. } => {
            let enrolment = enroll::enroll_gate(&config, &gate_id, &out, now_ms())?;
            // The MQTT password stays in the folder's 0600 files: a terminal's
            // scrollback or a deployment log is no place for it.
            let line = serde_json::json!({
                "gate_id": enrolment.gate_id,
                "venue_id": enrolment.venue_id,
                "mqtt_address": enrolment.mqtt_address,
                "quic_address": enrolment.quic_address,
                "folder": out,
            });
            println!("{line}");
            Ok(())
        }
        Command::RevokeGate { gate_id, .. } => {
            enroll::open_store(&config)?.revoke(&gate_id, now_ms())?;
            Ok(())
        }
        Command::Gates { .. } => {
            for gate in enroll::open_store(&config)?.gates()? {
                println!("{}", serde_json::to_string(&gate)?);
            }
            Ok(())
        }
        Command::Conflicts { .. } => {
            for conflict in enroll::open_store(&config)?.conflicts()? {
                println!("{}", serde_json::to_string(&conflict)?);
            }
            Ok(())
        }
        Command::BrokerFiles { out, .. } => {
            let (passwd, acl) = crate::broker_files::write(&config, &out)?;
            let line = serde_json::json!({ "password_file": passwd, "acl_file": acl });
            println!("{line}");
            Ok(())
        }
    }
}

fn run(config: HubConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let shutdown = CancellationToken::new();
    let result = runtime.block_on(async {
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            signals.cancel();
        });
        daemon::run(config, Status::default(), shutdown, |ready| {
            let line = serde_json::json!({
                "event": "ready",
                "mqtt": ready.mqtt,
                "quic": ready.quic.map(|a| a.to_string()),
                "http": ready.http.to_string(),
            });
            println!("{line}");
            notify_ready(&format!("taking frames; dashboard on http://{}", ready.http));
        })
        .await
    });
    // The embedded broker's threads never return; leave them behind.
    runtime.shutdown_background();
    result.map_err(Into::into)
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

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
