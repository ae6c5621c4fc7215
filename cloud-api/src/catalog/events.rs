//! Events and their ticket types: drafts, publishing, and what a viewer may see.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::db::{Db, Row, Tx};
use crate::params;

use super::venues::{get_venue, require_venue_owner, venue_map};
use super::{MAX_SHARDS, Venue, check_text, is_currency};

/// `POST /admin/events` body.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// Where.
    pub venue_id: i64,
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Doors open.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// Ends.
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// Ticket types created with it.
    #[serde(default)]
    pub ticket_types: Vec<NewTicketType>,
}

/// A ticket type to create.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicketType {
    /// Name, e.g. "Standing".
    pub name: String,
    /// Price in minor units (cents).
    pub price_minor: i64,
    /// ISO 4217 code, e.g. "EUR".
    pub currency: String,
    /// How many exist (for seated types, the number of seats).
    pub total: i64,
    /// Sale opens; default at once.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub sale_starts_at: Option<OffsetDateTime>,
    /// Sale closes; default at the event's start.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub sale_ends_at: Option<OffsetDateTime>,
    /// Most tickets of this type in one order.
    #[serde(default = "default_per_order_limit")]
    pub per_order_limit: i64,
    /// Seat labels, for a seated type (one per ticket).
    #[serde(default)]
    pub seats: Option<Vec<String>>,
    /// Stock rows the count is split over, so concurrent sales do not queue on one row.
    #[serde(default = "default_shards")]
    pub shards: i64,
    /// Shown only by the holder's wallet as a code that changes every few
    /// seconds (barcode v2), so a screenshot cannot be resold; default false:
    /// a static code that can be printed.
    #[serde(default)]
    pub rotating: bool,
}

fn default_per_order_limit() -> i64 {
    10
}
fn default_shards() -> i64 {
    1
}

/// A ticket type as listed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TicketType {
    /// Id (as in barcodes).
    pub id: i64,
    /// Event.
    pub event_id: i64,
    /// Name.
    pub name: String,
    /// Price in minor units.
    pub price_minor: i64,
    /// Currency.
    pub currency: String,
    /// How many exist.
    pub total: i64,
    /// How many are neither held nor sold.
    pub available: i64,
    /// Sale opens (Unix seconds).
    pub sale_starts_at: Option<i64>,
    /// Sale closes (Unix seconds).
    pub sale_ends_at: Option<i64>,
    /// Most per order.
    pub per_order_limit: i64,
    /// Whether tickets carry seats.
    pub seated: bool,
    /// Whether tickets are shown as rotating codes from the holder's wallet.
    pub rotating: bool,
}

/// Lifecycle of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Being set up; not listed.
    Draft,
    /// Listed and on sale.
    Published,
    /// Called off: not listed, tickets revoked.
    Cancelled,
}

impl EventStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Cancelled => "cancelled",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "published" => Self::Published,
            "cancelled" => Self::Cancelled,
            _ => Self::Draft,
        }
    }
}

/// An event with what a buyer needs to choose.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Event {
    /// Id.
    pub id: i64,
    /// Venue id.
    pub venue_id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Start (Unix seconds).
    pub starts_at: i64,
    /// End (Unix seconds).
    pub ends_at: i64,
    /// Status.
    pub status: EventStatus,
    /// Its ticket types (in detail views).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_types: Option<Vec<TicketType>>,
    /// Its venue (in detail views).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<Venue>,
}

/// Whether `text` looks like an ISO 4217 code: three upper-case letters.
/// Refuses unless the caller is an admin or the event's organizer; returns the event's venue.
pub async fn require_event_organizer(db: &Db, caller: &Caller, event_id: i64) -> Result<i64, ApiError> {
    let row = db
        .query_opt("SELECT organizer_id, venue_id FROM events WHERE id = ?1", params![event_id])
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    if caller.manages(row.int(0)?) {
        Ok(row.int(1)?)
    } else {
        Err(ApiError::Forbidden("you do not organise this event"))
    }
}

/// Creates a draft event with its ticket types.
pub async fn create_event(db: &Db, caller: &Caller, event: &NewEvent, now: i64) -> Result<Event, ApiError> {
    require_venue_owner(db, caller, event.venue_id).await?;
    check_text("title", &event.title, 200)?;
    if event.description.len() > 20_000 {
        return Err(ApiError::BadRequest("description: at most 20000 characters".into()));
    }
    let (starts, ends) = (event.starts_at.unix_timestamp(), event.ends_at.unix_timestamp());
    if ends <= starts {
        return Err(ApiError::BadRequest("ends_at: must be after starts_at".into()));
    }
    for t in &event.ticket_types {
        check_ticket_type(t, starts)?;
    }
    let mut tx = db.begin().await?;
    let id = tx
        .query_one(
            "INSERT INTO events (venue_id, organizer_id, title, description, starts_at, ends_at, status, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'draft', ?7) RETURNING id",
            params![event.venue_id, caller.id, event.title.trim(), event.description.clone(), starts, ends, now],
        )
        .await?
        .int(0)?;
    for t in &event.ticket_types {
        insert_ticket_type(&mut tx, id, t, starts).await?;
    }
    crate::catalog::read_model::event_changed(&mut tx, id, now).await?;
    tx.commit().await?;
    get_event(db, id, None).await
}

fn check_ticket_type(t: &NewTicketType, event_starts: i64) -> Result<(), ApiError> {
    check_text("ticket_types.name", &t.name, 200)?;
    if !(0..=100_000_000).contains(&t.price_minor) {
        return Err(ApiError::BadRequest("ticket_types.price_minor: 0 to 100000000".into()));
    }
    if !is_currency(&t.currency) {
        return Err(ApiError::BadRequest("ticket_types.currency: an ISO 4217 code such as EUR".into()));
    }
    if !(1..=1_000_000).contains(&t.total) {
        return Err(ApiError::BadRequest("ticket_types.total: 1 to 1000000".into()));
    }
    if !(1..=100).contains(&t.per_order_limit) {
        return Err(ApiError::BadRequest("ticket_types.per_order_limit: 1 to 100".into()));
    }
    if !(1..=MAX_SHARDS).contains(&t.shards) || t.shards > t.total {
        return Err(ApiError::BadRequest(format!("ticket_types.shards: 1 to {MAX_SHARDS}, at most total")));
    }
    let ends = t.sale_ends_at.map_or(event_starts, OffsetDateTime::unix_timestamp);
    if t.sale_starts_at.is_some_and(|s| s.unix_timestamp() >= ends) {
        return Err(ApiError::BadRequest("ticket_types.sale_starts_at: must be before the sale ends".into()));
    }
    if let Some(seats) = &t.seats {
        if seats.len() as i64 != t.total {
            return Err(ApiError::BadRequest("ticket_types.seats: one label per ticket (as many as total)".into()));
        }
        let mut unique = std::collections::HashSet::new();
        for seat in seats {
            schema::SeatLabel::new(seat)
                .map_err(|e| ApiError::BadRequest(format!("ticket_types.seats: {seat:?}: {e}")))?;
            if !unique.insert(seat) {
                return Err(ApiError::BadRequest(format!("ticket_types.seats: {seat:?} twice")));
            }
        }
    }
    Ok(())
}

async fn insert_ticket_type(tx: &mut Tx, event_id: i64, t: &NewTicketType, event_starts: i64) -> Result<i64, ApiError> {
    let sale_ends = t.sale_ends_at.map_or(event_starts, OffsetDateTime::unix_timestamp);
    let id = tx
        .query_one(
            "INSERT INTO ticket_types (event_id, name, price_minor, currency, total, sale_starts_at, sale_ends_at,
                                       per_order_limit, seated, shards, rotating)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
            params![
                event_id,
                t.name.trim(),
                t.price_minor,
                t.currency.clone(),
                t.total,
                t.sale_starts_at.map(OffsetDateTime::unix_timestamp),
                sale_ends,
                t.per_order_limit,
                t.seats.is_some(),
                t.shards,
                t.rotating
            ],
        )
        .await?
        .int(0)?;
    if u32::try_from(id).is_err() {
        return Err(ApiError::Internal("ticket type ids exhausted the barcode's 32 bits".into()));
    }
    for shard in 0..t.shards {
        // Shard i gets total/shards, the first total%shards get one more.
        let count = t.total / t.shards + i64::from(shard < t.total % t.shards);
        tx.execute(
            "INSERT INTO stock (ticket_type_id, shard, available) VALUES (?1, ?2, ?3)",
            params![id, shard, count],
        )
        .await?;
    }
    if let Some(seats) = &t.seats
        && let Some(map) = venue_map(tx, event_id).await?
    {
        let places = map.places();
        if let Some(missing) = seats.iter().find(|s| !places.contains_key(s.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "ticket_types.seats: {missing:?} is not on the venue's seating map"
            )));
        }
    }
    for seat in t.seats.iter().flatten() {
        tx.execute("INSERT INTO seats (ticket_type_id, label) VALUES (?1, ?2)", params![id, seat.clone()]).await?;
    }
    Ok(id)
}

/// Adds a ticket type to an existing event.
pub async fn add_ticket_type(
    db: &Db,
    caller: &Caller,
    event_id: i64,
    t: &NewTicketType,
) -> Result<TicketType, ApiError> {
    require_event_organizer(db, caller, event_id).await?;
    let starts = db.query_opt("SELECT starts_at FROM events WHERE id = ?1", params![event_id]).await?;
    let starts = starts.ok_or(ApiError::NotFound("event"))?.int(0)?;
    check_ticket_type(t, starts)?;
    let mut tx = db.begin().await?;
    let id = insert_ticket_type(&mut tx, event_id, t, starts).await?;
    crate::catalog::read_model::event_changed(&mut tx, event_id, crate::common::clock::now()).await?;
    tx.commit().await?;
    ticket_types(db, event_id).await?.into_iter().find(|t| t.id == id).ok_or(ApiError::NotFound("ticket type"))
}

/// Every ticket type of an event with its availability.
pub async fn ticket_types(db: &Db, event_id: i64) -> Result<Vec<TicketType>, ApiError> {
    let rows = db
        .query(
            "SELECT t.id, t.event_id, t.name, t.price_minor, t.currency, t.total,
                    (SELECT CAST(COALESCE(SUM(s.available), 0) AS BIGINT) FROM stock s WHERE s.ticket_type_id = t.id),
                    t.sale_starts_at, t.sale_ends_at, t.per_order_limit, t.seated, t.rotating
             FROM ticket_types t WHERE t.event_id = ?1 ORDER BY t.id",
            params![event_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TicketType {
                id: r.int(0)?,
                event_id: r.int(1)?,
                name: r.text(2)?,
                price_minor: r.int(3)?,
                currency: r.text(4)?,
                total: r.int(5)?,
                available: r.int(6)?,
                sale_starts_at: r.opt_int(7)?,
                sale_ends_at: r.opt_int(8)?,
                per_order_limit: r.int(9)?,
                seated: r.bool(10)?,
                rotating: r.bool(11)?,
            })
        })
        .collect()
}

const EVENT_COLUMNS: &str = "id, venue_id, title, description, starts_at, ends_at, status";

fn event_from(row: &Row) -> Result<Event, ApiError> {
    Ok(Event {
        id: row.int(0)?,
        venue_id: row.int(1)?,
        title: row.text(2)?,
        description: row.text(3)?,
        starts_at: row.int(4)?,
        ends_at: row.int(5)?,
        status: EventStatus::parse(&row.text(6)?),
        ticket_types: None,
        venue: None,
    })
}

/// One event with its ticket types and venue. Drafts and cancelled events are
/// shown only to their organizer (`viewer`) and admins.
pub async fn get_event(db: &Db, id: i64, viewer: Option<&Caller>) -> Result<Event, ApiError> {
    let sql = format!("SELECT {EVENT_COLUMNS}, organizer_id FROM events WHERE id = ?1");
    let row = db.query_opt(&sql, params![id]).await?.ok_or(ApiError::NotFound("event"))?;
    let mut event = event_from(&row)?;
    let organizer = row.int(7)?;
    let may_see_unlisted = viewer.is_none_or(|v| v.manages(organizer));
    if event.status != EventStatus::Published && !may_see_unlisted {
        return Err(ApiError::NotFound("event"));
    }
    event.ticket_types = Some(ticket_types(db, id).await?);
    event.venue = Some(get_venue(db, event.venue_id).await?);
    Ok(event)
}

/// `GET /events` query.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only at this venue.
    pub venue_id: Option<i64>,
    /// Starting at or after (Unix seconds).
    pub from: Option<i64>,
    /// Starting before (Unix seconds).
    pub to: Option<i64>,
    /// Title contains (case-insensitive).
    pub q: Option<String>,
    /// Near this latitude (degrees; with `lon` and `within_km`).
    pub lat: Option<f64>,
    /// Near this longitude (degrees).
    pub lon: Option<f64>,
    /// At venues at most this far from (`lat`, `lon`), km; the nearest first.
    pub within_km: Option<f64>,
    /// Page, from 1.
    pub page: Option<i64>,
    /// Events per page, 1 to 100 (default 20).
    pub per_page: Option<i64>,
}

/// A page of events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EventPage {
    /// The events.
    pub items: Vec<Event>,
    /// This page.
    pub page: i64,
    /// Page size.
    pub per_page: i64,
    /// Matching events in all.
    pub total: i64,
}

/// Publishes a draft event.
pub async fn publish_event(db: &Db, caller: &Caller, id: i64) -> Result<Event, ApiError> {
    require_event_organizer(db, caller, id).await?;
    let mut tx = db.begin().await?;
    let changed =
        tx.execute("UPDATE events SET status = 'published' WHERE id = ?1 AND status = 'draft'", params![id]).await?;
    if changed == 0 {
        return Err(ApiError::Conflict("only a draft event can be published".into()));
    }
    crate::catalog::read_model::event_changed(&mut tx, id, crate::common::clock::now()).await?;
    tx.commit().await?;
    get_event(db, id, Some(caller)).await
}
