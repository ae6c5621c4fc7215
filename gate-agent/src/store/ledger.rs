//! The scan ledger: every scan, accepted or rejected, durable before anyone is
//! let through.
//!
//! SQLite in WAL mode with `synchronous=FULL`: a commit returns only after the
//! WAL is fsynced, so a scan the gate has shown as accepted survives SIGKILL and
//! power loss. Scan ids are `gate:seq`, unique across the venue.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, params};
use schema::entry::{Direction, PastScan};
use schema::hlc::HlcTimestamp;
use schema::sync::{Admission, ReentryRule, ScanReport};
use schema::{Decision, Reason};
use serde::Serialize;

use super::{StoreError, open_wal};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scans (
    seq            INTEGER PRIMARY KEY,     -- gate-local sequence, from 1
    scan_id        TEXT NOT NULL UNIQUE,    -- gate:seq
    hlc            INTEGER NOT NULL,        -- hybrid logical time
    wall_ms        INTEGER NOT NULL,        -- the gate's wall clock
    ticket_id      INTEGER,                 -- NULL unless the signature verified
    event_id       INTEGER,
    code_hash      BLOB NOT NULL,           -- SHA-256 of the scanned code, never the code
    direction      TEXT NOT NULL,           -- entry | exit
    list_id        INTEGER NOT NULL,
    decision       TEXT NOT NULL,           -- accept | reject
    reason         TEXT,                    -- reason code when rejected or annulled
    not_in_replica INTEGER NOT NULL,
    offline        INTEGER NOT NULL,        -- decided without the hub
    annulled       INTEGER NOT NULL DEFAULT 0,
    acked          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS scans_by_ticket ON scans (ticket_id, list_id);
-- Admissions and exits at other gates, as the hub broadcast them.
CREATE TABLE IF NOT EXISTS venue (
    key       TEXT PRIMARY KEY,             -- the hub's admission key
    ticket_id INTEGER NOT NULL,
    list_id   INTEGER NOT NULL,
    gate      TEXT NOT NULL,
    hlc       INTEGER NOT NULL,
    direction TEXT NOT NULL,
    annulled  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS venue_by_ticket ON venue (ticket_id, list_id);
CREATE TABLE IF NOT EXISTS venue_cursor (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    admissions_through INTEGER NOT NULL      -- highest admission seq stored from the hub
);
";

/// Columns added after the first release of the ledger: (name, definition).
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("claim_id", "INTEGER"),
    ("rule_multiple", "INTEGER NOT NULL DEFAULT 0"),
    ("rule_after_exit", "INTEGER NOT NULL DEFAULT 0"),
    ("ticket_type", "INTEGER"),
];

/// A scan about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScan {
    /// Hybrid logical time.
    pub hlc: HlcTimestamp,
    /// Wall clock, Unix milliseconds.
    pub wall_ms: u64,
    /// Ticket, when authentic.
    pub ticket_id: Option<u64>,
    /// Event, when authentic.
    pub event_id: Option<u64>,
    /// Ticket type, when authentic.
    pub ticket_type: Option<u32>,
    /// SHA-256 of the cleaned scanned text.
    pub code_hash: [u8; 32],
    /// Entry or exit.
    pub direction: Direction,
    /// Check-in list.
    pub list_id: u32,
    /// The decision shown.
    pub decision: Decision,
    /// Its reason.
    pub reason: Option<Reason>,
    /// Ticket missing from the replica.
    pub not_in_replica: bool,
    /// Decided without the hub.
    pub offline: bool,
    /// The hub claim asked for it, if any.
    pub claim_id: Option<u64>,
    /// The list's re-entry rule, reported to the hub.
    pub rule: ReentryRule,
}

/// A recorded scan, as `gate-agent scans` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanRecord {
    /// Gate-local sequence number.
    pub seq: u64,
    /// Venue-unique scan id.
    pub scan_id: String,
    /// Hybrid logical time.
    pub hlc: u64,
    /// Wall clock, Unix ms.
    pub wall_ms: u64,
    /// Ticket id, when authentic.
    pub ticket_id: Option<u64>,
    /// Event id, when authentic.
    pub event_id: Option<u64>,
    /// Entry or exit.
    pub direction: Direction,
    /// Check-in list.
    pub list_id: u32,
    /// Accept or reject.
    pub decision: Decision,
    /// Reason code.
    pub reason: Option<Reason>,
    /// Ticket missing from the replica.
    pub not_in_replica: bool,
    /// Decided without the hub.
    pub offline: bool,
    /// Admission withdrawn (nobody passed).
    pub annulled: bool,
    /// Acknowledged upstream.
    pub acked: bool,
}

/// The ledger database.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    gate_id: String,
    /// Sequence number of the next scan; this connection is the only writer.
    next_seq: u64,
}

impl Ledger {
    /// Opens (creating if needed) the ledger of gate `gate_id` at `path`.
    pub fn open(path: &Path, gate_id: &str) -> Result<Self, StoreError> {
        let conn = open_wal(path, "FULL")?;
        conn.execute_batch(SCHEMA).map_err(StoreError::sqlite(path))?;
        migrate(&conn).map_err(StoreError::sqlite(path))?;
        let last: i64 = conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM scans", [], |r| r.get(0))
            .map_err(StoreError::sqlite(path))?;
        Ok(Self { conn, path: path.to_owned(), gate_id: gate_id.to_owned(), next_seq: last as u64 + 1 })
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        StoreError::sqlite(&self.path)
    }

    /// The highest logical time recorded, to resume the clock after a restart.
    pub fn last_hlc(&self) -> Result<HlcTimestamp, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(hlc), 0) FROM scans", [], |r| r.get::<_, i64>(0))
            .map(|v| HlcTimestamp(v as u64))
            .map_err(self.err())
    }

    /// Accepted, not annulled scans of a ticket on any of the venue's lists,
    /// here and (as the hub broadcast them) at other gates: the decision's
    /// history. One history per ticket, so entering at one entrance counts at
    /// every other and an exit anywhere allows re-entry where the list does.
    pub fn history(&self, ticket_id: u64) -> Result<Vec<PastScan>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT hlc, direction, NULL FROM scans
                 WHERE ticket_id = ?1 AND decision = 'accept' AND annulled = 0
                 UNION ALL
                 SELECT hlc, direction, gate FROM venue
                 WHERE ticket_id = ?1 AND annulled = 0 AND gate != ?2",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![ticket_id as i64, self.gate_id], |r| {
                Ok(PastScan {
                    at: HlcTimestamp(r.get::<_, i64>(0)? as u64),
                    direction: Direction::from_code(&r.get::<_, String>(1)?),
                    gate: r.get::<_, Option<String>>(2)?.unwrap_or_else(|| self.gate_id.clone()),
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Stores admissions the hub broadcast (other gates' only: ours are in
    /// `scans`), in one transaction. Returns how many were new or changed.
    pub fn apply_admissions(&mut self, admissions: &[Admission]) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let err = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(StoreError::sqlite(&self.path))?;
        let mut changed = 0;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO venue (key, ticket_id, list_id, gate, hlc, direction, annulled)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (key) DO UPDATE SET annulled = MAX(annulled, excluded.annulled)
                     WHERE annulled != MAX(annulled, excluded.annulled)",
                )
                .map_err(StoreError::sqlite(&self.path))?;
            if let Some(highest) = admissions.iter().map(|a| a.seq).max() {
                tx.prepare_cached(
                    "INSERT INTO venue_cursor (id, admissions_through) VALUES (1, ?1)
                     ON CONFLICT (id) DO UPDATE SET admissions_through = MAX(admissions_through, ?1)",
                )
                .and_then(|mut stmt| stmt.execute([highest as i64]))
                .map_err(StoreError::sqlite(&self.path))?;
            }
            for a in admissions.iter().filter(|a| a.gate != self.gate_id) {
                changed += upsert
                    .execute(params![
                        a.key,
                        a.ticket_id as i64,
                        a.list_id,
                        a.gate,
                        a.at.0 as i64,
                        a.direction.code(),
                        a.annulled
                    ])
                    .map_err(StoreError::sqlite(&self.path))?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(changed)
    }

    /// The highest admission sequence stored from the hub (0: none): the hub
    /// sends what came after it when the gate says hello.
    pub fn admissions_through(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT admissions_through FROM venue_cursor WHERE id = 1", [], |r| r.get::<_, i64>(0))
            .optional()
            .map(|v| v.unwrap_or(0) as u64)
            .map_err(self.err())
    }

    /// Marks every scan up to `through` as acknowledged by the hub.
    pub fn mark_acked(&mut self, through: u64) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE scans SET acked = 1 WHERE seq <= ?1 AND acked = 0", [through as i64])
            .map_err(self.err())?;
        Ok(())
    }

    /// Reports of scans after `seq`, in order, at most `limit`: the outbox.
    pub fn reports_after(&self, seq: u64, limit: usize) -> Result<Vec<ScanReport>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, hlc, wall_ms, ticket_id, event_id, list_id, direction, decision, reason,
                        rule_multiple, rule_after_exit, offline, annulled, claim_id, not_in_replica, ticket_type
                 FROM scans WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![seq as i64, limit as i64], |r| {
                let reason: Option<String> = r.get(8)?;
                Ok(ScanReport {
                    seq: r.get::<_, i64>(0)? as u64,
                    hlc: HlcTimestamp(r.get::<_, i64>(1)? as u64),
                    wall_ms: r.get::<_, i64>(2)? as u64,
                    ticket_id: r.get::<_, Option<i64>>(3)?.map(|t| t as u64),
                    event_id: r.get::<_, Option<i64>>(4)?.map(|e| e as u64),
                    ticket_type: r.get(15)?,
                    list_id: r.get(5)?,
                    direction: Direction::from_code(&r.get::<_, String>(6)?),
                    decision: Decision::from_code(&r.get::<_, String>(7)?),
                    reason: reason.as_deref().and_then(Reason::from_code),
                    rule: ReentryRule { multiple: r.get(9)?, after_exit: r.get(10)? },
                    offline: r.get(11)?,
                    annulled: r.get(12)?,
                    claim_id: r.get::<_, Option<i64>>(13)?.map(|c| c as u64),
                    not_in_replica: r.get(14)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The lowest sequence not yet acknowledged (annulments re-open a scan).
    pub fn first_unacked(&self) -> Result<Option<u64>, StoreError> {
        self.conn
            .query_row("SELECT MIN(seq) FROM scans WHERE acked = 0", [], |r| r.get::<_, Option<i64>>(0))
            .map(|v| v.map(|s| s as u64))
            .map_err(self.err())
    }

    /// Records one scan durably (fsynced) and returns it with its id.
    pub fn record(&mut self, scan: &NewScan) -> Result<ScanRecord, StoreError> {
        let seq = self.next_seq;
        let scan_id = format!("{}:{seq}", self.gate_id);
        // One statement in autocommit mode: one transaction, one fsync of the WAL.
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT INTO scans (seq, scan_id, hlc, wall_ms, ticket_id, event_id, code_hash, direction, list_id,
                                    decision, reason, not_in_replica, offline, claim_id, rule_multiple, rule_after_exit,
                                    ticket_type)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )
            .map_err(StoreError::sqlite(&self.path))?;
        insert
            .execute(params![
                seq as i64,
                scan_id,
                scan.hlc.0 as i64,
                scan.wall_ms as i64,
                scan.ticket_id.map(|t| t as i64),
                scan.event_id.map(|e| e as i64),
                scan.code_hash.as_slice(),
                scan.direction.code(),
                scan.list_id,
                scan.decision.code(),
                scan.reason.map(Reason::code),
                scan.not_in_replica,
                scan.offline,
                scan.claim_id.map(|c| c as i64),
                scan.rule.multiple,
                scan.rule.after_exit,
                scan.ticket_type,
            ])
            .map_err(StoreError::sqlite(&self.path))?;
        self.next_seq += 1;
        Ok(ScanRecord {
            seq,
            scan_id,
            hlc: scan.hlc.0,
            wall_ms: scan.wall_ms,
            ticket_id: scan.ticket_id,
            event_id: scan.event_id,
            direction: scan.direction,
            list_id: scan.list_id,
            decision: scan.decision,
            reason: scan.reason,
            not_in_replica: scan.not_in_replica,
            offline: scan.offline,
            annulled: false,
            acked: false,
        })
    }

    /// Withdraws an admission (the turnstile reported nobody passed).
    /// Returns false if there is no such accepted, unannulled scan.
    pub fn annul(&mut self, seq: u64) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE scans SET annulled = 1, reason = 'annulled', acked = 0
                 WHERE seq = ?1 AND decision = 'accept' AND annulled = 0",
                [seq as i64],
            )
            .map_err(self.err())?;
        Ok(changed == 1)
    }

    /// One scan by sequence number.
    pub fn get(&self, seq: u64) -> Result<Option<ScanRecord>, StoreError> {
        self.conn
            .query_row(&format!("{SELECT_RECORD} WHERE seq = ?1"), [seq as i64], record_from)
            .optional()
            .map_err(self.err())
    }

    /// Every scan after `seq`, in order.
    pub fn since(&self, seq: u64) -> Result<Vec<ScanRecord>, StoreError> {
        let mut stmt =
            self.conn.prepare(&format!("{SELECT_RECORD} WHERE seq > ?1 ORDER BY seq")).map_err(self.err())?;
        let rows = stmt.query_map([seq as i64], record_from).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

const SELECT_RECORD: &str = "SELECT seq, scan_id, hlc, wall_ms, ticket_id, event_id, direction, list_id, decision,
    reason, not_in_replica, offline, annulled, acked FROM scans";

fn record_from(r: &Row<'_>) -> rusqlite::Result<ScanRecord> {
    let reason: Option<String> = r.get(9)?;
    Ok(ScanRecord {
        seq: r.get::<_, i64>(0)? as u64,
        scan_id: r.get(1)?,
        hlc: r.get::<_, i64>(2)? as u64,
        wall_ms: r.get::<_, i64>(3)? as u64,
        ticket_id: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
        event_id: r.get::<_, Option<i64>>(5)?.map(|e| e as u64),
        direction: Direction::from_code(&r.get::<_, String>(6)?),
        list_id: r.get(7)?,
        decision: Decision::from_code(&r.get::<_, String>(8)?),
        reason: reason.as_deref().and_then(Reason::from_code),
        not_in_replica: r.get(10)?,
        offline: r.get(11)?,
        annulled: r.get(12)?,
        acked: r.get(13)?,
    })
}

/// Brings a ledger written by an earlier version up to date, in place.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('scans')")?;
    let existing = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    for (name, definition) in ADDED_COLUMNS {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE scans ADD COLUMN {name} {definition}"))?;
        }
    }
    Ok(())
}
