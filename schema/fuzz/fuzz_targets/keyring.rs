//! Any keyring file content: parsed or refused with a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(ring) = schema::Keyring::from_json(text)
    {
        // What parses re-serialises to an equal keyring.
        assert_eq!(schema::Keyring::from_json(&ring.to_json()).ok(), Some(ring));
    }
});
