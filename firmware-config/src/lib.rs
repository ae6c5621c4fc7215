//! Device profiles for the hardware around a gate: serial barcode scanners
//! (framing, terminator, prefix/suffix, AIM identifiers), turnstile and relay
//! controllers (commands, pulse length, passage feedback) and cameras
//! (resolution, frame rate, decode region, debounce).
//!
//! A profile is a TOML file with a `kind` key; unknown keys are refused and
//! errors name the key. The profiles in `profiles/` are built in, so a gate
//! config picks one by name. Pure data: opening ports is gate-agent's job.

mod catalog;
mod profile;

pub use catalog::{BUILT_IN, built_in, names};
pub use profile::{
    CameraProfile, LineEnding, Parity, Profile, ProfileError, ScannerProfile, TurnstileProfile, parse_profile,
};
