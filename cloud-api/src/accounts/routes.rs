//! The accounts' HTTP surface: registering, signing in and out (with a
//! password or an OpenID Connect provider), the caller's own record, and
//! role changes by an admin.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::{Caller, Role, Tokens};
use super::oidc::{self, Providers};
use super::users::{self, Credentials};
use crate::common::clock;
use crate::common::error::{ApiError, ApiResult, Problem};
use crate::common::extract::{Body, path};
use crate::db::Db;

/// What the accounts' handlers need.
#[derive(Clone, FromRef)]
pub struct Accounts {
    /// The store.
    pub db: Db,
    /// Access tokens.
    pub tokens: Arc<Tokens>,
    /// OpenID Connect providers.
    pub oidc: Providers,
}

/// The routes a client could flood to guess passwords or make accounts: the
/// router puts them behind the rate limiter.
pub fn limited_routes() -> Router<Accounts> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/oidc/{provider}", post(oidc_login))
}

/// The other routes.
pub fn routes() -> Router<Accounts> {
    Router::new()
        .route("/auth/logout", post(logout))
        .route("/users/me", get(me))
        .route("/admin/users/{id}/role", put(set_role))
}

/// This area's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, login, logout, oidc_login, me, set_role))]
pub struct Api;

#[utoipa::path(post, path = "/auth/register", tag = "accounts", request_body = Credentials, responses((status = 201, body = users::User), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn register(State(s): State<Accounts>, c: Body<Credentials>) -> ApiResult<(StatusCode, Json<users::User>)> {
    Ok((StatusCode::CREATED, Json(users::create(&s.db, &c.get()?, Role::Customer, clock::now()).await?)))
}

#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = Credentials, responses((status = 200, body = users::AccessToken), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json")))]
async fn login(State(s): State<Accounts>, c: Body<Credentials>) -> ApiResult<Json<users::AccessToken>> {
    Ok(Json(users::login(&s.db, &s.tokens, &c.get()?, clock::now()).await?))
}

#[utoipa::path(post, path = "/auth/logout", tag = "accounts", security(("bearer" = [])), responses((status = 204, description = "the token's session is over: it opens nothing any more"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json")))]
async fn logout(State(s): State<Accounts>, headers: HeaderMap) -> ApiResult<StatusCode> {
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
    super::sessions::end(&s.db, caller.id, session, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/users/me", tag = "accounts", security(("bearer" = [])), responses((status = 200, body = users::User), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json")))]
async fn me(State(s): State<Accounts>, caller: Caller) -> ApiResult<Json<users::User>> {
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
    State(s): State<Accounts>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    change: Body<RoleChange>,
) -> ApiResult<Json<users::User>> {
    caller.require(&[Role::Admin])?;
    Ok(Json(users::set_role(&s.db, path(id)?, change.get()?.role, clock::now()).await?))
}

#[utoipa::path(post, path = "/auth/oidc/{provider}", tag = "accounts", params(("provider" = String, Path)), request_body = oidc::OidcLogin, responses((status = 200, body = users::AccessToken), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json"), (status = 502, description = "the identity provider could not be reached", body = Problem, content_type = "application/problem+json")))]
async fn oidc_login(
    State(s): State<Accounts>,
    provider: Result<Path<String>, PathRejection>,
    login: Body<oidc::OidcLogin>,
) -> ApiResult<Json<users::AccessToken>> {
    let provider = path(provider)?;
    Ok(Json(oidc::sign_in(&s.db, &s.oidc, &s.tokens, &provider, &login.get()?, clock::now()).await?))
}
