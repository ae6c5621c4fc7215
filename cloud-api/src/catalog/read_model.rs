//! The read side: what buyers browse (event listings with availability) comes
//! from `event_listings`, a projection of the write side, not from the tables
//! sales contend on.
//!
//! Every transaction that changes what a listing shows (an event created,
//! published or cancelled, a ticket type added, stock taken or returned) adds
//! an `outbox` row in the same transaction, so no change is ever lost. The
//! projector reads the outbox, rebuilds each named event's listing from the
//! write side, and deletes exactly the rows it handled (rows that commit later,
//! even with smaller ids, are picked up next time). Listings carry a version;
//! responses carry an ETag built from it, and `If-None-Match` gets a 304.
//! Listings trail the write side by about one projector pass (~100 ms).

use sha2::{Digest, Sha256};

use crate::accounts::auth::Caller;
use crate::catalog::{self, Event, EventFilter, EventPage};
use crate::common::error::ApiError;
use crate::db::{Db, DbError, Tx};
use crate::params;

/// Outbox rows handled per pass.
const PASS: i64 = 1_000;

/// Records, inside `tx`, that event `event_id`'s listing changed.
pub(crate) async fn event_changed(tx: &mut Tx, event_id: i64, now: i64) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO outbox (topic, event_id, created_at) VALUES ('event_changed', ?1, ?2)",
        params![event_id, now],
    )
    .await
    .map(drop)
}

/// Records, inside `tx`, that the stock of ticket type `type_id` changed.
pub(crate) async fn stock_changed(tx: &mut Tx, type_id: i64) -> Result<(), DbError> {
    tx.execute(STOCK_CHANGED, params![type_id, crate::common::clock::now()]).await.map(drop)
}

/// The outbox entry of [`stock_changed`]; parameters: ticket type, now.
pub(crate) const STOCK_CHANGED: &str = "INSERT INTO outbox (topic, event_id, created_at)
     SELECT 'stock_changed', event_id, ?2 FROM ticket_types WHERE id = ?1";

/// One projector pass; returns how many listings were rebuilt.
pub async fn project(db: &Db, now: i64) -> Result<usize, ApiError> {
    let rows = db.query("SELECT id, event_id FROM outbox ORDER BY id LIMIT ?1", params![PASS]).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut events: Vec<i64> = rows.iter().map(|r| r.int(1)).collect::<Result<_, _>>()?;
    events.sort_unstable();
    events.dedup();
    for &event_id in &events {
        let event = match catalog::get_event(db, event_id, None).await {
            Ok(event) => event,
            Err(ApiError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let owner = db
            .query_one(
                "SELECT e.organizer_id, v.latitude_e6, v.longitude_e6 FROM events e JOIN venues v ON v.id = e.venue_id
                 WHERE e.id = ?1",
                params![event_id],
            )
            .await?;
        let (organizer, latitude, longitude) = (owner.int(0)?, owner.opt_int(1)?, owner.opt_int(2)?);
        let body = serde_json::to_string(&event).map_err(|e| ApiError::Internal(e.to_string()))?;
        db.execute(
            "INSERT INTO event_listings (event_id, venue_id, organizer_id, title_lower, starts_at, status, body, version,
                 updated_at, latitude_e6, longitude_e6)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?10)
             ON CONFLICT (event_id) DO UPDATE SET venue_id = excluded.venue_id, title_lower = excluded.title_lower,
                 starts_at = excluded.starts_at, status = excluded.status, body = excluded.body,
                 version = event_listings.version + 1, updated_at = excluded.updated_at,
                 latitude_e6 = excluded.latitude_e6, longitude_e6 = excluded.longitude_e6",
            params![
                event_id,
                event.venue_id,
                organizer,
                event.title.to_lowercase(),
                event.starts_at,
                event.status.as_str(),
                body,
                now,
                latitude,
                longitude
            ],
        )
        .await?;
    }
    let mut tx = db.begin().await?;
    for row in &rows {
        tx.execute("DELETE FROM outbox WHERE id = ?1", params![row.int(0)?]).await?;
    }
    tx.commit().await?;
    Ok(events.len())
}

/// An ETag over listing versions.
fn etag(parts: &[(i64, i64)], extra: &str) -> String {
    let mut hash = Sha256::new();
    for (id, version) in parts {
        hash.update(format!("{id}:{version};"));
    }
    hash.update(extra.as_bytes());
    format!("W/\"{}\"", data_encoding::HEXLOWER.encode(&hash.finalize()[..12]))
}

/// Published events matching the filter, soonest first, with the page's ETag.
pub async fn list(db: &Db, filter: &EventFilter) -> Result<(EventPage, String), ApiError> {
    let per_page = filter.per_page.unwrap_or(20);
    let page = filter.page.unwrap_or(1);
    if !(1..=100).contains(&per_page) || page < 1 {
        return Err(ApiError::BadRequest("page: from 1; per_page: 1 to 100".into()));
    }
    let q = filter.q.as_ref().map(|q| format!("%{}%", q.to_lowercase().replace(['%', '_', '\\'], "")));
    let near = match (filter.lat, filter.lon, filter.within_km) {
        (None, None, None) => None,
        (Some(lat), Some(lon), Some(km)) => Some(
            crate::common::geo::Circle::new(lat, lon, km)
                .map_err(|e| ApiError::BadRequest(format!("lat, lon, within_km: {e}")))?,
        ),
        _ => return Err(ApiError::BadRequest("lat, lon, within_km: all three or none".into())),
    };
    // The casts tell PostgreSQL the parameters' types where `IS NULL` alone cannot.
    // Near a point: the coordinate index narrows to the bounding box, then the
    // distance (in millionths of a degree, squared) decides.
    let distance2 = "((longitude_e6 - ?9) * ?12 / 1000000) * ((longitude_e6 - ?9) * ?12 / 1000000)
                     + (latitude_e6 - ?10) * (latitude_e6 - ?10)";
    let filters = format!(
        "status = 'published'
         AND (CAST(?1 AS BIGINT) IS NULL OR venue_id = ?1) AND (CAST(?2 AS BIGINT) IS NULL OR starts_at >= ?2)
         AND (CAST(?3 AS BIGINT) IS NULL OR starts_at < ?3) AND (CAST(?4 AS TEXT) IS NULL OR title_lower LIKE ?4)
         AND (CAST(?5 AS BIGINT) IS NULL OR (latitude_e6 BETWEEN ?5 AND ?6 AND longitude_e6 BETWEEN ?7 AND ?8
              AND {distance2} <= ?11))"
    );
    let b = near.map(|c| c.bounds());
    let p = params![
        filter.venue_id,
        filter.from,
        filter.to,
        q,
        b.map(|b| b.min_lat_e6),
        b.map(|b| b.max_lat_e6),
        b.map(|b| b.min_lon_e6),
        b.map(|b| b.max_lon_e6),
        b.map_or(0, |b| b.lon_e6),
        b.map_or(0, |b| b.lat_e6),
        b.map_or(0, |b| b.radius2_e12),
        b.map_or(0, |b| b.lon_scale_e6),
        per_page,
        (page - 1).saturating_mul(per_page)
    ];
    let total =
        db.query_one(&format!("SELECT COUNT(*) FROM event_listings WHERE {filters}"), &p[..12]).await?.int(0)?;
    let order = if near.is_some() { format!("{distance2}, starts_at, event_id") } else { "starts_at, event_id".into() };
    let sql = format!(
        "SELECT event_id, version, body FROM event_listings WHERE {filters} ORDER BY {order} LIMIT ?13 OFFSET ?14"
    );
    let rows = db.query(&sql, p).await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut versions = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut event: Event = serde_json::from_str(&row.text(2)?).map_err(|e| ApiError::Internal(e.to_string()))?;
        // Listings show events; the detail view adds types and venue.
        event.ticket_types = None;
        event.venue = None;
        versions.push((row.int(0)?, row.int(1)?));
        items.push(event);
    }
    let tag = etag(&versions, &format!("{total}/{page}/{per_page}"));
    Ok((EventPage { items, page, per_page, total }, tag))
}

/// One event with its ticket types, availability and venue, and its ETag.
/// Drafts and cancelled events are shown only to their organizer and admins.
pub async fn get(db: &Db, id: i64, viewer: &Caller) -> Result<(Event, String), ApiError> {
    let row = db
        .query_opt("SELECT body, version, organizer_id, status FROM event_listings WHERE event_id = ?1", params![id])
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    if row.text(3)? != "published" && !viewer.manages(row.int(2)?) {
        return Err(ApiError::NotFound("event"));
    }
    let event: Event = serde_json::from_str(&row.text(0)?).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((event, etag(&[(id, row.int(1)?)], "")))
}
