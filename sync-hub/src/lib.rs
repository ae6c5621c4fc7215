//! tixgate venue hub: runs on a box at the venue. Gates talk to it over MQTT or
//! QUIC; it arbitrates so one ticket enters once across gates, broadcasts
//! admissions, passes fresh ticket lists down and sends scans up to the cloud.
//!
//! Reserved in the workspace; the hub is built by its own issue (see ARCHITECTURE.md).
