//! The schema, as numbered migrations run at start-up in one transaction each.
//!
//! Each migration is written once; `{id}` becomes the store's auto-numbered
//! key and `{bytes}` its byte-string type. Applied versions are recorded in
//! `schema_migrations`, so a restart applies only what is new.

use super::{Db, DbError};

const MIGRATIONS: &[&str] = &[
    // 1: the sale's model.
    "CREATE TABLE users (
        id {id}, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
        name TEXT NOT NULL, role TEXT NOT NULL, created_at BIGINT NOT NULL);
    CREATE TABLE venues (
        id {id}, name TEXT NOT NULL, address TEXT NOT NULL, capacity BIGINT NOT NULL,
        latitude_e6 BIGINT, longitude_e6 BIGINT, seating_map TEXT,
        owner_id BIGINT NOT NULL REFERENCES users(id),
        manifest_version BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
    CREATE TABLE events (
        id {id}, venue_id BIGINT NOT NULL REFERENCES venues(id),
        organizer_id BIGINT NOT NULL REFERENCES users(id),
        title TEXT NOT NULL, description TEXT NOT NULL, starts_at BIGINT NOT NULL, ends_at BIGINT NOT NULL,
        status TEXT NOT NULL, created_at BIGINT NOT NULL);
    CREATE INDEX events_by_start ON events(status, starts_at);
    CREATE TABLE ticket_types (
        id {id}, event_id BIGINT NOT NULL REFERENCES events(id), name TEXT NOT NULL,
        price_minor BIGINT NOT NULL, currency TEXT NOT NULL, total BIGINT NOT NULL,
        sale_starts_at BIGINT, sale_ends_at BIGINT, per_order_limit BIGINT NOT NULL,
        seated BIGINT NOT NULL, shards BIGINT NOT NULL);
    CREATE TABLE stock (
        ticket_type_id BIGINT NOT NULL REFERENCES ticket_types(id), shard BIGINT NOT NULL,
        available BIGINT NOT NULL CHECK (available >= 0), PRIMARY KEY (ticket_type_id, shard));
    CREATE TABLE seats (
        ticket_type_id BIGINT NOT NULL REFERENCES ticket_types(id), label TEXT NOT NULL,
        hold_id TEXT, sold BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (ticket_type_id, label));
    CREATE TABLE holds (
        id TEXT PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id),
        ticket_type_id BIGINT NOT NULL REFERENCES ticket_types(id), quantity BIGINT NOT NULL,
        taken TEXT NOT NULL, seats TEXT NOT NULL, status TEXT NOT NULL,
        expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL);
    CREATE INDEX holds_by_expiry ON holds(status, expires_at);
    CREATE TABLE orders (
        id {id}, user_id BIGINT NOT NULL REFERENCES users(id), hold_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL, amount_minor BIGINT NOT NULL, currency TEXT NOT NULL,
        gateway TEXT NOT NULL, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, paid_at BIGINT);
    CREATE TABLE tickets (
        id {id}, order_id BIGINT NOT NULL REFERENCES orders(id), user_id BIGINT NOT NULL,
        event_id BIGINT NOT NULL, venue_id BIGINT NOT NULL, ticket_type_id BIGINT NOT NULL,
        seat TEXT, holder_name TEXT NOT NULL, barcode TEXT NOT NULL, status TEXT NOT NULL,
        scanned_at BIGINT, changed_version BIGINT NOT NULL, created_at BIGINT NOT NULL);
    CREATE INDEX tickets_by_user ON tickets(user_id);
    CREATE INDEX tickets_by_venue ON tickets(venue_id, changed_version);
    CREATE TABLE payment_transactions (
        id {id}, order_id BIGINT NOT NULL REFERENCES orders(id), gateway TEXT NOT NULL,
        kind TEXT NOT NULL, gateway_id TEXT NOT NULL, status TEXT NOT NULL,
        amount_minor BIGINT NOT NULL, raw_response TEXT NOT NULL, created_at BIGINT NOT NULL);
    CREATE INDEX payments_by_gateway_id ON payment_transactions(gateway, gateway_id);
    CREATE UNIQUE INDEX payments_one_per_kind ON payment_transactions(order_id, kind);
    CREATE TABLE webhook_events (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, created BIGINT NOT NULL, received_at BIGINT NOT NULL);
    CREATE TABLE idempotency (
        user_id BIGINT NOT NULL, route TEXT NOT NULL, key TEXT NOT NULL, request_sha256 TEXT NOT NULL,
        status BIGINT NOT NULL, response TEXT NOT NULL, created_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, route, key));
    CREATE TABLE devices (
        id {id}, venue_id BIGINT NOT NULL REFERENCES venues(id), name TEXT NOT NULL,
        revoked BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
    CREATE TABLE scans (
        scan_id TEXT NOT NULL, venue_id BIGINT NOT NULL, gate_id TEXT NOT NULL, ticket_id BIGINT, event_id BIGINT,
        list_id BIGINT NOT NULL, direction TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT,
        offline BIGINT NOT NULL, annulled BIGINT NOT NULL, hlc TEXT NOT NULL, wall_ms BIGINT NOT NULL,
        received_at BIGINT NOT NULL, PRIMARY KEY (venue_id, scan_id));
    CREATE TABLE scan_conflicts (
        venue_id BIGINT NOT NULL, first_scan TEXT NOT NULL, second_scan TEXT NOT NULL,
        ticket_id BIGINT NOT NULL, list_id BIGINT NOT NULL, first_gate TEXT NOT NULL, first_hlc TEXT NOT NULL,
        second_gate TEXT NOT NULL, second_hlc TEXT NOT NULL, detected_ms BIGINT NOT NULL,
        received_at BIGINT NOT NULL, PRIMARY KEY (venue_id, first_scan, second_scan));",
    // 2: the read side. Writes that change what buyers see add an outbox row in
    // their own transaction; the projector turns rows into listings.
    "CREATE TABLE outbox (
        id {id}, topic TEXT NOT NULL, event_id BIGINT NOT NULL, created_at BIGINT NOT NULL);
    CREATE TABLE event_listings (
        event_id BIGINT PRIMARY KEY, venue_id BIGINT NOT NULL, organizer_id BIGINT NOT NULL,
        title_lower TEXT NOT NULL, starts_at BIGINT NOT NULL, status TEXT NOT NULL,
        body TEXT NOT NULL, version BIGINT NOT NULL, updated_at BIGINT NOT NULL);
    CREATE INDEX event_listings_by_start ON event_listings(status, starts_at);",
    // 3: rotating barcodes (v2). A rotating ticket has no static barcode; its
    // holder's wallet binds a public key and gets the signed static part.
    "ALTER TABLE ticket_types ADD COLUMN rotating BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE tickets ADD COLUMN rotating BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE tickets ADD COLUMN holder_key TEXT;
    ALTER TABLE tickets ADD COLUMN static_part TEXT",
    // 4: discount codes. An order names the code it used and what it took
    // off; a code's uses are counted from its orders.
    "CREATE TABLE promo_codes (
        id {id}, event_id BIGINT NOT NULL REFERENCES events(id), code TEXT NOT NULL,
        kind TEXT NOT NULL, value BIGINT NOT NULL, currency TEXT, starts_at BIGINT, ends_at BIGINT,
        max_uses BIGINT, max_uses_per_customer BIGINT, active BIGINT NOT NULL, created_at BIGINT NOT NULL,
        UNIQUE (event_id, code));
    CREATE TABLE promo_code_types (
        promo_code_id BIGINT NOT NULL REFERENCES promo_codes(id),
        ticket_type_id BIGINT NOT NULL REFERENCES ticket_types(id),
        PRIMARY KEY (promo_code_id, ticket_type_id));
    ALTER TABLE orders ADD COLUMN promo_code_id BIGINT REFERENCES promo_codes(id);
    ALTER TABLE orders ADD COLUMN discount_minor BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX orders_by_promo_code ON orders(promo_code_id, status)",
    // 5: notifications. Paying an order queues its messages in the same
    // transaction (the outbox); templates are per event and channel.
    "ALTER TABLE users ADD COLUMN phone TEXT;
    CREATE TABLE notifications (
        id {id}, dedupe_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, channel TEXT NOT NULL,
        recipient TEXT NOT NULL, order_id BIGINT NOT NULL REFERENCES orders(id), status TEXT NOT NULL,
        attempts BIGINT NOT NULL, next_attempt_at BIGINT NOT NULL, last_error TEXT,
        created_at BIGINT NOT NULL, sent_at BIGINT);
    CREATE INDEX notifications_due ON notifications(status, next_attempt_at);
    CREATE INDEX notifications_by_order ON notifications(order_id);
    CREATE TABLE message_templates (
        event_id BIGINT NOT NULL REFERENCES events(id), channel TEXT NOT NULL,
        subject TEXT NOT NULL, body TEXT NOT NULL, updated_at BIGINT NOT NULL,
        PRIMARY KEY (event_id, channel))",
    // 6: domain events for the stream (a transactional outbox), the consumer's
    // record of what it applied, and the analytics it builds; orders name
    // their sales channel.
    "ALTER TABLE orders ADD COLUMN channel TEXT NOT NULL DEFAULT 'web';
    CREATE TABLE domain_events (
        id {serial}, kind TEXT NOT NULL, payload TEXT NOT NULL, created_at BIGINT NOT NULL,
        published_at BIGINT, claim_until BIGINT NOT NULL DEFAULT 0);
    CREATE INDEX domain_events_unpublished ON domain_events(id) WHERE published_at IS NULL;
    CREATE TABLE consumed_events (
        consumer TEXT NOT NULL, event_id BIGINT NOT NULL, consumed_at BIGINT NOT NULL,
        PRIMARY KEY (consumer, event_id));
    CREATE TABLE sales_by_hour (
        hour BIGINT NOT NULL, event_id BIGINT NOT NULL, ticket_type_id BIGINT NOT NULL, channel TEXT NOT NULL,
        orders BIGINT NOT NULL, tickets BIGINT NOT NULL, amount_minor BIGINT NOT NULL, revoked BIGINT NOT NULL,
        PRIMARY KEY (hour, ticket_type_id, channel));
    CREATE INDEX sales_by_event ON sales_by_hour(event_id, hour);
    CREATE TABLE entries_by_hour (
        hour BIGINT NOT NULL, event_id BIGINT NOT NULL, gate_id TEXT NOT NULL,
        accepted BIGINT NOT NULL, rejected BIGINT NOT NULL, PRIMARY KEY (hour, event_id, gate_id))",
    // 7: resale. A listing is reserved by an ordinary hold that names it; the
    // seller's ticket points at the buyer's new one once paid.
    "CREATE TABLE resale_listings (
        id {id}, ticket_id BIGINT NOT NULL REFERENCES tickets(id), seller_id BIGINT NOT NULL REFERENCES users(id),
        event_id BIGINT NOT NULL, ticket_type_id BIGINT NOT NULL, price_minor BIGINT NOT NULL, currency TEXT NOT NULL,
        status TEXT NOT NULL, new_ticket_id BIGINT, created_at BIGINT NOT NULL, sold_at BIGINT);
    CREATE UNIQUE INDEX resale_one_open_listing ON resale_listings(ticket_id) WHERE status = 'listed';
    CREATE INDEX resale_by_event ON resale_listings(event_id, status, price_minor);
    ALTER TABLE holds ADD COLUMN resale_listing_id BIGINT REFERENCES resale_listings(id);
    CREATE INDEX holds_by_listing ON holds(resale_listing_id);
    ALTER TABLE tickets ADD COLUMN resold_to BIGINT",
    // 8: accounts signed in through OpenID Connect providers, by subject.
    "CREATE TABLE user_identities (
        provider TEXT NOT NULL, subject TEXT NOT NULL, user_id BIGINT NOT NULL REFERENCES users(id),
        created_at BIGINT NOT NULL, PRIMARY KEY (provider, subject));
    CREATE INDEX user_identities_by_user ON user_identities(user_id)",
    // 9: the organizer's case list, fed by the venues' uploads.
    "CREATE TABLE fraud_cases (
        id {id}, dedupe_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, event_id BIGINT, venue_id BIGINT,
        ticket_id BIGINT, detail TEXT NOT NULL, occurrences BIGINT NOT NULL, status TEXT NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, resolved_at BIGINT, resolved_by BIGINT,
        resolution_note TEXT);
    CREATE INDEX fraud_cases_by_event ON fraud_cases(event_id, status, updated_at)",
    // 10: fraud scoring: every reservation and order attempt with its signals;
    // orders held for review; cases about an order.
    "CREATE TABLE fraud_signals (
        id {id}, at BIGINT NOT NULL, stage TEXT NOT NULL, event_id BIGINT NOT NULL, user_id BIGINT NOT NULL,
        ip TEXT, device TEXT, payment TEXT, hold_id TEXT, score BIGINT NOT NULL);
    CREATE INDEX fraud_signals_by_ip ON fraud_signals(ip, at);
    CREATE INDEX fraud_signals_by_user ON fraud_signals(user_id, at);
    CREATE INDEX fraud_signals_by_device ON fraud_signals(device, at);
    CREATE INDEX fraud_signals_by_payment ON fraud_signals(payment, at);
    CREATE INDEX fraud_signals_by_event ON fraud_signals(event_id);
    ALTER TABLE orders ADD COLUMN review_status TEXT;
    ALTER TABLE orders ADD COLUMN review_reasons TEXT;
    ALTER TABLE fraud_cases ADD COLUMN order_id BIGINT",
    // 11: listings carry their venue's coordinates, indexed, for `GET /events`
    // near a point; every listing is rebuilt once to fill them.
    "ALTER TABLE event_listings ADD COLUMN latitude_e6 BIGINT;
    ALTER TABLE event_listings ADD COLUMN longitude_e6 BIGINT;
    CREATE INDEX event_listings_by_place ON event_listings(latitude_e6, longitude_e6);
    INSERT INTO outbox (topic, event_id, created_at) SELECT 'event_changed', event_id, 0 FROM event_listings",
    // 12: event media; the bytes are in the object store.
    "CREATE TABLE media (
        id TEXT PRIMARY KEY, event_id BIGINT NOT NULL REFERENCES events(id), kind TEXT NOT NULL,
        content_type TEXT NOT NULL, bytes BIGINT NOT NULL, width BIGINT, height BIGINT,
        created_by BIGINT NOT NULL, created_at BIGINT NOT NULL);
    CREATE INDEX media_by_event ON media(event_id, created_at)",
    // Sign-in sessions: a token names one; a sign-out or a role change ends them.
    "CREATE TABLE sessions (
        id {serial}, user_id BIGINT NOT NULL REFERENCES users(id), created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL, ended_at BIGINT);
     CREATE INDEX sessions_by_user ON sessions (user_id)",
    // 14: the venue around the door: its entrances and areas, and each event's
    // check-in lists (what they admit, when, into which area, at which doors).
    // List ids are `{serial}`: a gate keeps scans under a list id, so one is
    // never given to another list after a delete.
    "CREATE TABLE entrances (
        id {id}, venue_id BIGINT NOT NULL REFERENCES venues(id), name TEXT NOT NULL,
        created_at BIGINT NOT NULL, UNIQUE (venue_id, name));
    CREATE TABLE areas (
        id {id}, venue_id BIGINT NOT NULL REFERENCES venues(id), name TEXT NOT NULL, capacity BIGINT,
        created_at BIGINT NOT NULL, UNIQUE (venue_id, name));
    CREATE TABLE checkin_lists (
        id {serial}, event_id BIGINT NOT NULL REFERENCES events(id), name TEXT NOT NULL,
        ticket_type_ids TEXT NOT NULL, sections TEXT NOT NULL, opens_at BIGINT, closes_at BIGINT,
        scan_exits BIGINT NOT NULL, allow_multiple_entries BIGINT NOT NULL, allow_reentry BIGINT NOT NULL,
        area_id BIGINT REFERENCES areas(id), unknown_tickets TEXT NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (event_id, name));
    CREATE TABLE checkin_list_entrances (
        list_id BIGINT NOT NULL REFERENCES checkin_lists(id), entrance_id BIGINT NOT NULL REFERENCES entrances(id),
        PRIMARY KEY (list_id, entrance_id));
    -- Manifests change format with this release: every hub gets a new version.
    UPDATE venues SET manifest_version = manifest_version + 1",
    // 15: the venue's gates, as its hub reports them and its organizer sets
    // them up: the entrance each stands at, and whether the cloud revoked it.
    // A gate id is the hub's enrolment name, so the key is (venue, gate id).
    "CREATE TABLE venue_gates (
        venue_id BIGINT NOT NULL REFERENCES venues(id), gate_id TEXT NOT NULL,
        entrance_id BIGINT REFERENCES entrances(id), revoked BIGINT NOT NULL DEFAULT 0,
        hub_revoked BIGINT NOT NULL DEFAULT 0,
        reported_at BIGINT, updated_at BIGINT NOT NULL, PRIMARY KEY (venue_id, gate_id));
    -- Manifests change format again (TXM3 carries the gates): every hub gets a new version.
    UPDATE venues SET manifest_version = manifest_version + 1",
];

/// Applies every migration the store has not seen yet.
pub async fn run(db: &Db) -> Result<(), DbError> {
    // `{serial}`: a key never reused, even after the newest rows are deleted
    // (consumers remember ids they applied). SQLite reuses plain rowids.
    let (id, serial, bytes) = match db {
        Db::Sqlite(_) => ("INTEGER PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        Db::Postgres(_) => (
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            "BYTEA",
        ),
    };
    batch(db, "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        let mut tx = db.begin().await?;
        if let Db::Postgres(_) = db {
            // Two instances starting at once apply each migration once.
            tx.execute("SELECT pg_advisory_xact_lock(7031)", &[]).await?;
        }
        if tx.query_opt("SELECT 1 FROM schema_migrations WHERE version = ?1", crate::params![version]).await?.is_some()
        {
            continue;
        }
        for statement in sql.replace("{id}", id).replace("{serial}", serial).replace("{bytes}", bytes).split(';') {
            if !statement.trim().is_empty() {
                tx.execute(statement, &[]).await?;
            }
        }
        // The store sits below every other module, the clock included: it
        // reads the time itself for this one record.
        let applied_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            crate::params![version, applied_at],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn batch(db: &Db, sql: &str) -> Result<(), DbError> {
    match db {
        Db::Sqlite(db) => db.execute_batch(sql).await,
        Db::Postgres(db) => db.execute_batch(sql).await,
    }
}
