//! The organizer's analytics: hourly sales by ticket type and channel, and
//! hourly entries by gate, built by [`sales`], a consumer of the domain events.

pub mod routes;
pub mod sales;

pub use routes::routes;
