//! Per-client rate limits on the public endpoints that create accounts,
//! sessions, holds and orders: tower_governor (governor's GCRA) keyed by the
//! client's IP address. A refused request gets a 429 problem document with
//! `Retry-After`.
//!
//! Behind a reverse proxy every peer is the proxy, so `trust_forwarded_for`
//! takes the last `X-Forwarded-For` address instead: the one our proxy added.
//! Only switch it on behind exactly one proxy that appends it, or any client
//! could pick its own key.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use governor::clock::QuantaInstant;
use governor::middleware::NoOpMiddleware;
use tower_governor::GovernorError;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;

use crate::common::error::ApiError;

/// Limits as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute per client, sustained.
    pub per_minute: u32,
    /// Requests a client may send at once before the rate applies.
    pub burst: u32,
    /// Key on the last `X-Forwarded-For` address instead of the peer.
    pub trust_forwarded_for: bool,
}

/// The client a request counts against.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp {
    trust_forwarded_for: bool,
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| *peer);
        client_ip(req.headers(), peer, self.trust_forwarded_for).ok_or(GovernorError::UnableToExtractKey)
    }
}

/// The client's address: the peer, or with `trust_forwarded_for` the last
/// `X-Forwarded-For` entry when it parses. Fraud scoring keys on the same.
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        // Strictly the last entry: skipping one that does not parse would
        // let an address the client wrote earlier in the list count instead.
        let last = headers.get_all("x-forwarded-for").iter().next_back();
        let forwarded = last.and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next()).and_then(|entry| {
            let entry = entry.trim();
            entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        });
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
}

/// A shared limiter configuration.
pub type Limiter = Arc<GovernorConfig<ClientIp, NoOpMiddleware<QuantaInstant>>>;

/// The limiter for `limits`; `None` when switched off (`per_minute = 0`).
pub fn limiter(limits: Limits) -> Option<Limiter> {
    if limits.per_minute == 0 {
        return None;
    }
    let period = Duration::from_micros(60_000_000 / u64::from(limits.per_minute));
    GovernorConfigBuilder::default()
        .key_extractor(ClientIp { trust_forwarded_for: limits.trust_forwarded_for })
        .period(period)
        .burst_size(limits.burst.max(1))
        .finish()
        .map(Arc::new)
}

/// The answer to a refused request: a problem document, with `Retry-After`.
pub fn refusal(error: GovernorError) -> Response {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            let wait = wait_time.max(1);
            let mut response = ApiError::TooManyRequests(wait).into_response();
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        GovernorError::UnableToExtractKey => ApiError::Internal("no client address".into()).into_response(),
        GovernorError::Other { msg, .. } => ApiError::Internal(msg.unwrap_or_default()).into_response(),
    }
}
