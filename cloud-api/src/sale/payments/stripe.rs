//! Stripe's REST API: create a PaymentIntent, refund one. Form-encoded
//! requests, bearer secret key, and an `Idempotency-Key` per order so a
//! retried call never charges twice.

use std::time::Duration;

use serde::Deserialize;

use super::{Intent, Refund};
use crate::common::error::ApiError;

/// A Stripe account's API.
#[derive(Debug, Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base_url: String,
    secret_key: String,
}

#[derive(Debug, Deserialize)]
struct IntentResponse {
    id: String,
    status: String,
    client_secret: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RefundResponse {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ErrorResponse {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl StripeClient {
    /// A client for `base_url` (`https://api.stripe.com` in production).
    pub fn new(base_url: &str, secret_key: &str) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| ApiError::Internal(format!("HTTP client: {e}")))?;
        Ok(Self { http, base_url: base_url.trim_end_matches('/').to_owned(), secret_key: secret_key.to_owned() })
    }

    async fn post(&self, path: &str, idempotency_key: &str, form: &[(&str, String)]) -> Result<String, ApiError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await
            .map_err(|e| ApiError::Gateway(format!("Stripe unreachable: {e}")))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| ApiError::Gateway(format!("Stripe: {e}")))?;
        if status.is_success() {
            return Ok(body);
        }
        let error = serde_json::from_str::<ErrorResponse>(&body).ok().map(|e| e.error);
        let message = error.as_ref().and_then(|e| e.message.clone()).unwrap_or_else(|| status.to_string());
        if error.and_then(|e| e.kind).as_deref() == Some("card_error") {
            Err(ApiError::PaymentDeclined(message))
        } else {
            Err(ApiError::Gateway(format!("Stripe refused ({status}): {message}")))
        }
    }

    /// Creates a PaymentIntent for an order.
    pub async fn create_intent(&self, order_id: i64, amount_minor: i64, currency: &str) -> Result<Intent, ApiError> {
        let form = [
            ("amount", amount_minor.to_string()),
            ("currency", currency.to_lowercase()),
            ("metadata[order_id]", order_id.to_string()),
            ("automatic_payment_methods[enabled]", "true".to_owned()),
        ];
        let raw = self.post("/v1/payment_intents", &format!("tixgate-order-{order_id}"), &form).await?;
        let intent: IntentResponse =
            serde_json::from_str(&raw).map_err(|e| ApiError::Gateway(format!("Stripe answered nonsense: {e}")))?;
        Ok(Intent {
            gateway_id: intent.id,
            succeeded: intent.status == "succeeded",
            client_secret: intent.client_secret,
            raw,
        })
    }

    /// Refunds a PaymentIntent in full.
    pub async fn refund(&self, payment_intent: &str, order_id: i64) -> Result<Refund, ApiError> {
        let form = [("payment_intent", payment_intent.to_owned()), ("metadata[order_id]", order_id.to_string())];
        let raw = self.post("/v1/refunds", &format!("tixgate-refund-{order_id}"), &form).await?;
        let refund: RefundResponse =
            serde_json::from_str(&raw).map_err(|e| ApiError::Gateway(format!("Stripe answered nonsense: {e}")))?;
        Ok(Refund { gateway_id: refund.id, raw })
    }
}
