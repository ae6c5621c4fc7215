//! The organizer's pages: their events; one event's ticket types and sales,
//! its case list (resolved from the page), and its analytics as plots.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::{error_page, money, page, plot, session, sign_in_first, when};
use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::sale::cases::{self, Outcome, Resolution};
use crate::web::AppState;
use crate::{catalog, params};

/// The signed-in organizer (or admin); else a sign-in or a refusal page.
pub(super) async fn organizer(s: &AppState, headers: &HeaderMap, here: &str) -> Result<Caller, Box<Response>> {
    match session(s, headers).await {
        Some(c) if c.is_runner() => Ok(c),
        Some(c) => Err(Box::new(error_page(Some(&c), &ApiError::Forbidden("these pages are for organizers")))),
        None => Err(Box::new(sign_in_first(here))),
    }
}

/// `GET /manage`: the organizer's events.
pub async fn events(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let caller = match organizer(&s, &headers, "/manage").await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let rows = s
        .db
        .query(
            "SELECT id, title, starts_at, status FROM events WHERE organizer_id = ?1 OR CAST(?2 AS BIGINT) = 1 ORDER BY starts_at, id",
            params![caller.id, i64::from(caller.is_admin())],
        )
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return error_page(Some(&caller), &e.into()),
    };
    let events = rows.iter().filter_map(|r| match (r.int(0), r.text(1), r.int(2), r.text(3)) {
        (Ok(id), Ok(title), Ok(starts), Ok(status)) => Some((id, title, starts, status)),
        _ => None,
    });
    let body = html! {
        table {
            tr { th { "Event" } th { "Starts" } th { "Status" } }
            @for (id, title, starts, status) in events {
                tr {
                    td { a href={ "/manage/events/" (id) } { (title) } }
                    td { (when(starts)) }
                    td { (status) }
                }
            }
        }
    };
    page("Your events", Some(&caller), body)
}

/// `GET /manage/events/{id}`: sales, cases and analytics of one event.
pub async fn event(
    State(s): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else { return error_page(None, &ApiError::NotFound("event")) };
    let caller = match organizer(&s, &headers, &format!("/manage/events/{id}")).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match event_body(&s, &caller, id).await {
        Ok((title, body)) => page(&title, Some(&caller), body),
        Err(e) => error_page(Some(&caller), &e),
    }
}

async fn event_body(s: &AppState, caller: &Caller, id: i64) -> Result<(String, Markup), ApiError> {
    catalog::require_event_organizer(&s.db, caller, id).await?;
    let event = catalog::get_event(&s.db, id, Some(caller)).await?;
    // Paid orders per ticket type, from the orders themselves (always current).
    let paid =
        s.db.query(
            "SELECT h.ticket_type_id, CAST(SUM(h.quantity) AS BIGINT), CAST(SUM(o.amount_minor) AS BIGINT)
             FROM orders o JOIN holds h ON h.id = o.hold_id JOIN ticket_types t ON t.id = h.ticket_type_id
             WHERE t.event_id = ?1 AND o.status = 'paid' GROUP BY h.ticket_type_id",
            params![id],
        )
        .await?;
    let mut sold = BTreeMap::new();
    for r in &paid {
        sold.insert(r.int(0)?, (r.int(1)?, r.int(2)?));
    }
    let cases = cases_section(s, caller, id).await?;
    let analytics = analytics_section(s, caller, id, &event).await?;
    let body = html! {
        p {
            (when(event.starts_at)) " · " (event.status.as_str()) " · " a href={ "/e/" (id) } { "shop page" }
            " · " a #doors-link href={ "/manage/events/" (id) "/doors" } { "doors and check-in lists" }
        }
        h2 { "Sales" }
        table #sales {
            tr { th { "Ticket type" } th { "Price" } th { "Sold" } th { "Left" } th { "Taken" } }
            @for t in event.ticket_types.iter().flatten() {
                @let (tickets, amount) = sold.get(&t.id).copied().unwrap_or((0, 0));
                tr data-type=(t.id) {
                    td { (t.name) }
                    td { (money(t.price_minor, &t.currency)) }
                    td.sold { (tickets) }
                    td { (t.available) " of " (t.total) }
                    td { (money(amount, &t.currency)) }
                }
            }
        }
        (cases)
        (analytics)
    };
    Ok((event.title, body))
}

async fn cases_section(s: &AppState, caller: &Caller, id: i64) -> Result<Markup, ApiError> {
    let list = cases::list(&s.db, caller, id).await?;
    Ok(html! {
        h2 { "Cases" }
        @if list.is_empty() {
            p { "No cases." }
        } @else {
            table #cases {
                tr { th { "What" } th { "Seen" } th { "Status" } th {} }
                @for c in &list {
                    tr data-case=(c.id) data-kind=(c.kind) {
                        td { (c.detail) }
                        td { (c.occurrences) "×, last " (when(c.updated_at)) }
                        td.status { (c.status) }
                        td { (case_actions(c)) }
                    }
                }
            }
        }
    })
}

/// An open case's two buttons (worded for its kind); a closed case's note.
fn case_actions(c: &cases::Case) -> Markup {
    if c.status != "open" {
        return html! { (c.resolution_note.as_deref().unwrap_or_default()) };
    }
    let review = c.kind == "order_review";
    let approve = if review { "Approve the order" } else { "Dismiss" };
    let reject = if review { "Reject and refund" } else { "Confirm fraud" };
    let action = format!("/manage/cases/{}/resolve", c.id);
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="outcome" value="dismissed";
            button.dismiss { (approve) }
        }
        " "
        form.inline method="post" action=(action) {
            input type="hidden" name="outcome" value="confirmed";
            button.confirm { (reject) }
        }
    }
}

async fn analytics_section(s: &AppState, caller: &Caller, id: i64, event: &catalog::Event) -> Result<Markup, ApiError> {
    let analytics = crate::analytics::sales::analytics(&s.db, caller, id).await?;
    let hour = |h: i64| when(h).get(5..16).unwrap_or_default().to_owned();
    let mut by_hour: BTreeMap<i64, i64> = BTreeMap::new();
    let mut by_type: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_channel: BTreeMap<String, i64> = BTreeMap::new();
    let names: BTreeMap<i64, String> = event.ticket_types.iter().flatten().map(|t| (t.id, t.name.clone())).collect();
    for row in &analytics.sales {
        *by_hour.entry(row.hour).or_default() += row.tickets;
        let name = names.get(&row.ticket_type_id).cloned().unwrap_or_else(|| row.ticket_type_id.to_string());
        *by_type.entry(name).or_default() += row.tickets;
        *by_channel.entry(row.channel.clone()).or_default() += row.tickets;
    }
    let mut entries_by_hour: BTreeMap<i64, i64> = BTreeMap::new();
    let mut by_gate: BTreeMap<String, i64> = BTreeMap::new();
    for row in &analytics.entries {
        *entries_by_hour.entry(row.hour).or_default() += row.accepted;
        *by_gate.entry(row.gate_id.clone()).or_default() += row.accepted;
    }
    let series = |m: &BTreeMap<i64, i64>| m.iter().map(|(h, v)| (hour(*h), *v)).collect::<Vec<_>>();
    let named = |m: &BTreeMap<String, i64>| m.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>();
    Ok(html! {
        h2 { "Analytics" }
        p { "From the event stream; a sale shows here a moment after it is paid." }
        h3 { "Tickets sold by hour" }
        #sales-by-hour { (plot::bars("Tickets sold by hour", &series(&by_hour))) }
        h3 { "By ticket type" }
        #sales-by-type { (plot::bars("Tickets sold by ticket type", &named(&by_type))) }
        h3 { "By channel" }
        #sales-by-channel { (plot::bars("Tickets sold by channel", &named(&by_channel))) }
        h3 { "Entries by hour" }
        #entries-by-hour { (plot::bars("Entries by hour", &series(&entries_by_hour))) }
        h3 { "Entries by gate" }
        #entries-by-gate { (plot::bars("Entries by gate", &named(&by_gate))) }
    })
}

/// The resolve buttons' form.
#[derive(Debug, serde::Deserialize)]
pub struct ResolveForm {
    outcome: Outcome,
    #[serde(default)]
    note: String,
}

/// `POST /manage/cases/{id}/resolve`.
pub async fn resolve_case(
    State(s): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    form: Result<Form<ResolveForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let caller = match organizer(&s, &headers, "/manage").await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let (Ok(Path(id)), Ok(Form(form))) = (id, form) else {
        return error_page(Some(&caller), &ApiError::BadRequest("the form is incomplete".into()));
    };
    let resolution = Resolution { outcome: form.outcome, note: form.note, revoke_ticket: false };
    match cases::resolve(s.shop().orders(), &caller, id, &resolution).await {
        Ok(case) => Redirect::to(&format!("/manage/events/{}", case.event_id.unwrap_or_default())).into_response(),
        Err(e) => error_page(Some(&caller), &e),
    }
}
