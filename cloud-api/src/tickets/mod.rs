//! Tickets: issued with an Ed25519-signed barcode when an order is paid,
//! revoked when it is refunded, shown to their owner as text and QR code.
//! A rotating ticket (barcode v2) gets its signed static part only when the
//! holder's wallet binds its public key; the wallet then shows a fresh code
//! every few seconds, which gates refuse once stale.
//!
//! Every issue or revocation bumps the venue's manifest version and stamps
//! the ticket with it, so `GET /venues/{id}/manifest?since=V` can send exactly
//! what changed.

pub mod batch;
pub mod routes;
pub mod wallet;

pub use routes::{Tickets, limited_routes, routes};

use schema::{SeatLabel, TicketClaims, TicketFlags, TicketSigner, Validity};
use serde::{Deserialize, Serialize};

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::db::{Db, Row, Tx};
use crate::domain_events::{self, DomainEvent};
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
    /// The barcode text (what the QR code holds); empty for a rotating ticket,
    /// which only its wallet shows.
    pub barcode: String,
    /// Shown as a rotating code from the holder's wallet (barcode v2).
    pub rotating: bool,
    /// For a rotating ticket: the wallet page's path, a link only its owner gets.
    pub wallet: Option<String>,
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
            "SELECT o.user_id, u.name, h.ticket_type_id, h.quantity, h.seats, e.id, e.venue_id, e.ends_at, t.rotating
             FROM orders o JOIN users u ON u.id = o.user_id JOIN holds h ON h.id = o.hold_id
             JOIN ticket_types t ON t.id = h.ticket_type_id JOIN events e ON e.id = t.event_id
             WHERE o.id = ?1",
            params![order_id],
        )
        .await?;
    let (user, name, type_id, quantity) = (row.int(0)?, row.text(1)?, row.int(2)?, row.int(3)?);
    let seats: Vec<String> = serde_json::from_str(&row.text(4)?).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (event_id, venue_id, rotating) = (row.int(5)?, row.int(6)?, row.bool(8)?);
    let version = bump_version(tx, venue_id).await?;
    for i in 0..usize::try_from(quantity).unwrap_or(0) {
        let seat = seats.get(i).cloned();
        let id = tx
            .query_one(
                "INSERT INTO tickets (order_id, user_id, event_id, venue_id, ticket_type_id, seat, holder_name, barcode,
                                      status, changed_version, created_at, rotating)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '', 'valid', ?8, ?9, ?10) RETURNING id",
                params![order_id, user, event_id, venue_id, type_id, seat.clone(), name.clone(), version, now, rotating],
            )
            .await?
            .int(0)?;
        if !rotating {
            let claims = claims(id, event_id, type_id, seat.as_deref())?;
            tx.execute("UPDATE tickets SET barcode = ?1 WHERE id = ?2", params![signer.mint(&claims), id]).await?;
        }
    }
    tx.execute(
        "UPDATE seats SET sold = 1 WHERE hold_id = (SELECT hold_id FROM orders WHERE id = ?1)",
        params![order_id],
    )
    .await?;
    Ok(())
}

/// What the barcode of ticket `id` asserts.
fn claims(id: i64, event_id: i64, type_id: i64, seat: Option<&str>) -> Result<TicketClaims, ApiError> {
    Ok(TicketClaims {
        event_id: u64::try_from(event_id).unwrap_or_default(),
        ticket_id: u64::try_from(id).unwrap_or_default(),
        ticket_type_id: u32::try_from(type_id).map_err(|_| ApiError::Internal("ticket type id above 2^32".into()))?,
        flags: TicketFlags::default(),
        validity: Validity::default(),
        seat: seat.map(SeatLabel::new).transpose().map_err(|e| ApiError::Internal(e.to_string()))?,
    })
}

/// Revokes every ticket of an order.
pub(crate) async fn revoke_order(tx: &mut Tx, order_id: i64, now: i64) -> Result<(), ApiError> {
    let venue = tx.query_opt("SELECT venue_id FROM tickets WHERE order_id = ?1 LIMIT 1", params![order_id]).await?;
    let Some(venue) = venue else { return Ok(()) };
    let version = bump_version(tx, venue.int(0)?).await?;
    let revoked = tx
        .query(
            "SELECT k.id, k.event_id, k.ticket_type_id, o.channel FROM tickets k JOIN orders o ON o.id = k.order_id
             WHERE k.order_id = ?1 AND k.status = 'valid' ORDER BY k.id",
            params![order_id],
        )
        .await?;
    for t in revoked {
        let event = DomainEvent::TicketRevoked {
            ticket_id: t.int(0)?,
            order_id,
            event_id: t.int(1)?,
            ticket_type_id: t.int(2)?,
            channel: t.text(3)?,
        };
        domain_events::record(tx, &event, now).await?;
    }
    tx.execute(
        "UPDATE resale_listings SET status = 'withdrawn'
         WHERE status = 'listed' AND ticket_id IN (SELECT id FROM tickets WHERE order_id = ?1)",
        params![order_id],
    )
    .await?;
    tx.execute(
        "UPDATE tickets SET status = 'revoked', changed_version = ?1 WHERE order_id = ?2 AND status = 'valid'",
        params![version, order_id],
    )
    .await?;
    Ok(())
}

const COLUMNS: &str =
    "id, order_id, event_id, ticket_type_id, seat, holder_name, status, barcode, scanned_at, user_id, rotating";

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
        rotating: row.bool(10)?,
        wallet: None,
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
    Ok(get_with_owner(db, caller, id).await?.0)
}

/// [`get`], and the owner's user id.
pub async fn get_with_owner(db: &Db, caller: &Caller, id: i64) -> Result<(Ticket, i64), ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM tickets WHERE id = ?1");
    let row = db.query_opt(&sql, params![id]).await?.ok_or(ApiError::NotFound("ticket"))?;
    let owner = row.int(9)?;
    if !caller.is_user(owner) && !caller.is_admin() {
        return Err(ApiError::NotFound("ticket"));
    }
    Ok((from_row(&row)?, owner))
}

/// A rotating ticket as its wallet shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WalletTicket {
    /// Ticket id.
    pub ticket_id: i64,
    /// The event's title.
    pub event_title: String,
    /// The event's start (Unix seconds).
    pub starts_at: i64,
    /// The ticket type's name.
    pub ticket_type: String,
    /// Seat, for seated types.
    pub seat: Option<String>,
    /// The holder's name.
    pub holder_name: String,
    /// `valid` or `revoked`.
    pub status: String,
    /// Hex of the issuer-signed static part and its signature, to which the
    /// wallet adds the time and its own signature at each refresh.
    pub static_part: String,
    /// The server's clock (Unix seconds), so the wallet can correct the phone's.
    pub server_time: i64,
    /// Seconds between two codes.
    pub refresh_s: u32,
}

/// Seconds between two codes of a wallet: well inside the gates' default
/// 30-second window, so a code read at the end of its slot is still fresh.
pub const WALLET_REFRESH_S: u32 = 5;

/// Binds ticket `id` to the wallet's public key and returns what the wallet
/// shows. The first key wins; the same key again (a reload) gets the same
/// answer; another key is refused, so a copied wallet link does not move a
/// ticket to a second phone. Binding bumps the venue's manifest, which then
/// carries the holder's name sealed for the bound code.
pub async fn bind(
    db: &Db,
    signer: &TicketSigner,
    id: i64,
    holder_key: &str,
    now: i64,
) -> Result<WalletTicket, ApiError> {
    let key = parse_holder_key(holder_key)?;
    let mut tx = db.begin().await?;
    let row = tx
        .query_opt(
            "SELECT t.event_id, t.ticket_type_id, t.seat, t.holder_name, t.status, t.rotating, t.holder_key,
                    t.static_part, t.venue_id, e.title, e.starts_at, y.name
             FROM tickets t JOIN events e ON e.id = t.event_id JOIN ticket_types y ON y.id = t.ticket_type_id
             WHERE t.id = ?1",
            params![id],
        )
        .await?
        .ok_or(ApiError::NotFound("ticket"))?;
    if !row.bool(5)? {
        return Err(ApiError::Conflict("this ticket has a static barcode: show its QR code".into()));
    }
    if row.text(4)? != "valid" {
        return Err(ApiError::Conflict("this ticket was cancelled or replaced".into()));
    }
    let static_part = match (row.opt_text(6)?, row.opt_text(7)?) {
        (Some(bound), Some(static_part)) if bound == holder_key => static_part,
        (Some(_), _) => {
            return Err(ApiError::Conflict("this ticket is already shown on another device".into()));
        }
        (None, _) => {
            let claims = claims(id, row.int(0)?, row.int(1)?, row.opt_text(2)?.as_deref())?;
            let bytes = signer.bind(&claims, &key).map_err(|e| ApiError::BadRequest(format!("holder_key: {e}")))?;
            let static_part = data_encoding::HEXLOWER.encode(&bytes);
            // Conditional, so of two wallets binding at once exactly one wins
            // (PostgreSQL re-checks the condition after the row lock), and a
            // reload racing its own first bind gets the same answer (Ed25519
            // signing is deterministic, so the static part is the same).
            let bound = tx
                .execute(
                    "UPDATE tickets SET holder_key = ?1, static_part = ?2
                     WHERE id = ?3 AND status = 'valid' AND (holder_key IS NULL OR holder_key = ?1)",
                    params![holder_key.to_owned(), static_part.clone(), id],
                )
                .await?;
            if bound == 0 {
                return Err(ApiError::Conflict("this ticket is already shown on another device".into()));
            }
            let version = bump_version(&mut tx, row.int(8)?).await?;
            tx.execute("UPDATE tickets SET changed_version = ?1 WHERE id = ?2", params![version, id]).await?;
            static_part
        }
    };
    tx.commit().await?;
    Ok(WalletTicket {
        ticket_id: id,
        event_title: row.text(9)?,
        starts_at: row.int(10)?,
        ticket_type: row.text(11)?,
        seat: row.opt_text(2)?,
        holder_name: row.text(3)?,
        status: row.text(4)?,
        static_part,
        server_time: now,
        refresh_s: WALLET_REFRESH_S,
    })
}

/// A holder key as the wallet sends it: 64 hex digits of an Ed25519 public key.
fn parse_holder_key(hex: &str) -> Result<ed25519_dalek::VerifyingKey, ApiError> {
    let bad = || ApiError::BadRequest("holder_key: 64 lower-case hex digits of an Ed25519 public key".into());
    let bytes = data_encoding::HEXLOWER.decode(hex.as_bytes()).map_err(|_| bad())?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

/// The end of a wallet link's life: a day after its event ends.
pub async fn wallet_expiry(db: &Db, id: i64) -> Result<i64, ApiError> {
    let row = db
        .query_opt("SELECT e.ends_at FROM tickets t JOIN events e ON e.id = t.event_id WHERE t.id = ?1", params![id])
        .await?
        .ok_or(ApiError::NotFound("ticket"))?;
    Ok(row.int(0)?.saturating_add(24 * 3600))
}
