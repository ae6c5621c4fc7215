//! tixgate venue hub: runs on a box at the venue. Gates talk to it over MQTT (or
//! QUIC); it arbitrates so one ticket enters once across gates, broadcasts
//! admissions, passes fresh ticket lists down and sends scans up to the cloud.
//!
//! `arbiter` is the pure rule book; `store` makes its changes durable in grouped
//! commits; `core` is the single writer between transports and the two, and
//! `fanout` broadcasts what it admitted; `mqtt`
//! embeds a broker or connects to one; `quic` takes gates directly, with mutual
//! TLS from the venue CA (`ca`); `manifests` holds the ticket lists gates
//! download and `manifest_watch` keeps it fresh; `cloud` (with `uplink_store`) sends scans up and pulls ticket lists
//! down; `daemon` wires them; `status` is what the operator sees (`venue_view`
//! turns its figures into areas and entrances) and `http` serves it
//! (dashboard, metrics, health).

pub mod arbiter;
pub mod broker_files;
pub mod ca;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod core;
pub mod daemon;
pub mod enroll;
pub mod fanout;
pub mod http;
pub mod manifest_watch;
pub mod manifests;
pub mod mqtt;
pub mod quic;
pub mod status;
pub mod store;
pub mod uplink_store;
pub mod venue_view;
