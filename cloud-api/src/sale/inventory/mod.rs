//! Holds: stock set aside for one buyer for a few minutes, never more than exists.
//!
//! A ticket type's count is split over `shards` stock rows. A hold reads the
//! rows, then takes its quantity from one row chosen at random among those
//! with enough, so concurrent buyers spread over the rows instead of queueing
//! on one; only when no single row has enough does it take from several, in
//! shard order (so two such takers cannot deadlock). The decrement is
//! refused by the table's `CHECK (available >= 0)` when a concurrent sale got
//! there first: the transaction rolls back and reads again, so no code path
//! can sell what is not there. Seated types also claim each seat row, in
//! label order.

use serde::{Deserialize, Serialize};

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::common::idempotency::{self, Idempotency};
use crate::db::{Db, DbError, Tx, Value};
use crate::params;

mod seats;

use seats::best_seats;
pub use seats::{SeatState, TypeSeats, seat_availability};

/// `POST /events/{id}/reserve-tickets` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// Which ticket type.
    pub ticket_type_id: i64,
    /// How many (for seated types, defaults to the number of seats).
    #[serde(default)]
    pub quantity: Option<i64>,
    /// Seat labels, for a seated type. Without them, a seated type gets the
    /// best `quantity` seats side by side on the venue's seating map.
    #[serde(default)]
    pub seats: Option<Vec<String>>,
}

impl ReserveRequest {
    /// The number of tickets asked for: `quantity`, or else one per seat named.
    pub fn tickets_asked(&self) -> i64 {
        self.quantity.unwrap_or(self.seats.as_ref().map_or(0, |seats| seats.len() as i64))
    }
}

/// A hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Hold {
    /// Id, to pass to `POST /orders`.
    pub id: String,
    /// Event.
    pub event_id: i64,
    /// Ticket type.
    pub ticket_type_id: i64,
    /// How many tickets.
    pub quantity: i64,
    /// Seats held.
    pub seats: Vec<String>,
    /// What the order will cost, minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// When the stock returns to sale unless ordered (Unix seconds).
    pub expires_at: i64,
}

/// Rows taken from stock: `(shard, count)`.
type Taken = Vec<(i64, i64)>;

struct TypeRow {
    event_id: i64,
    price_minor: i64,
    currency: String,
    per_order_limit: i64,
    seated: bool,
    sale_starts_at: Option<i64>,
    sale_ends_at: Option<i64>,
    event_status: String,
}

/// Reads a ticket type, its event's status and its stock rows in one query
/// (no transaction: a sold-out answer costs one round trip, and what was read
/// is re-checked by the stock table's `CHECK` when the stock is taken).
async fn ticket_type(db: &Db, id: i64) -> Result<(TypeRow, Stock), ApiError> {
    let rows = db
        .query(
            "SELECT t.event_id, t.price_minor, t.currency, t.per_order_limit, t.seated,
                    t.sale_starts_at, t.sale_ends_at, e.status, s.shard, s.available
             FROM ticket_types t JOIN events e ON e.id = t.event_id JOIN stock s ON s.ticket_type_id = t.id
             WHERE t.id = ?1 ORDER BY s.shard",
            params![id],
        )
        .await?;
    let row = rows.first().ok_or(ApiError::NotFound("ticket type"))?;
    let t = TypeRow {
        event_id: row.int(0)?,
        price_minor: row.int(1)?,
        currency: row.text(2)?,
        per_order_limit: row.int(3)?,
        seated: row.bool(4)?,
        sale_starts_at: row.opt_int(5)?,
        sale_ends_at: row.opt_int(6)?,
        event_status: row.text(7)?,
    };
    let stock = rows.iter().map(|r| Ok((r.int(8)?, r.int(9)?))).collect::<Result<_, DbError>>()?;
    Ok((t, stock))
}

/// Checks a request against the ticket type; returns the quantity and sorted seats.
fn check_request(t: &TypeRow, event_id: i64, req: &ReserveRequest, now: i64) -> Result<(i64, Vec<String>), ApiError> {
    if t.event_id != event_id {
        return Err(ApiError::NotFound("ticket type"));
    }
    if t.event_status != "published" {
        return Err(ApiError::Conflict("the event is not on sale".into()));
    }
    if t.sale_starts_at.is_some_and(|s| now < s) || t.sale_ends_at.is_some_and(|e| now >= e) {
        return Err(ApiError::Conflict("the sale of this ticket type is not open".into()));
    }
    let mut seats = req.seats.clone().unwrap_or_default();
    match (t.seated, seats.is_empty()) {
        (true, true) if req.quantity.is_none() => {
            return Err(ApiError::BadRequest(
                "seats: this ticket type is seated; choose seats, or give a quantity for the best available".into(),
            ));
        }
        (false, false) => return Err(ApiError::BadRequest("seats: this ticket type is not seated".into())),
        _ => {}
    }
    let quantity = req.tickets_asked();
    if t.seated && !seats.is_empty() && quantity != seats.len() as i64 {
        return Err(ApiError::BadRequest("quantity: must equal the number of seats".into()));
    }
    if !(1..=t.per_order_limit).contains(&quantity) {
        return Err(ApiError::BadRequest(format!("quantity: 1 to {}", t.per_order_limit)));
    }
    seats.sort();
    if seats.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::BadRequest("seats: a seat is listed twice".into()));
    }
    Ok((quantity, seats))
}

/// Places a hold for the caller.
pub async fn reserve(
    db: &Db,
    caller: &Caller,
    event_id: i64,
    req: &ReserveRequest,
    idempotency: Option<&Idempotency>,
    hold_seconds: i64,
    now: i64,
) -> Result<Hold, ApiError> {
    caller.require_person()?;
    if let Some(idem) = idempotency
        && let Some(earlier) = idem.replay(db).await?
    {
        return Ok(earlier);
    }
    let id = crate::common::ids::random_id("h")?;
    for _ in 0..MAX_ATTEMPTS {
        let (t, stock) = ticket_type(db, req.ticket_type_id).await?;
        let (quantity, mut seats) = check_request(&t, event_id, req, now)?;
        let best_available = t.seated && seats.is_empty();
        if best_available {
            seats = best_seats(db, event_id, req.ticket_type_id, quantity).await?;
        }
        let Some(taken) = plan(stock, quantity) else {
            return Err(ApiError::Conflict("sold out: not enough tickets of this type are left".into()));
        };
        let hold = Hold {
            id: id.clone(),
            event_id,
            ticket_type_id: req.ticket_type_id,
            quantity,
            amount_minor: t.price_minor.saturating_mul(quantity),
            currency: t.currency,
            expires_at: now + hold_seconds,
            seats,
        };
        let record = params![
            hold.id.clone(),
            caller.id,
            hold.ticket_type_id,
            hold.quantity,
            json(&taken)?,
            json(&hold.seats)?,
            hold.expires_at,
            now
        ]
        .to_vec();
        let reserved = crate::domain_events::DomainEvent::TicketReserved {
            hold_id: hold.id.clone(),
            event_id,
            ticket_type_id: hold.ticket_type_id,
            quantity,
            user_id: caller.id,
        };
        let mut writes = vec![(INSERT_HOLD, record), crate::domain_events::write(&reserved, now)?];
        writes.extend(take_writes(hold.ticket_type_id, &hold.id, &taken, &hold.seats, now));
        let mut tx = db.begin().await?;
        let outcome = if hold.seats.is_empty() {
            // Nothing to look at between the writes and the commit, so they
            // travel together: stock that ran out fails its CHECK, and then
            // nothing of the transaction is kept.
            if let Some(idem) = idempotency {
                writes.push((idempotency::RECORD, idem.record_params(&hold, now)));
            }
            tx.commit_after(&statements(&writes)).await.map(drop)
        } else {
            match tx.execute_all(&statements(&writes)).await {
                Ok(counts) => {
                    if let Some(seat) = gone_seat(&hold.seats, &counts) {
                        if best_available {
                            // Another buyer got one of them first: choose again.
                            drop(tx);
                            tokio::task::yield_now().await;
                            continue;
                        }
                        return Err(ApiError::Conflict(format!("seat {seat} is taken or does not exist")));
                    }
                    return idempotency::commit_with(db, tx, idempotency, hold, now).await;
                }
                Err(e) => Err(e),
            }
        };
        match (outcome, idempotency) {
            (Ok(()), _) => return Ok(hold),
            // Stock changed since it was read: read again.
            (Err(e), _) if e.is_check_violation() || e.is_retryable() => {}
            (Err(e), Some(idem)) if e.is_duplicate() => {
                return idem.replay(db).await?.ok_or(ApiError::Conflict("Idempotency-Key is in use".into()));
            }
            (Err(e), _) => return Err(e.into()),
        }
        tokio::task::yield_now().await;
    }
    Err(ApiError::Conflict("too many buyers at once; try again".into()))
}

const INSERT_HOLD: &str =
    "INSERT INTO holds (id, user_id, ticket_type_id, quantity, taken, seats, status, expires_at, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8)";

fn json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))
}

/// What taking an expired hold's stock again found.
pub(crate) enum Retake {
    /// Stock and seats are the hold's again.
    Taken,
    /// Sold to someone else meanwhile.
    Gone,
    /// Lost a race; roll back to a savepoint and try again.
    Raced,
}

/// Takes a hold's stock and seats again for a payment that arrived after the
/// hold expired. On anything but `Taken` the caller rolls back what was taken.
pub(crate) async fn retake(tx: &mut Tx, hold_id: &str) -> Result<Retake, ApiError> {
    let row = tx.query_one("SELECT ticket_type_id, quantity, seats FROM holds WHERE id = ?1", params![hold_id]).await?;
    let (type_id, quantity) = (row.int(0)?, row.int(1)?);
    let seats: Vec<String> = serde_json::from_str(&row.text(2)?).map_err(|e| ApiError::Internal(e.to_string()))?;
    let rows = tx
        .query("SELECT shard, available FROM stock WHERE ticket_type_id = ?1 ORDER BY shard", params![type_id])
        .await?;
    let stock = rows.iter().map(|r| Ok((r.int(0)?, r.int(1)?))).collect::<Result<_, DbError>>()?;
    let Some(taken) = plan(stock, quantity) else { return Ok(Retake::Gone) };
    let mut writes = vec![(
        "UPDATE holds SET status = 'ordered', taken = ?1 WHERE id = ?2",
        params![json(&taken)?, hold_id].to_vec(),
    )];
    writes.extend(take_writes(type_id, hold_id, &taken, &seats, crate::common::clock::now()));
    match tx.execute_all(&statements(&writes)).await {
        Ok(counts) if gone_seat(&seats, &counts).is_some() => Ok(Retake::Gone),
        Ok(_) => Ok(Retake::Taken),
        Err(e) if e.is_check_violation() => Ok(Retake::Raced),
        Err(e) => Err(e.into()),
    }
}

/// Stock rows of a ticket type: `(shard, available)`, in shard order.
type Stock = Vec<(i64, i64)>;

/// Which rows to take `quantity` from, or `None` if all together hold too few.
///
/// A plan is either one row, chosen at random among those with enough, or, if
/// no row has enough alone, several in shard order (so two multi-row takers
/// lock rows in the same order and cannot deadlock). If a row no longer has
/// what was read, its `CHECK` fails, the attempt rolls back and starts again
/// from a fresh read.
fn plan(stock: Stock, quantity: i64) -> Option<Taken> {
    if stock.iter().map(|(_, n)| n).sum::<i64>() < quantity {
        return None;
    }
    let whole: Vec<i64> = stock.iter().filter(|(_, n)| *n >= quantity).map(|(s, _)| *s).collect();
    if !whole.is_empty() {
        return Some(vec![(whole[random_below(whole.len() as i64) as usize], quantity)]);
    }
    let mut missing = quantity;
    let mut plan = Vec::new();
    for (shard, available) in stock.into_iter().filter(|(_, n)| *n > 0) {
        let n = available.min(missing);
        plan.push((shard, n));
        missing -= n;
        if missing == 0 {
            break;
        }
    }
    Some(plan)
}

/// Statements with their parameters, owned.
type Writes = Vec<(&'static str, Vec<Value>)>;

/// The writes that follow a hold's own row: the listing's outbox entry, the
/// planned stock rows, then the seats. Sent together, they hold the hot stock
/// rows' locks for one round trip and the commit, not for a conversation.
/// Taking stock that is no longer there fails the table's
/// `CHECK (available >= 0)`; a seat that is taken changes no row.
fn take_writes(type_id: i64, hold_id: &str, taken: &Taken, seats: &[String], now: i64) -> Writes {
    let mut writes = vec![(crate::catalog::read_model::STOCK_CHANGED, params![type_id, now].to_vec())];
    writes.extend(taken.iter().map(|(shard, n)| {
        (
            "UPDATE stock SET available = available - ?1 WHERE ticket_type_id = ?2 AND shard = ?3",
            params![*n, type_id, *shard].to_vec(),
        )
    }));
    writes.extend(seats.iter().map(|seat| {
        (
            "UPDATE seats SET hold_id = ?1 WHERE ticket_type_id = ?2 AND label = ?3 AND hold_id IS NULL AND sold = 0",
            params![hold_id, type_id, seat.clone()].to_vec(),
        )
    }));
    writes
}

fn statements(writes: &Writes) -> Vec<(&str, &[Value])> {
    writes.iter().map(|(sql, params)| (*sql, params.as_slice())).collect()
}

/// The first seat whose claim changed no row; `counts` are those of every
/// write sent, whose last ones are the seat claims ([`take_writes`]).
fn gone_seat<'a>(seats: &'a [String], counts: &[u64]) -> Option<&'a String> {
    let claims = &counts[counts.len().saturating_sub(seats.len())..];
    seats.iter().zip(claims).find(|(_, n)| **n == 0).map(|(seat, _)| seat)
}

/// Attempts at a hold before giving up on a store too busy to settle.
const MAX_ATTEMPTS: usize = 20;

fn random_below(n: i64) -> i64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    (u64::from_le_bytes(bytes) % n.max(1) as u64) as i64
}

/// Puts a hold's stock and seats back on sale (inside the caller's transaction).
pub(crate) async fn put_back(tx: &mut Tx, hold_id: &str) -> Result<(), ApiError> {
    let row = tx
        .query_opt("SELECT ticket_type_id, taken FROM holds WHERE id = ?1", params![hold_id])
        .await?
        .ok_or(ApiError::NotFound("hold"))?;
    let type_id = row.int(0)?;
    let taken: Taken = serde_json::from_str(&row.text(1)?).map_err(|e| ApiError::Internal(e.to_string()))?;
    for (shard, n) in taken {
        tx.execute(
            "UPDATE stock SET available = available + ?1 WHERE ticket_type_id = ?2 AND shard = ?3",
            params![n, type_id, shard],
        )
        .await?;
    }
    tx.execute("UPDATE seats SET hold_id = NULL, sold = 0 WHERE hold_id = ?1", params![hold_id]).await?;
    crate::catalog::read_model::stock_changed(tx, type_id).await?;
    Ok(())
}

/// Ends a hold in `to` state ("released", "expired") if it is still `from`, returning its stock.
pub async fn end_hold(tx: &mut Tx, hold_id: &str, from: &str, to: &str) -> Result<bool, ApiError> {
    let changed =
        tx.execute("UPDATE holds SET status = ?1 WHERE id = ?2 AND status = ?3", params![to, hold_id, from]).await?;
    if changed == 1 {
        put_back(tx, hold_id).await?;
    }
    Ok(changed == 1)
}

/// `DELETE /holds/{id}`: the buyer lets go of a hold.
pub async fn release(db: &Db, caller: &Caller, hold_id: &str) -> Result<(), ApiError> {
    let owner = db.query_opt("SELECT user_id FROM holds WHERE id = ?1", params![hold_id]).await?;
    if !owner.map(|r| r.int(0)).transpose()?.is_some_and(|owner| caller.is_user(owner)) {
        return Err(ApiError::NotFound("hold"));
    }
    let mut tx = db.begin().await?;
    if !end_hold(&mut tx, hold_id, "active", "released").await? {
        return Err(ApiError::Conflict("the hold is no longer active".into()));
    }
    tx.commit().await?;
    Ok(())
}

/// Returns the stock of holds that expired unordered and of orders left unpaid
/// past their deadline. Returns how many were ended.
pub async fn sweep_expired(db: &Db, now: i64) -> Result<usize, ApiError> {
    let holds =
        db.query("SELECT id FROM holds WHERE status = 'active' AND expires_at <= ?1 LIMIT 500", params![now]).await?;
    let mut ended = 0;
    for row in holds {
        let mut tx = db.begin().await?;
        if end_hold(&mut tx, &row.text(0)?, "active", "expired").await? {
            ended += 1;
        }
        tx.commit().await?;
    }
    let orders = db
        .query("SELECT id, hold_id FROM orders WHERE status = 'pending' AND expires_at <= ?1 LIMIT 500", params![now])
        .await?;
    for row in orders {
        let mut tx = db.begin().await?;
        let changed = tx
            .execute("UPDATE orders SET status = 'expired' WHERE id = ?1 AND status = 'pending'", params![row.int(0)?])
            .await?;
        if changed == 1 && end_hold(&mut tx, &row.text(1)?, "ordered", "expired").await? {
            ended += 1;
        }
        tx.commit().await?;
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_takes_one_row_with_enough_or_several_in_shard_order() {
        for _ in 0..50 {
            let one = plan(vec![(0, 1), (1, 5), (2, 0), (3, 9)], 4).expect("enough");
            assert!(one == vec![(1, 4)] || one == vec![(3, 4)], "{one:?}");
        }
        assert_eq!(plan(vec![(0, 2), (1, 0), (2, 3), (3, 1)], 5), Some(vec![(0, 2), (2, 3)]));
        assert_eq!(plan(vec![(0, 2), (1, 0), (2, 3)], 6), None, "five left, six wanted");
        assert_eq!(plan(vec![], 1), None);
    }
}
