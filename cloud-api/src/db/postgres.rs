//! The PostgreSQL store: a deadpool of tokio-postgres connections, prepared
//! statements cached per connection.
//!
//! Transactions are `BEGIN` … `COMMIT` on a pooled connection that the
//! transaction owns; one dropped unfinished is rolled back on a spawned task
//! before its connection goes back to the pool. Each round trip costs both
//! processes CPU and, inside a transaction that holds a hot row's lock, time
//! every other buyer waits: so `BEGIN` travels with the first statement, and
//! [`PgTx::execute_all`] sends a list of statements in one go (tokio-postgres
//! pipelines requests that are in flight together, in the order sent).

use std::error::Error;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::{DbError, Row, Value, postgres_placeholders};

/// Connections kept open; the sale benchmark's 200 clients queue on these.
const POOL_SIZE: usize = 32;

/// A pool of connections to one database.
#[derive(Clone)]
pub struct PgDb {
    pool: Pool,
}

impl PgDb {
    /// Builds the pool; connections open on first use.
    pub fn connect(url: &str) -> Result<Self, DbError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| DbError::Address(e.to_string()))?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(POOL_SIZE).build().map_err(|e| DbError::Pool(e.to_string()))?;
        Ok(Self { pool })
    }

    async fn client(&self) -> Result<Object, DbError> {
        self.pool.get().await.map_err(|e| DbError::Pool(e.to_string()))
    }

    /// Takes a connection for a transaction; `BEGIN` goes with its first statement.
    pub async fn begin(&self) -> Result<PgTx, DbError> {
        Ok(PgTx { client: Some(self.client().await?), begun: false })
    }

    /// Runs one read.
    pub async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        query(&self.client().await?, sql, params).await
    }

    /// Runs a script of statements (migrations).
    pub async fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        self.client().await?.batch_execute(sql).await.map_err(Into::into)
    }
}

/// A transaction owning its connection.
pub struct PgTx {
    client: Option<Object>,
    /// Whether `BEGIN` has been sent.
    begun: bool,
}

impl PgTx {
    fn client(&self) -> &Object {
        // Only `commit` and `drop` take the client, and both consume the transaction.
        self.client.as_ref().unwrap_or_else(|| unreachable!("transaction used after commit"))
    }

    /// Whether `BEGIN` must go with the next statement; it is sent once.
    fn begin_now(&mut self) -> bool {
        !std::mem::replace(&mut self.begun, true)
    }

    /// Runs one statement.
    pub async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        Ok(self.execute_all(&[(sql, params)]).await?.pop().unwrap_or(0))
    }

    /// Runs statements in order in one round trip; returns the rows each changed.
    /// The first error stops the list and leaves the transaction to roll back.
    pub async fn execute_all(&mut self, statements: &[(&str, &[Value])]) -> Result<Vec<u64>, DbError> {
        self.pipeline(statements, false).await
    }

    /// Runs one query.
    pub async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let stmt = self.client().prepare_cached(&postgres_placeholders(sql)).await?;
        let begin = self.begin_now();
        let client = self.client();
        let begin = begin_if(client, begin);
        let ((), rows) = futures_util::future::try_join(begin, client.query(&stmt, &refs(params))).await?;
        rows.iter().map(row).collect()
    }

    /// Runs statements and commits, all in one round trip. If a statement
    /// fails, PostgreSQL answers the `COMMIT` of the aborted transaction by
    /// rolling it back, and the statement's error is returned.
    pub async fn commit_after(mut self, statements: &[(&str, &[Value])]) -> Result<Vec<u64>, DbError> {
        let counts = self.pipeline(statements, true).await?;
        // Committed: nothing is left to roll back.
        self.begun = false;
        Ok(counts)
    }

    /// Sends `BEGIN` if not yet sent, the statements, and `COMMIT` if asked,
    /// without waiting between them; returns the rows each statement changed.
    async fn pipeline(&mut self, statements: &[(&str, &[Value])], commit: bool) -> Result<Vec<u64>, DbError> {
        let mut prepared = Vec::with_capacity(statements.len());
        for (sql, _) in statements {
            prepared.push(self.client().prepare_cached(&postgres_placeholders(sql)).await?);
        }
        let begin = self.begin_now();
        let client = self.client();
        let runs = futures_util::future::try_join_all(
            prepared
                .iter()
                .zip(statements)
                .map(|(stmt, (_, params))| async move { client.execute(stmt, &refs(params)).await }),
        );
        let commit = async { if commit { client.batch_execute("COMMIT").await } else { Ok(()) } };
        let ((), counts, ()) = futures_util::future::try_join3(begin_if(client, begin), runs, commit).await?;
        Ok(counts)
    }

    /// Commits.
    pub async fn commit(mut self) -> Result<(), DbError> {
        if let Some(client) = self.client.take()
            && self.begun
        {
            client.batch_execute("COMMIT").await?;
        }
        Ok(())
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && self.begun
        {
            // A connection must not go back to the pool inside a transaction.
            // If the rollback fails, the connection is dropped instead.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(client));
                    }
                });
            } else {
                drop(Object::take(client));
            }
        }
    }
}

async fn begin_if(client: &Object, begin: bool) -> Result<(), tokio_postgres::Error> {
    if begin { client.batch_execute("BEGIN").await } else { Ok(()) }
}

async fn query(client: &Object, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
    let stmt = client.prepare_cached(&postgres_placeholders(sql)).await?;
    let rows = client.query(&stmt, &refs(params)).await?;
    rows.iter().map(row).collect()
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn row(row: &tokio_postgres::Row) -> Result<Row, DbError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(v.into()))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?.map(|v| Value::Int(v.into()))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(|v| Value::Int(v.into()))
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME || *ty == Type::BPCHAR {
            row.try_get::<_, Option<String>>(i)?.map(Value::Text)
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes)
        } else {
            return Err(DbError::ColumnType { column: i, kind: ty.name().to_owned() });
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::BOOL => (*v != 0).to_sql(ty, out),
            Value::Int(v) => v.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Bytes(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // The concrete value checks the type in `to_sql`.
        true
    }

    to_sql_checked!();
}
