//! Any manifest file: refused or opened, never a panic. The input is also signed
//! as a body by a trusted key, so the parser behind the signature check is
//! exercised on arbitrary bytes too, and the header a hub reads unverified
//! (`ManifestHeader::peek`, `ManifestDoors::peek`) must agree with the full
//! parse whenever both succeed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schema::manifest::{Manifest, ManifestDoors, ManifestHeader};
use schema::{Keyring, TicketSigner, TrustedKey};

fuzz_target!(|data: &[u8]| {
    let signer = TicketSigner::from_secret_bytes(&[1; 32]);
    let ring = Keyring::new(vec![TrustedKey { key_id: signer.key_id(), key: signer.verifying_key(), valid_from: 0, valid_until: None }]);
    let _ = Manifest::open(data, &ring, 1_800_000_000);
    let _ = ManifestHeader::peek(data);
    let _ = ManifestDoors::peek(data);
    if let Some(signed) = schema::manifest::sign_body(&signer, data) {
        if let Ok(m) = Manifest::open(&signed, &ring, 1_800_000_000) {
            let _ = m.applicable_to(m.venue_id, None);
            let header = ManifestHeader { venue_id: m.venue_id, version: m.version, base_version: m.base_version };
            assert_eq!(ManifestHeader::peek(&signed), Some(header));
            let doors = ManifestDoors::peek(&signed).map(|d| (d.lists, d.layout));
            assert_eq!(doors, Some((m.lists, m.layout)));
        }
    }
});
