//! `cloud.toml`: read once at start-up into checked settings. Unknown keys
//! are errors, and every error names the key and the file. Relative paths are
//! taken from the config file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::db::StoreLocation;

mod sections;

use sections::*;
pub use sections::{MediaConfig, NotificationsConfig, SmsConfig, StripeConfig};

/// The default configuration, printed by `cloud-api print-default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

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
    #[serde(default = "hundred")]
    resale_max_percent: i64,
    #[serde(default)]
    payments: RawPayments,
    notifications: Option<RawNotifications>,
    events: Option<RawEvents>,
    #[serde(default)]
    oidc: Vec<RawOidc>,
    #[serde(default)]
    rate_limit: RawRateLimit,
    #[serde(default)]
    fraud: RawFraud,
    #[serde(default)]
    media: RawMedia,
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

fn hundred() -> i64 {
    100
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
    /// Highest resale price, percent of face value (0: no resale).
    pub resale_max_percent: i64,
    /// Whether the test gateway is offered.
    pub test_gateway: bool,
    /// Stripe, if set up.
    pub stripe: Option<StripeConfig>,
    /// Notifications, if set up.
    pub notifications: Option<NotificationsConfig>,
    /// The event stream, if set up.
    pub events: Option<crate::domain_events::publisher::Target>,
    /// OpenID Connect providers.
    pub oidc: Vec<crate::accounts::oidc::ProviderConfig>,
    /// Per-client rate limits.
    pub rate_limit: crate::common::rate_limit::Limits,
    /// Fraud scoring thresholds.
    pub fraud: crate::sale::fraud::Rules,
    /// Where event media are kept.
    pub media: MediaConfig,
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
        let notifications = raw.notifications.map(|n| check_notifications(n, &invalid)).transpose()?;
        let events = raw.events.map(|e| check_events(e, &invalid)).transpose()?;
        let mut oidc: Vec<crate::accounts::oidc::ProviderConfig> = Vec::new();
        for p in raw.oidc {
            let name_ok = !p.name.is_empty()
                && p.name.len() <= 40
                && p.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !name_ok || oidc.iter().any(|o| o.name == p.name) {
                return Err(invalid("oidc.name", format!("{:?}: unique, lower-case letters, digits, '-'", p.name)));
            }
            if !(p.issuer.starts_with("https://") || p.issuer.starts_with("http://")) {
                return Err(invalid("oidc.issuer", "an http(s) URL".into()));
            }
            if p.client_id.is_empty() {
                return Err(invalid("oidc.client_id", "must not be empty".into()));
            }
            oidc.push(crate::accounts::oidc::ProviderConfig { name: p.name, issuer: p.issuer, client_id: p.client_id });
        }
        let r = raw.rate_limit;
        if r.per_minute > 600_000 || r.burst > 100_000 || (r.per_minute > 0 && r.burst == 0) {
            return Err(invalid("rate_limit", "per_minute 0 (off) to 600000, burst 1 to 100000".into()));
        }
        let rate_limit = crate::common::rate_limit::Limits {
            per_minute: r.per_minute,
            burst: r.burst,
            trust_forwarded_for: r.trust_forwarded_for,
        };
        let fraud = check_fraud(raw.fraud, &invalid)?;
        let media = check_media(raw.media, base, &invalid)?;
        Ok(Self {
            media,
            fraud,
            rate_limit,
            oidc,
            events,
            notifications,
            listen,
            store,
            keys: base.join(raw.keys),
            token_secret_file: base.join(raw.token_secret_file),
            hold_seconds: minutes("hold_minutes", raw.hold_minutes)?,
            pay_seconds: minutes("pay_minutes", raw.pay_minutes)?,
            login_seconds: minutes("login_minutes", raw.login_minutes)?,
            resale_max_percent: if (0..=1000).contains(&raw.resale_max_percent) {
                raw.resale_max_percent
            } else {
                return Err(invalid("resale_max_percent", "0 to 1000".into()));
            },
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
        assert_eq!(config.as_ref().map(|c| c.fraud), Some(crate::sale::fraud::Rules::default()));
        assert_eq!(config.map(|c| c.store), Some(StoreLocation::Sqlite("/etc/tixgate/cloud.db".into())));
    }

    #[test]
    fn errors_name_the_key() {
        let bad = DEFAULT_CONFIG.replace("hold_minutes = 10", "hold_minutes = 0");
        let e = Config::parse(&bad, Path::new("c.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("hold_minutes"), "{e}");
        let smtp = format!("{DEFAULT_CONFIG}\n[notifications]\nsmtp_url = \"imap://x\"\n");
        let e = Config::parse(&smtp, Path::new("c.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("notifications.smtp_url"), "{e}");
        let from = format!("{DEFAULT_CONFIG}\n[notifications]\nfrom = \"not an address\"\n");
        let e = Config::parse(&from, Path::new("c.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("notifications.from"), "{e}");
        let unknown = format!("{DEFAULT_CONFIG}\nholdminutes = 3\n");
        let e = Config::parse(&unknown, Path::new("c.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("holdminutes"), "{e}");
        let fraud = DEFAULT_CONFIG.replace("block_score = 100", "block_score = 10");
        let e = Config::parse(&fraud, Path::new("c.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("fraud.block_score"), "{e}");
        let fraud = DEFAULT_CONFIG.replace("attempts_per_ip = 60", "attempts_per_ip = 0");
        let e = Config::parse(&fraud, Path::new("c.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("fraud.attempts_per_ip"), "{e}");
    }

    #[test]
    fn a_bucket_takes_a_key_id_with_its_secret_file_or_neither() {
        let bucket = |extra: &str| {
            let text = DEFAULT_CONFIG.replace("folder = \"media\"", &format!("s3_bucket = \"m\"\n{extra}"));
            Config::parse(&text, Path::new("/etc/tixgate/cloud.toml")).map(|c| c.media).map_err(|e| e.to_string())
        };
        let with_file = bucket("s3_access_key_id = \"AK\"\ns3_secret_access_key_file = \"s3-secret\"");
        assert_eq!(
            with_file,
            Ok(MediaConfig::S3 {
                bucket: "m".into(),
                endpoint: None,
                region: None,
                credentials: Some(("AK".into(), "/etc/tixgate/s3-secret".into())),
            })
        );
        assert!(bucket("s3_access_key_id = \"AK\"").is_err_and(|e| e.contains("media.s3_access_key_id")));
        assert!(matches!(bucket(""), Ok(MediaConfig::S3 { credentials: None, .. })));
        let no_bucket = DEFAULT_CONFIG.replace("folder = \"media\"", "s3_secret_access_key_file = \"s\"");
        let e = Config::parse(&no_bucket, Path::new("c.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("only with s3_bucket"), "{e}");
    }
}
