//! Seats: the best free seats side by side for a hold, and what an event's
//! seats look like to a buyer.

use serde::{Deserialize, Serialize};

use crate::common::error::ApiError;
use crate::db::Db;
use crate::params;

/// The best `quantity` free seats side by side on the venue's map, in label order.
pub(super) async fn best_seats(db: &Db, event_id: i64, type_id: i64, quantity: i64) -> Result<Vec<String>, ApiError> {
    let map = crate::catalog::event_venue_map(db, event_id)
        .await?
        .ok_or_else(|| ApiError::BadRequest("seats: the venue has no seating map; choose seats".into()))?;
    let free = db
        .query("SELECT label FROM seats WHERE ticket_type_id = ?1 AND hold_id IS NULL AND sold = 0", params![type_id])
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    let free = free.iter().map(String::as_str).collect();
    let mut block = map
        .best_block(&free, usize::try_from(quantity).unwrap_or(0))
        .ok_or_else(|| ApiError::Conflict(format!("no {quantity} seats side by side are left; choose seats")))?;
    block.sort();
    Ok(block)
}

/// One seat of `GET /events/{id}/seats`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SeatState {
    /// Label as on the ticket.
    pub label: String,
    /// Section, from the venue's map.
    pub section: Option<String>,
    /// Row, from the venue's map.
    pub row: Option<String>,
    /// Where to draw it.
    pub x: Option<f64>,
    /// Where to draw it.
    pub y: Option<f64>,
    /// `free`, `held` (in someone's basket; free again if not bought) or `sold`.
    pub status: String,
}

/// The seats of one seated ticket type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TypeSeats {
    /// Ticket type.
    pub ticket_type_id: i64,
    /// Its name.
    pub name: String,
    /// Price, minor units.
    pub price_minor: i64,
    /// Currency.
    pub currency: String,
    /// Its seats, best first as the venue's map orders them.
    pub seats: Vec<SeatState>,
}

/// Live per-seat availability of a published event's seated ticket types.
pub async fn seat_availability(db: &Db, event_id: i64) -> Result<Vec<TypeSeats>, ApiError> {
    let published = db.query_opt("SELECT status FROM events WHERE id = ?1", params![event_id]).await?;
    if published.map(|r| r.text(0)).transpose()?.as_deref() != Some("published") {
        return Err(ApiError::NotFound("event"));
    }
    let map = crate::catalog::event_venue_map(db, event_id).await?;
    let mut places = std::collections::HashMap::new();
    if let Some(map) = &map {
        for (place, section, row, seat) in map.seats() {
            places.insert(seat.label.as_str(), (place, section.name.as_str(), row.name.as_str(), seat.x, seat.y));
        }
    }
    let rows = db
        .query(
            "SELECT t.id, t.name, t.price_minor, t.currency, s.label, s.hold_id, s.sold
             FROM ticket_types t JOIN seats s ON s.ticket_type_id = t.id
             WHERE t.event_id = ?1 AND t.seated <> 0 ORDER BY t.id, s.label",
            params![event_id],
        )
        .await?;
    let mut types: Vec<TypeSeats> = Vec::new();
    for r in &rows {
        let id = r.int(0)?;
        if types.last().is_none_or(|t| t.ticket_type_id != id) {
            types.push(TypeSeats {
                ticket_type_id: id,
                name: r.text(1)?,
                price_minor: r.int(2)?,
                currency: r.text(3)?,
                seats: Vec::new(),
            });
        }
        let label = r.text(4)?;
        let status = match (r.int(6)? != 0, r.opt_text(5)?.is_some()) {
            (true, _) => "sold",
            (false, true) => "held",
            (false, false) => "free",
        };
        let place = places.get(label.as_str());
        let seat = SeatState {
            section: place.map(|p| p.1.to_owned()),
            row: place.map(|p| p.2.to_owned()),
            x: place.map(|p| p.3),
            y: place.map(|p| p.4),
            status: status.into(),
            label,
        };
        if let Some(t) = types.last_mut() {
            t.seats.push(seat);
        }
    }
    for t in &mut types {
        // Map order (best first); seats the map lacks after, by label.
        t.seats.sort_by_key(|s| {
            let place = places.get(s.label.as_str()).map(|p| p.0);
            (place.is_none(), place)
        });
    }
    Ok(types)
}
