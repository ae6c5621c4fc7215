//! The router: every area's routes assembled, each given its slice of the
//! state, the public write routes behind the rate limiter, and the
//! middleware every request passes through.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};

use super::middleware::{no_sniffing, plain_refusals_as_problems, refuse_control_characters, request_id};
use super::{AppState, openapi, pages};
use crate::common::error::ApiError;
use crate::{accounts, analytics, catalog, notifications, sale, tickets, venue};

/// Every route.
pub fn router(state: AppState) -> Router {
    // What a client can flood to guess passwords, make accounts or take stock.
    let limited = Router::new()
        .merge(accounts::limited_routes().with_state(state.accounts()))
        .merge(sale::limited_routes().with_state(state.shop()))
        .merge(tickets::limited_routes().with_state(state.tickets()))
        .merge(pages::limited_forms());
    let limited = match &state.rate_limit {
        Some(limiter) => limited.route_layer(
            tower_governor::GovernorLayer::new(Arc::clone(limiter)).error_handler(crate::common::rate_limit::refusal),
        ),
        None => limited,
    };
    Router::new()
        .merge(limited)
        .route("/healthz", get(|| async { "ok" }))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .merge(accounts::routes().with_state(state.accounts()))
        .merge(catalog::routes().with_state(state.catalog()))
        .merge(sale::routes().with_state(state.shop()))
        .merge(tickets::routes().with_state(state.tickets()))
        .merge(notifications::routes::routes().with_state(state.access()))
        .merge(venue::routes().with_state(state.venue()))
        .merge(analytics::routes().with_state(state.access()))
        .merge(pages::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(refuse_control_characters))
        .layer(axum::middleware::from_fn(plain_refusals_as_problems))
        .layer(axum::middleware::from_fn(request_id))
        .layer(axum::middleware::from_fn(no_sniffing))
        .with_state(state)
}
