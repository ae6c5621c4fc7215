//! SIGKILL `cloud-api serve` while customers are buying: after the restart,
//! every order it acknowledged is there, paid, with its ticket; nothing is
//! oversold.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tixgate_tests::run;

use crate::cloud_sale::{Client, start};
use tixgate_tests::cloud_server::serve;

const TICKETS: i64 = 150;
const BUYERS: usize = 12;

#[test]
fn no_acknowledged_order_is_lost_when_the_cloud_api_is_killed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert_eq!(run("cloud-api", &["keys", "generate", "--dir", "keys"], dir).code, 0);
    let (mut server, base) = start(dir);
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let api = Arc::new(Client { base, http: reqwest::Client::new() });
    let (event_id, type_id, buyers) = runtime.block_on(async {
        let organizer = api.login("org@example.com").await;
        let venue = api.post("/venues", Some(&organizer), json!({"name": "Hall", "address": "1 Main St", "capacity": 900})).await;
        let event = api
            .post(
                "/admin/events",
                Some(&organizer),
                json!({"venue_id": venue["id"], "title": "Crash test", "starts_at": "2031-05-01T19:00:00Z",
                       "ends_at": "2031-05-01T23:00:00Z",
                       "ticket_types": [{"name": "Standing", "price_minor": 3000, "currency": "EUR", "total": TICKETS, "shards": 4}]}),
            )
            .await;
        let event_id = event["id"].as_i64().unwrap();
        api.post(&format!("/admin/events/{event_id}/publish"), Some(&organizer), json!({})).await;
        let mut buyers = Vec::new();
        for i in 0..BUYERS {
            let email = format!("buyer{i}@example.com");
            api.post("/auth/register", None, json!({"email": email, "password": "correct horse battery", "name": "B"})).await;
            buyers.push(api.login(&email).await);
        }
        (event_id, event["ticket_types"][0]["id"].as_i64().unwrap(), buyers)
    });

    // Buyers hold and pay as fast as they can; every 201 is written down.
    let acknowledged: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    for token in &buyers {
        let (api, token, acknowledged) = (Arc::clone(&api), token.clone(), Arc::clone(&acknowledged));
        runtime.spawn(async move {
            loop {
                let reserve = format!("/events/{event_id}/reserve-tickets");
                let Ok((201, hold)) =
                    try_post(&api, &reserve, &token, json!({"ticket_type_id": type_id, "quantity": 1})).await
                else {
                    continue;
                };
                if let Ok((201, order)) =
                    try_post(&api, "/orders", &token, json!({"hold_id": hold["id"], "gateway": "test"})).await
                {
                    acknowledged.lock().unwrap().push((token.clone(), order["id"].as_i64().unwrap()));
                }
            }
        });
    }
    // Kill it mid-sale, once some orders are through.
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 20 {
        assert!(std::time::Instant::now() < end, "no sales happened");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    runtime.shutdown_background();

    let _server = serve(dir, port);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for (token, order_id) in &acknowledged {
            let order = api.get(&format!("/orders/{order_id}"), token).await;
            assert_eq!(order["status"], "paid", "acknowledged order {order_id} after the restart: {order}");
            assert_eq!(order["ticket_ids"].as_array().map(Vec::len), Some(1), "{order}");
        }
        // The listing catches up with what was committed before the kill (outbox → projection).
        let organizer = api.login("org@example.com").await;
        let sold = acknowledged.len() as i64;
        let end = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let detail = api.get(&format!("/events/{event_id}"), &organizer).await;
            let available = detail["ticket_types"][0]["available"].as_i64().unwrap();
            if available <= TICKETS - sold {
                break;
            }
            assert!(std::time::Instant::now() < end, "{available} shown available after {sold} sold of {TICKETS}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

async fn try_post(
    api: &Client,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> Result<(u16, serde_json::Value), ()> {
    let resp =
        api.http.post(format!("{}{path}", api.base)).bearer_auth(token).json(&body).send().await.map_err(drop)?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.map_err(drop)?))
}
