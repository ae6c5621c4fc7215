//! The venue's doors set in the cloud and obeyed at the gate, through the hub:
//! the hub reports its enrolled gate, the organizer assigns it to the main
//! entrance and it works the lists there; a list moved to the VIP entrance
//! reaches the online gate within 30 s, which then sends a Standing ticket
//! there; a gate revoked in the cloud is revoked at the hub.

use std::time::{Duration, Instant};

use cloud_api::venue::gates::{self, GateAssignment};
use cloud_api::venue::layout::{self, NewEntrance};
use cloud_api::venue::lists::{self, NewCheckinList};
use cloud_api::{common::clock, params, venue::feed};
use tixgate_tests::venue_fixture::{BrokerChoice, VenueFixture};
use tokio_util::sync::CancellationToken;

use crate::cloud_venue::{cloud_config, point_hub_at_cloud, sell};

const WAIT: Duration = Duration::from_secs(60);

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn list_at(name: &str, type_id: i64, entrance_id: i64) -> NewCheckinList {
    serde_json::from_value(serde_json::json!({
        "name": name, "ticket_type_ids": [type_id], "entrance_ids": [entrance_id], "allow_reentry": true
    }))
    .expect("a check-in list")
}

#[test]
fn a_gate_assigned_in_the_cloud_obeys_its_entrance_a_changed_list_and_a_revocation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let venue = VenueFixture::new(1, &BrokerChoice::Embedded);
    let venue_id = venue.venue_id as i64;
    let cloud_dir = tempfile::tempdir().expect("cloud dir");
    let config = cloud_config(&venue, cloud_dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let state = runtime.block_on(cloud_api::server::state(&config)).expect("cloud state");
    let db = &state.db;

    // The organizer sells two Standing tickets, and sets up a main and a VIP
    // entrance with one list: Standing at Main.
    let standing = serde_json::json!({"name": "Standing", "price_minor": 1000, "currency": "EUR", "total": 2});
    let (organizer, token, codes, list, main, vip, type_id) = runtime.block_on(async {
        let sale = sell(&state, venue_id, standing, 2).await;
        let org = sale.organizer;
        let now = clock::now();
        let device = feed::NewDevice { name: "hub".into() };
        let token = feed::add_device(db, &state.tokens, &org, venue_id, &device, now).await.expect("device");
        let codes: Vec<String> = db
            .query("SELECT barcode FROM tickets ORDER BY id", &[])
            .await
            .expect("tickets")
            .iter()
            .map(|r| r.text(0).expect("barcode"))
            .collect();
        let row = db.query_one("SELECT event_id, ticket_type_id FROM tickets LIMIT 1", &[]).await.expect("ticket");
        let (event_id, type_id) = (row.int(0).expect("event"), row.int(1).expect("type"));
        let entrance = |name: &str| NewEntrance { name: name.into() };
        let main = layout::add_entrance(db, &org, venue_id, &entrance("Main"), now).await.expect("main");
        let vip = layout::add_entrance(db, &org, venue_id, &entrance("VIP"), now).await.expect("vip");
        let list = lists::create(db, &org, event_id, &list_at("Floor", type_id, main.id), now).await.expect("list");
        (org, token.token, codes, list, main, vip, type_id)
    });
    point_hub_at_cloud(&venue, &config, &token);
    // No list in its config: it works the entrance the cloud gives it.
    venue.add_gate_with("g1", "", "");

    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server_config = config.clone();
    let server = runtime.spawn(async move { cloud_api::server::run(&server_config, stop, None).await });
    let _hub = venue.start_hub();
    let mut gate = venue.start_gate("g1");
    gate.wait_for(WAIT, |l| l.contains("\"event\":\"hub_link\"") && l.contains("\"online\":true"));

    // The hub reports g1; the organizer assigns it to Main; the gate hears it.
    wait_until("the cloud knows the hub's gate", || {
        runtime
            .block_on(db.query("SELECT 1 FROM venue_gates WHERE venue_id = ?1 AND gate_id = 'g1'", params![venue_id]))
            .is_ok_and(|rows| rows.len() == 1)
    });
    let to_main = GateAssignment { entrance_id: Some(main.id) };
    runtime.block_on(gates::assign(db, &organizer, venue_id, "g1", &to_main, clock::now())).expect("assign");
    let told = gate.wait_for(WAIT, |l| l.contains("\"event\":\"entrance\""));
    assert!(told.contains("\"name\":\"Main\""), "{told}");
    gate.send_line(&codes[0]);
    let first = gate.next_decision(WAIT);
    assert_eq!((&first["decision"], &first["offline"]), (&"accept".into(), &false.into()), "{first}");

    // The organizer moves the list to the VIP entrance: within 30 s the gate at
    // Main sends the other Standing ticket there.
    let moved = Instant::now();
    runtime
        .block_on(lists::update(db, &organizer, list.id, &list_at("Floor", type_id, vip.id), clock::now()))
        .expect("update");
    let version = runtime
        .block_on(db.query_one("SELECT manifest_version FROM venues WHERE id = ?1", params![venue_id]))
        .expect("venue")
        .int(0)
        .expect("version");
    gate.wait_for(WAIT, |l| {
        l.contains("\"event\":\"replica\"")
            && serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["version"].as_i64() >= Some(version))
    });
    let reached = moved.elapsed();
    gate.send_line(&codes[1]);
    let sent_on = gate.next_decision(WAIT);
    assert_eq!((&sent_on["reason"], &sent_on["go_to"]), (&"other_entrance".into(), &serde_json::json!(["VIP"])));
    assert!(reached <= Duration::from_secs(30), "the changed list took {reached:?} to reach the gate");
    eprintln!("list change to the online gate: {reached:?}");

    // Revoked in the cloud: the hub revokes its enrolment.
    let revoked = Instant::now();
    runtime.block_on(gates::revoke(db, &organizer, venue_id, "g1", clock::now())).expect("revoke");
    wait_until("the hub revoked g1", || {
        venue.hub_query("gates").iter().any(|g| g["gate_id"] == "g1" && !g["revoked_ms"].is_null())
    });
    assert!(revoked.elapsed() <= Duration::from_secs(30), "the revocation took {:?}", revoked.elapsed());
    gate.close_stdin();
    shutdown.cancel();
    let _ = runtime.block_on(server);
}
