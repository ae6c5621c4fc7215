//! Domain events reach the NATS JetStream at 127.0.0.1:4222 (the suite fails
//! if it is down) once each, and the analytics consumer counts each event
//! once: on PostgreSQL with two instances of the service sharing the store,
//! the stream and the durable consumer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use cloud_api::common::clock;
use cloud_api::domain_events::Envelope;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(domain_events_reach_the_stream_once_and_analytics_count_each_once);

const NATS: &str = "nats://127.0.0.1:4222";

fn unique_tag() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    data_encoding::HEXLOWER.encode(&bytes)
}

async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn outbox_drained(db: &cloud_api::db::Db) {
    wait_for("every domain event to be published", async || {
        let left = db.query_one("SELECT COUNT(*) FROM domain_events WHERE published_at IS NULL", &[]).await.ok()?;
        (left.int(0).ok()? == 0).then_some(())
    })
    .await;
}

fn totals(analytics: &Value) -> (i64, i64, i64, i64) {
    let sales = analytics["sales"].as_array().unwrap();
    let sum = |key: &str| sales.iter().map(|s| s[key].as_i64().unwrap()).sum::<i64>();
    (sum("orders"), sum("tickets"), sum("amount_minor"), sum("revoked"))
}

async fn domain_events_reach_the_stream_once_and_analytics_count_each_once(store: Store) {
    let tag = unique_tag();
    let (stream_name, prefix) = (format!("TIXGATE_TEST_{tag}"), format!("test.{tag}"));
    let config =
        format!("[events]\nnats_url = \"{NATS}\"\nstream = \"{stream_name}\"\nsubject_prefix = \"{prefix}\"\n");
    let api = Api::start_with(store, &config).await;
    // Two instances behind one load balancer share PostgreSQL; SQLite is one process's store.
    let twin = if store == Store::Postgres { Some(api.twin().await) } else { None };
    let bases = [api.base.clone(), twin.as_ref().map_or(api.base.clone(), |t| t.base.clone())];
    let (organizer, venue, event, standing) = api.on_sale(100, 2, None).await;

    let mut orders = Vec::new();
    for n in 0..10_usize {
        // Box-office sales are made by staff; a customer may not claim that channel.
        let role = if n % 3 == 0 {
            cloud_api::accounts::auth::Role::Organizer
        } else {
            cloud_api::accounts::auth::Role::Customer
        };
        let (_, token) = api.user(&format!("fan{n}@example.com"), role).await;
        let quantity = 1 + (n % 2) as i64;
        let hold = api.hold(&token, event, standing, quantity).await;
        let channel = if n % 3 == 0 { "box_office" } else { "web" };
        let resp = api
            .http
            .post(format!("{}/orders", bases[n % 2]))
            .bearer_auth(&token)
            .json(&json!({"hold_id": hold["id"], "gateway": "test", "channel": channel}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        orders.push(resp.json::<Value>().await.unwrap());
    }
    let (_, walk_in) = api.user("walkin@example.com", cloud_api::accounts::auth::Role::Customer).await;
    let hold = api.hold(&walk_in, event, standing, 1).await;
    let (status, _) = api
        .post("/orders", Some(&walk_in), json!({"hold_id": hold["id"], "gateway": "test", "channel": "partner"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a customer cannot claim a staff channel");
    let refunded = &orders[1];
    let (status, _) = api.post(&format!("/orders/{}/refund", refunded["id"]), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, device) =
        api.post(&format!("/admin/venues/{venue}/devices"), Some(&organizer), json!({"name": "hub"})).await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    let scan = |id: &str, gate: &str, ticket: &Value, decision: &str| {
        json!({"scan_id": id, "gate_id": gate, "ticket_id": ticket, "event_id": event, "list_id": 1,
               "direction": "entry", "decision": decision, "reason": null, "offline": false, "annulled": false,
               "hlc": 1, "wall_ms": clock::now() * 1000})
    };
    let upload = json!({"scans": [
        scan("north-1:1", "north-1", &orders[0]["ticket_ids"][0], "accept"),
        scan("north-1:2", "north-1", &orders[0]["ticket_ids"][0], "reject"),
        scan("south-1:1", "south-1", &orders[2]["ticket_ids"][0], "accept"),
    ]});
    let (status, _) = api.post(&format!("/venues/{venue}/scans"), device["token"].as_str(), upload).await;
    assert_eq!(status, StatusCode::OK);

    // Every outbox row is published, and the stream holds each exactly once.
    let db = &api.state.db;
    outbox_drained(db).await;
    let ids: BTreeSet<i64> =
        db.query("SELECT id FROM domain_events", &[]).await.unwrap().iter().map(|r| r.int(0).unwrap()).collect();
    let js = jetstream::new(async_nats::connect(NATS).await.expect("NATS at 127.0.0.1:4222"));
    let mut stream = js.get_stream(&stream_name).await.unwrap();
    let stored = stream.info().await.unwrap().state.messages;
    assert_eq!(stored, ids.len() as u64, "one stream message per event");
    // As after a crash between the stream's ack and the outbox's mark: every
    // row is published again, and the stream's duplicate window drops them all.
    db.execute("UPDATE domain_events SET published_at = NULL, claim_until = 0", &[]).await.unwrap();
    outbox_drained(db).await;
    assert_eq!(stream.info().await.unwrap().state.messages, stored, "republished rows are not stored twice");
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for seq in 1..=stored {
        let message = stream.get_raw_message(seq).await.unwrap();
        let envelope: Envelope = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(message.subject.as_str(), format!("{prefix}.{}", envelope.event.kind()));
        *kinds.entry(envelope.event.kind().to_owned()).or_default() += 1;
        seen.insert(envelope.id);
    }
    assert_eq!(seen, ids);
    let revoked = refunded["quantity"].as_i64().unwrap() as usize;
    let expected = [("order_paid", 10), ("scan_ingested", 3), ("ticket_reserved", 11), ("ticket_revoked", revoked)];
    assert_eq!(kinds, expected.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect());

    // The consumer's totals match the orders table.
    let truth = db
        .query_one(
            "SELECT COUNT(*), CAST(SUM(h.quantity) AS BIGINT), CAST(SUM(o.amount_minor) AS BIGINT)
             FROM orders o JOIN holds h ON h.id = o.hold_id WHERE o.paid_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    let truth = (truth.int(0).unwrap(), truth.int(1).unwrap(), truth.int(2).unwrap(), revoked as i64);
    let path = format!("/admin/events/{event}/analytics");
    let analytics = wait_for("the analytics", async || {
        let (_, analytics) = api.get(&path, Some(&organizer)).await;
        (totals(&analytics) == truth).then_some(analytics)
    })
    .await;
    let box_office: i64 = analytics["sales"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["channel"] == "box_office")
        .map(|s| s["orders"].as_i64().unwrap())
        .sum();
    assert_eq!(box_office, 4, "orders 0, 3, 6 and 9 were sold at the box office");
    let entries = analytics["entries"].as_array().unwrap();
    let by_gate: BTreeMap<&str, (i64, i64)> = entries
        .iter()
        .map(|e| (e["gate_id"].as_str().unwrap(), (e["accepted"].as_i64().unwrap(), e["rejected"].as_i64().unwrap())))
        .collect();
    assert_eq!(by_gate, BTreeMap::from([("north-1", (1, 1)), ("south-1", (1, 0))]));

    // A redelivered event (copied under a new message id, past the stream's
    // deduplication) and a message that is not an event change nothing.
    let mut copy = None;
    for seq in 1..=stored {
        let message = stream.get_raw_message(seq).await.unwrap();
        if message.subject.as_str().ends_with(".order_paid") {
            copy = Some(message);
            break;
        }
    }
    let copy = copy.unwrap();
    js.send_publish(
        copy.subject.to_string(),
        jetstream::message::PublishMessage::build().payload(copy.payload.clone()).message_id(format!("copy-{tag}")),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    js.publish(format!("{prefix}.order_paid"), "not an event".into()).await.unwrap().await.unwrap();
    let mut consumer: jetstream::consumer::PullConsumer =
        stream.get_consumer(&format!("{stream_name}-sales")).await.unwrap();
    wait_for("the consumer to take both", async || {
        let info = consumer.info().await.ok()?;
        (info.delivered.stream_sequence >= stored + 2 && info.num_pending == 0 && info.num_ack_pending == 0)
            .then_some(())
    })
    .await;
    let (_, after) = api.get(&path, Some(&organizer)).await;
    assert_eq!(totals(&after), truth, "the copy was not counted again");
    let consumed = db.query_one("SELECT COUNT(*) FROM consumed_events", &[]).await.unwrap().int(0).unwrap();
    assert_eq!(consumed, ids.len() as i64, "each event applied once");

    drop(twin);
    drop(api);
    js.delete_stream(&stream_name).await.unwrap();
}
