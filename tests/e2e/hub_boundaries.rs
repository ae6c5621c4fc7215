//! Hostile input at the running hub's doors: garbage and oversized frames over
//! MQTT and QUIC from an enrolled identity, and a forged ticket list dropped
//! into the hub's manifest folder. Each is refused and counted, nothing is
//! stored, and the honest gate goes on working. (Strangers, borrowed sessions
//! and revoked gates: `hub_dashboard`; other venues' certificates: `hub_quic`;
//! malformed HTTP bodies: cloud-api's `input` suite on both stores.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schema::sync::quic::{framed, length_prefix};
use schema::sync::{MAX_FRAME, mqtt_client_id, topics};
use serde_json::Value;
use tixgate_tests::run;
use tixgate_tests::venue_fixture::{BrokerChoice, Daemon, VenueFixture, http_get};

const WAIT: Duration = Duration::from_secs(30);
/// The code the hub closes a QUIC connection with after a bad frame.
const CLOSED_FOR_BAD_FRAME: u64 = 2;

fn refused(hub: &Daemon) -> BTreeMap<String, u64> {
    let http = hub.ready.as_ref().unwrap()["http"].as_str().unwrap().to_owned();
    let (_, body) = http_get(&http, "/api/status", None);
    let status: Value = serde_json::from_str(&body).unwrap();
    serde_json::from_value(status["refused"].clone()).unwrap()
}

fn total(map: &BTreeMap<String, u64>) -> u64 {
    map.values().sum()
}

fn hub_scans(venue: &VenueFixture) -> i64 {
    let db = rusqlite::Connection::open(venue.path().join("hub-state/hub.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM scans", [], |r| r.get(0)).unwrap()
}

#[test]
fn hostile_frames_and_a_forged_ticket_list_are_refused_counted_and_store_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let venue = VenueFixture::new(3, &BrokerChoice::Embedded);
    venue.serve_manifests();
    venue.add_gate("north-1", "");
    // An enrolled identity the test speaks for: a stolen scanner, or a bug.
    venue.add_gate_without_replica("rogue", "");
    let hub = venue.start_hub();
    let mut gate = venue.start_gate("north-1");
    gate.wait_for(WAIT, |l| l.contains("\"event\":\"hub_link\"") && l.contains("\"online\":true"));
    gate.send_line(&venue.codes[0]);
    assert_eq!(gate.next_decision(WAIT)["decision"], "accept");
    let before = refused(&hub);
    let enrolment: Value = serde_json::from_str(
        &std::fs::read_to_string(venue.gate_dir("rogue").join("enrolment/enrolment.json")).unwrap(),
    )
    .unwrap();
    let venue_id = venue.venue_id as u32;

    // MQTT: garbage on its own topic, then a frame over the size limit.
    let (host, port) = venue.mqtt_address.rsplit_once(':').unwrap();
    let mut options = rumqttc::MqttOptions::new(mqtt_client_id(venue_id, "rogue", "out"), host, port.parse().unwrap());
    options.set_credentials("rogue", enrolment["mqtt_password"].as_str().unwrap());
    options.set_max_packet_size(4 * MAX_FRAME, 4 * MAX_FRAME);
    let (client, mut connection) = rumqttc::Client::new(options, 16);
    let (tx, events) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            let end = event.is_err();
            let _ = tx.send(event.map_err(|e| e.to_string()));
            if end {
                return;
            }
        }
    });
    let garbage: [&[u8]; 4] = [b"", b"{\"claim\":1}", &[0xFF; 300], b"TXM1 not a frame at all"];
    let topic = topics::up(venue_id, "rogue");
    for payload in garbage {
        client.publish(&topic, rumqttc::QoS::AtLeastOnce, false, payload.to_vec()).unwrap();
    }
    let end = Instant::now() + WAIT;
    while total(&refused(&hub)) < total(&before) + garbage.len() as u64 {
        assert!(Instant::now() < end, "garbage not counted: {:?}", refused(&hub));
        std::thread::sleep(Duration::from_millis(100));
    }
    while let Ok(event) = events.try_recv() {
        assert!(event.is_ok(), "the connection held through the garbage: {event:?}");
    }
    client.publish(&topic, rumqttc::QoS::AtLeastOnce, false, vec![0u8; 2 * MAX_FRAME]).unwrap();
    let end = Instant::now() + WAIT;
    let dropped = loop {
        match events.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(Err(_)) => break true,
            Ok(Ok(_)) => {}
            Err(_) => break false,
        }
    };
    assert!(dropped, "the broker drops a client that sends a frame over the limit");

    // QUIC: the same identity's certificate, a garbage frame, then an oversized one.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let closed_with = runtime.block_on(async {
        let mut endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
        endpoint.set_default_client_config(
            gate_agent::hub_link::quic::client_config(&venue.gate_dir("rogue").join("enrolment")).unwrap(),
        );
        let addr = venue.quic_address.parse().unwrap();
        let connection = endpoint
            .connect(addr, schema::sync::quic::HUB_SERVER_NAME)
            .unwrap()
            .await
            .expect("an enrolled gate connects");
        let (mut send, _recv) = connection.open_bi().await.unwrap();
        send.write_all(&framed(&[0xAB; 200])).await.unwrap();
        send.write_all(&length_prefix(MAX_FRAME + 1)).await.unwrap();
        send.write_all(&[0u8; 1024]).await.unwrap();
        match tokio::time::timeout(WAIT, connection.closed()).await.expect("the hub closes the connection") {
            quinn::ConnectionError::ApplicationClosed(close) => Some(close.error_code.into_inner()),
            _ => None,
        }
    });
    assert_eq!(closed_with, Some(CLOSED_FOR_BAD_FRAME), "an oversized frame ends the connection");
    // The core counts the garbage frame on its own thread: wait for it.
    let end = Instant::now() + WAIT;
    while total(&refused(&hub)) < total(&before) + garbage.len() as u64 + 2 {
        assert!(Instant::now() < end, "every hostile frame counted: {:?}", refused(&hub));
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = refused(&hub);
    assert_eq!(
        after.get("oversized frame").copied().unwrap_or(0),
        before.get("oversized frame").copied().unwrap_or(0) + 1
    );

    // A ticket list signed by someone else's key appears in the hub's folder as
    // version 2: the hub offers it, the gate refuses it and keeps version 1.
    assert_eq!(run("cloud-api", &["keys", "generate", "--dir", "forger"], venue.path()).code, 0);
    let venue_arg = venue.venue_id.to_string();
    let minted = run(
        "cloud-api",
        &[
            "tickets",
            "mint-batch",
            "--key",
            "forger/signing-key.pem",
            "--event",
            "1",
            "--count",
            "3",
            "--out",
            "forged",
            "--venue",
            &venue_arg,
            "--version",
            "2",
        ],
        venue.path(),
    );
    assert_eq!(minted.code, 0, "{minted:?}");
    std::fs::copy(venue.path().join("forged/manifest.txm"), venue.path().join("manifests/v2.txm")).unwrap();
    let line = gate.wait_for(WAIT, |l| l.contains("\"event\":\"replica\"") && l.contains("\"error\""));
    assert!(line.contains("unknown key"), "refused for its signer: {line}");

    // Nothing stored; the gate still knows its tickets and who is in.
    assert_eq!(hub_scans(&venue), 1, "only the honest scan is stored");
    gate.send_line(&venue.codes[1]);
    assert_eq!(gate.next_decision(WAIT)["decision"], "accept");
    gate.send_line(&venue.codes[0]);
    assert_eq!(gate.next_decision(WAIT)["reason"], "already_redeemed");
    eprintln!("hostile input refused and counted: {:?}", refused(&hub));
    gate.close_stdin();
}

#[test]
fn enrolling_a_gate_prints_where_its_files_are_never_its_password() {
    let venue = VenueFixture::new(1, &BrokerChoice::Embedded);
    let out = venue.gate_dir("door").join("enrolment");
    let folder = out.to_str().unwrap();
    let printed =
        run("sync-hub", &["enroll-gate", "--config", "hub.toml", "--gate-id", "door", "--out", folder], venue.path());
    assert_eq!(printed.code, 0, "{printed:?}");
    let enrolment: Value = serde_json::from_str(&std::fs::read_to_string(out.join("enrolment.json")).unwrap()).unwrap();
    let password = enrolment["mqtt_password"].as_str().unwrap();
    assert!(!printed.stdout.contains(password) && !printed.stderr.contains(password), "{printed:?}");
    let line: Value = serde_json::from_str(printed.stdout.trim()).unwrap();
    assert_eq!((line["gate_id"].as_str(), line["folder"].as_str()), (Some("door"), Some(folder)), "{line}");
}
