//! A manifest import killed with SIGKILL at any moment leaves either the old
//! replica or the new one, never a mix.

use std::process::{Command, Stdio};
use std::time::Instant;

use cloud_api::tickets::batch::single_list_snapshot;
use schema::entry::TicketStatus;
use schema::manifest::{Manifest, TicketRecord};
use serde_json::Value;
use tixgate_tests::gate_fixture::GateFixture;
use tixgate_tests::{binary, run};

fn snapshot(version: u64, tickets: u64) -> Manifest {
    let records = (1..=tickets)
        .map(|ticket_id| TicketRecord {
            ticket_id,
            event_id: 9,
            ticket_type_id: 1,
            status: TicketStatus::Valid,
            sealed_holder: Some(vec![7; 40]),
        })
        .collect();
    single_list_snapshot(1, version, 9, 1, 0, records)
}

fn status(dir: &std::path::Path) -> (u64, u64) {
    let out = run("gate-agent", &["replica", "status", "--config", "gate.toml"], dir);
    assert_eq!(out.code, 0, "{out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    (v["version"].as_u64().unwrap(), v["tickets"].as_u64().unwrap())
}

#[test]
fn an_import_killed_midway_leaves_the_old_replica_whole() {
    let gate = GateFixture::build("g1", 1, 1, "", false);
    let p = gate.path();
    let signer = cloud_api::common::keystore::read_signer(&p.join("keys/signing-key.pem")).unwrap();
    std::fs::write(p.join("v1.txm"), snapshot(1, 10).sign(&signer)).unwrap();
    std::fs::write(p.join("v2.txm"), snapshot(2, 300_000).sign(&signer)).unwrap();
    gate.ok("gate-agent", &["replica", "import", "--config", "gate.toml", "v1.txm"]);

    // How long a whole import takes here, on a copy of the state.
    let copy = tempfile::tempdir().unwrap();
    for f in ["gate.toml", "v2.txm"] {
        std::fs::copy(p.join(f), copy.path().join(f)).unwrap();
    }
    std::fs::create_dir(copy.path().join("keys")).unwrap();
    std::fs::copy(p.join("keys/keyring.json"), copy.path().join("keys/keyring.json")).unwrap();
    let start = Instant::now();
    assert_eq!(run("gate-agent", &["replica", "import", "--config", "gate.toml", "v2.txm"], copy.path()).code, 0);
    let full = start.elapsed();
    assert_eq!(status(copy.path()), (2, 300_000));

    // Kill at fractions of that time: each run must leave v1 or v2, whole.
    let mut killed_midway = 0;
    for fraction in [0.2, 0.4, 0.6, 0.8] {
        let mut child = Command::new(binary("gate-agent"))
            .args(["replica", "import", "--config", "gate.toml", "v2.txm"])
            .current_dir(p)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        child.kill().unwrap();
        child.wait().unwrap();
        match status(p) {
            (1, 10) => killed_midway += 1,
            (2, 300_000) => break, // finished before the kill
            other => panic!("replica torn by SIGKILL at {fraction}: {other:?}"),
        }
    }
    assert!(killed_midway > 0, "no kill landed during the import (it took {full:?})");
    // And the interrupted import can simply be run again.
    if status(p).0 == 1 {
        assert_eq!(run("gate-agent", &["replica", "import", "--config", "gate.toml", "v2.txm"], p).code, 0);
    }
    assert_eq!(status(p), (2, 300_000));
}
