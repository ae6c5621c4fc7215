//! Extractors every area's handlers use: they turn malformed input into
//! problem documents instead of the framework's plain-text refusals.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::common::error::ApiError;

/// A JSON body, parsed but not yet judged: handlers check who is calling
/// first, so a caller without the right role learns nothing from a body error.
pub struct Body<T>(Result<T, ApiError>);

impl<T> Body<T> {
    /// The body, or the problem with it.
    pub fn get(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Ok(Self(Err(ApiError::BadRequest("Content-Type must be application/json".into()))));
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Ok(Self(Err(ApiError::TooLarge))),
            Err(e) => return Ok(Self(Err(ApiError::BadRequest(format!("body: {}", e.body_text()))))),
        };
        // Every JSON string of every route, checked here once.
        if let Err(e) = crate::common::text_guard::check_json(&bytes) {
            return Ok(Self(Err(ApiError::BadRequest(e.to_string()))));
        }
        Ok(Self(match Json::<T>::from_bytes(&bytes) {
            Ok(Json(value)) => Ok(value),
            Err(e) => Err(ApiError::BadRequest(format!("body: {}", e.body_text()))),
        }))
    }
}

/// `application/json` or `application/<something>+json`, as axum's `Json` takes.
fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers)
        .is_some_and(|t| t == "application/json" || (t.starts_with("application/") && t.ends_with("+json")))
}

/// The request's media type, lower case, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// A path parameter, or a 400 problem saying what is wrong with it.
pub fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v).map_err(|e| ApiError::BadRequest(format!("path: {}", e.body_text())))
}

/// A query string, or a 400 problem saying what is wrong with it.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))
}
