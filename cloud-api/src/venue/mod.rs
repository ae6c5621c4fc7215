//! The cloud's side of the venue: each hub's signed ticket manifest, the
//! devices allowed to fetch it, and the scans hubs upload.

pub mod feed;
pub mod routes;

pub use routes::{Venue, routes};
