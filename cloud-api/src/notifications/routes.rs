//! The notifications' HTTP surface: an event's message templates (read, and
//! saved only when they check) and the messages sent for it.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use crate::accounts::auth::{Access, Caller, RUNNERS};
use crate::common::clock;
use crate::common::error::{ApiResult, Problem};
use crate::common::extract::{Body, path};
use crate::notifications;

/// The notifications' routes.
pub fn routes() -> Router<Access> {
    Router::new()
        .route("/admin/events/{id}/templates/{channel}", get(get_template).put(put_template))
        .route("/admin/events/{id}/notifications", get(list_notifications))
}

/// This area's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_template, put_template, list_notifications))]
pub struct Api;

#[utoipa::path(get, path = "/admin/events/{id}/templates/{channel}", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path), ("channel" = String, Path, description = "email or sms")), responses((status = 200, body = notifications::TemplateBody), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_template(
    State(s): State<Access>,
    caller: Caller,
    p: Result<Path<(i64, String)>, PathRejection>,
) -> ApiResult<Json<notifications::TemplateBody>> {
    caller.require(RUNNERS)?;
    let (event, channel) = path(p)?;
    Ok(Json(notifications::get_template(&s.db, &caller, event, &channel).await?))
}

#[utoipa::path(put, path = "/admin/events/{id}/templates/{channel}", tag = "organizers", security(("bearer" = [])), params(("id" = i64, Path), ("channel" = String, Path, description = "email or sms")), request_body = notifications::TemplateBody, responses((status = 200, body = notifications::TemplateBody), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn put_template(
    State(s): State<Access>,
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
    State(s): State<Access>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<notifications::Notification>>> {
    caller.require(RUNNERS)?;
    Ok(Json(notifications::list(&s.db, &caller, path(id)?).await?))
}
