//! A venue's layout as its organizer sets it up: the entrances people come in
//! by (Main, VIP, Staff…) and the areas they lead into (the floor, the
//! balcony…), each with an optional capacity. Both travel in the venue's
//! manifest, so adding one bumps its version; gates name entrances in their
//! refusals, while areas and capacities are carried for the hub, which does not
//! count them yet.

use serde::{Deserialize, Serialize};

use crate::accounts::auth::Caller;
use crate::catalog;
use crate::common::error::ApiError;
use crate::db::{Db, DbError, Row};
use crate::params;
use crate::tickets::bump_version;

/// Longest entrance or area name, characters.
pub const MAX_NAME: usize = 100;
/// Most entrances or areas a venue may have.
pub const MAX_PER_VENUE: i64 = 200;

/// `POST /admin/venues/{id}/entrances` body.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntrance {
    /// What door staff and visitors call it, e.g. "VIP entrance"; unique in the venue.
    pub name: String,
}

/// An entrance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Entrance {
    /// Id.
    pub id: i64,
    /// Its venue.
    pub venue_id: i64,
    /// Name.
    pub name: String,
}

/// `POST /admin/venues/{id}/areas` body.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArea {
    /// Name, e.g. "Balcony"; unique in the venue.
    pub name: String,
    /// How many people it may hold; none: no limit of its own.
    #[serde(default)]
    pub capacity: Option<i64>,
}

/// An area.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Area {
    /// Id.
    pub id: i64,
    /// Its venue.
    pub venue_id: i64,
    /// Name.
    pub name: String,
    /// Capacity, if it has one.
    pub capacity: Option<i64>,
}

/// A name as stored: trimmed, 1 to [`MAX_NAME`] characters.
pub(crate) fn check_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::BadRequest(format!("{field}: 1 to {MAX_NAME} characters")));
    }
    Ok(name.to_owned())
}

/// A unique-key refusal as the conflict it is; anything else as it was.
pub(crate) fn taken(e: DbError, what: &str) -> ApiError {
    if e.is_duplicate() { ApiError::Conflict(format!("{what} already exists")) } else { e.into() }
}

/// Adds an entrance to a venue the caller runs.
pub async fn add_entrance(
    db: &Db,
    caller: &Caller,
    venue_id: i64,
    new: &NewEntrance,
    now: i64,
) -> Result<Entrance, ApiError> {
    catalog::require_venue_owner(db, caller, venue_id).await?;
    let name = check_name("name", &new.name)?;
    room_for_one_more(db, "entrances", venue_id).await?;
    let mut tx = db.begin().await?;
    let row = tx
        .query_one(
            "INSERT INTO entrances (venue_id, name, created_at) VALUES (?1, ?2, ?3) RETURNING id",
            params![venue_id, name.as_str(), now],
        )
        .await
        .map_err(|e| taken(e, "an entrance of that name"))?;
    bump_version(&mut tx, venue_id).await?;
    tx.commit().await?;
    Ok(Entrance { id: row.int(0)?, venue_id, name })
}

/// A venue's entrances, in the order they were added.
pub async fn entrances(db: &Db, caller: &Caller, venue_id: i64) -> Result<Vec<Entrance>, ApiError> {
    catalog::require_venue_owner(db, caller, venue_id).await?;
    venue_entrances(db, venue_id).await
}

/// A venue's entrances, in the order they were added, for a caller already checked.
pub(crate) async fn venue_entrances(db: &Db, venue_id: i64) -> Result<Vec<Entrance>, ApiError> {
    let rows = db.query("SELECT id, name FROM entrances WHERE venue_id = ?1 ORDER BY id", params![venue_id]).await?;
    rows.iter().map(|r| Ok(Entrance { id: r.int(0)?, venue_id, name: r.text(1)? })).collect()
}

/// Adds an area to a venue the caller runs.
pub async fn add_area(db: &Db, caller: &Caller, venue_id: i64, new: &NewArea, now: i64) -> Result<Area, ApiError> {
    catalog::require_venue_owner(db, caller, venue_id).await?;
    let name = check_name("name", &new.name)?;
    if new.capacity.is_some_and(|c| !(1..=10_000_000).contains(&c)) {
        return Err(ApiError::BadRequest("capacity: 1 to 10000000".into()));
    }
    room_for_one_more(db, "areas", venue_id).await?;
    let mut tx = db.begin().await?;
    let row = tx
        .query_one(
            "INSERT INTO areas (venue_id, name, capacity, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
            params![venue_id, name.as_str(), new.capacity, now],
        )
        .await
        .map_err(|e| taken(e, "an area of that name"))?;
    bump_version(&mut tx, venue_id).await?;
    tx.commit().await?;
    Ok(Area { id: row.int(0)?, venue_id, name, capacity: new.capacity })
}

/// A venue's areas, in the order they were added.
pub async fn areas(db: &Db, caller: &Caller, venue_id: i64) -> Result<Vec<Area>, ApiError> {
    catalog::require_venue_owner(db, caller, venue_id).await?;
    venue_areas(db, venue_id).await
}

/// A venue's areas, in the order they were added, for a caller already checked.
pub(crate) async fn venue_areas(db: &Db, venue_id: i64) -> Result<Vec<Area>, ApiError> {
    let rows =
        db.query("SELECT id, name, capacity FROM areas WHERE venue_id = ?1 ORDER BY id", params![venue_id]).await?;
    rows.iter().map(|r| area_from(venue_id, r)).collect()
}

fn area_from(venue_id: i64, r: &Row) -> Result<Area, ApiError> {
    Ok(Area { id: r.int(0)?, venue_id, name: r.text(1)?, capacity: r.opt_int(2)? })
}

/// Refuses a venue's entrance or area past [`MAX_PER_VENUE`].
async fn room_for_one_more(db: &Db, table: &'static str, venue_id: i64) -> Result<(), ApiError> {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE venue_id = ?1");
    if db.query_one(&sql, params![venue_id]).await?.int(0)? >= MAX_PER_VENUE {
        return Err(ApiError::Conflict(format!("a venue has at most {MAX_PER_VENUE} {table}")));
    }
    Ok(())
}
