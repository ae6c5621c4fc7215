//! cloud-api's API suite: every scenario runs against a real server, once on
//! SQLite and once on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod harness;

mod auth;
mod cases;
mod door_pages;
mod event_stream;
mod feed;
mod fraud;
mod input;
mod inventory;
mod layers;
mod listing;
mod media;
mod notifications;
mod oidc;
mod openapi;
mod pages;
mod promotions;
mod purchase;
mod rate_limit;
mod resale;
mod seat_map;
mod venue_gates;
mod venue_setup;
mod wallet;
