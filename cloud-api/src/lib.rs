//! tixgate cloud API: sells tickets and issues each one an Ed25519-signed barcode.
//!
//! So far this holds the issuer's ops tools: signing keys on disk, minting
//! barcodes and rendering them as QR codes. `main.rs` only parses arguments.

pub mod batch;
pub mod cli;
pub mod keystore;
pub mod qr_render;
