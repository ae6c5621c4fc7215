//! The cloud beside a [`VenueFixture`]: its config, its store set up with a
//! venue under the hub's venue id and tickets sold, and the hub pointed at it.

use std::path::Path;

use cloud_api::accounts::auth::{Caller, Role};
use cloud_api::config::Config;
use cloud_api::db::Db;
use cloud_api::web::AppState;
use cloud_api::{catalog, common::clock, params, sale::inventory, sale::orders, sale::payments, venue::feed};
use tixgate_tests::venue_fixture::{VenueFixture, free_port};

/// A cloud config in `dir` on a free port, signing with the venue's issuer keys.
pub(crate) fn cloud_config(venue: &VenueFixture, dir: &Path) -> Config {
    write_cloud_config(dir, &venue.path().join("keys"))
}

/// Writes `dir/cloud.toml`: a free port, a SQLite store in `dir`, the issuer
/// keys in `keys` (relative to `dir`, or absolute) and the test gateway.
pub(crate) fn write_cloud_config(dir: &Path, keys: &Path) -> Config {
    let port = free_port();
    std::fs::write(
        dir.join("cloud.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"cloud.db\"\nkeys = \"{}\"\ntoken_secret_file = \"token-secret\"\n\
             [payments]\ntest_gateway = true\n[rate_limit]\nper_minute = 0  # every customer is 127.0.0.1\n[fraud]\nenabled = false  # a few customers buy thousands of tickets in a minute\n",
            keys.display()
        ),
    )
    .expect("cloud.toml");
    Config::load(&dir.join("cloud.toml")).expect("config")
}

/// Has the hub pull ticket lists from and send scans to the cloud at `config.listen`.
/// The replica folder does not exist yet: the hub makes it, as a packaged hub
/// whose state folder starts empty must.
pub(crate) fn point_hub_at_cloud(venue: &VenueFixture, config: &Config, token: &str) {
    std::fs::write(venue.path().join("cloud-token"), token).expect("token");
    let mut hub_toml = std::fs::read_to_string(venue.path().join("hub.toml")).expect("hub.toml");
    hub_toml.push_str(&format!(
        "[replica]\nfolder = \"hub-state/replica\"\n[cloud]\nurl = \"http://{}\"\ntoken_file = \"cloud-token\"\n",
        config.listen
    ));
    std::fs::write(venue.path().join("hub.toml"), hub_toml).expect("hub.toml");
}

/// The cloud's side, set up in its store before it serves: the venue (under the
/// hub's venue id), an event on sale, `sold` paid orders of one ticket and the
/// hub's device token. Returns the token and the barcodes, by ticket id.
pub(crate) async fn set_up_cloud(state: &AppState, venue_id: i64, sold: usize) -> (String, Vec<String>) {
    let standing =
        serde_json::json!({"name": "Standing", "price_minor": 1000, "currency": "EUR", "total": sold.max(1)});
    let sale = sell(state, venue_id, standing, sold).await;
    let device = feed::NewDevice { name: "hub".into() };
    let token = feed::add_device(&state.db, &state.tokens, &sale.organizer, venue_id, &device, clock::now())
        .await
        .expect("device");
    let codes = state.db.query("SELECT barcode FROM tickets ORDER BY id", &[]).await.expect("tickets");
    (token.token, codes.iter().map(|r| r.text(0).expect("barcode")).collect())
}

/// What [`sell`] set up.
pub(crate) struct CloudSale {
    /// Runs the venue and the event.
    pub organizer: Caller,
    /// Bought the tickets.
    pub fan: Caller,
    /// The tickets sold, in order.
    pub ticket_ids: Vec<i64>,
}

/// An organizer and a fan, the venue under `venue_id`, a published event whose
/// one ticket type is `ticket_type` (a `NewTicketType` as JSON), and `sold`
/// tickets of it paid by the fan, one order each.
pub(crate) async fn sell(state: &AppState, venue_id: i64, ticket_type: serde_json::Value, sold: usize) -> CloudSale {
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
        "ticket_types": [ticket_type]
    }))
    .expect("event");
    let event = catalog::create_event(db, &organizer, &event, now).await.expect("event");
    catalog::publish_event(db, &organizer, event.id).await.expect("publish");
    let type_id = event.ticket_types.expect("types")[0].id;
    let ctx = orders::Ctx { db, gateways: &state.gateways, signer: &state.signer, now };
    let mut ticket_ids = Vec::new();
    for _ in 0..sold {
        let req = inventory::ReserveRequest { ticket_type_id: type_id, quantity: Some(1), seats: None };
        let hold = inventory::reserve(db, &fan, event.id, &req, None, 600, now).await.expect("hold");
        let order = orders::OrderRequest {
            hold_id: hold.id,
            gateway: payments::GatewayKind::Test,
            test_outcome: payments::TestOutcome::Succeed,
            promo_code: None,
            channel: orders::SalesChannel::Web,
            payment_fingerprint: None,
        };
        ticket_ids.extend(orders::create(ctx, &fan, &order, None, None, 900).await.expect("paid").ticket_ids);
    }
    CloudSale { organizer, fan, ticket_ids }
}
