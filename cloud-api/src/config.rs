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
# Highest resale price, percent of face value; 0 switches resale off.
resale_max_percent = 100

# Requests per minute (sustained) and at once, per client IP address, on the
# endpoints that create accounts, sessions, holds and orders; 0 switches it off.
# Behind one reverse proxy that appends X-Forwarded-For, trust it.
[rate_limit]
per_minute = 120
burst = 30
trust_forwarded_for = false

# Fraud scoring of reservations and orders. Attempts are counted per client
# IP, account, device (X-Device-Id) and payment fingerprint within the window.
# Rules: each velocity limit reached scores 50; more tickets of one event to
# one buyer (account, or anyone sharing its device or card) than allowed, 50;
# a device or card used by more accounts than allowed, 100. A reservation at
# the block score is refused; an order at the review score is paid but its
# tickets wait for the organizer (case list).
[fraud]
enabled = true
window_minutes = 60
attempts_per_ip = 60
attempts_per_account = 20
attempts_per_device = 20
attempts_per_payment = 10
tickets_per_buyer = 12
accounts_per_device = 3
accounts_per_payment = 3
review_score = 50
block_score = 100

[payments]
# The built-in test gateway: pays at once, moves no money. Switch off in production.
test_gateway = true

# [payments.stripe]
# base_url = "https://api.stripe.com"
# secret_key = "sk_live_..."
# webhook_secret = "whsec_..."

# Order confirmations with the tickets. Paid orders queue their messages
# whether or not a channel is set up; they are sent once it is.
# [notifications]
# smtp_url = "smtp://127.0.0.1:25"      # or smtp://host:587?tls=required, smtps://user:pass@host
# from = "Tickets <tickets@example.com>"
# public_url = "https://tickets.example.com"   # where wallet links point
# first_retry_seconds = 30              # doubled after each failure, up to an hour
# max_attempts = 8
# [notifications.sms]                   # a Twilio-compatible Messages API
# base_url = "https://api.twilio.com"
# account_sid = "AC..."
# auth_token = "..."
# from = "+15005550006"

# Event pictures and videos: a folder (relative to this file), or an
# S3-compatible bucket. The bucket's credentials are the key id below with its
# secret in a file, or else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the
# environment.
[media]
folder = "media"
# s3_bucket = "tixgate-media"
# s3_endpoint = "https://s3.eu-central-1.amazonaws.com"
# s3_region = "eu-central-1"
# s3_access_key_id = "AKIA..."
# s3_secret_access_key_file = "s3-secret"             # relative to this file

# Sign-in through OpenID Connect providers; repeat the table for each.
# [[oidc]]
# name = "keycloak"                                   # POST /auth/oidc/keycloak
# issuer = "https://id.example.com/realms/tixgate"    # as in its tokens' iss
# client_id = "tixgate-web"

# Domain events (TicketReserved, OrderPaid, TicketRevoked, ScanIngested) to NATS
# JetStream, for other services and for the analytics consumer.
# [events]
# nats_url = "nats://127.0.0.1:4222"
# stream = "TIXGATE"
# subject_prefix = "tixgate"
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMedia {
    #[serde(default = "default_media_folder")]
    folder: PathBuf,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key_file: Option<PathBuf>,
}

impl Default for RawMedia {
    fn default() -> Self {
        Self {
            folder: default_media_folder(),
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key_file: None,
        }
    }
}

fn default_media_folder() -> PathBuf {
    "media".into()
}

/// Where event media are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaConfig {
    /// A folder on local disk.
    Folder(PathBuf),
    /// An S3-compatible bucket.
    S3 {
        /// Bucket.
        bucket: String,
        /// Endpoint URL (another provider than AWS, or a local one).
        endpoint: Option<String>,
        /// Region.
        region: Option<String>,
        /// Key id and the file holding its secret; none: from the environment.
        credentials: Option<(String, PathBuf)>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFraud {
    enabled: bool,
    window_minutes: i64,
    attempts_per_ip: i64,
    attempts_per_account: i64,
    attempts_per_device: i64,
    attempts_per_payment: i64,
    tickets_per_buyer: i64,
    accounts_per_device: i64,
    accounts_per_payment: i64,
    review_score: u32,
    block_score: u32,
}

impl Default for RawFraud {
    fn default() -> Self {
        let r = crate::fraud::Rules::default();
        Self {
            enabled: r.enabled,
            window_minutes: r.window_seconds / 60,
            attempts_per_ip: r.attempts_per_ip,
            attempts_per_account: r.attempts_per_account,
            attempts_per_device: r.attempts_per_device,
            attempts_per_payment: r.attempts_per_payment,
            tickets_per_buyer: r.tickets_per_buyer,
            accounts_per_device: r.accounts_per_device,
            accounts_per_payment: r.accounts_per_payment,
            review_score: r.review_score,
            block_score: r.block_score,
        }
    }
}

/// The media store: a folder, or a bucket with its optional credentials.
fn check_media(
    raw: RawMedia,
    base: &Path,
    invalid: &dyn Fn(&'static str, String) -> ConfigError,
) -> Result<MediaConfig, ConfigError> {
    let Some(bucket) = raw.s3_bucket else {
        if raw.s3_access_key_id.is_some() || raw.s3_secret_access_key_file.is_some() {
            return Err(invalid("media.s3_access_key_id", "only with s3_bucket".into()));
        }
        return Ok(MediaConfig::Folder(base.join(raw.folder)));
    };
    if bucket.is_empty() {
        return Err(invalid("media.s3_bucket", "must not be empty".into()));
    }
    let endpoint = raw.s3_endpoint;
    if endpoint.as_ref().is_some_and(|e| !(e.starts_with("https://") || e.starts_with("http://"))) {
        return Err(invalid("media.s3_endpoint", "an http(s) URL".into()));
    }
    let credentials = match (raw.s3_access_key_id, raw.s3_secret_access_key_file) {
        (Some(id), Some(file)) if !id.is_empty() => Some((id, base.join(file))),
        (None, None) => None,
        _ => {
            return Err(invalid("media.s3_access_key_id", "give it with s3_secret_access_key_file, or neither".into()));
        }
    };
    Ok(MediaConfig::S3 { bucket, endpoint, region: raw.s3_region, credentials })
}

fn check_fraud(
    f: RawFraud,
    invalid: &dyn Fn(&'static str, String) -> ConfigError,
) -> Result<crate::fraud::Rules, ConfigError> {
    if !(1..=7 * 24 * 60).contains(&f.window_minutes) {
        return Err(invalid("fraud.window_minutes", "1 to 10080".into()));
    }
    let limits = [
        ("fraud.attempts_per_ip", f.attempts_per_ip),
        ("fraud.attempts_per_account", f.attempts_per_account),
        ("fraud.attempts_per_device", f.attempts_per_device),
        ("fraud.attempts_per_payment", f.attempts_per_payment),
        ("fraud.tickets_per_buyer", f.tickets_per_buyer),
        ("fraud.accounts_per_device", f.accounts_per_device),
        ("fraud.accounts_per_payment", f.accounts_per_payment),
    ];
    for (key, value) in limits {
        if !(1..=1_000_000).contains(&value) {
            return Err(invalid(key, "1 to 1000000".into()));
        }
    }
    if f.review_score == 0 || f.block_score < f.review_score {
        return Err(invalid("fraud.block_score", "review_score at least 1, block_score at least review_score".into()));
    }
    Ok(crate::fraud::Rules {
        enabled: f.enabled,
        window_seconds: f.window_minutes * 60,
        attempts_per_ip: f.attempts_per_ip,
        attempts_per_account: f.attempts_per_account,
        attempts_per_device: f.attempts_per_device,
        attempts_per_payment: f.attempts_per_payment,
        tickets_per_buyer: f.tickets_per_buyer,
        accounts_per_device: f.accounts_per_device,
        accounts_per_payment: f.accounts_per_payment,
        review_score: f.review_score,
        block_score: f.block_score,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    #[serde(default = "per_minute")]
    per_minute: u32,
    #[serde(default = "burst")]
    burst: u32,
    #[serde(default)]
    trust_forwarded_for: bool,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self { per_minute: per_minute(), burst: burst(), trust_forwarded_for: false }
    }
}

fn per_minute() -> u32 {
    120
}
fn burst() -> u32 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    name: String,
    issuer: String,
    client_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    nats_url: String,
    #[serde(default = "default_stream")]
    stream: String,
    #[serde(default = "default_prefix")]
    subject_prefix: String,
}

fn default_stream() -> String {
    "TIXGATE".into()
}
fn default_prefix() -> String {
    "tixgate".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    smtp_url: Option<String>,
    #[serde(default = "default_from")]
    from: String,
    #[serde(default = "default_public_url")]
    public_url: String,
    #[serde(default = "thirty")]
    first_retry_seconds: i64,
    #[serde(default = "eight")]
    max_attempts: i64,
    sms: Option<RawSms>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    #[serde(default = "twilio_url")]
    base_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
}

fn default_from() -> String {
    "tixgate <tickets@localhost>".into()
}
fn default_public_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn thirty() -> i64 {
    30
}
fn eight() -> i64 {
    8
}
fn twilio_url() -> String {
    "https://api.twilio.com".into()
}

/// How order confirmations go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationsConfig {
    /// SMTP relay URL, if e-mail is sent.
    pub smtp_url: Option<String>,
    /// Sender mailbox.
    pub from: String,
    /// Base of links in messages, without a trailing slash.
    pub public_url: String,
    /// Seconds before the first retry.
    pub first_retry_seconds: i64,
    /// Attempts before giving up.
    pub max_attempts: i64,
    /// The SMS provider, if text messages are sent.
    pub sms: Option<SmsConfig>,
}

/// A Twilio-compatible SMS provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsConfig {
    /// API base URL.
    pub base_url: String,
    /// Account id.
    pub account_sid: String,
    /// Auth token.
    pub auth_token: String,
    /// Sender number or name.
    pub from: String,
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
    pub oidc: Vec<crate::oidc::ProviderConfig>,
    /// Per-client rate limits.
    pub rate_limit: crate::rate_limit::Limits,
    /// Fraud scoring thresholds.
    pub fraud: crate::fraud::Rules,
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
        let mut oidc: Vec<crate::oidc::ProviderConfig> = Vec::new();
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
            oidc.push(crate::oidc::ProviderConfig { name: p.name, issuer: p.issuer, client_id: p.client_id });
        }
        let r = raw.rate_limit;
        if r.per_minute > 600_000 || r.burst > 100_000 || (r.per_minute > 0 && r.burst == 0) {
            return Err(invalid("rate_limit", "per_minute 0 (off) to 600000, burst 1 to 100000".into()));
        }
        let rate_limit = crate::rate_limit::Limits {
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

fn check_events(
    e: RawEvents,
    invalid: &dyn Fn(&'static str, String) -> ConfigError,
) -> Result<crate::domain_events::publisher::Target, ConfigError> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if e.stream.is_empty() || e.stream.len() > 64 || !e.stream.chars().all(name_char) {
        return Err(invalid("events.stream", "1 to 64 letters, digits, '_' or '-'".into()));
    }
    if e.subject_prefix.split('.').any(|token| token.is_empty() || !token.chars().all(name_char)) {
        return Err(invalid("events.subject_prefix", "dot-separated tokens of letters, digits, '_' or '-'".into()));
    }
    if e.nats_url.trim().is_empty() {
        return Err(invalid("events.nats_url", "e.g. nats://127.0.0.1:4222".into()));
    }
    Ok(crate::domain_events::publisher::Target { url: e.nats_url, stream: e.stream, subject_prefix: e.subject_prefix })
}

fn check_notifications(
    n: RawNotifications,
    invalid: &dyn Fn(&'static str, String) -> ConfigError,
) -> Result<NotificationsConfig, ConfigError> {
    if let Some(url) = &n.smtp_url {
        crate::notifications::email::Mailer::check_url(url).map_err(|e| invalid("notifications.smtp_url", e))?;
    }
    if n.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(invalid("notifications.from", "a mailbox such as \"Tickets <tickets@example.com>\"".into()));
    }
    let http = |url: &str| url.starts_with("https://") || url.starts_with("http://");
    if !http(&n.public_url) {
        return Err(invalid("notifications.public_url", "an http(s) URL".into()));
    }
    if !(1..=3600).contains(&n.first_retry_seconds) {
        return Err(invalid("notifications.first_retry_seconds", "1 to 3600".into()));
    }
    if !(1..=50).contains(&n.max_attempts) {
        return Err(invalid("notifications.max_attempts", "1 to 50".into()));
    }
    let sms = match n.sms {
        Some(s) if !http(&s.base_url) => return Err(invalid("notifications.sms.base_url", "an http(s) URL".into())),
        Some(s) if s.account_sid.is_empty() || s.auth_token.is_empty() || s.from.is_empty() => {
            return Err(invalid("notifications.sms", "account_sid, auth_token and from must not be empty".into()));
        }
        Some(s) => {
            Some(SmsConfig { base_url: s.base_url, account_sid: s.account_sid, auth_token: s.auth_token, from: s.from })
        }
        None => None,
    };
    Ok(NotificationsConfig {
        smtp_url: n.smtp_url,
        from: n.from,
        public_url: n.public_url.trim_end_matches('/').to_owned(),
        first_retry_seconds: n.first_retry_seconds,
        max_attempts: n.max_attempts,
        sms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_valid() {
        let config = Config::parse(DEFAULT_CONFIG, Path::new("/etc/tixgate/cloud.toml"));
        let config = config.ok();
        assert_eq!(config.as_ref().map(|c| c.hold_seconds), Some(600));
        assert_eq!(config.as_ref().map(|c| c.fraud), Some(crate::fraud::Rules::default()));
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
