//! `cloud.toml`: read once at start-up into checked settings. Unknown keys
//! are errors, and every error names the key and the file. Relative paths are
//! taken from the config file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::db::StoreLocation;

/// The default configuration, printed by `cloud-api print-default-config`.
pub const DEFAULT_CONFIG: &str = r#"# tixgate cloud API
listen = "127.0.0.1:8080"
# A SQLite file (embedded default) or postgres://user@host/db (production).
store = "cloud.db"
# Folder holding signing-key.pem and keyring.json (`cloud-api keys generate`).
keys = "keys"
# Secret for access tokens; created (0600) on first start if missing.
token_secret_file = "token-secret"
# Minutes a hold keeps stock aside; minutes an order may stay unpaid.
hold_minutes = 10
pay_minutes = 15
# Minutes a login token lasts.
login_minutes = 60

[payments]
# The built-in test gateway: pays at once, moves no money. Switch off in production.
test_gateway = true

# [payments.stripe]
# base_url = "https://api.stripe.com"
# secret_key = "sk_live_..."
# webhook_secret = "whsec_..."
"#;

/// What can be wrong with a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key).
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {key}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    store: String,
    keys: PathBuf,
    token_secret_file: PathBuf,
    #[serde(default = "ten")]
    hold_minutes: i64,
    #[serde(default = "fifteen")]
    pay_minutes: i64,
    #[serde(default = "sixty")]
    login_minutes: i64,
    #[serde(default)]
    payments: RawPayments,
}

fn ten() -> i64 {
    10
}
fn fifteen() -> i64 {
    15
}
fn sixty() -> i64 {
    60
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayments {
    #[serde(default)]
    test_gateway: bool,
    stripe: Option<RawStripe>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStripe {
    #[serde(default = "stripe_url")]
    base_url: String,
    secret_key: String,
    webhook_secret: String,
}

fn stripe_url() -> String {
    "https://api.stripe.com".into()
}

/// Stripe settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeConfig {
    /// API base URL.
    pub base_url: String,
    /// Secret API key.
    pub secret_key: String,
    /// Webhook endpoint secret (`whsec_…`).
    pub webhook_secret: String,
}

/// Checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// The store.
    pub store: StoreLocation,
    /// Key folder.
    pub keys: PathBuf,
    /// Token secret file.
    pub token_secret_file: PathBuf,
    /// Seconds a hold lasts.
    pub hold_seconds: i64,
    /// Seconds an order may stay unpaid.
    pub pay_seconds: i64,
    /// Seconds a login token lasts.
    pub login_seconds: i64,
    /// Whether the test gateway is offered.
    pub test_gateway: bool,
    /// Stripe, if set up.
    pub stripe: Option<StripeConfig>,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// Checks config text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?;
        let invalid = |key, problem: String| ConfigError::Invalid { path: path.into(), key, problem };
        let base = path.parent().unwrap_or(Path::new("."));
        let listen = raw.listen.parse().map_err(|e| invalid("listen", format!("{e}: expected host:port")))?;
        let minutes = |key, v: i64| {
            if (1..=7 * 24 * 60).contains(&v) { Ok(v * 60) } else { Err(invalid(key, "1 to 10080 minutes".into())) }
        };
        let store = match StoreLocation::parse(&raw.store) {
            StoreLocation::Sqlite(p) => StoreLocation::Sqlite(base.join(p)),
            pg => pg,
        };
        let stripe = raw.payments.stripe.map(|s| {
            if !s.webhook_secret.starts_with("whsec_") {
                return Err(invalid("payments.stripe.webhook_secret", "must start with whsec_".into()));
            }
            if !(s.base_url.starts_with("https://") || s.base_url.starts_with("http://")) {
                return Err(invalid("payments.stripe.base_url", "an http(s) URL".into()));
            }
            Ok(StripeConfig { base_url: s.base_url, secret_key: s.secret_key, webhook_secret: s.webhook_secret })
        });
        Ok(Self {
            listen,
            store,
            keys: base.join(raw.keys),
            token_secret_file: base.join(raw.token_secret_file),
            hold_seconds: minutes("hold_minutes", raw.hold_minutes)?,
            pay_seconds: minutes("pay_minutes", raw.pay_minutes)?,
            login_seconds: minutes("login_minutes", raw.login_minutes)?,
            test_gateway: raw.payments.test_gateway,
            stripe: stripe.transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_valid() {
        let config = Config::parse(DEFAULT_CONFIG, Path::new("/etc/tixgate/cloud.toml"));
        let config = config.ok();
        assert_eq!(config.as_ref().map(|c| c.hold_seconds), Some(600));
        assert_eq!(config.map(|c| c.store), Some(StoreLocation::Sqlite("/etc/tixgate/cloud.db".into())));
    }

    #[test]
    fn errors_name_the_key() {
        let bad = DEFAULT_CONFIG.replace("hold_minutes = 10", "hold_minutes = 0");
        let e = Config::parse(&bad, Path::new("c.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("hold_minutes"), "{e}");
        let unknown = format!("{DEFAULT_CONFIG}\nholdminutes = 3\n");
        let e = Config::parse(&unknown, Path::new("c.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("holdminutes"), "{e}");
    }
}
