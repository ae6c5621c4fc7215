//! The hub and the cloud: scans wait at the hub while the cloud is away and go
//! up once it is back, each stored once; the venue's ticket list comes down
//! from the cloud through the hub to the gates, which then admit a ticket sold
//! online; a refund in the cloud reaches every online gate within 30 s, which
//! then refuses the ticket as revoked.

use std::time::{Duration, Instant};

use cloud_api::accounts::auth::{Caller, Role};
use cloud_api::{common::clock, params, sale::orders};
use tixgate_tests::venue_fixture::{BrokerChoice, Daemon, VenueFixture, http_get};
use tokio_util::sync::CancellationToken;

use crate::cloud_venue::{cloud_config, point_hub_at_cloud, set_up_cloud};

const WAIT: Duration = Duration::from_secs(60);

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).expect("JSON line")
}

fn metric(hub: &Daemon, name: &str) -> Option<u64> {
    let addr = hub.ready.as_ref()?["http"].as_str()?.to_owned();
    let (_, body) = http_get(&addr, "/metrics", None);
    body.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).and_then(|v| v.trim().parse().ok())
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn scans_wait_for_the_cloud_and_ticket_lists_come_down() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let venue = VenueFixture::new(5, &BrokerChoice::Embedded);
    let venue_id = venue.venue_id as i64;
    let cloud_dir = tempfile::tempdir().expect("cloud dir");
    let config = cloud_config(&venue, cloud_dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let state = runtime.block_on(cloud_api::server::state(&config)).expect("cloud state");
    let (token, cloud_codes) = runtime.block_on(set_up_cloud(&state, venue_id, 2));
    point_hub_at_cloud(&venue, &config, &token);
    venue.add_gate("g1", "");
    venue.add_gate("g2", "transport = \"quic\"\n");

    // The cloud is away: scans are decided and kept at the hub.
    let hub = venue.start_hub();
    let mut gate = venue.start_gate("g1");
    let mut other = venue.start_gate("g2");
    for g in [&mut gate, &mut other] {
        g.wait_for(WAIT, |l| l.contains("\"event\":\"hub_link\"") && l.contains("\"online\":true"));
    }
    // Batch tickets 4 and 5: their ids differ from those the cloud sells (1, 2), which share the issuer key.
    for code in &venue.codes[3..5] {
        gate.send_line(code);
        assert_eq!(gate.next_decision(WAIT)["decision"], "accept");
    }
    wait_until("the hub shows 2 scans waiting and the link down", || {
        metric(&hub, "tixgate_hub_uplink_backlog") == Some(2) && metric(&hub, "tixgate_hub_uplink_ok") == Some(0)
    });

    // The cloud comes back: the scans go up once, the ticket list comes down.
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server = runtime.spawn(async move { cloud_api::server::run(&config, stop, None).await });
    let count_scans = || {
        runtime
            .block_on(state.db.query_one("SELECT COUNT(*) FROM scans WHERE venue_id = ?1", params![venue_id]))
            .expect("count")
            .int(0)
            .expect("count")
    };
    wait_until("the cloud holds both scans", || count_scans() == 2);
    wait_until("the hub's backlog is empty", || metric(&hub, "tixgate_hub_uplink_backlog") == Some(0));
    for g in [&mut gate, &mut other] {
        let applied = json(&g.wait_for(WAIT, |l| l.contains("\"event\":\"replica\"")));
        assert_eq!(applied["version"], 2, "the cloud's ticket list reached the gate: {applied}");
    }

    // A ticket sold online now opens the gate, and that scan goes up too.
    gate.send_line(&cloud_codes[0]);
    let decision = gate.next_decision(WAIT);
    assert_eq!(decision["decision"], "accept", "{decision}");
    wait_until("the cloud holds the third scan", || count_scans() == 3);
    let scanned = runtime
        .block_on(state.db.query_one("SELECT scanned_at FROM tickets ORDER BY id LIMIT 1", &[]))
        .expect("ticket")
        .opt_int(0)
        .expect("scanned_at");
    assert!(scanned.is_some(), "the cloud knows the ticket was used");

    // The other ticket is refunded in the cloud: within 30 s every online gate
    // has the ticket list that revokes it, and refuses it.
    let refunded = runtime.block_on(async {
        let db = &state.db;
        let order = db
            .query_one("SELECT order_id FROM tickets WHERE barcode = ?1", params![cloud_codes[1].clone()])
            .await
            .expect("order")
            .int(0)
            .expect("order id");
        let organizer = db.query_one("SELECT id FROM users WHERE role = 'organizer'", &[]).await.expect("organizer");
        let organizer = Caller { id: organizer.int(0).expect("id"), role: Role::Organizer, venue: None };
        let ctx = orders::Ctx { db, gateways: &state.gateways, signer: &state.signer, now: clock::now() };
        orders::refund(ctx, &organizer, order).await.expect("refund");
        let version = db
            .query_one("SELECT changed_version FROM tickets WHERE barcode = ?1", params![cloud_codes[1].clone()])
            .await
            .expect("ticket")
            .int(0)
            .expect("version");
        (Instant::now(), version)
    });
    let (refunded, revoking_version) = refunded;
    for g in [&mut gate, &mut other] {
        let left = Duration::from_secs(30).saturating_sub(refunded.elapsed());
        g.wait_for(left, |l| {
            l.contains("\"event\":\"replica\"") && json(l)["version"].as_i64().is_some_and(|v| v >= revoking_version)
        });
        g.send_line(&cloud_codes[1]);
        let decision = g.next_decision(WAIT);
        assert_eq!((&decision["decision"], &decision["reason"]), (&"reject".into(), &"revoked".into()), "{decision}");
    }
    let converged = refunded.elapsed();
    assert!(converged <= Duration::from_secs(30), "revocation took {converged:?}");
    eprintln!("refund to revoked at both gates: {converged:?}");
    gate.close_stdin();
    other.close_stdin();
    shutdown.cancel();
    let _ = runtime.block_on(server);
}
