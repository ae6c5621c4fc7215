//! Shared formats of tixgate: the signed ticket barcodes (v1, v2), signing keys and
//! keyrings, and the reason codes every part reports.
//!
//! This crate is the pure core: no sockets, files, clocks or async runtime. Callers
//! pass `now` and bytes in and get values or typed errors out. CI fails if its
//! dependency tree ever grows tokio, rusqlite, axum, rumqttc or quinn.

pub mod barcode;
pub mod entry;
pub mod hlc;
pub mod holder;
pub mod keys;
pub mod manifest;
pub mod reason;
pub mod stripe;
pub mod sync;
pub mod uplink;
pub mod verify;

pub use barcode::{BarcodeError, SeatLabel, TicketClaims, TicketFlags, UnixSeconds, Validity};
pub use keys::{HolderSigner, KeyError, KeyId, Keyring, TicketSigner, TrustedKey};
pub use reason::Reason;
pub use verify::{
    Decision, DecisionLine, Freshness, TicketSummary, VerifiedTicket, VerifyError, check_event_and_time, check_offline,
};
