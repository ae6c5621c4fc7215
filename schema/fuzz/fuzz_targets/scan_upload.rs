//! A hub's scan upload (JSON): decoded and validated without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schema::uplink::ScanUpload;

fuzz_target!(|data: &[u8]| {
    if let Ok(upload) = serde_json::from_slice::<ScanUpload>(data) {
        let _ = upload.validate();
    }
});
