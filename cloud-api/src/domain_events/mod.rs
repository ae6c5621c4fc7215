//! Domain events for other services: what happened in the sale and at the
//! door, published to NATS JetStream for consumers that scale out.
//!
//! The change and its event are written in one transaction (the
//! `domain_events` table is a transactional outbox), so an event exists if
//! and only if its change committed. [`publisher`] sends rows in id order with
//! `Nats-Msg-Id` set to the row's id, so a row published twice (a crash before
//! it was marked, or two instances racing) is stored once by the stream's
//! duplicate window. Delivery to consumers is at least once; the analytics area is a
//! consumer that records each event id it applied in the same transaction as
//! its effect, so a redelivery changes nothing.

pub mod publisher;

use serde::{Deserialize, Serialize};

use crate::common::error::ApiError;
use crate::db::{Tx, Value};
use crate::params;

/// Something that happened, as consumers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DomainEvent {
    /// A customer's hold took stock.
    TicketReserved {
        /// Hold id.
        hold_id: String,
        /// Event.
        event_id: i64,
        /// Ticket type.
        ticket_type_id: i64,
        /// Tickets held.
        quantity: i64,
        /// Customer.
        user_id: i64,
    },
    /// An order was paid and its tickets issued.
    OrderPaid {
        /// Order.
        order_id: i64,
        /// Event.
        event_id: i64,
        /// Ticket type.
        ticket_type_id: i64,
        /// Tickets issued.
        quantity: i64,
        /// Amount charged, minor units.
        amount_minor: i64,
        /// Currency.
        currency: String,
        /// `test` or `stripe`.
        gateway: String,
        /// Sales channel: `web`, `box_office` or `partner`.
        channel: String,
        /// When it was paid (Unix seconds).
        paid_at: i64,
    },
    /// A ticket stopped being valid (refund, cancellation).
    TicketRevoked {
        /// Ticket.
        ticket_id: i64,
        /// Its order.
        order_id: i64,
        /// Event.
        event_id: i64,
        /// Ticket type.
        ticket_type_id: i64,
        /// The sales channel of its order.
        channel: String,
    },
    /// A venue uploaded a scan.
    ScanIngested {
        /// Venue.
        venue_id: i64,
        /// The scan's id at the venue.
        scan_id: String,
        /// Gate.
        gate_id: String,
        /// Ticket, if the code was authentic.
        ticket_id: Option<i64>,
        /// Event.
        event_id: Option<i64>,
        /// `accept` or `reject`.
        decision: String,
        /// `entry` or `exit`.
        direction: String,
        /// The gate's wall clock, Unix milliseconds.
        wall_ms: i64,
    },
}

impl DomainEvent {
    /// The subject suffix, e.g. `order_paid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TicketReserved { .. } => "ticket_reserved",
            Self::OrderPaid { .. } => "order_paid",
            Self::TicketRevoked { .. } => "ticket_revoked",
            Self::ScanIngested { .. } => "scan_ingested",
        }
    }
}

/// An event as published: the outbox row's id (unique per store) and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The outbox row's id; consumers deduplicate on it.
    pub id: i64,
    /// When it happened (Unix seconds).
    pub at: i64,
    /// What happened.
    pub event: DomainEvent,
}

const INSERT: &str = "INSERT INTO domain_events (kind, payload, created_at) VALUES (?1, ?2, ?3)";

/// The outbox write of `event`, for callers that batch their statements.
pub(crate) fn write(event: &DomainEvent, now: i64) -> Result<(&'static str, Vec<Value>), ApiError> {
    let payload = serde_json::to_string(event).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((INSERT, params![event.kind(), payload, now].to_vec()))
}

/// Records `event` in the transaction of its change.
pub(crate) async fn record(tx: &mut Tx, event: &DomainEvent, now: i64) -> Result<(), ApiError> {
    let (sql, values) = write(event, now)?;
    tx.execute(sql, &values).await?;
    Ok(())
}
