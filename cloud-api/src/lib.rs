//! tixgate cloud API: sells tickets without overselling, issues each one an
//! Ed25519-signed barcode, and feeds venue hubs their signed ticket manifests.
//!
//! Layers: [`http`] (routes, extractors, problem documents) over business
//! modules ([`users`], [`catalog`], [`inventory`], [`fraud`], [`orders`], [`promotions`], [`payments`],
//! [`tickets`], [`notifications`], [`venue_feed`], [`wallet`]) over [`db`], one interface to SQLite and
//! PostgreSQL. [`server::run`] wires them; `main.rs` only parses arguments.
//! The issuer's ops tools (keys, minting, QR rendering) are in [`cli`].

pub mod auth;
pub mod batch;
pub mod cases;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain_events;
pub mod error;
pub mod fraud;
pub mod geo;
pub mod http;
pub mod idempotency;
pub mod inventory;
pub mod keystore;
pub mod media;
pub mod notifications;
pub mod oidc;
pub mod orders;
pub mod pages;
pub mod payments;
pub mod promotions;
pub mod qr_render;
pub mod rate_limit;
pub mod read_model;
pub mod resale;
pub mod seatmap;
pub mod server;
pub mod sessions;
pub mod text_guard;
pub mod tickets;
pub mod users;
pub mod venue_feed;
pub mod wallet;
