//! The gate's local state on disk: the ticket replica and the scan ledger, two
//! SQLite files in WAL mode.

pub mod ledger;
pub mod replica;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use schema::manifest::ManifestError;

pub use ledger::{Ledger, NewScan, ScanRecord};
pub use replica::{Applied, Replica, StoredTicket};

/// Failures of the local stores.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed on a named file.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A manifest refused by the replica's rules.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Data that breaks the store's own invariants.
    #[error("store is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite { path: path.to_owned(), source }
    }
}

/// Opens a database in WAL mode with the given `synchronous` level.
fn open_wal(path: &Path, synchronous: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(StoreError::sqlite(path))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 5000;"
    ))
    .map_err(StoreError::sqlite(path))?;
    Ok(conn)
}
