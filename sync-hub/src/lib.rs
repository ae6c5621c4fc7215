//! tixgate venue hub: runs on a box at the venue. Gates talk to it over MQTT or
//! QUIC; it arbitrates so one ticket enters once across gates, broadcasts
//! admissions, passes fresh ticket lists down and sends scans up to the cloud.
//!
//! `arbiter` is the pure rule book; `store` makes its changes durable (grouped
//! commits); `hub` is the loop between transports and the two.

pub mod arbiter;
