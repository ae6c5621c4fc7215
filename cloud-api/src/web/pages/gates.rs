//! The doors page's "Gates" section: each gate of the event's venue with the
//! entrance it stands at, a form to choose another (or none: door staff choose
//! on the gate) and a revoke button. The forms go through `venue::gates`, as
//! the API does, so they are checked and bump the manifest alike.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use super::doors::{Fields, act};
use super::when;
use crate::catalog;
use crate::common::clock;
use crate::venue::gates::{self, Gate, GateAssignment};
use crate::venue::layout::Entrance;
use crate::web::AppState;

/// What the select offers for "no entrance".
const STAFF_CHOOSE: &str = "Door staff choose";

/// The section, for event `event` of a venue with these gates and entrances.
pub(super) fn section(event: i64, gates: &[Gate], entrances: &[Entrance]) -> Markup {
    html! {
        h2 { "Gates" }
        @if gates.is_empty() {
            p #no-gates { "No gates yet: the venue's hub reports the gates it enrolled, or set one up below by its id." }
        } @else {
            table #gates {
                tr { th { "Gate" } th { "Entrance" } th { "Status" } th {} th {} }
                @for g in gates {
                    tr data-gate=(g.gate_id) {
                        td.gate { (g.gate_id) }
                        td.entrance { (g.entrance_name.as_deref().unwrap_or(STAFF_CHOOSE)) }
                        td.status { (status(g)) }
                        td { (assign_form(event, Some(g), entrances)) }
                        td {
                            @if !g.revoked {
                                form.inline method="post" action={ "/manage/events/" (event) "/gates/revoke" } {
                                    input type="hidden" name="gate_id" value=(g.gate_id);
                                    button.revoke { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h3 { "Set up a gate the hub has not reported yet" }
        (assign_form(event, None, entrances))
    }
}

fn status(g: &Gate) -> String {
    match (g.revoked, g.reported_at) {
        (true, _) => "revoked: choose its entrance again to let it back in".into(),
        (false, Some(at)) if g.revoked_at_hub => format!("revoked at the hub (reported {})", when(at)),
        (false, Some(at)) => format!("reported by the hub {}", when(at)),
        (false, None) => "not reported by the hub yet".into(),
    }
}

/// A form that sets a gate's entrance: for a listed gate, a select and a
/// button; for a new one, its id too.
fn assign_form(event: i64, gate: Option<&Gate>, entrances: &[Entrance]) -> Markup {
    let current = gate.and_then(|g| g.entrance_id);
    html! {
        form.inline.assign method="post" action={ "/manage/events/" (event) "/gates" } {
            @if let Some(g) = gate {
                input type="hidden" name="gate_id" value=(g.gate_id);
            } @else {
                label { "Gate id " input name="gate_id" required maxlength="32" pattern="[A-Za-z0-9_-]{1,32}"; } " "
            }
            select name="entrance_id" aria-label="Entrance" {
                option value="" selected[current.is_none()] { (STAFF_CHOOSE) }
                @for e in entrances {
                    option value=(e.id) selected[current == Some(e.id)] { (e.name) }
                }
            }
            " "
            button { @if gate.is_some_and(|g| g.revoked) { "Assign again" } @else { "Set" } }
        }
    }
}

/// `POST /manage/events/{id}/gates`: `gate_id`, `entrance_id` (blank: none).
pub async fn assign(
    State(s): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Bytes,
) -> Response {
    let (db, fields) = (s.db.clone(), Fields::parse(&body));
    act(&s, &headers, id, |caller, event| async move {
        let venue = catalog::require_event_organizer(&db, &caller, event).await?;
        let assignment = GateAssignment { entrance_id: fields.id("entrance_id")? };
        let gate = fields.one("gate_id").unwrap_or_default();
        gates::assign(&db, &caller, venue, gate, &assignment, clock::now()).await?;
        Ok(event)
    })
    .await
}

/// `POST /manage/events/{id}/gates/revoke`: `gate_id`.
pub async fn revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Bytes,
) -> Response {
    let (db, fields) = (s.db.clone(), Fields::parse(&body));
    act(&s, &headers, id, |caller, event| async move {
        let venue = catalog::require_event_organizer(&db, &caller, event).await?;
        gates::revoke(&db, &caller, venue, fields.one("gate_id").unwrap_or_default(), clock::now()).await?;
        Ok(event)
    })
    .await
}
