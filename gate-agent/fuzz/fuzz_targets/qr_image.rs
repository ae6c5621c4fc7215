//! Any file handed to `gate-agent decode`: decoded or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qr::{LumaFrame, QrReader};

#[allow(dead_code)]
#[path = "../../src/qr.rs"]
mod qr;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = LumaFrame::from_encoded(data) {
        let _ = QrReader::default().decode(&frame);
    }
});
