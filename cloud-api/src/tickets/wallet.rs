//! The customer's wallet page for rotating tickets (barcode v2): a static page
//! and script that keep the holder key in the browser, and the bind call that
//! signs that key into the ticket.
//!
//! The QR drawing is the vendored `qrcode-generator` 1.4.4 (MIT, Kazuhiko
//! Arase): the page must draw a new code every few seconds with no network, and
//! the repository builds with cargo alone, so the script ships inside the binary.

use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

const PAGE: &str = include_str!("wallet/wallet.html");
const WALLET_JS: &str = include_str!("wallet/wallet.js");
const QRCODE_JS: &str = include_str!("wallet/qrcode-generator-1.4.4.js");

/// Scripts only from this origin, no framing, no referrer: the page's address
/// is the wallet link, which must not leak to anyone.
const PAGE_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

/// `GET /wallet/{token}`: the page; the script reads the token from its address.
pub async fn page() -> impl IntoResponse {
    (PAGE_HEADERS, PAGE)
}

/// `GET /wallet-assets/wallet.js`.
pub async fn wallet_js() -> impl IntoResponse {
    script(WALLET_JS)
}

/// `GET /wallet-assets/qrcode.js`.
pub async fn qrcode_js() -> impl IntoResponse {
    script(QRCODE_JS)
}

fn script(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

/// `POST /wallet/{token}/bind`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    /// The wallet's Ed25519 public key, 64 lower-case hex digits.
    pub holder_key: String,
}
