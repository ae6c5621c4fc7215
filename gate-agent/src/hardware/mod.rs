//! Real hardware around a gate: serial barcode scanners and cameras in,
//! turnstile or relay controllers out. Both use the `serialport` crate and the device profiles of
//! `firmware-config`; tests drive them through pseudo-terminals.

pub mod camera;
pub mod scanner;
pub mod turnstile;

use std::time::Duration;

use firmware_config::Parity;

/// How long a blocking serial read waits before checking for shutdown.
const POLL: Duration = Duration::from_millis(100);
/// Pause before reopening a port that failed (device unplugged, not there yet).
const REOPEN_DELAY: Duration = Duration::from_secs(1);

fn parity(p: Parity) -> serialport::Parity {
    match p {
        Parity::None => serialport::Parity::None,
        Parity::Even => serialport::Parity::Even,
        Parity::Odd => serialport::Parity::Odd,
    }
}
