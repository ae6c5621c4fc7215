//! Stripe's webhook, as it arrives from outside: the `Stripe-Signature`
//! header check and the event envelope. Pure, so they are fuzzed with the
//! other parsers of outside bytes.

pub mod signature;
pub mod webhook;
