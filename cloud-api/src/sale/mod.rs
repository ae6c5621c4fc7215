//! Selling: holds on stock that never oversell ([`inventory`]), orders and
//! their payments ([`orders`], [`payments`]), promotion codes, fraud scoring
//! and the cases it opens, and resale between customers.

pub mod cases;
pub mod fraud;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod promotions;
pub mod resale;
pub mod routes;

pub use routes::{Shop, limited_routes, routes};

use std::sync::Arc;

/// The sale's settings, read from the config once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Seconds a hold lasts.
    pub hold_seconds: i64,
    /// Seconds an order may stay unpaid.
    pub pay_seconds: i64,
    /// Highest resale price, percent of face value.
    pub resale_max_percent: i64,
    /// Fraud scoring thresholds.
    pub fraud: fraud::Rules,
    /// Whether the client's address is the last `X-Forwarded-For` entry.
    pub trust_forwarded_for: bool,
    /// Stripe's webhook secret.
    pub webhook_secret: Option<Arc<str>>,
}
