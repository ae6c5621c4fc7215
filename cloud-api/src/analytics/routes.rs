//! The analytics' HTTP surface.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use crate::accounts::auth::{Access, Caller, RUNNERS};
use crate::common::error::{ApiResult, Problem};
use crate::common::extract::path;

/// The analytics' routes.
pub fn routes() -> Router<Access> {
    Router::new().route("/admin/events/{id}/analytics", get(analytics))
}

/// This area's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(analytics))]
pub struct Api;

/// Built by the event stream's consumer, so it trails sales by a moment.
#[utoipa::path(get, path = "/admin/events/{id}/analytics", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = super::sales::Analytics), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn analytics(
    State(s): State<Access>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<super::sales::Analytics>> {
    caller.require(RUNNERS)?;
    Ok(Json(super::sales::analytics(&s.db, &caller, path(id)?).await?))
}
