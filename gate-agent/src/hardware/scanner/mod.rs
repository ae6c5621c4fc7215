//! Serial barcode scanners: bytes in, one code per terminator out.
//!
//! [`CodeFramer`] (in `framer`, pure) cuts the byte stream into codes; [`run`] is
//! the I/O loop around it.

mod framer;

pub use framer::CodeFramer;

use std::io::Read;

use firmware_config::ScannerProfile;
use schema::entry::Direction;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{REOPEN_DELAY, parity};
use crate::daemon::Input;

/// Reads codes from the scanner at `path` until `shutdown`; reopens the port if it
/// disappears (a USB scanner unplugged and plugged back). Blocking: run it on its
/// own thread.
pub fn run(
    path: &str,
    profile: &ScannerProfile,
    direction: Direction,
    tx: &mpsc::Sender<Input>,
    shutdown: &CancellationToken,
) {
    let mut framer = CodeFramer::new(profile);
    let mut buf = [0u8; 512];
    while !shutdown.is_cancelled() {
        let mut port = match open(path, profile) {
            Ok(port) => port,
            Err(e) => {
                eprintln!("gate-agent: scanner {path}: {e}; retrying");
                std::thread::sleep(REOPEN_DELAY);
                continue;
            }
        };
        while !shutdown.is_cancelled() {
            match port.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    for text in framer.push(buf.get(..n).unwrap_or_default()) {
                        if tx.blocking_send(Input::Scan { text, direction }).is_err() {
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => {
                    eprintln!("gate-agent: scanner {path}: {e}; reopening");
                    std::thread::sleep(REOPEN_DELAY);
                    break;
                }
            }
        }
    }
}

fn open(path: &str, p: &ScannerProfile) -> serialport::Result<Box<dyn serialport::SerialPort>> {
    serialport::new(path, p.baud)
        .data_bits(if p.data_bits == 7 { serialport::DataBits::Seven } else { serialport::DataBits::Eight })
        .parity(parity(p.parity))
        .stop_bits(if p.stop_bits == 2 { serialport::StopBits::Two } else { serialport::StopBits::One })
        .timeout(super::POLL)
        .open()
}
