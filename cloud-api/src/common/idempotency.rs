//! `Idempotency-Key`: a retried request with the same key and body gets the
//! first answer again instead of a second hold or order; the same key with a
//! different body is refused (409).
//!
//! The answer is recorded in the same transaction as the effect, so a crash
//! can never leave one without the other; two concurrent requests with one key
//! meet on the table's primary key and the loser replays the winner's answer.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::common::error::ApiError;
use crate::db::{Db, Tx, Value};
use crate::params;

/// Longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// A request's idempotency key with what identifies its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    user_id: i64,
    route: &'static str,
    key: String,
    request_sha256: String,
}

impl Idempotency {
    /// Wraps the header's value; `body` is the request as the handler parsed it.
    pub fn new(user_id: i64, route: &'static str, key: &str, body: &impl Serialize) -> Result<Self, ApiError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ApiError::BadRequest(format!("Idempotency-Key: 1 to {MAX_KEY_LEN} visible ASCII characters")));
        }
        let canonical = serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.to_string()))?;
        let request_sha256 = data_encoding::HEXLOWER.encode(&Sha256::digest(&canonical));
        Ok(Self { user_id, route, key: key.to_owned(), request_sha256 })
    }

    /// The request's `Idempotency-Key` header wrapped, if it sent one.
    pub fn from_headers(
        headers: &axum::http::HeaderMap,
        user_id: i64,
        route: &'static str,
        body: &impl Serialize,
    ) -> Result<Option<Self>, ApiError> {
        match headers.get("idempotency-key") {
            None => Ok(None),
            Some(v) => {
                let key = v.to_str().map_err(|_| ApiError::BadRequest("Idempotency-Key: visible ASCII only".into()))?;
                Self::new(user_id, route, key, body).map(Some)
            }
        }
    }

    /// The earlier answer to this key, if there was one.
    pub async fn replay<T: DeserializeOwned>(&self, db: &Db) -> Result<Option<T>, ApiError> {
        let row = db
            .query_opt(
                "SELECT request_sha256, response FROM idempotency WHERE user_id = ?1 AND route = ?2 AND key = ?3",
                params![self.user_id, self.route, self.key.clone()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        if row.text(0)? != self.request_sha256 {
            return Err(ApiError::Conflict("Idempotency-Key was already used with a different request".into()));
        }
        serde_json::from_str(&row.text(1)?).map(Some).map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Records the answer inside the transaction that made it.
    pub async fn record(&self, tx: &mut Tx, answer: &impl Serialize, now: i64) -> Result<(), crate::db::DbError> {
        tx.execute(RECORD, &self.record_params(answer, now)).await.map(drop)
    }

    /// The parameters of [`RECORD`], for a caller that sends the statement itself.
    pub fn record_params(&self, answer: &impl Serialize, now: i64) -> Vec<Value> {
        let json = serde_json::to_string(answer).unwrap_or_default();
        params![self.user_id, self.route, self.key.clone(), self.request_sha256.clone(), json, now].to_vec()
    }
}

/// Records an answer; parameters from [`Idempotency::record_params`]. A
/// uniqueness error means a concurrent request with the same key won.
pub const RECORD: &str = "INSERT INTO idempotency (user_id, route, key, request_sha256, status, response, created_at)
     VALUES (?1, ?2, ?3, ?4, 201, ?5, ?6)";

/// Records `answer` under `idempotency` (if any) in `tx` and commits; if a
/// concurrent request with the same key won, returns its answer instead.
pub async fn commit_with<T: Serialize + DeserializeOwned>(
    db: &Db,
    mut tx: Tx,
    idempotency: Option<&Idempotency>,
    answer: T,
    now: i64,
) -> Result<T, ApiError> {
    if let Some(idem) = idempotency {
        match idem.record(&mut tx, &answer, now).await {
            Ok(()) => {}
            Err(e) if e.is_duplicate() => {
                drop(tx);
                return idem.replay(db).await?.ok_or(ApiError::Conflict("Idempotency-Key is in use".into()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    tx.commit().await?;
    Ok(answer)
}
