//! One storage interface over two stores: SQLite (embedded default, one file in
//! WAL mode) and PostgreSQL (production, pooled). The rest of the service writes
//! each statement once, with `?1`-style placeholders, and sees rows as
//! [`Value`]s, so every query runs unchanged on both.
//!
//! Portability rules the SQL follows: integers are `BIGINT`, booleans are
//! 0/1 integers, times are Unix seconds, no `FOR UPDATE` (stock is taken with
//! conditional `UPDATE`s, which both stores serialise on the row), `RETURNING`
//! and `ON CONFLICT` only in the forms both understand.

mod migrations;
mod postgres;
mod sqlite;
mod value;

use std::path::PathBuf;

pub use value::{Row, Value};

/// Where the service keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite database file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://…`).
    Postgres(String),
}

impl StoreLocation {
    /// Parses `postgres://…` / `postgresql://…` as PostgreSQL, anything else as a SQLite path.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Self::Postgres(text.to_owned())
        } else {
            Self::Sqlite(PathBuf::from(text.strip_prefix("sqlite://").unwrap_or(text)))
        }
    }
}

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("postgres: {}", postgres_detail(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be taken from the pool.
    #[error("postgres pool: {0}")]
    Pool(String),
    /// The connection URL is malformed.
    #[error("bad store address: {0}")]
    Address(String),
    /// A column held a type the service does not use.
    #[error("column {column}: unsupported type {kind}")]
    ColumnType {
        /// Column index.
        column: usize,
        /// The store's type name.
        kind: String,
    },
    /// A row lacked a column or held a different type than the code expects.
    #[error("column {0}: missing or of another type")]
    Column(usize),
    /// The transaction was used after it ended.
    #[error("transaction already ended")]
    Closed,
    /// The group commit holding this transaction failed; its changes are gone.
    #[error("group commit failed: {0}")]
    GroupCommit(String),
    /// A unique or primary key constraint refused a row.
    #[error("duplicate key")]
    Duplicate,
}

/// The server's message and code, which tokio-postgres' `Display` leaves out.
fn postgres_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl DbError {
    /// Whether the transaction lost a deadlock or serialisation check and may simply be retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Postgres(e) => matches!(
                e.code(),
                Some(c) if *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                    || *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
            ),
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DatabaseBusy,
            _ => false,
        }
    }

    /// Whether a `CHECK` constraint refused the write.
    pub fn is_check_violation(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_CHECK
            }
            Self::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION),
            _ => false,
        }
    }

    /// Whether a uniqueness constraint refused the write.
    pub fn is_duplicate(&self) -> bool {
        match self {
            Self::Duplicate => true,
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            Self::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}

/// An open store.
#[derive(Clone)]
pub enum Db {
    /// One SQLite connection; SQLite has one writer anyway.
    Sqlite(sqlite::SqliteDb),
    /// A pool of PostgreSQL connections.
    Postgres(postgres::PgDb),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dialect())
    }
}

impl Db {
    /// Opens the store and brings its schema up to date.
    pub async fn open(location: &StoreLocation) -> Result<Self, DbError> {
        let db = match location {
            StoreLocation::Sqlite(path) => Self::Sqlite(sqlite::SqliteDb::open(path)?),
            StoreLocation::Postgres(url) => Self::Postgres(postgres::PgDb::connect(url)?),
        };
        migrations::run(&db).await?;
        Ok(db)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn dialect(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Starts a transaction. Dropped without [`Tx::commit`], it rolls back.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        let inner = match self {
            Self::Sqlite(db) => TxInner::Sqlite(db.begin().await?),
            Self::Postgres(db) => TxInner::Postgres(Box::new(db.begin().await?)),
        };
        Ok(Tx { inner })
    }

    /// Runs one read outside a transaction.
    pub async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match self {
            Self::Sqlite(db) => db.query(sql, params).await,
            Self::Postgres(db) => db.query(sql, params).await,
        }
    }

    /// Runs one read expected to return at most one row.
    pub async fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Runs one read that must return a row.
    pub async fn query_one(&self, sql: &str, params: &[Value]) -> Result<Row, DbError> {
        self.query_opt(sql, params).await?.ok_or(DbError::Column(0))
    }

    /// Runs one write in its own transaction; returns the rows changed.
    pub async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let mut tx = self.begin().await?;
        let n = tx.execute(sql, params).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// An open transaction on either store.
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Sqlite(sqlite::SqliteTx),
    Postgres(Box<postgres::PgTx>),
}

impl Tx {
    /// Runs a statement; returns the rows changed.
    pub async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => tx.execute(sql, params),
            TxInner::Postgres(tx) => tx.execute(sql, params).await,
        }
    }

    /// Runs statements in order; returns the rows each changed. On PostgreSQL
    /// they travel in one round trip, so use it for writes that do not depend
    /// on each other's results. The first error stops the list.
    pub async fn execute_all(&mut self, statements: &[(&str, &[Value])]) -> Result<Vec<u64>, DbError> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => statements.iter().map(|(sql, params)| tx.execute(sql, params)).collect(),
            TxInner::Postgres(tx) => tx.execute_all(statements).await,
        }
    }

    /// Runs a query; returns every row.
    pub async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => tx.query(sql, params),
            TxInner::Postgres(tx) => tx.query(sql, params).await,
        }
    }

    /// Runs a query expected to return at most one row.
    pub async fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Runs a query that must return exactly one row.
    pub async fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, DbError> {
        self.query_opt(sql, params).await?.ok_or(DbError::Column(0))
    }

    /// Runs statements, then commits: one round trip on PostgreSQL. If a
    /// statement fails, nothing of the transaction is kept and its error is
    /// returned.
    pub async fn commit_after(mut self, statements: &[(&str, &[Value])]) -> Result<Vec<u64>, DbError> {
        match self.inner {
            TxInner::Sqlite(_) => {
                let counts = self.execute_all(statements).await?;
                self.commit().await?;
                Ok(counts)
            }
            TxInner::Postgres(tx) => tx.commit_after(statements).await,
        }
    }

    /// Makes every change durable.
    pub async fn commit(self) -> Result<(), DbError> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await,
            TxInner::Postgres(tx) => tx.commit().await,
        }
    }
}

/// Rewrites `?1`, `?2`… into PostgreSQL's `$1`, `$2`….
fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Builds a parameter list: `params![a, b]` is `&[Value::from(a), Value::from(b)]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::db::Value] };
    ($($value:expr),+ $(,)?) => { &[$($crate::db::Value::from($value)),+] as &[$crate::db::Value] };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_for_postgres() {
        assert_eq!(
            postgres_placeholders("SELECT a FROM t WHERE b = ?1 AND c > ?12"),
            "SELECT a FROM t WHERE b = $1 AND c > $12"
        );
    }

    #[test]
    fn store_location_is_told_by_its_scheme() {
        assert_eq!(StoreLocation::parse("postgres://u@h/db"), StoreLocation::Postgres("postgres://u@h/db".into()));
        assert_eq!(StoreLocation::parse("cloud.db"), StoreLocation::Sqlite("cloud.db".into()));
        assert_eq!(StoreLocation::parse("sqlite:///var/x.db"), StoreLocation::Sqlite("/var/x.db".into()));
    }
}
