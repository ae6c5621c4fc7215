//! Rotating tickets (barcode v2): bought like any other, shown only through a
//! wallet link; the first wallet key binds the ticket, codes shown with that key
//! verify against the issuer's keyring, and the venue's manifest carries the
//! holder's name sealed for them.

use cloud_api::accounts::auth::Role;
use cloud_api::common::clock;
use reqwest::{Method, StatusCode};
use schema::HolderSigner;
use serde_json::{Value, json};

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(
    a_wallet_binds_its_key_once_and_shows_codes_gates_accept,
    wallet_links_and_keys_are_checked,
    of_two_phones_binding_at_once_exactly_one_wins,
);

struct Sale {
    organizer: String,
    customer: String,
    venue: i64,
    event: i64,
    /// The event's other, static ticket type.
    static_type: i64,
    /// The rotating ticket, as its owner sees it.
    ticket: Value,
}

/// A published event with a static and a rotating ticket type, and one
/// rotating ticket sold to a customer.
async fn rotating_ticket(api: &Api) -> Sale {
    let (organizer, venue, event, static_type) = api.on_sale(10, 1, None).await;
    let rotating = json!({"name": "Phone only", "price_minor": 900, "currency": "EUR", "total": 5, "rotating": true});
    let (status, added) = api.post(&format!("/admin/events/{event}/ticket-types"), Some(&organizer), rotating).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["rotating"], true, "{added}");
    let (_, customer) = api.user("rosa@example.com", Role::Customer).await;
    let hold = json!({"ticket_type_id": added["id"], "quantity": 1});
    let (status, hold) = api.post(&format!("/events/{event}/reserve-tickets"), Some(&customer), hold).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, order) = api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (_, ticket) = api.get(&format!("/tickets/{}", order["ticket_ids"][0]), Some(&customer)).await;
    Sale { organizer, customer, venue, event, static_type, ticket }
}

fn hex_key(h: &HolderSigner) -> String {
    h.verifying_key().as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

async fn bind(api: &Api, wallet: &str, key: &str) -> (StatusCode, Value) {
    api.post(&format!("{wallet}/bind"), None, json!({ "holder_key": key })).await
}

async fn a_wallet_binds_its_key_once_and_shows_codes_gates_accept(store: Store) {
    let api = Api::start(store).await;
    let Sale { organizer, customer, venue, ticket, .. } = rotating_ticket(&api).await;
    assert_eq!(ticket["rotating"], true);
    assert_eq!(ticket["barcode"], "", "no static code exists to be copied");
    let wallet = ticket["wallet"].as_str().expect("a wallet link").to_owned();
    let (status, problem) = api.get(&format!("/tickets/{}/qr.png", ticket["id"]), Some(&customer)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    // The page and its scripts.
    let page = api.http.get(format!("{}{wallet}", api.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer", "the link must not leak");
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert!(page.text().await.unwrap().contains("/wallet-assets/wallet.js"));
    for script in ["/wallet-assets/wallet.js", "/wallet-assets/qrcode.js"] {
        let resp = api.http.get(format!("{}{script}", api.base)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{script}");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    }

    let (status, device) =
        api.post(&format!("/admin/venues/{venue}/devices"), Some(&organizer), json!({"name": "hub"})).await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    let hub = device["token"].as_str().unwrap().to_owned();
    let (_, before) = api.manifest(&hub, venue, None).await;

    let phone = HolderSigner::from_secret_bytes(&[21; 32]);
    let (status, shown) = bind(&api, &wallet, &hex_key(&phone)).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["ticket_id"], ticket["id"]);
    assert_eq!(shown["holder_name"], "Name of rosa@example.com");
    assert!((shown["server_time"].as_i64().unwrap() - clock::now()).abs() <= 2);
    let static_hex = shown["static_part"].as_str().unwrap().to_owned();
    let static_part = data_encoding::HEXLOWER.decode(static_hex.as_bytes()).unwrap();
    let now = clock::now() as u64;
    let code = phone.show(&static_part, now);
    let verified = api.keyring.verify(&code, now).expect("the issuer's keyring accepts the shown code");
    assert_eq!(verified.claims.ticket_id, ticket["id"].as_u64().unwrap());
    assert_eq!(verified.shown_at, Some(now));

    // A reload of the same wallet gets the same ticket; another phone does not.
    let (status, again) = bind(&api, &wallet, &hex_key(&phone)).await;
    assert_eq!((status, again["static_part"].as_str()), (StatusCode::OK, Some(static_hex.as_str())));
    let (status, problem) = bind(&api, &wallet, &hex_key(&HolderSigner::from_secret_bytes(&[22; 32]))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("another device"), "{problem}");

    // The binding is news for the venue: the next delta carries the ticket, with
    // the holder's name sealed for the bound code (before, there was nothing to seal it with).
    let unsealed = before.tickets.iter().find(|t| t.ticket_id == verified.claims.ticket_id).expect("listed");
    assert!(unsealed.sealed_holder.is_none(), "no static part yet, so no name");
    let (status, delta) = api.manifest(&hub, venue, Some(before.version)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!delta.is_snapshot());
    let record = delta.tickets.iter().find(|t| t.ticket_id == verified.claims.ticket_id).expect("in the delta");
    let sealed = record.sealed_holder.as_deref().expect("a sealed name once bound");
    let name = schema::holder::open(&verified.signature, record.ticket_id, sealed);
    assert_eq!(name.as_deref(), Some("Name of rosa@example.com"));
}

async fn of_two_phones_binding_at_once_exactly_one_wins(store: Store) {
    let api = Api::start(store).await;
    let wallet = rotating_ticket(&api).await.ticket["wallet"].as_str().unwrap().to_owned();
    let (first, second) =
        (hex_key(&HolderSigner::from_secret_bytes(&[31; 32])), hex_key(&HolderSigner::from_secret_bytes(&[32; 32])));
    let (a, b) = tokio::join!(bind(&api, &wallet, &first), bind(&api, &wallet, &second));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{a:?} {b:?}");
    // The winner reloading in two tabs at once gets its ticket in both.
    let winner = if a.0 == StatusCode::OK { &first } else { &second };
    let (c, d) = tokio::join!(bind(&api, &wallet, winner), bind(&api, &wallet, winner));
    assert_eq!((c.0, d.0), (StatusCode::OK, StatusCode::OK), "{c:?} {d:?}");
    assert_eq!(c.1["static_part"], d.1["static_part"]);
}

async fn wallet_links_and_keys_are_checked(store: Store) {
    let api = Api::start(store).await;
    let Sale { organizer, customer, event, static_type, ticket, .. } = rotating_ticket(&api).await;
    let wallet = ticket["wallet"].as_str().unwrap().to_owned();
    let key = hex_key(&HolderSigner::from_secret_bytes(&[5; 32]));

    // Links: forged, or a login token in its place.
    let (status, _) = bind(&api, "/wallet/not-a-token", &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut tampered = wallet.clone();
    tampered.pop();
    tampered.push(if wallet.ends_with('A') { 'B' } else { 'A' });
    let (status, _) = bind(&api, &tampered, &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = bind(&api, &format!("/wallet/{customer}"), &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a login token is no wallet link");
    // ... and a wallet link is no login token.
    let link_token = wallet.trim_start_matches("/wallet/");
    let (status, _) = api.get("/users/me", Some(link_token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Keys: not hex, wrong length, not a point, small order; bodies with extra fields.
    let identity = format!("01{}", "00".repeat(31));
    for bad in ["xyz", "abcd", &"ff".repeat(33), &identity, &key.to_uppercase()] {
        let (status, problem) = bind(&api, &wallet, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
    }
    let (status, _) =
        api.call(Method::POST, &format!("{wallet}/bind"), None, Some(json!({"holder_key": key, "x": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // None of that bound the ticket: a good key still can.
    let (status, shown) = bind(&api, &wallet, &key).await;
    assert_eq!(status, StatusCode::OK, "{shown}");

    // A static ticket has no wallet, and a link made for one is refused.
    let hold = json!({"ticket_type_id": static_type, "quantity": 1});
    let (_, hold) = api.post(&format!("/events/{event}/reserve-tickets"), Some(&customer), hold).await;
    let (status, order) = api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let static_id = order["ticket_ids"][0].as_i64().unwrap();
    let (_, printed) = api.get(&format!("/tickets/{static_id}"), Some(&customer)).await;
    assert_eq!((printed["rotating"].as_bool(), printed["wallet"].is_null()), (Some(false), true), "{printed}");
    let link = api.state.tokens.wallet_token(static_id, clock::now() + 3600).unwrap();
    let (status, problem) = bind(&api, &format!("/wallet/{link}"), &key).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    // A refunded ticket's wallet stops, even on the phone it was bound to.
    let (status, refund) =
        api.post(&format!("/orders/{}/refund", ticket["order_id"]), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{refund}");
    let (status, problem) = bind(&api, &wallet, &key).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("cancelled"), "{problem}");
}
