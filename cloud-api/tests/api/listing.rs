//! The read side: listings come from the projection, carry ETags, answer 304
//! to a client that has them, and follow sales within a projector pass.

use cloud_api::accounts::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Api, Store, rfc3339};
use crate::on_both_stores;

on_both_stores!(listings_carry_etags_and_follow_sales, events_near_a_point_come_nearest_first);

async fn fetch(api: &Api, path: &str, etag: Option<&str>) -> (StatusCode, Option<String>) {
    let mut req = api.http.get(format!("{}{path}", api.base));
    if let Some(tag) = etag {
        req = req.header("if-none-match", tag);
    }
    let resp = req.send().await.unwrap();
    let tag = resp.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    (resp.status(), tag)
}

async fn listings_carry_etags_and_follow_sales(store: Store) {
    let api = Api::start(store).await;
    let (_, _, event_id, type_id) = api.on_sale(10, 1, None).await;
    let detail = format!("/events/{event_id}");
    for path in ["/events", detail.as_str()] {
        let (status, tag) = fetch(&api, path, None).await;
        assert_eq!(status, StatusCode::OK);
        let tag = tag.expect("an ETag");
        let (status, again) = fetch(&api, path, Some(&tag)).await;
        assert_eq!((status, again.as_deref()), (StatusCode::NOT_MODIFIED, Some(tag.as_str())), "{path}");
    }
    let (_, before) = fetch(&api, &detail, None).await;
    let (_, customer) = api.user("lee@example.com", Role::Customer).await;
    api.post(
        &format!("/events/{event_id}/reserve-tickets"),
        Some(&customer),
        json!({"ticket_type_id": type_id, "quantity": 3}),
    )
    .await;
    api.expect_available(event_id, type_id, 7).await;
    let (status, after) = fetch(&api, &detail, before.as_deref()).await;
    assert_eq!(status, StatusCode::OK, "the old ETag no longer matches");
    assert_ne!(after, before);
    // The projection is rebuilt from the outbox; nothing is left behind in it.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while api.state.db.query_one("SELECT COUNT(*) FROM outbox", &[]).await.unwrap().int(0).unwrap() > 0 {
        assert!(std::time::Instant::now() < end, "the outbox was not drained");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Venues in Berlin (the harness's), Potsdam (27 km), Hamburg (255 km) and one
/// without coordinates; `GET /events` near Berlin.
async fn events_near_a_point_come_nearest_first(store: Store) {
    let api = Api::start(store).await;
    let (organizer, _, berlin, _) = api.on_sale(10, 1, None).await;
    let mut events = vec![("Berlin", berlin)];
    for (name, place) in
        [("Hamburg", Some((53.551086, 9.993682))), ("Potsdam", Some((52.390569, 13.064473))), ("Nowhere", None)]
    {
        let mut venue = json!({"name": name, "address": "x", "capacity": 100});
        if let Some((lat, lon)) = place {
            venue["latitude"] = json!(lat);
            venue["longitude"] = json!(lon);
        }
        let (status, venue) = api.post("/venues", Some(&organizer), venue).await;
        assert_eq!(status, StatusCode::CREATED, "{venue}");
        let starts = cloud_api::common::clock::now() + 24 * 3600;
        let event = json!({"venue_id": venue["id"], "title": name, "starts_at": rfc3339(starts),
            "ends_at": rfc3339(starts + 3600), "ticket_types": [{"name": "In", "price_minor": 100, "currency": "EUR", "total": 5}]});
        let (status, event) = api.post("/admin/events", Some(&organizer), event).await;
        assert_eq!(status, StatusCode::CREATED, "{event}");
        let id = event["id"].as_i64().unwrap();
        api.post(&format!("/admin/events/{id}/publish"), Some(&organizer), json!({})).await;
        api.eventually(&format!("/events/{id}"), StatusCode::OK).await;
        events.push((name, id));
    }
    let titles = |page: &serde_json::Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|e| e["title"].as_str().unwrap().to_owned()).collect()
    };
    let near = |km: f64| format!("/events?lat=52.5200&lon=13.4050&within_km={km}");
    let (status, page) = api.get(&near(30.0), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!((titles(&page), page["total"].as_i64()), (vec!["Concert".to_owned(), "Potsdam".to_owned()], Some(2)));
    let (_, page) = api.get(&near(26.0), None).await;
    assert_eq!(titles(&page), ["Concert"], "Potsdam is 27 km away");
    let (_, page) = api.get("/events?lat=53.55&lon=10.0&within_km=300", None).await;
    assert_eq!(titles(&page), ["Hamburg", "Potsdam", "Concert"], "nearest first");
    let (_, page) = api.get("/events", None).await;
    assert_eq!(page["total"].as_i64(), Some(4), "without a point, every event");
    for bad in ["/events?lat=52&lon=13", "/events?lat=95&lon=13&within_km=5", "/events?lat=52&lon=13&within_km=0"] {
        let (status, problem) = api.get(bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
    }
    // Half a place is refused, and no venue is made of it.
    let venues_before = api.state.db.query_one("SELECT COUNT(*) FROM venues", &[]).await.unwrap().int(0).unwrap();
    for half in [json!({"latitude": 52.5}), json!({"longitude": 13.4})] {
        let mut venue = json!({"name": "Half", "address": "x", "capacity": 100});
        venue.as_object_mut().unwrap().extend(half.as_object().unwrap().clone());
        let (status, problem) = api.post("/venues", Some(&organizer), venue).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("both or neither"), "{problem}");
    }
    let venues_after = api.state.db.query_one("SELECT COUNT(*) FROM venues", &[]).await.unwrap().int(0).unwrap();
    assert_eq!(venues_after, venues_before);
}
