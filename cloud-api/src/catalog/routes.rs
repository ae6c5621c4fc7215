//! The catalog's HTTP surface: venues, events and their ticket types (the
//! organizer's writes and the public listing with ETags), and event media.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::media::{self, MediaStore};
use super::{EventFilter, NewEvent, NewTicketType, NewVenue, read_model};
use crate::accounts::auth::{Caller, RUNNERS, Tokens};
use crate::catalog;
use crate::common::clock;
use crate::common::error::{ApiError, ApiResult, Problem};
use crate::common::extract::{Body, path, query};
use crate::db::Db;

/// What the catalog's handlers need.
#[derive(Clone, FromRef)]
pub struct Catalog {
    /// The store.
    pub db: Db,
    /// Access tokens.
    pub tokens: Arc<Tokens>,
    /// Event pictures and videos.
    pub media: MediaStore,
}

/// The catalog's routes.
pub fn routes() -> Router<Catalog> {
    Router::new()
        .route("/venues", post(create_venue))
        .route("/venues/{id}", get(get_venue))
        .route("/events", get(list_events))
        .route("/events/{id}", get(get_event))
        .route("/admin/events", post(create_event))
        .route("/admin/events/{id}/publish", post(publish_event))
        .route("/admin/events/{id}/ticket-types", post(add_ticket_type))
        .route("/events/{id}/media", get(list_media))
        .route(
            "/admin/events/{id}/media",
            post(upload_media).layer(axum::extract::DefaultBodyLimit::max(media::MAX_UPLOAD)),
        )
        .route("/media/{id}", get(media_original))
        .route("/media/{id}/thumbnail.jpg", get(media_thumbnail))
        .route("/admin/media/{id}", delete(delete_media))
}

/// This area's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_venue,
    get_venue,
    list_events,
    get_event,
    create_event,
    publish_event,
    add_ticket_type,
    list_media,
    upload_media,
    media_original,
    media_thumbnail,
    delete_media
))]
pub struct Api;

#[utoipa::path(post, path = "/venues", tag = "organizers", security(("bearer" = [])), request_body = NewVenue, responses((status = 201, body = catalog::Venue), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json")))]
async fn create_venue(
    State(s): State<Catalog>,
    caller: Caller,
    v: Body<NewVenue>,
) -> ApiResult<(StatusCode, Json<catalog::Venue>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(catalog::create_venue(&s.db, &caller, &v.get()?, clock::now()).await?)))
}

#[utoipa::path(get, path = "/venues/{id}", tag = "events", params(("id" = i64, Path)), responses((status = 200, body = catalog::Venue), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_venue(State(s): State<Catalog>, id: Result<Path<i64>, PathRejection>) -> ApiResult<Json<catalog::Venue>> {
    Ok(Json(catalog::get_venue(&s.db, path(id)?).await?))
}

/// A read-model answer with its ETag, or 304 when the client has it already.
fn with_etag(headers: &HeaderMap, etag: String, body: impl serde::Serialize) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let tag = [(header::ETAG, etag)];
    if fresh { (StatusCode::NOT_MODIFIED, tag).into_response() } else { (tag, Json(body)).into_response() }
}

#[utoipa::path(get, path = "/events", tag = "events", params(EventFilter), responses((status = 200, body = catalog::EventPage, description = "with an ETag"), (status = 304, description = "If-None-Match matched"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json")))]
async fn list_events(
    State(s): State<Catalog>,
    headers: HeaderMap,
    filter: Result<Query<EventFilter>, QueryRejection>,
) -> ApiResult<Response> {
    let (page, etag) = read_model::list(&s.db, &query(filter)?).await?;
    Ok(with_etag(&headers, etag, page))
}

#[utoipa::path(get, path = "/events/{id}", tag = "events", params(("id" = i64, Path)), responses((status = 200, body = catalog::Event, description = "with ticket types, availability and venue; with an ETag"), (status = 304, description = "If-None-Match matched"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_event(
    State(s): State<Catalog>,
    caller: Option<Caller>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    // Without a token only published events are visible.
    let viewer = caller.unwrap_or(Caller::ANONYMOUS);
    let (event, etag) = read_model::get(&s.db, path(id)?, &viewer).await?;
    Ok(with_etag(&headers, etag, event))
}

#[utoipa::path(post, path = "/admin/events", tag = "organizers", security(("bearer" = [])), request_body = NewEvent, responses((status = 201, body = catalog::Event), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn create_event(
    State(s): State<Catalog>,
    caller: Caller,
    e: Body<NewEvent>,
) -> ApiResult<(StatusCode, Json<catalog::Event>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(catalog::create_event(&s.db, &caller, &e.get()?, clock::now()).await?)))
}

#[utoipa::path(post, path = "/admin/events/{id}/publish", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = catalog::Event), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn publish_event(
    State(s): State<Catalog>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<catalog::Event>> {
    Ok(Json(catalog::publish_event(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/events/{id}/ticket-types", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewTicketType, responses((status = 201, body = catalog::TicketType), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn add_ticket_type(
    State(s): State<Catalog>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    t: Body<NewTicketType>,
) -> ApiResult<(StatusCode, Json<catalog::TicketType>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(catalog::add_ticket_type(&s.db, &caller, path(id)?, &t.get()?).await?)))
}

#[utoipa::path(get, path = "/events/{id}/media", tag = "events", params(("id" = i64, Path)), responses((status = 200, body = Vec<media::Media>, description = "the event's pictures and videos"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn list_media(
    State(s): State<Catalog>,
    caller: Option<Caller>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<media::Media>>> {
    let viewer = caller.unwrap_or(Caller::ANONYMOUS);
    Ok(Json(media::list(&s.db, &viewer, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/events/{id}/media", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), request_body(content = Vec<u8>, description = "the file; Content-Type image/jpeg, image/png, video/mp4 or video/webm; at most 50 MiB", content_type = "application/octet-stream"), responses((status = 201, body = media::Media), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json"), (status = 413, description = "the body is too large", body = Problem, content_type = "application/problem+json")))]
async fn upload_media(
    State(s): State<Catalog>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<media::Media>)> {
    caller.require(RUNNERS)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let item = media::upload(&s.db, &s.media, &caller, path(id)?, content_type, body, clock::now()).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

#[utoipa::path(get, path = "/media/{id}", tag = "events", params(("id" = String, Path)), responses((status = 200, description = "the file as uploaded", content_type = "application/octet-stream"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn media_original(State(s): State<Catalog>, id: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    media_response(&s, path(id)?, false).await
}

#[utoipa::path(get, path = "/media/{id}/thumbnail.jpg", tag = "events", params(("id" = String, Path)), responses((status = 200, description = "a JPEG at most 320 pixels on its longer side", content_type = "image/jpeg"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn media_thumbnail(State(s): State<Catalog>, id: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    media_response(&s, path(id)?, true).await
}

async fn media_response(s: &Catalog, id: String, thumbnail: bool) -> ApiResult<Response> {
    let (content_type, bytes) = media::content(&s.db, &s.media, &id, thumbnail).await?;
    let content_type = HeaderValue::from_str(&content_type).map_err(|e| ApiError::Internal(e.to_string()))?;
    // An id names one upload forever: caches may keep it.
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], bytes).into_response())
}

#[utoipa::path(delete, path = "/admin/media/{id}", tag = "organizers", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 204, description = "deleted"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn delete_media(
    State(s): State<Catalog>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require(RUNNERS)?;
    media::delete(&s.db, &s.media, &caller, &path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
