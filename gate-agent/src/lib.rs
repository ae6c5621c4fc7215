//! tixgate gate agent: runs on the scanner at the door. It reads a code (camera,
//! serial scanner, keyboard), verifies it offline against the keyring, decides
//! ACCEPT or REJECT with a reason, and records the scan.
//!
//! This library holds the gate's pieces; `main.rs` is only argument parsing.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod display;
pub mod gate;
pub mod hardware;
pub mod hub_link;
pub mod post;
pub mod qr;
pub mod store;
