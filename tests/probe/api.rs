//! The cloud API probed through its own `/openapi.json`, on both stores.

use std::process::Command;

use cloud_api::accounts::auth::{Role, Tokens};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tixgate_tests::cloud_server::{Server, serve};
use tixgate_tests::venue_fixture::free_port;
use tixgate_tests::{binary, run};

use crate::openapi::{self, Operation};

/// The password every probe account has.
const PASSWORD: &str = "probe password, long enough";
/// A value far past any field's limit, yet inside the body limit.
const OVERSIZED: usize = 256 * 1024;

/// The running cloud with a venue, an event on sale, an order and the tokens
/// of each kind of caller.
struct Cloud {
    _server: Server,
    dir: tempfile::TempDir,
    base: String,
    http: reqwest::Client,
    store: String,
    secret: Vec<u8>,
    admin_id: i64,
    tokens: Callers,
    ids: Ids,
}

/// A signed-in caller of each role, and the venue's hub.
struct Callers {
    admin: String,
    customer: String,
    hub: String,
}

/// Objects the path parameters name.
struct Ids {
    user: i64,
    venue: i64,
    event: i64,
    order: i64,
    ticket: i64,
    hold: String,
}

async fn fresh_postgres_schema() -> String {
    let url =
        std::env::var("TIXGATE_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("PostgreSQL is up");
    tokio::spawn(connection);
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let schema = format!("probe_{}", data_encoding::HEXLOWER.encode(&bytes));
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    format!("{url}?options=-csearch_path%3D{schema}")
}

impl Cloud {
    async fn start(postgres: bool) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        assert_eq!(run("cloud-api", &["keys", "generate", "--dir", "keys"], path).code, 0);
        let store = if postgres { fresh_postgres_schema().await } else { "cloud.db".to_owned() };
        let port = free_port();
        std::fs::write(
            path.join("cloud.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\nstore = \"{store}\"\nkeys = \"keys\"\ntoken_secret_file = \"token-secret\"\n\
                 [payments]\ntest_gateway = true\n[rate_limit]\nper_minute = 0\n[fraud]\nenabled = false\n"
            ),
        )
        .unwrap();
        for (email, role) in
            [("admin@probe.test", "admin"), ("org@probe.test", "organizer"), ("fan@probe.test", "customer")]
        {
            let added = Command::new(binary("cloud-api"))
                .args(["add-user", "--config", "cloud.toml", "--email", email, "--name", "Probe", "--role", role])
                .env("TIXGATE_PASSWORD", PASSWORD)
                .current_dir(path)
                .output()
                .unwrap();
            assert!(added.status.success(), "{added:?}");
        }
        let server = serve(path, port);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let secret = std::fs::read_to_string(path.join("token-secret")).unwrap();
        let secret = data_encoding::HEXLOWER.decode(secret.trim().as_bytes()).unwrap();
        let login = |email: &'static str| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let resp = http.post(format!("{base}/auth/login")).json(&json!({"email": email, "password": PASSWORD}));
                let body: Value = resp.send().await.unwrap().json().await.unwrap();
                body["access_token"].as_str().unwrap().to_owned()
            }
        };
        let (admin, organizer, customer) =
            (login("admin@probe.test").await, login("org@probe.test").await, login("fan@probe.test").await);
        let call = |method: Method, path: String, token: String, body: Value| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let resp =
                    http.request(method, format!("{base}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                assert!(status.is_success(), "set-up {path}: {status} {body}");
                body
            }
        };
        let me = call(Method::GET, "/users/me".into(), customer.clone(), Value::Null).await;
        let admin_me = call(Method::GET, "/users/me".into(), admin.clone(), Value::Null).await;
        let venue = call(
            Method::POST,
            "/venues".into(),
            organizer.clone(),
            json!({"name": "Probe hall", "address": "1 Probe St", "capacity": 100}),
        )
        .await;
        let venue = venue["id"].as_i64().unwrap();
        let starts = time::OffsetDateTime::now_utc() + time::Duration::days(2);
        let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
        let event = call(
            Method::POST,
            "/admin/events".into(),
            organizer.clone(),
            json!({"venue_id": venue, "title": "Probe night", "starts_at": rfc3339(starts), "ends_at": rfc3339(starts + time::Duration::hours(3)),
                   "ticket_types": [{"name": "Standing", "price_minor": 1000, "currency": "EUR", "total": 50}]}),
        )
        .await;
        let event_id = event["id"].as_i64().unwrap();
        let type_id = event["ticket_types"][0]["id"].as_i64().unwrap();
        call(Method::POST, format!("/admin/events/{event_id}/publish"), organizer.clone(), json!({})).await;
        let reserve = json!({"ticket_type_id": type_id, "quantity": 1});
        let hold =
            call(Method::POST, format!("/events/{event_id}/reserve-tickets"), customer.clone(), reserve.clone()).await;
        let order =
            call(Method::POST, "/orders".into(), customer.clone(), json!({"hold_id": hold["id"], "gateway": "test"}))
                .await;
        // A hold left open, for the hold routes.
        let open_hold =
            call(Method::POST, format!("/events/{event_id}/reserve-tickets"), customer.clone(), reserve).await;
        let device = call(
            Method::POST,
            format!("/admin/venues/{venue}/devices"),
            organizer.clone(),
            json!({"name": "probe hub"}),
        )
        .await;
        Self {
            _server: server,
            dir,
            base,
            http,
            store,
            secret,
            admin_id: admin_me["id"].as_i64().unwrap(),
            tokens: Callers { admin, customer, hub: device["token"].as_str().unwrap().to_owned() },
            ids: Ids {
                user: me["id"].as_i64().unwrap(),
                venue,
                event: event_id,
                order: order["id"].as_i64().unwrap(),
                ticket: order["ticket_ids"][0].as_i64().unwrap(),
                hold: open_hold["id"].as_str().map_or_else(|| open_hold["id"].to_string(), str::to_owned),
            },
        }
    }

    /// `template` with each path parameter naming an object of its kind.
    fn path(&self, template: &str) -> String {
        let kind = template.trim_start_matches("/admin").split('/').nth(1).unwrap_or_default();
        let id = match kind {
            "users" => self.ids.user.to_string(),
            "venues" => self.ids.venue.to_string(),
            "events" => self.ids.event.to_string(),
            "orders" => self.ids.order.to_string(),
            "tickets" => self.ids.ticket.to_string(),
            "holds" => self.ids.hold.clone(),
            _ => "1".to_owned(),
        };
        template
            .replace("{id}", &id)
            .replace("{provider}", "probe")
            .replace("{token}", "probe")
            .replace("{channel}", "email")
            .replace("{device}", "1")
            .replace("{gate_id}", "probe-1")
    }

    async fn send(
        &self,
        op: &Operation,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, String, Value) {
        let mut request = self.http.request(op.method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let resp = request.send().await.unwrap_or_else(|e| panic!("{} {path}: {e}", op.method));
        let status = resp.status();
        let kind = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = resp.text().await.unwrap_or_default();
        (status, kind, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Rows of what a visitor must not be able to change.
    async fn counts(&self) -> Vec<i64> {
        const TABLES: [&str; 9] =
            ["users", "venues", "events", "ticket_types", "orders", "tickets", "promo_codes", "media", "venue_gates"];
        let mut counts = Vec::new();
        if self.store.starts_with("postgres") {
            let (client, connection) = tokio_postgres::connect(&self.store, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            for table in TABLES {
                counts.push(client.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]).await.unwrap().get(0));
            }
        } else {
            let db = rusqlite::Connection::open(self.dir.path().join(&self.store)).unwrap();
            for table in TABLES {
                counts.push(db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap());
            }
        }
        counts
    }
}

/// A token signed with no algorithm at all.
fn alg_none(sub: i64) -> String {
    let part = |v: Value| data_encoding::BASE64URL_NOPAD.encode(v.to_string().as_bytes());
    let exp = cloud_api::common::clock::now() + 3600;
    format!(
        "{}.{}.",
        part(json!({"alg": "none", "typ": "JWT"})),
        part(json!({"sub": sub.to_string(), "role": "admin", "exp": exp, "sid": 1}))
    )
}

/// Which roles a secured operation must refuse, by the API's role model:
/// customers run nothing under `/admin` and feed no venue; a hub only reads
/// its manifest, sends its scans and reports its gates.
fn refused_roles(op: &Operation) -> Vec<&'static str> {
    let feed = op.template.ends_with("/manifest")
        || op.template.ends_with("/scans")
        || (op.template == "/venues/{id}/gates" && op.method == Method::PUT);
    let mut roles = Vec::new();
    if op.template.starts_with("/admin/") || feed || (op.template == "/venues" && op.method == Method::POST) {
        roles.push("customer");
    }
    if !feed {
        roles.push("hub");
    }
    roles
}

async fn probe(postgres: bool) {
    let cloud = Cloud::start(postgres).await;
    let doc: Value = cloud.http.get(format!("{}/openapi.json", cloud.base)).send().await.unwrap().json().await.unwrap();
    let operations = openapi::operations(&doc);
    assert!(operations.len() > 40, "the document lists every operation: {}", operations.len());
    let before = cloud.counts().await;
    let now = cloud_api::common::clock::now();
    let ours = Tokens::new(&cloud.secret, 3600);
    let forged = Tokens::new(&[9; 32], 3600).issue_for_session(cloud.admin_id, Role::Admin, 1, now, 3600).unwrap();
    let expired = ours.issue_for_session(cloud.admin_id, Role::Admin, 1, now - 7200, 3600).unwrap();
    let sessionless = ours.issue(cloud.admin_id, Role::Admin, None, now, 3600).unwrap();
    let bad_tokens = [
        ("forged", forged),
        ("expired", expired),
        ("alg=none", alg_none(cloud.admin_id)),
        ("without a session", sessionless),
        ("garbage", "not.a.token".to_owned()),
    ];
    let mut failures = Vec::new();
    let (mut probes, mut unread) = (0usize, 0usize);
    let mut check = |what: String, status: StatusCode, kind: &str, ok: bool| {
        probes += 1;
        let problem = kind.starts_with("application/problem+json");
        if !ok || status.is_server_error() || (status.is_client_error() && !problem) {
            failures.push(format!("{what}: {status} {kind}"));
        }
    };

    for op in &operations {
        let path = cloud.path(&op.template);
        let name = format!("{} {}", op.method, op.template);
        if op.secured {
            let (status, kind, _) = cloud.send(op, &path, None, op.body.as_ref()).await;
            check(format!("{name} without a token"), status, &kind, status == StatusCode::UNAUTHORIZED);
            for (label, token) in &bad_tokens {
                let (status, kind, _) = cloud.send(op, &path, Some(token), op.body.as_ref()).await;
                check(format!("{name} with a {label} token"), status, &kind, status == StatusCode::UNAUTHORIZED);
            }
            for role in refused_roles(op) {
                let token = if role == "hub" { &cloud.tokens.hub } else { &cloud.tokens.customer };
                let (status, kind, _) = cloud.send(op, &path, Some(token), op.body.as_ref()).await;
                let refused = status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND;
                check(format!("{name} as {role}"), status, &kind, refused);
            }
        }
        // Text from outside: in the path, the query and the body, for a caller
        // allowed to make the call.
        let token = op.secured.then_some(if refused_roles(op).contains(&"hub") {
            cloud.tokens.admin.as_str()
        } else {
            cloud.tokens.hub.as_str()
        });
        if op.template.contains('{') {
            let bad = op
                .template
                .replace("{id}", "1%00")
                .replace("{provider}", "p%01")
                .replace("{token}", "t%00")
                .replace("{channel}", "email%0A")
                .replace("{device}", "1%00")
                .replace("{gate_id}", "g%00");
            let (status, kind, _) = cloud.send(op, &bad, token, op.body.as_ref()).await;
            check(
                format!("{name} with a control character in the path"),
                status,
                &kind,
                status == StatusCode::BAD_REQUEST,
            );
        }
        for parameter in &op.query {
            let bad = format!("{path}?{parameter}=a%00b");
            let (status, kind, _) = cloud.send(op, &bad, token, op.body.as_ref()).await;
            check(format!("{name} with ?{parameter}=a%00b"), status, &kind, status == StatusCode::BAD_REQUEST);
            let long = format!("{path}?{parameter}={}", "a".repeat(16 * 1024));
            let (status, kind, _) = cloud.send(op, &long, token, op.body.as_ref()).await;
            check(format!("{name} with a 16 KiB ?{parameter}"), status, &kind, true);
        }
        let Some(body) = &op.body else { continue };
        for pointer in openapi::string_pointers(body) {
            for (label, text) in
                [("a NUL byte", "pro\u{0}be".to_owned()), ("an escape sequence", "pro\u{1b}[2Jbe".to_owned())]
            {
                let (status, kind, _) =
                    cloud.send(op, &path, token, Some(&openapi::with_string(body, &pointer, &text))).await;
                // Refused for the text, or before the body is read at all (an
                // unknown provider, a wallet link or a webhook signature).
                let before_body = [StatusCode::UNAUTHORIZED, StatusCode::NOT_FOUND].contains(&status);
                unread += usize::from(before_body);
                let refused = status == StatusCode::BAD_REQUEST || before_body;
                check(format!("{name} with {label} in {pointer}"), status, &kind, refused);
            }
            let big = openapi::with_string(body, &pointer, &"a".repeat(OVERSIZED));
            let (status, kind, _) = cloud.send(op, &path, token, Some(&big)).await;
            check(format!("{name} with 256 KiB in {pointer}"), status, &kind, status.is_client_error());
        }
    }
    assert!(failures.is_empty(), "{} of {probes} probes found an edge:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(cloud.counts().await, before, "a probe changed stored data");
    println!("{probes} probes of {} operations held ({unread} refused before the body was read)", operations.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_holds_against_a_visitor_on_sqlite() {
    probe(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_holds_against_a_visitor_on_postgres() {
    probe(true).await;
}
