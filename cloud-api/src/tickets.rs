//! Tickets: issued with an Ed25519-signed barcode when an order is paid,
//! revoked when it is refunded, shown to their owner as text and QR code.
//!
//! Every issue or revocation bumps the venue's manifest version and stamps
//! the ticket with it, so `GET /venues/{id}/manifest?since=V` can send exactly
//! what changed.

use schema::{SeatLabel, TicketClaims, TicketFlags, TicketSigner, Validity};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::db::{Db, Row, Tx};
use crate::error::ApiError;
use crate::params;

/// A ticket as its holder sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Ticket {
    /// Id (in the barcode).
    pub id: i64,
    /// Its order.
    pub order_id: i64,
    /// Event.
    pub event_id: i64,
    /// Ticket type.
    pub ticket_type_id: i64,
    /// Seat, for seated types.
    pub seat: Option<String>,
    /// Name printed for the door staff.
    pub holder_name: String,
    /// `valid` or `revoked`.
    pub status: String,
    /// The barcode text (what the QR code holds).
    pub barcode: String,
    /// First accepted entry, as reported by the venue (Unix seconds).
    pub scanned_at: Option<i64>,
}

/// Bumps a venue's manifest version; returns the new one.
pub(crate) async fn bump_version(tx: &mut Tx, venue_id: i64) -> Result<i64, ApiError> {
    Ok(tx
        .query_one(
            "UPDATE venues SET manifest_version = manifest_version + 1 WHERE id = ?1 RETURNING manifest_version",
            params![venue_id],
        )
        .await?
        .int(0)?)
}

/// Issues the tickets of a just-paid order.
pub(crate) async fn issue(tx: &mut Tx, signer: &TicketSigner, order_id: i64, now: i64) -> Result<(), ApiError> {
    let row = tx
        .query_one(
            "SELECT o.user_id, u.name, h.ticket_type_id, h.quantity, h.seats, e.id, e.venue_id, e.ends_at
             FROM orders o JOIN users u ON u.id = o.user_id JOIN holds h ON h.id = o.hold_id
             JOIN ticket_types t ON t.id = h.ticket_type_id JOIN events e ON e.id = t.event_id
             WHERE o.id = ?1",
            params![order_id],
        )
        .await?;
    let (user, name, type_id, quantity) = (row.int(0)?, row.text(1)?, row.int(2)?, row.int(3)?);
    let seats: Vec<String> = serde_json::from_str(&row.text(4)?).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (event_id, venue_id) = (row.int(5)?, row.int(6)?);
    let version = bump_version(tx, venue_id).await?;
    for i in 0..usize::try_from(quantity).unwrap_or(0) {
        let seat = seats.get(i).cloned();
        let id = tx
            .query_one(
                "INSERT INTO tickets (order_id, user_id, event_id, venue_id, ticket_type_id, seat, holder_name, barcode,
                                      status, changed_version, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '', 'valid', ?8, ?9) RETURNING id",
                params![order_id, user, event_id, venue_id, type_id, seat.clone(), name.clone(), version, now],
            )
            .await?
            .int(0)?;
        let claims = TicketClaims {
            event_id: u64::try_from(event_id).unwrap_or_default(),
            ticket_id: u64::try_from(id).unwrap_or_default(),
            ticket_type_id: u32::try_from(type_id)
                .map_err(|_| ApiError::Internal("ticket type id above 2^32".into()))?,
            flags: TicketFlags::default(),
            validity: Validity::default(),
            seat: seat.as_deref().map(SeatLabel::new).transpose().map_err(|e| ApiError::Internal(e.to_string()))?,
        };
        tx.execute("UPDATE tickets SET barcode = ?1 WHERE id = ?2", params![signer.mint(&claims), id]).await?;
    }
    tx.execute(
        "UPDATE seats SET sold = 1 WHERE hold_id = (SELECT hold_id FROM orders WHERE id = ?1)",
        params![order_id],
    )
    .await?;
    Ok(())
}

/// Revokes every ticket of an order.
pub(crate) async fn revoke_order(tx: &mut Tx, order_id: i64, _now: i64) -> Result<(), ApiError> {
    let venue = tx.query_opt("SELECT venue_id FROM tickets WHERE order_id = ?1 LIMIT 1", params![order_id]).await?;
    let Some(venue) = venue else { return Ok(()) };
    let version = bump_version(tx, venue.int(0)?).await?;
    tx.execute(
        "UPDATE tickets SET status = 'revoked', changed_version = ?1 WHERE order_id = ?2 AND status = 'valid'",
        params![version, order_id],
    )
    .await?;
    Ok(())
}

const COLUMNS: &str = "id, order_id, event_id, ticket_type_id, seat, holder_name, status, barcode, scanned_at, user_id";

fn from_row(row: &Row) -> Result<Ticket, ApiError> {
    Ok(Ticket {
        id: row.int(0)?,
        order_id: row.int(1)?,
        event_id: row.int(2)?,
        ticket_type_id: row.int(3)?,
        seat: row.opt_text(4)?,
        holder_name: row.text(5)?,
        status: row.text(6)?,
        barcode: row.text(7)?,
        scanned_at: row.opt_int(8)?,
    })
}

/// `GET /users/me/tickets`.
pub async fn mine(db: &Db, caller: &Caller) -> Result<Vec<Ticket>, ApiError> {
    caller.require_person()?;
    let sql = format!("SELECT {COLUMNS} FROM tickets WHERE user_id = ?1 ORDER BY id");
    db.query(&sql, params![caller.id]).await?.iter().map(from_row).collect()
}

/// `GET /tickets/{id}`: the owner's (or an admin's) view.
pub async fn get(db: &Db, caller: &Caller, id: i64) -> Result<Ticket, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM tickets WHERE id = ?1");
    let row = db.query_opt(&sql, params![id]).await?.ok_or(ApiError::NotFound("ticket"))?;
    if !caller.is_user(row.int(9)?) && !caller.is_admin() {
        return Err(ApiError::NotFound("ticket"));
    }
    from_row(&row)
}
