//! A consumer of the event stream: hourly sales by ticket type and channel,
//! and hourly entries by gate, for the organizer's analytics.
//!
//! Every instance of the service pulls from one durable consumer, so the
//! stream's messages are shared among them. Each message's effect and the
//! record that its event id was applied commit together, so a redelivered or
//! republished event is acknowledged and changes nothing: any number of
//! instances give the totals one would.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::db::Db;
use crate::domain_events::publisher::{Publisher, Target};
use crate::domain_events::{DomainEvent, Envelope};
use crate::params;

/// The consumer's name, in `consumed_events` and as the durable's suffix.
const NAME: &str = "sales";

/// What applying one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Its effect is now in the store.
    Applied,
    /// Its event id was applied before: nothing changed.
    Duplicate,
    /// Not an event this service understands; acknowledged and logged.
    Malformed,
}

/// Applies one message's bytes; the transaction records its id with its effect.
pub async fn apply(db: &Db, payload: &[u8], now: i64) -> Result<Applied, ApiError> {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(payload) else {
        return Ok(Applied::Malformed);
    };
    let mut tx = db.begin().await?;
    let first = tx
        .execute(
            "INSERT INTO consumed_events (consumer, event_id, consumed_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![NAME, envelope.id, now],
        )
        .await?;
    if first == 0 {
        return Ok(Applied::Duplicate);
    }
    let hour = |unix: i64| unix - unix.rem_euclid(3600);
    match &envelope.event {
        DomainEvent::OrderPaid { event_id, ticket_type_id, quantity, amount_minor, channel, paid_at, .. } => {
            tx.execute(
                "INSERT INTO sales_by_hour (hour, event_id, ticket_type_id, channel, orders, tickets, amount_minor, revoked)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, 0)
                 ON CONFLICT (hour, ticket_type_id, channel) DO UPDATE SET orders = sales_by_hour.orders + 1,
                     tickets = sales_by_hour.tickets + excluded.tickets,
                     amount_minor = sales_by_hour.amount_minor + excluded.amount_minor",
                params![hour(*paid_at), *event_id, *ticket_type_id, channel.clone(), *quantity, *amount_minor],
            )
            .await?;
        }
        DomainEvent::TicketRevoked { event_id, ticket_type_id, channel, .. } => {
            tx.execute(
                "INSERT INTO sales_by_hour (hour, event_id, ticket_type_id, channel, orders, tickets, amount_minor, revoked)
                 VALUES (?1, ?2, ?3, ?4, 0, 0, 0, 1)
                 ON CONFLICT (hour, ticket_type_id, channel) DO UPDATE SET revoked = sales_by_hour.revoked + 1",
                params![hour(envelope.at), *event_id, *ticket_type_id, channel.clone()],
            )
            .await?;
        }
        DomainEvent::ScanIngested { event_id: Some(event_id), gate_id, decision, direction, wall_ms, .. }
            if direction == "entry" =>
        {
            let accepted = i64::from(decision == "accept");
            tx.execute(
                "INSERT INTO entries_by_hour (hour, event_id, gate_id, accepted, rejected) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (hour, event_id, gate_id) DO UPDATE SET accepted = entries_by_hour.accepted + excluded.accepted,
                     rejected = entries_by_hour.rejected + excluded.rejected",
                params![hour(wall_ms.div_euclid(1000)), *event_id, gate_id.clone(), accepted, 1 - accepted],
            )
            .await?;
        }
        DomainEvent::TicketReserved { .. } | DomainEvent::ScanIngested { .. } => {}
    }
    tx.commit().await?;
    Ok(Applied::Applied)
}

/// Pulls from the shared durable consumer until `shutdown`.
pub async fn run(db: Db, target: Target, shutdown: tokio_util::sync::CancellationToken) {
    let mut consumer = None;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let pulled = match &consumer {
            Some(c) => pull(&db, c).await,
            None => match durable(&target).await {
                Ok(c) => {
                    consumer = Some(c);
                    continue;
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = pulled {
            tracing::warn!(error = %e, "event consumer: will retry");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

async fn durable(target: &Target) -> Result<PullConsumer, ApiError> {
    let nats = |e: String| ApiError::Internal(format!("NATS {}: {e}", target.url));
    let client = async_nats::connect(target.url.as_str()).await.map_err(|e| nats(e.to_string()))?;
    let js = jetstream::new(client);
    let stream = js.get_or_create_stream(Publisher::stream_config(target)).await.map_err(|e| nats(e.to_string()))?;
    let name = format!("{}-{NAME}", target.stream);
    stream
        .get_or_create_consumer(
            &name,
            jetstream::consumer::pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| nats(e.to_string()))
}

/// One batch: up to 100 messages or 1 s, each applied then acknowledged.
async fn pull(db: &Db, consumer: &PullConsumer) -> Result<(), ApiError> {
    let err = |e: String| ApiError::Internal(format!("JetStream: {e}"));
    let mut messages = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .map_err(|e| err(e.to_string()))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| err(e.to_string()))?;
        if apply(db, &message.payload, crate::common::clock::now()).await? == Applied::Malformed {
            tracing::warn!(subject = %message.subject, "event consumer: not an event; acknowledged and skipped");
        }
        message.ack().await.map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// One hour of one ticket type's sales through one channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SalesHour {
    /// Start of the hour (Unix seconds).
    pub hour: i64,
    /// Ticket type.
    pub ticket_type_id: i64,
    /// Sales channel.
    pub channel: String,
    /// Orders paid.
    pub orders: i64,
    /// Tickets sold.
    pub tickets: i64,
    /// Money taken, minor units.
    pub amount_minor: i64,
    /// Tickets revoked (refunds, cancellation) in that hour.
    pub revoked: i64,
}

/// One hour of one gate's entries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct EntriesHour {
    /// Start of the hour (Unix seconds, by the gate's clock).
    pub hour: i64,
    /// Gate.
    pub gate_id: String,
    /// Entries let in.
    pub accepted: i64,
    /// Entries refused.
    pub rejected: i64,
}

/// An event's analytics as the stream's consumers have built them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Analytics {
    /// Sales by hour, ticket type and channel.
    pub sales: Vec<SalesHour>,
    /// Entries by hour and gate, from the scans venues uploaded.
    pub entries: Vec<EntriesHour>,
}

/// `GET /admin/events/{id}/analytics`.
pub async fn analytics(db: &Db, caller: &Caller, event_id: i64) -> Result<Analytics, ApiError> {
    crate::catalog::require_event_organizer(db, caller, event_id).await?;
    let sales = db
        .query(
            "SELECT hour, ticket_type_id, channel, orders, tickets, amount_minor, revoked FROM sales_by_hour
             WHERE event_id = ?1 ORDER BY hour, ticket_type_id, channel",
            params![event_id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(SalesHour {
                hour: r.int(0)?,
                ticket_type_id: r.int(1)?,
                channel: r.text(2)?,
                orders: r.int(3)?,
                tickets: r.int(4)?,
                amount_minor: r.int(5)?,
                revoked: r.int(6)?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    let entries = db
        .query(
            "SELECT hour, gate_id, accepted, rejected FROM entries_by_hour WHERE event_id = ?1 ORDER BY hour, gate_id",
            params![event_id],
        )
        .await?
        .iter()
        .map(|r| Ok(EntriesHour { hour: r.int(0)?, gate_id: r.text(1)?, accepted: r.int(2)?, rejected: r.int(3)? }))
        .collect::<Result<_, ApiError>>()?;
    Ok(Analytics { sales, entries })
}
