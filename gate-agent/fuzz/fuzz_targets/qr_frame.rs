//! Any camera frame: the QR reader returns text or an error, never panics.
//! (`QrError::DecoderFault` marks a contained panic inside the decoder.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use qr::{LumaFrame, QrError, QrReader};

#[allow(dead_code)]
#[path = "../../src/qr.rs"]
mod qr;

fuzz_target!(|data: &[u8]| {
    let [w, h, pixels @ ..] = data else { return };
    let (width, height) = (u32::from(*w).max(1), u32::from(*h).max(1));
    let needed = (width * height) as usize;
    let Some(pixels) = pixels.get(..needed) else { return };
    let frame = LumaFrame::new(pixels.to_vec(), width, height).expect("sized to fit");
    let result = QrReader::default().decode(&frame);
    assert!(!matches!(result, Err(QrError::DecoderFault(_))), "decoder panicked: {result:?}");
});
