//! Every refusal the API can give, each with its HTTP status, written as
//! `application/problem+json` (RFC 9457).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;

/// What a handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or a parameter is malformed or out of range.
    #[error("{0}")]
    BadRequest(String),
    /// The body is well-formed but names something that is not there for
    /// it (an entrance of another venue, say); the message names the field.
    #[error("{0}")]
    Unprocessable(String),
    /// No, a malformed or an expired access token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller's role or ownership does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Nothing with that id that the caller may see.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (sold out, already paid, …).
    #[error("{0}")]
    Conflict(String),
    /// The hold or order expired before it was used.
    #[error("{0}")]
    Gone(&'static str),
    /// The payment gateway declined the payment.
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    /// The payment gateway could not be reached or answered nonsense.
    #[error("payment gateway: {0}")]
    Gateway(String),
    /// A webhook's signature is missing, stale or wrong.
    #[error("webhook signature: {0}")]
    BadSignature(&'static str),
    /// The body is larger than the API accepts.
    #[error("the body is too large")]
    TooLarge,
    /// The client sent too many requests; try again after this many seconds.
    #[error("too many requests; try again in {0} s")]
    TooManyRequests(u64),
    /// The route exists, but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// A refusal the HTTP framework made before any handler could (a media
    /// type it does not take, say), with the framework's words.
    #[error("{detail}")]
    Refused {
        /// Its status.
        status: StatusCode,
        /// What the framework said.
        detail: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] DbError),
    /// Anything else that is the service's fault.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) | Self::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Gone(_) => StatusCode::GONE,
            Self::PaymentDeclined(_) => StatusCode::PAYMENT_REQUIRED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Gateway(_) => StatusCode::BAD_GATEWAY,
            Self::Refused { status, .. } => *status,
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short stable name of the problem type, the last part of its `type` URI.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::Conflict(_) => "conflict",
            Self::Unprocessable(_) => "unprocessable",
            Self::Gone(_) => "expired",
            Self::PaymentDeclined(_) => "payment-declined",
            Self::Gateway(_) => "payment-gateway",
            Self::BadSignature(_) => "bad-signature",
            Self::TooLarge => "too-large",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::TooManyRequests(_) => "too-many-requests",
            Self::Refused { .. } => "refused",
            Self::Store(_) | Self::Internal(_) => "internal",
        }
    }
}

/// The problem document (RFC 9457) every refusal carries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `https://tixgate.dev/problems/<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's name.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong, for people.
    pub detail: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            // Store details stay in the log, not in front of customers.
            Self::Store(e) => {
                tracing::error!(error = %e, "store failure");
                "the service failed; try again".to_owned()
            }
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("https://tixgate.dev/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}
