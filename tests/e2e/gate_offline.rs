//! A gate configured from files, alone: manifest import, scans against the replica
//! and ledger, and refused manifests that leave the replica intact.

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;
use tixgate_tests::{Run, run};

struct Venue {
    dir: TempDir,
    codes: Vec<String>,
}

impl Venue {
    /// Issuer keys, 20 minted tickets with their manifest, and a gate config.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        assert_eq!(run("cloud-api", &["keys", "generate", "--dir", "keys"], p).code, 0);
        let out = run(
            "cloud-api",
            &[
                "tickets",
                "mint-batch",
                "--key",
                "keys/signing-key.pem",
                "--event",
                "9",
                "--count",
                "20",
                "--out",
                "batch",
                "--venue",
                "5",
            ],
            p,
        );
        assert_eq!(out.code, 0, "{out:?}");
        let codes = std::fs::read_to_string(p.join("batch/barcodes.txt")).unwrap().lines().map(str::to_owned).collect();
        std::fs::write(
            p.join("gate.toml"),
            "gate_id = \"north-1\"\nvenue_id = 5\nlist_id = 1\nstate_dir = \"state\"\nkeyring = \"keys/keyring.json\"\n",
        )
        .unwrap();
        Self { dir, codes }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn gate(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.insert(1, "--config");
        all.insert(2, "gate.toml");
        run("gate-agent", &all, self.path())
    }

    fn import(&self, manifest: &str) -> Run {
        run("gate-agent", &["replica", "import", "--config", "gate.toml", manifest], self.path())
    }

    fn scan(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["scan"];
        all.extend_from_slice(args);
        let out = self.gate(&all);
        assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
        (out.code, serde_json::from_str(out.stdout.trim()).unwrap())
    }
}

#[test]
fn a_gate_admits_once_then_rejects_with_reasons_and_keeps_every_scan() {
    let v = Venue::new();
    let before = v.gate(&["scan", &v.codes[0]]);
    assert_eq!(before.code, 2, "no replica yet: {before:?}");
    assert!(before.stderr.contains("import a manifest first"), "{before:?}");

    let out = v.import("batch/manifest.txm");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("version 1: 20 tickets"), "{out:?}");

    let (code, json) = v.scan(&[&v.codes[0]]);
    assert_eq!((code, json["decision"].as_str()), (0, Some("accept")), "{json}");
    assert_eq!(json["ticket"]["ticket_id"], 1);
    let (code, json) = v.scan(&[&v.codes[0]]);
    assert_eq!((code, json["reason"].as_str()), (1, Some("already_redeemed")), "{json}");
    let (code, _) = v.scan(&["--exit", &v.codes[0]]);
    assert_eq!(code, 0, "exits are recorded");
    let (code, json) = v.scan(&[&v.codes[0]]);
    assert_eq!((code, json["reason"].as_str()), (1, Some("already_redeemed")), "no re-entry on this list: {json}");
    let (_, json) = v.scan(&["garbage"]);
    assert_eq!(json["reason"], "malformed");
    let (code, json) = v.scan(&[&v.codes[1]]);
    assert_eq!((code, json["decision"].as_str()), (0, Some("accept")));

    let out = v.gate(&["scans"]);
    assert_eq!(out.code, 0, "{out:?}");
    let scans: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(scans.len(), 6, "every scan is in the ledger, rejected ones too");
    assert_eq!(scans[0]["scan_id"], "north-1:1");
    assert_eq!(scans[0]["decision"], "accept");
    assert_eq!(scans[2]["direction"], "exit");
    assert_eq!(scans[4]["ticket_id"], Value::Null);
    assert!(scans.windows(2).all(|w| w[0]["hlc"].as_u64() < w[1]["hlc"].as_u64()), "logical times increase");
    assert!(!out.stdout.contains("TX1:"), "the ledger never stores codes");
    let later = v.gate(&["scans", "--since", "4"]);
    assert_eq!(later.stdout.lines().count(), 2);
}

#[test]
fn forged_rolled_back_and_foreign_manifests_are_refused_and_change_nothing() {
    let v = Venue::new();
    let p = v.path();
    assert_eq!(v.import("batch/manifest.txm").code, 0);

    let mut forged = std::fs::read(p.join("batch/manifest.txm")).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 0x55;
    std::fs::write(p.join("forged.txm"), forged).unwrap();
    let out = v.import("forged.txm");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("signature"), "{out:?}");

    std::fs::write(p.join("unsigned.txm"), b"{\"tickets\":[]}").unwrap();
    assert_eq!(v.import("unsigned.txm").code, 1);

    let again = v.import("batch/manifest.txm");
    assert_eq!(again.code, 1, "the same version twice is a rollback: {again:?}");
    assert!(again.stderr.contains("not newer"), "{again:?}");

    // Another venue's manifest, validly signed.
    let out = run(
        "cloud-api",
        &[
            "tickets",
            "mint-batch",
            "--key",
            "keys/signing-key.pem",
            "--event",
            "9",
            "--count",
            "2",
            "--out",
            "other",
            "--venue",
            "6",
            "--version",
            "9",
        ],
        p,
    );
    assert_eq!(out.code, 0);
    let foreign = v.import("other/manifest.txm");
    assert_eq!(foreign.code, 1);
    assert!(foreign.stderr.contains("venue 6"), "{foreign:?}");

    // A manifest from a stranger's key.
    assert_eq!(run("cloud-api", &["keys", "generate", "--dir", "stranger"], p).code, 0);
    let out = run(
        "cloud-api",
        &[
            "tickets",
            "mint-batch",
            "--key",
            "stranger/signing-key.pem",
            "--event",
            "9",
            "--count",
            "2",
            "--out",
            "strange",
            "--venue",
            "5",
            "--version",
            "9",
        ],
        p,
    );
    assert_eq!(out.code, 0);
    let strange = v.import("strange/manifest.txm");
    assert_eq!(strange.code, 1);
    assert!(strange.stderr.contains("unknown key"), "{strange:?}");

    // The replica is as it was: all 20 tickets, at version 1.
    let (code, json) = v.scan(&[&v.codes[19]]);
    assert_eq!((code, json["decision"].as_str()), (0, Some("accept")), "{json}");
}

#[test]
fn a_bad_config_names_the_key_and_exits_2() {
    let v = Venue::new();
    std::fs::write(v.path().join("gate.toml"), "gate_id = \"north-1\"\nvenue = 5\n").unwrap();
    let out = v.gate(&["scans"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("venue"), "{out:?}");
}
