//! `sync-hub`: the venue hub's command line. Parsing only; the work is in the library.

fn main() -> std::process::ExitCode {
    sync_hub::cli::main()
}
