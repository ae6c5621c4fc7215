//! The sale's HTTP surface: seat availability, holds, orders and refunds, the
//! payment gateway's webhook, event cancellation, promotion codes, resale, and
//! the fraud cases an organizer resolves.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::inventory::{self, ReserveRequest};
use super::orders::{self, OrderRequest};
use super::payments::{Gateways, signature, webhook};
use super::promotions::{self, NewPromoCode};
use super::{Settings, cases, fraud, resale};
use crate::accounts::auth::{Caller, RUNNERS, Tokens};
use crate::common::clock;
use crate::common::error::{ApiError, ApiResult, Problem};
use crate::common::extract::{Body, path};
use crate::common::idempotency::Idempotency;
use crate::db::Db;

/// What the sale's handlers need.
#[derive(Clone, FromRef)]
pub struct Shop {
    /// The store.
    pub db: Db,
    /// Access tokens.
    pub tokens: Arc<Tokens>,
    /// Payment gateways.
    pub gateways: Arc<Gateways>,
    /// Signs the barcodes of the tickets an order issues.
    pub signer: Arc<schema::TicketSigner>,
    /// Hold and payment times, resale cap, fraud rules, webhook secret.
    pub settings: Settings,
}

impl Shop {
    /// What the order functions need, with the clock read now.
    pub fn orders(&self) -> orders::Ctx<'_> {
        orders::Ctx { db: &self.db, gateways: &self.gateways, signer: &self.signer, now: clock::now() }
    }

    /// What a purchase request shows of its sender, for fraud scoring.
    pub fn signals(
        &self,
        caller: &Caller,
        headers: &HeaderMap,
        peer: SocketAddr,
        payment: Option<&str>,
    ) -> Result<fraud::Signals, ApiError> {
        let device = headers
            .get("x-device-id")
            .map(|v| v.to_str().map_err(|_| ApiError::BadRequest("X-Device-Id: visible ASCII only".into())))
            .transpose()?;
        let ip = crate::common::rate_limit::client_ip(headers, Some(peer), self.settings.trust_forwarded_for);
        Ok(fraud::Signals {
            user_id: caller.id,
            ip: ip.map(|ip| ip.to_string()),
            device: fraud::check_signal("X-Device-Id", device)?,
            payment: fraud::check_signal("payment_fingerprint", payment)?,
        })
    }
}

/// The routes a client could flood to take stock: the router puts them
/// behind the rate limiter.
pub fn limited_routes() -> Router<Shop> {
    Router::new()
        .route("/events/{id}/reserve-tickets", post(reserve))
        .route("/resale/{id}/reserve", post(reserve_listing))
        .route("/orders", post(create_order))
}

/// The other routes.
pub fn routes() -> Router<Shop> {
    Router::new()
        .route("/events/{id}/seats", get(event_seats))
        .route("/holds/{id}", delete(release_hold))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/refund", post(refund_order))
        .route("/payments/webhook", post(stripe_webhook))
        .route("/admin/events/{id}/cancel", post(cancel_event))
        .route("/admin/events/{id}/promo-codes", post(create_promo_code).get(list_promo_codes))
        .route("/admin/promo-codes/{id}/disable", post(disable_promo_code))
        .route("/tickets/{id}/resale", post(list_for_resale))
        .route("/events/{id}/resale", get(resale_offers))
        .route("/resale/{id}", delete(withdraw_listing))
        .route("/admin/events/{id}/cases", get(list_cases))
        .route("/admin/cases/{id}/resolve", post(resolve_case))
}

/// This area's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    event_seats,
    reserve,
    release_hold,
    create_order,
    get_order,
    refund_order,
    cancel_event,
    stripe_webhook,
    create_promo_code,
    list_promo_codes,
    disable_promo_code,
    list_for_resale,
    resale_offers,
    withdraw_listing,
    reserve_listing,
    list_cases,
    resolve_case
))]
pub struct Api;

#[utoipa::path(get, path = "/events/{id}/seats", tag = "events", params(("id" = i64, Path)), responses((status = 200, body = Vec<inventory::TypeSeats>, description = "each seated ticket type's seats, free, held or sold, with their place on the venue's map"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not published)", body = Problem, content_type = "application/problem+json")))]
async fn event_seats(
    State(s): State<Shop>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<inventory::TypeSeats>>> {
    Ok(Json(inventory::seat_availability(&s.db, path(id)?).await?))
}

#[utoipa::path(post, path = "/events/{id}/reserve-tickets", tag = "buying", security(("bearer" = [])), params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header), ("X-Device-Id" = Option<String>, Header, description = "the app's device id, for fraud checks")), request_body = ReserveRequest, responses((status = 201, body = inventory::Hold), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn reserve(
    State(s): State<Shop>,
    caller: Caller,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Result<Path<i64>, PathRejection>,
    req: Body<ReserveRequest>,
) -> ApiResult<(StatusCode, Json<inventory::Hold>)> {
    caller.require_person()?;
    let (event, req) = (path(id)?, req.get()?);
    let idem = Idempotency::from_headers(&headers, caller.id, "reserve", &(event, &req))?;
    let signals = s.signals(&caller, &headers, peer, None)?;
    let now = clock::now();
    let reserve = inventory::reserve(&s.db, &caller, event, &req, idem.as_ref(), s.settings.hold_seconds, now);
    let hold =
        fraud::screened_reservation(&s.db, &s.settings.fraud, &signals, (event, req.tickets_asked()), now, reserve)
            .await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

#[utoipa::path(delete, path = "/holds/{id}", tag = "buying", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 204, description = "released"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn release_hold(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    inventory::release(&s.db, &caller, &path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/orders", tag = "buying", security(("bearer" = [])), params(("Idempotency-Key" = Option<String>, Header), ("X-Device-Id" = Option<String>, Header, description = "the app's device id, for fraud checks")), request_body = OrderRequest, responses((status = 201, body = orders::Order), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 402, description = "payment declined", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json"), (status = 410, description = "the hold expired", body = Problem, content_type = "application/problem+json"), (status = 502, description = "payment gateway failed", body = Problem, content_type = "application/problem+json")))]
async fn create_order(
    State(s): State<Shop>,
    caller: Caller,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Body<OrderRequest>,
) -> ApiResult<(StatusCode, Json<orders::Order>)> {
    caller.require_person()?;
    let req = req.get()?;
    let idem = Idempotency::from_headers(&headers, caller.id, "orders", &req)?;
    let signals = s.signals(&caller, &headers, peer, req.payment_fingerprint.as_deref())?;
    let screening =
        s.settings.fraud.enabled.then_some(orders::Screening { rules: &s.settings.fraud, signals: &signals });
    let order = orders::create(s.orders(), &caller, &req, screening, idem.as_ref(), s.settings.pay_seconds).await?;
    Ok((StatusCode::CREATED, Json(order)))
}

#[utoipa::path(get, path = "/orders/{id}", tag = "buying", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = orders::Order), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_order(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<orders::Order>> {
    Ok(Json(orders::get(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/orders/{id}/refund", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = orders::Order), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json"), (status = 502, description = "payment gateway failed", body = Problem, content_type = "application/problem+json")))]
async fn refund_order(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<orders::Order>> {
    Ok(Json(orders::refund(s.orders(), &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/events/{id}/cancel", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = orders::Cancellation), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn cancel_event(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<orders::Cancellation>> {
    Ok(Json(orders::cancel_event(s.orders(), &caller, path(id)?).await?))
}

/// Stripe's webhook: the signature is checked over the raw bytes before anything is parsed.
#[utoipa::path(post, path = "/payments/webhook", tag = "payments", params(("Stripe-Signature" = String, Header)), request_body(content = Object, description = "a Stripe event, signed"), responses((status = 200, description = "{received, outcome: applied | duplicate | no_change}", body = Object), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn stripe_webhook(State(s): State<Shop>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<serde_json::Value>> {
    let secret =
        s.settings.webhook_secret.as_deref().ok_or(ApiError::NotFound("webhook (Stripe is not configured)"))?;
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
    crate::common::text_guard::check_json(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let event = webhook::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let outcome = orders::apply_webhook(s.orders(), &event).await?;
    Ok(Json(serde_json::json!({ "received": true, "outcome": outcome })))
}

#[utoipa::path(post, path = "/admin/events/{id}/promo-codes", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewPromoCode, responses((status = 201, body = promotions::PromoCode), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn create_promo_code(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    p: Body<NewPromoCode>,
) -> ApiResult<(StatusCode, Json<promotions::PromoCode>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(promotions::create(&s.db, &caller, path(id)?, &p.get()?, clock::now()).await?)))
}

#[utoipa::path(get, path = "/admin/events/{id}/promo-codes", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Vec<promotions::PromoCode>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn list_promo_codes(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<promotions::PromoCode>>> {
    caller.require(RUNNERS)?;
    Ok(Json(promotions::list(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/promo-codes/{id}/disable", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = promotions::PromoCode), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn disable_promo_code(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<promotions::PromoCode>> {
    caller.require(RUNNERS)?;
    Ok(Json(promotions::disable(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/tickets/{id}/resale", tag = "resale", security(("bearer" = [])), params(("id" = i64, Path)), request_body = resale::NewListing, responses((status = 201, body = resale::Listing), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn list_for_resale(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    l: Body<resale::NewListing>,
) -> ApiResult<(StatusCode, Json<resale::Listing>)> {
    caller.require_person()?;
    let listing =
        resale::list(&s.db, &caller, path(id)?, &l.get()?, s.settings.resale_max_percent, clock::now()).await?;
    Ok((StatusCode::CREATED, Json(listing)))
}

#[utoipa::path(get, path = "/events/{id}/resale", tag = "resale", params(("id" = i64, Path)), responses((status = 200, body = Vec<resale::Listing>), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json")))]
async fn resale_offers(
    State(s): State<Shop>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<resale::Listing>>> {
    Ok(Json(resale::open_for_event(&s.db, path(id)?).await?))
}

#[utoipa::path(delete, path = "/resale/{id}", tag = "resale", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = resale::Listing), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn withdraw_listing(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<resale::Listing>> {
    Ok(Json(resale::withdraw(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/resale/{id}/reserve", tag = "resale", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 201, body = resale::ResaleHold), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn reserve_listing(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<(StatusCode, Json<resale::ResaleHold>)> {
    let hold = resale::reserve(&s.db, &caller, path(id)?, s.settings.hold_seconds, clock::now()).await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

#[utoipa::path(get, path = "/admin/events/{id}/cases", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Vec<cases::Case>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn list_cases(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<cases::Case>>> {
    caller.require(RUNNERS)?;
    Ok(Json(cases::list(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/cases/{id}/resolve", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), request_body = cases::Resolution, responses((status = 200, body = cases::Case), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn resolve_case(
    State(s): State<Shop>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    r: Body<cases::Resolution>,
) -> ApiResult<Json<cases::Case>> {
    caller.require(RUNNERS)?;
    Ok(Json(cases::resolve(s.orders(), &caller, path(id)?, &r.get()?).await?))
}
