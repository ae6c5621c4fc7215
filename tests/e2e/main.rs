//! End-to-end tests: the real binaries, in temp dirs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

mod cli_round_trip;
mod cloud_crash;
mod cloud_doors;
mod cloud_sale;
mod cloud_venue;
mod gate_camera;
mod gate_daemon;
mod gate_display;
mod gate_faults;
mod gate_import_crash;
mod gate_offline;
mod gate_serial;
mod hub_arbitration;
mod hub_boundaries;
mod hub_cloud;
mod hub_dashboard;
mod hub_embedded_acl;
mod hub_faults;
mod hub_manifests;
mod hub_mosquitto_acl;
mod hub_quic;
mod qr_decode_rate;
mod systemd_notify;
mod venue_entrances;
mod wallet_chromium;
mod web_pages;
