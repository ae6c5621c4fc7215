//! The customer's pages: what is on, one event with its pictures and ticket
//! types, buying with the test gateway, and the tickets with their QR codes.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::{error_page, money, page, session, sign_in_first, when};
use crate::accounts::auth::Caller;
use crate::catalog::{self, EventFilter, TicketType};
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
    let body = html! {
        @if events.is_empty() {
            p { "Nothing on sale right now." }
        } @else {
            ul.events {
                @for e in &events {
                    li { a href={ "/e/" (e.id) } { (e.title) } " — " (when(e.starts_at)) }
                }
            }
        }
    };
    page("What's on", caller.as_ref(), body)
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
        Ok((title, body)) => page(&title, caller.as_ref(), body),
        Err(e) => error_page(caller.as_ref(), &e),
    }
}

async fn event_body(s: &AppState, caller: Option<&Caller>, id: i64) -> Result<(String, Markup), ApiError> {
    let viewer = caller.copied().unwrap_or(Caller::ANONYMOUS);
    let event = catalog::get_event(&s.db, id, Some(&viewer)).await?;
    let pictures = media::list(&s.db, &viewer, id).await?;
    let body = html! {
        @if let Some(venue) = &event.venue {
            p { (venue.name) " · " (venue.address) }
        }
        p { (when(event.starts_at)) " to " (when(event.ends_at)) }
        @if !event.description.is_empty() {
            p { (event.description) }
        }
        @for m in &pictures {
            @if let Some(thumb) = &m.thumbnail_url {
                a href=(m.url) { img.thumb src=(thumb) alt="picture of the event"; }
            }
        }
        table {
            tr { th { "Ticket" } th { "Price" } th { "Left" } th {} }
            @for t in event.ticket_types.iter().flatten() {
                tr data-type=(t.id) {
                    td { (t.name) @if t.seated { " (best seats available)" } }
                    td { (money(t.price_minor, &t.currency)) }
                    td { (t.available) }
                    td { (buy_cell(s, event.id, t)) }
                }
            }
        }
    };
    Ok((event.title, body))
}

/// How a ticket type can be bought here: a form while the test gateway sells
/// and stock is left, otherwise a word why not.
fn buy_cell(s: &AppState, event: i64, t: &TicketType) -> Markup {
    if !s.gateways.test_enabled {
        // Card payments need the app; the page shows what is left.
        return html! { "in the app" };
    }
    if t.available <= 0 {
        return html! { "sold out" };
    }
    html! {
        form method="post" action="/shop/buy" {
            input type="hidden" name="event_id" value=(event);
            input type="hidden" name="ticket_type_id" value=(t.id);
            select name="quantity" aria-label="how many" {
                @for n in 1..=t.per_order_limit.min(t.available).min(10) {
                    option value=(n) { (n) }
                }
            }
            " "
            button.buy type="submit" { "Buy" }
        }
    }
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
        Ok(body) => page("My tickets", Some(&caller), body),
        Err(e) => error_page(Some(&caller), &e),
    }
}

async fn tickets_body(s: &AppState, caller: &Caller, bought: Option<i64>) -> Result<Markup, ApiError> {
    let note = match bought {
        Some(id) => Some(order_note(&orders::get(&s.db, caller, id).await?)),
        None => None,
    };
    let mine = tickets::mine(&s.db, caller).await?;
    let mut titles = std::collections::HashMap::new();
    let mut cards = Vec::with_capacity(mine.len());
    for t in &mine {
        if let std::collections::hash_map::Entry::Vacant(slot) = titles.entry(t.event_id) {
            // Straight from the row: a cancelled event's tickets still say which event they were for.
            let row = s.db.query_opt("SELECT title FROM events WHERE id = ?1", crate::params![t.event_id]).await?;
            let title = row.map(|r| r.text(0)).transpose()?.unwrap_or_default();
            slot.insert(title);
        }
        let title = titles.get(&t.event_id).map_or("", String::as_str);
        cards.push(ticket_card(t, title, ticket_code(s, t).await?));
    }
    Ok(html! {
        @if let Some(note) = note {
            p.notice #order-status { (note) }
        }
        @if mine.is_empty() {
            p { "No tickets yet." }
        }
        @for card in cards {
            (card)
        }
    })
}

/// What the page says of the order just bought.
fn order_note(order: &orders::Order) -> String {
    let id = order.id;
    match (order.status.as_str(), order.review.as_deref()) {
        ("paid", Some("held")) => {
            format!("Order {id} is paid. We are checking it before the tickets are issued; you will get an e-mail.")
        }
        ("paid", _) => format!("Order {id} is paid: {} ticket(s) below.", order.ticket_ids.len()),
        (status, _) => format!("Order {id} is {status}."),
    }
}

/// A ticket's code: its QR code while valid, a wallet link when the code
/// rotates, otherwise its status.
async fn ticket_code(s: &AppState, t: &tickets::Ticket) -> Result<Markup, ApiError> {
    if t.status != "valid" {
        return Ok(html! { p { (t.status) } });
    }
    if t.rotating {
        let until = tickets::wallet_expiry(&s.db, t.id).await?;
        let token = s.tokens.wallet_token(t.id, until)?;
        return Ok(html! { p { a href={ "/wallet/" (token) } { "Open in the wallet" } } });
    }
    let svg = crate::common::qr_render::svg(&t.barcode).map_err(|e| ApiError::Internal(e.to_string()))?;
    // Our own QR renderer's SVG: made from the signed barcode by the qrcode
    // crate, modules and colours only, no text of anyone's.
    Ok(html! { (PreEscaped(svg)) })
}

/// One ticket: its event, its seat and its code.
fn ticket_card(t: &tickets::Ticket, title: &str, code: Markup) -> Markup {
    html! {
        div.ticket data-ticket=(t.id) {
            strong { (title) }
            br;
            @if let Some(seat) = &t.seat {
                "Seat " (seat) " "
            }
            (code)
        }
    }
}
