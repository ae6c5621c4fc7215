//! The SQLite store: one connection to a WAL file, shared behind an async lock,
//! with group commit.
//!
//! SQLite allows one writer at a time, so one connection loses nothing. Every
//! transaction runs as a savepoint inside a shared `BEGIN IMMEDIATE`
//! transaction; `Tx::commit` releases its savepoint and waits for the real
//! `COMMIT`, which whoever lets go of the connection issues once nobody else is
//! queued for it, the group holds [`MAX_GROUP`], or its first member has
//! waited [`MAX_WAIT`]. So concurrent sales share
//! one fsync instead of paying one each, and a commit still returns only when
//! its changes are on disk (`synchronous = FULL`, even across a power cut). A
//! transaction that fails rolls back to its savepoint, leaving the others be.
//!
//! Reads outside a transaction see what a group has written before its commit
//! is on disk; everything acknowledged to a client waited for that commit.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params_from_iter};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::{DbError, Row, Value};

/// Most transactions sharing one commit.
const MAX_GROUP: usize = 64;
/// Longest a committed transaction waits for others to join its group: without
/// it, a steady stream of other requests (say, "sold out" answers, which write
/// nothing) could keep the queue busy and the group open indefinitely.
const MAX_WAIT: Duration = Duration::from_millis(2);

struct Inner {
    conn: Connection,
    /// Transactions released into the open group, waiting for its commit.
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
    /// When the first of them joined.
    first_waiting: Option<Instant>,
}

/// A SQLite database file.
#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<Mutex<Inner>>,
    /// Tasks waiting for the connection: while there are any, a group stays open.
    queued: Arc<AtomicUsize>,
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
        let inner = Inner { conn, waiters: Vec::new(), first_waiting: None };
        Ok(Self { inner: Arc::new(Mutex::new(inner)), queued: Arc::default() })
    }

    async fn lock(&self) -> OwnedMutexGuard<Inner> {
        /// Counts a waiter until it has the lock or gives up (its future dropped).
        struct Queued<'a>(&'a AtomicUsize);
        impl Drop for Queued<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        let _queued = Queued(&self.queued);
        Arc::clone(&self.inner).lock_owned().await
    }

    /// Lets go of the connection, committing the open group first if nobody
    /// else is about to join it.
    fn release(&self, mut guard: OwnedMutexGuard<Inner>) {
        let inner = &mut *guard;
        if inner.conn.is_autocommit() {
            // The group vanished under its members (SQLite rolls back on some I/O errors).
            inner.first_waiting = None;
            for waiter in inner.waiters.drain(..) {
                let _ = waiter.send(Err("the transaction group was rolled back".into()));
            }
        } else if self.queued.load(Ordering::Acquire) == 0
            || inner.waiters.len() >= MAX_GROUP
            || inner.first_waiting.is_some_and(|t| t.elapsed() >= MAX_WAIT)
        {
            inner.first_waiting = None;
            let result = inner.conn.execute_batch("COMMIT").map_err(|e| e.to_string());
            if result.is_err() {
                let _ = inner.conn.execute_batch("ROLLBACK");
            }
            for waiter in inner.waiters.drain(..) {
                let _ = waiter.send(result.clone());
            }
        }
    }

    /// Takes the connection and opens a transaction (a savepoint in the group).
    pub async fn begin(&self) -> Result<SqliteTx, DbError> {
        let guard = self.lock().await;
        let opened = (|| {
            if guard.conn.is_autocommit() {
                guard.conn.execute_batch("BEGIN IMMEDIATE")?;
            }
            guard.conn.execute_batch("SAVEPOINT tx")
        })();
        match opened {
            Ok(()) => Ok(SqliteTx { guard: Some(guard), db: self.clone() }),
            Err(e) => {
                self.release(guard);
                Err(e.into())
            }
        }
    }

    /// Runs one read.
    pub async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let guard = self.lock().await;
        let rows = query(&guard.conn, sql, params);
        self.release(guard);
        rows
    }

    /// Runs a script of statements (migrations).
    pub async fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        let guard = self.lock().await;
        let done = guard.conn.execute_batch(sql).map_err(Into::into);
        self.release(guard);
        done
    }
}

/// A transaction holding the connection.
pub struct SqliteTx {
    /// `None` once committed.
    guard: Option<OwnedMutexGuard<Inner>>,
    db: SqliteDb,
}

impl SqliteTx {
    fn conn(&self) -> Result<&Connection, DbError> {
        self.guard.as_ref().map(|g| &g.conn).ok_or(DbError::Closed)
    }

    /// Runs one statement.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let mut stmt = self.conn()?.prepare_cached(sql)?;
        let n = stmt.execute(params_from_iter(params.iter().map(to_sql)))?;
        Ok(n as u64)
    }

    /// Runs one query.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        query(self.conn()?, sql, params)
    }

    /// Commits: returns once the group holding this transaction is on disk.
    pub async fn commit(mut self) -> Result<(), DbError> {
        let Some(mut guard) = self.guard.take() else { return Err(DbError::Closed) };
        if let Err(e) = guard.conn.execute_batch("RELEASE tx") {
            roll_back(&guard.conn);
            self.db.release(guard);
            return Err(e.into());
        }
        let (done, wait) = oneshot::channel();
        guard.waiters.push(done);
        guard.first_waiting.get_or_insert_with(Instant::now);
        self.db.release(guard);
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(DbError::GroupCommit(why)),
            Err(_) => Err(DbError::GroupCommit("the connection was dropped".into())),
        }
    }
}

/// Undoes this transaction's savepoint only; the group's others stay.
fn roll_back(conn: &Connection) {
    // Nothing to report to: the caller already has the error that made it give up.
    let _ = conn.execute_batch("ROLLBACK TO tx; RELEASE tx");
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            roll_back(&guard.conn);
            self.db.release(guard);
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
