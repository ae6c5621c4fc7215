//! Venues: where events happen, with their address, capacity, position and
//! optional seating map, and the check that a caller runs one.

use serde::{Deserialize, Serialize};

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::db::{Db, Row, Tx};
use crate::params;

use super::check_text;

/// Largest seating map stored, bytes of JSON.
const MAX_SEATING_MAP: usize = 1 << 20;

/// `POST /venues` body.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVenue {
    /// Name.
    pub name: String,
    /// Postal address.
    pub address: String,
    /// How many people it holds.
    pub capacity: i64,
    /// Latitude, degrees.
    #[serde(default)]
    pub latitude: Option<f64>,
    /// Longitude, degrees.
    #[serde(default)]
    pub longitude: Option<f64>,
    /// Seating map: sections, rows and seats with coordinates, best first.
    /// Seated ticket types of the venue's events sell seats of this map.
    #[serde(default)]
    pub seating_map: Option<crate::catalog::seatmap::SeatMap>,
}

/// A venue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Venue {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Postal address.
    pub address: String,
    /// Capacity.
    pub capacity: i64,
    /// Latitude, degrees.
    pub latitude: Option<f64>,
    /// Longitude, degrees.
    pub longitude: Option<f64>,
    /// Seating map.
    pub seating_map: Option<crate::catalog::seatmap::SeatMap>,
}

fn degrees_e6(field: &str, value: Option<f64>, limit: f64) -> Result<Option<i64>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && v.abs() <= limit => Ok(Some((v * 1e6).round() as i64)),
        Some(_) => Err(ApiError::BadRequest(format!("{field}: between -{limit} and {limit}"))),
    }
}

/// Creates a venue owned by the caller.
pub async fn create_venue(db: &Db, caller: &Caller, venue: &NewVenue, now: i64) -> Result<Venue, ApiError> {
    check_text("name", &venue.name, 200)?;
    check_text("address", &venue.address, 500)?;
    if !(1..=10_000_000).contains(&venue.capacity) {
        return Err(ApiError::BadRequest("capacity: 1 to 10000000".into()));
    }
    let lat = degrees_e6("latitude", venue.latitude, 90.0)?;
    let lon = degrees_e6("longitude", venue.longitude, 180.0)?;
    // Half a place is no place: it would never match a search by distance.
    if lat.is_some() != lon.is_some() {
        return Err(ApiError::BadRequest("latitude and longitude: both or neither".into()));
    }
    if let Some(map) = &venue.seating_map {
        map.validate().map_err(|e| ApiError::BadRequest(format!("seating_map: {e}")))?;
    }
    let map = venue
        .seating_map
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if map.as_ref().is_some_and(|m| m.len() > MAX_SEATING_MAP) {
        return Err(ApiError::BadRequest(format!("seating_map: at most {MAX_SEATING_MAP} bytes")));
    }
    let mut tx = db.begin().await?;
    let id = tx
        .query_one(
            "INSERT INTO venues (name, address, capacity, latitude_e6, longitude_e6, seating_map, owner_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            params![venue.name.trim(), venue.address.trim(), venue.capacity, lat, lon, map, caller.id, now],
        )
        .await?
        .int(0)?;
    tx.commit().await?;
    get_venue(db, id).await
}

const VENUE_COLUMNS: &str = "id, name, address, capacity, latitude_e6, longitude_e6, seating_map, owner_id";

fn venue_from(row: &Row) -> Result<Venue, ApiError> {
    Ok(Venue {
        id: row.int(0)?,
        name: row.text(1)?,
        address: row.text(2)?,
        capacity: row.int(3)?,
        latitude: row.opt_int(4)?.map(|v| v as f64 / 1e6),
        longitude: row.opt_int(5)?.map(|v| v as f64 / 1e6),
        seating_map: row.opt_text(6)?.and_then(|m| serde_json::from_str(&m).ok()),
    })
}

const EVENT_VENUE_MAP: &str = "SELECT v.seating_map FROM events e JOIN venues v ON v.id = e.venue_id WHERE e.id = ?1";

fn parse_map(row: Option<Row>) -> Result<Option<crate::catalog::seatmap::SeatMap>, ApiError> {
    // A map stored before maps were structured reads as none.
    Ok(row.map(|r| r.opt_text(0)).transpose()?.flatten().and_then(|m| serde_json::from_str(&m).ok()))
}

/// The seating map of an event's venue, if it has one.
pub(crate) async fn venue_map(
    tx: &mut Tx,
    event_id: i64,
) -> Result<Option<crate::catalog::seatmap::SeatMap>, ApiError> {
    parse_map(tx.query_opt(EVENT_VENUE_MAP, params![event_id]).await?)
}

/// [`venue_map`] outside a transaction.
pub(crate) async fn event_venue_map(
    db: &Db,
    event_id: i64,
) -> Result<Option<crate::catalog::seatmap::SeatMap>, ApiError> {
    parse_map(db.query_opt(EVENT_VENUE_MAP, params![event_id]).await?)
}

/// Reads a venue.
pub async fn get_venue(db: &Db, id: i64) -> Result<Venue, ApiError> {
    let sql = format!("SELECT {VENUE_COLUMNS} FROM venues WHERE id = ?1");
    venue_from(&db.query_opt(&sql, params![id]).await?.ok_or(ApiError::NotFound("venue"))?)
}

/// Refuses unless the caller is an admin or owns the venue.
pub async fn require_venue_owner(db: &Db, caller: &Caller, venue_id: i64) -> Result<(), ApiError> {
    let owner = db
        .query_opt("SELECT owner_id FROM venues WHERE id = ?1", params![venue_id])
        .await?
        .ok_or(ApiError::NotFound("venue"))?
        .int(0)?;
    if caller.manages(owner) { Ok(()) } else { Err(ApiError::Forbidden("you do not run this venue")) }
}
