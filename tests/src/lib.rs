//! Harness for tixgate's end-to-end tests: finds the real binaries, runs them in
//! temp dirs and captures what they print.

#![allow(clippy::expect_used, clippy::panic, reason = "a test harness: failing loudly is its job")]

pub mod browser;
pub mod gate_fixture;
pub mod proxy;
pub mod qr_sets;
pub mod venue_fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of a workspace binary, built (or found up to date) once per test process.
///
/// Cargo builds only the binaries of the package under test, so a run of
/// `cargo test -p tixgate-tests` would otherwise use stale ones. The build
/// selects what `cargo test --workspace` selects (every package's binaries and
/// tests), so features unify the same way and, after that command, it has
/// nothing to do; building only the three daemons would resolve features
/// differently and compile their dependency tree a second time.
pub fn binary(name: &str) -> PathBuf {
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
