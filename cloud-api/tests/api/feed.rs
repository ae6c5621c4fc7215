//! Venue hubs: device tokens, signed manifests (snapshot, delta, not modified)
//! and idempotent scan uploads.

use cloud_api::accounts::auth::Role;
use cloud_api::common::clock;
use reqwest::{Method, StatusCode};
use schema::manifest::Manifest;
use serde_json::json;

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(
    a_hub_reads_its_venues_manifest,
    scans_upload_once_however_often_they_are_sent,
    a_revoked_device_is_refused
);

async fn device(api: &Api, organizer: &str, venue: i64) -> (i64, String) {
    let (status, device) =
        api.post(&format!("/admin/venues/{venue}/devices"), Some(organizer), json!({"name": "Main hall hub"})).await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    (device["device_id"].as_i64().unwrap(), device["token"].as_str().unwrap().to_owned())
}

async fn fetch(api: &Api, token: &str, venue: i64, since: Option<i64>) -> (StatusCode, Option<i64>, Vec<u8>) {
    let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
    let resp =
        api.http.get(format!("{}/venues/{venue}/manifest{query}", api.base)).bearer_auth(token).send().await.unwrap();
    let status = resp.status();
    let version = resp.headers().get("x-manifest-version").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    (status, version, resp.bytes().await.unwrap().to_vec())
}

async fn a_hub_reads_its_venues_manifest(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, event, type_id) = api.on_sale(10, 1, None).await;
    let (_, customer) = api.user("gus@example.com", Role::Customer).await;
    let (_, hold) = api
        .post(
            &format!("/events/{event}/reserve-tickets"),
            Some(&customer),
            json!({"ticket_type_id": type_id, "quantity": 3}),
        )
        .await;
    api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    let (_, hub) = device(&api, &organizer, venue).await;

    let (status, version, bytes) = fetch(&api, &hub, venue, None).await;
    assert_eq!(status, StatusCode::OK);
    let manifest = Manifest::open(&bytes, &api.keyring, clock::now() as u64).expect("signed by the issuer");
    assert!(manifest.is_snapshot());
    assert_eq!(Some(manifest.version as i64), version);
    assert_eq!(manifest.venue_id, venue as u64);
    assert_eq!(manifest.tickets.len(), 3);
    assert_eq!(manifest.lists.len(), 1);
    assert_eq!(manifest.ticket_types[0].id as i64, type_id);
    let (_, tickets) = api.get("/users/me/tickets", Some(&customer)).await;
    let code = tickets[0]["barcode"].as_str().unwrap();
    let parsed = schema::barcode::parse(code).unwrap();
    let record = manifest.tickets.iter().find(|t| t.ticket_id == tickets[0]["id"].as_u64().unwrap()).unwrap();
    let name = schema::holder::open(&parsed.signature, record.ticket_id, record.sealed_holder.as_deref().unwrap());
    assert_eq!(name.as_deref(), Some("Name of gus@example.com"), "the holder's name opens with the barcode");

    let (status, _, bytes) = fetch(&api, &hub, venue, version).await;
    assert_eq!((status, bytes.len()), (StatusCode::NOT_MODIFIED, 0));
    let (status, _, _) = fetch(&api, &hub, venue + 1000, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a hub reads only its own venue");
    let (status, _) = api.get(&format!("/venues/{venue}/manifest?since=x"), Some(&hub)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn scan(id: &str, ticket: i64, decision: &str) -> serde_json::Value {
    json!({"scan_id": id, "gate_id": "north-1", "ticket_id": ticket, "event_id": 1, "list_id": 1,
           "direction": "entry", "decision": decision, "reason": null, "offline": true, "annulled": false,
           "hlc": 18446744073709551615u64, "wall_ms": clock::now() * 1000})
}

async fn scans_upload_once_however_often_they_are_sent(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, event, type_id) = api.on_sale(10, 1, None).await;
    let (_, customer) = api.user("hal@example.com", Role::Customer).await;
    let (_, hold) = api
        .post(
            &format!("/events/{event}/reserve-tickets"),
            Some(&customer),
            json!({"ticket_type_id": type_id, "quantity": 1}),
        )
        .await;
    let (_, order) = api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    let ticket = order["ticket_ids"][0].as_i64().unwrap();
    let (_, hub) = device(&api, &organizer, venue).await;
    let upload = json!({
        "scans": [scan("north-1:1", ticket, "accept"), scan("north-1:2", ticket, "reject")],
        "conflicts": [{"ticket_id": ticket, "list_id": 1, "first_scan": "north-1:1", "first_gate": "north-1", "first_hlc": 5,
                       "second_scan": "south-1:9", "second_gate": "south-1", "second_hlc": 6, "detected_ms": 1}]
    });
    let path = format!("/venues/{venue}/scans");
    let (status, receipt) = api.post(&path, Some(&hub), upload.clone()).await;
    assert_eq!((status, receipt), (StatusCode::OK, json!({"stored": 3, "duplicates": 0})));
    let (status, receipt) = api.post(&path, Some(&hub), upload).await;
    assert_eq!((status, receipt), (StatusCode::OK, json!({"stored": 0, "duplicates": 3})));
    let (_, t) = api.get(&format!("/tickets/{ticket}"), Some(&customer)).await;
    assert!(t["scanned_at"].as_i64().is_some(), "the accepted entry marks the ticket scanned");

    let bad = json!({"scans": [scan("north-1:3", ticket, "maybe")]});
    let (status, problem) = api.post(&path, Some(&hub), bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("scans[0]"));
    let too_many: Vec<_> = (0..2001).map(|i| scan(&format!("g:{i}"), ticket, "accept")).collect();
    let (status, _) = api.post(&path, Some(&hub), json!({"scans": too_many})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, receipt) = api.post(&path, Some(&hub), json!({"scans": [scan("north-1:3", ticket, "accept")]})).await;
    assert_eq!((status, receipt["stored"].as_i64()), (StatusCode::OK, Some(1)), "the refused uploads stored nothing");
}

async fn a_revoked_device_is_refused(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, _, _) = api.on_sale(10, 1, None).await;
    let (id, hub) = device(&api, &organizer, venue).await;
    assert_eq!(fetch(&api, &hub, venue, None).await.0, StatusCode::OK);
    let (status, _) =
        api.call(Method::DELETE, &format!("/admin/venues/{venue}/devices/{id}"), Some(&organizer), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(fetch(&api, &hub, venue, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = api.post(&format!("/venues/{venue}/scans"), Some(&hub), json!({"scans": []})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
