//! What venue hubs talk to: device tokens, the signed ticket manifest
//! (snapshot or delta, with revocations, the venue's layout and its gates) and
//! the upload of scans and conflicts.

use std::collections::BTreeSet;

use schema::entry::{TicketStatus, UnknownTicketPolicy};
use schema::manifest::{
    AreaRecord, EntranceRecord, GateRecord, ListDoors, ListRecord, Manifest, TicketRecord, TicketTypeRecord,
    VenueLayout,
};
use schema::uplink::{ScanUpload, UploadReceipt};
use schema::{TicketSigner, barcode, holder};
use serde::{Deserialize, Serialize};

use super::lists::{CheckinList, UnknownTickets};
use crate::accounts::auth::{Caller, DEVICE_TOKEN_TTL, Role, Tokens};
use crate::catalog;
use crate::common::error::ApiError;
use crate::db::Db;
use crate::params;

/// A hub device and its token (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceToken {
    /// Device id.
    pub device_id: i64,
    /// Venue it serves.
    pub venue_id: i64,
    /// Bearer token for the venue feed.
    pub token: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// `POST /admin/venues/{id}/devices` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// A name for the operator, e.g. "Main hall hub".
    pub name: String,
}

/// Registers a hub device for a venue and issues its token.
pub async fn add_device(
    db: &Db,
    tokens: &Tokens,
    caller: &Caller,
    venue_id: i64,
    device: &NewDevice,
    now: i64,
) -> Result<DeviceToken, ApiError> {
    catalog::require_venue_owner(db, caller, venue_id).await?;
    if device.name.trim().is_empty() || device.name.len() > 200 {
        return Err(ApiError::BadRequest("name: 1 to 200 characters".into()));
    }
    let mut tx = db.begin().await?;
    let id = tx
        .query_one(
            "INSERT INTO devices (venue_id, name, created_at) VALUES (?1, ?2, ?3) RETURNING id",
            params![venue_id, device.name.trim(), now],
        )
        .await?
        .int(0)?;
    tx.commit().await?;
    let token = tokens.issue(id, Role::Hub, Some(venue_id), now, DEVICE_TOKEN_TTL)?;
    Ok(DeviceToken { device_id: id, venue_id, token, expires_at: now + DEVICE_TOKEN_TTL })
}

/// Revokes a hub device: its token stops working at once.
pub async fn revoke_device(db: &Db, caller: &Caller, venue_id: i64, device_id: i64) -> Result<(), ApiError> {
    catalog::require_venue_owner(db, caller, venue_id).await?;
    let changed = db
        .execute("UPDATE devices SET revoked = 1 WHERE id = ?1 AND venue_id = ?2", params![device_id, venue_id])
        .await?;
    if changed == 0 { Err(ApiError::NotFound("device")) } else { Ok(()) }
}

/// Refuses unless the caller is an unrevoked hub of this venue (or its organizer or an admin).
pub(crate) async fn require_feed_access(db: &Db, caller: &Caller, venue_id: i64) -> Result<(), ApiError> {
    if caller.role != Role::Hub {
        return catalog::require_venue_owner(db, caller, venue_id).await;
    }
    if caller.venue != Some(venue_id) {
        return Err(ApiError::Forbidden("this device serves another venue"));
    }
    let row = db
        .query_opt("SELECT revoked FROM devices WHERE id = ?1 AND venue_id = ?2", params![caller.id, venue_id])
        .await?;
    match row.map(|r| r.bool(0)).transpose()? {
        Some(false) => Ok(()),
        _ => Err(ApiError::Unauthenticated("device revoked or unknown")),
    }
}

/// A built manifest.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    /// Version it brings the venue to.
    pub version: i64,
    /// Whether it is a delta on top of `since`.
    pub delta: bool,
    /// The signed file (`TXM3…`), as gate-agent imports it.
    pub bytes: Vec<u8>,
}

/// Builds the venue's manifest: a delta since `since` when given (and not
/// ahead of the cloud), else a snapshot. `None` when `since` is current.
pub async fn manifest(
    db: &Db,
    signer: &TicketSigner,
    caller: &Caller,
    venue_id: i64,
    since: Option<i64>,
    now: i64,
) -> Result<Option<SignedManifest>, ApiError> {
    require_feed_access(db, caller, venue_id).await?;
    let version = db
        .query_opt("SELECT manifest_version FROM venues WHERE id = ?1", params![venue_id])
        .await?
        .ok_or(ApiError::NotFound("venue"))?
        .int(0)?;
    // A hub ahead of the cloud (a restored cloud database) gets a snapshot.
    let base = since.filter(|s| (1..=version).contains(s));
    if base == Some(version) {
        return Ok(None);
    }
    let types = db
        .query(
            "SELECT t.id, t.event_id, t.name FROM ticket_types t JOIN events e ON e.id = t.event_id
             WHERE e.venue_id = ?1 AND e.status <> 'draft' ORDER BY t.id",
            params![venue_id],
        )
        .await?;
    let events = db
        .query("SELECT id, title FROM events WHERE venue_id = ?1 AND status <> 'draft' ORDER BY id", params![venue_id])
        .await?;
    let tickets = db
        .query(
            "SELECT id, event_id, ticket_type_id, status, barcode, holder_name, static_part FROM tickets
             WHERE venue_id = ?1 AND changed_version > ?2 ORDER BY id",
            params![venue_id, base.unwrap_or(0)],
        )
        .await?;
    let organized = super::lists::of_venue(db, venue_id).await?;
    let layout = layout_record(db, venue_id).await?;
    let manifest = Manifest {
        venue_id: to_u64(venue_id)?,
        version: to_u64(version)?,
        base_version: base.map(to_u64).transpose()?,
        issued_at: to_u64(now)?,
        ticket_types: types
            .iter()
            .map(|r| Ok(TicketTypeRecord { id: to_u32(r.int(0)?)?, event_id: to_u64(r.int(1)?)?, name: r.text(2)? }))
            .collect::<Result<_, ApiError>>()?,
        lists: lists(events, organized)?,
        layout,
        tickets: tickets.iter().map(ticket_record).collect::<Result<_, _>>()?,
    };
    Ok(Some(SignedManifest { version, delta: base.is_some(), bytes: manifest.sign(signer) }))
}

/// The venue's entrances and areas, as gates name them, and the gates the
/// organizer set up.
async fn layout_record(db: &Db, venue_id: i64) -> Result<VenueLayout, ApiError> {
    // Gates first: entrances are never deleted, so every entrance a gate read
    // here names is in the list read after it, even if one was added and
    // assigned in between. A gate can always resolve its entrance.
    let gates = super::gates::manifest_gates(db, venue_id).await?;
    let entrances = super::layout::venue_entrances(db, venue_id).await?;
    let areas = super::layout::venue_areas(db, venue_id).await?;
    Ok(VenueLayout {
        entrances: entrances
            .into_iter()
            .map(|e| Ok(EntranceRecord { id: to_u32(e.id)?, name: e.name }))
            .collect::<Result<_, ApiError>>()?,
        areas: areas
            .into_iter()
            .map(|a| Ok(AreaRecord { id: to_u32(a.id)?, name: a.name, capacity: a.capacity.map(to_u32).transpose()? }))
            .collect::<Result<_, ApiError>>()?,
        gates: gates
            .into_iter()
            .map(|g| {
                let entrance_id = g.entrance_id.map(to_u32).transpose()?;
                Ok(GateRecord { gate_id: g.gate_id, entrance_id, revoked: g.revoked })
            })
            .collect::<Result<_, ApiError>>()?,
    })
}

/// The venue's check-in lists: each event's own, or its default list (every
/// ticket once, at every entrance, under the event's id) when it has none.
fn lists(events: Vec<crate::db::Row>, organized: Vec<CheckinList>) -> Result<Vec<ListRecord>, ApiError> {
    let with_lists: BTreeSet<i64> = organized.iter().map(|l| l.event_id).collect();
    let mut records = Vec::with_capacity(events.len() + organized.len());
    for event in &events {
        let id = event.int(0)?;
        if with_lists.contains(&id) {
            continue;
        }
        records.push(ListRecord {
            id: to_u32(id)?,
            name: format!("{} — all entrances", event.text(1)?),
            event_id: to_u64(id)?,
            ticket_types: None,
            allow_multiple_entries: false,
            allow_entry_after_exit: false,
            unknown_tickets: UnknownTicketPolicy::Reject,
            doors: ListDoors::default(),
        });
    }
    for list in organized {
        let types = list.ticket_type_ids.iter().map(|t| to_u32(*t)).collect::<Result<Vec<_>, _>>()?;
        records.push(ListRecord {
            id: list.manifest_id,
            name: list.name,
            event_id: to_u64(list.event_id)?,
            ticket_types: (!types.is_empty()).then_some(types),
            allow_multiple_entries: list.allow_multiple_entries,
            allow_entry_after_exit: list.allow_reentry,
            unknown_tickets: match list.unknown_tickets {
                UnknownTickets::Accept => UnknownTicketPolicy::Accept,
                UnknownTickets::Reject => UnknownTicketPolicy::Reject,
            },
            doors: ListDoors {
                opens_at: list.opens_at.map(to_u64).transpose()?,
                closes_at: list.closes_at.map(to_u64).transpose()?,
                scan_exits: list.scan_exits,
                area_id: list.area_id.map(to_u32).transpose()?,
                entrance_ids: list.entrance_ids.iter().map(|e| to_u32(*e)).collect::<Result<_, _>>()?,
            },
        });
    }
    Ok(records)
}

fn ticket_record(row: &crate::db::Row) -> Result<TicketRecord, ApiError> {
    let ticket_id = to_u64(row.int(0)?)?;
    // The holder's name travels sealed with a key only the barcode gives: the
    // issuer's signature, which a static code carries and every code a wallet
    // shows repeats. A rotating ticket no wallet has bound yet has none.
    let signature = match row.opt_text(6)? {
        Some(static_part) => data_encoding::HEXLOWER
            .decode(static_part.as_bytes())
            .ok()
            .and_then(|bytes| bytes.get(bytes.len().saturating_sub(barcode::SIGNATURE_LEN)..)?.try_into().ok()),
        None => barcode::parse(&row.text(4)?).ok().map(|parsed| parsed.signature),
    };
    let sealed_holder = signature.and_then(|signature| {
        let mut nonce = [0u8; holder::NONCE_LEN];
        getrandom::fill(&mut nonce).ok()?;
        Some(holder::seal(&signature, ticket_id, &row.text(5).ok()?, nonce))
    });
    Ok(TicketRecord {
        ticket_id,
        event_id: to_u64(row.int(1)?)?,
        ticket_type_id: to_u32(row.int(2)?)?,
        status: if row.text(3)? == "valid" { TicketStatus::Valid } else { TicketStatus::Revoked },
        sealed_holder,
    })
}

fn to_u64(v: i64) -> Result<u64, ApiError> {
    u64::try_from(v).map_err(|_| ApiError::Internal(format!("negative id {v}")))
}

fn ingested_ticket(s: &schema::uplink::UploadedScan) -> Option<i64> {
    s.ticket_id.and_then(|t| i64::try_from(t).ok())
}

fn to_u32(v: i64) -> Result<u32, ApiError> {
    u32::try_from(v).map_err(|_| ApiError::Internal(format!("id {v} does not fit a barcode's 32 bits")))
}

/// Stores uploaded scans and conflicts; repeats are counted, not stored twice.
pub async fn ingest(
    db: &Db,
    caller: &Caller,
    venue_id: i64,
    upload: &ScanUpload,
    now: i64,
) -> Result<UploadReceipt, ApiError> {
    require_feed_access(db, caller, venue_id).await?;
    upload.validate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut tx = db.begin().await?;
    let mut receipt = UploadReceipt { stored: 0, duplicates: 0 };
    for s in &upload.scans {
        let stored = tx
            .execute(
                "INSERT INTO scans (scan_id, venue_id, gate_id, ticket_id, event_id, list_id, direction, decision, reason,
                                    offline, annulled, hlc, wall_ms, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (venue_id, scan_id) DO NOTHING",
                params![
                    s.scan_id.clone(),
                    venue_id,
                    s.gate_id.clone(),
                    s.ticket_id,
                    s.event_id,
                    s.list_id,
                    s.direction.clone(),
                    s.decision.clone(),
                    s.reason.clone(),
                    s.offline,
                    s.annulled,
                    s.hlc.to_string(),
                    s.wall_ms,
                    now
                ],
            )
            .await?;
        if stored == 0 {
            receipt.duplicates += 1;
            // An annulment can follow an upload; it only ever goes one way.
            if s.annulled {
                tx.execute(
                    "UPDATE scans SET annulled = 1 WHERE venue_id = ?1 AND scan_id = ?2",
                    params![venue_id, s.scan_id.clone()],
                )
                .await?;
            }
            continue;
        }
        receipt.stored += 1;
        let ingested = crate::domain_events::DomainEvent::ScanIngested {
            venue_id,
            scan_id: s.scan_id.clone(),
            gate_id: s.gate_id.clone(),
            ticket_id: s.ticket_id.and_then(|t| i64::try_from(t).ok()),
            event_id: s.event_id.and_then(|e| i64::try_from(e).ok()),
            decision: s.decision.clone(),
            direction: s.direction.clone(),
            wall_ms: s.wall_ms,
        };
        crate::domain_events::record(&mut tx, &ingested, now).await?;
        if let (Some(ticket), Some("revoked")) = (ingested_ticket(s), s.reason.as_deref()) {
            crate::sale::cases::revoked_scan(&mut tx, venue_id, ticket, now).await?;
        }
        if let (Some(ticket), "accept", "entry", false) =
            (s.ticket_id, s.decision.as_str(), s.direction.as_str(), s.annulled)
        {
            tx.execute(
                "UPDATE tickets SET scanned_at = ?1 WHERE id = ?2 AND venue_id = ?3 AND scanned_at IS NULL",
                params![s.wall_ms.div_euclid(1000), ticket, venue_id],
            )
            .await?;
        }
    }
    for c in &upload.conflicts {
        let stored = tx
            .execute(
                "INSERT INTO scan_conflicts (venue_id, first_scan, second_scan, ticket_id, list_id, first_gate, first_hlc,
                                             second_gate, second_hlc, detected_ms, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (venue_id, first_scan, second_scan) DO NOTHING",
                params![
                    venue_id,
                    c.first_scan.clone(),
                    c.second_scan.clone(),
                    c.ticket_id,
                    c.list_id,
                    c.first_gate.clone(),
                    c.first_hlc.to_string(),
                    c.second_gate.clone(),
                    c.second_hlc.to_string(),
                    c.detected_ms,
                    now
                ],
            )
            .await?;
        if stored == 0 {
            receipt.duplicates += 1;
        } else {
            receipt.stored += 1;
            if let Ok(ticket) = i64::try_from(c.ticket_id) {
                crate::sale::cases::gate_conflict(&mut tx, venue_id, ticket, (&c.first_gate, &c.second_gate), now)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(receipt)
}
