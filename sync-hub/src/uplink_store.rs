//! The uplink's view of `hub.db`: scans and conflicts not yet in the cloud,
//! read and marked on a connection of its own (WAL lets it read beside the
//! core's writer; its small updates wait on the writer's lock briefly).
//!
//! A scan is marked uploaded only if it is still as it was sent: an annulment
//! that lands while an upload is in flight sets `uploaded = 0` again and wins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, params};
use schema::uplink::{UploadedConflict, UploadedScan};

use crate::store::StoreError;

/// A batch to upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Scans with the `annulled` value they are sent with.
    pub scans: Vec<UploadedScan>,
    /// Conflicts with their row ids.
    pub conflicts: Vec<(i64, UploadedConflict)>,
}

impl Pending {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.scans.is_empty() && self.conflicts.is_empty()
    }
}

/// The uplink's connection.
pub struct UplinkStore {
    conn: Connection,
    path: PathBuf,
}

impl UplinkStore {
    /// Opens `hub.db` (which the core created).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite { path: path.to_owned(), source })?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|source| StoreError::Sqlite { path: path.to_owned(), source })?;
        Ok(Self { conn, path: path.to_owned() })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite { path: self.path.clone(), source }
    }

    /// Every gate enrolled here, with whether it is revoked, by id: what the
    /// hub reports to the cloud.
    pub fn enrolled_gates(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT gate_id, revoked_ms IS NOT NULL FROM gates ORDER BY gate_id")
            .map_err(self.err())?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Up to `limit` scans and conflicts not yet uploaded, oldest first.
    pub fn pending(&self, limit: usize) -> Result<Pending, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT gate_id, seq, hlc, wall_ms, ticket_id, event_id, list_id, direction, decision, reason, offline, annulled
                 FROM scans WHERE uploaded = 0 ORDER BY received_ms, gate_id, seq LIMIT ?1",
            )
            .map_err(self.err())?;
        let scans = stmt
            .query_map([limit as i64], |r| {
                let gate: String = r.get(0)?;
                let seq: i64 = r.get(1)?;
                Ok(UploadedScan {
                    scan_id: format!("{gate}:{seq}"),
                    gate_id: gate,
                    hlc: r.get::<_, i64>(2)? as u64,
                    wall_ms: r.get(3)?,
                    ticket_id: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
                    event_id: r.get::<_, Option<i64>>(5)?.map(|e| e as u64),
                    list_id: r.get(6)?,
                    direction: r.get(7)?,
                    decision: r.get(8)?,
                    reason: r.get(9)?,
                    offline: r.get(10)?,
                    annulled: r.get(11)?,
                })
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(self.err())?;
        let room = limit.saturating_sub(scans.len());
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, ticket_id, list_id, first_key, first_gate, first_hlc, second_key, second_gate, second_hlc, detected_ms
                 FROM conflicts WHERE uploaded = 0 ORDER BY id LIMIT ?1",
            )
            .map_err(self.err())?;
        let conflicts = stmt
            .query_map([room as i64], |r| {
                Ok((
                    r.get(0)?,
                    UploadedConflict {
                        ticket_id: r.get::<_, i64>(1)? as u64,
                        list_id: r.get(2)?,
                        first_scan: r.get(3)?,
                        first_gate: r.get(4)?,
                        first_hlc: r.get::<_, i64>(5)? as u64,
                        second_scan: r.get(6)?,
                        second_gate: r.get(7)?,
                        second_hlc: r.get::<_, i64>(8)? as u64,
                        detected_ms: r.get(9)?,
                    },
                ))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(self.err())?;
        Ok(Pending { scans, conflicts })
    }

    /// Marks what the cloud acknowledged.
    pub fn mark_uploaded(&mut self, sent: &Pending) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut scan = tx
                .prepare_cached("UPDATE scans SET uploaded = 1 WHERE gate_id = ?1 AND seq = ?2 AND annulled = ?3")
                .map_err(err)?;
            for s in &sent.scans {
                let seq = s.scan_id.rsplit_once(':').and_then(|(_, seq)| seq.parse::<i64>().ok()).unwrap_or(-1);
                scan.execute(params![s.gate_id, seq, s.annulled]).map_err(err)?;
            }
            let mut conflict = tx.prepare_cached("UPDATE conflicts SET uploaded = 1 WHERE id = ?1").map_err(err)?;
            for (id, _) in &sent.conflicts {
                conflict.execute([id]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// How many scans and conflicts wait for the cloud.
    pub fn backlog(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM scans WHERE uploaded = 0) + (SELECT count(*) FROM conflicts WHERE uploaded = 0)",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.err())
    }
}
