//! Sign-in sessions. Every access token a person gets names a session row, and
//! every request checks that its session is still open: signing out ends one
//! session, and a change of role ends all of the user's, so an organizer
//! demoted to customer cannot use the old token on the next request, rather
//! than for as long as it would have lasted. Hub device tokens have no session;
//! their revocation is checked by the feed (`venue::feed::require_hub`).
//!
//! Cost: one primary-key read per authenticated request (measured by the
//! `sale` benchmark's `session_check` row).

use crate::accounts::auth::{Role, Tokens};
use crate::common::error::ApiError;
use crate::db::{Db, Tx};
use crate::params;

/// Opens a session for `user` and returns its access token.
pub async fn open(db: &Db, tokens: &Tokens, user: i64, role: Role, now: i64) -> Result<String, ApiError> {
    let expires = now.saturating_add(tokens.login_ttl);
    let mut tx = db.begin().await?;
    // The user's sessions long past their end serve nothing any more.
    tx.execute("DELETE FROM sessions WHERE user_id = ?1 AND expires_at < ?2", params![user, now]).await?;
    let session = tx
        .query_one(
            "INSERT INTO sessions (user_id, created_at, expires_at) VALUES (?1, ?2, ?3) RETURNING id",
            params![user, now, expires],
        )
        .await?
        .int(0)?;
    tx.commit().await?;
    tokens.issue_for_session(user, role, session, now, tokens.login_ttl)
}

/// Whether `session` of `user` is open at `now`.
pub async fn is_open(db: &Db, user: i64, session: i64, now: i64) -> Result<bool, ApiError> {
    let row = db
        .query_opt(
            "SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2 AND ended_at IS NULL AND expires_at >= ?3",
            params![session, user, now],
        )
        .await?;
    Ok(row.is_some())
}

/// Ends one session of `user` (signing out); ending it twice changes nothing.
pub async fn end(db: &Db, user: i64, session: i64, now: i64) -> Result<(), ApiError> {
    db.execute(
        "UPDATE sessions SET ended_at = ?1 WHERE id = ?2 AND user_id = ?3 AND ended_at IS NULL",
        params![now, session, user],
    )
    .await?;
    Ok(())
}

/// Ends every open session of `user`, in the transaction that changes what
/// they may do.
pub async fn end_all(tx: &mut Tx, user: i64, now: i64) -> Result<(), ApiError> {
    tx.execute("UPDATE sessions SET ended_at = ?1 WHERE user_id = ?2 AND ended_at IS NULL", params![now, user]).await?;
    Ok(())
}
