//! The customer's pages: what is on, one event with its pictures and ticket
//! types, buying with the test gateway, and the tickets with their QR codes.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{error_page, escape, money, page, session, sign_in_first, when};
use crate::accounts::auth::Caller;
use crate::catalog::{self, EventFilter};
use crate::common::error::ApiError;
use crate::sale::inventory::{self, ReserveRequest};
use crate::sale::orders::{self, OrderRequest, SalesChannel};
use crate::sale::payments::{GatewayKind, TestOutcome};
use crate::web::AppState;
use crate::{catalog::media, catalog::read_model, common::clock, tickets};

/// `GET /`: published events, soonest first.
pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let caller = session(&s, &headers).await;
    // Upcoming only: past events stay published, and would crowd the first page.
    let filter = EventFilter { from: Some(clock::now()), per_page: Some(100), ..EventFilter::default() };
    let events = match read_model::list(&s.db, &filter).await {
        Ok((page, _)) => page.items,
        Err(e) => return error_page(caller.as_ref(), &e),
    };
    let mut body = String::from("<ul class=\"events\">");
    for e in &events {
        body.push_str(&format!("<li><a href=\"/e/{}\">{}</a> — {}</li>", e.id, escape(&e.title), when(e.starts_at)));
    }
    body.push_str("</ul>");
    if events.is_empty() {
        body = "<p>Nothing on sale right now.</p>".into();
    }
    page("What's on", caller.as_ref(), &body)
}

/// `GET /e/{id}`: an event, its pictures and what can be bought.
pub async fn event(
    State(s): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Response {
    let caller = session(&s, &headers).await;
    let Ok(Path(id)) = id else { return error_page(caller.as_ref(), &ApiError::NotFound("event")) };
    match event_body(&s, caller.as_ref(), id).await {
        Ok((title, body)) => page(&title, caller.as_ref(), &body),
        Err(e) => error_page(caller.as_ref(), &e),
    }
}

async fn event_body(s: &AppState, caller: Option<&Caller>, id: i64) -> Result<(String, String), ApiError> {
    let viewer = caller.copied().unwrap_or(Caller::ANONYMOUS);
    let event = catalog::get_event(&s.db, id, Some(&viewer)).await?;
    let mut body = String::new();
    if let Some(venue) = &event.venue {
        body.push_str(&format!("<p>{} · {}</p>", escape(&venue.name), escape(&venue.address)));
    }
    body.push_str(&format!("<p>{} to {}</p>", when(event.starts_at), when(event.ends_at)));
    if !event.description.is_empty() {
        body.push_str(&format!("<p>{}</p>", escape(&event.description)));
    }
    for m in media::list(&s.db, &viewer, id).await? {
        if let Some(thumb) = &m.thumbnail_url {
            body.push_str(&format!(
                "<a href=\"{}\"><img class=\"thumb\" src=\"{}\" alt=\"picture of the event\"></a>",
                escape(&m.url),
                escape(thumb)
            ));
        }
    }
    body.push_str("<table><tr><th>Ticket</th><th>Price</th><th>Left</th><th></th></tr>");
    for t in event.ticket_types.iter().flatten() {
        let buy = if !s.gateways.test_enabled {
            // Card payments need the app; the page shows what is left.
            "in the app".into()
        } else if t.available > 0 {
            let options: String = (1..=t.per_order_limit.min(t.available).min(10))
                .map(|n| format!("<option value=\"{n}\">{n}</option>"))
                .collect();
            format!(
                "<form method=\"post\" action=\"/shop/buy\"><input type=\"hidden\" name=\"event_id\" value=\"{}\">\
                 <input type=\"hidden\" name=\"ticket_type_id\" value=\"{}\">\
                 <select name=\"quantity\" aria-label=\"how many\">{options}</select> \
                 <button type=\"submit\" class=\"buy\">Buy</button></form>",
                event.id, t.id
            )
        } else {
            "sold out".into()
        };
        body.push_str(&format!(
            "<tr data-type=\"{}\"><td>{}{}</td><td>{}</td><td>{}</td><td>{buy}</td></tr>",
            t.id,
            escape(&t.name),
            if t.seated { " (best seats available)" } else { "" },
            money(t.price_minor, &t.currency),
            t.available
        ));
    }
    body.push_str("</table>");
    Ok((event.title, body))
}

/// The buy form.
#[derive(Debug, Deserialize)]
pub struct BuyForm {
    event_id: i64,
    ticket_type_id: i64,
    quantity: i64,
}

/// `POST /shop/buy`: a hold, then an order paid through the test gateway.
pub async fn buy(
    State(s): State<AppState>,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<BuyForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let caller = session(&s, &headers).await;
    let Ok(Form(form)) = form else {
        return error_page(caller.as_ref(), &ApiError::BadRequest("the form is incomplete".into()));
    };
    let Some(caller) = caller else { return sign_in_first(&format!("/e/{}", form.event_id)) };
    match buy_now(&s, &caller, &headers, peer, &form).await {
        Ok(order) => Redirect::to(&format!("/my/tickets?order={order}")).into_response(),
        Err(e) => error_page(Some(&caller), &e),
    }
}

async fn buy_now(
    s: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    peer: SocketAddr,
    form: &BuyForm,
) -> Result<i64, ApiError> {
    if !s.gateways.test_enabled {
        return Err(ApiError::Conflict(
            "card payments are taken in the app; this shop sells through the test gateway".into(),
        ));
    }
    let shop = s.shop();
    let signals = shop.signals(caller, headers, peer, None)?;
    let now = clock::now();
    let req = ReserveRequest { ticket_type_id: form.ticket_type_id, quantity: Some(form.quantity), seats: None };
    let reserve = inventory::reserve(&s.db, caller, form.event_id, &req, None, shop.settings.hold_seconds, now);
    let attempt = (form.event_id, form.quantity);
    let hold =
        crate::sale::fraud::screened_reservation(&s.db, &shop.settings.fraud, &signals, attempt, now, reserve).await?;
    let order = OrderRequest {
        hold_id: hold.id.clone(),
        gateway: GatewayKind::Test,
        test_outcome: TestOutcome::Succeed,
        promo_code: None,
        channel: SalesChannel::Web,
        payment_fingerprint: None,
    };
    let screening =
        shop.settings.fraud.enabled.then_some(orders::Screening { rules: &shop.settings.fraud, signals: &signals });
    match orders::create(shop.orders(), caller, &order, screening, None, shop.settings.pay_seconds).await {
        Ok(order) => Ok(order.id),
        Err(e) => {
            // The page cannot offer to release the hold later: give the stock back now.
            if let Err(release) = inventory::release(&s.db, caller, &hold.id).await {
                tracing::warn!(hold = %hold.id, error = %release, "hold of a failed page order not released");
            }
            Err(e)
        }
    }
}

/// `?order=` after a purchase.
#[derive(Debug, Deserialize)]
pub struct JustBought {
    order: Option<i64>,
}

/// `GET /my/tickets`: the signed-in customer's tickets with their QR codes.
pub async fn my_tickets(State(s): State<AppState>, headers: HeaderMap, bought: Query<JustBought>) -> Response {
    let Some(caller) = session(&s, &headers).await else { return sign_in_first("/my/tickets") };
    match tickets_body(&s, &caller, bought.order).await {
        Ok(body) => page("My tickets", Some(&caller), &body),
        Err(e) => error_page(Some(&caller), &e),
    }
}

async fn tickets_body(s: &AppState, caller: &Caller, bought: Option<i64>) -> Result<String, ApiError> {
    let mut body = String::new();
    if let Some(id) = bought {
        let order = orders::get(&s.db, caller, id).await?;
        let note = match (order.status.as_str(), order.review.as_deref()) {
            ("paid", Some("held")) => {
                format!("Order {id} is paid. We are checking it before the tickets are issued; you will get an e-mail.")
            }
            ("paid", _) => format!("Order {id} is paid: {} ticket(s) below.", order.ticket_ids.len()),
            (status, _) => format!("Order {id} is {status}."),
        };
        body.push_str(&format!("<p class=\"notice\" id=\"order-status\">{}</p>", escape(&note)));
    }
    let mine = tickets::mine(&s.db, caller).await?;
    if mine.is_empty() {
        body.push_str("<p>No tickets yet.</p>");
    }
    let mut titles = std::collections::HashMap::new();
    for t in mine {
        if let std::collections::hash_map::Entry::Vacant(slot) = titles.entry(t.event_id) {
            // Straight from the row: a cancelled event's tickets still say which event they were for.
            let row = s.db.query_opt("SELECT title FROM events WHERE id = ?1", crate::params![t.event_id]).await?;
            let title = row.map(|r| r.text(0)).transpose()?.unwrap_or_default();
            slot.insert(title);
        }
        let code = if t.status != "valid" {
            format!("<p>{}</p>", escape(&t.status))
        } else if t.rotating {
            let until = tickets::wallet_expiry(&s.db, t.id).await?;
            format!("<p><a href=\"/wallet/{}\">Open in the wallet</a></p>", s.tokens.wallet_token(t.id, until)?)
        } else {
            crate::common::qr_render::svg(&t.barcode).map_err(|e| ApiError::Internal(e.to_string()))?
        };
        body.push_str(&format!(
            "<div class=\"ticket\" data-ticket=\"{}\"><strong>{}</strong><br>{}{}</div>",
            t.id,
            escape(titles.get(&t.event_id).map_or("", String::as_str)),
            t.seat.as_deref().map(|seat| format!("Seat {} ", escape(seat))).unwrap_or_default(),
            code
        ));
    }
    Ok(body)
}
