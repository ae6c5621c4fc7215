//! The venue's HTTP surface: a hub's signed manifest (snapshot or delta), its
//! scan uploads and gate reports, the devices an organizer enrols or revokes,
//! and the venue's set-up: entrances, areas, gates and each event's check-in
//! lists.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::feed::{self, NewDevice};
use super::gates::{self, GateAssignment, GateReport};
use super::layout::{self, NewArea, NewEntrance};
use super::lists::{self, NewCheckinList};
use crate::accounts::auth::{Caller, RUNNERS, Role, Tokens};
use crate::common::clock;
use crate::common::error::{ApiResult, Problem};
use crate::common::extract::{Body, path, query};
use crate::db::Db;

/// Who may read a venue's feed and upload its scans.
const FEED: &[Role] = &[Role::Hub, Role::Organizer, Role::Admin];

/// What the feed's handlers need.
#[derive(Clone, FromRef)]
pub struct Venue {
    /// The store.
    pub db: Db,
    /// Access tokens (device tokens too).
    pub tokens: Arc<Tokens>,
    /// Signs manifests.
    pub signer: Arc<schema::TicketSigner>,
}

/// The feed's routes.
pub fn routes() -> Router<Venue> {
    Router::new()
        .route("/venues/{id}/manifest", get(manifest))
        .route("/venues/{id}/scans", post(upload_scans))
        .route("/venues/{id}/gates", put(report_gates))
        .route("/admin/venues/{id}/devices", post(add_device))
        .route("/admin/venues/{id}/devices/{device}", delete(revoke_device))
        .route("/admin/venues/{id}/entrances", post(add_entrance).get(entrances))
        .route("/admin/venues/{id}/areas", post(add_area).get(areas))
        .route("/admin/venues/{id}/gates", get(venue_gates))
        .route("/admin/venues/{id}/gates/{gate_id}", put(assign_gate).delete(revoke_gate))
        .route("/admin/events/{id}/checkin-lists", post(create_list).get(event_lists))
        .route("/admin/checkin-lists/{id}", get(get_list).put(update_list).delete(delete_list))
}

/// This area's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    manifest,
    upload_scans,
    report_gates,
    add_device,
    revoke_device,
    add_entrance,
    entrances,
    add_area,
    areas,
    venue_gates,
    assign_gate,
    revoke_gate,
    create_list,
    event_lists,
    get_list,
    update_list,
    delete_list
))]
pub struct Api;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    since: Option<i64>,
}

#[utoipa::path(get, path = "/venues/{id}/manifest", tag = "venue hubs", security(("bearer" = [])), params(("id" = i64, Path), ("since" = Option<i64>, Query, description = "the hub's version: a delta from it")), responses((status = 200, description = "a signed manifest (TXM3), as gate-agent imports it", content_type = "application/vnd.tixgate.manifest"), (status = 304, description = "nothing newer"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn manifest(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    since: Result<Query<Since>, QueryRejection>,
) -> ApiResult<Response> {
    let since = query(since)?.since;
    let built = feed::manifest(&s.db, &s.signer, &caller, path(id)?, since, clock::now()).await?;
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
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    upload: Body<schema::uplink::ScanUpload>,
) -> ApiResult<Json<schema::uplink::UploadReceipt>> {
    caller.require(FEED)?;
    Ok(Json(feed::ingest(&s.db, &caller, path(id)?, &upload.get()?, clock::now()).await?))
}

#[utoipa::path(put, path = "/venues/{id}/gates", tag = "venue hubs", security(("bearer" = [])), params(("id" = i64, Path)), request_body = GateReport, responses((status = 200, description = "the venue's gates", body = Vec<gates::Gate>), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn report_gates(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    report: Body<GateReport>,
) -> ApiResult<Json<Vec<gates::Gate>>> {
    caller.require(FEED)?;
    Ok(Json(gates::report(&s.db, &caller, path(id)?, &report.get()?, clock::now()).await?))
}

#[utoipa::path(post, path = "/admin/venues/{id}/devices", tag = "venue hubs", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewDevice, responses((status = 201, body = feed::DeviceToken), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn add_device(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    d: Body<NewDevice>,
) -> ApiResult<(StatusCode, Json<feed::DeviceToken>)> {
    caller.require(RUNNERS)?;
    let token = feed::add_device(&s.db, &s.tokens, &caller, path(id)?, &d.get()?, clock::now()).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

#[utoipa::path(delete, path = "/admin/venues/{id}/devices/{device}", tag = "venue hubs", security(("bearer" = [])), params(("id" = i64, Path), ("device" = i64, Path)), responses((status = 204, description = "revoked"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn revoke_device(
    State(s): State<Venue>,
    caller: Caller,
    ids: Result<Path<(i64, i64)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let (venue, device) = path(ids)?;
    feed::revoke_device(&s.db, &caller, venue, device).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/venues/{id}/entrances", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewEntrance, responses((status = 201, body = layout::Entrance), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn add_entrance(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    e: Body<NewEntrance>,
) -> ApiResult<(StatusCode, Json<layout::Entrance>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(layout::add_entrance(&s.db, &caller, path(id)?, &e.get()?, clock::now()).await?)))
}

#[utoipa::path(get, path = "/admin/venues/{id}/entrances", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Vec<layout::Entrance>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn entrances(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<layout::Entrance>>> {
    caller.require(RUNNERS)?;
    Ok(Json(layout::entrances(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(post, path = "/admin/venues/{id}/areas", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewArea, responses((status = 201, body = layout::Area), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn add_area(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    a: Body<NewArea>,
) -> ApiResult<(StatusCode, Json<layout::Area>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(layout::add_area(&s.db, &caller, path(id)?, &a.get()?, clock::now()).await?)))
}

#[utoipa::path(get, path = "/admin/venues/{id}/areas", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Vec<layout::Area>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn areas(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<layout::Area>>> {
    caller.require(RUNNERS)?;
    Ok(Json(layout::areas(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(get, path = "/admin/venues/{id}/gates", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Vec<gates::Gate>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn venue_gates(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<gates::Gate>>> {
    caller.require(RUNNERS)?;
    Ok(Json(gates::gates(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(put, path = "/admin/venues/{id}/gates/{gate_id}", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path), ("gate_id" = String, Path, description = "the gate's enrolment name at the hub")), request_body = GateAssignment, responses((status = 200, description = "assigned (and no longer revoked)", body = gates::Gate), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json"), (status = 422, description = "names what is not there for it (an entrance of another venue)", body = Problem, content_type = "application/problem+json")))]
async fn assign_gate(
    State(s): State<Venue>,
    caller: Caller,
    ids: Result<Path<(i64, String)>, PathRejection>,
    a: Body<GateAssignment>,
) -> ApiResult<Json<gates::Gate>> {
    caller.require(RUNNERS)?;
    let (venue, gate) = path(ids)?;
    Ok(Json(gates::assign(&s.db, &caller, venue, &gate, &a.get()?, clock::now()).await?))
}

#[utoipa::path(delete, path = "/admin/venues/{id}/gates/{gate_id}", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path), ("gate_id" = String, Path)), responses((status = 204, description = "revoked; the hub ends its enrolment when its manifest says so"), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn revoke_gate(
    State(s): State<Venue>,
    caller: Caller,
    ids: Result<Path<(i64, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require(RUNNERS)?;
    let (venue, gate) = path(ids)?;
    gates::revoke(&s.db, &caller, venue, &gate, clock::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/events/{id}/checkin-lists", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewCheckinList, responses((status = 201, body = lists::CheckinList), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn create_list(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    l: Body<NewCheckinList>,
) -> ApiResult<(StatusCode, Json<lists::CheckinList>)> {
    caller.require(RUNNERS)?;
    Ok((StatusCode::CREATED, Json(lists::create(&s.db, &caller, path(id)?, &l.get()?, clock::now()).await?)))
}

#[utoipa::path(get, path = "/admin/events/{id}/checkin-lists", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = Vec<lists::CheckinList>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn event_lists(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Vec<lists::CheckinList>>> {
    caller.require(RUNNERS)?;
    Ok(Json(lists::list(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(get, path = "/admin/checkin-lists/{id}", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = lists::CheckinList), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_list(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<lists::CheckinList>> {
    caller.require(RUNNERS)?;
    Ok(Json(lists::get(&s.db, &caller, path(id)?).await?))
}

#[utoipa::path(put, path = "/admin/checkin-lists/{id}", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), request_body = NewCheckinList, responses((status = 200, body = lists::CheckinList), (status = 400, description = "malformed input", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn update_list(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    l: Body<NewCheckinList>,
) -> ApiResult<Json<lists::CheckinList>> {
    caller.require(RUNNERS)?;
    Ok(Json(lists::update(&s.db, &caller, path(id)?, &l.get()?, clock::now()).await?))
}

#[utoipa::path(delete, path = "/admin/checkin-lists/{id}", tag = "venue set-up", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 204, description = "deleted; scans recorded under it keep its id"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn delete_list(
    State(s): State<Venue>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require(RUNNERS)?;
    lists::delete(&s.db, &caller, path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
