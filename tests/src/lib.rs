//! Harness for tixgate's end-to-end tests: finds the real binaries, runs them in
//! temp dirs and captures what they print.

#![allow(clippy::expect_used, clippy::panic, reason = "a test harness: failing loudly is its job")]

pub mod browser;
pub mod cloud_server;
pub mod gate_fixture;
pub mod mqtt_session;
pub mod proxy;
pub mod qr_sets;
pub mod venue_fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A daemon's `main`.
type DaemonMain = fn() -> ExitCode;

/// The daemons one binary can stand in for, by the name it is started under
/// (see [`serve_daemons_from_this_binary`]).
const DAEMONS: [(&str, DaemonMain); 3] =
    [("cloud-api", cloud_api::cli::main), ("gate-agent", gate_agent::cli::main), ("sync-hub", sync_hub::cli::main)];

/// Where [`binary`] finds the daemons when this process serves them itself.
static DAEMON_LINKS: OnceLock<PathBuf> = OnceLock::new();

/// Runs the daemon this process was started as, busybox-style: when the file
/// name it was started under is `cloud-api`, `gate-agent` or `sync-hub`, that
/// daemon's own `main` runs and its exit code is returned; otherwise `None`.
///
/// The venue demo links the three daemons' libraries, so `cargo run --bin
/// tixgate-venue` builds the workspace once and the daemons it starts are the
/// same code as the packaged binaries, behind the same `main`.
pub fn run_as_daemon() -> Option<ExitCode> {
    let argv0 = std::env::args_os().next()?;
    let name = Path::new(&argv0).file_name()?.to_str()?.to_owned();
    DAEMONS.iter().find(|(daemon, _)| *daemon == name).map(|(_, main)| main())
}

/// Makes [`binary`] answer with links in `dir` to this very executable, one
/// per daemon, so every daemon this process starts runs [`run_as_daemon`].
pub fn serve_daemons_from_this_binary(dir: &Path) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    std::fs::create_dir_all(dir)?;
    for (name, _) in DAEMONS {
        std::os::unix::fs::symlink(&exe, dir.join(name))?;
    }
    DAEMON_LINKS
        .set(dir.to_owned())
        .map_err(|_| std::io::Error::other("the daemons are already served from another folder"))
}

/// Path of a workspace binary, built (or found up to date) once per test process.
///
/// Cargo builds only the binaries of the package under test, so a run of
/// `cargo test -p tixgate-tests` would otherwise use stale ones. The build
/// selects what `cargo test --workspace` selects (every package's binaries and
/// tests), so features unify the same way and, after that command, it has
/// nothing to do; building only the three daemons would resolve features
/// differently and compile their dependency tree a second time. A process that
/// serves the daemons itself ([`serve_daemons_from_this_binary`]) builds nothing.
pub fn binary(name: &str) -> PathBuf {
    if let Some(links) = DAEMON_LINKS.get() {
        return links.join(name);
    }
    static BUILT: OnceLock<()> = OnceLock::new();
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e-<hash> (a test) or target/<profile>/tixgate-venue
    // (a binary of this package) → target/<profile>/<name>
    let exe_dir = exe.parent().expect("target dir");
    let profile_dir = if exe_dir.ends_with("deps") { exe_dir.parent().expect("target profile dir") } else { exe_dir };
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--workspace", "--bins", "--tests"]);
        // `cargo test` and `cargo run` give this process the variables of its
        // own package; build scripts (ring's) watch some of them, so passing
        // them on would rebuild half the dependency tree here and again on the
        // next plain `cargo build`.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let per_package = ["CARGO_PKG_", "CARGO_CFG_", "CARGO_MANIFEST_", "CARGO_BIN_", "CARGO_CRATE_"]
                .iter()
                .any(|prefix| key.starts_with(prefix));
            if per_package || key == "CARGO_PRIMARY_PACKAGE" || key == "OUT_DIR" || key == "CARGO_TARGET_TMPDIR" {
                cargo.env_remove(&*key);
            }
        }
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        let status = cargo.current_dir(workspace_root()).status().expect("run cargo build");
        assert!(status.success(), "cargo build of the workspace binaries failed");
    });
    let path = profile_dir.join(name);
    assert!(path.exists(), "binary {} not found", path.display());
    path
}

/// What a finished command did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output as text.
    pub stdout: String,
    /// Standard error as text.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs a workspace binary with arguments, in `dir`.
pub fn run(bin: &str, args: &[&str], dir: &Path) -> Run {
    Command::new(binary(bin))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"))
        .into()
}
