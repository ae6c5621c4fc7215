//! Fraud scoring: velocity per IP and account and one device across too many
//! accounts refuse reservations; an order over the review score (too many
//! tickets to one buyer, one card across accounts) is paid but its tickets
//! wait in the case list until the organizer approves or rejects it.

use cloud_api::accounts::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(velocity_and_a_shared_device_refuse_reservations, orders_over_the_review_score_wait_for_the_organizer);

async fn reserve(api: &Api, token: &str, event: i64, ticket_type: i64, device: Option<&str>) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = device.map(|d| ("x-device-id", d)).into_iter().collect();
    let body = json!({"ticket_type_id": ticket_type, "quantity": 1});
    api.call_with(Method::POST, &format!("/events/{event}/reserve-tickets"), Some(token), Some(body), &headers).await
}

async fn velocity_and_a_shared_device_refuse_reservations(store: Store) {
    let rules = "[fraud]\nattempts_per_account = 3\nattempts_per_ip = 4\naccounts_per_device = 2\n";
    let api = Api::start_with(store, rules).await;
    let (_, _, event, standing) = api.on_sale(100, 1, None).await;
    let (_, eager) = api.user("eager@example.com", Role::Customer).await;
    for attempt in 1..=4 {
        let (status, hold) = reserve(&api, &eager, event, standing, None).await;
        // The fourth reaches the account's limit alone: a score to review, not to refuse.
        assert_eq!(status, StatusCode::CREATED, "attempt {attempt}: {hold}");
    }
    let (status, problem) = reserve(&api, &eager, event, standing, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "account and IP over their limits: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("fraud checks"), "{problem}");
    let (status, _) = reserve(&api, &eager, event, standing, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a refused attempt still counts");
    let (_, other) = api.user("other@example.com", Role::Customer).await;
    let (status, problem) = reserve(&api, &other, event, standing, None).await;
    assert_eq!(status, StatusCode::CREATED, "another account from the same IP scores 50 only: {problem}");

    // One device across a third account is refused even from a fresh IP budget.
    let api = Api::start_with(store, "[fraud]\naccounts_per_device = 2\n").await;
    let (_, _, event, standing) = api.on_sale(100, 1, None).await;
    let mut tokens = Vec::new();
    for n in 0..3 {
        tokens.push(api.user(&format!("dev{n}@example.com"), Role::Customer).await.1);
    }
    for token in &tokens[..2] {
        let (status, hold) = reserve(&api, token, event, standing, Some("phone-7")).await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
    }
    let (status, _) = reserve(&api, &tokens[2], event, standing, Some("phone-7")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a third account on one device");
    let (status, _) = reserve(&api, &tokens[2], event, standing, Some("phone-8")).await;
    assert_eq!(status, StatusCode::CREATED, "the same account on its own device");
    let (status, problem) = reserve(&api, &tokens[2], event, standing, Some("bad device")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    api.expect_available(event, standing, 100 - 3).await;
}

async fn order(api: &Api, token: &str, hold: &Value, card: &str) -> Value {
    let body = json!({"hold_id": hold["id"], "gateway": "test", "payment_fingerprint": card});
    let (status, order) = api.post("/orders", Some(token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    order
}

async fn orders_over_the_review_score_wait_for_the_organizer(store: Store) {
    let api = Api::start_with(store, "[fraud]\ntickets_per_buyer = 4\naccounts_per_payment = 1\n").await;
    let (organizer, _, event, standing) = api.on_sale(20, 1, None).await;
    let (_, bulk) = api.user("bulk@example.com", Role::Customer).await;
    let first = order(&api, &bulk, &api.hold(&bulk, event, standing, 3).await, "card-1").await;
    assert_eq!((first["status"].as_str(), first["review"].as_str()), (Some("paid"), None));
    assert_eq!(first["ticket_ids"].as_array().unwrap().len(), 3);
    // Five tickets to one buyer: paid, but no tickets until reviewed.
    let held = order(&api, &bulk, &api.hold(&bulk, event, standing, 2).await, "card-1").await;
    assert_eq!((held["status"].as_str(), held["review"].as_str()), (Some("paid"), Some("held")), "{held}");
    assert_eq!(held["ticket_ids"], json!([]));
    // One card for a second account: held too.
    let (_, friend) = api.user("friend@example.com", Role::Customer).await;
    let shared = order(&api, &friend, &api.hold(&friend, event, standing, 1).await, "card-1").await;
    assert_eq!(shared["review"].as_str(), Some("held"), "{shared}");
    let (_, mine) = api.get(&format!("/orders/{}", shared["id"]), Some(&friend)).await;
    assert_eq!((mine["review"].as_str(), mine["ticket_ids"].clone()), (Some("held"), json!([])));
    api.expect_available(event, standing, 20 - 6).await;

    let (status, list) = api.get(&format!("/admin/events/{event}/cases"), Some(&organizer)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let case_for = |order: &Value| {
        list.as_array().unwrap().iter().find(|c| c["order_id"] == order["id"]).cloned().unwrap_or(Value::Null)
    };
    let (bulk_case, card_case) = (case_for(&held), case_for(&shared));
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!((bulk_case["kind"].as_str(), bulk_case["status"].as_str()), (Some("order_review"), Some("open")));
    assert!(bulk_case["detail"].as_str().unwrap().contains("5 tickets of this event"), "{bulk_case}");
    assert!(card_case["detail"].as_str().unwrap().contains("payment method used by 2 accounts"), "{card_case}");

    // Approved: the tickets are issued. Rejected: the money and the stock go back.
    let resolve = |case: &Value| format!("/admin/cases/{}/resolve", case["id"]);
    let (status, done) =
        api.post(&resolve(&bulk_case), Some(&organizer), json!({"outcome": "dismissed", "note": "a school"})).await;
    assert_eq!((status, done["status"].as_str()), (StatusCode::OK, Some("dismissed")), "{done}");
    let (_, approved) = api.get(&format!("/orders/{}", held["id"]), Some(&bulk)).await;
    assert_eq!(approved["review"].as_str(), Some("approved"));
    assert_eq!(approved["ticket_ids"].as_array().unwrap().len(), 2, "{approved}");
    let (status, _) = api.post(&resolve(&bulk_case), Some(&organizer), json!({"outcome": "confirmed"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "resolved once only");

    let (status, _) = api.post(&resolve(&card_case), Some(&organizer), json!({"outcome": "confirmed"})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, rejected) = api.get(&format!("/orders/{}", shared["id"]), Some(&friend)).await;
    assert_eq!((rejected["status"].as_str(), rejected["review"].as_str()), (Some("refunded"), Some("rejected")));
    assert_eq!(rejected["ticket_ids"], json!([]));
    api.expect_available(event, standing, 20 - 5).await;
}
