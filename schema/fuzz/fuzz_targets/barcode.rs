//! Any scanned text: parse and verify must return, never panic, and never accept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schema::{Keyring, TicketSigner, TrustedKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = schema::barcode::parse(text);
    let signer = TicketSigner::from_secret_bytes(&[1; 32]);
    let ring = Keyring::new(vec![TrustedKey { key_id: signer.key_id(), key: signer.verifying_key(), valid_from: 0, valid_until: None }]);
    // Without the private key the fuzzer cannot produce a valid signature.
    assert!(ring.verify(text, 1_800_000_000).is_err());
});
