//! The hub's venue ledger on disk: `hub.db`, SQLite in WAL mode with
//! `synchronous=FULL`.
//!
//! The hub commits the arbiter's [`Change`]s of many messages in one transaction
//! (one fsync), then replies to all of them: a grant or an ack is never sent for
//! anything that is not durable, and a burst of scans costs one fsync, not one each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use schema::Reason;
use schema::entry::Direction;
use schema::hlc::HlcTimestamp;

use crate::arbiter::{Admitted, Arbiter, Change};
use crate::status::ConflictView;

/// What the hub keeps to recognise a gate on each transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateCredentials {
    /// The gate's Ed25519 key: every frame it sends is signed with it.
    pub public_key: ed25519_dalek::VerifyingKey,
    /// SHA-256 of its MQTT password.
    pub mqtt_secret: [u8; 32],
    /// SHA-256 of its QUIC client certificate.
    pub cert_fingerprint: [u8; 32],
    /// Its MQTT password in Mosquitto's `password_file` form (salted SHA-512).
    pub broker_hash: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gates (
    gate_id       TEXT PRIMARY KEY,
    public_key    BLOB NOT NULL,           -- Ed25519, from enrolment
    mqtt_secret   BLOB NOT NULL,           -- SHA-256 of the gate's MQTT password
    cert_sha256   BLOB,                    -- SHA-256 of its QUIC client certificate
    broker_hash   TEXT,                    -- its password for Mosquitto's password_file
    enrolled_ms   INTEGER NOT NULL,
    revoked_ms    INTEGER,                 -- set: refused from then on
    acked_through INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS scans (
    gate_id        TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    hlc            INTEGER NOT NULL,
    wall_ms        INTEGER NOT NULL,
    ticket_id      INTEGER,
    event_id       INTEGER,
    list_id        INTEGER NOT NULL,
    direction      TEXT NOT NULL,
    decision       TEXT NOT NULL,
    reason         TEXT,
    offline        INTEGER NOT NULL,
    annulled       INTEGER NOT NULL,
    claim_id       INTEGER,
    not_in_replica INTEGER NOT NULL,
    received_ms    INTEGER NOT NULL,
    uploaded       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (gate_id, seq)
);
CREATE TABLE IF NOT EXISTS admissions (
    key       TEXT PRIMARY KEY,            -- gate#claim or gate:seq
    ticket_id INTEGER NOT NULL,
    list_id   INTEGER NOT NULL,
    gate_id   TEXT NOT NULL,
    hlc       INTEGER NOT NULL,
    direction TEXT NOT NULL,
    annulled  INTEGER NOT NULL,
    confirmed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conflicts (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL,
    list_id     INTEGER NOT NULL,
    first_key   TEXT NOT NULL,
    first_gate  TEXT NOT NULL,
    first_hlc   INTEGER NOT NULL,
    second_key  TEXT NOT NULL,
    second_gate TEXT NOT NULL,
    second_hlc  INTEGER NOT NULL,
    detected_ms INTEGER NOT NULL,
    uploaded    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (first_key, second_key)
);
";

/// Failures of the hub's store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// Enrolling a gate id that exists.
    #[error("gate {0:?} is already enrolled (revoke it first to re-enrol)")]
    AlreadyEnrolled(String),
    /// Revoking a gate that is not enrolled.
    #[error("no gate {0:?} is enrolled")]
    NoSuchGate(String),
}

/// One enrolled gate, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GateRow {
    /// Gate id.
    pub gate_id: String,
    /// Enrolled at, Unix ms.
    pub enrolled_ms: u64,
    /// Revoked at, if revoked.
    pub revoked_ms: Option<u64>,
    /// Every scan up to here is stored.
    pub acked_through: u64,
}

/// Copies the WAL back into the database in the background, so the writer's
/// commits never pay for it. Stops when dropped.
pub struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the checkpointer runs. A checkpoint ends with an fsync of the
/// database file, and a claim whose commit meets it waits for both (a claim
/// p99 of 1.7 ms at every 500 ms); every 5 s few claims meet one, and the WAL
/// holds at most a few seconds of ingest.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
const CHECKPOINT_NAP: std::time::Duration = std::time::Duration::from_millis(100);

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite { path: path.to_owned(), source })?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hub-checkpoint".into())
            .spawn(move || {
                let mut last = std::time::Instant::now();
                while !flag.load(std::sync::atomic::Ordering::Acquire) {
                    // Short naps, so that dropping the checkpointer is quick.
                    std::thread::sleep(CHECKPOINT_NAP);
                    if last.elapsed() < CHECKPOINT_EVERY {
                        continue;
                    }
                    // PASSIVE: copies what it can without blocking the writer.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "checkpoint failed; will retry");
                    }
                    last = std::time::Instant::now();
                }
            })
            .map_err(|e| StoreError::Sqlite {
                path: path.to_owned(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `hub.db`.
pub struct HubStore {
    conn: Connection,
    path: PathBuf,
}

impl HubStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |source| StoreError::Sqlite { path: path.to_owned(), source };
        let conn = Connection::open(path).map_err(err)?;
        // Checkpoints run on their own connection (`Checkpointer`): a commit
        // then only appends to the WAL and fsyncs it, never the database file.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;
             PRAGMA wal_autocheckpoint = 0;",
        )
        .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        // Hub databases from before QUIC: their gates re-enrol to use it.
        migrate(
            &conn,
            "gates",
            "cert_sha256",
            "ALTER TABLE gates ADD COLUMN cert_sha256 BLOB; ALTER TABLE gates ADD COLUMN broker_hash TEXT",
        )
        .map_err(err)?;
        // Admissions from before sequences: numbered in the order they were stored.
        migrate(
            &conn,
            "admissions",
            "seq",
            "ALTER TABLE admissions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0; UPDATE admissions SET seq = rowid;",
        )
        .map_err(err)?;
        Ok(Self { conn, path: path.to_owned() })
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite { path: self.path.clone(), source }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Enrols a gate with its public key and the SHA-256 of its MQTT password.
    pub fn enroll(&self, gate_id: &str, credentials: &GateCredentials, now_ms: u64) -> Result<(), StoreError> {
        let existing: Option<Option<i64>> = self
            .conn
            .query_row("SELECT revoked_ms FROM gates WHERE gate_id = ?1", [gate_id], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        if existing == Some(None) {
            return Err(StoreError::AlreadyEnrolled(gate_id.to_owned()));
        }
        // Re-enrolling a revoked gate keeps its scan cursor: its old scans stay stored.
        self.conn
            .execute(
                "INSERT INTO gates (gate_id, public_key, mqtt_secret, cert_sha256, broker_hash, enrolled_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (gate_id) DO UPDATE SET public_key = ?2, mqtt_secret = ?3, cert_sha256 = ?4,
                     broker_hash = ?5, enrolled_ms = ?6, revoked_ms = NULL",
                params![
                    gate_id,
                    credentials.public_key.as_bytes().as_slice(),
                    credentials.mqtt_secret.as_slice(),
                    credentials.cert_fingerprint.as_slice(),
                    credentials.broker_hash,
                    now_ms as i64
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Revokes a gate: its frames are refused from now on.
    pub fn revoke(&self, gate_id: &str, now_ms: u64) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE gates SET revoked_ms = ?2 WHERE gate_id = ?1 AND revoked_ms IS NULL",
                params![gate_id, now_ms as i64],
            )
            .map_err(self.err())?;
        if changed == 0 {
            return Err(StoreError::NoSuchGate(gate_id.to_owned()));
        }
        Ok(())
    }

    /// Public keys of gates that are enrolled and not revoked.
    pub fn gate_keys(&self) -> Result<HashMap<String, VerifyingKey>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT gate_id, public_key FROM gates WHERE revoked_ms IS NULL").map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(self.err())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err())?;
        // A key that no longer parses cannot sign anything: the gate is refused.
        Ok(rows
            .into_iter()
            .filter_map(|(id, key)| {
                let bytes: [u8; 32] = key.try_into().ok()?;
                Some((id, VerifyingKey::from_bytes(&bytes).ok()?))
            })
            .collect())
    }

    /// MQTT password hashes of gates that are enrolled and not revoked.
    pub fn mqtt_secrets(&self) -> Result<HashMap<String, [u8; 32]>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT gate_id, mqtt_secret FROM gates WHERE revoked_ms IS NULL").map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(self.err())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err())?;
        Ok(rows.into_iter().filter_map(|(id, hash)| Some((id, hash.try_into().ok()?))).collect())
    }

    /// The enrolled, unrevoked gate holding the certificate with this fingerprint.
    pub fn gate_of_cert(&self, fingerprint: &[u8; 32]) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT gate_id FROM gates WHERE cert_sha256 = ?1 AND revoked_ms IS NULL",
                [fingerprint.as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Enrolled, unrevoked gates and their passwords in Mosquitto's form
    /// (gates enrolled before the hub kept that form are left out).
    pub fn broker_logins(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT gate_id, broker_hash FROM gates
                 WHERE revoked_ms IS NULL AND broker_hash IS NOT NULL ORDER BY gate_id",
            )
            .map_err(self.err())?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Every gate ever enrolled.
    pub fn gates(&self) -> Result<Vec<GateRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT gate_id, enrolled_ms, revoked_ms, acked_through FROM gates ORDER BY gate_id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(GateRow {
                    gate_id: r.get(0)?,
                    enrolled_ms: r.get::<_, i64>(1)? as u64,
                    revoked_ms: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                    acked_through: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Rebuilds the arbiter's memory from disk.
    pub fn load(&self) -> Result<Arbiter, StoreError> {
        let mut arbiter = Arbiter::default();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT key, ticket_id, list_id, gate_id, hlc, direction, annulled, confirmed, seq FROM admissions",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Admitted {
                    key: r.get(0)?,
                    ticket_id: r.get::<_, i64>(1)? as u64,
                    list_id: r.get(2)?,
                    gate: r.get(3)?,
                    at: HlcTimestamp(r.get::<_, i64>(4)? as u64),
                    direction: Direction::from_code(&r.get::<_, String>(5)?),
                    annulled: r.get(6)?,
                    confirmed: r.get(7)?,
                    seq: r.get::<_, i64>(8)? as u64,
                })
            })
            .map_err(self.err())?;
        for admitted in rows {
            arbiter.restore_admission(admitted.map_err(self.err())?);
        }
        for gate in self.gates()? {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT seq FROM scans WHERE gate_id = ?1 AND seq > ?2")
                .map_err(self.err())?;
            let above = stmt
                .query_map(params![gate.gate_id, gate.acked_through as i64], |r| r.get::<_, i64>(0))
                .map_err(self.err())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.err())?;
            arbiter.restore_received(&gate.gate_id, gate.acked_through, above.into_iter().map(|s| s as u64));
        }
        Ok(arbiter)
    }

    /// Makes `changes` durable in one transaction: one fsync for all of them.
    pub fn commit(&mut self, changes: &[Change], now_ms: u64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = move |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err.clone())?;
        for change in changes {
            apply(&tx, change, now_ms).map_err(err.clone())?;
        }
        tx.commit().map_err(err)
    }

    /// Stored conflicts, oldest first.
    pub fn conflicts(&self) -> Result<Vec<ConflictView>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT ticket_id, list_id, first_gate, first_hlc, second_gate, second_hlc FROM conflicts ORDER BY id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ConflictView {
                    ticket_id: r.get::<_, i64>(0)? as u64,
                    list_id: r.get(1)?,
                    first_gate: r.get(2)?,
                    first_at_ms: HlcTimestamp(r.get::<_, i64>(3)? as u64).millis(),
                    second_gate: r.get(4)?,
                    second_at_ms: HlcTimestamp(r.get::<_, i64>(5)? as u64).millis(),
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Accepted entries scanned (by the gate's clock) since `since_ms`, as
    /// `(gate, list, wall_ms)` in sequence order: the entries plot, at start.
    pub fn entries_since(&self, since_ms: u64) -> Result<Vec<(String, u32, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT gate_id, list_id, wall_ms FROM scans
                 WHERE wall_ms >= ?1 AND decision = 'accept' AND direction = 'entry' AND annulled = 0
                 ORDER BY gate_id, seq",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([since_ms as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

/// Runs `upgrade` if `table` has no column `column` yet (a database from before it).
fn migrate(conn: &Connection, table: &str, column: &str, upgrade: &str) -> rusqlite::Result<()> {
    let has: bool =
        conn.query_row("SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |r| r.get(0))?;
    if !has {
        conn.execute_batch(upgrade)?;
    }
    Ok(())
}

fn apply(tx: &Transaction<'_>, change: &Change, now_ms: u64) -> rusqlite::Result<()> {
    match change {
        Change::Admit(a) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO admissions
                     (key, ticket_id, list_id, gate_id, hlc, direction, annulled, confirmed, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                a.key,
                a.ticket_id as i64,
                a.list_id,
                a.gate,
                a.at.0 as i64,
                a.direction.code(),
                a.annulled,
                a.confirmed,
                a.seq as i64
            ])?;
        }
        Change::Annul { key, seq } => {
            tx.prepare_cached("UPDATE admissions SET annulled = 1, seq = ?2 WHERE key = ?1")?
                .execute(params![key, *seq as i64])?;
        }
        Change::Confirm { key } => {
            tx.prepare_cached("UPDATE admissions SET confirmed = 1 WHERE key = ?1")?.execute([key])?;
        }
        Change::Scan { gate, report: r } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO scans (gate_id, seq, hlc, wall_ms, ticket_id, event_id, list_id, direction,
                     decision, reason, offline, annulled, claim_id, not_in_replica, received_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?
            .execute(params![
                gate,
                r.seq as i64,
                r.hlc.0 as i64,
                r.wall_ms as i64,
                r.ticket_id.map(|t| t as i64),
                r.event_id.map(|e| e as i64),
                r.list_id,
                r.direction.code(),
                r.decision.code(),
                r.reason.map(Reason::code),
                r.offline,
                r.annulled,
                r.claim_id.map(|c| c as i64),
                r.not_in_replica,
                now_ms as i64,
            ])?;
        }
        Change::AnnulScan { gate, seq } => {
            tx.prepare_cached("UPDATE scans SET annulled = 1, uploaded = 0 WHERE gate_id = ?1 AND seq = ?2")?
                .execute(params![gate, *seq as i64])?;
        }
        Change::Conflict(c) => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO conflicts (ticket_id, list_id, first_key, first_gate, first_hlc,
                     second_key, second_gate, second_hlc, detected_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                c.ticket_id as i64,
                c.list_id,
                c.first.0,
                c.first.1,
                c.first.2.0 as i64,
                c.second.0,
                c.second.1,
                c.second.2.0 as i64,
                now_ms as i64
            ])?;
        }
        Change::Progress { gate, through } => {
            tx.prepare_cached("UPDATE gates SET acked_through = MAX(acked_through, ?2) WHERE gate_id = ?1")?
                .execute(params![gate, *through as i64])?;
        }
    }
    Ok(())
}
