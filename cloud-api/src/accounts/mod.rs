//! Who is calling: users and their roles, passwords and sign-in (also through
//! OpenID Connect providers), access tokens and the sessions behind them, and
//! the [`auth::Caller`] extractor every other area checks.

pub mod auth;
pub mod oidc;
pub mod routes;
pub mod sessions;
pub mod users;

pub use routes::{Accounts, limited_routes, routes};
