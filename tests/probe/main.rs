//! tixgate probed from outside, as a visitor with only the documented
//! interfaces would: the real `cloud-api serve` on SQLite and on PostgreSQL,
//! every operation of its `/openapi.json` with missing, forged, expired,
//! `alg=none` and wrong-role credentials, and every text field, query
//! parameter and path parameter with control characters and oversized values;
//! the real hub's embedded broker with an enrolled gate's credentials on every
//! topic pattern. A new operation or field is probed the day it is documented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

mod api;
mod broker;
mod openapi;
