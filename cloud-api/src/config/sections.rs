//! The config's sections beyond the top-level keys: media, fraud, rate
//! limits, OpenID Connect, domain events, notifications and payments, each as
//! read (`Raw…`, unknown keys refused) and, where it needs one, its check.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMedia {
    #[serde(default = "default_media_folder")]
    pub(super) folder: PathBuf,
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
pub(super) struct RawFraud {
    pub(super) enabled: bool,
    pub(super) window_minutes: i64,
    pub(super) attempts_per_ip: i64,
    pub(super) attempts_per_account: i64,
    pub(super) attempts_per_device: i64,
    pub(super) attempts_per_payment: i64,
    pub(super) tickets_per_buyer: i64,
    pub(super) accounts_per_device: i64,
    pub(super) accounts_per_payment: i64,
    pub(super) review_score: u32,
    pub(super) block_score: u32,
}

impl Default for RawFraud {
    fn default() -> Self {
        let r = crate::sale::fraud::Rules::default();
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
pub(super) fn check_media(
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

pub(super) fn check_fraud(
    f: RawFraud,
    invalid: &dyn Fn(&'static str, String) -> ConfigError,
) -> Result<crate::sale::fraud::Rules, ConfigError> {
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
    Ok(crate::sale::fraud::Rules {
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
pub(super) struct RawRateLimit {
    #[serde(default = "per_minute")]
    pub(super) per_minute: u32,
    #[serde(default = "burst")]
    pub(super) burst: u32,
    #[serde(default)]
    pub(super) trust_forwarded_for: bool,
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
pub(super) struct RawOidc {
    pub(super) name: String,
    pub(super) issuer: String,
    pub(super) client_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    pub(super) nats_url: String,
    #[serde(default = "default_stream")]
    pub(super) stream: String,
    #[serde(default = "default_prefix")]
    pub(super) subject_prefix: String,
}

fn default_stream() -> String {
    "TIXGATE".into()
}
fn default_prefix() -> String {
    "tixgate".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifications {
    pub(super) smtp_url: Option<String>,
    #[serde(default = "default_from")]
    pub(super) from: String,
    #[serde(default = "default_public_url")]
    pub(super) public_url: String,
    #[serde(default = "thirty")]
    pub(super) first_retry_seconds: i64,
    #[serde(default = "eight")]
    pub(super) max_attempts: i64,
    pub(super) sms: Option<RawSms>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSms {
    #[serde(default = "twilio_url")]
    pub(super) base_url: String,
    pub(super) account_sid: String,
    pub(super) auth_token: String,
    pub(super) from: String,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPayments {
    #[serde(default)]
    pub(super) test_gateway: bool,
    pub(super) stripe: Option<RawStripe>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStripe {
    #[serde(default = "stripe_url")]
    pub(super) base_url: String,
    pub(super) secret_key: String,
    pub(super) webhook_secret: String,
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

pub(super) fn check_events(
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

pub(super) fn check_notifications(
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
