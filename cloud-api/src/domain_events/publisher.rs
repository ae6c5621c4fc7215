//! Sends the `domain_events` outbox to a JetStream stream.
//!
//! Each pass claims the oldest unpublished rows with a lease (a conditional
//! `UPDATE`, so two instances do not both take a row while the lease runs),
//! publishes them with `Nats-Msg-Id` = `{stream}-{id}`, waits for the
//! stream's acknowledgements, and marks what was acknowledged. A row whose
//! publish failed is released for the next pass.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use bytes::Bytes;

use super::Envelope;
use crate::common::error::ApiError;
use crate::db::Db;
use crate::params;

/// Seconds a claimed row is left to its publisher.
const LEASE_SECONDS: i64 = 30;
/// Rows per pass.
const BATCH: i64 = 200;
/// Published rows are kept this long (for inspection), then deleted.
const KEEP_SECONDS: i64 = 24 * 3600;

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// JetStream stream name.
    pub stream: String,
    /// Subjects are `{prefix}.{kind}`.
    pub subject_prefix: String,
}

/// Publishes the outbox of one store.
pub struct Publisher {
    db: Db,
    js: jetstream::Context,
    target: Target,
    stream_ready: bool,
}

impl Publisher {
    /// Connects in the background: the service starts even while NATS is down,
    /// and events wait in the outbox.
    pub async fn connect(db: Db, target: Target) -> Result<Self, ApiError> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(target.url.as_str())
            .await
            .map_err(|e| ApiError::Internal(format!("NATS {}: {e}", target.url)))?;
        Ok(Self { db, js: jetstream::new(client), target, stream_ready: false })
    }

    /// The stream's configuration: every subject under the prefix, a duplicate
    /// window far longer than a lease, so a republished row is stored once.
    pub fn stream_config(target: &Target) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: target.stream.clone(),
            subjects: vec![format!("{}.>", target.subject_prefix)],
            duplicate_window: Duration::from_secs(600),
            ..Default::default()
        }
    }

    /// Publishes due rows; answers how many the stream acknowledged.
    pub async fn publish_due(&mut self, now: i64) -> Result<usize, ApiError> {
        if !self.stream_ready {
            self.js
                .get_or_create_stream(Self::stream_config(&self.target))
                .await
                .map_err(|e| ApiError::Internal(format!("JetStream stream {}: {e}", self.target.stream)))?;
            self.stream_ready = true;
        }
        let mut rows = self
            .db
            .query(
                "UPDATE domain_events SET claim_until = ?1
                 WHERE id IN (SELECT id FROM domain_events WHERE published_at IS NULL AND claim_until < ?2
                              ORDER BY id LIMIT ?3)
                   AND published_at IS NULL AND claim_until < ?2
                 RETURNING id, kind, payload, created_at",
                params![now + LEASE_SECONDS, now, BATCH],
            )
            .await?;
        rows.sort_by_key(|r| r.int(0).unwrap_or_default());
        let mut pending: Vec<(i64, Result<PublishAckFuture, String>)> = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = row.int(0)?;
            let event = serde_json::from_str(&row.text(2)?).map_err(|e| ApiError::Internal(e.to_string()))?;
            let envelope = Envelope { id, at: row.int(3)?, event };
            let body = serde_json::to_vec(&envelope).map_err(|e| ApiError::Internal(e.to_string()))?;
            let subject = format!("{}.{}", self.target.subject_prefix, row.text(1)?);
            let message =
                PublishMessage::build().payload(Bytes::from(body)).message_id(format!("{}-{id}", self.target.stream));
            pending.push((id, self.js.send_publish(subject, message).await.map_err(|e| e.to_string())));
        }
        let mut published = 0;
        for (id, sent) in pending {
            let acked = match sent {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match acked {
                Ok(()) => {
                    published += 1;
                    self.db
                        .execute("UPDATE domain_events SET published_at = ?2 WHERE id = ?1", params![id, now])
                        .await?;
                }
                Err(e) => {
                    tracing::warn!(event = id, error = %e, "publishing a domain event failed; will retry");
                    self.db.execute("UPDATE domain_events SET claim_until = 0 WHERE id = ?1", params![id]).await?;
                }
            }
        }
        Ok(published)
    }
}

/// Deletes events published over a day ago; with no stream configured, any
/// over a day old (nobody will publish them).
pub async fn prune(db: &Db, now: i64, publishing: bool) -> Result<u64, ApiError> {
    let sql = if publishing {
        "DELETE FROM domain_events WHERE published_at IS NOT NULL AND published_at < ?1"
    } else {
        "DELETE FROM domain_events WHERE created_at < ?1"
    };
    Ok(db.execute(sql, params![now - KEEP_SECONDS]).await?)
}
