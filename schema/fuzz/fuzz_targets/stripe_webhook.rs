//! Stripe webhook deliveries: any header and body are checked and parsed
//! without panicking, and nothing unsigned verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schema::stripe::{signature, webhook};

fuzz_target!(|input: (&str, &[u8])| {
    let (header, body) = input;
    // Forging an HMAC-SHA256 by chance does not happen: every input is refused.
    assert!(signature::verify(header, body, "whsec_fuzz", 1_700_000_000, 300).is_err());
    let _ = webhook::parse(body);
});
