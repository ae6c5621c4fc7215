//! The cloud's side of the venue: its entrances and areas, its gates (which
//! entrance each stands at), each event's check-in lists, each hub's signed
//! ticket manifest that carries them, the devices allowed to fetch it, and the
//! scans hubs upload.

pub mod feed;
pub mod gates;
pub mod layout;
pub mod lists;
pub mod routes;

pub use routes::{Venue, routes};
