//! Malformed input gets a clear problem document and changes nothing.

use cloud_api::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(bad_bodies_are_refused_with_problem_documents);

async fn bad_bodies_are_refused_with_problem_documents(store: Store) {
    let api = Api::start(store).await;
    let (organizer, _, event, type_id) = api.on_sale(10, 1, None).await;
    let (_, customer) = api.user("ned@example.com", Role::Customer).await;
    let reserve = format!("/events/{event}/reserve-tickets");
    let raw = |path: &str, body: &'static str, ctype: &'static str| {
        api.http.post(format!("{}{path}", api.base)).bearer_auth(&customer).header("content-type", ctype).body(body)
    };
    for (body, ctype, expect) in [
        ("{not json", "application/json", "body"),
        ("{\"ticket_type_id\": 1, \"quantity\": 1, \"extra\": true}", "application/json", "extra"),
        ("{\"ticket_type_id\": \"one\"}", "application/json", "body"),
        ("{\"ticket_type_id\": 1}", "text/plain", "Content-Type"),
    ] {
        let resp = raw(&reserve, body, ctype).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let problem: serde_json::Value = resp.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains(expect), "{body}: {problem}");
        assert_eq!(problem["status"], 400);
    }
    for quantity in [0, -1, 11] {
        let (status, _) =
            api.post(&reserve, Some(&customer), json!({"ticket_type_id": type_id, "quantity": quantity})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "quantity {quantity}");
    }
    let (status, _) = api.post(&reserve, Some(&customer), json!({"ticket_type_id": type_id + 99, "quantity": 1})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.get("/events/not-a-number", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get("/events?per_page=1000", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get("/no/such/route", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let bad_event =
        json!({"venue_id": 1, "title": "X", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"});
    let (status, problem) = api.post("/admin/events", Some(&organizer), bad_event).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let bad_type = json!({"name": "VIP", "price_minor": 100, "currency": "euro", "total": 5});
    let (status, problem) = api.post(&format!("/admin/events/{event}/ticket-types"), Some(&organizer), bad_type).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("currency"));
    api.expect_available(event, type_id, 10).await;
    let (_, detail) = api.get(&format!("/events/{event}"), None).await;
    assert_eq!(detail["ticket_types"].as_array().map(Vec::len), Some(1), "no ticket type was added");
}
