//! A customer finds an event, holds, pays, and gets tickets the gates accept;
//! Stripe payments arrive by signed webhook; refunds and cancellations revoke.

use cloud_api::accounts::auth::Role;
use cloud_api::common::clock;
use cloud_api::sale::payments::signature;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Api, Store, WEBHOOK_SECRET};
use crate::on_both_stores;

on_both_stores!(
    a_customer_buys_with_the_test_gateway_and_the_barcodes_verify,
    a_declined_payment_returns_the_stock,
    a_stripe_payment_is_paid_by_its_signed_webhook_once,
    a_refund_revokes_the_tickets_in_the_next_manifest,
    cancelling_an_event_refunds_every_order,
    a_payment_that_arrives_after_expiry_takes_stock_again_or_is_refunded,
);

async fn webhook(api: &Api, body: &Value, header: Option<String>) -> (StatusCode, Value) {
    let raw = body.to_string();
    let header = header.unwrap_or_else(|| signature::sign(raw.as_bytes(), WEBHOOK_SECRET, clock::now()));
    let resp = api
        .http
        .post(format!("{}/payments/webhook", api.base))
        .header("stripe-signature", header)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn event(id: &str, kind: &str, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": clock::now(), "data": {"object": object}})
}

async fn a_customer_buys_with_the_test_gateway_and_the_barcodes_verify(store: Store) {
    let api = Api::start(store).await;
    let (_, _, event_id, type_id) = api.on_sale(100, 1, None).await;
    let (_, customer) = api.user("ann@example.com", Role::Customer).await;

    let (status, page) = api.get("/events?q=conc&per_page=5", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], event_id);
    let (_, detail) = api.get(&format!("/events/{event_id}"), None).await;
    assert_eq!(detail["venue"]["name"], "Hall");
    assert_eq!(detail["ticket_types"][0]["available"], 100);

    let hold = api.hold(&customer, event_id, type_id, 2).await;
    assert_eq!(hold["amount_minor"], 5000);
    api.expect_available(event_id, type_id, 98).await;
    let (status, order) = api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "paid");
    assert_eq!(order["ticket_ids"].as_array().map(Vec::len), Some(2));

    let (status, tickets) = api.get("/users/me/tickets", Some(&customer)).await;
    assert_eq!(status, StatusCode::OK);
    let tickets = tickets.as_array().unwrap().clone();
    assert_eq!(tickets.len(), 2);
    for t in &tickets {
        let code = t["barcode"].as_str().unwrap();
        let verified = api.keyring.verify(code, clock::now() as u64).expect("the issuer's keyring accepts the barcode");
        assert_eq!(verified.claims.ticket_id, t["id"].as_u64().unwrap());
        assert_eq!(verified.claims.event_id, event_id as u64);
        let svg = api
            .http
            .get(format!("{}/tickets/{}/qr.svg", api.base, t["id"]))
            .bearer_auth(&customer)
            .send()
            .await
            .unwrap();
        assert_eq!(svg.headers()["content-type"], "image/svg+xml");
        assert!(svg.text().await.unwrap().contains("<svg"));
        let png = api
            .http
            .get(format!("{}/tickets/{}/qr.png", api.base, t["id"]))
            .bearer_auth(&customer)
            .send()
            .await
            .unwrap();
        assert_eq!(&png.bytes().await.unwrap()[..4], b"\x89PNG");
    }
    let (status, order_again) = api.get(&format!("/orders/{}", order["id"]), Some(&customer)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order_again["status"], "paid");
}

async fn a_declined_payment_returns_the_stock(store: Store) {
    let api = Api::start(store).await;
    let (_, _, event_id, type_id) = api.on_sale(10, 1, None).await;
    let (_, customer) = api.user("dee@example.com", Role::Customer).await;
    let hold = api.hold(&customer, event_id, type_id, 3).await;
    api.expect_available(event_id, type_id, 7).await;
    let (status, problem) = api
        .post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test", "test_outcome": "decline"}))
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{problem}");
    api.expect_available(event_id, type_id, 10).await;
    let (_, tickets) = api.get("/users/me/tickets", Some(&customer)).await;
    assert_eq!(tickets, json!([]));
}

async fn stripe_order(api: &Api, customer: &str, event_id: i64, type_id: i64, quantity: i64) -> Value {
    let hold = api.hold(customer, event_id, type_id, quantity).await;
    let (status, order) =
        api.post("/orders", Some(customer), json!({"hold_id": hold["id"], "gateway": "stripe"})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    order
}

async fn a_stripe_payment_is_paid_by_its_signed_webhook_once(store: Store) {
    let api = Api::start(store).await;
    let (_, _, event_id, type_id) = api.on_sale(10, 1, None).await;
    let (_, customer) = api.user("sam@example.com", Role::Customer).await;
    let order = stripe_order(&api, &customer, event_id, type_id, 2).await;
    assert_eq!(order["status"], "pending");
    let intent = order["payment_id"].as_str().unwrap().to_owned();
    assert!(order["client_secret"].as_str().unwrap().starts_with(&intent));
    let calls = api.stripe.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/v1/payment_intents");
    assert!(calls[0].form.contains("amount=5000") && calls[0].form.contains("currency=eur"), "{}", calls[0].form);
    assert_eq!(calls[0].idempotency_key, format!("tixgate-order-{}", order["id"]));

    let paid = event("evt_paid_1", "payment_intent.succeeded", json!({"id": intent, "object": "payment_intent"}));
    // Refused deliveries change nothing.
    let stale = signature::sign(paid.to_string().as_bytes(), WEBHOOK_SECRET, clock::now() - 301);
    let forged = signature::sign(paid.to_string().as_bytes(), "whsec_someone_else", clock::now());
    for header in [Some(stale), Some(forged), Some("t=1,v0=abc".to_owned())] {
        let (status, problem) = webhook(&api, &paid, header).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    }
    let (status, _) = api.get(&format!("/orders/{}", order["id"]), Some(&customer)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, tickets) = api.get("/users/me/tickets", Some(&customer)).await;
    assert_eq!(tickets, json!([]), "nothing issued before a signed success");

    let (status, outcome) = webhook(&api, &paid, None).await;
    assert_eq!((status, outcome["outcome"].as_str()), (StatusCode::OK, Some("applied")));
    let (status, outcome) = webhook(&api, &paid, None).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "a redelivery changes nothing"
    );
    let (_, now_paid) = api.get(&format!("/orders/{}", order["id"]), Some(&customer)).await;
    assert_eq!(now_paid["status"], "paid");
    let (_, tickets) = api.get("/users/me/tickets", Some(&customer)).await;
    assert_eq!(tickets.as_array().map(Vec::len), Some(2));

    let (status, problem) = webhook(&api, &json!({"id": "evt_x"}), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
}

async fn a_refund_revokes_the_tickets_in_the_next_manifest(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue_id, event_id, type_id) = api.on_sale(10, 1, None).await;
    let (_, customer) = api.user("rae@example.com", Role::Customer).await;
    let (_, other) = api.user("other@example.com", Role::Customer).await;
    let order = stripe_order(&api, &customer, event_id, type_id, 2).await;
    let intent = order["payment_id"].as_str().unwrap().to_owned();
    // Out of order: the refund's webhook can only matter after the success.
    let (status, _) = webhook(&api, &event("evt_ok", "payment_intent.succeeded", json!({"id": intent})), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, device) =
        api.post(&format!("/admin/venues/{venue_id}/devices"), Some(&organizer), json!({"name": "hub"})).await;
    let hub = device["token"].as_str().unwrap().to_owned();
    let before =
        api.http.get(format!("{}/venues/{venue_id}/manifest", api.base)).bearer_auth(&hub).send().await.unwrap();
    let version: i64 = before.headers()["x-manifest-version"].to_str().unwrap().parse().unwrap();

    let (status, problem) = api.post(&format!("/orders/{}/refund", order["id"]), Some(&other), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, refunded) = api.post(&format!("/orders/{}/refund", order["id"]), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(api.stripe.calls().last().map(|c| c.path.clone()).as_deref(), Some("/v1/refunds"));
    api.expect_available(event_id, type_id, 10).await;
    // Stripe's own refund notice that follows changes nothing more.
    let notice =
        event("evt_refund", "charge.refunded", json!({"id": "ch_1", "payment_intent": intent, "refunded": true}));
    let (status, outcome) = webhook(&api, &notice, None).await;
    assert_eq!((status, outcome["outcome"].as_str()), (StatusCode::OK, Some("no_change")));

    let delta = api
        .http
        .get(format!("{}/venues/{venue_id}/manifest?since={version}", api.base))
        .bearer_auth(&hub)
        .send()
        .await
        .unwrap();
    assert_eq!(delta.headers()["x-manifest-kind"], "delta");
    let manifest = schema::manifest::Manifest::open(&delta.bytes().await.unwrap(), &api.keyring, clock::now() as u64)
        .expect("a manifest the gates' keyring accepts");
    assert_eq!(manifest.base_version, Some(version as u64));
    assert_eq!(manifest.tickets.len(), 2);
    assert!(manifest.tickets.iter().all(|t| t.status == schema::entry::TicketStatus::Revoked));
    let (_, tickets) = api.get("/users/me/tickets", Some(&customer)).await;
    assert!(tickets.as_array().unwrap().iter().all(|t| t["status"] == "revoked"));
}

async fn cancelling_an_event_refunds_every_order(store: Store) {
    let api = Api::start(store).await;
    let (organizer, _, event_id, type_id) = api.on_sale(10, 1, None).await;
    let (_, customer) = api.user("cat@example.com", Role::Customer).await;
    let paid = api.hold(&customer, event_id, type_id, 1).await;
    api.post("/orders", Some(&customer), json!({"hold_id": paid["id"], "gateway": "test"})).await;
    let pending = stripe_order(&api, &customer, event_id, type_id, 1).await;
    let _held = api.hold(&customer, event_id, type_id, 1).await;
    let (status, result) = api.post(&format!("/admin/events/{event_id}/cancel"), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result, json!({"refunded": 1, "cancelled": 1, "failed": 0}));
    let (_, tickets) = api.get("/users/me/tickets", Some(&customer)).await;
    assert!(tickets.as_array().unwrap().iter().all(|t| t["status"] == "revoked"));
    let (_, order) = api.get(&format!("/orders/{}", pending["id"]), Some(&customer)).await;
    assert_eq!(order["status"], "cancelled");
    // A cancelled event is no longer listed.
    api.eventually(&format!("/events/{event_id}"), StatusCode::NOT_FOUND).await;
    let (_, page) = api.get("/events", None).await;
    assert_eq!(page["total"], 0);
}

async fn a_payment_that_arrives_after_expiry_takes_stock_again_or_is_refunded(store: Store) {
    let api = Api::start(store).await;
    let (organizer, _, event_id, type_id) = api.on_sale(2, 1, None).await;
    // Just past the 15-minute payment deadline of an order placed now.
    let after_deadline = || clock::now() + 15 * 60 + 5;
    let succeeded = |id: &str, intent: &Value| event(id, "payment_intent.succeeded", json!({"id": intent}));

    // Paid late, stock still there: the order takes it again and is paid.
    let (_, first) = api.user("first@example.com", Role::Customer).await;
    let order = stripe_order(&api, &first, event_id, type_id, 2).await;
    assert_eq!(cloud_api::sale::inventory::sweep_expired(&api.state.db, after_deadline()).await.unwrap(), 1);
    api.expect_available(event_id, type_id, 2).await;
    let (status, _) = webhook(&api, &succeeded("evt_late_1", &order["payment_id"]), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, order) = api.get(&format!("/orders/{}", order["id"]), Some(&first)).await;
    assert_eq!(order["status"], "paid");
    api.expect_available(event_id, type_id, 0).await;
    api.post(&format!("/orders/{}/refund", order["id"]), Some(&organizer), json!({})).await;

    // Paid late, stock sold to someone else meanwhile: the money goes back.
    let (_, second) = api.user("second@example.com", Role::Customer).await;
    let (_, third) = api.user("third@example.com", Role::Customer).await;
    let order = stripe_order(&api, &second, event_id, type_id, 2).await;
    cloud_api::sale::inventory::sweep_expired(&api.state.db, after_deadline()).await.unwrap();
    let taken = api.hold(&third, event_id, type_id, 2).await;
    let (_, bought) = api.post("/orders", Some(&third), json!({"hold_id": taken["id"], "gateway": "test"})).await;
    assert_eq!(bought["status"], "paid");
    let refunds_before = api.stripe.calls().iter().filter(|c| c.path == "/v1/refunds").count();
    let (status, _) = webhook(&api, &succeeded("evt_late_2", &order["payment_id"]), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, order) = api.get(&format!("/orders/{}", order["id"]), Some(&second)).await;
    assert_eq!(order["status"], "refunded");
    assert_eq!(api.stripe.calls().iter().filter(|c| c.path == "/v1/refunds").count(), refunds_before + 1);
    let (_, tickets) = api.get("/users/me/tickets", Some(&second)).await;
    assert_eq!(tickets, json!([]), "no tickets beyond what exists");
}
