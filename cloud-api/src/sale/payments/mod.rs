//! Taking money: a gateway interface with a Stripe implementation
//! (PaymentIntents over Stripe's REST API) and a built-in test gateway for
//! demos, plus the webhook's signature check and event parsing.

mod stripe;

pub use schema::stripe::{signature, webhook};

use serde::{Deserialize, Serialize};

pub use stripe::StripeClient;

use crate::common::error::ApiError;

/// Which gateway an order pays through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GatewayKind {
    /// Built in: pays (or declines) at once, no money moves. For demos and tests.
    Test,
    /// Stripe PaymentIntents; paid when Stripe's webhook says so.
    Stripe,
}

impl GatewayKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Stripe => "stripe",
        }
    }
}

/// How the test gateway should answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// Pays.
    #[default]
    Succeed,
    /// Declines as a card would.
    Decline,
}

/// The gateway's answer to "take this amount".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The gateway's id of the payment.
    pub gateway_id: String,
    /// Paid already (test gateway), or waiting for the customer (Stripe).
    pub succeeded: bool,
    /// What the customer's browser needs to confirm a Stripe payment.
    pub client_secret: Option<String>,
    /// The gateway's response, kept for support and audits.
    pub raw: String,
}

impl Intent {
    /// An order with nothing to pay (fully discounted): paid without a gateway.
    pub fn free(order_id: i64) -> Self {
        let gateway_id = format!("free_{order_id}");
        let raw = serde_json::json!({"id": gateway_id, "amount": 0, "status": "succeeded"}).to_string();
        Self { gateway_id, succeeded: true, client_secret: None, raw }
    }
}

/// The gateway's answer to a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The gateway's id of the refund.
    pub gateway_id: String,
    /// The gateway's response.
    pub raw: String,
}

impl Refund {
    /// Refunding a free order: nothing moves.
    pub fn free(order_id: i64) -> Self {
        let gateway_id = format!("free_re_{order_id}");
        let raw = serde_json::json!({"id": gateway_id, "amount": 0, "status": "succeeded"}).to_string();
        Self { gateway_id, raw }
    }
}

/// The gateways this service is set up with.
#[derive(Debug, Clone, Default)]
pub struct Gateways {
    /// Stripe, if configured.
    pub stripe: Option<StripeClient>,
    /// Whether the test gateway is offered (off in production).
    pub test_enabled: bool,
}

impl Gateways {
    /// Asks `kind` to take `amount_minor` for `order_id`.
    pub async fn create_intent(
        &self,
        kind: GatewayKind,
        order_id: i64,
        amount_minor: i64,
        currency: &str,
        test_outcome: TestOutcome,
    ) -> Result<Intent, ApiError> {
        match kind {
            GatewayKind::Test => {
                if !self.test_enabled {
                    return Err(ApiError::BadRequest("payment.gateway: the test gateway is switched off".into()));
                }
                if test_outcome == TestOutcome::Decline {
                    return Err(ApiError::PaymentDeclined("the test gateway declined, as asked".into()));
                }
                let gateway_id = format!("test_pi_{order_id}");
                let raw = serde_json::json!({"id": gateway_id, "amount": amount_minor, "currency": currency, "status": "succeeded"});
                Ok(Intent { gateway_id, succeeded: true, client_secret: None, raw: raw.to_string() })
            }
            GatewayKind::Stripe => self.stripe()?.create_intent(order_id, amount_minor, currency).await,
        }
    }

    /// Refunds a payment in full.
    pub async fn refund(&self, kind: GatewayKind, payment_id: &str, order_id: i64) -> Result<Refund, ApiError> {
        match kind {
            GatewayKind::Test => Ok(Refund {
                gateway_id: format!("test_re_{order_id}"),
                raw: serde_json::json!({"payment": payment_id, "status": "succeeded"}).to_string(),
            }),
            GatewayKind::Stripe => self.stripe()?.refund(payment_id, order_id).await,
        }
    }

    fn stripe(&self) -> Result<&StripeClient, ApiError> {
        self.stripe.as_ref().ok_or(ApiError::BadRequest("payment.gateway: Stripe is not configured".into()))
    }
}
