//! The venue's gates in the cloud: the hub reports the gates it has enrolled,
//! the organizer assigns each to an entrance or revokes it, and the manifest
//! carries every gate the organizer set up, so a gate learns its entrance (and
//! the hub a revocation) through the feed it already pulls.
//!
//! A revocation is the organizer's word and outlives the hub's reports; only
//! assigning the gate again (`PUT`, even to no entrance) lifts it. A gate the
//! hub revoked itself is shown as such (`revoked_at_hub`) but never goes into
//! the manifest as revoked: the operator may enrol it again at the hub, and the
//! cloud must not revoke it back on the next pull.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize};

use crate::accounts::auth::Caller;
use crate::catalog;
use crate::common::error::ApiError;
use crate::db::{Db, Row, Value};
use crate::params;
use crate::tickets::bump_version;

/// Most gates one report may carry.
pub const MAX_REPORTED: usize = 1_000;
/// Most gates a venue may hold: a full report twice over, room for a hub
/// re-enrolled under new names (rows are never deleted, only revoked).
pub const MAX_PER_VENUE: usize = 2 * MAX_REPORTED;

/// `PUT /venues/{id}/gates` body: the gates the hub has enrolled.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateReport {
    /// Each gate once; at most [`MAX_REPORTED`].
    pub gates: Vec<ReportedGate>,
}

/// One gate as the hub knows it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportedGate {
    /// Its enrolment name at the hub: 1–32 of `A-Z a-z 0-9 - _`.
    pub gate_id: String,
    /// The hub revoked its enrolment.
    #[serde(default)]
    pub revoked: bool,
}

/// `PUT /admin/venues/{id}/gates/{gate_id}` body.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateAssignment {
    /// The entrance the gate stands at (an entrance of this venue); `null`:
    /// door staff choose on the gate. Required, so a forgotten field never
    /// clears an assignment.
    #[serde(deserialize_with = "present")]
    pub entrance_id: Option<i64>,
}

/// A field that must be there, even if `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::deserialize(d)
}

/// A gate as the organizer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Gate {
    /// Its enrolment name at the hub.
    pub gate_id: String,
    /// The entrance it stands at; none: door staff choose.
    pub entrance_id: Option<i64>,
    /// That entrance's name.
    pub entrance_name: Option<String>,
    /// Revoked by the organizer: the manifest tells the hub to end its enrolment.
    pub revoked: bool,
    /// Revoked at the hub, as it last reported.
    pub revoked_at_hub: bool,
    /// When the hub last reported it (Unix seconds); none: set up before
    /// the hub reported it.
    pub reported_at: Option<i64>,
    /// Last change by the organizer or a report (Unix seconds).
    pub updated_at: i64,
}

/// Refuses a gate id the hub could not have enrolled.
pub(crate) fn check_gate_id(field: &str, id: &str) -> Result<(), ApiError> {
    if schema::sync::valid_node_id(id) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("{field}: 1 to 32 of A-Z a-z 0-9 - _")))
    }
}

/// Records the hub's report: new gates are created with no entrance, and every
/// reported gate gets `reported_at` and whether the hub revoked it. The
/// manifest does not change (nothing in it comes from the hub). Returns the
/// venue's gates.
pub async fn report(
    db: &Db,
    caller: &Caller,
    venue_id: i64,
    report: &GateReport,
    now: i64,
) -> Result<Vec<Gate>, ApiError> {
    super::feed::require_feed_access(db, caller, venue_id).await?;
    let ids = check_report(report)?;
    if !ids.is_empty() {
        room_for(db, venue_id, &ids).await?;
        let revoked_at_hub: BTreeSet<&str> =
            report.gates.iter().filter(|g| g.revoked).map(|g| g.gate_id.as_str()).collect();
        let mut values = Vec::with_capacity(2 + ids.len());
        values.extend([Value::from(venue_id), Value::from(now)]);
        let rows: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                values.push(Value::from(*id));
                // 0 or 1, ours: no reported text goes into the statement.
                let at_hub = i32::from(revoked_at_hub.contains(id));
                format!("(?1, ?{}, 0, {at_hub}, ?2, ?2)", i + 3)
            })
            .collect();
        let sql = format!(
            "INSERT INTO venue_gates (venue_id, gate_id, revoked, hub_revoked, reported_at, updated_at) VALUES {}
             ON CONFLICT (venue_id, gate_id)
             DO UPDATE SET reported_at = excluded.reported_at, hub_revoked = excluded.hub_revoked",
            rows.join(", ")
        );
        let mut tx = db.begin().await?;
        tx.execute(&sql, &values).await?;
        tx.commit().await?;
    }
    venue_gates(db, venue_id).await
}

/// The report's gate ids, each checked and once; at most [`MAX_REPORTED`].
fn check_report(report: &GateReport) -> Result<Vec<&str>, ApiError> {
    if report.gates.len() > MAX_REPORTED {
        return Err(ApiError::BadRequest(format!("gates: at most {MAX_REPORTED}")));
    }
    let mut seen = BTreeSet::new();
    for gate in &report.gates {
        check_gate_id("gates.gate_id", &gate.gate_id)?;
        if !seen.insert(gate.gate_id.as_str()) {
            return Err(ApiError::BadRequest(format!("gates: {} is reported twice", gate.gate_id)));
        }
    }
    Ok(seen.into_iter().collect())
}

/// Refuses gates that would take the venue past [`MAX_PER_VENUE`]. Checked
/// before the write, so two writers at once may pass it together: the bound
/// is against a hub growing the table without end, not an exact quota.
async fn room_for(db: &Db, venue_id: i64, ids: &[&str]) -> Result<(), ApiError> {
    let known: BTreeSet<String> = db
        .query("SELECT gate_id FROM venue_gates WHERE venue_id = ?1", params![venue_id])
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<_, _>>()?;
    let new = ids.iter().filter(|id| !known.contains(**id)).count();
    if new > 0 && known.len() + new > MAX_PER_VENUE {
        return Err(ApiError::Conflict(format!("a venue has at most {MAX_PER_VENUE} gates")));
    }
    Ok(())
}

/// A venue's gates, by gate id, for a caller who runs it.
pub async fn gates(db: &Db, caller: &Caller, venue_id: i64) -> Result<Vec<Gate>, ApiError> {
    catalog::require_venue_owner(db, caller, venue_id).await?;
    venue_gates(db, venue_id).await
}

/// A venue's gates, by gate id, for a caller already checked.
pub(crate) async fn venue_gates(db: &Db, venue_id: i64) -> Result<Vec<Gate>, ApiError> {
    let rows = db
        .query(
            "SELECT g.gate_id, g.entrance_id, e.name, g.revoked, g.reported_at, g.updated_at, g.hub_revoked
             FROM venue_gates g LEFT JOIN entrances e ON e.id = g.entrance_id WHERE g.venue_id = ?1",
            params![venue_id],
        )
        .await?;
    let mut gates = rows.iter().map(gate_from).collect::<Result<Vec<_>, _>>()?;
    // Sorted here, not in SQL: PostgreSQL's collation may not be byte order.
    gates.sort_by(|a, b| a.gate_id.cmp(&b.gate_id));
    Ok(gates)
}

fn gate_from(r: &Row) -> Result<Gate, ApiError> {
    Ok(Gate {
        gate_id: r.text(0)?,
        entrance_id: r.opt_int(1)?,
        entrance_name: r.opt_text(2)?,
        revoked: r.bool(3)?,
        revoked_at_hub: r.bool(6)?,
        reported_at: r.opt_int(4)?,
        updated_at: r.int(5)?,
    })
}

/// Sets the entrance a gate stands at (or none), creating the gate if the hub
/// has not reported it yet, and lifts a revocation. Bumps the manifest if
/// anything changed.
pub async fn assign(
    db: &Db,
    caller: &Caller,
    venue_id: i64,
    gate_id: &str,
    assignment: &GateAssignment,
    now: i64,
) -> Result<Gate, ApiError> {
    catalog::require_venue_owner(db, caller, venue_id).await?;
    check_gate_id("gate_id", gate_id)?;
    if let Some(entrance) = assignment.entrance_id
        && !super::layout::venue_entrances(db, venue_id).await?.iter().any(|e| e.id == entrance)
    {
        return Err(ApiError::Unprocessable(format!("entrance_id: {entrance} is not an entrance of this venue")));
    }
    room_for(db, venue_id, &[gate_id]).await?;
    let mut tx = db.begin().await?;
    // The same assignment again changes no row (entrance ids are positive, so
    // -1 stands for none), and so no manifest: a form sent twice costs the
    // hubs nothing.
    let changed = tx
        .execute(
            "INSERT INTO venue_gates (venue_id, gate_id, entrance_id, revoked, updated_at) VALUES (?1, ?2, ?3, 0, ?4)
             ON CONFLICT (venue_id, gate_id)
             DO UPDATE SET entrance_id = excluded.entrance_id, revoked = 0, updated_at = excluded.updated_at
             WHERE venue_gates.revoked = 1
                OR COALESCE(venue_gates.entrance_id, -1) <> COALESCE(excluded.entrance_id, -1)",
            params![venue_id, gate_id, assignment.entrance_id, now],
        )
        .await?;
    if changed > 0 {
        bump_version(&mut tx, venue_id).await?;
    }
    tx.commit().await?;
    venue_gates(db, venue_id)
        .await?
        .into_iter()
        .find(|g| g.gate_id == gate_id)
        .ok_or_else(|| ApiError::Internal(format!("gate {gate_id} gone after its assignment")))
}

/// Revokes a gate: the row stays (its entrance too), marked revoked, and the
/// manifest tells the hub. Revoking a revoked gate changes nothing.
pub async fn revoke(db: &Db, caller: &Caller, venue_id: i64, gate_id: &str, now: i64) -> Result<(), ApiError> {
    catalog::require_venue_owner(db, caller, venue_id).await?;
    check_gate_id("gate_id", gate_id)?;
    let mut tx = db.begin().await?;
    let changed = tx
        .execute(
            "UPDATE venue_gates SET revoked = 1, updated_at = ?3 WHERE venue_id = ?1 AND gate_id = ?2 AND revoked = 0",
            params![venue_id, gate_id, now],
        )
        .await?;
    if changed > 0 {
        bump_version(&mut tx, venue_id).await?;
    } else if tx
        .query_opt("SELECT 1 FROM venue_gates WHERE venue_id = ?1 AND gate_id = ?2", params![venue_id, gate_id])
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("gate"));
    }
    tx.commit().await?;
    Ok(())
}

/// The gates the manifest carries: those with an entrance or revoked (a gate
/// with neither is what a gate missing from the list means), by gate id.
pub(crate) async fn manifest_gates(db: &Db, venue_id: i64) -> Result<Vec<Gate>, ApiError> {
    let mut gates = venue_gates(db, venue_id).await?;
    gates.retain(|g| g.entrance_id.is_some() || g.revoked);
    Ok(gates)
}
