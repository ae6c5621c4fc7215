//! Notifications: the order confirmation with its tickets, by e-mail (SMTP)
//! and, for buyers who gave a phone number, by text message.
//!
//! The `notifications` table is an outbox. Paying an order adds its rows in
//! the payment's own transaction, one per channel under a unique key, so a
//! message is never lost to a crash and never queued twice. A deliverer claims
//! due rows with a lease (a conditional `UPDATE`, so two instances never send
//! one row at once), renders them from the event's template, sends, and
//! records the outcome: sent; retried later with a growing delay after a
//! temporary failure; or failed after a permanent one or too many attempts.
//! A crash after the relay accepted a message but before it was recorded
//! sends it again after the lease, with the same `Message-ID`.

pub mod email;
pub mod routes;
pub mod sms;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::accounts::auth::{Caller, Tokens};
use crate::common::error::ApiError;
use crate::db::{Db, Tx};
use crate::params;
use email::{Email, File, Mailer};
use sms::SmsSender;
use template::Template;

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (relay down, 4xx reply, throttled).
    #[error("{0}")]
    Transient(String),
    /// Will fail again (address refused, 5xx reply).
    #[error("{0}")]
    Permanent(String),
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail over SMTP.
    Email,
    /// Text message.
    Sms,
}

impl Channel {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    /// Parses a stored or path name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }
}

/// Seconds a claimed row is left to its deliverer before another may take it;
/// longer than the SMTP and HTTP timeouts.
const LEASE_SECONDS: i64 = 120;
/// Rows claimed per pass.
const BATCH: i64 = 20;

/// Queues the confirmation of a just-paid order, in the payment's transaction.
pub(crate) async fn order_paid(tx: &mut Tx, order_id: i64, now: i64) -> Result<(), ApiError> {
    let buyer = tx
        .query_one(
            "SELECT u.email, u.phone FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id = ?1",
            params![order_id],
        )
        .await?;
    let mut targets = vec![(Channel::Email, buyer.text(0)?)];
    if let Some(phone) = buyer.opt_text(1)? {
        targets.push((Channel::Sms, phone));
    }
    for (channel, recipient) in targets {
        tx.execute(
            "INSERT INTO notifications (dedupe_key, kind, channel, recipient, order_id, status, attempts,
                 next_attempt_at, created_at)
             VALUES (?1, 'order_paid', ?2, ?3, ?4, 'pending', 0, ?5, ?5) ON CONFLICT (dedupe_key) DO NOTHING",
            params![format!("order_paid:{order_id}:{}", channel.as_str()), channel.as_str(), recipient, order_id, now],
        )
        .await?;
    }
    Ok(())
}

/// Retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Delay after the first failure, seconds; doubled after each further one.
    pub first_delay: i64,
    /// Longest delay, seconds.
    pub max_delay: i64,
    /// Attempts before a message is marked failed.
    pub max_attempts: i64,
}

impl Retries {
    /// Seconds to wait after the `attempts`-th failed attempt.
    pub fn delay(&self, attempts: i64) -> i64 {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.first_delay.saturating_mul(1_i64 << doublings).min(self.max_delay)
    }
}

/// Sends what the outbox holds.
#[derive(Clone)]
pub struct Deliverer {
    /// The store.
    pub db: Db,
    /// E-mail relay, if configured.
    pub mailer: Option<Mailer>,
    /// SMS provider, if configured.
    pub sms: Option<Arc<dyn SmsSender>>,
    /// Makes wallet links.
    pub tokens: Arc<Tokens>,
    /// Where links in messages point, e.g. `https://tickets.example.com`.
    pub public_url: String,
    /// Retry policy.
    pub retries: Retries,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Sent.
    pub sent: usize,
    /// Failed for now, to be retried.
    pub retrying: usize,
    /// Given up on.
    pub failed: usize,
}

impl Deliverer {
    fn channels(&self) -> Vec<&'static str> {
        let mut channels = Vec::new();
        if self.mailer.is_some() {
            channels.push("'email'");
        }
        if self.sms.is_some() {
            channels.push("'sms'");
        }
        channels
    }

    /// Claims and sends the due messages of the configured channels.
    pub async fn deliver_due(&self, now: i64) -> Result<Pass, ApiError> {
        let channels = self.channels();
        let mut pass = Pass::default();
        if channels.is_empty() {
            return Ok(pass);
        }
        let due = self
            .db
            .query(
                &format!(
                    "SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_at <= ?1
                     AND channel IN ({}) ORDER BY next_attempt_at, id LIMIT ?2",
                    channels.join(", ")
                ),
                params![now, BATCH],
            )
            .await?;
        for row in due {
            let id = row.int(0)?;
            let claimed = self
                .db
                .query_opt(
                    "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = ?2
                     WHERE id = ?1 AND status = 'pending' AND next_attempt_at <= ?3
                     RETURNING channel, recipient, order_id, attempts",
                    params![id, now + LEASE_SECONDS, now],
                )
                .await?;
            let Some(claimed) = claimed else { continue };
            let channel = Channel::parse(&claimed.text(0)?).unwrap_or(Channel::Email);
            let (recipient, order_id, attempts) = (claimed.text(1)?, claimed.int(2)?, claimed.int(3)?);
            let outcome = match self.compose(id, channel, &recipient, order_id).await {
                Ok(Some(message)) => self.send(message).await,
                Ok(None) => Err(SendError::Permanent("the order is no longer paid".into())),
                // Counted as an attempt, so a message that cannot be built ends failed, not retried forever.
                Err(e) => Err(SendError::Transient(format!("composing: {e}"))),
            };
            let (status, next, error) = match &outcome {
                Ok(()) => ("sent", now, None),
                Err(SendError::Transient(e)) if attempts < self.retries.max_attempts => {
                    ("pending", now + self.retries.delay(attempts), Some(e.clone()))
                }
                Err(e) => ("failed", now, Some(e.to_string())),
            };
            match status {
                "sent" => pass.sent += 1,
                "pending" => pass.retrying += 1,
                _ => pass.failed += 1,
            }
            if let Some(e) = &error {
                tracing::warn!(notification = id, order = order_id, channel = channel.as_str(), attempts, status, error = %e, "message not sent");
            }
            self.db
                .execute(
                    "UPDATE notifications SET status = ?2, next_attempt_at = ?3, last_error = ?4,
                         sent_at = CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent_at END
                     WHERE id = ?1",
                    params![id, status, next, error, now],
                )
                .await?;
        }
        Ok(pass)
    }

    async fn send(&self, message: Outgoing) -> Result<(), SendError> {
        match message {
            Outgoing::Email(email) => match &self.mailer {
                Some(mailer) => mailer.send(&email).await,
                None => Err(SendError::Transient("no SMTP relay configured".into())),
            },
            Outgoing::Sms { to, body } => match &self.sms {
                Some(sms) => sms.send(&to, &body).await.map(|_| ()),
                None => Err(SendError::Transient("no SMS provider configured".into())),
            },
        }
    }

    /// The message for an order as it is now; `None` once it is no longer paid.
    async fn compose(
        &self,
        id: i64,
        channel: Channel,
        recipient: &str,
        order_id: i64,
    ) -> Result<Option<Outgoing>, ApiError> {
        let order = self
            .db
            .query_one(
                "SELECT o.status, o.amount_minor, o.currency, u.name, u.email, e.id, e.title, e.starts_at, v.name, v.address
                 FROM orders o JOIN users u ON u.id = o.user_id JOIN holds h ON h.id = o.hold_id
                 JOIN ticket_types t ON t.id = h.ticket_type_id JOIN events e ON e.id = t.event_id
                 JOIN venues v ON v.id = e.venue_id WHERE o.id = ?1",
                params![order_id],
            )
            .await?;
        if order.text(0)? != "paid" {
            return Ok(None);
        }
        let event_id = order.int(5)?;
        let tickets = self
            .db
            .query(
                "SELECT k.id, k.seat, k.barcode, k.rotating, t.name FROM tickets k JOIN ticket_types t ON t.id = k.ticket_type_id
                 WHERE k.order_id = ?1 AND k.status = 'valid' ORDER BY k.id",
                params![order_id],
            )
            .await?;
        let until = order.int(7)?.saturating_add(7 * 24 * 3600);
        let mut lines = Vec::new();
        let mut files = Vec::new();
        for t in &tickets {
            let (ticket_id, kind) = (t.int(0)?, t.text(4)?);
            let seat = t.opt_text(1)?.map(|s| format!(", seat {s}")).unwrap_or_default();
            if t.bool(3)? {
                let link = format!("{}/wallet/{}", self.public_url, self.tokens.wallet_token(ticket_id, until)?);
                lines.push(format!("- Ticket {ticket_id} ({kind}{seat}): open {link} on your phone"));
            } else {
                let name = format!("ticket-{ticket_id}.png");
                let png = crate::common::qr_render::png(&t.text(2)?).map_err(|e| ApiError::Internal(e.to_string()))?;
                lines.push(format!("- Ticket {ticket_id} ({kind}{seat}): QR code attached as {name}"));
                files.push(File { name, content_type: "image/png", bytes: png });
            }
        }
        let values = BTreeMap::from([
            ("name", order.text(3)?),
            ("email", order.text(4)?),
            ("event", order.text(6)?),
            ("venue", format!("{}, {}", order.text(8)?, order.text(9)?)),
            ("starts", starts_text(order.int(7)?)),
            ("order", order_id.to_string()),
            ("amount", amount_text(order.int(1)?, &order.text(2)?)),
            ("count", tickets.len().to_string()),
            ("tickets", lines.join("\n")),
        ]);
        let template = template_for(&self.db, event_id, channel).await?.0;
        let (subject, body) = template.render(&values).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(Some(match channel {
            Channel::Email => {
                let domain = self.mailer.as_ref().map_or("localhost", Mailer::domain);
                let message_id = format!("<tixgate-notification-{id}@{domain}>");
                Outgoing::Email(Email { to: recipient.to_owned(), subject, body, files, message_id })
            }
            Channel::Sms => Outgoing::Sms { to: recipient.to_owned(), body },
        }))
    }
}

enum Outgoing {
    Email(Email),
    Sms { to: String, body: String },
}

fn starts_text(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}

fn amount_text(minor: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", minor / 100, (minor % 100).abs())
}

/// An event's template for a channel, or the default; `true` if the event has its own.
async fn template_for(db: &Db, event_id: i64, channel: Channel) -> Result<(Template, bool), ApiError> {
    let row = db
        .query_opt(
            "SELECT subject, body FROM message_templates WHERE event_id = ?1 AND channel = ?2",
            params![event_id, channel.as_str()],
        )
        .await?;
    Ok(match row {
        Some(row) => (Template { subject: row.text(0)?, body: row.text(1)? }, true),
        None => (if channel == Channel::Email { template::default_email() } else { template::default_sms() }, false),
    })
}

/// `PUT /admin/events/{id}/templates/{channel}` body, and the `GET` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// Subject line (e-mail only; text messages ignore it).
    pub subject: String,
    /// Body, with `{{placeholders}}` (name, email, event, venue, starts, order, amount, count, tickets)
    /// and, if wanted, Jinja statements such as `{% if venue %}…{% endif %}`.
    pub body: String,
    /// In answers: whether this is the built-in default rather than the event's own.
    #[serde(default)]
    pub default: bool,
}

fn channel_of(text: &str) -> Result<Channel, ApiError> {
    Channel::parse(text).ok_or_else(|| ApiError::BadRequest("channel: email or sms".into()))
}

/// An event's template for a channel as its organizer sees it.
pub async fn get_template(db: &Db, caller: &Caller, event_id: i64, channel: &str) -> Result<TemplateBody, ApiError> {
    let channel = channel_of(channel)?;
    crate::catalog::require_event_organizer(db, caller, event_id).await?;
    let (t, own) = template_for(db, event_id, channel).await?;
    Ok(TemplateBody { subject: t.subject, body: t.body, default: !own })
}

/// Saves an event's template for a channel, after checking its placeholders.
pub async fn put_template(
    db: &Db,
    caller: &Caller,
    event_id: i64,
    channel: &str,
    body: &TemplateBody,
    now: i64,
) -> Result<TemplateBody, ApiError> {
    let channel = channel_of(channel)?;
    crate::catalog::require_event_organizer(db, caller, event_id).await?;
    let t = Template { subject: body.subject.clone(), body: body.body.clone() };
    t.check().map_err(|e| ApiError::BadRequest(format!("template: {e}")))?;
    db.execute(
        "INSERT INTO message_templates (event_id, channel, subject, body, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (event_id, channel) DO UPDATE SET subject = excluded.subject, body = excluded.body,
             updated_at = excluded.updated_at",
        params![event_id, channel.as_str(), t.subject.clone(), t.body.clone(), now],
    )
    .await?;
    Ok(TemplateBody { subject: t.subject, body: t.body, default: false })
}

/// One queued message as its event's organizer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Notification {
    /// Id.
    pub id: i64,
    /// Order.
    pub order_id: i64,
    /// E-mail or SMS.
    pub channel: Channel,
    /// Address or phone number.
    pub recipient: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Queued (Unix seconds).
    pub created_at: i64,
    /// Sent (Unix seconds).
    pub sent_at: Option<i64>,
}

/// The newest 500 messages of an event's orders.
pub async fn list(db: &Db, caller: &Caller, event_id: i64) -> Result<Vec<Notification>, ApiError> {
    crate::catalog::require_event_organizer(db, caller, event_id).await?;
    let rows = db
        .query(
            "SELECT n.id, n.order_id, n.channel, n.recipient, n.status, n.attempts, n.last_error, n.created_at, n.sent_at
             FROM notifications n JOIN orders o ON o.id = n.order_id JOIN holds h ON h.id = o.hold_id
             JOIN ticket_types t ON t.id = h.ticket_type_id WHERE t.event_id = ?1 ORDER BY n.id DESC LIMIT 500",
            params![event_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Notification {
                id: r.int(0)?,
                order_id: r.int(1)?,
                channel: Channel::parse(&r.text(2)?).unwrap_or(Channel::Email),
                recipient: r.text(3)?,
                status: r.text(4)?,
                attempts: r.int(5)?,
                last_error: r.opt_text(6)?,
                created_at: r.int(7)?,
                sent_at: r.opt_int(8)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_the_limit() {
        let r = Retries { first_delay: 30, max_delay: 3600, max_attempts: 8 };
        let delays: Vec<i64> = (1..=9).map(|n| r.delay(n)).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(r.delay(i64::MAX), 3600);
        assert_eq!(r.delay(0), 30);
    }

    #[test]
    fn amounts_and_times_read_as_people_write_them() {
        assert_eq!(amount_text(4500, "EUR"), "45.00 EUR");
        assert_eq!(amount_text(7, "USD"), "0.07 USD");
        assert_eq!(starts_text(1_800_000_000), "2027-01-15 08:00 UTC");
    }
}
