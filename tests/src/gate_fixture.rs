//! A gate in a temp dir, set up the way an operator would: issuer keys, minted
//! tickets with their signed manifest, a `gate.toml`, the manifest imported.
#![allow(clippy::expect_used, reason = "test fixture: failing loudly is its job")]

use std::path::Path;

use tempfile::TempDir;

use crate::{Run, run};

/// Event of every minted ticket.
pub const EVENT: u64 = 9;

/// The gate's files and the barcodes it can be shown.
pub struct GateFixture {
    dir: TempDir,
    /// Barcodes of the minted tickets, ticket ids 1, 2, 3…
    pub codes: Vec<String>,
}

impl GateFixture {
    /// Gate `g1` of venue 1 on list 1 with `tickets` imported tickets; `extra` is
    /// appended to `gate.toml` (device sections, `stdin = false`…).
    pub fn new(tickets: u32, extra: &str) -> Self {
        Self::build("g1", 1, tickets, extra, true)
    }

    /// Full control; `import` false leaves the replica empty.
    pub fn build(gate_id: &str, venue_id: u64, tickets: u32, extra: &str, import: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let fixture = Self { dir, codes: Vec::new() };
        fixture.ok("cloud-api", &["keys", "generate", "--dir", "keys"]);
        fixture.mint(tickets, venue_id, 1, "keys/signing-key.pem", "batch");
        let config = format!(
            "gate_id = \"{gate_id}\"\nvenue_id = {venue_id}\nlist_id = 1\nstate_dir = \"state\"\nkeyring = \"keys/keyring.json\"\n{extra}"
        );
        std::fs::write(fixture.path().join("gate.toml"), config).expect("write gate.toml");
        let text = std::fs::read_to_string(fixture.path().join("batch/barcodes.txt")).expect("barcodes");
        let fixture = Self { codes: text.lines().map(str::to_owned).collect(), ..fixture };
        if import {
            fixture.ok("gate-agent", &["replica", "import", "--config", "gate.toml", "batch/manifest.txm"]);
        }
        fixture
    }

    /// The gate's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Mints `count` tickets with `key` into `out` (a manifest of `version` for `venue_id`).
    pub fn mint(&self, count: u32, venue_id: u64, version: u64, key: &str, out: &str) {
        let (count, venue, version, event) =
            (count.to_string(), venue_id.to_string(), version.to_string(), EVENT.to_string());
        self.ok(
            "cloud-api",
            &[
                "tickets",
                "mint-batch",
                "--key",
                key,
                "--event",
                &event,
                "--count",
                &count,
                "--out",
                out,
                "--venue",
                &venue,
                "--version",
                &version,
            ],
        );
    }

    /// Runs `gate-agent SUBCOMMAND --config gate.toml ARGS…`.
    pub fn gate(&self, subcommand: &[&str], args: &[&str]) -> Run {
        let mut all = subcommand.to_vec();
        all.extend(["--config", "gate.toml"]);
        all.extend_from_slice(args);
        run("gate-agent", &all, self.path())
    }

    /// Runs a workspace binary here and requires success.
    pub fn ok(&self, bin: &str, args: &[&str]) -> Run {
        let out = run(bin, args, self.path());
        assert_eq!(out.code, 0, "{bin} {args:?}: {out:?}");
        out
    }
}
