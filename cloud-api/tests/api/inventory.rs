//! Holds never oversell, expire back into stock, repeat safely under an
//! Idempotency-Key, and claim individual seats.

use std::sync::Arc;

use cloud_api::accounts::auth::Role;
use cloud_api::common::clock;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(
    concurrent_buyers_never_get_more_than_exists,
    an_expired_hold_returns_its_stock_and_cannot_be_ordered,
    a_repeated_reservation_with_one_key_holds_once,
    seats_are_held_one_buyer_at_a_time,
    a_released_hold_returns_its_stock,
);

async fn concurrent_buyers_never_get_more_than_exists(store: Store) {
    let api = Arc::new(Api::start(store).await);
    let (_, _, event_id, type_id) = api.on_sale(60, 4, None).await;
    let mut customers = Vec::new();
    for i in 0..8 {
        customers.push(api.user(&format!("buyer{i}@example.com"), Role::Customer).await.1);
    }
    let mut tasks = Vec::new();
    for task in 0..40 {
        let api = Arc::clone(&api);
        let token = customers[task % customers.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut held = 0;
            for attempt in 0..4 {
                let quantity = 1 + (task + attempt) as i64 % 3;
                let (status, body) = api
                    .post(
                        &format!("/events/{event_id}/reserve-tickets"),
                        Some(&token),
                        json!({"ticket_type_id": type_id, "quantity": quantity}),
                    )
                    .await;
                match status {
                    StatusCode::CREATED => held += body["quantity"].as_i64().unwrap(),
                    StatusCode::CONFLICT => assert!(body["detail"].as_str().unwrap().contains("sold out"), "{body}"),
                    other => panic!("unexpected {other}: {body}"),
                }
            }
            held
        }));
    }
    let mut held = 0;
    for task in tasks {
        held += task.await.unwrap();
    }
    assert!(held <= 60, "oversold: {held} held of 60");
    assert!(held >= 58, "demand exceeded supply, yet only {held} of 60 were held");
    api.expect_available(event_id, type_id, 60 - held).await;
}

async fn an_expired_hold_returns_its_stock_and_cannot_be_ordered(store: Store) {
    let api = Api::start(store).await;
    let (_, _, event_id, type_id) = api.on_sale(5, 1, None).await;
    let (_, customer) = api.user("eve@example.com", Role::Customer).await;
    let (_, hold) = api
        .post(
            &format!("/events/{event_id}/reserve-tickets"),
            Some(&customer),
            json!({"ticket_type_id": type_id, "quantity": 4}),
        )
        .await;
    assert!(hold["expires_at"].as_i64().unwrap() >= clock::now() + 599);
    api.expect_available(event_id, type_id, 1).await;
    assert_eq!(cloud_api::sale::inventory::sweep_expired(&api.state.db, clock::now() + 60).await.unwrap(), 0);
    assert_eq!(cloud_api::sale::inventory::sweep_expired(&api.state.db, clock::now() + 601).await.unwrap(), 1);
    api.expect_available(event_id, type_id, 5).await;
    let (status, problem) =
        api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    assert_eq!(status, StatusCode::GONE, "{problem}");
    api.expect_available(event_id, type_id, 5).await;
}

async fn a_repeated_reservation_with_one_key_holds_once(store: Store) {
    let api = Api::start(store).await;
    let (_, _, event_id, type_id) = api.on_sale(10, 2, None).await;
    let (_, customer) = api.user("ivy@example.com", Role::Customer).await;
    let path = format!("/events/{event_id}/reserve-tickets");
    let body = json!({"ticket_type_id": type_id, "quantity": 2});
    let key = [("idempotency-key", "retry-me-1")];
    let (first_status, first) = api.call_with(Method::POST, &path, Some(&customer), Some(body.clone()), &key).await;
    let (again_status, again) = api.call_with(Method::POST, &path, Some(&customer), Some(body), &key).await;
    assert_eq!((first_status, again_status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first, again, "the same key and body give the same answer");
    api.expect_available(event_id, type_id, 8).await;
    let other = json!({"ticket_type_id": type_id, "quantity": 3});
    let (status, problem) = api.call_with(Method::POST, &path, Some(&customer), Some(other), &key).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    api.expect_available(event_id, type_id, 8).await;

    // Sent at once, the requests meet on the key: one hold, one answer for all.
    let body = json!({"ticket_type_id": type_id, "quantity": 1});
    let key = [("idempotency-key", "sent-six-times")];
    let answers = futures_util::future::join_all(
        (0..6).map(|_| api.call_with(Method::POST, &path, Some(&customer), Some(body.clone()), &key)),
    )
    .await;
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["id"], answers[0].1["id"]);
    }
    api.expect_available(event_id, type_id, 7).await;

    // Orders too: a retried order with the key answers with the same order.
    let order_body = json!({"hold_id": first["id"], "gateway": "test"});
    let key = [("idempotency-key", "order-retry-1")];
    let (_, order) = api.call_with(Method::POST, "/orders", Some(&customer), Some(order_body.clone()), &key).await;
    let (_, order_again) = api.call_with(Method::POST, "/orders", Some(&customer), Some(order_body), &key).await;
    assert_eq!(order["id"], order_again["id"]);
    assert_eq!(order_again["ticket_ids"].as_array().map(Vec::len), Some(2));
    let (_, tickets) = api.get("/users/me/tickets", Some(&customer)).await;
    assert_eq!(tickets.as_array().map(Vec::len), Some(2), "paid once");
}

async fn seats_are_held_one_buyer_at_a_time(store: Store) {
    let api = Api::start(store).await;
    let seats: Vec<String> = ["A1", "A2", "A3", "B1"].iter().map(|s| (*s).to_owned()).collect();
    let (_, _, event_id, type_id) = api.on_sale(4, 1, Some(seats)).await;
    let (_, ann) = api.user("ann@example.com", Role::Customer).await;
    let (_, bob) = api.user("bob@example.com", Role::Customer).await;
    let path = format!("/events/{event_id}/reserve-tickets");
    let (status, hold) = api.post(&path, Some(&ann), json!({"ticket_type_id": type_id, "seats": ["A2", "A1"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["seats"], json!(["A1", "A2"]));
    let (status, problem) =
        api.post(&path, Some(&bob), json!({"ticket_type_id": type_id, "seats": ["A3", "A2"]})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("A2"));
    api.expect_available(event_id, type_id, 2).await;
    let (status, _) = api.post(&path, Some(&bob), json!({"ticket_type_id": type_id, "seats": ["Z9"]})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api.post(&path, Some(&bob), json!({"ticket_type_id": type_id, "quantity": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a seated type needs seats");
    let (_, order) = api.post("/orders", Some(&ann), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    let (_, tickets) = api.get("/users/me/tickets", Some(&ann)).await;
    let seats: Vec<_> = tickets.as_array().unwrap().iter().map(|t| t["seat"].clone()).collect();
    assert_eq!(seats, vec![json!("A1"), json!("A2")], "{order}");
    let code = tickets[0]["barcode"].as_str().unwrap();
    let claims = api.keyring.verify(code, clock::now() as u64).unwrap().claims;
    assert_eq!(claims.seat.map(|s| s.as_str().to_owned()).as_deref(), Some("A1"));
}

async fn a_released_hold_returns_its_stock(store: Store) {
    let api = Api::start(store).await;
    let (_, _, event_id, type_id) = api.on_sale(5, 1, None).await;
    let (_, ann) = api.user("ann@example.com", Role::Customer).await;
    let (_, bob) = api.user("bob@example.com", Role::Customer).await;
    let (_, hold) = api
        .post(
            &format!("/events/{event_id}/reserve-tickets"),
            Some(&ann),
            json!({"ticket_type_id": type_id, "quantity": 5}),
        )
        .await;
    let path = format!("/holds/{}", hold["id"].as_str().unwrap());
    let (status, _) = api.call(Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another customer's hold is invisible");
    api.expect_available(event_id, type_id, 0).await;
    let (status, _) = api.call(Method::DELETE, &path, Some(&ann), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    api.expect_available(event_id, type_id, 5).await;
}
