//! The hub and the cloud: scans wait at the hub while the cloud is away and go
//! up once it is back, each stored once; the venue's ticket list comes down
//! from the cloud through the hub to the gates, which then admit a ticket sold
//! online; a refund in the cloud reaches every online gate within 30 s, which
//! then refuses the ticket as revoked.

use std::time::{Duration, Instant};

use cloud_api::auth::{Caller, Role};
use cloud_api::db::Db;
use cloud_api::http::AppState;
use cloud_api::{catalog, clock, inventory, orders, params, payments, venue_feed};
use tixgate_tests::venue_fixture::{BrokerChoice, Daemon, VenueFixture, free_port, http_get};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).expect("JSON line")
}

/// The cloud's side, set up in its store before it serves: the venue (under the
/// hub's venue id), an event on sale, two paid orders and the hub's device token.
async fn set_up_cloud(state: &AppState, venue_id: i64) -> (String, Vec<String>) {
    let db: &Db = &state.db;
    let now = clock::now();
    let mut ids = Vec::new();
    for (email, role) in [("org@example.com", "organizer"), ("fan@example.com", "customer")] {
        let row = db
            .query_one(
                "INSERT INTO users (email, password_hash, name, role, created_at) VALUES (?1, 'x', 'Fan', ?2, ?3) RETURNING id",
                params![email, role, now],
            )
            .await
            .expect("user");
        ids.push(row.int(0).expect("id"));
    }
    db.execute(
        "INSERT INTO venues (id, name, address, capacity, owner_id, created_at) VALUES (?1, 'Hall', '1 Main St', 900, ?2, ?3)",
        params![venue_id, ids[0], now],
    )
    .await
    .expect("venue");
    let organizer = Caller { id: ids[0], role: Role::Organizer, venue: None };
    let fan = Caller { id: ids[1], role: Role::Customer, venue: None };
    let event: catalog::NewEvent = serde_json::from_value(serde_json::json!({
        "venue_id": venue_id, "title": "Gig", "starts_at": "2031-01-01T20:00:00Z", "ends_at": "2031-01-01T23:00:00Z",
        "ticket_types": [{"name": "Standing", "price_minor": 1000, "currency": "EUR", "total": 50}]
    }))
    .expect("event");
    let event = catalog::create_event(db, &organizer, &event, now).await.expect("event");
    catalog::publish_event(db, &organizer, event.id).await.expect("publish");
    let type_id = event.ticket_types.expect("types")[0].id;
    let ctx = orders::Ctx { db, gateways: &state.gateways, signer: &state.signer, now };
    for _ in 0..2 {
        let req = inventory::ReserveRequest { ticket_type_id: type_id, quantity: Some(1), seats: None };
        let hold = inventory::reserve(db, &fan, event.id, &req, None, 600, now).await.expect("hold");
        let order = orders::OrderRequest {
            hold_id: hold.id,
            gateway: payments::GatewayKind::Test,
            test_outcome: payments::TestOutcome::Succeed,
        };
        orders::create(ctx, &fan, &order, None, 900).await.expect("paid");
    }
    let device = venue_feed::NewDevice { name: "hub".into() };
    let token = venue_feed::add_device(db, &state.tokens, &organizer, venue_id, &device, now).await.expect("device");
    let codes = db.query("SELECT barcode FROM tickets ORDER BY id", &[]).await.expect("tickets");
    (token.token, codes.iter().map(|r| r.text(0).expect("barcode")).collect())
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
    let port = free_port();
    let cloud_dir = tempfile::tempdir().expect("cloud dir");
    let keys = venue.path().join("keys");
    std::fs::write(
        cloud_dir.path().join("cloud.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"cloud.db\"\nkeys = \"{}\"\ntoken_secret_file = \"token-secret\"\n\
             [payments]\ntest_gateway = true\n",
            keys.display()
        ),
    )
    .expect("cloud.toml");
    let config = cloud_api::config::Config::load(&cloud_dir.path().join("cloud.toml")).expect("config");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let state = runtime.block_on(cloud_api::server::state(&config)).expect("cloud state");
    let (token, cloud_codes) = runtime.block_on(set_up_cloud(&state, venue_id));

    std::fs::create_dir_all(venue.path().join("manifests")).expect("manifests");
    std::fs::write(venue.path().join("cloud-token"), &token).expect("token");
    let mut hub_toml = std::fs::read_to_string(venue.path().join("hub.toml")).expect("hub.toml");
    hub_toml.push_str(&format!(
        "[replica]\nfolder = \"manifests\"\n[cloud]\nurl = \"http://127.0.0.1:{port}\"\ntoken_file = \"cloud-token\"\n"
    ));
    std::fs::write(venue.path().join("hub.toml"), hub_toml).expect("hub.toml");
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
