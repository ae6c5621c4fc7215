//! Check-in lists: per event, which tickets a door admits and how. A list
//! names the ticket types (and seat sections) it admits, the hours it is open,
//! whether exits are scanned, whether a ticket may enter more than once or
//! again after an exit, the area it leads into and the entrances that work it.
//!
//! Lists travel to the gates in the venue's signed manifest, so a change bumps
//! the venue's manifest version: hubs fetch it like a revocation. An event
//! with no list of its own gets one default list that admits every ticket
//! once at every entrance, under the event's own id (what gates configured by
//! hand use); an organizer's lists appear in the manifest under
//! [`manifest_id`], from 2³¹ up, so the two never meet.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::layout::{check_name, taken, venue_areas, venue_entrances};
use crate::accounts::auth::Caller;
use crate::catalog;
use crate::common::error::ApiError;
use crate::db::{Db, Row, Tx};
use crate::params;
use crate::tickets::bump_version;

/// Most lists one event may have.
pub const MAX_PER_EVENT: i64 = 100;
/// The latest time a list may open or close: the end of year 9999.
const LATEST: i64 = 253_402_300_799;
/// Where the organizer's list ids start in the manifest: below are the
/// events' default lists, whose ids are their events' ids.
pub const MANIFEST_ID_BASE: u32 = 1 << 31;

/// What a gate does with a validly signed ticket its replica does not hold
/// (bought after its last sync).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnknownTickets {
    /// Admit it, flagged: its signature proves it was sold.
    Accept,
    /// Refuse it as unknown.
    #[default]
    Reject,
}

impl UnknownTickets {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
        }
    }

    fn parse(text: &str) -> Self {
        // A damaged row reads as the stricter policy.
        if text == "accept" { Self::Accept } else { Self::Reject }
    }
}

/// `POST /admin/events/{id}/checkin-lists` and `PUT /admin/checkin-lists/{id}` body.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCheckinList {
    /// Name, e.g. "VIP"; unique in the event.
    pub name: String,
    /// Ticket types admitted; empty: every type of the event.
    #[serde(default)]
    pub ticket_type_ids: Vec<i64>,
    /// Seat sections admitted; must be empty for now (gates cannot tell sections apart yet).
    #[serde(default)]
    pub sections: Vec<String>,
    /// Open from; none: whenever the ticket is valid.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub opens_at: Option<OffsetDateTime>,
    /// Open until; none: whenever the ticket is valid.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub closes_at: Option<OffsetDateTime>,
    /// Whether people leaving are scanned out.
    #[serde(default)]
    pub scan_exits: bool,
    /// A ticket may enter any number of times.
    #[serde(default)]
    pub allow_multiple_entries: bool,
    /// A ticket may enter again after it was scanned out.
    #[serde(default)]
    pub allow_reentry: bool,
    /// The area it leads into (an area of the event's venue).
    #[serde(default)]
    pub area_id: Option<i64>,
    /// The entrances that work it; empty: every entrance.
    #[serde(default)]
    pub entrance_ids: Vec<i64>,
    /// Tickets a gate's replica does not hold yet.
    #[serde(default)]
    pub unknown_tickets: UnknownTickets,
}

/// A check-in list as its organizer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckinList {
    /// Id.
    pub id: i64,
    /// Its id in the venue's manifest, which gates and scans carry.
    pub manifest_id: u32,
    /// Its event.
    pub event_id: i64,
    /// Name.
    pub name: String,
    /// Ticket types admitted; empty: all.
    pub ticket_type_ids: Vec<i64>,
    /// Seat sections admitted; empty: all.
    pub sections: Vec<String>,
    /// Open from (Unix seconds).
    pub opens_at: Option<i64>,
    /// Open until (Unix seconds).
    pub closes_at: Option<i64>,
    /// Exits are scanned.
    pub scan_exits: bool,
    /// Any number of entries.
    pub allow_multiple_entries: bool,
    /// Entry again after an exit.
    pub allow_reentry: bool,
    /// The area it leads into.
    pub area_id: Option<i64>,
    /// The entrances that work it; empty: all.
    pub entrance_ids: Vec<i64>,
    /// Tickets a gate's replica does not hold yet.
    pub unknown_tickets: UnknownTickets,
}

/// A list's id in the manifest.
pub fn manifest_id(id: i64) -> Result<u32, ApiError> {
    u32::try_from(id)
        .ok()
        .filter(|id| *id < MANIFEST_ID_BASE)
        .map(|id| MANIFEST_ID_BASE + id)
        .ok_or_else(|| ApiError::Internal(format!("check-in list id {id} out of the manifest's range")))
}

/// A list as stored: checked against the event's types, the venue's map,
/// areas and entrances.
struct Checked {
    name: String,
    ticket_type_ids: Vec<i64>,
    sections: Vec<String>,
    opens_at: Option<i64>,
    closes_at: Option<i64>,
    entrance_ids: Vec<i64>,
}

async fn check(db: &Db, event_id: i64, venue_id: i64, new: &NewCheckinList) -> Result<Checked, ApiError> {
    let name = check_name("name", &new.name)?;
    let types: BTreeSet<i64> = new.ticket_type_ids.iter().copied().collect();
    let known: BTreeSet<i64> = catalog::ticket_types(db, event_id).await?.iter().map(|t| t.id).collect();
    if let Some(stranger) = types.iter().find(|id| !known.contains(id)) {
        return Err(ApiError::BadRequest(format!("ticket_type_ids: {stranger} is not a ticket type of this event")));
    }
    // Gates cannot yet tell which section a seat label is in: a list limited
    // to sections would admit every seat at the door, so it is refused.
    if !new.sections.is_empty() {
        return Err(ApiError::BadRequest(
            "sections: gates cannot tell seat sections apart yet; limit the list by ticket type".into(),
        ));
    }
    let (opens_at, closes_at) = (new.opens_at.map(|t| t.unix_timestamp()), new.closes_at.map(|t| t.unix_timestamp()));
    for (field, at) in [("opens_at", opens_at), ("closes_at", closes_at)] {
        if at.is_some_and(|at| !(0..=LATEST).contains(&at)) {
            return Err(ApiError::BadRequest(format!("{field}: between 1970 and 9999")));
        }
    }
    if let (Some(opens), Some(closes)) = (opens_at, closes_at)
        && opens >= closes
    {
        return Err(ApiError::BadRequest("closes_at: after opens_at".into()));
    }
    if let Some(area) = new.area_id
        && !venue_areas(db, venue_id).await?.iter().any(|a| a.id == area)
    {
        return Err(ApiError::BadRequest(format!("area_id: {area} is not an area of this event's venue")));
    }
    let entrances: BTreeSet<i64> = new.entrance_ids.iter().copied().collect();
    if !entrances.is_empty() {
        let known: BTreeSet<i64> = venue_entrances(db, venue_id).await?.iter().map(|e| e.id).collect();
        if let Some(stranger) = entrances.iter().find(|id| !known.contains(id)) {
            return Err(ApiError::BadRequest(format!("entrance_ids: {stranger} is not an entrance of this venue")));
        }
    }
    Ok(Checked {
        name,
        ticket_type_ids: types.into_iter().collect(),
        sections: Vec::new(),
        opens_at,
        closes_at,
        entrance_ids: entrances.into_iter().collect(),
    })
}

fn json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Adds a check-in list to an event the caller organises.
pub async fn create(
    db: &Db,
    caller: &Caller,
    event_id: i64,
    new: &NewCheckinList,
    now: i64,
) -> Result<CheckinList, ApiError> {
    let venue_id = catalog::require_event_organizer(db, caller, event_id).await?;
    let c = check(db, event_id, venue_id, new).await?;
    let count = db.query_one("SELECT COUNT(*) FROM checkin_lists WHERE event_id = ?1", params![event_id]).await?;
    if count.int(0)? >= MAX_PER_EVENT {
        return Err(ApiError::Conflict(format!("an event has at most {MAX_PER_EVENT} check-in lists")));
    }
    let mut tx = db.begin().await?;
    let id = tx
        .query_one(
            "INSERT INTO checkin_lists (event_id, name, ticket_type_ids, sections, opens_at, closes_at, scan_exits,
                 allow_multiple_entries, allow_reentry, area_id, unknown_tickets, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) RETURNING id",
            params![
                event_id,
                c.name.as_str(),
                json(&c.ticket_type_ids)?,
                json(&c.sections)?,
                c.opens_at,
                c.closes_at,
                new.scan_exits,
                new.allow_multiple_entries,
                new.allow_reentry,
                new.area_id,
                new.unknown_tickets.as_str(),
                now
            ],
        )
        .await
        .map_err(|e| taken(e, "a check-in list of that name"))?
        .int(0)?;
    set_entrances(&mut tx, id, &c.entrance_ids).await?;
    bump_version(&mut tx, venue_id).await?;
    tx.commit().await?;
    get_unchecked(db, id).await
}

/// Replaces a list's settings.
pub async fn update(
    db: &Db,
    caller: &Caller,
    id: i64,
    new: &NewCheckinList,
    now: i64,
) -> Result<CheckinList, ApiError> {
    let event_id = event_of(db, id).await?;
    let venue_id = catalog::require_event_organizer(db, caller, event_id).await?;
    let c = check(db, event_id, venue_id, new).await?;
    let mut tx = db.begin().await?;
    let changed = tx
        .execute(
            "UPDATE checkin_lists SET name = ?2, ticket_type_ids = ?3, sections = ?4, opens_at = ?5, closes_at = ?6,
             scan_exits = ?7, allow_multiple_entries = ?8, allow_reentry = ?9, area_id = ?10, unknown_tickets = ?11,
             updated_at = ?12
         WHERE id = ?1",
            params![
                id,
                c.name.as_str(),
                json(&c.ticket_type_ids)?,
                json(&c.sections)?,
                c.opens_at,
                c.closes_at,
                new.scan_exits,
                new.allow_multiple_entries,
                new.allow_reentry,
                new.area_id,
                new.unknown_tickets.as_str(),
                now
            ],
        )
        .await
        .map_err(|e| taken(e, "a check-in list of that name"))?;
    if changed == 0 {
        return Err(ApiError::NotFound("check-in list")); // deleted meanwhile
    }
    tx.execute("DELETE FROM checkin_list_entrances WHERE list_id = ?1", params![id]).await?;
    set_entrances(&mut tx, id, &c.entrance_ids).await?;
    bump_version(&mut tx, venue_id).await?;
    tx.commit().await?;
    get_unchecked(db, id).await
}

/// Deletes a list; scans recorded under it keep its id, never given again.
pub async fn delete(db: &Db, caller: &Caller, id: i64) -> Result<(), ApiError> {
    let event_id = event_of(db, id).await?;
    let venue_id = catalog::require_event_organizer(db, caller, event_id).await?;
    let mut tx = db.begin().await?;
    tx.execute("DELETE FROM checkin_list_entrances WHERE list_id = ?1", params![id]).await?;
    tx.execute("DELETE FROM checkin_lists WHERE id = ?1", params![id]).await?;
    bump_version(&mut tx, venue_id).await?;
    tx.commit().await?;
    Ok(())
}

/// An event's lists, in the order they were made.
pub async fn list(db: &Db, caller: &Caller, event_id: i64) -> Result<Vec<CheckinList>, ApiError> {
    catalog::require_event_organizer(db, caller, event_id).await?;
    let sql = format!("SELECT {COLUMNS} FROM checkin_lists WHERE event_id = ?1 ORDER BY id");
    let rows = db.query(&sql, params![event_id]).await?;
    let mut lists = Vec::with_capacity(rows.len());
    for row in &rows {
        lists.push(list_from(db, row).await?);
    }
    Ok(lists)
}

/// One list, for its event's organizer.
pub async fn get(db: &Db, caller: &Caller, id: i64) -> Result<CheckinList, ApiError> {
    let event_id = event_of(db, id).await?;
    catalog::require_event_organizer(db, caller, event_id).await?;
    get_unchecked(db, id).await
}

/// The lists of a venue's events that are not drafts, by id: what its
/// manifest carries.
pub(crate) async fn of_venue(db: &Db, venue_id: i64) -> Result<Vec<CheckinList>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM checkin_lists WHERE event_id IN
             (SELECT id FROM events WHERE venue_id = ?1 AND status <> 'draft') ORDER BY id"
    );
    let rows = db.query(&sql, params![venue_id]).await?;
    let mut lists = Vec::with_capacity(rows.len());
    for row in &rows {
        lists.push(list_from(db, row).await?);
    }
    Ok(lists)
}

const COLUMNS: &str = "id, event_id, name, ticket_type_ids, sections, opens_at, closes_at, scan_exits,
    allow_multiple_entries, allow_reentry, area_id, unknown_tickets";

async fn event_of(db: &Db, id: i64) -> Result<i64, ApiError> {
    let row = db.query_opt("SELECT event_id FROM checkin_lists WHERE id = ?1", params![id]).await?;
    Ok(row.ok_or(ApiError::NotFound("check-in list"))?.int(0)?)
}

async fn get_unchecked(db: &Db, id: i64) -> Result<CheckinList, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM checkin_lists WHERE id = ?1");
    let row = db.query_opt(&sql, params![id]).await?.ok_or(ApiError::NotFound("check-in list"))?;
    list_from(db, &row).await
}

async fn list_from(db: &Db, r: &Row) -> Result<CheckinList, ApiError> {
    let id = r.int(0)?;
    let entrances = db
        .query("SELECT entrance_id FROM checkin_list_entrances WHERE list_id = ?1 ORDER BY entrance_id", params![id])
        .await?;
    Ok(CheckinList {
        id,
        manifest_id: manifest_id(id)?,
        event_id: r.int(1)?,
        name: r.text(2)?,
        ticket_type_ids: stored_json(id, &r.text(3)?)?,
        sections: stored_json(id, &r.text(4)?)?,
        opens_at: r.opt_int(5)?,
        closes_at: r.opt_int(6)?,
        scan_exits: r.bool(7)?,
        allow_multiple_entries: r.bool(8)?,
        allow_reentry: r.bool(9)?,
        area_id: r.opt_int(10)?,
        entrance_ids: entrances.iter().map(|e| e.int(0)).collect::<Result<_, _>>()?,
        unknown_tickets: UnknownTickets::parse(&r.text(11)?),
    })
}

fn stored_json<T: serde::de::DeserializeOwned>(id: i64, text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::Internal(format!("stored check-in list {id}: {e}")))
}

async fn set_entrances(tx: &mut Tx, list_id: i64, entrance_ids: &[i64]) -> Result<(), ApiError> {
    for entrance in entrance_ids {
        tx.execute(
            "INSERT INTO checkin_list_entrances (list_id, entrance_id) VALUES (?1, ?2)",
            params![list_id, *entrance],
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organizer_lists_never_take_an_events_default_id() {
        assert_eq!(manifest_id(1).ok(), Some(MANIFEST_ID_BASE + 1));
        assert_eq!(manifest_id(i64::from(MANIFEST_ID_BASE) - 1).ok(), Some(u32::MAX));
        assert!(manifest_id(i64::from(MANIFEST_ID_BASE)).is_err());
        assert!(manifest_id(-1).is_err());
    }

    #[test]
    fn a_damaged_policy_reads_as_the_stricter_one() {
        assert_eq!(UnknownTickets::parse("accept"), UnknownTickets::Accept);
        assert_eq!(UnknownTickets::parse("reject"), UnknownTickets::Reject);
        assert_eq!(UnknownTickets::parse("?"), UnknownTickets::Reject);
    }
}
