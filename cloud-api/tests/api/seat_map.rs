//! Seating maps: a venue's sections, rows and seats with coordinates; live
//! per-seat availability; best-available blocks side by side, also when
//! buyers race for them; seat holds that end like any hold.

use std::collections::HashSet;

use cloud_api::accounts::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Api, Store, rfc3339};
use crate::on_both_stores;

on_both_stores!(best_available_fills_the_map_best_first, racing_buyers_never_share_a_seat);

fn row(name: &str, count: usize, y: f64) -> Value {
    let seats: Vec<Value> =
        (1..=count).map(|n| json!({"label": format!("{name}{n}"), "x": n as f64 * 1.5, "y": y})).collect();
    json!({"name": name, "seats": seats})
}

fn hall() -> Value {
    json!({"sections": [
        {"name": "Stalls", "rows": [row("A", 4, 0.0), row("B", 5, 1.0)]},
        {"name": "Balcony", "rows": [row("K", 3, 9.0)]}
    ]})
}

fn labels(map: &Value) -> Vec<String> {
    let rows = map["sections"].as_array().unwrap().iter().flat_map(|s| s["rows"].as_array().unwrap().clone());
    rows.flat_map(|r| r["seats"].as_array().unwrap().clone()).map(|s| s["label"].as_str().unwrap().to_owned()).collect()
}

/// A published event at a venue with `map`, one seated type of `seats`.
async fn seated_event(api: &Api, organizer: &str, map: Value, seats: Vec<String>) -> (i64, i64) {
    let venue = json!({"name": "Opera", "address": "2 Square", "capacity": 500, "seating_map": map});
    let (status, venue) = api.post("/venues", Some(organizer), venue).await;
    assert_eq!(status, StatusCode::CREATED, "{venue}");
    let starts = cloud_api::common::clock::now() + 7 * 24 * 3600;
    let total = seats.len();
    let event = json!({"venue_id": venue["id"], "title": "Tosca", "starts_at": rfc3339(starts),
        "ends_at": rfc3339(starts + 3 * 3600), "ticket_types": [{"name": "Seat", "price_minor": 5000,
        "currency": "EUR", "total": total, "per_order_limit": 6, "seats": seats}]});
    let (status, event) = api.post("/admin/events", Some(organizer), event).await;
    assert_eq!(status, StatusCode::CREATED, "{event}");
    let id = event["id"].as_i64().unwrap();
    let (status, _) = api.post(&format!("/admin/events/{id}/publish"), Some(organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    (id, event["ticket_types"][0]["id"].as_i64().unwrap())
}

async fn best(api: &Api, token: &str, event: i64, ticket_type: i64, quantity: i64) -> (StatusCode, Value) {
    let body = json!({"ticket_type_id": ticket_type, "quantity": quantity});
    api.post(&format!("/events/{event}/reserve-tickets"), Some(token), body).await
}

async fn seat_status(api: &Api, event: i64) -> Vec<(String, String)> {
    let (status, types) = api.get(&format!("/events/{event}/seats"), None).await;
    assert_eq!(status, StatusCode::OK, "{types}");
    let seats = types[0]["seats"].as_array().unwrap();
    seats.iter().map(|s| (s["label"].as_str().unwrap().to_owned(), s["status"].as_str().unwrap().to_owned())).collect()
}

fn with_status(seats: &[(String, String)], status: &str) -> Vec<String> {
    seats.iter().filter(|(_, s)| s == status).map(|(l, _)| l.clone()).collect()
}

async fn best_available_fills_the_map_best_first(store: Store) {
    let api = Api::start(store).await;
    let (_, organizer) = api.user("house@example.com", Role::Organizer).await;
    // Bad maps and seats off the map are refused, naming what is wrong.
    let mut twice = hall();
    twice["sections"][1]["rows"][0]["seats"][0]["label"] = json!("A1");
    let venue = json!({"name": "Opera", "address": "2 Square", "capacity": 500, "seating_map": twice});
    let (status, problem) = api.post("/venues", Some(&organizer), venue).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(problem["detail"].as_str().unwrap().contains("seating_map: seat \"A1\" appears twice"), "{problem}");
    let (status, venue) = api
        .post(
            "/venues",
            Some(&organizer),
            json!({"name": "Opera", "address": "2 Square",
        "capacity": 500, "seating_map": hall()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(venue["seating_map"], hall(), "the map reads back as sent");
    let starts = cloud_api::common::clock::now() + 7 * 24 * 3600;
    let off_map = json!({"venue_id": venue["id"], "title": "Tosca", "starts_at": rfc3339(starts),
        "ends_at": rfc3339(starts + 3600), "ticket_types": [{"name": "Seat", "price_minor": 5000,
        "currency": "EUR", "total": 2, "seats": ["A1", "Z9"]}]});
    let (status, problem) = api.post("/admin/events", Some(&organizer), off_map).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(problem["detail"].as_str().unwrap().contains("\"Z9\" is not on the venue's seating map"), "{problem}");

    let (event, seat_type) = seated_event(&api, &organizer, hall(), labels(&hall())).await;
    let (_, types) = api.get(&format!("/events/{event}/seats"), None).await;
    let first = &types[0]["seats"][0];
    assert_eq!(
        (first["label"].as_str(), first["section"].as_str(), first["row"].as_str(), first["x"].as_f64()),
        (Some("A1"), Some("Stalls"), Some("A"), Some(1.5))
    );
    assert_eq!(with_status(&seat_status(&api, event).await, "free"), labels(&hall()), "all free, map order");

    let mut buyers = Vec::new();
    for n in 0..6 {
        buyers.push(api.user(&format!("b{n}@example.com"), Role::Customer).await.1);
    }
    let (_, ann) = best(&api, &buyers[0], event, seat_type, 2).await;
    assert_eq!(ann["seats"], json!(["A1", "A2"]));
    let (_, bob) = best(&api, &buyers[1], event, seat_type, 3).await;
    assert_eq!(bob["seats"], json!(["B1", "B2", "B3"]), "row A has only two left together");
    let path = format!("/events/{event}/reserve-tickets");
    let (status, _) = api.post(&path, Some(&buyers[2]), json!({"ticket_type_id": seat_type, "seats": ["A4"]})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, dan) = best(&api, &buyers[3], event, seat_type, 2).await;
    assert_eq!(dan["seats"], json!(["B4", "B5"]), "A3 alone is not a pair");
    let (_, eve) = best(&api, &buyers[4], event, seat_type, 3).await;
    assert_eq!(eve["seats"], json!(["K1", "K2", "K3"]));
    let (status, problem) = best(&api, &buyers[5], event, seat_type, 2).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("no 2 seats side by side"), "{problem}");
    let (status, last) = best(&api, &buyers[5], event, seat_type, 1).await;
    assert_eq!((status, last["seats"].clone()), (StatusCode::CREATED, json!(["A3"])));

    // Bought seats show as sold, a released hold's seats as free again.
    let (_, order) = api.post("/orders", Some(&buyers[0]), json!({"hold_id": ann["id"], "gateway": "test"})).await;
    assert_eq!(order["status"], "paid");
    let (status, _) =
        api.call(Method::DELETE, &format!("/holds/{}", bob["id"].as_str().unwrap()), Some(&buyers[1]), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let seats = seat_status(&api, event).await;
    assert_eq!(with_status(&seats, "sold"), ["A1", "A2"]);
    assert_eq!(with_status(&seats, "free"), ["B1", "B2", "B3"]);
    assert_eq!(with_status(&seats, "held").len(), 7);
    let (status, again) = best(&api, &buyers[1], event, seat_type, 3).await;
    assert_eq!((status, again["seats"].clone()), (StatusCode::CREATED, json!(["B1", "B2", "B3"])));
    let (status, _) = api.get("/events/999999/seats", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn racing_buyers_never_share_a_seat(store: Store) {
    let api = Api::start(store).await;
    let (_, organizer) = api.user("house@example.com", Role::Organizer).await;
    let map = json!({"sections": [{"name": "Floor", "rows": [row("A", 6, 0.0), row("B", 6, 1.0), row("C", 6, 2.0)]}]});
    let (event, seat_type) = seated_event(&api, &organizer, map.clone(), labels(&map)).await;
    let mut buyers = Vec::new();
    for n in 0..9 {
        buyers.push(api.user(&format!("r{n}@example.com"), Role::Customer).await.1);
    }
    // Nine pairs for eighteen seats, all at once: every buyer gets a pair in one row.
    let api = std::sync::Arc::new(api);
    let mut tasks = Vec::new();
    for token in buyers {
        let api = std::sync::Arc::clone(&api);
        tasks.push(tokio::spawn(async move { best(&api, &token, event, seat_type, 2).await }));
    }
    let mut taken = HashSet::new();
    for task in tasks {
        let (status, hold) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        let pair: Vec<String> = serde_json::from_value(hold["seats"].clone()).unwrap();
        assert_eq!(pair[0][..1], pair[1][..1], "one row: {pair:?}");
        assert!(pair.iter().all(|s| taken.insert(s.clone())), "a seat sold twice: {pair:?}");
    }
    assert_eq!(taken.len(), 18);
    assert!(with_status(&seat_status(&api, event).await, "free").is_empty());
}
