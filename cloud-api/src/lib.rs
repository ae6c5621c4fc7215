//! tixgate cloud API: sells tickets without overselling, issues each one an
//! Ed25519-signed barcode, and feeds venue hubs their signed ticket manifests.
//!
//! The crate is grouped by what it does, each area a folder that owns its
//! logic and its HTTP routes (with their OpenAPI annotations). An area uses
//! only areas listed before it here:
//!
//! - [`db`]: one interface to SQLite and PostgreSQL;
//! - [`common`]: clock, errors as problem documents, extractors, input guards;
//! - [`accounts`]: users, sign-in, tokens, sessions, the caller of a request;
//! - [`domain_events`]: the transactional outbox for other services;
//! - [`catalog`]: venues, events, ticket types, seat maps, media, listings;
//! - [`notifications`]: the organizer's templates and the messages they send;
//! - [`tickets`]: issued tickets, their barcodes and wallet page;
//! - [`sale`]: holds, orders, payments, promotions, fraud, cases, resale;
//! - [`venue`]: the hubs' manifests, devices and uploaded scans;
//! - [`analytics`]: a consumer of the domain events, for the organizer;
//! - [`web`]: the shared state, the router that assembles the areas, pages.
//!
//! [`server::run`] wires them; `main.rs` only parses arguments. The issuer's
//! ops tools (keys, minting, QR rendering) are in [`cli`]; [`config`] is read
//! and checked once at start-up.

pub mod accounts;
pub mod analytics;
pub mod catalog;
pub mod cli;
pub mod common;
pub mod config;
pub mod db;
pub mod domain_events;
pub mod notifications;
pub mod sale;
pub mod server;
pub mod tickets;
pub mod venue;
pub mod web;
