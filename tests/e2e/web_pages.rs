//! The web pages in headless Chromium, against a real cloud-api with its
//! event stream on NATS: a customer registers, sees the event with its
//! picture, buys with the test gateway and gets tickets whose QR codes (read
//! from a screenshot by the gate's decoder) are genuine; a second purchase over
//! the fraud threshold waits for review. The organizer signs in, sees the
//! sales, approves the held order from the case list, and sees the analytics
//! plots fill from the stream.

use std::path::Path;
use std::time::Duration;

use cloud_api::accounts::auth::{Caller, Role};
use cloud_api::accounts::users::{self, Credentials};
use cloud_api::config::Config;
use cloud_api::{catalog, catalog::media, common::clock};
use tixgate_tests::browser::Browser;
use tixgate_tests::run;
use tixgate_tests::venue_fixture::free_port;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

fn config(dir: &Path) -> Config {
    let port = free_port();
    let unique = format!("{}{}", std::process::id(), clock::now());
    std::fs::write(
        dir.join("cloud.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"cloud.db\"\nkeys = \"keys\"\ntoken_secret_file = \"token-secret\"\n\
             [payments]\ntest_gateway = true\n[fraud]\ntickets_per_buyer = 3\n\
             [events]\nnats_url = \"nats://127.0.0.1:4222\"\nstream = \"PAGES_{unique}\"\nsubject_prefix = \"pages{unique}\"\n"
        ),
    )
    .expect("cloud.toml");
    Config::load(&dir.join("cloud.toml")).expect("config")
}

/// An organizer (who can sign in), a venue, a published event with a picture.
async fn set_up(state: &cloud_api::web::AppState) -> i64 {
    let now = clock::now();
    let credentials = Credentials {
        email: "boss@example.com".into(),
        password: "organizer-pass".into(),
        name: Some("Boss".into()),
        phone: None,
    };
    let user = users::create(&state.db, &credentials, Role::Organizer, now).await.expect("organizer");
    let boss = Caller { id: user.id, role: Role::Organizer, venue: None };
    let venue: catalog::NewVenue =
        serde_json::from_value(serde_json::json!({"name": "Docks", "address": "Pier 4", "capacity": 800})).unwrap();
    let venue = catalog::create_venue(&state.db, &boss, &venue, now).await.expect("venue");
    let event: catalog::NewEvent = serde_json::from_value(serde_json::json!({
        "venue_id": venue.id, "title": "Harbour Lights", "description": "Boats & bands",
        "starts_at": "2031-06-01T19:00:00Z", "ends_at": "2031-06-01T23:00:00Z",
        "ticket_types": [{"name": "Standing", "price_minor": 3000, "currency": "EUR", "total": 50, "per_order_limit": 4}]
    }))
    .unwrap();
    let event = catalog::create_event(&state.db, &boss, &event, now).await.expect("event");
    catalog::publish_event(&state.db, &boss, event.id).await.expect("publish");
    let photo = {
        let img = image::RgbImage::from_fn(800, 500, |x, y| image::Rgb([(x / 4) as u8, 90, (y / 2) as u8]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    };
    media::upload(&state.db, &state.media, &boss, event.id, "image/jpeg", photo.into(), now).await.expect("picture");
    event.id
}

/// Fills the form's fields by name and submits it with its button.
async fn submit(browser: &mut Browser, form: &str, fields: &[(&str, &str)]) {
    let mut script = String::new();
    for (name, value) in fields {
        script
            .push_str(&format!("document.querySelector('{form} [name={name}]').value = {};", serde_json::json!(value)));
    }
    script.push_str(&format!("document.querySelector('{form} button').click(); true"));
    assert_eq!(browser.eval(&script).await, true, "{form} is on the page");
}

/// Waits for the page at `path` (after a navigation) to have `selector`.
async fn arrive(browser: &mut Browser, path: &str, selector: &str) {
    let check = format!("location.pathname === '{path}' && !!document.querySelector('{selector}')");
    browser.wait_for(&check, WAIT).await;
}

async fn text(browser: &mut Browser, selector: &str) -> String {
    browser
        .eval(&format!("document.querySelector('{selector}')?.textContent ?? ''"))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_customer_buys_in_the_shop_and_the_organizer_reviews_sales_cases_and_plots() {
    let Some(chromium) = tixgate_tests::browser::chromium() else {
        eprintln!("SKIPPED the web pages in a browser: no Chromium on this machine");
        return;
    };
    let _slot = tixgate_tests::browser::one_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    assert_eq!(run("cloud-api", &["keys", "generate", "--dir", "keys"], path).code, 0);
    let config = config(path);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let state = runtime.block_on(cloud_api::server::state(&config)).expect("cloud state");
    let event = runtime.block_on(set_up(&state));
    let keyring =
        cloud_api::common::keystore::read_keyring(&path.join("keys").join(cloud_api::common::keystore::KEYRING_FILE))
            .unwrap();
    let shutdown = CancellationToken::new();
    let (stop, serve_config) = (shutdown.clone(), config.clone());
    let server = runtime.spawn(async move { cloud_api::server::run(&serve_config, stop, None).await });
    let base = format!("http://{}", config.listen);

    runtime.block_on(async {
        // The customer: register on the way to the event, buy two tickets.
        let mut shop = Browser::open(chromium, &format!("{base}/register?next=/e/{event}")).await;
        arrive(&mut shop, "/register", "form").await;
        let fields = [("email", "ana@example.com"), ("password", "correct horse"), ("name", "Ana")];
        submit(&mut shop, "form[action=\"/register\"]", &fields).await;
        arrive(&mut shop, &format!("/e/{event}"), "button.buy").await;
        assert!(text(&mut shop, "main").await.contains("Boats & bands"));
        let picture = shop
            .wait_for(
                "document.querySelector('img.thumb')?.complete && document.querySelector('img.thumb').naturalWidth",
                WAIT,
            )
            .await;
        assert_eq!(picture, 320, "the event's thumbnail loads");
        submit(&mut shop, "form[action=\"/shop/buy\"]", &[("quantity", "2")]).await;
        arrive(&mut shop, "/my/tickets", "#order-status").await;
        assert!(
            text(&mut shop, "#order-status").await.contains("is paid: 2 ticket(s)"),
            "{}",
            text(&mut shop, "main").await
        );
        assert_eq!(shop.eval("document.querySelectorAll('.ticket svg').length").await, 2);
        let screenshot = path.join("tickets.png");
        std::fs::write(&screenshot, shop.screenshot().await).unwrap();
        let code = gate_agent::qr::decode_file(&screenshot).expect("a QR code in the screenshot of My tickets");
        let verified = keyring.verify(&code, clock::now() as u64).expect("a genuine ticket code");
        assert_eq!(verified.claims.event_id, event as u64);

        // Two more make four for one buyer: paid, held for review.
        shop.goto(&format!("{base}/e/{event}")).await;
        arrive(&mut shop, &format!("/e/{event}"), "button.buy").await;
        submit(&mut shop, "form[action=\"/shop/buy\"]", &[("quantity", "2")]).await;
        arrive(&mut shop, "/my/tickets", "#order-status").await;
        assert!(text(&mut shop, "#order-status").await.contains("checking it"), "{}", text(&mut shop, "main").await);
        assert_eq!(shop.eval("document.querySelectorAll('.ticket').length").await, 2, "no tickets while held");

        // The organizer: signs in, sees sales, approves the held order.
        let mut desk = Browser::open(chromium, &format!("{base}/manage/events/{event}")).await;
        arrive(&mut desk, "/login", "form").await;
        submit(&mut desk, "form[action=\"/login\"]", &[("email", "boss@example.com"), ("password", "organizer-pass")])
            .await;
        arrive(&mut desk, &format!("/manage/events/{event}"), "#sales").await;
        assert_eq!(text(&mut desk, "#sales td.sold").await, "4", "paid tickets, held ones included");
        assert_eq!(text(&mut desk, "#cases tr[data-kind=order_review] td.status").await, "open");
        assert!(text(&mut desk, "#cases").await.contains("4 tickets of this event"));
        desk.eval("document.querySelector('#cases tr[data-kind=order_review] button.dismiss').click(); true").await;
        desk.wait_for(
            "document.querySelector('#cases tr[data-kind=order_review] td.status')?.textContent === 'dismissed'",
            WAIT,
        )
        .await;
        shop.goto(&format!("{base}/my/tickets")).await;
        arrive(&mut shop, "/my/tickets", ".ticket").await;
        assert_eq!(shop.eval("document.querySelectorAll('.ticket svg').length").await, 4, "approved: issued");

        // The plots fill as the stream's consumer counts the sales.
        let mut bars = serde_json::Value::Null;
        for _ in 0..100 {
            desk.goto(&format!("{base}/manage/events/{event}")).await;
            arrive(&mut desk, &format!("/manage/events/{event}"), "#sales-by-type").await;
            bars = desk
                .eval("[...document.querySelectorAll('#sales-by-type rect.bar')].map(b => b.dataset.value).join(',')")
                .await;
            if bars == "4" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(bars, "4", "one bar, the one ticket type, four tickets");
        assert_eq!(desk.eval("document.querySelectorAll('#sales-by-hour rect.bar').length > 0").await, true);
        assert_eq!(text(&mut desk, "#sales-by-channel svg title").await, "Tickets sold by channel");
        std::fs::write(path.join("organizer.png"), desk.screenshot().await).unwrap();

        // A customer is not an organizer.
        shop.goto(&format!("{base}/manage/events/{event}")).await;
        arrive(&mut shop, &format!("/manage/events/{event}"), "p.error").await;
        assert!(text(&mut shop, "p.error").await.contains("for organizers"));
    });
    shutdown.cancel();
    runtime.block_on(server).expect("server task").expect("server");
}
