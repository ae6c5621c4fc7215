//! `gate-agent`: thin shell over the library; see `gate_agent::cli` for exit codes.

fn main() -> std::process::ExitCode {
    gate_agent::cli::main()
}
