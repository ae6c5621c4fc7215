//! The sale end to end with the real binaries: `cloud-api serve` sells two
//! tickets; `gate-agent verify` accepts each barcode, as text and as the QR
//! image the customer downloads; the venue's manifest, imported by
//! `gate-agent replica import`, admits one at the gate; after a refund, the
//! delta manifest makes the gate refuse the other as revoked.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use tixgate_tests::cloud_server::{Server, serve};
use tixgate_tests::{binary, run};

pub(crate) struct Client {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let (status, value) = self.call(reqwest::Method::POST, path, token, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {value}");
        value
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Value {
        let (status, value) = self.call(reqwest::Method::GET, path, Some(token), None).await;
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    async fn bytes(&self, path: &str, token: &str) -> Vec<u8> {
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "GET {path}");
        resp.bytes().await.unwrap().to_vec()
    }

    pub(crate) async fn login(&self, email: &str) -> String {
        let login = self.post("/auth/login", None, json!({"email": email, "password": "correct horse battery"})).await;
        login["access_token"].as_str().unwrap().to_owned()
    }
}

/// Writes `cloud.toml` for a free port, adds the organizer and starts the server.
pub(crate) fn start(dir: &Path) -> (Server, String) {
    let port = crate::cloud_venue::write_cloud_config(dir, Path::new("keys")).listen.port();
    let added = Command::new(binary("cloud-api"))
        .args([
            "add-user",
            "--config",
            "cloud.toml",
            "--email",
            "org@example.com",
            "--name",
            "Olga",
            "--role",
            "organizer",
        ])
        .env("TIXGATE_PASSWORD", "correct horse battery")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let server = serve(dir, port);
    (server, format!("http://127.0.0.1:{port}"))
}

fn verify(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["verify", "--keyring", "keys/keyring.json"];
    all.extend_from_slice(args);
    let out = run("gate-agent", &all, dir);
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|_| panic!("{out:?}"))
}

#[test]
fn a_ticket_bought_online_opens_the_gate_until_it_is_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert_eq!(run("cloud-api", &["keys", "generate", "--dir", "keys"], dir).code, 0);
    let (_server, base) = start(dir);
    // reqwest's TLS is built without a default crypto provider; ring is the one compiled in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let api = Client { base, http: reqwest::Client::new() };
        let organizer = api.login("org@example.com").await;
        let venue = api.post("/venues", Some(&organizer), json!({"name": "Hall", "address": "1 Main St", "capacity": 900})).await;
        let venue_id = venue["id"].as_i64().unwrap();
        let event = api
            .post(
                "/admin/events",
                Some(&organizer),
                json!({"venue_id": venue_id, "title": "Opening night", "starts_at": "2031-05-01T19:00:00Z",
                       "ends_at": "2031-05-01T23:00:00Z",
                       "ticket_types": [{"name": "Standing", "price_minor": 3000, "currency": "EUR", "total": 100}]}),
            )
            .await;
        let (event_id, type_id) = (event["id"].as_i64().unwrap(), event["ticket_types"][0]["id"].as_i64().unwrap());
        api.post(&format!("/admin/events/{event_id}/publish"), Some(&organizer), json!({})).await;
        let hub = api.post(&format!("/admin/venues/{venue_id}/devices"), Some(&organizer), json!({"name": "hub"})).await;
        let hub = hub["token"].as_str().unwrap().to_owned();

        let customer = {
            api.post(
                "/auth/register",
                None,
                json!({"email": "cy@example.com", "password": "correct horse battery", "name": "Cy Customer"}),
            )
            .await;
            api.login("cy@example.com").await
        };
        let hold = api
            .post(
                &format!("/events/{event_id}/reserve-tickets"),
                Some(&customer),
                json!({"ticket_type_id": type_id, "quantity": 2}),
            )
            .await;
        let order = api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
        assert_eq!(order["status"], "paid");
        let tickets = api.get("/users/me/tickets", &customer).await;
        let codes: Vec<String> = tickets.as_array().unwrap().iter().map(|t| t["barcode"].as_str().unwrap().to_owned()).collect();
        let event_arg = event_id.to_string();
        for (i, code) in codes.iter().enumerate() {
            let line = verify(dir, &["--event", &event_arg, code]);
            assert_eq!(line["decision"], "accept", "{line}");
            let png = api.bytes(&format!("/tickets/{}/qr.png", tickets[i]["id"]), &customer).await;
            std::fs::write(dir.join("ticket.png"), png).unwrap();
            let line = verify(dir, &["--event", &event_arg, "--image", "ticket.png"]);
            assert_eq!(line["decision"], "accept", "from the customer's QR image: {line}");
        }

        // The gate: the venue's snapshot admits the first ticket.
        std::fs::write(
            dir.join("gate.toml"),
            format!("gate_id = \"door-1\"\nvenue_id = {venue_id}\nlist_id = {event_id}\nstate_dir = \"state\"\nkeyring = \"keys/keyring.json\"\n"),
        )
        .unwrap();
        let snapshot = api.http.get(format!("{}/venues/{venue_id}/manifest", api.base)).bearer_auth(&hub).send().await.unwrap();
        let version = snapshot.headers()["x-manifest-version"].to_str().unwrap().to_owned();
        std::fs::write(dir.join("snapshot.txm"), snapshot.bytes().await.unwrap()).unwrap();
        let import = run("gate-agent", &["replica", "import", "--config", "gate.toml", "snapshot.txm"], dir);
        assert_eq!(import.code, 0, "{import:?}");
        let scan = run("gate-agent", &["scan", "--config", "gate.toml", &codes[0]], dir);
        assert_eq!(scan.code, 0, "the first ticket enters: {scan:?}");

        // A refund: the next manifest is a delta that revokes both.
        let order_id = order["id"].as_i64().unwrap();
        api.post(&format!("/orders/{order_id}/refund"), Some(&organizer), json!({})).await;
        let delta =
            api.bytes(&format!("/venues/{venue_id}/manifest?since={version}"), &hub).await;
        std::fs::write(dir.join("delta.txm"), delta).unwrap();
        let import = run("gate-agent", &["replica", "import", "--config", "gate.toml", "delta.txm"], dir);
        assert_eq!(import.code, 0, "{import:?}");
        let scan = run("gate-agent", &["scan", "--config", "gate.toml", &codes[1]], dir);
        let line: Value = serde_json::from_str(scan.stdout.trim()).unwrap_or_else(|_| panic!("{scan:?}"));
        assert_eq!((scan.code, line["decision"].as_str(), line["reason"].as_str()), (1, Some("reject"), Some("revoked")), "{scan:?}");
    });
}
