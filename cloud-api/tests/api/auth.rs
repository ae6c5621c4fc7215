//! Every non-public endpoint refuses missing, expired, foreign and wrong-role
//! tokens; customers see only their own orders and tickets.

use cloud_api::accounts::auth::{Role, Tokens};
use cloud_api::common::clock;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(
    every_private_endpoint_refuses_bad_tokens,
    customers_see_only_their_own,
    logins_are_checked,
    a_role_change_or_a_sign_out_holds_from_the_next_request
);

/// Every route that needs a token, with the roles that may call it.
fn private_routes(event: i64, venue: i64, order: i64, ticket: i64) -> Vec<(Method, String, &'static [Role])> {
    const PEOPLE: &[Role] = &[Role::Customer, Role::Organizer, Role::Admin];
    const RUNNERS: &[Role] = &[Role::Organizer, Role::Admin];
    const ADMIN: &[Role] = &[Role::Admin];
    const FEED: &[Role] = &[Role::Hub, Role::Organizer, Role::Admin];
    vec![
        (Method::GET, "/users/me".into(), PEOPLE),
        (Method::POST, "/auth/logout".into(), PEOPLE),
        (Method::GET, "/users/me/tickets".into(), PEOPLE),
        (Method::PUT, "/admin/users/1/role".into(), ADMIN),
        (Method::POST, "/venues".into(), RUNNERS),
        (Method::POST, format!("/admin/venues/{venue}/devices"), RUNNERS),
        (Method::DELETE, format!("/admin/venues/{venue}/devices/1"), RUNNERS),
        (Method::GET, format!("/venues/{venue}/manifest"), FEED),
        (Method::POST, format!("/venues/{venue}/scans"), FEED),
        (Method::PUT, format!("/venues/{venue}/gates"), FEED),
        (Method::GET, format!("/admin/venues/{venue}/gates"), RUNNERS),
        (Method::PUT, format!("/admin/venues/{venue}/gates/main-1"), RUNNERS),
        (Method::DELETE, format!("/admin/venues/{venue}/gates/main-1"), RUNNERS),
        (Method::POST, "/admin/events".into(), RUNNERS),
        (Method::POST, format!("/admin/events/{event}/publish"), RUNNERS),
        (Method::POST, format!("/admin/events/{event}/cancel"), RUNNERS),
        (Method::POST, format!("/admin/events/{event}/ticket-types"), RUNNERS),
        (Method::POST, format!("/events/{event}/reserve-tickets"), PEOPLE),
        (Method::DELETE, "/holds/h_1".into(), PEOPLE),
        (Method::POST, "/orders".into(), PEOPLE),
        (Method::GET, format!("/orders/{order}"), PEOPLE),
        (Method::POST, format!("/orders/{order}/refund"), RUNNERS),
        (Method::GET, format!("/tickets/{ticket}"), PEOPLE),
        (Method::GET, format!("/tickets/{ticket}/qr.svg"), PEOPLE),
        (Method::GET, format!("/tickets/{ticket}/qr.png"), PEOPLE),
    ]
}

async fn every_private_endpoint_refuses_bad_tokens(store: Store) {
    let api = Api::start(store).await;
    let (_, venue, event, type_id) = api.on_sale(10, 1, None).await;
    let (customer_id, customer) = api.user("cus@example.com", Role::Customer).await;
    let (_, hold) = api
        .post(
            &format!("/events/{event}/reserve-tickets"),
            Some(&customer),
            json!({"ticket_type_id": type_id, "quantity": 1}),
        )
        .await;
    let (_, order) = api.post("/orders", Some(&customer), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    let (order_id, ticket_id) = (order["id"].as_i64().unwrap(), order["ticket_ids"][0].as_i64().unwrap());

    let secret = std::fs::read_to_string(api.state_dir().join("token-secret")).unwrap();
    let secret = data_encoding::HEXLOWER.decode(secret.trim().as_bytes()).unwrap();
    let ours = Tokens::new(&secret, 3600);
    let now = clock::now();
    let expired = ours.issue(customer_id, Role::Admin, None, now - 7200, 3600).unwrap();
    let foreign = Tokens::new(&[9; 32], 3600).issue(customer_id, Role::Admin, None, now, 3600).unwrap();
    // Tokens signed with the service's own secret, each claiming a role; a
    // person's names an open session, as a signed-in token does.
    let mut role_tokens = std::collections::BTreeMap::new();
    for role in [Role::Customer, Role::Organizer, Role::Admin, Role::Hub] {
        let token = match role {
            Role::Hub => ours.issue(customer_id, role, Some(venue), now, 3600).unwrap(),
            _ => cloud_api::accounts::sessions::open(&api.state.db, &ours, customer_id, role, now).await.unwrap(),
        };
        role_tokens.insert(role.as_str(), token);
    }
    let tokens_of = |role: Role| role_tokens[role.as_str()].clone();

    let body = json!({});
    for (method, path, allowed) in private_routes(event, venue, order_id, ticket_id) {
        let cases = [
            (None, "missing bearer token"),
            (Some(expired.clone()), "access token expired"),
            (Some(foreign.clone()), "access token invalid"),
            (Some("not-a-jwt".to_owned()), "access token invalid"),
        ];
        for (token, detail) in cases {
            let (status, problem) = api.call(method.clone(), &path, token.as_deref(), Some(body.clone())).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {detail}: {problem}");
            assert_eq!(problem["detail"], detail, "{method} {path}");
        }
        for role in [Role::Customer, Role::Organizer, Role::Admin, Role::Hub] {
            if allowed.contains(&role) {
                continue;
            }
            let (status, problem) = api.call(method.clone(), &path, Some(&tokens_of(role)), Some(body.clone())).await;
            assert!(
                status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
                "{method} {path} as {role:?}: {status} {problem}"
            );
        }
    }
    // None of that changed anything.
    let (_, still) = api.get(&format!("/orders/{order_id}"), Some(&customer)).await;
    assert_eq!(still["status"], "paid");
    api.expect_available(event, type_id, 9).await;
}

async fn customers_see_only_their_own(store: Store) {
    let api = Api::start(store).await;
    let (_, _, event, type_id) = api.on_sale(10, 1, None).await;
    let (_, ann) = api.user("ann@example.com", Role::Customer).await;
    let (_, bob) = api.user("bob@example.com", Role::Customer).await;
    let (_, hold) = api
        .post(
            &format!("/events/{event}/reserve-tickets"),
            Some(&ann),
            json!({"ticket_type_id": type_id, "quantity": 1}),
        )
        .await;
    let (status, _) = api.post("/orders", Some(&bob), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "bob cannot buy ann's hold");
    let (_, order) = api.post("/orders", Some(&ann), json!({"hold_id": hold["id"], "gateway": "test"})).await;
    let ticket = order["ticket_ids"][0].as_i64().unwrap();
    for path in [format!("/orders/{}", order["id"]), format!("/tickets/{ticket}"), format!("/tickets/{ticket}/qr.png")]
    {
        let (status, _) = api.get(&path, Some(&bob)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let (status, _) = api.get(&path, Some(&ann)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (_, bobs) = api.get("/users/me/tickets", Some(&bob)).await;
    assert_eq!(bobs, json!([]));
}

async fn logins_are_checked(store: Store) {
    let api = Api::start(store).await;
    api.user("kim@example.com", Role::Customer).await;
    let (status, problem) =
        api.post("/auth/login", None, json!({"email": "kim@example.com", "password": "wrong password!"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    let (status, _) =
        api.post("/auth/login", None, json!({"email": "nobody@example.com", "password": "long enough password"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, problem) = api
        .post(
            "/auth/register",
            None,
            json!({"email": "KIM@example.com", "password": "long enough password", "name": "Kim"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "e-mails are compared case-insensitively: {problem}");
    let (status, _) =
        api.post("/auth/register", None, json!({"email": "x@example.com", "password": "short", "name": "X"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// An organizer demoted to customer cannot use the old token on the next
/// request; signing out ends that token's session and no other.
async fn a_role_change_or_a_sign_out_holds_from_the_next_request(store: Store) {
    let api = Api::start(store).await;
    let (organizer_id, organizer) = api.user("org@example.com", Role::Organizer).await;
    let (_, admin) = api.user("admin@example.com", Role::Admin).await;
    let venue = json!({"name": "Hall", "address": "1 Main St", "capacity": 100});
    let (status, created) = api.post("/venues", Some(&organizer), venue.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let demote = json!({"role": "customer"});
    let (status, user) =
        api.call(Method::PUT, &format!("/admin/users/{organizer_id}/role"), Some(&admin), Some(demote)).await;
    assert_eq!((status, user["role"].as_str()), (StatusCode::OK, Some("customer")), "{user}");
    let (status, problem) = api.post("/venues", Some(&organizer), venue.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old token still works: {problem}");
    assert_eq!(problem["detail"], "session ended; sign in again");
    let venues = api.state.db.query_one("SELECT COUNT(*) FROM venues", &[]).await.unwrap().int(0).unwrap();
    assert_eq!(venues, 1, "nothing was made with the old token");

    // Signed in again, as what they are now; two devices, two sessions.
    let login = json!({"email": "org@example.com", "password": "long enough password"});
    let (_, phone) = api.post("/auth/login", None, login.clone()).await;
    let (_, laptop) = api.post("/auth/login", None, login).await;
    let (phone, laptop) = (phone["access_token"].as_str().unwrap(), laptop["access_token"].as_str().unwrap());
    let (status, _) = api.post("/venues", Some(phone), venue).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a customer now");
    let (status, _) = api.post("/auth/logout", Some(phone), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = api.get("/users/me", Some(phone)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out, yet: {problem}");
    let (status, again) = api.post("/auth/logout", Some(phone), json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{again}");
    let (status, me) = api.get("/users/me", Some(laptop)).await;
    assert_eq!((status, me["id"].as_i64()), (StatusCode::OK, Some(organizer_id)), "the other session stays: {me}");
}
