//! Any byte stream from a serial scanner, cut into reads anywhere: codes come out
//! bounded in length, and nothing panics.
#![no_main]

use firmware_config::Profile;
use framer::CodeFramer;
use libfuzzer_sys::fuzz_target;

#[path = "../../src/hardware/scanner/framer.rs"]
mod framer;

fuzz_target!(|data: &[u8]| {
    let Some(Ok(Profile::Scanner(profile))) = firmware_config::built_in("newland-fm430-rs232") else { return };
    let mut framer = CodeFramer::new(&profile);
    for chunk in data.chunks(data.first().map_or(1, |&b| usize::from(b % 16) + 1)) {
        for code in framer.push(chunk) {
            // Lossy UTF-8 may triple a byte; never more.
            assert!(code.len() <= profile.max_code_len * 3);
        }
    }
});
