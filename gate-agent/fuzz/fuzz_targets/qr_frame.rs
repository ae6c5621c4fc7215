//! Any camera frame: the QR reader returns text or an error, never panics.
//! (`QrError::DecoderFault` marks a contained panic inside the decoder.)
#![no_main]

use gate_agent::qr::{LumaFrame, QrError, QrReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [w, h, pixels @ ..] = data else { return };
    let (width, height) = (u32::from(*w).max(1), u32::from(*h).max(1));
    let needed = (width * height) as usize;
    let Some(pixels) = pixels.get(..needed) else { return };
    let frame = LumaFrame::new(pixels.to_vec(), width, height).expect("sized to fit");
    let result = QrReader::default().decode(&frame);
    assert!(!matches!(result, Err(QrError::DecoderFault(_))), "decoder panicked: {result:?}");
});
