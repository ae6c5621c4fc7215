//! What every request passes through: a request id on every response and log
//! line, control characters refused before any handler reads them, the
//! framework's own refusals turned into problem documents, and no sniffing.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::common::error::ApiError;
use crate::common::extract::media_type;

/// Every response is taken as the type it declares: a browser never sniffs an
/// uploaded file into a page.
pub async fn no_sniffing(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The largest form a page posts.
const MAX_FORM: usize = 64 * 1024;

/// Refuses control characters in the path, the query and form fields before
/// any handler reads them (JSON bodies: [`crate::common::extract::Body`]); see [`crate::common::text_guard`].
pub async fn refuse_control_characters(req: Request, next: Next) -> Response {
    use crate::common::text_guard::{check_path, check_urlencoded};
    let uri = req.uri();
    let checked = check_path(uri.path())
        .and_then(|()| uri.query().map_or(Ok(()), |q| check_urlencoded("query parameter", q.as_bytes())));
    if let Err(e) = checked {
        return ApiError::BadRequest(e.to_string()).into_response();
    }
    if media_type(req.headers()).as_deref() != Some("application/x-www-form-urlencoded") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return ApiError::TooLarge.into_response();
    };
    if let Err(e) = check_urlencoded("form field", &bytes) {
        return ApiError::BadRequest(e.to_string()).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// The framework's own refusals (a body over its limit, say) come as plain
/// text; they leave as problem documents, like every other refusal.
pub async fn plain_refusals_as_problems(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let plain = response.headers().get(header::CONTENT_TYPE).is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_owned();
    let detail = if detail.is_empty() { status.canonical_reason().unwrap_or("refused").to_owned() } else { detail };
    let mut problem = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::BAD_REQUEST => ApiError::BadRequest(detail),
        status => ApiError::Refused { status, detail },
    }
    .into_response();
    // Headers the refusal set (Retry-After, Allow) still apply.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
    }
    problem
}

/// Gives every request an id (the caller's `X-Request-Id` if sane), logs it
/// with the outcome, and returns it in the response.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            let _ = getrandom::fill(&mut bytes);
            data_encoding::HEXLOWER.encode(&bytes)
        });
    let (method, uri) = (req.method().clone(), loggable_path(req.uri().path()));
    let started = std::time::Instant::now();
    let mut response = next.run(req).await;
    let status = response.status().as_u16();
    tracing::info!(request_id = %id, %method, path = %uri, status, ms = started.elapsed().as_millis() as u64, "request");
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The path as logged: a wallet link is a credential (whoever holds an unbound
/// one can bind the ticket to their own phone), so its token never reaches a log.
fn loggable_path(path: &str) -> String {
    match path.strip_prefix("/wallet/") {
        Some(rest) => {
            let tail = rest.split_once('/').map(|(_, tail)| format!("/{tail}")).unwrap_or_default();
            format!("/wallet/…{tail}")
        }
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn wallet_tokens_never_reach_the_log() {
        assert_eq!(loggable_path("/wallet/eyJ.secret.sig"), "/wallet/…");
        assert_eq!(loggable_path("/wallet/eyJ.secret.sig/bind"), "/wallet/…/bind");
        assert_eq!(loggable_path("/wallet-assets/wallet.js"), "/wallet-assets/wallet.js");
        assert_eq!(loggable_path("/tickets/7"), "/tickets/7");
    }
}
