//! Any file handed to `gate-agent decode`: decoded or refused, never a panic.
#![no_main]

use gate_agent::qr::{LumaFrame, QrReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = LumaFrame::from_encoded(data) {
        let _ = QrReader::default().decode(&frame);
    }
});
