//! What is on sale: venues, events and their ticket types, and the public
//! listing customers browse.
//!
//! `venues` and `events` hold the write side; [`read_model`] the listing
//! customers browse; [`media`] the pictures and videos; [`seatmap`] the pure
//! seating-map format; [`mod@routes`] the HTTP surface.

mod events;
pub mod media;
pub mod read_model;
pub mod routes;
pub mod seatmap;
mod venues;

pub use events::{
    Event, EventFilter, EventPage, EventStatus, NewEvent, NewTicketType, TicketType, add_ticket_type, create_event,
    get_event, publish_event, require_event_organizer, ticket_types,
};
pub use routes::{Catalog, routes};
pub(crate) use venues::event_venue_map;
pub use venues::{NewVenue, Venue, create_venue, get_venue, require_venue_owner};

use crate::common::error::ApiError;

/// Most stock rows one ticket type's count is split over.
pub const MAX_SHARDS: i64 = 64;

/// Whether `text` looks like an ISO 4217 code: three upper-case letters.
pub(crate) fn is_currency(text: &str) -> bool {
    text.len() == 3 && text.chars().all(|c| c.is_ascii_uppercase())
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.len() > max {
        return Err(ApiError::BadRequest(format!("{field}: 1 to {max} characters")));
    }
    Ok(())
}
