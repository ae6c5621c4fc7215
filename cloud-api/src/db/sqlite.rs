//! The SQLite store: one connection to a WAL file, shared behind an async lock.
//!
//! SQLite allows one writer at a time, so one connection loses nothing, and it
//! makes every transaction `BEGIN IMMEDIATE`: the write lock is taken at the
//! start, so two sales never interleave. `synchronous = FULL`: an order is on
//! disk before it is acknowledged, even across a power cut.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params_from_iter};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{DbError, Row, Value};

/// A SQLite database file.
#[derive(Clone)]
pub struct SqliteDb {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteDb {
    /// Opens (or creates) the file in WAL mode.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Takes the connection and opens a write transaction on it.
    pub async fn begin(&self) -> Result<SqliteTx, DbError> {
        let conn = Arc::clone(&self.conn).lock_owned().await;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteTx { conn, open: true })
    }

    /// Runs one read.
    pub async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let conn = self.conn.lock().await;
        query(&conn, sql, params)
    }

    /// Runs a script of statements (migrations).
    pub async fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        self.conn.lock().await.execute_batch(sql).map_err(Into::into)
    }
}

/// A transaction holding the connection.
pub struct SqliteTx {
    conn: OwnedMutexGuard<Connection>,
    open: bool,
}

impl SqliteTx {
    /// Runs one statement.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let n = stmt.execute(params_from_iter(params.iter().map(to_sql)))?;
        Ok(n as u64)
    }

    /// Runs one query.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        query(&self.conn, sql, params)
    }

    /// Commits.
    pub fn commit(mut self) -> Result<(), DbError> {
        // Only a commit that worked closes the transaction; otherwise drop rolls
        // back, so the shared connection is never left inside one.
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: the caller already has the error that made it give up.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query(params_from_iter(params.iter().map(to_sql)))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Int(v),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                ValueRef::Real(_) => return Err(DbError::ColumnType { column: i, kind: "REAL".into() }),
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

fn to_sql(value: &Value) -> rusqlite::types::ToSqlOutput<'_> {
    use rusqlite::types::{ToSqlOutput, ValueRef as R};
    ToSqlOutput::Borrowed(match value {
        Value::Null => R::Null,
        Value::Int(v) => R::Integer(*v),
        Value::Text(s) => R::Text(s.as_bytes()),
        Value::Bytes(b) => R::Blob(b),
    })
}
