//! Resale: a holder lists a ticket at a capped price, a buyer pays as for any
//! order, the buyer's new code enters and the seller's old code is revoked in
//! the venue's next manifest.

use cloud_api::accounts::auth::Role;
use reqwest::{Method, StatusCode};
use schema::entry::TicketStatus;
use serde_json::{Value, json};

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(
    a_resold_ticket_is_revoked_and_the_buyer_gets_a_new_code_in_the_next_manifest,
    a_listing_goes_to_one_buyer_and_comes_back_when_the_reservation_ends,
);

/// A customer with one paid ticket; answers (token, order, ticket id).
async fn ticket_holder(api: &Api, email: &str, event: i64, ticket_type: i64) -> (String, Value, i64) {
    let (_, token) = api.user(email, Role::Customer).await;
    let hold = api.hold(&token, event, ticket_type, 1).await;
    let (status, order) = api.post("/orders", Some(&token), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let ticket = order["ticket_ids"][0].as_i64().unwrap();
    (token, order, ticket)
}

async fn a_resold_ticket_is_revoked_and_the_buyer_gets_a_new_code_in_the_next_manifest(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, event, standing) = api.on_sale(10, 1, None).await;
    let (seller, seller_order, old) = ticket_holder(&api, "sal@example.com", event, standing).await;
    let hub = api.hub_token(&organizer, venue).await;
    let (_, before) = api.manifest(&hub, venue, None).await;

    // The cap is the face value (2500); someone else's ticket cannot be listed.
    let listing_path = format!("/tickets/{old}/resale");
    let (status, problem) = api.post(&listing_path, Some(&seller), json!({"price_minor": 2501})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("1 to 2500"), "{problem}");
    let (_, buyer) = api.user("bo@example.com", Role::Customer).await;
    let (status, _) = api.post(&listing_path, Some(&buyer), json!({"price_minor": 2000})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, listing) = api.post(&listing_path, Some(&seller), json!({"price_minor": 2000})).await;
    assert_eq!(status, StatusCode::CREATED, "{listing}");
    let (status, _) = api.post(&listing_path, Some(&seller), json!({"price_minor": 1900})).await;
    assert_eq!(status, StatusCode::CONFLICT, "one open listing per ticket");
    let (_, offers) = api.get(&format!("/events/{event}/resale"), None).await;
    assert_eq!(offers.as_array().map(Vec::len), Some(1));
    assert_eq!((offers[0]["price_minor"].as_i64(), offers[0]["reserved"].as_bool()), (Some(2000), Some(false)));

    // The buyer reserves and pays it as any order.
    let (status, hold) = api.post(&format!("/resale/{}/reserve", listing["id"]), Some(&buyer), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["amount_minor"], 2000);
    let (status, problem) =
        api.post("/orders", Some(&buyer), json!({"hold_id": hold["id"], "gateway": "test", "promo_code": "ANY"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "no discount codes on resale: {problem}");
    let (status, order) = api.post("/orders", Some(&buyer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!((order["status"].as_str(), order["amount_minor"].as_i64()), (Some("paid"), Some(2000)));
    let new = order["ticket_ids"][0].as_i64().unwrap();
    assert_ne!(new, old);

    let (_, old_ticket) = api.get(&format!("/tickets/{old}"), Some(&seller)).await;
    assert_eq!(old_ticket["status"], "revoked");
    let (_, new_ticket) = api.get(&format!("/tickets/{new}"), Some(&buyer)).await;
    assert_eq!(
        (new_ticket["status"].as_str(), new_ticket["holder_name"].as_str()),
        (Some("valid"), Some("Name of bo@example.com"))
    );
    assert_ne!(new_ticket["barcode"], old_ticket["barcode"]);
    assert_eq!(new_ticket["seat"], old_ticket["seat"]);
    let (_, offers) = api.get(&format!("/events/{event}/resale"), None).await;
    assert_eq!(offers, json!([]));

    // The next manifest turns the old code away and lets the new one in.
    let (status, delta) = api.manifest(&hub, venue, Some(before.version)).await;
    assert_eq!(status, StatusCode::OK);
    let status_of = |id: i64| delta.tickets.iter().find(|t| t.ticket_id == id as u64).map(|t| t.status);
    assert_eq!((status_of(old), status_of(new)), (Some(TicketStatus::Revoked), Some(TicketStatus::Valid)));
    let code = new_ticket["barcode"].as_str().unwrap();
    let verified = api.keyring.verify(code, cloud_api::common::clock::now() as u64).unwrap();
    assert_eq!(verified.claims.ticket_id, new as u64);

    // The seller's original order cannot be refunded any more; the resale order can.
    let (status, problem) =
        api.post(&format!("/orders/{}/refund", seller_order["id"]), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, refunded) = api.post(&format!("/orders/{}/refund", order["id"]), Some(&organizer), json!({})).await;
    assert_eq!((status, refunded["status"].as_str()), (StatusCode::OK, Some("refunded")));
    let (_, new_ticket) = api.get(&format!("/tickets/{new}"), Some(&buyer)).await;
    assert_eq!(new_ticket["status"], "revoked");
    let (_, old_again) = api.get(&format!("/tickets/{old}"), Some(&seller)).await;
    assert_eq!(old_again["status"], "valid", "refunding the resale gives the seller's ticket back");
    let (_, delta) = api.manifest(&hub, venue, Some(before.version)).await;
    let status_of = |id: i64| delta.tickets.iter().find(|t| t.ticket_id == id as u64).map(|t| t.status);
    assert_eq!((status_of(old), status_of(new)), (Some(TicketStatus::Valid), Some(TicketStatus::Revoked)));
}

async fn a_listing_goes_to_one_buyer_and_comes_back_when_the_reservation_ends(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, event, standing) = api.on_sale(10, 1, None).await;
    let (seller, _, ticket) = ticket_holder(&api, "sal@example.com", event, standing).await;
    let (_, listing) =
        api.post(&format!("/tickets/{ticket}/resale"), Some(&seller), json!({"price_minor": 2500})).await;
    let reserve = format!("/resale/{}/reserve", listing["id"]);
    let (status, _) = api.post(&reserve, Some(&seller), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "not one's own listing");

    let mut buyers = Vec::new();
    for n in 0..4 {
        buyers.push(api.user(&format!("buyer{n}@example.com"), Role::Customer).await.1);
    }
    let api_ref = &api;
    let tries = futures_util::future::join_all(buyers.iter().map(|b| {
        let reserve = reserve.clone();
        async move { api_ref.post(&reserve, Some(b), json!({})).await }
    }))
    .await;
    let won: Vec<&(StatusCode, Value)> = tries.iter().filter(|(s, _)| *s == StatusCode::CREATED).collect();
    assert_eq!(won.len(), 1, "{tries:?}");
    assert!(tries.iter().all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{tries:?}");
    let hold = won[0].1["id"].as_str().unwrap().to_owned();
    let winner = &buyers[tries.iter().position(|(s, _)| *s == StatusCode::CREATED).unwrap()];

    let withdraw = format!("/resale/{}", listing["id"]);
    let (status, problem) = api.call(Method::DELETE, &withdraw, Some(&seller), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "reserved: {problem}");
    // The reservation ends; the listing is open again, and the seller may take it back.
    let (status, _) = api.call(Method::DELETE, &format!("/holds/{hold}"), Some(winner), None).await;
    assert!(status.is_success(), "{status}");
    let (_, offers) = api.get(&format!("/events/{event}/resale"), None).await;
    assert_eq!(offers[0]["reserved"], false);
    let (status, withdrawn) = api.call(Method::DELETE, &withdraw, Some(&seller), None).await;
    assert_eq!((status, withdrawn["status"].as_str()), (StatusCode::OK, Some("withdrawn")));
    let (status, _) = api.post(&reserve, Some(&buyers[0]), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, kept) = api.get(&format!("/tickets/{ticket}"), Some(&seller)).await;
    assert_eq!(kept["status"], "valid", "a withdrawn listing leaves the ticket as it was");

    // Listed again, then used at the door: nobody can reserve a ticket already inside.
    let (status, relisted) =
        api.post(&format!("/tickets/{ticket}/resale"), Some(&seller), json!({"price_minor": 2500})).await;
    assert_eq!(status, StatusCode::CREATED, "{relisted}");
    let hub = api.hub_token(&organizer, venue).await;
    let entry = json!({"scans": [{"scan_id": "n:1", "gate_id": "north-1", "ticket_id": ticket, "event_id": event,
        "list_id": 1, "direction": "entry", "decision": "accept", "reason": null, "offline": false, "annulled": false,
        "hlc": 1, "wall_ms": cloud_api::common::clock::now() * 1000}]});
    let (status, _) = api.post(&format!("/venues/{venue}/scans"), Some(&hub), entry).await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = api.post(&format!("/resale/{}/reserve", relisted["id"]), Some(&buyers[1]), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
}
