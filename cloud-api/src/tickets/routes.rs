//! The tickets' HTTP surface: a customer's tickets, one ticket with its QR
//! code, and the wallet page of rotating tickets with its bind call.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::wallet;
use crate::accounts::auth::{Caller, Tokens};
use crate::common::error::{ApiError, ApiResult, Problem};
use crate::common::extract::{Body, path};
use crate::common::{clock, qr_render};
use crate::db::Db;
use crate::tickets;

/// What the tickets' handlers need.
#[derive(Clone, FromRef)]
pub struct Tickets {
    /// The store.
    pub db: Db,
    /// Access tokens and wallet links.
    pub tokens: Arc<Tokens>,
    /// Signs a wallet's holder key into its ticket.
    pub signer: Arc<schema::TicketSigner>,
}

/// The bind call a client could flood: the router puts it behind the rate limiter.
pub fn limited_routes() -> Router<Tickets> {
    Router::new().route("/wallet/{token}/bind", post(wallet_bind))
}

/// The other routes.
pub fn routes() -> Router<Tickets> {
    Router::new()
        .route("/users/me/tickets", get(my_tickets))
        .route("/tickets/{id}", get(get_ticket))
        .route("/tickets/{id}/qr.svg", get(ticket_svg))
        .route("/tickets/{id}/qr.png", get(ticket_png))
        .route("/wallet/{token}", get(wallet::page))
        .route("/wallet-assets/wallet.js", get(wallet::wallet_js))
        .route("/wallet-assets/qrcode.js", get(wallet::qrcode_js))
}

/// This area's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(my_tickets, get_ticket, ticket_svg, ticket_png, wallet_bind))]
pub struct Api;

#[utoipa::path(get, path = "/users/me/tickets", tag = "tickets", security(("bearer" = [])), responses((status = 200, body = Vec<tickets::Ticket>), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role or ownership does not allow it", body = Problem, content_type = "application/problem+json")))]
async fn my_tickets(State(s): State<Tickets>, caller: Caller) -> ApiResult<Json<Vec<tickets::Ticket>>> {
    let mut mine = Vec::new();
    for ticket in tickets::mine(&s.db, &caller).await? {
        mine.push(with_wallet(&s, true, ticket).await?);
    }
    Ok(Json(mine))
}

/// Adds the wallet link to a rotating ticket shown to its owner (never to an
/// admin looking at it: the link is the owner's key to the ticket).
async fn with_wallet(s: &Tickets, owner: bool, mut ticket: tickets::Ticket) -> ApiResult<tickets::Ticket> {
    if ticket.rotating && owner {
        let until = tickets::wallet_expiry(&s.db, ticket.id).await?;
        ticket.wallet = Some(format!("/wallet/{}", s.tokens.wallet_token(ticket.id, until)?));
    }
    Ok(ticket)
}

#[utoipa::path(get, path = "/tickets/{id}", tag = "tickets", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = tickets::Ticket), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn get_ticket(
    State(s): State<Tickets>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<tickets::Ticket>> {
    let (ticket, owner) = tickets::get_with_owner(&s.db, &caller, path(id)?).await?;
    Ok(Json(with_wallet(&s, caller.is_user(owner), ticket).await?))
}

#[utoipa::path(get, path = "/tickets/{id}/qr.svg", tag = "tickets", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, description = "the barcode as a QR code", content_type = "image/svg+xml"), (status = 409, description = "a rotating ticket: its code is shown only by its wallet", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn ticket_svg(
    State(s): State<Tickets>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    let ticket = static_code(tickets::get(&s.db, &caller, path(id)?).await?)?;
    let svg = qr_render::svg(&ticket.barcode).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

#[utoipa::path(get, path = "/tickets/{id}/qr.png", tag = "tickets", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, description = "the barcode as a QR code", content_type = "image/png"), (status = 409, description = "a rotating ticket: its code is shown only by its wallet", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no, a wrong or an expired token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not found (or not yours)", body = Problem, content_type = "application/problem+json")))]
async fn ticket_png(
    State(s): State<Tickets>,
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
    State(s): State<Tickets>,
    token: Result<Path<String>, PathRejection>,
    body: Body<wallet::BindRequest>,
) -> ApiResult<Json<tickets::WalletTicket>> {
    let ticket_id = s.tokens.wallet_ticket(&path(token)?)?;
    let body = body.get()?;
    Ok(Json(tickets::bind(&s.db, &s.signer, ticket_id, &body.holder_key, clock::now()).await?))
}
