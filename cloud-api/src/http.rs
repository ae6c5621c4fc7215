//! The HTTP surface: routes, extractors that turn malformed input into
//! problem documents, and a request id on every response and log line.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, OptionalFromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::{Caller, Role, Tokens};
use crate::catalog::{self, EventFilter, NewEvent, NewTicketType, NewVenue};
use crate::db::Db;
use crate::error::ApiError;
use crate::idempotency::Idempotency;
use crate::inventory::{self, ReserveRequest};
use crate::orders::{self, OrderRequest};
use crate::payments::{Gateways, signature, webhook};
use crate::users::{self, Credentials};
use crate::venue_feed::{self, NewDevice};
use crate::{clock, qr_render, read_model, tickets};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub db: Db,
    /// Access tokens.
    pub tokens: Arc<Tokens>,
    /// Signs barcodes and manifests.
    pub signer: Arc<schema::TicketSigner>,
    /// Payment gateways.
    pub gateways: Arc<Gateways>,
    /// Stripe's webhook secret.
    pub webhook_secret: Option<Arc<str>>,
    /// Seconds a hold lasts.
    pub hold_seconds: i64,
    /// Seconds an order may stay unpaid.
    pub pay_seconds: i64,
}

impl AppState {
    fn orders(&self) -> orders::Ctx<'_> {
        orders::Ctx { db: &self.db, gateways: &self.gateways, signer: &self.signer, now: clock::now() }
    }
}

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
        Ok(Self(match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(value),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::BadRequest("Content-Type must be application/json".into()))
            }
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(e) => Err(ApiError::BadRequest(format!("body: {}", e.body_text()))),
        }))
    }
}

const RUNNERS: &[Role] = &[Role::Organizer, Role::Admin];
const FEED: &[Role] = &[Role::Hub, Role::Organizer, Role::Admin];

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v).map_err(|e| ApiError::BadRequest(format!("path: {}", e.body_text())))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))
}

impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            <Caller as axum::extract::FromRequestParts<AppState>>::from_request_parts(parts, state).await.map(Some)
        } else {
            Ok(None)
        }
    }
}

fn idempotency(
    headers: &HeaderMap,
    caller: &Caller,
    route: &'static str,
    body: &impl serde::Serialize,
) -> Result<Option<Idempotency>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let key = v.to_str().map_err(|_| ApiError::BadRequest("Idempotency-Key: visible ASCII only".into()))?;
            Idempotency::new(caller.id, route, key, body).map(Some)
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/users/me", get(me))
        .route("/users/me/tickets", get(my_tickets))
        .route("/admin/users/{id}/role", put(set_role))
        .route("/venues", post(create_venue))
        .route("/venues/{id}", get(get_venue))
        .route("/venues/{id}/manifest", get(manifest))
        .route("/venues/{id}/scans", post(upload_scans))
        .route("/admin/venues/{id}/devices", post(add_device))
        .route("/admin/venues/{id}/devices/{device}", delete(revoke_device))
        .route("/events", get(list_events))
        .route("/events/{id}", get(get_event))
        .route("/events/{id}/reserve-tickets", post(reserve))
        .route("/holds/{id}", delete(release_hold))
        .route("/admin/events", post(create_event))
        .route("/admin/events/{id}/publish", post(publish_event))
        .route("/admin/events/{id}/cancel", post(cancel_event))
        .route("/admin/events/{id}/ticket-types", post(add_ticket_type))
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/refund", post(refund_order))
        .route("/payments/webhook", post(stripe_webhook))
        .route("/tickets/{id}", get(get_ticket))
        .route("/tickets/{id}/qr.svg", get(ticket_svg))
        .route("/tickets/{id}/qr.png", get(ticket_png))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// Gives every request an id (the caller's `X-Request-Id` if sane), logs it
/// with the outcome, and returns it in the response.
async fn request_id(req: Request, next: Next) -> Response {
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
    let (method, uri) = (req.method().clone(), req.uri().path().to_owned());
    let started = std::time::Instant::now();
    let mut response = next.run(req).await;
    let status = response.status().as_u16();
    tracing::info!(request_id = %id, %method, path = %uri, status, ms = started.elapsed().as_millis() as u64, "request");
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn register(State(s): State<AppState>, c: Body<Credentials>) -> ApiResult<(StatusCode, Json<users::User>)> {
    Ok((StatusCode::CREATED, Json(users::create(&s.db, &c.get()?, Role::Customer, clock::now()).await?)))
}

async fn login(State(s): State<AppState>, c: Body<Credentials>) -> ApiResult<Json<users::AccessToken>> {
    Ok(Json(users::login(&s.db, &s.tokens, &c.get()?, clock::now()).await?))
}

async fn me(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<users::User>> {
    caller.require_person()?;
    Ok(Json(users::get(&s.db, caller.id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: Role,
}

async fn set_role(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    change: Body<RoleChange>,
) -> ApiResult<Json<users::User>> {
    caller.require(&[Role::Admin])?;
    Ok(Json(users::set_role(&s.db, path(id)?, change.get()?.role).await?))
}

async fn my_tickets(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<tickets::Ticket>>> {
    Ok(Json(tickets::mine(&s.db, &caller).await?))
}

async fn create_venue(
    State(s): State<AppState>,
    caller: Caller,
    v: Body<NewVenue>,
) -> ApiResult<(StatusCode, Json<catalog::Venue>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(catalog::create_venue(&s.db, &caller, &v.get()?, clock::now()).await?)))
}

async fn get_venue(State(s): State<AppState>, id: Result<Path<i64>, PathRejection>) -> ApiResult<Json<catalog::Venue>> {
    Ok(Json(catalog::get_venue(&s.db, path(id)?).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    since: Option<i64>,
}

async fn manifest(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    since: Result<Query<Since>, QueryRejection>,
) -> ApiResult<Response> {
    let since = query(since)?.since;
    let built = venue_feed::manifest(&s.db, &s.signer, &caller, path(id)?, since, clock::now()).await?;
    let Some(m) = built else { return Ok(StatusCode::NOT_MODIFIED.into_response()) };
    let headers = [
        (header::CONTENT_TYPE, "application/vnd.tixgate.manifest".to_owned()),
        (header::ETAG, format!("\"v{}\"", m.version)),
        (header::HeaderName::from_static("x-manifest-version"), m.version.to_string()),
        (header::HeaderName::from_static("x-manifest-kind"), if m.delta { "delta" } else { "snapshot" }.to_owned()),
    ];
    Ok((headers, m.bytes).into_response())
}

async fn upload_scans(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    upload: Body<schema::uplink::ScanUpload>,
) -> ApiResult<Json<schema::uplink::UploadReceipt>> {
    caller.require(FEED)?;
    Ok(Json(venue_feed::ingest(&s.db, &caller, path(id)?, &upload.get()?, clock::now()).await?))
}

async fn add_device(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    d: Body<NewDevice>,
) -> ApiResult<(StatusCode, Json<venue_feed::DeviceToken>)> {
    caller.require(RUNNERS)?;
    let token = venue_feed::add_device(&s.db, &s.tokens, &caller, path(id)?, &d.get()?, clock::now()).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

async fn revoke_device(
    State(s): State<AppState>,
    caller: Caller,
    ids: Result<Path<(i64, i64)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let (venue, device) = path(ids)?;
    venue_feed::revoke_device(&s.db, &caller, venue, device).await?;
    Ok(StatusCode::NO_CONTENT)
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

async fn list_events(
    State(s): State<AppState>,
    headers: HeaderMap,
    filter: Result<Query<EventFilter>, QueryRejection>,
) -> ApiResult<Response> {
    let (page, etag) = read_model::list(&s.db, &query(filter)?).await?;
    Ok(with_etag(&headers, etag, page))
}

async fn get_event(
    State(s): State<AppState>,
    caller: Option<Caller>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    // Without a token only published events are visible.
    let viewer = caller.unwrap_or(Caller { id: 0, role: Role::Customer, venue: None });
    let (event, etag) = read_model::get(&s.db, path(id)?, &viewer).await?;
    Ok(with_etag(&headers, etag, event))
}

async fn reserve(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    req: Body<ReserveRequest>,
) -> ApiResult<(StatusCode, Json<inventory::Hold>)> {
    caller.require_person()?;
    let (event, req) = (path(id)?, req.get()?);
    let idem = idempotency(&headers, &caller, "reserve", &(event, &req))?;
    let hold = inventory::reserve(&s.db, &caller, event, &req, idem.as_ref(), s.hold_seconds, clock::now()).await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

async fn release_hold(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    inventory::release(&s.db, &caller, &path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_event(
    State(s): State<AppState>,
    caller: Caller,
    e: Body<NewEvent>,
) -> ApiResult<(StatusCode, Json<catalog::Event>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(catalog::create_event(&s.db, &caller, &e.get()?, clock::now()).await?)))
}

async fn publish_event(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<catalog::Event>> {
    Ok(Json(catalog::publish_event(&s.db, &caller, path(id)?).await?))
}

async fn cancel_event(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<orders::Cancellation>> {
    Ok(Json(orders::cancel_event(s.orders(), &caller, path(id)?).await?))
}

async fn add_ticket_type(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    t: Body<NewTicketType>,
) -> ApiResult<(StatusCode, Json<catalog::TicketType>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(catalog::add_ticket_type(&s.db, &caller, path(id)?, &t.get()?).await?)))
}

async fn create_order(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    req: Body<OrderRequest>,
) -> ApiResult<(StatusCode, Json<orders::Order>)> {
    caller.require_person()?;
    let req = req.get()?;
    let idem = idempotency(&headers, &caller, "orders", &req)?;
    let order = orders::create(s.orders(), &caller, &req, idem.as_ref(), s.pay_seconds).await?;
    Ok((StatusCode::CREATED, Json(order)))
}

async fn get_order(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<orders::Order>> {
    Ok(Json(orders::get(&s.db, &caller, path(id)?).await?))
}

async fn refund_order(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<orders::Order>> {
    Ok(Json(orders::refund(s.orders(), &caller, path(id)?).await?))
}

/// Stripe's webhook: the signature is checked over the raw bytes before anything is parsed.
async fn stripe_webhook(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let secret = s.webhook_secret.as_deref().ok_or(ApiError::NotFound("webhook (Stripe is not configured)"))?;
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::BadSignature("missing Stripe-Signature header"))?;
    signature::verify(header, &body, secret, clock::now(), signature::DEFAULT_TOLERANCE).map_err(|e| match e {
        signature::SignatureError::NoTimestamp => ApiError::BadSignature("no timestamp"),
        signature::SignatureError::NoSignature => ApiError::BadSignature("no v1 signature"),
        signature::SignatureError::Stale => ApiError::BadSignature("timestamp outside the 300 s tolerance"),
        signature::SignatureError::Mismatch => ApiError::BadSignature("no signature matches"),
    })?;
    let event = webhook::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let outcome = orders::apply_webhook(s.orders(), &event).await?;
    Ok(Json(serde_json::json!({ "received": true, "outcome": outcome })))
}

async fn get_ticket(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<tickets::Ticket>> {
    Ok(Json(tickets::get(&s.db, &caller, path(id)?).await?))
}

async fn ticket_svg(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    let ticket = tickets::get(&s.db, &caller, path(id)?).await?;
    let svg = qr_render::svg(&ticket.barcode).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

async fn ticket_png(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    let ticket = tickets::get(&s.db, &caller, path(id)?).await?;
    let png = qr_render::png(&ticket.barcode).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}
