//! What every area stands on: the clock, the error type and its problem
//! documents, request extractors, input guards, ids and idempotency, keys,
//! geography, QR rendering and the rate limiter. Imports no area.

pub mod clock;
pub mod error;
pub mod extract;
pub mod geo;
pub mod idempotency;
pub mod ids;
pub mod keystore;
pub mod qr_render;
pub mod rate_limit;
pub mod text_guard;
