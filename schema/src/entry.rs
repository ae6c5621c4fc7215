//! The entry decision: may this ticket pass this gate now? Pure — the caller
//! passes the verified barcode, the replica row, the ticket's scan history, the
//! gate's check-in list and `now`, and gets a decision with a reason back.
//!
//! Checks run in a fixed, documented order (after pretix's offline engine); the
//! first that fails decides:
//!
//! 1. signature and key validity (done by [`Keyring::verify`](crate::Keyring::verify));
//!    a holder-shown (v2) code made outside the gate's [`Freshness`] window — `stale_code`;
//! 2. event: the ticket's event is the list's event — `wrong_event`;
//! 3. replica: a ticket absent from the replica follows the list's policy —
//!    `unknown_ticket`, or continue flagged as not in the replica;
//! 4. revoked — `revoked`; 5. blocked — `blocked`;
//! 6. validity window, entries only — `invalid_time`;
//! 7. ticket type on the list — `other_entrance` when another list of the
//!    event admits it at named entrances (the display says which), else `product`;
//! 8. the list's hours, entries only — `list_closed`;
//! 9. history, entries only: single entry unless the list allows multiple entries,
//!    re-entry only after an exit and only where allowed — `already_redeemed`;
//! 10. accept.
//!
//! Exits are recorded, not policed: they skip the time window and history, since
//! nobody is kept inside a venue; they still need an authentic, unrevoked ticket
//! of this event and list.

use std::collections::BTreeSet;

use crate::barcode::{SeatLabel, UnixSeconds};
use crate::hlc::HlcTimestamp;
use crate::reason::Reason;
use crate::verify::{Decision, Freshness, VerifiedTicket, VerifyError};

/// Entering or leaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Coming in.
    Entry,
    /// Going out.
    Exit,
}

impl Direction {
    /// The stored code: `entry` or `exit`.
    pub fn code(self) -> &'static str {
        match self {
            Direction::Entry => "entry",
            Direction::Exit => "exit",
        }
    }

    /// Reads a stored code; anything but `exit` reads as an entry, the stricter
    /// reading for history (a damaged row never lets someone in again).
    pub fn from_code(code: &str) -> Self {
        if code == "exit" { Direction::Exit } else { Direction::Entry }
    }
}

/// What a gate does with a validly signed ticket its replica does not hold
/// (typically bought after the last sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownTicketPolicy {
    /// Admit it (flagged): the signature proves it was sold.
    Accept,
    /// Refuse it with `unknown_ticket`.
    Reject,
}

/// The rules of one check-in list, which a gate serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInList {
    /// List id, unique per venue.
    pub id: u32,
    /// The event the list admits to.
    pub event_id: u64,
    /// Ticket types admitted; `None` admits every type.
    pub ticket_types: Option<BTreeSet<u32>>,
    /// A ticket may enter any number of times.
    pub allow_multiple_entries: bool,
    /// A ticket may enter again after an exit.
    pub allow_entry_after_exit: bool,
    /// Tickets missing from the replica.
    pub unknown_tickets: UnknownTicketPolicy,
    /// When it admits.
    pub hours: Hours,
}

impl CheckInList {
    /// What a gate applies at an entrance where none of the venue's lists
    /// admits (they moved elsewhere, or none was set up there): a list of the
    /// ticket's own event that admits no type, so an authentic ticket is sent
    /// to the entrance that admits it (`other_entrance`) or refused as the
    /// wrong product. Its id, 0, is no list's.
    pub fn none_here(event_id: u64) -> Self {
        Self {
            id: 0,
            event_id,
            ticket_types: Some(BTreeSet::new()),
            allow_multiple_entries: false,
            allow_entry_after_exit: false,
            unknown_tickets: UnknownTicketPolicy::Reject,
            hours: Hours::default(),
        }
    }
}

/// A list's hours: entries from and until, either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hours {
    /// From (Unix seconds).
    pub opens_at: Option<UnixSeconds>,
    /// Until, exclusive (Unix seconds).
    pub closes_at: Option<UnixSeconds>,
}

impl Hours {
    /// Whether the list admits at `now`.
    pub fn contains(self, now: UnixSeconds) -> bool {
        self.opens_at.is_none_or(|from| now >= from) && self.closes_at.is_none_or(|until| now < until)
    }
}

/// Another check-in list of the venue, as a refusal names it: which tickets it
/// admits and at which entrances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Its event.
    pub event_id: u64,
    /// Ticket types it admits; `None`: every type.
    pub ticket_types: Option<BTreeSet<u32>>,
    /// The names of the entrances that work it; empty: every entrance.
    pub entrances: Vec<String>,
}

impl Route {
    fn admits(&self, event_id: u64, ticket_type: u32) -> bool {
        self.event_id == event_id && self.ticket_types.as_ref().is_none_or(|t| t.contains(&ticket_type))
    }
}

/// State of a ticket in the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Sold and usable.
    Valid,
    /// Refunded, cancelled or re-issued; never valid again.
    Revoked,
    /// Held back for now; may return to valid.
    Blocked,
}

/// What the replica knows of one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaTicket {
    /// Current state.
    pub status: TicketStatus,
    /// Holder name, if the replica could decrypt it with this barcode.
    pub holder: Option<String>,
}

/// One admission or exit already recorded for the ticket, on any of the venue's lists (annulled
/// scans excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastScan {
    /// Hybrid logical time of the scan: orders scans across gates.
    pub at: HlcTimestamp,
    /// Entry or exit.
    pub direction: Direction,
    /// Gate that recorded it.
    pub gate: String,
}

/// Everything the decision looks at.
#[derive(Debug, Clone)]
pub struct ScanContext<'a> {
    /// The barcode after verification.
    pub verified: &'a Result<VerifiedTicket, VerifyError>,
    /// The replica's row for the ticket, if any.
    pub replica: Option<&'a ReplicaTicket>,
    /// Accepted scans of the ticket on every list of the venue, in any order: one
    /// history per ticket, so entering at one entrance counts at all of them.
    pub history: &'a [PastScan],
    /// The gate's check-in list.
    pub list: &'a CheckInList,
    /// The venue's other lists, for sending a ticket to the right entrance.
    pub routes: &'a [Route],
    /// Entry or exit.
    pub direction: Direction,
    /// How old a holder-shown code may be.
    pub freshness: Freshness,
    /// Now, by the gate's clock.
    pub now: UnixSeconds,
}

/// What door staff need to see besides ACCEPT/REJECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Display {
    /// Ticket type name; left for the caller, which holds the type table.
    pub type_name: Option<String>,
    /// Seat label.
    pub seat: Option<SeatLabel>,
    /// Holder name.
    pub holder: Option<String>,
    /// For `already_redeemed`: when and where the ticket first entered.
    pub first_entry: Option<(HlcTimestamp, String)>,
    /// For `other_entrance`: the entrances that admit the ticket, by name.
    pub go_to: Vec<String>,
}

impl Display {
    /// Where to send the person, in words for door staff: "Use the VIP
    /// entrance", or "Use the VIP or East entrance".
    pub fn go_to_words(&self) -> Option<String> {
        let (last, first) = self.go_to.split_last()?;
        let names = if first.is_empty() { last.clone() } else { format!("{} or {last}", first.join(", ")) };
        Some(format!("Use the {names} entrance"))
    }
}

/// The answer for one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// ACCEPT or REJECT.
    pub decision: Decision,
    /// Why, when rejected.
    pub reason: Option<Reason>,
    /// The ticket was not in the replica (accepted or not): worth a look later.
    pub not_in_replica: bool,
    /// What to show.
    pub display: Display,
}

impl Outcome {
    fn reject(reason: Reason, display: Display, not_in_replica: bool) -> Self {
        Self { decision: Decision::Reject, reason: Some(reason), not_in_replica, display }
    }
}

/// Decides one scan. Total: every context gives an outcome.
pub fn decide(ctx: &ScanContext<'_>) -> Outcome {
    let ticket = match ctx.verified {
        Ok(ticket) => ticket,
        Err(e) => return Outcome::reject(e.reason(), Display::default(), false),
    };
    let claims = &ticket.claims;
    let replica = ctx.replica;
    let not_in_replica = replica.is_none();
    let mut display = Display {
        type_name: None,
        seat: claims.seat.clone(),
        holder: replica.and_then(|r| r.holder.clone()),
        first_entry: None,
        go_to: Vec::new(),
    };
    let reject = |reason, display| Outcome::reject(reason, display, not_in_replica);

    // Exits too: a screenshot must not check somebody out for a re-entry.
    if let Err(reason) = ctx.freshness.check(ticket, ctx.now) {
        return reject(reason, display);
    }
    if claims.event_id != ctx.list.event_id {
        return reject(Reason::WrongEvent, display);
    }
    match replica.map(|r| r.status) {
        None if ctx.list.unknown_tickets == UnknownTicketPolicy::Reject => {
            return reject(Reason::UnknownTicket, display);
        }
        Some(TicketStatus::Revoked) => return reject(Reason::Revoked, display),
        Some(TicketStatus::Blocked) => return reject(Reason::Blocked, display),
        None | Some(TicketStatus::Valid) => {}
    }
    let entering = ctx.direction == Direction::Entry;
    if entering && !claims.validity.contains(ctx.now) {
        return reject(Reason::InvalidTime, display);
    }
    if ctx.list.ticket_types.as_ref().is_some_and(|types| !types.contains(&claims.ticket_type_id)) {
        display.go_to = entrances_for(ctx.routes, claims.event_id, claims.ticket_type_id);
        let reason = if display.go_to.is_empty() { Reason::Product } else { Reason::OtherEntrance };
        return reject(reason, display);
    }
    if entering && !ctx.list.hours.contains(ctx.now) {
        return reject(Reason::ListClosed, display);
    }
    if entering {
        let reentry = ctx.list.allow_entry_after_exit || claims.flags.reentry_allowed;
        if let Err(first_entry) = may_enter(ctx.history, ctx.list.allow_multiple_entries, reentry) {
            display.first_entry = first_entry;
            return reject(Reason::AlreadyRedeemed, display);
        }
    }
    Outcome { decision: Decision::Accept, reason: None, not_in_replica, display }
}

/// The list, among those a gate serves, that a ticket is checked against: the
/// first that admits its event and type and is open at `now`; else the first
/// that admits it (the refusal says closed); else the first of its event (the
/// refusal names the right entrance, or says wrong product); else the first
/// (wrong event). `None` only when the gate serves no list.
pub fn list_for(lists: &[CheckInList], event_id: u64, ticket_type: u32, now: UnixSeconds) -> Option<&CheckInList> {
    let of_event = || lists.iter().filter(|l| l.event_id == event_id);
    let admitting = || of_event().filter(|l| l.ticket_types.as_ref().is_none_or(|t| t.contains(&ticket_type)));
    admitting()
        .find(|l| l.hours.contains(now))
        .or_else(|| admitting().next())
        .or_else(|| of_event().next())
        .or_else(|| lists.first())
}

/// The named entrances whose lists admit this ticket, each once, in order; empty
/// when none does or when one admits it at every entrance (then no door is
/// the right one to name).
pub fn entrances_for(routes: &[Route], event_id: u64, ticket_type: u32) -> Vec<String> {
    let admitting = || routes.iter().filter(|r| r.admits(event_id, ticket_type));
    if admitting().any(|r| r.entrances.is_empty()) {
        return Vec::new();
    }
    let names: BTreeSet<&String> = admitting().flat_map(|r| &r.entrances).collect();
    names.into_iter().cloned().collect()
}

/// `Ok` if history permits another entry; otherwise the first entry to show.
/// The gate's step 9, and the hub's arbitration between gates.
pub fn may_enter(history: &[PastScan], multiple: bool, after_exit: bool) -> Result<(), Option<(HlcTimestamp, String)>> {
    if multiple {
        return Ok(());
    }
    let first_entry =
        history.iter().filter(|s| s.direction == Direction::Entry).min_by_key(|s| s.at).map(|s| (s.at, s.gate.clone()));
    let Some(first) = first_entry else {
        return Ok(()); // never entered: no history, or exits only
    };
    // The latest scan by logical time, not by arrival order; on equal times an
    // entry is taken as latest (the safe reading: the person is inside).
    let last = history.iter().max_by_key(|s| (s.at, s.direction == Direction::Entry));
    match last {
        Some(last) if after_exit && last.direction == Direction::Exit => Ok(()),
        _ => Err(Some(first)),
    }
}
