//! `cloud-api`: thin shell over the library; see `cloud_api::cli` for exit codes.

fn main() -> std::process::ExitCode {
    cloud_api::cli::main()
}
