//! Unguessable ids for things named in URLs (holds, media): a prefix saying
//! what it names, and 128 random bits.

use crate::common::error::ApiError;

/// `{prefix}_` and 32 lower-case hex digits.
pub fn random_id(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(format!("{prefix}_{}", data_encoding::HEXLOWER.encode(&bytes)))
}
