//! The organizer's case list: gate conflicts and repeated scans of revoked
//! codes from a venue's uploads open cases; the organizer resolves them, and
//! revoking a ticket reaches the next manifest.

use cloud_api::accounts::auth::Role;
use cloud_api::common::clock;
use reqwest::StatusCode;
use schema::entry::TicketStatus;
use serde_json::{Value, json};

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(conflicts_and_revoked_codes_open_cases_the_organizer_resolves);

fn scan(id: &str, ticket: i64, event: i64, reason: Option<&str>) -> Value {
    let decision = if reason.is_some() { "reject" } else { "accept" };
    json!({"scan_id": id, "gate_id": "north-1", "ticket_id": ticket, "event_id": event, "list_id": 1,
           "direction": "entry", "decision": decision, "reason": reason, "offline": false, "annulled": false,
           "hlc": 1, "wall_ms": clock::now() * 1000})
}

async fn cases(api: &Api, organizer: &str, event: i64) -> Vec<Value> {
    let (status, list) = api.get(&format!("/admin/events/{event}/cases"), Some(organizer)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

fn case_of<'a>(list: &'a [Value], kind: &str) -> &'a Value {
    list.iter().find(|c| c["kind"] == kind).unwrap_or_else(|| panic!("no {kind} case in {list:?}"))
}

async fn conflicts_and_revoked_codes_open_cases_the_organizer_resolves(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, event, standing) = api.on_sale(10, 1, None).await;
    let (_, customer) = api.user("cy@example.com", Role::Customer).await;
    let hold = api.hold(&customer, event, standing, 1).await;
    let (_, kept) = api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    let hold = api.hold(&customer, event, standing, 1).await;
    let (_, refunded) = api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    let (status, _) = api.post(&format!("/orders/{}/refund", refunded["id"]), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (twice, revoked) = (kept["ticket_ids"][0].as_i64().unwrap(), refunded["ticket_ids"][0].as_i64().unwrap());
    let hub = api.hub_token(&organizer, venue).await;
    let (_, before) = api.manifest(&hub, venue, None).await;

    let upload = json!({
        "scans": [scan("n:1", revoked, event, Some("revoked")), scan("n:2", revoked, event, Some("revoked"))],
        "conflicts": [{"ticket_id": twice, "list_id": 1, "first_scan": "n:0", "first_gate": "north-1", "first_hlc": 5,
                       "second_scan": "s:0", "second_gate": "south-1", "second_hlc": 6, "detected_ms": 1}]
    });
    let path = format!("/venues/{venue}/scans");
    let (status, _) = api.post(&path, Some(&hub), upload.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api.post(&path, Some(&hub), upload).await;
    assert_eq!(status, StatusCode::OK, "a repeated upload adds no evidence");
    let list = cases(&api, &organizer, event).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let conflict = case_of(&list, "gate_conflict");
    assert_eq!((conflict["ticket_id"].as_i64(), conflict["occurrences"].as_i64()), (Some(twice), Some(1)));
    assert!(conflict["detail"].as_str().unwrap().contains("north-1 and again at south-1"), "{conflict}");
    let shown = case_of(&list, "revoked_code_scans");
    assert_eq!((shown["ticket_id"].as_i64(), shown["status"].as_str()), (Some(revoked), Some("open")));
    assert!(shown["detail"].as_str().unwrap().contains("2 times"), "{shown}");

    // Refused: a customer, revoking on a dismissal, resolving twice.
    let resolve = |id: &Value| format!("/admin/cases/{id}/resolve");
    let (status, _) = api.get(&format!("/admin/events/{event}/cases"), Some(&customer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .post(&resolve(&conflict["id"]), Some(&organizer), json!({"outcome": "dismissed", "revoke_ticket": true}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, confirmed) = api
        .post(
            &resolve(&conflict["id"]),
            Some(&organizer),
            json!({"outcome": "confirmed", "note": "ticket passed back over the fence", "revoke_ticket": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["status"], "confirmed");
    let (status, _) = api.post(&resolve(&conflict["id"]), Some(&organizer), json!({"outcome": "dismissed"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The revoked ticket reaches the gates with the next manifest.
    let (_, delta) = api.manifest(&hub, venue, Some(before.version)).await;
    let record = delta.tickets.iter().find(|t| t.ticket_id == twice as u64).expect("in the delta");
    assert_eq!(record.status, TicketStatus::Revoked);

    // A dismissed case opens again when the code is shown once more.
    let (status, _) = api.post(&resolve(&shown["id"]), Some(&organizer), json!({"outcome": "dismissed"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        api.post(&path, Some(&hub), json!({"scans": [scan("n:3", revoked, event, Some("revoked"))]})).await;
    assert_eq!(status, StatusCode::OK);
    let list = cases(&api, &organizer, event).await;
    let shown = case_of(&list, "revoked_code_scans");
    assert_eq!((shown["status"].as_str(), shown["occurrences"].as_i64()), (Some("open"), Some(2)));
    assert!(shown["detail"].as_str().unwrap().contains("3 times"), "{shown}");
    assert_eq!(list[0]["id"], shown["id"], "open cases come first");
}
