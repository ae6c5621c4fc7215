//! Text messages: an interface, and an implementation of Twilio's Messages API
//! (`POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded, basic
//! auth), which other providers also speak; the base URL is configurable.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;

use super::SendError;

/// Sends one text message; answers the provider's message id.
pub trait SmsSender: Send + Sync {
    /// Sends `body` to `to` (E.164, e.g. `+4915112345678`).
    fn send<'a>(
        &'a self,
        to: &'a str,
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, SendError>> + Send + 'a>>;
}

/// A Twilio-compatible Messages API.
#[derive(Debug, Clone)]
pub struct TwilioSms {
    http: reqwest::Client,
    base_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
}

#[derive(Debug, Deserialize)]
struct Created {
    sid: String,
}

#[derive(Debug, Deserialize)]
struct Refusal {
    message: Option<String>,
    code: Option<i64>,
}

impl TwilioSms {
    /// A client for `base_url` (`https://api.twilio.com` in production).
    pub fn new(base_url: &str, account_sid: &str, auth_token: &str, from: &str) -> Result<Self, SendError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| SendError::Permanent(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            from: from.to_owned(),
        })
    }

    async fn post(&self, to: &str, body: &str) -> Result<String, SendError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url, self.account_sid);
        let form = [("To", to), ("From", self.from.as_str()), ("Body", body)];
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("SMS provider unreachable: {e}")))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| SendError::Transient(format!("SMS provider: {e}")))?;
        if status.is_success() {
            let created: Created = serde_json::from_str(&text)
                .map_err(|e| SendError::Transient(format!("SMS provider answered nonsense: {e}")))?;
            return Ok(created.sid);
        }
        let refusal = serde_json::from_str::<Refusal>(&text).ok();
        let why = match refusal {
            Some(Refusal { message: Some(m), code }) => format!("{status}: {m} (code {})", code.unwrap_or_default()),
            _ => status.to_string(),
        };
        // Throttling and the provider's own failures pass; anything else it refused will be refused again.
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::Transient(format!("SMS provider: {why}")))
        } else {
            Err(SendError::Permanent(format!("SMS provider refused: {why}")))
        }
    }
}

impl SmsSender for TwilioSms {
    fn send<'a>(
        &'a self,
        to: &'a str,
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, SendError>> + Send + 'a>> {
        Box::pin(self.post(to, body))
    }
}
