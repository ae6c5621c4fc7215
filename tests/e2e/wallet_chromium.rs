//! The wallet in a real browser: headless Chromium opens a rotating ticket's
//! wallet link, its WebCrypto key is bound by the cloud, and screenshots of the
//! page taken at two times are decoded like camera frames and shown to a gate
//! with no network. The older screenshot, replayed after the gate's window, is
//! refused as `stale_code`; the fresh one is accepted.

use std::path::Path;
use std::time::Duration;

use cloud_api::accounts::auth::{Caller, Role};
use cloud_api::web::AppState;
use cloud_api::{common::clock, venue::feed};
use tixgate_tests::browser::Browser;
use tixgate_tests::run;
use tixgate_tests::venue_fixture::{Daemon, unique_venue};
use tokio_util::sync::CancellationToken;

use crate::cloud_venue::{sell, write_cloud_config};

const WAIT: Duration = Duration::from_secs(20);
/// The gate's window in this test: the shortest a gate accepts, so the test
/// waits 11 s rather than the default's 31.
const MAX_AGE_S: u64 = 10;

/// Sells one rotating ticket; returns the buyer's login token, the ticket id
/// and the organizer (who may read the venue's manifest).
async fn sell_rotating_ticket(state: &AppState, venue_id: i64) -> (String, i64, Caller) {
    let phone_only = serde_json::json!({"name": "Phone only", "price_minor": 1000, "currency": "EUR", "total": 10, "rotating": true});
    let sale = sell(state, venue_id, phone_only, 1).await;
    let token =
        cloud_api::accounts::sessions::open(&state.db, &state.tokens, sale.fan.id, Role::Customer, clock::now())
            .await
            .expect("login");
    (token, sale.ticket_ids[0], sale.organizer)
}

/// The ticket code in a screenshot, read by the gate's own QR decoder.
fn decode(png: &[u8], path: &Path) -> String {
    std::fs::write(path, png).expect("screenshot file");
    gate_agent::qr::decode_file(path).unwrap_or_else(|e| {
        let kept = std::env::temp_dir().join("tixgate-wallet-failed.png");
        let _ = std::fs::copy(path, &kept);
        panic!("no code in the screenshot (kept as {}): {e}", kept.display())
    })
}

/// Waits until the wallet page (the one loaded after the last [`reload`]) shows
/// a code made after `after`; fails with the page's own message if it shows an error.
async fn shown(browser: &mut Browser, after: u64) -> u64 {
    let check = format!(
        "window.tixgateBeforeReload ? null : document.body.dataset.error \
         ? 'error: ' + document.getElementById('status').textContent \
         : (Number(document.body.dataset.shownAt || 0) > {after} ? document.body.dataset.shownAt : null)"
    );
    let value = browser.wait_for(&check, WAIT).await;
    let text = value.as_str().unwrap_or_default().to_owned();
    assert!(!text.starts_with("error"), "the wallet failed: {text}");
    text.parse().expect("shown-at seconds")
}

/// Reloads the page; [`shown`] then waits for the new page, not the old one.
async fn reload(browser: &mut Browser) {
    browser.eval("window.tixgateBeforeReload = true").await;
    browser.reload().await;
}

/// The phone's clock runs two minutes slow: unless the wallet sets its clock by
/// the server's, every code it shows is stale on arrival.
const SLOW_PHONE: &str = "(() => { const real = Date.now; Date.now = () => real.call(Date) - 120000; })();";

fn shown_at(code: &str) -> u64 {
    schema::barcode::parse(code).expect("a v2 code").holder.expect("a holder proof").shown_at
}

#[test]
fn a_replayed_screenshot_is_stale_and_the_live_wallet_is_accepted_offline() {
    let Some(chromium) = tixgate_tests::browser::chromium() else {
        eprintln!("SKIPPED the wallet in a browser: no Chromium on this machine");
        return;
    };
    let _slot = tixgate_tests::browser::one_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let venue_id = unique_venue() as i64;
    assert_eq!(run("cloud-api", &["keys", "generate", "--dir", "keys"], path).code, 0);
    let config = write_cloud_config(path, Path::new("keys"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let state = runtime.block_on(cloud_api::server::state(&config)).expect("cloud state");
    let (token, ticket_id, organizer) = runtime.block_on(sell_rotating_ticket(&state, venue_id));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let serve_config = config.clone();
    let server = runtime.spawn(async move { cloud_api::server::run(&serve_config, stop, None).await });
    let base = format!("http://{}", config.listen);

    // The owner's view of the ticket: no static code, a wallet link.
    let ticket: serde_json::Value = runtime.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{base}/tickets/{ticket_id}")).bearer_auth(&token).send().await {
                return r.json().await.expect("ticket JSON");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the cloud did not answer");
    });
    assert_eq!(ticket["rotating"], true, "{ticket}");
    assert_eq!(ticket["barcode"], "", "a rotating ticket has no static code");
    let wallet = ticket["wallet"].as_str().expect("wallet link").to_owned();

    // The gate: the cloud's ticket list, the public keyring, no hub, no network.
    let gate_dir = path.join("gate");
    std::fs::create_dir_all(&gate_dir).expect("gate dir");
    let manifest = runtime
        .block_on(feed::manifest(&state.db, &state.signer, &organizer, venue_id, None, clock::now()))
        .expect("manifest")
        .expect("a first manifest");
    std::fs::write(gate_dir.join("manifest.txm"), &manifest.bytes).expect("manifest file");
    let event_id = ticket["event_id"].as_i64().expect("event id");
    std::fs::write(
        gate_dir.join("gate.toml"),
        format!(
            "gate_id = \"door-1\"\nvenue_id = {venue_id}\nlist_id = {event_id}\nstate_dir = \"state\"\n\
             keyring = \"../keys/keyring.json\"\n[rotating_codes]\nmax_age_s = {MAX_AGE_S}\n"
        ),
    )
    .expect("gate.toml");
    let import = run("gate-agent", &["replica", "import", "--config", "gate.toml", "manifest.txm"], &gate_dir);
    assert_eq!(import.code, 0, "{}", import.stderr);

    // The gate runs with no hub and no cloud, from before the phone shows up.
    let mut gate = Daemon::spawn("gate-agent", &["run", "--config", "gate.toml"], &gate_dir);

    // One wallet page on a phone whose clock is off, looked at now and again
    // after the first screenshot has gone past the gate's window.
    let url = format!("{base}{wallet}");
    let (old_code, reloaded_code, fresh_code) = runtime.block_on(async {
        let mut browser = Browser::open_with(chromium, &url, Some(SLOW_PHONE)).await;
        let first_shown = shown(&mut browser, 0).await;
        let old_code = decode(&browser.screenshot().await, &path.join("first.png"));
        let version = browser.eval("document.getElementById('code').dataset.version").await;
        assert_eq!(version, "8", "a typical rotating code is a version-8 QR code at level L");
        let now = clock::now() as u64;
        tokio::time::sleep(Duration::from_secs((first_shown + MAX_AGE_S + 1).saturating_sub(now))).await;
        // A later visit finds the key the page made and stored.
        reload(&mut browser).await;
        let reloaded_shown = shown(&mut browser, 0).await;
        let reloaded_code = decode(&browser.screenshot().await, &path.join("reloaded.png"));
        // The next code, read the moment it appears, as at the door.
        shown(&mut browser, reloaded_shown).await;
        let fresh_code = decode(&browser.screenshot().await, &path.join("fresh.png"));
        if let Ok(keep) = std::env::var("TIXGATE_KEEP_WALLET_SHOT") {
            std::fs::write(keep, browser.screenshot().await).expect("kept screenshot");
        }
        (old_code, reloaded_code, fresh_code)
    });
    assert!(old_code.starts_with("TX2:"), "{old_code}");
    let old_shown = shown_at(&old_code);
    let now = clock::now() as u64;
    assert!(
        old_shown.abs_diff(now) <= 30,
        "the wallet set its clock by the server's, not the phone's: shown at {old_shown}, now {now}"
    );
    assert_ne!(fresh_code, old_code, "the code rotated");
    assert!(shown_at(&fresh_code) > old_shown + MAX_AGE_S);
    let static_of = |code: &str| {
        let parsed = schema::barcode::parse(code).expect("v2");
        (parsed.signed_part, parsed.signature)
    };
    assert_eq!(static_of(&fresh_code), static_of(&old_code));
    assert_eq!(static_of(&reloaded_code), static_of(&old_code), "one binding: the browser kept its key");

    // The cloud is gone: the gate decides alone.
    shutdown.cancel();
    runtime.block_on(server).expect("server task").expect("server");
    gate.send_line(&old_code);
    let replayed = gate.next_decision(WAIT);
    assert_eq!(replayed["decision"], "reject", "{replayed}");
    assert_eq!(replayed["reason"], "stale_code", "{replayed}");
    assert_eq!(replayed["ticket"]["ticket_id"], ticket_id, "the ticket is named, for staff");
    gate.send_line(&fresh_code);
    let live = gate.next_decision(WAIT);
    assert_eq!(live["decision"], "accept", "{live}");
    assert_eq!(live["ticket"]["ticket_id"], ticket_id);
    // Both attempts are in the ledger.
    gate.terminate(WAIT);
    let scans = run("gate-agent", &["scans", "--config", "gate.toml"], &gate_dir);
    assert_eq!(scans.stdout.lines().count(), 2, "{}", scans.stdout);
    assert!(scans.stdout.contains("stale_code"), "{}", scans.stdout);
}
