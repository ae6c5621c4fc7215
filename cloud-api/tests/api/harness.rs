//! A real cloud-api on loopback over a real store (a SQLite file in a temp
//! folder, or a fresh schema in the PostgreSQL at 127.0.0.1:5432), and a fake
//! Stripe beside it that records what it was asked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use cloud_api::accounts::auth::Role;
use cloud_api::config::Config;
use cloud_api::web::AppState;
use cloud_api::{accounts::users, common::clock, common::keystore};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Where the API under test keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// The PostgreSQL the suite needs; the suite fails (never skips) if it is down.
pub fn postgres_url() -> String {
    std::env::var("TIXGATE_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema for one test, so tests run in parallel on one database.
async fn fresh_postgres_schema() -> String {
    let url = postgres_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is required by this suite: {e}"));
    tokio::spawn(conn);
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("random");
    let now = cloud_api::common::clock::now();
    let schema = format!("t_{now}_{}", data_encoding::HEXLOWER.encode(&bytes));
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
    // Schemas of runs more than an hour old are dropped, so the database does not fill up.
    let old = client
        .query("SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9]+_[0-9a-f]+$'", &[])
        .await
        .expect("list schemas");
    for row in old {
        let name: String = row.get(0);
        let made: i64 = name.split('_').nth(1).and_then(|t| t.parse().ok()).unwrap_or(now);
        if made < now - 3600 {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
        }
    }
    format!("{url}?options=-csearch_path%3D{schema}")
}

/// One request the fake Stripe received.
#[derive(Debug, Clone)]
pub struct StripeCall {
    pub path: String,
    pub form: String,
    pub idempotency_key: String,
}

/// A stand-in for api.stripe.com.
#[derive(Clone, Default)]
pub struct FakeStripe {
    pub calls: Arc<Mutex<Vec<StripeCall>>>,
}

impl FakeStripe {
    async fn start(&self) -> SocketAddr {
        async fn record(
            State(s): State<FakeStripe>,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
            body: String,
        ) -> axum::Json<Value> {
            let mut calls = s.calls.lock().expect("lock");
            let n = calls.len() + 1;
            calls.push(StripeCall {
                path: uri.path().to_owned(),
                form: body,
                idempotency_key: headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
            });
            if uri.path() == "/v1/refunds" {
                axum::Json(json!({"id": format!("re_{n}"), "object": "refund", "status": "succeeded"}))
            } else {
                axum::Json(
                    json!({"id": format!("pi_{n}"), "object": "payment_intent", "status": "requires_payment_method", "client_secret": format!("pi_{n}_secret_abc")}),
                )
            }
        }
        let app = axum::Router::new()
            .route("/v1/payment_intents", post(record))
            .route("/v1/refunds", post(record))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    pub fn calls(&self) -> Vec<StripeCall> {
        self.calls.lock().expect("lock").clone()
    }
}

pub const WEBHOOK_SECRET: &str = "whsec_test_endpoint_secret";

/// A running API.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub keyring: schema::Keyring,
    pub stripe: FakeStripe,

    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

/// A second instance of the service, stopped when dropped.
pub struct Twin {
    pub base: String,
    shutdown: CancellationToken,
}

impl Drop for Twin {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn write_config(dir: &Path, store: &str, stripe: SocketAddr, extra: &str) -> Config {
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\nstore = \"{store}\"\nkeys = \"keys\"\ntoken_secret_file = \"token-secret\"\n\
         hold_minutes = 10\npay_minutes = 15\nlogin_minutes = 60\n[payments]\ntest_gateway = true\n\
         [payments.stripe]\nbase_url = \"http://{stripe}\"\nsecret_key = \"sk_test_123\"\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n"
    );
    text.push_str(extra);
    if !extra.contains("[rate_limit]") {
        // Every simulated customer comes from 127.0.0.1; the limiter has its own test.
        text.push_str("[rate_limit]\nper_minute = 0\n");
    }
    if !extra.contains("[fraud]") {
        // Tests buy again and again from one account; fraud scoring has its own tests.
        text.push_str("[fraud]\nenabled = false\n");
    }
    let path = dir.join("cloud.toml");
    std::fs::write(&path, text).expect("write config");
    Config::load(&path).expect("config")
}

impl Api {
    pub async fn start(store: Store) -> Self {
        Self::start_with(store, "").await
    }

    /// Starts with `extra` appended to the config (more sections).
    pub async fn start_with(store: Store, extra: &str) -> Self {
        let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn,cloud_api=warn").try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        keystore::generate(&dir.path().join("keys"), 0).expect("keys");
        let keyring = keystore::read_keyring(&dir.path().join("keys").join(keystore::KEYRING_FILE)).expect("keyring");
        let stripe = FakeStripe::default();
        let stripe_addr = stripe.start().await;
        let location = match store {
            Store::Sqlite => "cloud.db".to_owned(),
            Store::Postgres => fresh_postgres_schema().await,
        };
        let config = write_config(dir.path(), &location, stripe_addr, extra);
        let state = cloud_api::server::state(&config).await.expect("state");
        let shutdown = CancellationToken::new();
        let (ready, addr) = tokio::sync::oneshot::channel();
        let stop = shutdown.clone();
        tokio::spawn(async move { cloud_api::server::run(&config, stop, Some(ready)).await });
        let addr = addr.await.expect("server started");
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            state,
            keyring,
            stripe,

            shutdown,
            _dir: dir,
        }
    }

    /// A second server with the same config, keys and store: on PostgreSQL,
    /// two instances of the service behind one load balancer.
    pub async fn twin(&self) -> Twin {
        let config = Config::load(&self.state_dir().join("cloud.toml")).expect("config");
        let shutdown = CancellationToken::new();
        let (ready, addr) = tokio::sync::oneshot::channel();
        let stop = shutdown.clone();
        tokio::spawn(async move { cloud_api::server::run(&config, stop, Some(ready)).await });
        let addr = addr.await.expect("twin started");
        Twin { base: format!("http://{addr}"), shutdown }
    }

    /// The folder holding the config, keys and token secret.
    pub fn state_dir(&self) -> &Path {
        self._dir.path()
    }

    /// Sends a request; returns the status and the JSON body (Null if none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_with(method, path, token, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = resp.text().await.expect("body");
        if !status.is_success() && status != StatusCode::NOT_MODIFIED {
            assert_eq!(ctype, "application/problem+json", "{path}: error without a problem document: {text}");
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers and logs in a user with `role`; returns (id, token).
    pub async fn user(&self, email: &str, role: Role) -> (i64, String) {
        let (status, user) = self
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": "long enough password", "name": format!("Name of {email}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let id = user["id"].as_i64().expect("id");
        if role != Role::Customer {
            users::set_role(&self.state.db, id, role, cloud_api::common::clock::now()).await.expect("role");
        }
        let (status, login) =
            self.post("/auth/login", None, json!({"email": email, "password": "long enough password"})).await;
        assert_eq!(status, StatusCode::OK, "{login}");
        (id, login["access_token"].as_str().expect("token").to_owned())
    }

    /// An organizer with a venue and a published event of one ticket type; returns
    /// (organizer token, venue id, event id, ticket type id).
    pub async fn on_sale(&self, total: i64, shards: i64, seats: Option<Vec<String>>) -> (String, i64, i64, i64) {
        let (_, organizer) = self.user("organizer@example.com", Role::Organizer).await;
        let (status, venue) = self
            .post(
                "/venues",
                Some(&organizer),
                json!({"name": "Hall", "address": "1 Main St", "capacity": 5000, "latitude": 52.52, "longitude": 13.405}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{venue}");
        let venue_id = venue["id"].as_i64().expect("venue id");
        let starts = clock::now() + 30 * 24 * 3600;
        let mut ticket_type =
            json!({"name": "Standing", "price_minor": 2500, "currency": "EUR", "total": total, "shards": shards});
        if let Some(seats) = seats {
            ticket_type["seats"] = json!(seats);
        }
        let (status, event) = self
            .post(
                "/admin/events",
                Some(&organizer),
                json!({"venue_id": venue_id, "title": "Concert", "description": "Loud",
                       "starts_at": rfc3339(starts), "ends_at": rfc3339(starts + 4 * 3600),
                       "ticket_types": [ticket_type]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{event}");
        let event_id = event["id"].as_i64().expect("event id");
        let type_id = event["ticket_types"][0]["id"].as_i64().expect("type id");
        let (status, published) =
            self.post(&format!("/admin/events/{event_id}/publish"), Some(&organizer), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{published}");
        self.eventually(&format!("/events/{event_id}"), StatusCode::OK).await;
        (organizer, venue_id, event_id, type_id)
    }

    /// A customer's hold of `quantity` tickets of a type; the hold as created.
    pub async fn hold(&self, token: &str, event: i64, ticket_type: i64, quantity: i64) -> Value {
        let (status, hold) = self
            .post(
                &format!("/events/{event}/reserve-tickets"),
                Some(token),
                json!({"ticket_type_id": ticket_type, "quantity": quantity}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        hold
    }

    /// A venue hub's device token, made by the venue's organizer.
    pub async fn hub_token(&self, organizer: &str, venue: i64) -> String {
        let (status, device) =
            self.post(&format!("/admin/venues/{venue}/devices"), Some(organizer), json!({"name": "hub"})).await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        device["token"].as_str().expect("token").to_owned()
    }

    /// The venue's manifest as its hub reads it (`since` for a delta), checked
    /// against the issuer's keyring as gates check it.
    pub async fn manifest(
        &self,
        hub: &str,
        venue: i64,
        since: Option<u64>,
    ) -> (StatusCode, schema::manifest::Manifest) {
        let query = since.map(|v| format!("?since={v}")).unwrap_or_default();
        let resp = self
            .http
            .get(format!("{}/venues/{venue}/manifest{query}", self.base))
            .bearer_auth(hub)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        (status, schema::manifest::Manifest::open(&bytes, &self.keyring, clock::now() as u64).expect("signed manifest"))
    }

    /// Tickets of a type neither held nor sold, as the listing shows them now.
    pub async fn available(&self, event_id: i64, type_id: i64) -> Option<i64> {
        let (_, event) = self.get(&format!("/events/{event_id}"), None).await;
        event["ticket_types"]
            .as_array()
            .and_then(|types| types.iter().find(|t| t["id"].as_i64() == Some(type_id)))
            .and_then(|t| t["available"].as_i64())
    }

    /// Waits (up to 5 s: listings trail sales by one projector pass) until the
    /// listing shows `expected` tickets available.
    pub async fn expect_available(&self, event_id: i64, type_id: i64, expected: i64) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let now = self.available(event_id, type_id).await;
            if now == Some(expected) {
                return;
            }
            assert!(std::time::Instant::now() < end, "listing shows {now:?} available, expected {expected}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits until GET `path` answers `status` (the read side catching up).
    pub async fn eventually(&self, path: &str, status: StatusCode) -> Value {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let (now, body) = self.get(path, None).await;
            if now == status {
                return body;
            }
            assert!(std::time::Instant::now() < end, "{path}: {now}, expected {status}: {body}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// Runs each scenario once per store, as two tests.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Store::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::harness::Store::Postgres).await
            }
        }
    )*};
}
