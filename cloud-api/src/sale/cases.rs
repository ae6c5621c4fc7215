//! The organizer's case list: what the venues' uploads show that needs a
//! person's judgement. A ticket admitted at two gates while they could not
//! reach each other (a gate conflict) and a revoked code shown again and again
//! each open one case per ticket; more evidence adds to it, and reopens it if
//! it was dismissed. The organizer resolves a case as confirmed or dismissed,
//! with a note, and may revoke the ticket, which the next manifest carries.
//!
//! Orders that fraud scoring held (`order_review`) land here too: dismissing
//! the case approves the order and issues its tickets; confirming it refunds
//! the order.

use serde::{Deserialize, Serialize};

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::db::{Db, Row, Tx};
use crate::domain_events::{self, DomainEvent};
use crate::{params, sale::orders};

/// Scans of one revoked code before it becomes a case.
pub const REVOKED_SCANS_FOR_A_CASE: i64 = 2;

/// A case as its organizer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Case {
    /// Id.
    pub id: i64,
    /// `gate_conflict`, `revoked_code_scans` or `order_review`.
    pub kind: String,
    /// Event.
    pub event_id: Option<i64>,
    /// Venue that reported it.
    pub venue_id: Option<i64>,
    /// Ticket.
    pub ticket_id: Option<i64>,
    /// Order, for `order_review`.
    pub order_id: Option<i64>,
    /// What was seen, for people.
    pub detail: String,
    /// How often it was seen.
    pub occurrences: i64,
    /// `open`, `confirmed` or `dismissed`.
    pub status: String,
    /// Opened (Unix seconds).
    pub created_at: i64,
    /// Last evidence (Unix seconds).
    pub updated_at: i64,
    /// The organizer's note.
    pub resolution_note: Option<String>,
}

/// `POST /admin/cases/{id}/resolve` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// `confirmed` (it was fraud; a held order is refunded) or `dismissed`
    /// (it was not; a held order's tickets are issued).
    pub outcome: Outcome,
    /// Why, for whoever reads the case later.
    #[serde(default)]
    pub note: String,
    /// Also revoke the ticket: gates refuse it once their next manifest arrives.
    #[serde(default)]
    pub revoke_ticket: bool,
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was fraud.
    Confirmed,
    /// It was not.
    Dismissed,
}

/// Adds evidence to the ticket's case of `kind`, opening it if needed.
async fn add_evidence(
    tx: &mut Tx,
    kind: &str,
    venue_id: i64,
    ticket_id: i64,
    detail: &str,
    now: i64,
) -> Result<(), ApiError> {
    // Only tickets of the reporting venue: a venue's uploads say nothing of others' tickets.
    let event = tx
        .query_opt("SELECT event_id FROM tickets WHERE id = ?1 AND venue_id = ?2", params![ticket_id, venue_id])
        .await?;
    let Some(event_id) = event.map(|r| r.int(0)).transpose()? else { return Ok(()) };
    tx.execute(
        "INSERT INTO fraud_cases (dedupe_key, kind, event_id, venue_id, ticket_id, detail, occurrences, status,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 'open', ?7, ?7)
         ON CONFLICT (dedupe_key) DO UPDATE SET occurrences = fraud_cases.occurrences + 1, detail = excluded.detail,
             updated_at = excluded.updated_at,
             status = CASE WHEN fraud_cases.status = 'dismissed' THEN 'open' ELSE fraud_cases.status END",
        params![format!("{kind}:{venue_id}:{ticket_id}"), kind, event_id, venue_id, ticket_id, detail, now],
    )
    .await?;
    Ok(())
}

/// A conflict a hub found: one ticket admitted at two gates.
pub(crate) async fn gate_conflict(
    tx: &mut Tx,
    venue_id: i64,
    ticket_id: i64,
    gates: (&str, &str),
    now: i64,
) -> Result<(), ApiError> {
    let detail = format!("admitted at {} and again at {} while the gates were apart", gates.0, gates.1);
    add_evidence(tx, "gate_conflict", venue_id, ticket_id, &detail, now).await
}

/// A paid order that fraud scoring held: one case per order.
pub(crate) async fn order_held(tx: &mut Tx, order_id: i64, reasons: &str, now: i64) -> Result<(), ApiError> {
    let order = tx
        .query_one(
            "SELECT t.event_id, e.venue_id, h.quantity FROM orders o JOIN holds h ON h.id = o.hold_id
             JOIN ticket_types t ON t.id = h.ticket_type_id JOIN events e ON e.id = t.event_id WHERE o.id = ?1",
            params![order_id],
        )
        .await?;
    let detail = format!("order of {} tickets held for review: {reasons}", order.int(2)?);
    tx.execute(
        "INSERT INTO fraud_cases (dedupe_key, kind, event_id, venue_id, order_id, detail, occurrences, status,
             created_at, updated_at)
         VALUES (?1, 'order_review', ?2, ?3, ?4, ?5, 1, 'open', ?6, ?6) ON CONFLICT (dedupe_key) DO NOTHING",
        params![format!("order_review:{order_id}"), order.int(0)?, order.opt_int(1)?, order_id, detail, now],
    )
    .await?;
    Ok(())
}

/// A scan refused as revoked: a case once the code has been shown often enough.
pub(crate) async fn revoked_scan(tx: &mut Tx, venue_id: i64, ticket_id: i64, now: i64) -> Result<(), ApiError> {
    let shown = tx
        .query_one(
            "SELECT COUNT(*) FROM scans WHERE venue_id = ?1 AND ticket_id = ?2 AND reason = 'revoked'",
            params![venue_id, ticket_id],
        )
        .await?
        .int(0)?;
    if shown < REVOKED_SCANS_FOR_A_CASE {
        return Ok(());
    }
    let detail = format!("a revoked code was shown {shown} times");
    add_evidence(tx, "revoked_code_scans", venue_id, ticket_id, &detail, now).await
}

const COLUMNS: &str = "id, kind, event_id, venue_id, ticket_id, detail, occurrences, status, created_at, updated_at,
    resolution_note, order_id";

fn from_row(r: &Row) -> Result<Case, ApiError> {
    Ok(Case {
        id: r.int(0)?,
        kind: r.text(1)?,
        event_id: r.opt_int(2)?,
        venue_id: r.opt_int(3)?,
        ticket_id: r.opt_int(4)?,
        detail: r.text(5)?,
        occurrences: r.int(6)?,
        status: r.text(7)?,
        created_at: r.int(8)?,
        updated_at: r.int(9)?,
        resolution_note: r.opt_text(10)?,
        order_id: r.opt_int(11)?,
    })
}

/// An event's cases, open ones first, newest evidence first.
pub async fn list(db: &Db, caller: &Caller, event_id: i64) -> Result<Vec<Case>, ApiError> {
    crate::catalog::require_event_organizer(db, caller, event_id).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM fraud_cases WHERE event_id = ?1
         ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, updated_at DESC, id DESC LIMIT 500"
    );
    db.query(&sql, params![event_id]).await?.iter().map(from_row).collect()
}

/// Resolves a case of an event the caller organises.
pub async fn resolve(ctx: orders::Ctx<'_>, caller: &Caller, case_id: i64, r: &Resolution) -> Result<Case, ApiError> {
    let (db, now) = (ctx.db, ctx.now);
    if r.note.len() > 2000 {
        return Err(ApiError::BadRequest("note: at most 2000 bytes".into()));
    }
    let sql = format!("SELECT {COLUMNS} FROM fraud_cases WHERE id = ?1");
    let case = from_row(&db.query_opt(&sql, params![case_id]).await?.ok_or(ApiError::NotFound("case"))?)?;
    let event = case.event_id.ok_or(ApiError::NotFound("case"))?;
    crate::catalog::require_event_organizer(db, caller, event).await?;
    if r.revoke_ticket && r.outcome != Outcome::Confirmed {
        return Err(ApiError::BadRequest("revoke_ticket: only with a confirmed case".into()));
    }
    let outcome = match r.outcome {
        Outcome::Confirmed => "confirmed",
        Outcome::Dismissed => "dismissed",
    };
    let mut tx = db.begin().await?;
    let changed = tx
        .execute(
            "UPDATE fraud_cases SET status = ?2, resolution_note = ?3, resolved_at = ?4, resolved_by = ?5
             WHERE id = ?1 AND status = 'open'",
            params![case_id, outcome, r.note.clone(), now, caller.id],
        )
        .await?;
    if changed == 0 {
        return Err(ApiError::Conflict(format!("the case is {} already", case.status)));
    }
    if r.revoke_ticket
        && let Some(ticket) = case.ticket_id
    {
        revoke_ticket(&mut tx, ticket, now).await?;
    }
    let held_order = case.order_id.filter(|_| case.kind == "order_review");
    if let Some(order) = held_order {
        review_order(&mut tx, ctx.signer, order, r.outcome, now).await?;
    }
    tx.commit().await?;
    if let Some(order) = held_order
        && r.outcome == Outcome::Confirmed
        && let Err(e) = orders::refund_unchecked(ctx, order).await
    {
        // The case stays confirmed and the order rejected; the organizer can refund it again.
        tracing::warn!(order, error = %e, "refund of a rejected order failed");
        return Err(e);
    }
    let sql = format!("SELECT {COLUMNS} FROM fraud_cases WHERE id = ?1");
    from_row(&db.query_one(&sql, params![case_id]).await?)
}

/// Approves (issues the tickets of) or rejects a held order. An order
/// refunded or cancelled meanwhile keeps its state.
async fn review_order(
    tx: &mut Tx,
    signer: &schema::TicketSigner,
    order_id: i64,
    outcome: Outcome,
    now: i64,
) -> Result<(), ApiError> {
    let verdict = match outcome {
        Outcome::Dismissed => "approved",
        Outcome::Confirmed => "rejected",
    };
    let changed = tx
        .execute(
            "UPDATE orders SET review_status = ?2 WHERE id = ?1 AND review_status = 'held'",
            params![order_id, verdict],
        )
        .await?;
    if changed == 1 && outcome == Outcome::Dismissed {
        let status = tx.query_one("SELECT status FROM orders WHERE id = ?1", params![order_id]).await?.text(0)?;
        if status == "paid" {
            orders::deliver(tx, signer, order_id, now).await?;
        }
    }
    Ok(())
}

async fn revoke_ticket(tx: &mut Tx, ticket_id: i64, now: i64) -> Result<(), ApiError> {
    let row = tx
        .query_opt(
            "SELECT k.venue_id, k.order_id, k.event_id, k.ticket_type_id, o.channel FROM tickets k
             JOIN orders o ON o.id = k.order_id WHERE k.id = ?1 AND k.status = 'valid'",
            params![ticket_id],
        )
        .await?;
    let Some(row) = row else { return Ok(()) };
    let version = crate::tickets::bump_version(tx, row.int(0)?).await?;
    tx.execute(
        "UPDATE tickets SET status = 'revoked', changed_version = ?2 WHERE id = ?1",
        params![ticket_id, version],
    )
    .await?;
    tx.execute(
        "UPDATE resale_listings SET status = 'withdrawn' WHERE ticket_id = ?1 AND status = 'listed'",
        params![ticket_id],
    )
    .await?;
    let event = DomainEvent::TicketRevoked {
        ticket_id,
        order_id: row.int(1)?,
        event_id: row.int(2)?,
        ticket_type_id: row.int(3)?,
        channel: row.text(4)?,
    };
    domain_events::record(tx, &event, now).await
}
