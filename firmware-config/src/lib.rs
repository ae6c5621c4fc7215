//! Device profiles for the hardware around a gate: serial barcode scanners
//! (framing, terminators, prefixes), turnstile and relay controllers (commands,
//! pulse lengths, passage feedback) and cameras (device, resolution, decode region).
//!
//! Reserved in the workspace; profiles arrive with the gate's hardware support.
