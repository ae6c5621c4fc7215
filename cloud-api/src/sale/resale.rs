//! Resale between customers at a capped price.
//!
//! A holder lists a valid, unused ticket of an event that has not started, at
//! most `resale_max_percent` of its face value. A buyer reserves the listing,
//! which makes an ordinary hold (no stock, the listing's price), and pays it as
//! any order, through any gateway. Payment issues the buyer a new ticket with
//! a new barcode and revokes the seller's in the same transaction; both
//! changes stamp the venue's next manifest version, so gates let the buyer in
//! and turn the old code away. An unpaid reservation ends like any hold, and
//! the listing is open again.

use serde::{Deserialize, Serialize};

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::db::{Db, Row, Tx};
use crate::domain_events::{self, DomainEvent};
use crate::params;

/// `POST /tickets/{id}/resale` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewListing {
    /// Asking price, minor units; at most the cap.
    pub price_minor: i64,
}

/// A ticket offered for resale.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Listing {
    /// Id.
    pub id: i64,
    /// Event.
    pub event_id: i64,
    /// Ticket type.
    pub ticket_type_id: i64,
    /// Seat, for seated types.
    pub seat: Option<String>,
    /// Price, minor units.
    pub price_minor: i64,
    /// Currency.
    pub currency: String,
    /// `listed`, `sold` or `withdrawn`.
    pub status: String,
    /// A buyer's reservation holds it now.
    pub reserved: bool,
}

/// A listing's hold, as `POST /resale/{id}/reserve` answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ResaleHold {
    /// The hold to order, as with `POST /orders`.
    pub id: String,
    /// The listing.
    pub listing_id: i64,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// Pay before this (Unix seconds).
    pub expires_at: i64,
}

/// Hold states that keep a listing reserved.
const RESERVING: &str = "('active', 'ordered')";

const COLUMNS: &str = "r.id, r.event_id, r.ticket_type_id, k.seat, r.price_minor, r.currency, r.status,
    EXISTS (SELECT 1 FROM holds h WHERE h.resale_listing_id = r.id AND h.status IN ('active', 'ordered'))";

fn from_row(row: &Row) -> Result<Listing, ApiError> {
    Ok(Listing {
        id: row.int(0)?,
        event_id: row.int(1)?,
        ticket_type_id: row.int(2)?,
        seat: row.opt_text(3)?,
        price_minor: row.int(4)?,
        currency: row.text(5)?,
        status: row.text(6)?,
        reserved: row.bool(7)?,
    })
}

async fn get(db: &Db, id: i64) -> Result<Listing, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM resale_listings r JOIN tickets k ON k.id = r.ticket_id WHERE r.id = ?1");
    from_row(&db.query_opt(&sql, params![id]).await?.ok_or(ApiError::NotFound("listing"))?)
}

/// Lists the caller's ticket for resale.
pub async fn list(
    db: &Db,
    caller: &Caller,
    ticket_id: i64,
    new: &NewListing,
    max_percent: i64,
    now: i64,
) -> Result<Listing, ApiError> {
    caller.require_person()?;
    if max_percent == 0 {
        return Err(ApiError::Forbidden("resale is switched off"));
    }
    let ticket = db
        .query_opt(
            "SELECT k.user_id, k.status, k.scanned_at, k.event_id, k.ticket_type_id, t.price_minor, t.currency,
                    e.status, e.starts_at
             FROM tickets k JOIN ticket_types t ON t.id = k.ticket_type_id JOIN events e ON e.id = k.event_id
             WHERE k.id = ?1",
            params![ticket_id],
        )
        .await?
        .filter(|row| row.int(0).is_ok_and(|owner| caller.is_user(owner)))
        .ok_or(ApiError::NotFound("ticket"))?;
    if ticket.text(1)? != "valid" || ticket.opt_int(2)?.is_some() {
        return Err(ApiError::Conflict("only a valid, unused ticket can be resold".into()));
    }
    if ticket.text(7)? != "published" || ticket.int(8)? <= now {
        return Err(ApiError::Conflict("the event is not on sale any more".into()));
    }
    let cap = i64::try_from(i128::from(ticket.int(5)?) * i128::from(max_percent) / 100).unwrap_or(i64::MAX);
    if !(1..=cap).contains(&new.price_minor) {
        return Err(ApiError::BadRequest(format!("price_minor: 1 to {cap} ({max_percent}% of face value)")));
    }
    let inserted = db
        .query_one(
            "INSERT INTO resale_listings (ticket_id, seller_id, event_id, ticket_type_id, price_minor, currency, status,
                 created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'listed', ?7) RETURNING id",
            params![ticket_id, caller.id, ticket.int(3)?, ticket.int(4)?, new.price_minor, ticket.text(6)?, now],
        )
        .await;
    match inserted {
        Ok(row) => get(db, row.int(0)?).await,
        Err(e) if e.is_duplicate() => Err(ApiError::Conflict("this ticket is listed already".into())),
        Err(e) => Err(e.into()),
    }
}

/// An event's open listings, cheapest first.
pub async fn open_for_event(db: &Db, event_id: i64) -> Result<Vec<Listing>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM resale_listings r JOIN tickets k ON k.id = r.ticket_id
         WHERE r.event_id = ?1 AND r.status = 'listed' ORDER BY r.price_minor, r.id LIMIT 500"
    );
    db.query(&sql, params![event_id]).await?.iter().map(from_row).collect()
}

/// The seller takes a listing back, unless a buyer's reservation holds it.
pub async fn withdraw(db: &Db, caller: &Caller, listing_id: i64) -> Result<Listing, ApiError> {
    let listing = get(db, listing_id).await?;
    let seller = db.query_one("SELECT seller_id FROM resale_listings WHERE id = ?1", params![listing_id]).await?;
    if !caller.is_user(seller.int(0)?) {
        return Err(ApiError::NotFound("listing"));
    }
    let sql = format!(
        "UPDATE resale_listings SET status = 'withdrawn' WHERE id = ?1 AND status = 'listed'
         AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.resale_listing_id = ?1 AND h.status IN {RESERVING})"
    );
    if db.execute(&sql, params![listing_id]).await? == 0 {
        return Err(ApiError::Conflict(format!("the listing is {} and cannot be withdrawn now", describe(&listing))));
    }
    get(db, listing_id).await
}

fn describe(listing: &Listing) -> &str {
    if listing.status == "listed" && listing.reserved { "reserved by a buyer" } else { &listing.status }
}

/// A buyer reserves a listing: a hold of its ticket at its price, paid with `POST /orders`.
pub async fn reserve(
    db: &Db,
    caller: &Caller,
    listing_id: i64,
    hold_seconds: i64,
    now: i64,
) -> Result<ResaleHold, ApiError> {
    caller.require_person()?;
    let mut tx = db.begin().await?;
    // The no-op write locks the listing on PostgreSQL, so two buyers cannot both reserve it.
    tx.execute("UPDATE resale_listings SET status = status WHERE id = ?1", params![listing_id]).await?;
    let sql = format!(
        "SELECT r.status, r.seller_id, r.ticket_type_id, r.price_minor, r.currency, k.seat, k.status, e.starts_at,
                EXISTS (SELECT 1 FROM holds h WHERE h.resale_listing_id = r.id AND h.status IN {RESERVING}
                        AND (h.status = 'ordered' OR h.expires_at > ?2)),
                k.scanned_at
         FROM resale_listings r JOIN tickets k ON k.id = r.ticket_id JOIN events e ON e.id = r.event_id
         WHERE r.id = ?1"
    );
    let row = tx.query_opt(&sql, params![listing_id, now]).await?.ok_or(ApiError::NotFound("listing"))?;
    if row.text(0)? != "listed" || row.text(6)? != "valid" || row.opt_int(9)?.is_some() || row.int(7)? <= now {
        return Err(ApiError::Conflict("the listing is no longer available".into()));
    }
    if caller.is_user(row.int(1)?) {
        return Err(ApiError::Conflict("this is your own listing".into()));
    }
    if row.bool(8)? {
        return Err(ApiError::Conflict("another buyer has reserved this listing; try again later".into()));
    }
    let id = crate::common::ids::random_id("h")?;
    let seats: Vec<String> = row.opt_text(5)?.into_iter().collect();
    let seats = serde_json::to_string(&seats).map_err(|e| ApiError::Internal(e.to_string()))?;
    let expires_at = now + hold_seconds;
    tx.execute(
        "INSERT INTO holds (id, user_id, ticket_type_id, quantity, taken, seats, status, expires_at, created_at,
             resale_listing_id)
         VALUES (?1, ?2, ?3, 1, '[]', ?4, 'active', ?5, ?6, ?7)",
        params![id.clone(), caller.id, row.int(2)?, seats, expires_at, now, listing_id],
    )
    .await?;
    tx.commit().await?;
    Ok(ResaleHold { id, listing_id, amount_minor: row.int(3)?, currency: row.text(4)?, expires_at })
}

/// Whether a listing can still be sold: listed, its ticket valid and unused.
pub(crate) async fn still_for_sale(tx: &mut Tx, listing_id: i64) -> Result<bool, ApiError> {
    let row = tx
        .query_opt(
            "SELECT 1 FROM resale_listings r JOIN tickets k ON k.id = r.ticket_id
             WHERE r.id = ?1 AND r.status = 'listed' AND k.status = 'valid' AND k.scanned_at IS NULL",
            params![listing_id],
        )
        .await?;
    Ok(row.is_some())
}

/// Undoes a refunded resale order's sale: the seller's ticket is valid again
/// (the buyer's was revoked with the order) and the listing is closed.
pub(crate) async fn undo(tx: &mut Tx, order_id: i64, now: i64) -> Result<(), ApiError> {
    let sold = tx
        .query_opt(
            "SELECT r.id, r.ticket_id, k.venue_id FROM holds h JOIN orders o ON o.hold_id = h.id
             JOIN resale_listings r ON r.id = h.resale_listing_id JOIN tickets k ON k.id = r.ticket_id
             WHERE o.id = ?1 AND r.status = 'sold'",
            params![order_id],
        )
        .await?;
    let Some(sold) = sold else { return Ok(()) };
    let version = crate::tickets::bump_version(tx, sold.int(2)?).await?;
    tx.execute(
        "UPDATE tickets SET status = 'valid', resold_to = NULL, changed_version = ?2 WHERE id = ?1 AND status = 'revoked'",
        params![sold.int(1)?, version],
    )
    .await?;
    tx.execute(
        "UPDATE resale_listings SET status = 'refunded', sold_at = ?2 WHERE id = ?1",
        params![sold.int(0)?, now],
    )
    .await?;
    Ok(())
}

/// Completes a paid resale in the payment's transaction: the listing is sold,
/// the seller's ticket revoked and pointed at the buyer's new one (already
/// issued by the order).
pub(crate) async fn complete(tx: &mut Tx, listing_id: i64, order_id: i64, now: i64) -> Result<(), ApiError> {
    let new_ticket = tx.query_one("SELECT id, venue_id FROM tickets WHERE order_id = ?1", params![order_id]).await?;
    let (new_id, venue) = (new_ticket.int(0)?, new_ticket.int(1)?);
    let sold = tx
        .query_opt(
            "UPDATE resale_listings SET status = 'sold', sold_at = ?2, new_ticket_id = ?3
             WHERE id = ?1 AND status = 'listed' RETURNING ticket_id",
            params![listing_id, now, new_id],
        )
        .await?
        .ok_or_else(|| ApiError::Internal(format!("listing {listing_id} was paid but is not listed")))?;
    let old = sold.int(0)?;
    let version = crate::tickets::bump_version(tx, venue).await?;
    let revoked = tx
        .query_opt(
            "UPDATE tickets SET status = 'revoked', resold_to = ?2, changed_version = ?3
             WHERE id = ?1 AND status = 'valid' AND scanned_at IS NULL
             RETURNING order_id, event_id, ticket_type_id",
            params![old, new_id, version],
        )
        .await?
        .ok_or_else(|| ApiError::Conflict("the resold ticket is no longer valid".into()))?;
    let event = DomainEvent::TicketRevoked {
        ticket_id: old,
        order_id: revoked.int(0)?,
        event_id: revoked.int(1)?,
        ticket_type_id: revoked.int(2)?,
        channel: "resale".into(),
    };
    domain_events::record(tx, &event, now).await
}
