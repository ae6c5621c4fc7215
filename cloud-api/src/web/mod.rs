//! The web layer: the shared state, the router that assembles every area's
//! routes under one set of middleware, the OpenAPI document, and the
//! server-rendered pages. Nothing below this layer imports it.

pub mod middleware;
pub mod openapi;
pub mod pages;
pub mod router;
pub mod state;

pub use router::router;
pub use state::AppState;
