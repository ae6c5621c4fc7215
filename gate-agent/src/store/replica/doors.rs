//! The venue's doors as the replica holds them: check-in lists with their
//! hours and entrances, the entrances by name, and which entrance the cloud
//! assigned each gate. A gate works a [`Post`]: the one list it is pinned to,
//! or an entrance, where it serves every list that admits there.

use std::collections::{BTreeSet, HashMap};

use rusqlite::{OptionalExtension, Row};
use schema::entry::{CheckInList, Hours, Route, UnknownTicketPolicy};
use schema::manifest::ListDoors;

use super::Replica;
use crate::store::StoreError;

/// What a gate works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    /// One check-in list (`list_id` in `gate.toml`).
    List(u32),
    /// An entrance: every list that admits there, or at every entrance.
    Entrance(u32),
}

/// A list with the entrances it admits at (none: every entrance).
struct StoredList {
    name: String,
    list: CheckInList,
    entrances: Vec<u32>,
}

const LIST_COLUMNS: &str =
    "id, name, event_id, ticket_types, allow_multiple_entries, allow_entry_after_exit, accept_unknown, doors";

fn stored_list(r: &Row<'_>) -> rusqlite::Result<StoredList> {
    let doors = doors_from(r.get(7)?);
    let accept: bool = r.get(6)?;
    Ok(StoredList {
        name: r.get(1)?,
        list: CheckInList {
            id: r.get(0)?,
            event_id: r.get::<_, i64>(2)? as u64,
            ticket_types: types_from(r.get(3)?),
            allow_multiple_entries: r.get(4)?,
            allow_entry_after_exit: r.get(5)?,
            unknown_tickets: if accept { UnknownTicketPolicy::Accept } else { UnknownTicketPolicy::Reject },
            hours: Hours { opens_at: doors.opens_at, closes_at: doors.closes_at },
        },
        entrances: doors.entrance_ids,
    })
}

impl Replica {
    /// A check-in list with its name.
    pub fn list(&self, id: u32) -> Result<Option<(String, CheckInList)>, StoreError> {
        self.conn
            .query_row(&format!("SELECT {LIST_COLUMNS} FROM lists WHERE id = ?1"), [id], stored_list)
            .optional()
            .map(|found| found.map(|s| (s.name, s.list)))
            .map_err(self.err())
    }

    fn stored_lists(&self) -> Result<Vec<StoredList>, StoreError> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT {LIST_COLUMNS} FROM lists ORDER BY id")).map_err(self.err())?;
        let rows = stmt.query_map([], stored_list).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The venue's entrances, by id.
    pub fn entrances(&self) -> Result<Vec<(u32, String)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, name FROM entrances ORDER BY id").map_err(self.err())?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The entrance the cloud assigned gate `gate_id`, if any (and if it
    /// still exists).
    pub fn gate_entrance(&self, gate_id: &str) -> Result<Option<u32>, StoreError> {
        self.conn
            .query_row(
                "SELECT g.entrance_id FROM gates g JOIN entrances e ON e.id = g.entrance_id WHERE g.gate_id = ?1",
                [gate_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// The lists a gate at `post` serves, in id order, and the venue's other
    /// lists with their entrances by name: where a refusal sends a ticket none
    /// of the served lists admits. The door the gate stands at is never named.
    pub fn doors_for(&self, post: Post) -> Result<(Vec<CheckInList>, Vec<Route>), StoreError> {
        let names: HashMap<u32, String> = self.entrances()?.into_iter().collect();
        let all = self.stored_lists()?;
        let serves = |s: &StoredList| match post {
            Post::List(id) => s.list.id == id,
            Post::Entrance(here) => s.entrances.is_empty() || s.entrances.contains(&here),
        };
        let here: BTreeSet<u32> = match post {
            Post::List(id) => all.iter().filter(|s| s.list.id == id).flat_map(|s| s.entrances.clone()).collect(),
            Post::Entrance(here) => BTreeSet::from([here]),
        };
        let (served, others): (Vec<StoredList>, Vec<StoredList>) = all.into_iter().partition(|s| serves(s));
        let routes = others
            .into_iter()
            .map(|s| Route {
                event_id: s.list.event_id,
                ticket_types: s.list.ticket_types,
                // An entrance the layout does not name cannot be pointed to;
                // a list left with none reads as open everywhere, so it names
                // no door rather than a wrong one.
                entrances: s
                    .entrances
                    .iter()
                    .filter(|id| !here.contains(id))
                    .filter_map(|id| names.get(id).cloned())
                    .collect(),
            })
            .collect();
        Ok((served.into_iter().map(|s| s.list).collect(), routes))
    }
}

/// A list's stored types: `None` admits every type. A damaged value admits none.
fn types_from(json: Option<String>) -> Option<BTreeSet<u32>> {
    json.map(|json| serde_json::from_str::<BTreeSet<u32>>(&json).unwrap_or_default())
}

/// A list's stored doors; none stored (an older replica) reads as the default,
/// a damaged value as never open, so it admits nobody.
fn doors_from(json: Option<String>) -> ListDoors {
    match json {
        None => ListDoors::default(),
        Some(json) => serde_json::from_str(&json)
            .unwrap_or_else(|_| ListDoors { opens_at: Some(u64::MAX), ..ListDoors::default() }),
    }
}
