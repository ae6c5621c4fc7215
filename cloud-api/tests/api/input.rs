//! Malformed input gets a clear problem document and changes nothing.

use cloud_api::accounts::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(
    bad_bodies_are_refused_with_problem_documents,
    control_characters_are_refused_before_any_store_sees_them,
    the_framework_s_own_refusals_are_problem_documents
);

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

/// A NUL byte is text to SQLite and an error to PostgreSQL: on both it is
/// refused with a 400 before login, wherever it comes in, and nothing is stored.
async fn control_characters_are_refused_before_any_store_sees_them(store: Store) {
    let api = Api::start(store).await;
    let (organizer, _, event, _) = api.on_sale(10, 1, None).await;
    let users_before = api.state.db.query_one("SELECT COUNT(*) FROM users", &[]).await.unwrap().int(0).unwrap();
    let expect_400 = |what: String, resp: reqwest::Response| async move {
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json", "{what}");
        let problem: serde_json::Value = resp.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains("control character"), "{what}: {problem}");
    };
    for body in [
        json!({"email": "n\u{0}@example.com", "password": "long enough password", "name": "N"}),
        json!({"email": "n@example.com", "password": "long enough password", "name": "N\u{1b}[2J"}),
        json!({"email": "n@example.com", "password": "long\u{7f}enough password", "name": "N"}),
    ] {
        let resp = api.http.post(format!("{}/auth/register", api.base)).json(&body).send().await.unwrap();
        expect_400(format!("register {body}"), resp).await;
    }
    let resp = api
        .http
        .post(format!("{}/auth/login", api.base))
        .json(&json!({"email": "n\u{0}@example.com", "password": "long enough password"}))
        .send()
        .await
        .unwrap();
    expect_400("login".into(), resp).await;
    for path in ["/events?q=a%00b", "/events?q=ok&venue_id=1%01", "/media/a%00b", "/holds/%00", "/venues/1%0A"] {
        let resp = api.http.get(format!("{}{path}", api.base)).send().await.unwrap();
        expect_400(path.into(), resp).await;
    }
    let form = api
        .http
        .post(format!("{}/login", api.base))
        .header("sec-fetch-site", "same-origin")
        .form(&[("email", "n\u{0}@example.com"), ("password", "long enough password")])
        .send()
        .await
        .unwrap();
    expect_400("sign-in form".into(), form).await;
    // Deep in a document, in any field a person may name, for a signed-in organizer.
    let venue = json!({"name": "Hall\u{0}", "address": "x", "capacity": 10});
    let (status, problem) = api.post("/venues", Some(&organizer), venue).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem["detail"].as_str().unwrap().starts_with("body: name: control character U+0000"), "{problem}");
    let ticket_type = json!({"name": "VIP\u{8}", "price_minor": 100, "currency": "EUR", "total": 5});
    let (status, _) = api.post(&format!("/admin/events/{event}/ticket-types"), Some(&organizer), ticket_type).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Several lines where a field is text of several lines.
    let starts = cloud_api::common::clock::now() + 86_400;
    let rfc3339 = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let venue_id = api.state.db.query_one("SELECT id FROM venues LIMIT 1", &[]).await.unwrap().int(0).unwrap();
    let described = json!({"venue_id": venue_id, "title": "Two lines", "description": "Doors 19:00\n\tBand 20:00",
        "starts_at": rfc3339(starts), "ends_at": rfc3339(starts + 3600)});
    let (status, created) = api.post("/admin/events", Some(&organizer), described).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let users_after = api.state.db.query_one("SELECT COUNT(*) FROM users", &[]).await.unwrap().int(0).unwrap();
    assert_eq!(users_after, users_before, "no account was made of any of it");
}

/// Refusals the HTTP framework makes before a handler runs come as problem
/// documents too.
async fn the_framework_s_own_refusals_are_problem_documents(store: Store) {
    let api = Api::start(store).await;
    let big = vec![b'a'; 3 << 20];
    // Its own client: the server answers before reading all of it and closes the
    // connection, which a pooled client would try to use again.
    let resp = reqwest::Client::new()
        .post(format!("{}/payments/webhook", api.base))
        .header("content-type", "application/json")
        .header("stripe-signature", "t=1,v1=00")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(problem["status"], 413, "{problem}");
    let resp = api.http.delete(format!("{}/events", api.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    // Headers: a tab or a byte past ASCII reaches the service and is refused
    // with a problem document; other control bytes never get past the HTTP
    // parser, which answers 400 itself before any handler runs.
    let (_, _, event, type_id) = api.on_sale(10, 1, None).await;
    let (_, customer) = api.user("hal@example.com", Role::Customer).await;
    let reserve = format!("/events/{event}/reserve-tickets");
    for device in ["a\tb", "caf\u{e9}"] {
        let value = reqwest::header::HeaderValue::from_bytes(device.as_bytes()).unwrap();
        let resp = api
            .http
            .post(format!("{}{reserve}", api.base))
            .bearer_auth(&customer)
            .header("x-device-id", value)
            .json(&json!({"ticket_type_id": type_id, "quantity": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{device:?}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json", "{device:?}");
    }
    for header in ["X-Device-Id: a\x01b", "X-Request-Id: a\x7fb"] {
        let request = format!("GET /events HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n");
        let answer = raw_request(&api.base, &request).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{header:?}: {answer}");
    }
    api.expect_available(event, type_id, 10).await;
}

/// Sends `request` as it is and returns the whole answer.
async fn raw_request(base: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}
