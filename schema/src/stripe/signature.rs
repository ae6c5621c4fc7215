//! `Stripe-Signature` checking, exactly as Stripe specifies: the header is
//! `t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`; the signed payload is
//! `"{t}.{raw body}"`; each `v1` is HMAC-SHA256 of it under the endpoint
//! secret; any one matching (compared in constant time) is enough; a timestamp
//! older than the tolerance is refused, so an old delivery cannot be replayed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Stripe's default tolerance, seconds.
pub const DEFAULT_TOLERANCE: i64 = 300;

/// Why a signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` element, or not a number.
    #[error("no timestamp in the Stripe-Signature header")]
    NoTimestamp,
    /// No `v1=` element.
    #[error("no v1 signature in the Stripe-Signature header")]
    NoSignature,
    /// The timestamp is too far from now.
    #[error("timestamp outside the tolerance")]
    Stale,
    /// No `v1` matches.
    #[error("no signature matches the payload")]
    Mismatch,
}

/// Checks `header` against the raw `body`.
pub fn verify(header: &str, body: &[u8], secret: &str, now: i64, tolerance: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::NoTimestamp)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    // As Stripe's own libraries: only old deliveries are refused (clocks differ).
    if now.saturating_sub(timestamp) > tolerance {
        return Err(SignatureError::Stale);
    }
    let mac = signed_payload_mac(secret, timestamp, body);
    let matches = signatures.iter().any(|hex| {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .is_ok_and(|bytes| mac.clone().verify_slice(&bytes).is_ok())
    });
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

fn signed_payload_mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header Stripe would send for `body` at `timestamp` (tests and the demo gateway).
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let tag = signed_payload_mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", data_encoding::HEXLOWER.encode(&tag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let header = sign(b"{\"id\":\"evt_1\"}", SECRET, 1_700_000_000);
        assert_eq!(verify(&header, b"{\"id\":\"evt_1\"}", SECRET, 1_700_000_100, 300), Ok(()));
    }

    #[test]
    fn any_one_of_several_v1_signatures_is_enough() {
        let good = sign(b"body", SECRET, 100);
        let tag = good.split_once("v1=").map(|(_, t)| t).unwrap_or_default();
        let header = format!("t=100,v1={},v1={tag},v0=abc", "00".repeat(32));
        assert_eq!(verify(&header, b"body", SECRET, 100, 300), Ok(()));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let header = sign(b"body", SECRET, 1000);
        assert_eq!(verify(&header, b"body!", SECRET, 1000, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(&header, b"body", "whsec_other", 1000, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(&header, b"body", SECRET, 1301, 300), Err(SignatureError::Stale));
        assert_eq!(verify(&header, b"body", SECRET, 699, 300), Ok(()), "a sender's clock ahead of ours is fine");
        assert_eq!(verify(&format!("t={},v1=00", i64::MIN), b"body", SECRET, 1000, 300), Err(SignatureError::Stale));
        assert_eq!(verify("v1=00", b"body", SECRET, 1000, 300), Err(SignatureError::NoTimestamp));
        assert_eq!(verify("t=1000,v0=00", b"body", SECRET, 1000, 300), Err(SignatureError::NoSignature));
        assert_eq!(verify("t=1000,v1=zz", b"body", SECRET, 1000, 300), Err(SignatureError::Mismatch));
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic_and_never_verify(header in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(verify(&header, &body, SECRET, 1000, 300).is_err());
        }

        #[test]
        fn any_change_to_the_body_is_caught(body in proptest::collection::vec(any::<u8>(), 1..200), flip in 0usize..200) {
            let header = sign(&body, SECRET, 500);
            let mut changed = body.clone();
            let i = flip % changed.len();
            changed[i] ^= 1;
            prop_assert_eq!(verify(&header, &changed, SECRET, 500, 300), Err(SignatureError::Mismatch));
        }
    }
}
