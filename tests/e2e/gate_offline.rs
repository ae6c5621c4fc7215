//! A gate configured from files, alone: manifest import, scans against the replica
//! and ledger, and refused manifests that leave the replica intact.

use serde_json::Value;
use tixgate_tests::Run;
use tixgate_tests::gate_fixture::GateFixture;

/// Gate `north-1` of venue 5 with 20 minted tickets, replica still empty.
fn venue() -> GateFixture {
    GateFixture::build("north-1", 5, 20, "", false)
}

fn import(v: &GateFixture, manifest: &str) -> Run {
    v.gate(&["replica", "import"], &[manifest])
}

fn scan(v: &GateFixture, args: &[&str]) -> (i32, Value) {
    let out = v.gate(&["scan"], args);
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    (out.code, serde_json::from_str(out.stdout.trim()).unwrap())
}

#[test]
fn a_gate_admits_once_then_rejects_with_reasons_and_keeps_every_scan() {
    let v = venue();
    let before = v.gate(&["scan"], &[&v.codes[0]]);
    assert_eq!(before.code, 2, "no replica yet: {before:?}");
    assert!(before.stderr.contains("import a manifest first"), "{before:?}");

    let out = import(&v, "batch/manifest.txm");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("version 1: 20 tickets"), "{out:?}");

    let (code, json) = scan(&v, &[&v.codes[0]]);
    assert_eq!((code, json["decision"].as_str()), (0, Some("accept")), "{json}");
    assert_eq!(json["ticket"]["ticket_id"], 1);
    let (code, json) = scan(&v, &[&v.codes[0]]);
    assert_eq!((code, json["reason"].as_str()), (1, Some("already_redeemed")), "{json}");
    let (code, _) = scan(&v, &["--exit", &v.codes[0]]);
    assert_eq!(code, 0, "exits are recorded");
    let (code, json) = scan(&v, &[&v.codes[0]]);
    assert_eq!((code, json["reason"].as_str()), (1, Some("already_redeemed")), "no re-entry on this list: {json}");
    let (_, json) = scan(&v, &["garbage"]);
    assert_eq!(json["reason"], "malformed");
    let (code, json) = scan(&v, &[&v.codes[1]]);
    assert_eq!((code, json["decision"].as_str()), (0, Some("accept")));

    let out = v.gate(&["scans"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let scans: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(scans.len(), 6, "every scan is in the ledger, rejected ones too");
    assert_eq!(scans[0]["scan_id"], "north-1:1");
    assert_eq!(scans[0]["decision"], "accept");
    assert_eq!(scans[2]["direction"], "exit");
    assert_eq!(scans[4]["ticket_id"], Value::Null);
    assert!(scans.windows(2).all(|w| w[0]["hlc"].as_u64() < w[1]["hlc"].as_u64()), "logical times increase");
    assert!(!out.stdout.contains("TX1:"), "the ledger never stores codes");
    let later = v.gate(&["scans"], &["--since", "4"]);
    assert_eq!(later.stdout.lines().count(), 2);
}

#[test]
fn forged_rolled_back_and_foreign_manifests_are_refused_and_change_nothing() {
    let v = venue();
    let p = v.path();
    assert_eq!(import(&v, "batch/manifest.txm").code, 0);

    let mut forged = std::fs::read(p.join("batch/manifest.txm")).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 0x55;
    std::fs::write(p.join("forged.txm"), forged).unwrap();
    let out = import(&v, "forged.txm");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("signature"), "{out:?}");

    std::fs::write(p.join("unsigned.txm"), b"{\"tickets\":[]}").unwrap();
    assert_eq!(import(&v, "unsigned.txm").code, 1);

    let again = import(&v, "batch/manifest.txm");
    assert_eq!(again.code, 1, "the same version twice is a rollback: {again:?}");
    assert!(again.stderr.contains("not newer"), "{again:?}");

    // Another venue's manifest, validly signed.
    v.mint(2, 6, 9, "keys/signing-key.pem", "other");
    let foreign = import(&v, "other/manifest.txm");
    assert_eq!(foreign.code, 1);
    assert!(foreign.stderr.contains("venue 6"), "{foreign:?}");

    // A manifest from a stranger's key.
    v.ok("cloud-api", &["keys", "generate", "--dir", "stranger"]);
    v.mint(2, 5, 9, "stranger/signing-key.pem", "strange");
    let strange = import(&v, "strange/manifest.txm");
    assert_eq!(strange.code, 1);
    assert!(strange.stderr.contains("unknown key"), "{strange:?}");

    // The replica is as it was: all 20 tickets, at version 1.
    let (code, json) = scan(&v, &[&v.codes[19]]);
    assert_eq!((code, json["decision"].as_str()), (0, Some("accept")), "{json}");
}

#[test]
fn a_bad_config_names_the_key_and_exits_2() {
    let v = venue();
    std::fs::write(v.path().join("gate.toml"), "gate_id = \"north-1\"\nvenue = 5\n").unwrap();
    let out = v.gate(&["scans"], &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("venue"), "{out:?}");
}
