//! The HTTP surface: routes, extractors that turn malformed input into
//! problem documents, and a request id on every response and log line.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, OptionalFromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::OpenApi as _;

use crate::error::Problem;

use crate::auth::{Caller, Role, Tokens};
use crate::catalog::{self, EventFilter, NewEvent, NewTicketType, NewVenue};
use crate::db::Db;
use crate::error::ApiError;
use crate::idempotency::Idempotency;
use crate::inventory::{self, ReserveRequest};
use crate::orders::{self, OrderRequest};
use crate::payments::{Gateways, signature, webhook};
use crate::promotions::{self, NewPromoCode};
use crate::users::{self, Credentials};
use crate::venue_feed::{self, NewDevice};
use crate::{
    cases, clock, domain_events, fraud, media, notifications, oidc, qr_render, read_model, resale, tickets, wallet,
};

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
    /// Highest resale price, percent of face value.
    pub resale_max_percent: i64,
    /// OpenID Connect providers.
    pub oidc: crate::oidc::Providers,
    /// The per-client limiter of the public write endpoints; `None` when off.
    pub rate_limit: Option<crate::rate_limit::Limiter>,
    /// Whether the client's address is the last `X-Forwarded-For` entry.
    pub trust_forwarded_for: bool,
    /// Fraud scoring thresholds.
    pub fraud: crate::fraud::Rules,
    /// Event pictures and videos.
    pub media: crate::media::MediaStore,
}

impl AppState {
    pub(crate) fn orders(&self) -> orders::Ctx<'_> {
        orders::Ctx { db: &self.db, gateways: &self.gateways, signer: &self.signer, now: clock::now() }
    }

    /// What a purchase request shows of its sender, for fraud scoring.
    pub(crate) fn signals(
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
        Ok(fraud::Signals {
            user_id: caller.id,
            ip: crate::rate_limit::client_ip(headers, Some(peer), self.trust_forwarded_for).map(|ip| ip.to_string()),
            device: fraud::check_signal("X-Device-Id", device)?,
            payment: fraud::check_signal("payment_fingerprint", payment)?,
        })
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
        if !is_json(req.headers()) {
            return Ok(Self(Err(ApiError::BadRequest("Content-Type must be application/json".into()))));
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Ok(Self(Err(ApiError::TooLarge))),
            Err(e) => return Ok(Self(Err(ApiError::BadRequest(format!("body: {}", e.body_text()))))),
        };
        // Every JSON string of every route, checked here once.
        if let Err(e) = crate::text_guard::check_json(&bytes) {
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
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
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

/// The OpenAPI 3.1 document of this API, served at `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "tixgate cloud API", description = "Sells tickets, issues signed barcodes, feeds venue hubs."),
    paths(
        register, login, logout, oidc_login, me, set_role, my_tickets, create_venue, get_venue, manifest, upload_scans, add_device,
        revoke_device, list_events, get_event, event_seats, list_media, upload_media, media_original, media_thumbnail,
        delete_media, reserve, release_hold, create_event, publish_event, cancel_event,
        add_ticket_type, create_promo_code, list_promo_codes, disable_promo_code, get_template, put_template, list_notifications, analytics, list_cases, resolve_case,
        list_for_resale, resale_offers, withdraw_listing, reserve_listing,
        create_order, get_order, refund_order, stripe_webhook, get_ticket, ticket_svg, ticket_png,
        wallet_bind
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme =
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build());
        doc.components.get_or_insert_with(Default::default).add_security_scheme("bearer", scheme);
    }
}

/// Every route.
pub fn router(state: AppState) -> Router {
    // What a client can flood to guess passwords, make accounts or take stock.
    let limited = Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/oidc/{provider}", post(oidc_login))
        .route("/events/{id}/reserve-tickets", post(reserve))
        .route("/resale/{id}/reserve", post(reserve_listing))
        .route("/orders", post(create_order))
        .route("/wallet/{token}/bind", post(wallet_bind))
        .merge(crate::pages::limited_forms());
    let limited = match &state.rate_limit {
        Some(limiter) => limited.route_layer(
            tower_governor::GovernorLayer::new(Arc::clone(limiter)).error_handler(crate::rate_limit::refusal),
        ),
        None => limited,
    };
    Router::new()
        .merge(limited)
        .route("/healthz", get(|| async { "ok" }))
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .route("/auth/logout", post(logout))
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
        .route("/events/{id}/seats", get(event_seats))
        .route("/events/{id}/media", get(list_media))
        .route(
            "/admin/events/{id}/media",
            post(upload_media).layer(axum::extract::DefaultBodyLimit::max(crate::media::MAX_UPLOAD)),
        )
        .route("/media/{id}", get(media_original))
        .route("/media/{id}/thumbnail.jpg", get(media_thumbnail))
        .route("/admin/media/{id}", delete(delete_media))
        .route("/holds/{id}", delete(release_hold))
        .route("/admin/events", post(create_event))
        .route("/admin/events/{id}/publish", post(publish_event))
        .route("/admin/events/{id}/cancel", post(cancel_event))
        .route("/admin/events/{id}/ticket-types", post(add_ticket_type))
        .route("/admin/events/{id}/promo-codes", post(create_promo_code).get(list_promo_codes))
        .route("/admin/promo-codes/{id}/disable", post(disable_promo_code))
        .route("/admin/events/{id}/templates/{channel}", get(get_template).put(put_template))
        .route("/admin/events/{id}/notifications", get(list_notifications))
        .route("/admin/events/{id}/analytics", get(analytics))
        .route("/admin/events/{id}/cases", get(list_cases))
        .route("/admin/cases/{id}/resolve", post(resolve_case))
        .route("/tickets/{id}/resale", post(list_for_resale))
        .route("/events/{id}/resale", get(resale_offers))
        .route("/resale/{id}", delete(withdraw_listing))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/refund", post(refund_order))
        .route("/payments/webhook", post(stripe_webhook))
        .route("/tickets/{id}", get(get_ticket))
        .route("/tickets/{id}/qr.svg", get(ticket_svg))
        .route("/tickets/{id}/qr.png", get(ticket_png))
        .route("/wallet/{token}", get(wallet::page))
        .route("/wallet-assets/wallet.js", get(wallet::wallet_js))
        .route("/wallet-assets/qrcode.js", get(wallet::qrcode_js))
        .merge(crate::pages::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(refuse_control_characters))
        .layer(axum::middleware::from_fn(plain_refusals_as_problems))
        .layer(axum::middleware::from_fn(request_id))
        .layer(axum::middleware::from_fn(no_sniffing))
        .with_state(state)
}

/// Every response is taken as the type it declares: a browser never sniffs an
/// uploaded file into a page.
async fn no_sniffing(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The largest form a page posts.
const MAX_FORM: usize = 64 * 1024;

/// Refuses control characters in the path, the query and form fields before
/// any handler reads them (JSON bodies: [`Body`]); see [`crate::text_guard`].
async fn refuse_control_characters(req: Request, next: Next) -> Response {
    use crate::text_guard::{check_path, check_urlencoded};
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
async fn plain_refusals_as_problems(req: Request, next: Next) -> Response {
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

#[utoipa::path(post, path = "/auth/register", tag = "accounts", request_body = Credentials, responses((status = 201, body = users::User), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn register(State(s): State<AppState>, c: Body<Credentials>) -> ApiResult<(StatusCode, Json<users::User>)> {
    Ok((StatusCode::CREATED, Json(users::create(&s.db, &c.get()?, Role::Customer, clock::now()).await?)))
}

#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = Credentials, responses((status = 200, body = users::AccessToken), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json")))]
async fn login(State(s): State<AppState>, c: Body<Credentials>) -> ApiResult<Json<users::AccessToken>> {
    Ok(Json(users::login(&s.db, &s.tokens, &c.get()?, clock::now()).await?))
}

#[utoipa::path(post, path = "/auth/logout", tag = "accounts", security(("bearer" = [])), responses((status = 204, description = "the token's session is over: it opens nothing any more"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json")))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthenticated("missing bearer token"))?;
    let claims = s.tokens.check(token.trim())?;
    let now = clock::now();
    let caller = Caller::of_claims(&s.db, &claims, now).await?;
    let Some(session) = claims.sid else {
        return Err(ApiError::Forbidden("a device token is revoked by its venue's organizer, not signed out"));
    };
    crate::sessions::end(&s.db, caller.id, session, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/users/me", tag = "accounts", security(("bearer" = [])), responses((status = 200, body = users::User), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json")))]
async fn me(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<users::User>> {
    caller.require_person()?;
    Ok(Json(users::get(&s.db, caller.id).await?))
}

/// `PUT /admin/users/{id}/role` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// customer, organizer or admin.
    pub role: Role,
}

#[utoipa::path(put, path = "/admin/users/{id}/role", tag = "accounts", security(("bearer" = [])), params(("id" = i64, Path)), request_body = RoleChange, responses((status = 200, body = users::User), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn set_role(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    change: Body<RoleChange>,
) -> ApiResult<Json<users::User>> {
    caller.require(&[Role::Admin])?;
    Ok(Json(users::set_role(&s.db, path(id)?, change.get()?.role, clock::now()).await?))
}

#[utoipa::path(get, path = "/users/me/tickets", tag = "tickets", security(("bearer" = [])), responses((status = 200, body = Vec<tickets::Ticket>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json")))]
async fn my_tickets(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<tickets::Ticket>>> {
    let mut mine = Vec::new();
    for ticket in tickets::mine(&s.db, &caller).await? {
        mine.push(with_wallet(&s, true, ticket).await?);
    }
    Ok(Json(mine))
}

/// Adds the wallet link to a rotating ticket shown to its owner (never to an
/// admin looking at it: the link is the owner's key to the ticket).
async fn with_wallet(s: &AppState, owner: bool, mut ticket: tickets::Ticket) -> ApiResult<tickets::Ticket> {
    if ticket.rotating && owner {
        let until = tickets::wallet_expiry(&s.db, ticket.id).await?;
        ticket.wallet = Some(format!("/wallet/{}", s.tokens.wallet_token(ticket.id, until)?));
    }
    Ok(ticket)
}

#[utoipa::path(post, path = "/venues", tag = "organizers", security(("bearer" = [])), request_body = NewVenue, responses((status = 201, body = catalog::Venue), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json")))]
async fn create_venue(
    State(s): State<AppState>,
    caller: Caller,
    v: Body<NewVenue>,
) -> ApiResult<(StatusCode, Json<catalog::Venue>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(catalog::create_venue(&s.db, &caller, &v.get()?, clock::now()).await?)))
}

#[utoipa::path(get, path = "/venues/{id}", tag = "events", params(("id" = i64, Path)), responses((status = 200, body = catalog::Venue), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_venue(State(s): State<AppState>, id: Result<Path<i64>, PathRejection>) -> ApiResult<Json<catalog::Venue>> {
    Ok(Json(catalog::get_venue(&s.db, path(id)?).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    since: Option<i64>,
}

#[utoipa::path(get, path = "/venues/{id}/manifest", tag = "venue hubs", security(("bearer" = [])), params(("id" = i64, Path), ("since" = Option<i64>, Query, description = "the hub's version: a delta from it")), responses((status = 200, description = "a signed manifest (TXM1), as gate-agent imports it", content_type = "application/vnd.tixgate.manifest"), (status = 304, description = "nothing newer"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
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

#[utoipa::path(post, path = "/venues/{id}/scans", tag = "venue hubs", security(("bearer" = [])), params(("id" = i64, Path)), request_body(content = Object, description = "schema::uplink::ScanUpload: scans and conflicts, stored once by scan id"), responses((status = 200, description = "UploadReceipt {stored, duplicates}", body = Object), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json")))]
async fn upload_scans(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    upload: Body<schema::uplink::ScanUpload>,
) -> ApiResult<Json<schema::uplink::UploadReceipt>> {
    caller.require(FEED)?;
    Ok(Json(venue_feed::ingest(&s.db, &caller, path(id)?, &upload.get()?, clock::now()).await?))
}

#[utoipa::path(post, path = "/admin/venues/{id}/devices", tag = "venue hubs", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewDevice, responses((status = 201, body = venue_feed::DeviceToken), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
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

#[utoipa::path(delete, path = "/admin/venues/{id}/devices/{device}", tag = "venue hubs", security(("bearer" = [])), params(("id" = i64, Path), ("device" = i64, Path)), responses((status = 204, description = "revoked"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
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

#[utoipa::path(get, path = "/events", tag = "events", params(EventFilter), responses((status = 200, body = catalog::EventPage, description = "with an ETag"), (status = 304, description = "If-None-Match matched"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json")))]
async fn list_events(
    State(s): State<AppState>,
    headers: HeaderMap,
    filter: Result<Query<EventFilter>, QueryRejection>,
) -> ApiResult<Response> {
    let (page, etag) = read_model::list(&s.db, &query(filter)?).await?;
    Ok(with_etag(&headers, etag, page))
}

#[utoipa::path(get, path = "/events/{id}/media", tag = "events", params(("id" = i64, Path)), responses((status = 200, body = Vec<media::Media>, description = "the event's pictures and videos"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn list_media(
    State(s): State<AppState>,
    caller: Option<Caller>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<media::Media>>> {
    let viewer = caller.unwrap_or(Caller::ANONYMOUS);
    Ok(Json(media::list(&s.db, &viewer, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/events/{id}/media", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), request_body(content = Vec<u8>, description = "the file; Content-Type image/jpeg, image/png, video/mp4 or video/webm; at most 50 MiB", content_type = "application/octet-stream"), responses((status = 201, body = media::Media), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json"), (status = 413, description = "the body is too large", body = Problem, content_type = "application/problem+json")))]
async fn upload_media(
    State(s): State<AppState>,
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
async fn media_original(State(s): State<AppState>, id: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    media_response(&s, path(id)?, false).await
}

#[utoipa::path(get, path = "/media/{id}/thumbnail.jpg", tag = "events", params(("id" = String, Path)), responses((status = 200, description = "a JPEG at most 320 pixels on its longer side", content_type = "image/jpeg"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn media_thumbnail(State(s): State<AppState>, id: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    media_response(&s, path(id)?, true).await
}

async fn media_response(s: &AppState, id: String, thumbnail: bool) -> ApiResult<Response> {
    let (content_type, bytes) = media::content(&s.db, &s.media, &id, thumbnail).await?;
    let content_type = HeaderValue::from_str(&content_type).map_err(|e| ApiError::Internal(e.to_string()))?;
    // An id names one upload forever: caches may keep it.
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], bytes).into_response())
}

#[utoipa::path(delete, path = "/admin/media/{id}", tag = "organizers", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 204, description = "deleted"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn delete_media(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require(RUNNERS)?;
    media::delete(&s.db, &s.media, &caller, &path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/events/{id}/seats", tag = "events", params(("id" = i64, Path)), responses((status = 200, body = Vec<inventory::TypeSeats>, description = "each seated ticket type's seats, free, held or sold, with their place on the venue's map"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not published)", body = Problem, content_type = "application/problem+json")))]
async fn event_seats(
    State(s): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<inventory::TypeSeats>>> {
    Ok(Json(inventory::seat_availability(&s.db, path(id)?).await?))
}

#[utoipa::path(get, path = "/events/{id}", tag = "events", params(("id" = i64, Path)), responses((status = 200, body = catalog::Event, description = "with ticket types, availability and venue; with an ETag"), (status = 304, description = "If-None-Match matched"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_event(
    State(s): State<AppState>,
    caller: Option<Caller>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    // Without a token only published events are visible.
    let viewer = caller.unwrap_or(Caller::ANONYMOUS);
    let (event, etag) = read_model::get(&s.db, path(id)?, &viewer).await?;
    Ok(with_etag(&headers, etag, event))
}

#[utoipa::path(post, path = "/events/{id}/reserve-tickets", tag = "buying", security(("bearer" = [])), params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header), ("X-Device-Id" = Option<String>, Header, description = "the app's device id, for fraud checks")), request_body = ReserveRequest, responses((status = 201, body = inventory::Hold), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn reserve(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Result<Path<i64>, PathRejection>,
    req: Body<ReserveRequest>,
) -> ApiResult<(StatusCode, Json<inventory::Hold>)> {
    caller.require_person()?;
    let (event, req) = (path(id)?, req.get()?);
    let idem = idempotency(&headers, &caller, "reserve", &(event, &req))?;
    let signals = s.signals(&caller, &headers, peer, None)?;
    let now = clock::now();
    let reserve = inventory::reserve(&s.db, &caller, event, &req, idem.as_ref(), s.hold_seconds, now);
    let hold =
        fraud::screened_reservation(&s.db, &s.fraud, &signals, (event, req.tickets_asked()), now, reserve).await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

#[utoipa::path(delete, path = "/holds/{id}", tag = "buying", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 204, description = "released"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn release_hold(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    inventory::release(&s.db, &caller, &path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/events", tag = "organizers", security(("bearer" = [])), request_body = NewEvent, responses((status = 201, body = catalog::Event), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn create_event(
    State(s): State<AppState>,
    caller: Caller,
    e: Body<NewEvent>,
) -> ApiResult<(StatusCode, Json<catalog::Event>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(catalog::create_event(&s.db, &caller, &e.get()?, clock::now()).await?)))
}

#[utoipa::path(post, path = "/admin/events/{id}/publish", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = catalog::Event), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn publish_event(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<catalog::Event>> {
    Ok(Json(catalog::publish_event(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/events/{id}/cancel", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = orders::Cancellation), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn cancel_event(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<orders::Cancellation>> {
    Ok(Json(orders::cancel_event(s.orders(), &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/events/{id}/ticket-types", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewTicketType, responses((status = 201, body = catalog::TicketType), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn add_ticket_type(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    t: Body<NewTicketType>,
) -> ApiResult<(StatusCode, Json<catalog::TicketType>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(catalog::add_ticket_type(&s.db, &caller, path(id)?, &t.get()?).await?)))
}

#[utoipa::path(post, path = "/admin/events/{id}/promo-codes", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewPromoCode, responses((status = 201, body = promotions::PromoCode), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn create_promo_code(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    p: Body<NewPromoCode>,
) -> ApiResult<(StatusCode, Json<promotions::PromoCode>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(promotions::create(&s.db, &caller, path(id)?, &p.get()?, clock::now()).await?)))
}

#[utoipa::path(get, path = "/admin/events/{id}/promo-codes", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Vec<promotions::PromoCode>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn list_promo_codes(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<promotions::PromoCode>>> {
    caller.require(RUNNERS)?;
    Ok(Json(promotions::list(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/promo-codes/{id}/disable", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = promotions::PromoCode), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn disable_promo_code(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<promotions::PromoCode>> {
    caller.require(RUNNERS)?;
    Ok(Json(promotions::disable(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(get, path = "/admin/events/{id}/templates/{channel}", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path), ("channel" = String, Path, description = "email or sms")), responses((status = 200, body = notifications::TemplateBody), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_template(
    State(s): State<AppState>,
    caller: Caller,
    p: Result<Path<(i64, String)>, PathRejection>,
) -> ApiResult<Json<notifications::TemplateBody>> {
    caller.require(RUNNERS)?;
    let (event, channel) = path(p)?;
    Ok(Json(notifications::get_template(&s.db, &caller, event, &channel).await?))
}

#[utoipa::path(put, path = "/admin/events/{id}/templates/{channel}", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path), ("channel" = String, Path, description = "email or sms")), request_body = notifications::TemplateBody, responses((status = 200, body = notifications::TemplateBody), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn put_template(
    State(s): State<AppState>,
    caller: Caller,
    p: Result<Path<(i64, String)>, PathRejection>,
    t: Body<notifications::TemplateBody>,
) -> ApiResult<Json<notifications::TemplateBody>> {
    caller.require(RUNNERS)?;
    let (event, channel) = path(p)?;
    Ok(Json(notifications::put_template(&s.db, &caller, event, &channel, &t.get()?, clock::now()).await?))
}

#[utoipa::path(get, path = "/admin/events/{id}/notifications", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Vec<notifications::Notification>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn list_notifications(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<notifications::Notification>>> {
    caller.require(RUNNERS)?;
    Ok(Json(notifications::list(&s.db, &caller, path(id)?).await?))
}

/// Built by the event stream's consumer, so it trails sales by a moment.
#[utoipa::path(get, path = "/admin/events/{id}/analytics", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = domain_events::sales::Analytics), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn analytics(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<domain_events::sales::Analytics>> {
    caller.require(RUNNERS)?;
    Ok(Json(domain_events::sales::analytics(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/tickets/{id}/resale", tag = "resale", security(("bearer" = [])), params(("id" = i64, Path)), request_body = resale::NewListing, responses((status = 201, body = resale::Listing), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn list_for_resale(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    l: Body<resale::NewListing>,
) -> ApiResult<(StatusCode, Json<resale::Listing>)> {
    caller.require_person()?;
    let listing = resale::list(&s.db, &caller, path(id)?, &l.get()?, s.resale_max_percent, clock::now()).await?;
    Ok((StatusCode::CREATED, Json(listing)))
}

#[utoipa::path(get, path = "/events/{id}/resale", tag = "resale", params(("id" = i64, Path)), responses((status = 200, body = Vec<resale::Listing>), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json")))]
async fn resale_offers(
    State(s): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<resale::Listing>>> {
    Ok(Json(resale::open_for_event(&s.db, path(id)?).await?))
}

#[utoipa::path(delete, path = "/resale/{id}", tag = "resale", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = resale::Listing), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn withdraw_listing(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<resale::Listing>> {
    Ok(Json(resale::withdraw(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/resale/{id}/reserve", tag = "resale", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 201, body = resale::ResaleHold), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn reserve_listing(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<(StatusCode, Json<resale::ResaleHold>)> {
    let hold = resale::reserve(&s.db, &caller, path(id)?, s.hold_seconds, clock::now()).await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

#[utoipa::path(post, path = "/auth/oidc/{provider}", tag = "accounts", params(("provider" = String, Path)), request_body = oidc::OidcLogin, responses((status = 200, body = users::AccessToken), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json"), (status = 502, description = "the identity provider could not be reached", body = Problem, content_type = "application/problem+json")))]
async fn oidc_login(
    State(s): State<AppState>,
    provider: Result<Path<String>, PathRejection>,
    login: Body<oidc::OidcLogin>,
) -> ApiResult<Json<users::AccessToken>> {
    let provider = path(provider)?;
    Ok(Json(oidc::sign_in(&s.db, &s.oidc, &s.tokens, &provider, &login.get()?, clock::now()).await?))
}

#[utoipa::path(get, path = "/admin/events/{id}/cases", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Vec<cases::Case>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn list_cases(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<cases::Case>>> {
    caller.require(RUNNERS)?;
    Ok(Json(cases::list(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/cases/{id}/resolve", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), request_body = cases::Resolution, responses((status = 200, body = cases::Case), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn resolve_case(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    r: Body<cases::Resolution>,
) -> ApiResult<Json<cases::Case>> {
    caller.require(RUNNERS)?;
    Ok(Json(cases::resolve(s.orders(), &caller, path(id)?, &r.get()?).await?))
}

#[utoipa::path(post, path = "/orders", tag = "buying", security(("bearer" = [])), params(("Idempotency-Key" = Option<String>, Header), ("X-Device-Id" = Option<String>, Header, description = "the app's device id, for fraud checks")), request_body = OrderRequest, responses((status = 201, body = orders::Order), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 402, description = "payment declined", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json"), (status = 410, description = "the hold expired", body = Problem, content_type = "application/problem+json"), (status = 502, description = "payment gateway failed", body = Problem, content_type = "application/problem+json")))]
async fn create_order(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Body<OrderRequest>,
) -> ApiResult<(StatusCode, Json<orders::Order>)> {
    caller.require_person()?;
    let req = req.get()?;
    let idem = idempotency(&headers, &caller, "orders", &req)?;
    let signals = s.signals(&caller, &headers, peer, req.payment_fingerprint.as_deref())?;
    let screening = s.fraud.enabled.then_some(orders::Screening { rules: &s.fraud, signals: &signals });
    let order = orders::create(s.orders(), &caller, &req, screening, idem.as_ref(), s.pay_seconds).await?;
    Ok((StatusCode::CREATED, Json(order)))
}

#[utoipa::path(get, path = "/orders/{id}", tag = "buying", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = orders::Order), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_order(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<orders::Order>> {
    Ok(Json(orders::get(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/orders/{id}/refund", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = orders::Order), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json"), (status = 502, description = "payment gateway failed", body = Problem, content_type = "application/problem+json")))]
async fn refund_order(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<orders::Order>> {
    Ok(Json(orders::refund(s.orders(), &caller, path(id)?).await?))
}

/// Stripe's webhook: the signature is checked over the raw bytes before anything is parsed.
#[utoipa::path(post, path = "/payments/webhook", tag = "payments", params(("Stripe-Signature" = String, Header)), request_body(content = Object, description = "a Stripe event, signed"), responses((status = 200, description = "{received, outcome: applied | duplicate | no_change}", body = Object), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
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
    crate::text_guard::check_json(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let event = webhook::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let outcome = orders::apply_webhook(s.orders(), &event).await?;
    Ok(Json(serde_json::json!({ "received": true, "outcome": outcome })))
}

#[utoipa::path(get, path = "/tickets/{id}", tag = "tickets", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = tickets::Ticket), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_ticket(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<tickets::Ticket>> {
    let (ticket, owner) = tickets::get_with_owner(&s.db, &caller, path(id)?).await?;
    Ok(Json(with_wallet(&s, caller.is_user(owner), ticket).await?))
}

#[utoipa::path(get, path = "/tickets/{id}/qr.svg", tag = "tickets", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, description = "the barcode as a QR code", content_type = "image/svg+xml"), (status = 409, description = "a rotating ticket: its code is shown only by its wallet", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn ticket_svg(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    let ticket = static_code(tickets::get(&s.db, &caller, path(id)?).await?)?;
    let svg = qr_render::svg(&ticket.barcode).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

#[utoipa::path(get, path = "/tickets/{id}/qr.png", tag = "tickets", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, description = "the barcode as a QR code", content_type = "image/png"), (status = 409, description = "a rotating ticket: its code is shown only by its wallet", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn ticket_png(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    let ticket = static_code(tickets::get(&s.db, &caller, path(id)?).await?)?;
    let png = qr_render::png(&ticket.barcode).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// A rotating ticket has no image to print: its code lives in the wallet.
fn static_code(ticket: tickets::Ticket) -> ApiResult<tickets::Ticket> {
    if ticket.rotating {
        return Err(ApiError::Conflict("this ticket is shown as a rotating code: open its wallet link".into()));
    }
    Ok(ticket)
}

#[utoipa::path(post, path = "/wallet/{token}/bind", tag = "tickets", params(("token" = String, Path, description = "the wallet link's token")), request_body = wallet::BindRequest, responses((status = 200, body = tickets::WalletTicket), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "a wrong or an expired wallet link", body = Problem, content_type = "application/problem+json"), (status = 409, description = "a static ticket, a cancelled one, or one already shown on another device", body = Problem, content_type = "application/problem+json")))]
async fn wallet_bind(
    State(s): State<AppState>,
    token: Result<Path<String>, PathRejection>,
    body: Body<wallet::BindRequest>,
) -> ApiResult<Json<tickets::WalletTicket>> {
    let ticket_id = s.tokens.wallet_ticket(&path(token)?)?;
    let body = body.get()?;
    Ok(Json(tickets::bind(&s.db, &s.signer, ticket_id, &body.holder_key, clock::now()).await?))
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
