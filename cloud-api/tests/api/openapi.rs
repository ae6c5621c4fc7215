//! `/openapi.json` documents exactly the routes the server has.

use reqwest::{Method, StatusCode};

use crate::harness::{Api, Store};

/// Every route the router serves, besides `/healthz`, the document itself and
/// the wallet's page and scripts (HTML and JavaScript, not API).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/logout"),
    ("post", "/auth/oidc/{provider}"),
    ("get", "/users/me"),
    ("get", "/users/me/tickets"),
    ("put", "/admin/users/{id}/role"),
    ("post", "/venues"),
    ("get", "/venues/{id}"),
    ("get", "/venues/{id}/manifest"),
    ("post", "/venues/{id}/scans"),
    ("put", "/venues/{id}/gates"),
    ("post", "/admin/venues/{id}/devices"),
    ("delete", "/admin/venues/{id}/devices/{device}"),
    ("post", "/admin/venues/{id}/entrances"),
    ("get", "/admin/venues/{id}/entrances"),
    ("post", "/admin/venues/{id}/areas"),
    ("get", "/admin/venues/{id}/areas"),
    ("get", "/admin/venues/{id}/gates"),
    ("put", "/admin/venues/{id}/gates/{gate_id}"),
    ("delete", "/admin/venues/{id}/gates/{gate_id}"),
    ("post", "/admin/events/{id}/checkin-lists"),
    ("get", "/admin/events/{id}/checkin-lists"),
    ("get", "/admin/checkin-lists/{id}"),
    ("put", "/admin/checkin-lists/{id}"),
    ("delete", "/admin/checkin-lists/{id}"),
    ("get", "/events"),
    ("get", "/events/{id}"),
    ("get", "/events/{id}/seats"),
    ("get", "/events/{id}/media"),
    ("post", "/admin/events/{id}/media"),
    ("get", "/media/{id}"),
    ("get", "/media/{id}/thumbnail.jpg"),
    ("delete", "/admin/media/{id}"),
    ("post", "/events/{id}/reserve-tickets"),
    ("delete", "/holds/{id}"),
    ("post", "/admin/events"),
    ("post", "/admin/events/{id}/publish"),
    ("post", "/admin/events/{id}/cancel"),
    ("post", "/admin/events/{id}/ticket-types"),
    ("post", "/admin/events/{id}/promo-codes"),
    ("get", "/admin/events/{id}/promo-codes"),
    ("post", "/admin/promo-codes/{id}/disable"),
    ("get", "/admin/events/{id}/templates/{channel}"),
    ("put", "/admin/events/{id}/templates/{channel}"),
    ("get", "/admin/events/{id}/notifications"),
    ("get", "/admin/events/{id}/analytics"),
    ("get", "/admin/events/{id}/cases"),
    ("post", "/admin/cases/{id}/resolve"),
    ("post", "/tickets/{id}/resale"),
    ("get", "/events/{id}/resale"),
    ("delete", "/resale/{id}"),
    ("post", "/resale/{id}/reserve"),
    ("post", "/orders"),
    ("get", "/orders/{id}"),
    ("post", "/orders/{id}/refund"),
    ("post", "/payments/webhook"),
    ("get", "/tickets/{id}"),
    ("get", "/tickets/{id}/qr.svg"),
    ("get", "/tickets/{id}/qr.png"),
    ("post", "/wallet/{token}/bind"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_only_those() {
    let api = Api::start(Store::Sqlite).await;
    let (status, doc) = api.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    expected.sort();
    assert_eq!(documented, expected);
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Each documented route exists on the server: never the router's own 404 or 405.
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{id}", "1")
            .replace("{device}", "1")
            .replace("{gate_id}", "main-1")
            .replace("{token}", "x")
            .replace("{channel}", "email")
            .replace("{provider}", "x");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = api.http.request(method.clone(), format!("{}{concrete}", api.base)).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("route not found"),
            "{method} {path}: {status} {body}"
        );
    }
}
