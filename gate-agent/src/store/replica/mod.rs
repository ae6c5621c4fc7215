//! The gate's replica of the venue's tickets: SQLite in WAL mode, on disk.
//!
//! A manifest is applied in one transaction, and its version check runs inside
//! that transaction, so a crash mid-apply leaves the old replica whole and two
//! imports cannot interleave. The replica lives in its own file, apart from the
//! scan ledger: a long import never blocks recording a scan.

mod doors;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use schema::entry::{TicketStatus, UnknownTicketPolicy};
use schema::manifest::{ListRecord, Manifest};

use super::{StoreError, open_wal};

pub use doors::Post;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ticket_types (
    id       INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL,
    name     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lists (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL,
    event_id               INTEGER NOT NULL,
    ticket_types           TEXT,            -- JSON array of type ids; NULL admits all
    allow_multiple_entries INTEGER NOT NULL,
    allow_entry_after_exit INTEGER NOT NULL,
    accept_unknown         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entrances (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS areas (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL,
    capacity INTEGER
);
CREATE TABLE IF NOT EXISTS gates (
    gate_id     TEXT PRIMARY KEY,
    entrance_id INTEGER,                    -- NULL: door staff choose
    revoked     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id     INTEGER PRIMARY KEY,      -- u64 stored bit-for-bit as i64
    event_id      INTEGER NOT NULL,
    type_id       INTEGER NOT NULL,
    status        INTEGER NOT NULL,         -- 0 valid, 1 revoked, 2 blocked
    sealed_holder BLOB
);
";

/// What the replica holds for one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTicket {
    /// Valid, revoked or blocked.
    pub status: TicketStatus,
    /// Holder name sealed to the ticket's barcode.
    pub sealed_holder: Option<Vec<u8>>,
}

/// Counts from applying one manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The replica's version now.
    pub version: u64,
    /// Tickets written.
    pub tickets: usize,
    /// Whether it replaced everything (snapshot) or patched (delta).
    pub snapshot: bool,
}

/// The replica database.
pub struct Replica {
    conn: Connection,
    path: PathBuf,
}

impl Replica {
    /// Opens (creating if needed) the replica at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_wal(path, "NORMAL")?;
        conn.execute_batch(SCHEMA).map_err(StoreError::sqlite(path))?;
        add_doors_column(&conn).map_err(StoreError::sqlite(path))?;
        Ok(Self { conn, path: path.to_owned() })
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        StoreError::sqlite(&self.path)
    }

    /// The version of the last manifest applied, if any.
    pub fn version(&self) -> Result<Option<u64>, StoreError> {
        meta(&self.conn, "version").map_err(self.err())
    }

    /// Verifies nothing: applies an already opened manifest for `venue_id`,
    /// refusing rollbacks, foreign venues and deltas on the wrong base.
    pub fn apply(&mut self, manifest: &Manifest, venue_id: u64) -> Result<Applied, StoreError> {
        let path = self.path.clone();
        let err = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(StoreError::sqlite(&path))?;
        let current = meta(&tx, "version").map_err(StoreError::sqlite(&path))?;
        manifest.applicable_to(venue_id, current)?;
        write_manifest(&tx, manifest).map_err(StoreError::sqlite(&path))?;
        tx.commit().map_err(err)?;
        Ok(Applied { version: manifest.version, tickets: manifest.tickets.len(), snapshot: manifest.is_snapshot() })
    }

    /// The replica's row for a ticket.
    pub fn ticket(&self, ticket_id: u64) -> Result<Option<StoredTicket>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status, sealed_holder FROM tickets WHERE ticket_id = ?1")
            .map_err(self.err())?;
        stmt.query_row([ticket_id as i64], |row| {
            Ok(StoredTicket { status: status_from(row.get(0)?), sealed_holder: row.get(1)? })
        })
        .optional()
        .map_err(self.err())
    }

    /// Display names of all ticket types.
    pub fn type_names(&self) -> Result<HashMap<u32, String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, name FROM ticket_types").map_err(self.err())?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Number of tickets held.
    pub fn ticket_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM tickets", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err())
    }
}

fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<u64>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get::<_, i64>(0))
        .optional()
        .map(|v| v.map(|v| v as u64))
}

fn write_manifest(tx: &rusqlite::Transaction<'_>, m: &Manifest) -> rusqlite::Result<()> {
    if m.is_snapshot() {
        tx.execute("DELETE FROM tickets", [])?;
    }
    tx.execute("DELETE FROM ticket_types", [])?;
    tx.execute("DELETE FROM lists", [])?;
    tx.execute("DELETE FROM entrances", [])?;
    tx.execute("DELETE FROM areas", [])?;
    tx.execute("DELETE FROM gates", [])?;
    for g in &m.layout.gates {
        tx.execute(
            "INSERT OR REPLACE INTO gates (gate_id, entrance_id, revoked) VALUES (?1, ?2, ?3)",
            params![g.gate_id, g.entrance_id, g.revoked],
        )?;
    }
    for e in &m.layout.entrances {
        tx.execute("INSERT OR REPLACE INTO entrances (id, name) VALUES (?1, ?2)", params![e.id, e.name])?;
    }
    for a in &m.layout.areas {
        tx.execute(
            "INSERT OR REPLACE INTO areas (id, name, capacity) VALUES (?1, ?2, ?3)",
            params![a.id, a.name, a.capacity],
        )?;
    }
    for t in &m.ticket_types {
        tx.execute(
            "INSERT OR REPLACE INTO ticket_types (id, event_id, name) VALUES (?1, ?2, ?3)",
            params![t.id, t.event_id as i64, t.name],
        )?;
    }
    for l in &m.lists {
        insert_list(tx, l)?;
    }
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO tickets (ticket_id, event_id, type_id, status, sealed_holder) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for t in &m.tickets {
        insert.execute(params![
            t.ticket_id as i64,
            t.event_id as i64,
            t.ticket_type_id,
            status_code(t.status),
            t.sealed_holder
        ])?;
    }
    for (key, value) in [("version", m.version), ("venue_id", m.venue_id), ("issued_at", m.issued_at)] {
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value as i64])?;
    }
    Ok(())
}

fn insert_list(tx: &rusqlite::Transaction<'_>, l: &ListRecord) -> rusqlite::Result<()> {
    let types = l.ticket_types.as_ref().map(|t| serde_json::to_string(t).unwrap_or_default());
    let doors = serde_json::to_string(&l.doors).unwrap_or_default();
    tx.execute(
        "INSERT OR REPLACE INTO lists (id, name, event_id, ticket_types, allow_multiple_entries, allow_entry_after_exit,
             accept_unknown, doors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            l.id,
            l.name,
            l.event_id as i64,
            types,
            l.allow_multiple_entries,
            l.allow_entry_after_exit,
            l.unknown_tickets == UnknownTicketPolicy::Accept,
            doors
        ],
    )?;
    Ok(())
}

/// A replica written before lists had doors gains the column; its lists read
/// as open always and everywhere until the next manifest fills it.
fn add_doors_column(conn: &Connection) -> rusqlite::Result<()> {
    let present = conn.prepare("SELECT 1 FROM pragma_table_info('lists') WHERE name = 'doors'")?.exists([])?;
    if !present {
        conn.execute("ALTER TABLE lists ADD COLUMN doors TEXT", [])?;
    }
    Ok(())
}

fn status_code(s: TicketStatus) -> i64 {
    match s {
        TicketStatus::Valid => 0,
        TicketStatus::Revoked => 1,
        TicketStatus::Blocked => 2,
    }
}

/// Unknown codes read as blocked: a damaged row must never admit anyone.
fn status_from(code: i64) -> TicketStatus {
    match code {
        0 => TicketStatus::Valid,
        1 => TicketStatus::Revoked,
        _ => TicketStatus::Blocked,
    }
}
