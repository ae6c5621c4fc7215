//! The read side: listings come from the projection, carry ETags, answer 304
//! to a client that has them, and follow sales within a projector pass.

use cloud_api::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(listings_carry_etags_and_follow_sales);

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
