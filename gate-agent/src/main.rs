//! `gate-agent`: thin shell over the library; see `gate_agent::cli` for exit codes.

use std::process::ExitCode;

use clap::Parser;
use gate_agent::cli::{Cli, EXIT_USAGE, run};

fn main() -> ExitCode {
    // Diagnostics (hub link state) go to stderr; stdout carries decisions.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    ExitCode::from(run(cli, &mut std::io::stdout(), &mut std::io::stderr()))
}
