//! Venue seating maps: sections of rows of seats, each seat with its label
//! (as printed on the ticket) and drawing coordinates. The organizer lists
//! sections, rows and seats best first, and that order is what "best
//! available" means: the first row, in map order, with enough free seats side
//! by side gives the block.
//!
//! Pure: validation and allocation, unit-tested here. The store keeps the map
//! as JSON on the venue and who holds each seat in `seats`.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Most seats one map may have.
pub const MAX_SEATS: usize = 200_000;
/// Longest section or row name.
pub const MAX_NAME_LEN: usize = 40;

/// A venue's seating map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatMap {
    /// Sections, best first.
    pub sections: Vec<Section>,
}

/// A section (stalls, balcony…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Name, unique in the map.
    pub name: String,
    /// Rows, best first.
    pub rows: Vec<Row>,
}

/// A row of seats side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// Name, unique in its section.
    pub name: String,
    /// Seats in the order they stand, best end first; neighbours in this
    /// list are neighbours in the hall.
    pub seats: Vec<MapSeat>,
}

/// One seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MapSeat {
    /// Label as on the ticket, unique in the map.
    pub label: String,
    /// Where to draw it (any unit the front end likes).
    pub x: f64,
    /// Where to draw it.
    pub y: f64,
}

/// What is wrong with a map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatMapError {
    /// A section or row without a name or with one too long.
    #[error("{0:?}: names are 1 to {MAX_NAME_LEN} bytes")]
    BadName(String),
    /// Two sections, or two rows of a section, share a name.
    #[error("{0:?} appears twice")]
    DuplicateName(String),
    /// A label a ticket could not carry.
    #[error("seat {0:?}: {1}")]
    BadLabel(String, String),
    /// Two seats share a label.
    #[error("seat {0:?} appears twice")]
    DuplicateSeat(String),
    /// A coordinate that is not a finite number.
    #[error("seat {0:?}: coordinates must be finite numbers")]
    BadCoordinate(String),
    /// More seats than a map may have.
    #[error("more than {MAX_SEATS} seats")]
    TooManySeats,
    /// A map without seats.
    #[error("the map has no seats")]
    Empty,
}

/// Where a seat stands: indexes into the map, so comparing two places
/// compares how good the seats are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    /// Section index.
    pub section: usize,
    /// Row index within the section.
    pub row: usize,
    /// Seat index within the row.
    pub seat: usize,
}

impl SeatMap {
    /// Checks names, labels and coordinates.
    pub fn validate(&self) -> Result<(), SeatMapError> {
        let name_ok = |n: &str| !n.trim().is_empty() && n.len() <= MAX_NAME_LEN;
        let mut sections = HashSet::new();
        let mut labels = HashSet::new();
        for section in &self.sections {
            if !name_ok(&section.name) {
                return Err(SeatMapError::BadName(section.name.clone()));
            }
            if !sections.insert(section.name.as_str()) {
                return Err(SeatMapError::DuplicateName(section.name.clone()));
            }
            let mut rows = HashSet::new();
            for row in &section.rows {
                if !name_ok(&row.name) {
                    return Err(SeatMapError::BadName(row.name.clone()));
                }
                if !rows.insert(row.name.as_str()) {
                    return Err(SeatMapError::DuplicateName(format!("{} row {}", section.name, row.name)));
                }
                for seat in &row.seats {
                    schema::SeatLabel::new(&seat.label)
                        .map_err(|e| SeatMapError::BadLabel(seat.label.clone(), e.to_string()))?;
                    if !(seat.x.is_finite() && seat.y.is_finite()) {
                        return Err(SeatMapError::BadCoordinate(seat.label.clone()));
                    }
                    if !labels.insert(seat.label.as_str()) {
                        return Err(SeatMapError::DuplicateSeat(seat.label.clone()));
                    }
                    if labels.len() > MAX_SEATS {
                        return Err(SeatMapError::TooManySeats);
                    }
                }
            }
        }
        if labels.is_empty() {
            return Err(SeatMapError::Empty);
        }
        Ok(())
    }

    /// Every seat with its place and names, in map (best-first) order.
    pub fn seats(&self) -> impl Iterator<Item = (Place, &Section, &Row, &MapSeat)> {
        self.sections.iter().enumerate().flat_map(|(si, section)| {
            section.rows.iter().enumerate().flat_map(move |(ri, row)| {
                row.seats
                    .iter()
                    .enumerate()
                    .map(move |(i, seat)| (Place { section: si, row: ri, seat: i }, section, row, seat))
            })
        })
    }

    /// Places by label.
    pub fn places(&self) -> HashMap<&str, Place> {
        self.seats().map(|(place, _, _, seat)| (seat.label.as_str(), place)).collect()
    }

    /// The best block of `quantity` seats side by side among `free`: the
    /// first row in map order with such a run, its first run. `None` if no
    /// row has one.
    pub fn best_block(&self, free: &HashSet<&str>, quantity: usize) -> Option<Vec<String>> {
        if quantity == 0 {
            return None;
        }
        for row in self.sections.iter().flat_map(|s| &s.rows) {
            let mut run: Vec<&str> = Vec::with_capacity(quantity);
            for seat in &row.seats {
                if free.contains(seat.label.as_str()) {
                    run.push(&seat.label);
                    if run.len() == quantity {
                        return Some(run.into_iter().map(str::to_owned).collect());
                    }
                } else {
                    run.clear();
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, labels: &[&str]) -> Row {
        let seats =
            labels.iter().enumerate().map(|(i, l)| MapSeat { label: (*l).to_owned(), x: i as f64, y: 0.0 }).collect();
        Row { name: name.into(), seats }
    }

    fn hall() -> SeatMap {
        SeatMap {
            sections: vec![
                Section {
                    name: "Stalls".into(),
                    rows: vec![row("A", &["A1", "A2", "A3", "A4"]), row("B", &["B1", "B2", "B3", "B4", "B5"])],
                },
                Section { name: "Balcony".into(), rows: vec![row("K", &["K1", "K2", "K3"])] },
            ],
        }
    }

    #[test]
    fn a_good_map_is_valid_and_bad_ones_say_why() {
        assert_eq!(hall().validate(), Ok(()));
        let mut twice = hall();
        twice.sections[1].rows[0].seats[0].label = "A1".into();
        assert_eq!(twice.validate(), Err(SeatMapError::DuplicateSeat("A1".into())));
        let mut nan = hall();
        nan.sections[0].rows[0].seats[2].x = f64::NAN;
        assert_eq!(nan.validate(), Err(SeatMapError::BadCoordinate("A3".into())));
        let mut rows = hall();
        rows.sections[0].rows[1].name = "A".into();
        assert!(matches!(rows.validate(), Err(SeatMapError::DuplicateName(_))));
        let mut label = hall();
        label.sections[0].rows[0].seats[0].label = String::new();
        assert!(matches!(label.validate(), Err(SeatMapError::BadLabel(..))));
        assert_eq!(SeatMap { sections: vec![] }.validate(), Err(SeatMapError::Empty));
    }

    #[test]
    fn best_available_takes_the_first_row_with_a_block_side_by_side() {
        let map = hall();
        let all: HashSet<&str> = map.seats().map(|(_, _, _, s)| s.label.as_str()).collect();
        assert_eq!(map.best_block(&all, 2), Some(vec!["A1".into(), "A2".into()]));
        // A2 gone: row A still has A3+A4 together.
        let free: HashSet<&str> = all.iter().copied().filter(|l| *l != "A2").collect();
        assert_eq!(map.best_block(&free, 2), Some(vec!["A3".into(), "A4".into()]));
        // Three together are no longer in row A: row B.
        assert_eq!(map.best_block(&free, 3), Some(vec!["B1".into(), "B2".into(), "B3".into()]));
        // Seats either side of a gap are not side by side.
        let gappy: HashSet<&str> = ["B1", "B2", "B4", "B5", "K1"].into_iter().collect();
        assert_eq!(map.best_block(&gappy, 3), None);
        assert_eq!(map.best_block(&all, 6), None, "no row has six");
        assert_eq!(map.best_block(&all, 0), None);
    }

    #[test]
    fn places_order_seats_best_first() {
        let map = hall();
        let places = map.places();
        assert!(places["A4"] < places["B1"]);
        assert!(places["B5"] < places["K1"]);
        assert_eq!(places["K2"], Place { section: 1, row: 0, seat: 1 });
    }
}
