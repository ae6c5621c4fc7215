//! Per-client rate limits on the public write endpoints: a burst, then 429
//! with `Retry-After`, per client address; other routes are not limited.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Api, Store};

async fn login_attempt(api: &Api, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = api
        .http
        .post(format!("{}/auth/login", api.base))
        .json(&json!({"email": "who@example.com", "password": "not the password"}));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gets_its_burst_then_429_and_others_are_not_affected() {
    let api = Api::start_with(Store::Sqlite, "[rate_limit]\nper_minute = 60\nburst = 5\n").await;
    for n in 0..5 {
        assert_eq!(login_attempt(&api, None).await.status(), StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    // A forged X-Forwarded-For is not trusted: the peer address counts.
    let refused = login_attempt(&api, Some("10.9.9.9")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "one request a second: {wait}");
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    let (status, _) = api.get("/events", None).await;
    assert_eq!(status, StatusCode::OK, "browsing is not limited");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(login_attempt(&api, None).await.status(), StatusCode::UNAUTHORIZED, "the quota refills");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_quota() {
    let config = "[rate_limit]\nper_minute = 60\nburst = 3\ntrust_forwarded_for = true\n";
    let api = Api::start_with(Store::Sqlite, config).await;
    for _ in 0..3 {
        // The proxy appends the address it saw; whatever the client wrote before it does not count.
        assert_eq!(login_attempt(&api, Some("1.2.3.4, 10.0.0.1")).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_attempt(&api, Some("5.6.7.8, 10.0.0.1")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_attempt(&api, Some("10.0.0.2")).await.status(), StatusCode::UNAUTHORIZED);
}
