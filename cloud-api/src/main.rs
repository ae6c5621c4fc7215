//! `cloud-api`: thin shell over the library; see `cloud_api::cli` for exit codes.

use std::process::ExitCode;

use clap::Parser;
use cloud_api::cli::{Cli, EXIT_USAGE, run};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    ExitCode::from(run(cli, &mut std::io::stdout(), &mut std::io::stderr()))
}
