//! Order confirmations reach a real SMTP server (Python's smtpd, started by
//! the test) and a Twilio-compatible SMS endpoint: once each, after the relay
//! recovers, from the event's own template, with QR codes the gates read.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(
    an_order_is_confirmed_once_by_email_and_sms_after_the_relay_recovers,
    a_refused_address_fails_at_once_and_a_refunded_order_is_never_mailed,
);

/// Python's smtpd on a free port, writing each accepted message as JSON.
struct SmtpSink {
    port: u16,
    out: tempfile::TempDir,
    _process: tokio::process::Child,
}

impl SmtpSink {
    /// Refuses the first `refuse_first` messages with a temporary 451.
    async fn start(refuse_first: usize) -> Self {
        let out = tempfile::tempdir().expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/smtp_sink.py");
        let mut process = tokio::process::Command::new("python3")
            .args(["-W", "ignore"])
            .arg(&script)
            .arg(out.path())
            .arg(refuse_first.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the SMTP sink");
        let stdout = process.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), tokio::io::BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("the sink starts")
            .expect("read its port");
        let port = line.trim().parse().expect("a port");
        Self { port, out, _process: process }
    }

    fn config(&self, sms: &str) -> String {
        format!(
            "[notifications]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nfrom = \"Tickets <tickets@tixgate.test>\"\n\
             public_url = \"https://tickets.tixgate.test\"\nfirst_retry_seconds = 1\nmax_attempts = 5\n{sms}",
            self.port
        )
    }

    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .expect("read sink")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files.iter().map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")).collect()
    }
}

/// A Twilio-compatible Messages API that records what it was sent.
#[derive(Clone, Default)]
struct FakeSms {
    sent: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl FakeSms {
    async fn start(&self) -> String {
        async fn messages(
            State(s): State<FakeSms>,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
            body: String,
        ) -> (axum::http::StatusCode, axum::Json<Value>) {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let mut sent = s.sent.lock().expect("lock");
            sent.push((uri.path().to_owned(), auth, body));
            (
                axum::http::StatusCode::CREATED,
                axum::Json(json!({"sid": format!("SM{}", sent.len()), "status": "queued"})),
            )
        }
        let app = axum::Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(messages))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!(
            "[notifications.sms]\nbase_url = \"http://{addr}\"\naccount_sid = \"AC123\"\nauth_token = \"secret\"\n\
             from = \"+15005550006\"\n"
        )
    }

    fn sent(&self) -> Vec<(String, String, String)> {
        self.sent.lock().expect("lock").clone()
    }
}

async fn notifications(api: &Api, organizer: &str, event: i64) -> Vec<Value> {
    let (status, list) = api.get(&format!("/admin/events/{event}/notifications"), Some(organizer)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

/// Waits up to 15 s until the event's notifications all left `pending`.
async fn settled(api: &Api, organizer: &str, event: i64, count: usize) -> Vec<Value> {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let list = notifications(api, organizer, event).await;
        if list.len() == count && list.iter().all(|n| n["status"] != "pending") {
            return list;
        }
        assert!(Instant::now() < end, "notifications still pending: {list:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn register(api: &Api, email: &str, phone: Option<&str>) -> String {
    let (status, user) = api
        .post(
            "/auth/register",
            None,
            json!({"email": email, "password": "long enough password", "name": "Ann Example", "phone": phone}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let (_, login) = api.post("/auth/login", None, json!({"email": email, "password": "long enough password"})).await;
    login["access_token"].as_str().unwrap().to_owned()
}

async fn an_order_is_confirmed_once_by_email_and_sms_after_the_relay_recovers(store: Store) {
    let sink = SmtpSink::start(2).await;
    let sms = FakeSms::default();
    let sms_config = sms.start().await;
    let api = Api::start_with(store, &sink.config(&sms_config)).await;
    let (organizer, _, event, standing) = api.on_sale(10, 1, None).await;

    // The organizer's template: a typo is refused with its name, the fix is kept.
    let path = format!("/admin/events/{event}/templates/email");
    let (_, default) = api.get(&path, Some(&organizer)).await;
    assert_eq!(default["default"], true);
    let typo = json!({"subject": "Tickets: {{event}}", "body": "Hi {{nmae}}"});
    let (status, problem) = api.call(reqwest::Method::PUT, &path, Some(&organizer), Some(typo)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(problem["detail"].as_str().unwrap().contains("{{nmae}}"), "{problem}");
    let mine =
        json!({"subject": "Tickets: {{event}}", "body": "Hi {{name}}, order {{order}} ({{amount}}):\n{{tickets}}"});
    let (status, saved) = api.call(reqwest::Method::PUT, &path, Some(&organizer), Some(mine)).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let fax = format!("/admin/events/{event}/templates/fax");
    let (status, problem) =
        api.call(reqwest::Method::PUT, &fax, Some(&organizer), Some(json!({"subject": "s", "body": "b"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(problem["detail"].as_str().unwrap().starts_with("channel"), "{problem}");
    let (status, problem) = api
        .post(
            "/auth/register",
            None,
            json!({"email": "x@example.com",
        "password": "long enough password", "name": "X", "phone": "0151 2345"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");

    let customer = register(&api, "ann@example.com", Some("+49 151 1234 5678")).await;
    let hold = api.hold(&customer, event, standing, 2).await;
    let (status, order) = api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_i64().unwrap();

    // The relay refuses twice (451); the third attempt, about 3 s later, lands.
    let list = settled(&api, &organizer, event, 2).await;
    let email = list.iter().find(|n| n["channel"] == "email").unwrap();
    let text = list.iter().find(|n| n["channel"] == "sms").unwrap();
    assert_eq!((email["status"].as_str(), email["attempts"].as_i64()), (Some("sent"), Some(3)), "{email}");
    assert_eq!((text["status"].as_str(), text["recipient"].as_str()), (Some("sent"), Some("+4915112345678")));
    assert_eq!(email["order_id"], order_id);

    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let mail = &messages[0];
    assert_eq!(mail["subject"], "Tickets: Concert");
    assert_eq!(mail["rcpt_to"], json!(["ann@example.com"]));
    assert!(
        mail["message_id"].as_str().unwrap().contains(&format!("tixgate-notification-{}@tixgate.test", email["id"]))
    );
    let body = mail["body"].as_str().unwrap();
    assert!(body.starts_with(&format!("Hi Ann Example, order {order_id} (50.00 EUR):")), "{body}");
    let ticket_ids: Vec<i64> = order["ticket_ids"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
    let attachments = mail["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    for (ticket_id, file) in ticket_ids.iter().zip(attachments) {
        assert_eq!(file["name"], format!("ticket-{ticket_id}.png"));
        assert_eq!(file["content_type"], "image/png");
        assert!(body.contains(&format!("QR code attached as ticket-{ticket_id}.png")), "{body}");
        // The attached code is the ticket's barcode, as a gate's decoder reads it.
        let png = data_encoding::BASE64.decode(file["base64"].as_str().unwrap().as_bytes()).unwrap();
        let path = dir.path().join(format!("{ticket_id}.png"));
        std::fs::write(&path, png).unwrap();
        let (_, ticket) = api.get(&format!("/tickets/{ticket_id}"), Some(&customer)).await;
        assert_eq!(gate_agent::qr::decode_file(&path).unwrap(), ticket["barcode"].as_str().unwrap());
    }

    let texts = sms.sent();
    assert_eq!(texts.len(), 1, "{texts:?}");
    let (path, auth, form) = &texts[0];
    assert_eq!(path, "/2010-04-01/Accounts/AC123/Messages.json");
    assert_eq!(auth, &format!("Basic {}", data_encoding::BASE64.encode(b"AC123:secret")));
    assert!(form.contains("To=%2B4915112345678") && form.contains("From=%2B15005550006"), "{form}");
    assert!(form.contains("Concert"), "the default SMS template names the event: {form}");

    // Nothing more arrives: each message was sent once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(sms.sent().len(), 1);
}

async fn a_refused_address_fails_at_once_and_a_refunded_order_is_never_mailed(store: Store) {
    let sink = SmtpSink::start(1).await;
    let config = sink.config("").replace("first_retry_seconds = 1", "first_retry_seconds = 3");
    let api = Api::start_with(store, &config).await;
    let (organizer, _, event, standing) = api.on_sale(10, 1, None).await;

    // 550: given up after one attempt, with the relay's reason for the organizer.
    let bounce = register(&api, "bounce@example.com", None).await;
    let hold = api.hold(&bounce, event, standing, 1).await;
    let (status, _) = api.post("/orders", Some(&bounce), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let list = settled(&api, &organizer, event, 1).await;
    assert_eq!((list[0]["status"].as_str(), list[0]["attempts"].as_i64()), (Some("failed"), Some(1)), "{list:?}");
    assert!(list[0]["last_error"].as_str().unwrap().contains("550"), "{list:?}");

    // The first attempt is refused (451); the order is refunded before the retry,
    // so the retry sends nothing: revoked tickets are never delivered.
    let ann = register(&api, "ann@example.com", None).await;
    let hold = api.hold(&ann, event, standing, 1).await;
    let (_, order) = api.post("/orders", Some(&ann), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let list = notifications(&api, &organizer, event).await;
        let n = list.iter().find(|n| n["order_id"] == order["id"]).unwrap();
        if let Some(error) = n["last_error"].as_str() {
            assert_eq!((n["status"].as_str(), n["attempts"].as_i64()), (Some("pending"), Some(1)), "{n}");
            assert!(error.contains("451"), "{n}");
            break;
        }
        assert!(Instant::now() < end, "{n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = api.post(&format!("/orders/{}/refund", order["id"]), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let list = settled(&api, &organizer, event, 2).await;
    let n = list.iter().find(|n| n["order_id"] == order["id"]).unwrap();
    assert_eq!((n["status"].as_str(), n["attempts"].as_i64()), (Some("failed"), Some(2)), "{n}");
    assert!(n["last_error"].as_str().unwrap().contains("no longer paid"), "{n}");
    assert!(sink.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_send_each_confirmation_once() {
    let sink = SmtpSink::start(0).await;
    let api = Api::start_with(Store::Postgres, &sink.config("")).await;
    let twin = api.twin().await;
    let (organizer, _, event, standing) = api.on_sale(100, 4, None).await;
    let mut buyers = Vec::new();
    for n in 0..12 {
        let token = register(&api, &format!("buyer{n}@example.com"), None).await;
        let hold = api.hold(&token, event, standing, 1).await;
        buyers.push((token, hold["id"].as_str().unwrap().to_owned()));
    }
    // Orders alternate between the instances; both deliverers poll the one outbox.
    let orders = futures_util::future::join_all(buyers.iter().enumerate().map(|(n, (token, hold))| {
        let base = if n % 2 == 0 { api.base.clone() } else { twin.base.clone() };
        let http = api.http.clone();
        async move {
            let resp = http
                .post(format!("{base}/orders"))
                .bearer_auth(token)
                .json(&json!({"hold_id": hold, "gateway": "test"}))
                .send()
                .await
                .unwrap();
            resp.status()
        }
    }))
    .await;
    assert!(orders.iter().all(|s| *s == StatusCode::CREATED), "{orders:?}");
    let list = settled(&api, &organizer, event, 12).await;
    assert!(list.iter().all(|n| n["status"] == "sent" && n["attempts"] == 1), "{list:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages = sink.messages();
    let mut recipients: Vec<String> = messages.iter().map(|m| m["rcpt_to"][0].as_str().unwrap().to_owned()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!((messages.len(), recipients.len()), (12, 12), "one message per order, none twice");
}
