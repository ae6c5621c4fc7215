//! A gate that joins late gets its ticket list from the hub: it downloads the
//! manifest in chunks, resumes from what it already has after a SIGKILL, checks
//! and applies it, then admits — on MQTT and on QUIC.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tixgate_tests::venue_fixture::{BrokerChoice, Daemon, VenueFixture};

const WAIT: Duration = Duration::from_secs(60);
const TICKETS: u32 = 20_000;
/// Bytes of the manifest already on the gate's disk before it starts.
const ALREADY: usize = 100_000;

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).expect("JSON line")
}

fn late_gate_downloads_resumes_and_admits(transport: &str) {
    let venue = VenueFixture::new(TICKETS, &BrokerChoice::Embedded);
    venue.serve_manifests();
    venue.add_gate_without_replica("late-1", &format!("transport = \"{transport}\"\n"));
    let manifest = std::fs::read(venue.path().join("manifests/v1.txm")).expect("manifest");
    assert!(manifest.len() > 4 * ALREADY, "a manifest of several chunks: {} bytes", manifest.len());

    // A download cut short earlier: its first bytes are on disk, as the gate names them.
    let sha: String = Sha256::digest(&manifest).iter().take(6).map(|b| format!("{b:02x}")).collect();
    let incoming = venue.gate_dir("late-1").join("state/incoming");
    std::fs::create_dir_all(&incoming).expect("incoming");
    std::fs::write(incoming.join(format!("1-{sha}.part")), &manifest[..ALREADY]).expect("partial file");

    let _hub = venue.start_hub();
    let mut gate = venue.start_gate("late-1");
    let first = json(&gate.wait_for(WAIT, |l| l.contains("\"event\":\"replica_download\"")));
    assert_eq!(first["version"], 1);
    assert_eq!(first["resumed_from"], ALREADY as u64, "resumed from the bytes on disk: {first}");
    assert_eq!(first["total"], manifest.len() as u64);
    // Killed mid-download (or just after): nothing on disk may be left half-right.
    gate.kill();

    let mut gate: Daemon = venue.start_gate("late-1");
    gate.wait_for(WAIT, |l| l.contains("\"event\":\"hub_link\"") && l.contains("\"online\":true"));
    let applied = json(&gate.wait_for(WAIT, |l| l.contains("\"event\":\"replica\"")));
    assert_eq!(applied["version"], 1, "the downloaded list is applied: {applied}");
    gate.send_line(&venue.codes[TICKETS as usize - 1]);
    let decision = gate.next_decision(WAIT);
    assert_eq!(decision["decision"], "accept", "{decision}");
    assert_eq!(decision["offline"], false, "{decision}");
    assert!(!incoming.join(format!("1-{sha}.part")).exists(), "no partial file left behind");
    gate.close_stdin();
}

#[test]
fn a_late_gate_gets_its_ticket_list_over_mqtt_and_resumes_after_a_kill() {
    late_gate_downloads_resumes_and_admits("mqtt");
}

#[test]
fn a_late_gate_gets_its_ticket_list_over_quic_and_resumes_after_a_kill() {
    late_gate_downloads_resumes_and_admits("quic");
}
