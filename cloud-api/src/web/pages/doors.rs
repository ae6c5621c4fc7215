//! The organizer's door set-up for one event: the venue's entrances and areas
//! added, the event's check-in lists added or removed, and the venue's gates
//! assigned to entrances or revoked (in [`super::gates`]), from the page. The
//! forms go through the same functions as the API, so they are checked alike.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use time::PrimitiveDateTime;
use time::macros::format_description;

use super::{error_page, page, when};
use crate::accounts::auth::Caller;
use crate::catalog;
use crate::common::clock;
use crate::common::error::ApiError;
use crate::venue::gates;
use crate::venue::layout::{self, NewArea, NewEntrance};
use crate::venue::lists::{self, CheckinList, NewCheckinList, UnknownTickets};
use crate::web::AppState;

/// A form's fields; a name may repeat (one per ticked box).
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(super) fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; `None` when missing or blank.
    pub(super) fn one(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    /// Whether a box named `name` was ticked.
    fn ticked(&self, name: &str) -> bool {
        self.one(name).is_some()
    }

    /// Every value of `name` as an id.
    fn ids(&self, name: &str) -> Result<Vec<i64>, ApiError> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim().parse().map_err(|_| ApiError::BadRequest(format!("{name}: not an id"))))
            .collect()
    }

    pub(super) fn id(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.one(name).map(|v| v.parse().map_err(|_| ApiError::BadRequest(format!("{name}: not an id")))).transpose()
    }

    /// A `datetime-local` value, read as UTC like every time on these pages.
    fn time(&self, name: &str) -> Result<Option<time::OffsetDateTime>, ApiError> {
        let Some(text) = self.one(name) else { return Ok(None) };
        let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
        let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        PrimitiveDateTime::parse(text, minutes)
            .or_else(|_| PrimitiveDateTime::parse(text, seconds))
            .map(PrimitiveDateTime::assume_utc)
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{name}: a date and time such as 2027-05-01T19:30")))
    }
}

async fn organizer(s: &AppState, headers: &HeaderMap, here: &str) -> Result<Caller, Box<Response>> {
    super::manage::organizer(s, headers, here).await
}

/// `GET /manage/events/{id}/doors`.
pub async fn doors(State(s): State<AppState>, headers: HeaderMap, id: Result<Path<i64>, PathRejection>) -> Response {
    let Ok(Path(id)) = id else { return error_page(None, &ApiError::NotFound("event")) };
    let caller = match organizer(&s, &headers, &format!("/manage/events/{id}/doors")).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match doors_body(&s, &caller, id).await {
        Ok((title, body)) => page(&title, Some(&caller), body),
        Err(e) => error_page(Some(&caller), &e),
    }
}

async fn doors_body(s: &AppState, caller: &Caller, id: i64) -> Result<(String, Markup), ApiError> {
    let venue = catalog::require_event_organizer(&s.db, caller, id).await?;
    let event = catalog::get_event(&s.db, id, Some(caller)).await?;
    let entrances = layout::entrances(&s.db, caller, venue).await?;
    let areas = layout::areas(&s.db, caller, venue).await?;
    let event_lists = lists::list(&s.db, caller, id).await?;
    let venue_gates = gates::gates(&s.db, caller, venue).await?;
    let types: BTreeMap<i64, String> = event.ticket_types.iter().flatten().map(|t| (t.id, t.name.clone())).collect();
    let door_names: BTreeMap<i64, String> = entrances.iter().map(|e| (e.id, e.name.clone())).collect();
    let area_names: BTreeMap<i64, String> = areas.iter().map(|a| (a.id, a.name.clone())).collect();
    let names = |ids: &[i64], all: &BTreeMap<i64, String>, none: &'static str| -> String {
        if ids.is_empty() {
            return none.to_owned();
        }
        ids.iter().map(|i| all.get(i).cloned().unwrap_or_else(|| i.to_string())).collect::<Vec<_>>().join(", ")
    };
    let here = format!("/manage/events/{id}");
    let body = html! {
        p { a href=(here) { "Back to the event" } }
        h2 { "Check-in lists" }
        @if event_lists.is_empty() {
            p #no-lists {
                "No lists yet: every ticket of the event enters once, at any entrance, on the event's default list (list id "
                (id) "). A gate set to that id must be set to a list's own id once the event has lists."
            }
        } @else {
            table #lists {
                tr { th { "List" } th { "Gate list id" } th { "Admits" } th { "Entrances" } th { "Area" } th { "Open" } th { "Rules" } th {} }
                @for l in &event_lists {
                    tr data-list=(l.id) {
                        td.name { (l.name) }
                        td.manifest-id { (l.manifest_id) }
                        td.types { (names(&l.ticket_type_ids, &types, "every ticket type")) }
                        td.entrances { (names(&l.entrance_ids, &door_names, "every entrance")) }
                        td.area { (l.area_id.and_then(|a| area_names.get(&a).cloned()).unwrap_or_else(|| "—".into())) }
                        td { (hours(l)) }
                        td.rules { (rules(l)) }
                        td {
                            form.inline method="post" action={ "/manage/lists/" (l.id) "/delete" } {
                                button.delete { "Remove" }
                            }
                        }
                    }
                }
            }
        }
        h3 { "Add a list" }
        form #new-list method="post" action={ "/manage/events/" (id) "/lists" } {
            p { label { "Name " input name="name" required maxlength="100"; } }
            fieldset {
                legend { "Ticket types (none ticked: all)" }
                @for (type_id, name) in &types {
                    label { input type="checkbox" name="ticket_type_id" value=(type_id); " " (name) } " "
                }
            }
            fieldset {
                legend { "Entrances (none ticked: all)" }
                @for e in &entrances {
                    label { input type="checkbox" name="entrance_id" value=(e.id); " " (e.name) } " "
                }
            }
            p {
                label { "Leads into " select name="area_id" {
                    option value="" { "no particular area" }
                    @for a in &areas { option value=(a.id) { (a.name) } }
                } }
            }
            p {
                label { "Opens (UTC) " input type="datetime-local" name="opens_at"; } " "
                label { "Closes (UTC) " input type="datetime-local" name="closes_at"; }
            }
            p {
                label { input type="checkbox" name="scan_exits" value="1"; " exits are scanned" } " "
                label { input type="checkbox" name="allow_reentry" value="1"; " re-entry after an exit" } " "
                label { input type="checkbox" name="allow_multiple_entries" value="1"; " any number of entries" } " "
                label { input type="checkbox" name="accept_unknown" value="1"; " admit tickets the gate has not synced yet" }
            }
            p { button type="submit" { "Add the list" } }
        }
        h2 { "Entrances" }
        ul #entrances { @for e in &entrances { li { (e.name) } } }
        form #new-entrance.inline method="post" action={ "/manage/events/" (id) "/entrances" } {
            label { "New entrance " input name="name" required maxlength="100"; } " " button { "Add" }
        }
        h2 { "Areas" }
        ul #areas {
            @for a in &areas {
                li { (a.name) @if let Some(c) = a.capacity { " (capacity " (c) ")" } }
            }
        }
        form #new-area.inline method="post" action={ "/manage/events/" (id) "/areas" } {
            label { "New area " input name="name" required maxlength="100"; } " "
            label { "capacity " input type="number" name="capacity" min="1"; } " " button { "Add" }
        }
        (super::gates::section(id, &venue_gates, &entrances))
    };
    Ok((format!("Doors · {}", event.title), body))
}

fn hours(l: &CheckinList) -> String {
    match (l.opens_at, l.closes_at) {
        (None, None) => "while tickets are valid".into(),
        (Some(from), None) => format!("from {}", when(from)),
        (None, Some(until)) => format!("until {}", when(until)),
        (Some(from), Some(until)) => format!("{} to {}", when(from), when(until)),
    }
}

fn rules(l: &CheckinList) -> String {
    let mut rules = Vec::new();
    if l.scan_exits {
        rules.push("exits scanned");
    }
    if l.allow_multiple_entries {
        rules.push("any number of entries");
    } else if l.allow_reentry {
        rules.push("re-entry after exit");
    } else {
        rules.push("one entry");
    }
    if l.unknown_tickets == UnknownTickets::Accept {
        rules.push("admits tickets not yet synced");
    }
    rules.join(", ")
}

/// What every form post of this page does: find the organizer, act, and go
/// back to the page (or show why not).
pub(super) async fn act<F, Fut>(
    s: &AppState,
    headers: &HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    action: F,
) -> Response
where
    F: FnOnce(Caller, i64) -> Fut,
    Fut: Future<Output = Result<i64, ApiError>>,
{
    let caller = match organizer(s, headers, "/manage").await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Ok(Path(id)) = id else { return error_page(Some(&caller), &ApiError::NotFound("page")) };
    match action(caller, id).await {
        Ok(event) => Redirect::to(&format!("/manage/events/{event}/doors")).into_response(),
        Err(e) => error_page(Some(&caller), &e),
    }
}

/// `POST /manage/events/{id}/entrances`.
pub async fn add_entrance(
    State(s): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Bytes,
) -> Response {
    let (db, fields) = (s.db.clone(), Fields::parse(&body));
    act(&s, &headers, id, |caller, event| async move {
        let venue = catalog::require_event_organizer(&db, &caller, event).await?;
        let new = NewEntrance { name: fields.one("name").unwrap_or_default().to_owned() };
        layout::add_entrance(&db, &caller, venue, &new, clock::now()).await?;
        Ok(event)
    })
    .await
}

/// `POST /manage/events/{id}/areas`.
pub async fn add_area(
    State(s): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Bytes,
) -> Response {
    let (db, fields) = (s.db.clone(), Fields::parse(&body));
    act(&s, &headers, id, |caller, event| async move {
        let venue = catalog::require_event_organizer(&db, &caller, event).await?;
        let capacity = fields.id("capacity").map_err(|_| ApiError::BadRequest("capacity: a whole number".into()))?;
        let new = NewArea { name: fields.one("name").unwrap_or_default().to_owned(), capacity };
        layout::add_area(&db, &caller, venue, &new, clock::now()).await?;
        Ok(event)
    })
    .await
}

/// `POST /manage/events/{id}/lists`.
pub async fn add_list(
    State(s): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Bytes,
) -> Response {
    let (db, fields) = (s.db.clone(), Fields::parse(&body));
    act(&s, &headers, id, |caller, event| async move {
        let new = NewCheckinList {
            name: fields.one("name").unwrap_or_default().to_owned(),
            ticket_type_ids: fields.ids("ticket_type_id")?,
            sections: Vec::new(),
            opens_at: fields.time("opens_at")?,
            closes_at: fields.time("closes_at")?,
            scan_exits: fields.ticked("scan_exits"),
            allow_multiple_entries: fields.ticked("allow_multiple_entries"),
            allow_reentry: fields.ticked("allow_reentry"),
            area_id: fields.id("area_id")?,
            entrance_ids: fields.ids("entrance_id")?,
            unknown_tickets: if fields.ticked("accept_unknown") {
                UnknownTickets::Accept
            } else {
                UnknownTickets::Reject
            },
        };
        lists::create(&db, &caller, event, &new, clock::now()).await?;
        Ok(event)
    })
    .await
}

/// `POST /manage/lists/{id}/delete`.
pub async fn delete_list(
    State(s): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let db = s.db.clone();
    act(&s, &headers, id, |caller, list| async move {
        let event = lists::get(&db, &caller, list).await?.event_id;
        lists::delete(&db, &caller, list).await?;
        Ok(event)
    })
    .await
}
