//! Discount codes: an organizer makes them, an order applies one in its own
//! transaction, and the limits hold when customers race for the last use.

use cloud_api::accounts::auth::Role;
use cloud_api::common::clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Api, Store, rfc3339};
use crate::on_both_stores;

on_both_stores!(
    a_percent_code_discounts_its_ticket_types_in_its_window_only,
    usage_limits_hold_when_customers_race_for_the_last_use,
    a_fully_discounted_order_is_paid_and_refunded_without_a_gateway,
);

async fn new_code(api: &Api, organizer: &str, event: i64, body: Value) -> (StatusCode, Value) {
    api.post(&format!("/admin/events/{event}/promo-codes"), Some(organizer), body).await
}

async fn order(api: &Api, token: &str, hold: &str, code: Option<&str>) -> (StatusCode, Value) {
    api.post("/orders", Some(token), json!({"hold_id": hold, "gateway": "test", "promo_code": code})).await
}

async fn codes(api: &Api, organizer: &str, event: i64) -> Vec<Value> {
    let (status, list) = api.get(&format!("/admin/events/{event}/promo-codes"), Some(organizer)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

async fn a_percent_code_discounts_its_ticket_types_in_its_window_only(store: Store) {
    let api = Api::start(store).await;
    let (organizer, _, event, standing) = api.on_sale(100, 1, None).await;
    let (status, vip) = api
        .post(
            &format!("/admin/events/{event}/ticket-types"),
            Some(&organizer),
            json!({"name": "VIP", "price_minor": 10000, "currency": "EUR", "total": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{vip}");
    let vip = vip["id"].as_i64().unwrap();
    let (_, customer) = api.user("ann@example.com", Role::Customer).await;

    // Refused at creation, each with its reason; nothing is stored.
    for (body, field) in [
        (json!({"code": "x", "kind": "percent", "value": 10}), "code"),
        (json!({"code": "ZERO", "kind": "percent", "value": 0}), "value"),
        (json!({"code": "MANY", "kind": "percent", "value": 101}), "value"),
        (json!({"code": "FIVE", "kind": "fixed", "value": 500}), "currency"),
        (json!({"code": "ALIEN", "kind": "percent", "value": 5, "ticket_type_ids": [999_999]}), "ticket_type_ids"),
        (json!({"code": "NOUSE", "kind": "percent", "value": 5, "max_uses": 0}), "max_uses"),
    ] {
        let (status, problem) = new_code(&api, &organizer, event, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert!(problem["detail"].as_str().unwrap().starts_with(field), "{problem}");
    }
    let (status, _) = new_code(&api, &customer, event, json!({"code": "MINE", "kind": "percent", "value": 50})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(codes(&api, &organizer, event).await.is_empty());

    let (status, code) = new_code(
        &api,
        &organizer,
        event,
        json!({"code": "summer10", "kind": "percent", "value": 10, "ticket_type_ids": [standing]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{code}");
    assert_eq!(code["code"], "SUMMER10");
    assert_eq!(code["ticket_type_ids"], json!([standing]));
    let (status, _) =
        new_code(&api, &organizer, event, json!({"code": "Summer10", "kind": "percent", "value": 20})).await;
    assert_eq!(status, StatusCode::CONFLICT, "codes are case-blind, so this one exists");
    let later = clock::now() + 3600;
    let (status, _) = new_code(
        &api,
        &organizer,
        event,
        json!({"code": "LATER", "kind": "percent", "value": 50, "starts_at": rfc3339(later)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Typed in any case, it takes 10% off two standing tickets.
    let standing_hold = api.hold(&customer, event, standing, 2).await["id"].as_str().unwrap().to_owned();
    let (status, paid) = order(&api, &customer, &standing_hold, Some(" Summer10 ")).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!((paid["status"].as_str(), paid["amount_minor"].as_i64()), (Some("paid"), Some(4500)));
    assert_eq!((paid["discount_minor"].as_i64(), paid["promo_code"].as_str()), (Some(500), Some("SUMMER10")));

    // A VIP hold: the code is refused and the hold stays usable.
    let vip_hold = api.hold(&customer, event, vip, 1).await["id"].as_str().unwrap().to_owned();
    for (code, status, why) in [
        ("SUMMER10", StatusCode::CONFLICT, "not valid for this ticket type"),
        ("LATER", StatusCode::CONFLICT, "not valid yet"),
        ("NOSUCHCODE", StatusCode::NOT_FOUND, "not found"),
        ("bad code!", StatusCode::NOT_FOUND, "not found"),
    ] {
        let (got, problem) = order(&api, &customer, &vip_hold, Some(code)).await;
        assert_eq!(got, status, "{code}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(why), "{code}: {problem}");
    }
    let (status, full_price) = order(&api, &customer, &vip_hold, None).await;
    assert_eq!(status, StatusCode::CREATED, "{full_price}");
    assert_eq!((full_price["amount_minor"].as_i64(), full_price["discount_minor"].as_i64()), (Some(10000), Some(0)));

    let listed = codes(&api, &organizer, event).await;
    let summer = listed.iter().find(|c| c["code"] == "SUMMER10").unwrap();
    assert_eq!((summer["uses"].as_i64(), summer["paid_orders"].as_i64()), (Some(1), Some(1)));
    assert_eq!(summer["discount_given_minor"], 500);

    // Disabled: new orders are refused, the paid one keeps its discount.
    let (status, disabled) =
        api.post(&format!("/admin/promo-codes/{}/disable", summer["id"]), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["active"], false);
    let another = api.hold(&customer, event, standing, 1).await["id"].as_str().unwrap().to_owned();
    let (status, problem) = order(&api, &customer, &another, Some("SUMMER10")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (_, kept) = api.get(&format!("/orders/{}", paid["id"]), Some(&customer)).await;
    assert_eq!(kept["amount_minor"], 4500);
}

async fn usage_limits_hold_when_customers_race_for_the_last_use(store: Store) {
    let api = Api::start(store).await;
    let (organizer, _, event, standing) = api.on_sale(100, 4, None).await;
    let (status, code) = new_code(
        &api,
        &organizer,
        event,
        json!({"code": "LAST3", "kind": "fixed", "value": 1000, "currency": "EUR", "max_uses": 3,
               "max_uses_per_customer": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{code}");

    // A declined payment gives its use back at once.
    let (_, first) = api.user("first@example.com", Role::Customer).await;
    let first_hold = api.hold(&first, event, standing, 1).await["id"].as_str().unwrap().to_owned();
    let (status, _) = api
        .post(
            "/orders",
            Some(&first),
            json!({"hold_id": first_hold, "gateway": "test", "test_outcome": "decline", "promo_code": "LAST3"}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(codes(&api, &organizer, event).await[0]["uses"], 0);

    // Eight customers order at once: three get the code.
    let mut customers = Vec::new();
    for n in 0..8 {
        let (_, token) = api.user(&format!("racer{n}@example.com"), Role::Customer).await;
        let held = api.hold(&token, event, standing, 1).await["id"].as_str().unwrap().to_owned();
        customers.push((token, held));
    }
    let api_ref = &api;
    let results = futures_util::future::join_all(
        customers.iter().map(|(token, held)| async move { order(api_ref, token, held, Some("LAST3")).await }),
    )
    .await;
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for ((token, held), (status, body)) in customers.iter().zip(&results) {
        match *status {
            StatusCode::CREATED => {
                assert_eq!((body["amount_minor"].as_i64(), body["discount_minor"].as_i64()), (Some(1500), Some(1000)));
                winners.push((token.clone(), body["id"].as_i64().unwrap()));
            }
            StatusCode::CONFLICT => {
                assert!(body["detail"].as_str().unwrap().contains("used up"), "{body}");
                losers.push((token.clone(), held.clone()));
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 3, "{results:?}");
    assert_eq!(codes(&api, &organizer, event).await[0]["uses"], 3);

    // A refund frees a use; a winner may not take it (one per customer), a loser may.
    let (status, refunded) = api.post(&format!("/orders/{}/refund", winners[0].1), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    assert_eq!(refunded["status"], "refunded");
    let again = api.hold(&winners[1].0, event, standing, 1).await["id"].as_str().unwrap().to_owned();
    let (status, problem) = order(&api, &winners[1].0, &again, Some("last3")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("as often as it allows"), "{problem}");
    let (loser, loser_hold) = &losers[0];
    let (status, late) = order(&api, loser, loser_hold, Some("LAST3")).await;
    assert_eq!(status, StatusCode::CREATED, "{late}");
    let listed = &codes(&api, &organizer, event).await[0];
    assert_eq!((listed["uses"].as_i64(), listed["paid_orders"].as_i64()), (Some(3), Some(3)));
    assert_eq!(listed["discount_given_minor"], 3000);
}

async fn a_fully_discounted_order_is_paid_and_refunded_without_a_gateway(store: Store) {
    let api = Api::start(store).await;
    let (organizer, _, event, standing) = api.on_sale(10, 1, None).await;
    let (status, _) =
        new_code(&api, &organizer, event, json!({"code": "GUEST-LIST", "kind": "percent", "value": 100})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, guest) = api.user("guest@example.com", Role::Customer).await;
    let held = api.hold(&guest, event, standing, 2).await["id"].as_str().unwrap().to_owned();
    // Stripe would need the customer to pay; with nothing to pay it is never asked.
    let (status, order) = api
        .post("/orders", Some(&guest), json!({"hold_id": held, "gateway": "stripe", "promo_code": "guest-list"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!((order["status"].as_str(), order["amount_minor"].as_i64()), (Some("paid"), Some(0)));
    assert_eq!(order["ticket_ids"].as_array().map(Vec::len), Some(2));
    let (status, refunded) = api.post(&format!("/orders/{}/refund", order["id"]), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    assert_eq!(refunded["status"], "refunded");
    assert!(api.stripe.calls().is_empty(), "{:?}", api.stripe.calls());
    api.expect_available(event, standing, 10).await;
}
