//! Stripe webhook events, parsed into what changes an order.

use serde::Deserialize;

/// What a webhook event means for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    /// The PaymentIntent succeeded: the order is paid.
    Succeeded {
        /// PaymentIntent id.
        intent: String,
    },
    /// The PaymentIntent was cancelled: the order will not be paid.
    Canceled {
        /// PaymentIntent id.
        intent: String,
    },
    /// The charge was refunded (from Stripe's dashboard or by us).
    Refunded {
        /// PaymentIntent id.
        intent: String,
    },
    /// An event this service does not act on (recorded, answered 200).
    Ignored,
}

/// An event as Stripe delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// Stripe's event id; deliveries repeat, ids do not.
    pub id: String,
    /// Event type, e.g. `payment_intent.succeeded`.
    pub kind: String,
    /// When Stripe created it (Unix seconds).
    pub created: i64,
    /// What it means.
    pub payment: PaymentEvent,
}

#[derive(Deserialize)]
struct Raw {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    created: i64,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: RawObject,
}

#[derive(Deserialize)]
struct RawObject {
    id: Option<String>,
    payment_intent: Option<String>,
    /// On a charge: whether it is refunded in full (partial refunds send the event too).
    refunded: Option<bool>,
}

/// Why a webhook body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not a Stripe event.
    #[error("not a Stripe event: {0}")]
    Malformed(String),
    /// The event lacks the PaymentIntent it is about.
    #[error("{0} without a payment intent id")]
    NoIntent(String),
}

/// Parses a (signature-checked) body.
pub fn parse(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if raw.id.is_empty() || raw.id.len() > 255 {
        return Err(WebhookError::Malformed("id: 1 to 255 characters".into()));
    }
    let intent = match raw.kind.as_str() {
        "charge.refunded" => raw.data.object.payment_intent.clone(),
        _ => raw.data.object.id.clone(),
    };
    let need = |intent: Option<String>| intent.ok_or_else(|| WebhookError::NoIntent(raw.kind.clone()));
    let payment = match raw.kind.as_str() {
        "payment_intent.succeeded" => PaymentEvent::Succeeded { intent: need(intent)? },
        "payment_intent.canceled" => PaymentEvent::Canceled { intent: need(intent)? },
        // Only a full refund revokes tickets; a partial one is the organizer's goodwill.
        "charge.refunded" if raw.data.object.refunded == Some(true) => PaymentEvent::Refunded { intent: need(intent)? },
        _ => PaymentEvent::Ignored,
    };
    Ok(WebhookEvent { id: raw.id, kind: raw.kind, created: raw.created, payment })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn events_are_read_into_what_they_mean_for_an_order() {
        let ok = br#"{"id":"evt_1","type":"payment_intent.succeeded","created":5,"data":{"object":{"id":"pi_1","object":"payment_intent"}}}"#;
        assert_eq!(parse(ok).map(|e| e.payment), Ok(PaymentEvent::Succeeded { intent: "pi_1".into() }));
        let refund =
            br#"{"id":"evt_2","type":"charge.refunded","data":{"object":{"id":"ch_1","payment_intent":"pi_1","refunded":true}}}"#;
        assert_eq!(parse(refund).map(|e| e.payment), Ok(PaymentEvent::Refunded { intent: "pi_1".into() }));
        let partial = br#"{"id":"evt_5","type":"charge.refunded","data":{"object":{"id":"ch_1","payment_intent":"pi_1","refunded":false}}}"#;
        assert_eq!(parse(partial).map(|e| e.payment), Ok(PaymentEvent::Ignored));
        let other = br#"{"id":"evt_3","type":"customer.created","data":{"object":{"id":"cus_1"}}}"#;
        assert_eq!(parse(other).map(|e| e.payment), Ok(PaymentEvent::Ignored));
        let no_intent = br#"{"id":"evt_4","type":"charge.refunded","data":{"object":{"id":"ch_1","refunded":true}}}"#;
        assert_eq!(parse(no_intent), Err(WebhookError::NoIntent("charge.refunded".into())));
        assert!(matches!(parse(b"[1,2]"), Err(WebhookError::Malformed(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&body);
        }
    }
}
