//! The entry decision, table-driven: the scenario families of pretix's check-in
//! tests (entry/exit orders, re-entry, multi-entry, time windows at their edges,
//! product restrictions, revoked and blocked signed codes, bad signatures,
//! unknown products, several lists) against `schema::entry::decide`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use std::collections::BTreeSet;

use schema::entry::{
    CheckInList, Direction, Hours, PastScan, ReplicaTicket, Route, ScanContext, TicketStatus, UnknownTicketPolicy,
    decide, entrances_for,
};
use schema::hlc::HlcTimestamp;
use schema::{Decision, Keyring, Reason, TicketClaims, TicketFlags, TicketSigner, TrustedKey, Validity};

const EVENT: u64 = 7;
const NOW: u64 = 1_800_000_000;
const HOUR: u64 = 3_600;

/// One scenario: a ticket, its replica state, its history, a list, a direction.
#[derive(Clone)]
struct Case {
    claims: TicketClaims,
    replica: Option<TicketStatus>,
    history: Vec<(u64, Direction, &'static str)>,
    list: CheckInList,
    direction: Direction,
    now: u64,
    signer_seed: u8,
    tamper: bool,
}

fn base() -> Case {
    Case {
        claims: TicketClaims {
            event_id: EVENT,
            ticket_id: 1,
            ticket_type_id: 10,
            flags: TicketFlags::default(),
            validity: Validity::default(),
            seat: None,
        },
        replica: Some(TicketStatus::Valid),
        history: Vec::new(),
        list: CheckInList {
            id: 1,
            event_id: EVENT,
            ticket_types: None,
            allow_multiple_entries: false,
            allow_entry_after_exit: false,
            unknown_tickets: UnknownTicketPolicy::Reject,
            hours: Hours::default(),
        },
        direction: Direction::Entry,
        now: NOW,
        signer_seed: 1,
        tamper: false,
    }
}

fn keyring() -> Keyring {
    let s = TicketSigner::from_secret_bytes(&[1; 32]);
    Keyring::new(vec![TrustedKey { key_id: s.key_id(), key: s.verifying_key(), valid_from: 0, valid_until: None }])
}

/// Runs a case; returns the decision, reason code and whether it was flagged.
fn run(case: &Case) -> (Decision, Option<&'static str>, bool) {
    let mut code = TicketSigner::from_secret_bytes(&[case.signer_seed; 32]).mint(&case.claims);
    if case.tamper {
        let last = code.pop().unwrap();
        code.push(if last == '0' { '1' } else { '0' });
    }
    let verified = keyring().verify(&code, case.now);
    let replica = case.replica.map(|status| ReplicaTicket { status, holder: None });
    let history: Vec<PastScan> = case
        .history
        .iter()
        .map(|&(at, direction, gate)| PastScan { at: HlcTimestamp(at), direction, gate: gate.into() })
        .collect();
    let out = decide(&ScanContext {
        verified: &verified,
        replica: replica.as_ref(),
        history: &history,
        list: &case.list,
        routes: &[],
        direction: case.direction,
        freshness: schema::Freshness::default(),
        now: case.now,
    });
    assert_eq!(out.decision == Decision::Accept, out.reason.is_none(), "accept iff no reason");
    (out.decision, out.reason.map(Reason::code), out.not_in_replica)
}

fn check(name: &str, case: Case, expected: Option<&str>) {
    let (decision, reason, _) = run(&case);
    assert_eq!(reason, expected, "{name}");
    assert_eq!(decision == Decision::Accept, expected.is_none(), "{name}");
}

use Direction::{Entry, Exit};

#[test]
fn basic_outcomes() {
    check("simple success", base(), None);
    check("wrong event", Case { claims: TicketClaims { event_id: 8, ..base().claims }, ..base() }, Some("wrong_event"));
    check("revoked signed code", Case { replica: Some(TicketStatus::Revoked), ..base() }, Some("revoked"));
    check("blocked signed code", Case { replica: Some(TicketStatus::Blocked), ..base() }, Some("blocked"));
    check("invalid signature", Case { tamper: true, ..base() }, Some("bad_signature"));
    check("signed by an unknown key", Case { signer_seed: 2, ..base() }, Some("unknown_key"));
}

#[test]
fn validity_window_edges() {
    let windowed = |now| Case {
        claims: TicketClaims {
            validity: Validity { not_before: Some(NOW), not_after: Some(NOW + HOUR) },
            ..base().claims
        },
        now,
        ..base()
    };
    check("one second before valid_from", windowed(NOW - 1), Some("invalid_time"));
    check("exactly valid_from", windowed(NOW), None);
    check("exactly valid_until", windowed(NOW + HOUR), None);
    check("one second after valid_until", windowed(NOW + HOUR + 1), Some("invalid_time"));
    check("exit outside the window is still recorded", Case { direction: Exit, ..windowed(NOW + 2 * HOUR) }, None);
}

#[test]
fn product_restrictions() {
    let limited = |types: &[u32]| CheckInList { ticket_types: Some(types.iter().copied().collect()), ..base().list };
    check("type not on the list", Case { list: limited(&[11, 12]), ..base() }, Some("product"));
    check("type added to the list", Case { list: limited(&[10, 11]), ..base() }, None);
    check("list with every type", base(), None);
    check("empty type set admits nothing", Case { list: limited(&[]), ..base() }, Some("product"));
    check("exit of a type not on the list", Case { list: limited(&[11]), direction: Exit, ..base() }, Some("product"));
}

#[test]
fn entry_and_exit_history() {
    let with = |history: Vec<(u64, Direction, &'static str)>| Case { history, ..base() };
    check("single entry", with(vec![]), None);
    check("second entry is already redeemed", with(vec![(NOW - 60, Entry, "north-1")]), Some("already_redeemed"));
    check("exit does not invalidate the ticket", Case { direction: Exit, ..with(vec![(NOW - 60, Entry, "n")]) }, None);
    check("exit without entry", Case { direction: Exit, ..base() }, None);
    check("multiple exits", Case { direction: Exit, ..with(vec![(1, Entry, "n"), (2, Exit, "n")]) }, None);
    check("only exits before: first entry", with(vec![(1, Exit, "n"), (2, Exit, "n")]), None);
    check(
        "entry after exit forbidden by the list",
        with(vec![(1, Entry, "n"), (2, Exit, "n")]),
        Some("already_redeemed"),
    );
    let reentry_list = CheckInList { allow_entry_after_exit: true, ..base().list };
    check(
        "entry after exit allowed by the list",
        Case { list: reentry_list.clone(), ..with(vec![(1, Entry, "n"), (2, Exit, "n")]) },
        None,
    );
    check(
        "entry after entry even where re-entry is allowed",
        Case { list: reentry_list.clone(), ..with(vec![(1, Entry, "n"), (2, Exit, "n"), (3, Entry, "s")]) },
        Some("already_redeemed"),
    );
    check(
        "history is ordered by logical time, not by arrival",
        Case { list: reentry_list.clone(), ..with(vec![(2, Exit, "n"), (1, Entry, "s")]) },
        None,
    );
    check(
        "an exit logically before the entry does not allow re-entry",
        Case { list: reentry_list.clone(), ..with(vec![(2, Entry, "s"), (1, Exit, "n")]) },
        Some("already_redeemed"),
    );
    check(
        "entry and exit at the same instant: assume the person is inside",
        Case { list: reentry_list, ..with(vec![(5, Exit, "n"), (5, Entry, "s")]) },
        Some("already_redeemed"),
    );
    let ticket_reentry = TicketClaims { flags: TicketFlags { reentry_allowed: true, paper: false }, ..base().claims };
    check(
        "the ticket itself allows re-entry",
        Case { claims: ticket_reentry, ..with(vec![(1, Entry, "n"), (2, Exit, "n")]) },
        None,
    );
    let multi = CheckInList { allow_multiple_entries: true, ..base().list };
    check(
        "multi-entry list",
        Case { list: multi, ..with(vec![(1, Entry, "n"), (2, Entry, "n"), (3, Entry, "s")]) },
        None,
    );
}

#[test]
fn already_redeemed_shows_the_first_entry() {
    let case = Case { history: vec![(NOW - 30, Entry, "south-2"), (NOW - 90, Entry, "north-1")], ..base() };
    let verified = keyring().verify(&TicketSigner::from_secret_bytes(&[1; 32]).mint(&case.claims), NOW);
    let history: Vec<PastScan> = case
        .history
        .iter()
        .map(|&(at, direction, gate)| PastScan { at: HlcTimestamp(at), direction, gate: gate.into() })
        .collect();
    let replica = ReplicaTicket { status: TicketStatus::Valid, holder: Some("Ada".into()) };
    let out = decide(&ScanContext {
        verified: &verified,
        replica: Some(&replica),
        history: &history,
        list: &case.list,
        routes: &[],
        direction: Entry,
        freshness: schema::Freshness::default(),
        now: NOW,
    });
    assert_eq!(out.reason, Some(Reason::AlreadyRedeemed));
    assert_eq!(out.display.first_entry, Some((HlcTimestamp(NOW - 90), "north-1".to_owned())));
    assert_eq!(out.display.holder.as_deref(), Some("Ada"));
}

#[test]
fn tickets_missing_from_the_replica_follow_the_list_policy() {
    let missing = Case { replica: None, ..base() };
    assert_eq!(run(&missing), (Decision::Reject, Some("unknown_ticket"), true));
    let lenient = Case { list: CheckInList { unknown_tickets: UnknownTicketPolicy::Accept, ..base().list }, ..missing };
    assert_eq!(run(&lenient), (Decision::Accept, None, true), "accepted, and flagged");
    let lenient_used = Case { history: vec![(1, Entry, "n")], ..lenient.clone() };
    assert_eq!(run(&lenient_used), (Decision::Reject, Some("already_redeemed"), true), "history still applies");
    let lenient_product =
        Case { list: CheckInList { ticket_types: Some(BTreeSet::from([99])), ..lenient.list.clone() }, ..lenient };
    assert_eq!(run(&lenient_product), (Decision::Reject, Some("product"), true), "the signed type still applies");
    assert!(!run(&base()).2, "a replica hit is not flagged");
}

#[test]
fn checks_run_in_the_documented_order() {
    // Each case breaks two rules; the earlier check in the documented order decides.
    let revoked_wrong_event =
        Case { replica: Some(TicketStatus::Revoked), claims: TicketClaims { event_id: 9, ..base().claims }, ..base() };
    check("event before revoked", revoked_wrong_event, Some("wrong_event"));
    let revoked_and_used = Case { replica: Some(TicketStatus::Revoked), history: vec![(1, Entry, "n")], ..base() };
    check("revoked before history", revoked_and_used, Some("revoked"));
    let blocked_expired = Case {
        replica: Some(TicketStatus::Blocked),
        claims: TicketClaims { validity: Validity { not_before: None, not_after: Some(NOW - 1) }, ..base().claims },
        ..base()
    };
    check("blocked before time", blocked_expired, Some("blocked"));
    let expired_product = Case {
        claims: TicketClaims { validity: Validity { not_before: None, not_after: Some(NOW - 1) }, ..base().claims },
        list: CheckInList { ticket_types: Some(BTreeSet::from([99])), ..base().list },
        ..base()
    };
    check("time before product", expired_product, Some("invalid_time"));
    let product_used = Case {
        list: CheckInList { ticket_types: Some(BTreeSet::from([99])), ..base().list },
        history: vec![(1, Entry, "n")],
        ..base()
    };
    check("product before history", product_used, Some("product"));
}

/// The venue's other lists, as a gate loads them: VIP tickets (type 10) at the
/// VIP entrance, staff passes (type 30) at the staff door.
fn routes() -> Vec<Route> {
    vec![
        Route { event_id: EVENT, ticket_types: Some(BTreeSet::from([10])), entrances: vec!["VIP".into()] },
        Route { event_id: EVENT, ticket_types: Some(BTreeSet::from([30])), entrances: vec!["Staff".into()] },
        Route { event_id: EVENT + 1, ticket_types: None, entrances: vec!["Side".into()] },
    ]
}

fn decide_with(case: &Case, routes: &[Route]) -> schema::entry::Outcome {
    let code = TicketSigner::from_secret_bytes(&[case.signer_seed; 32]).mint(&case.claims);
    let verified = keyring().verify(&code, case.now);
    let replica = case.replica.map(|status| ReplicaTicket { status, holder: None });
    decide(&ScanContext {
        verified: &verified,
        replica: replica.as_ref(),
        history: &[],
        list: &case.list,
        routes,
        direction: case.direction,
        freshness: schema::Freshness::default(),
        now: case.now,
    })
}

#[test]
fn a_ticket_for_another_entrance_is_sent_there_by_name() {
    // The main door's list admits type 20 only; a VIP ticket (type 10) is sent on.
    let main = Case { list: CheckInList { ticket_types: Some(BTreeSet::from([20])), ..base().list }, ..base() };
    let out = decide_with(&main, &routes());
    assert_eq!((out.reason, out.display.go_to.clone()), (Some(Reason::OtherEntrance), vec!["VIP".to_owned()]));
    assert_eq!(out.display.go_to_words().as_deref(), Some("Use the VIP entrance"));
    // No list of the venue admits it at a named entrance: the old refusal.
    let nowhere = Case { claims: TicketClaims { ticket_type_id: 99, ..base().claims }, ..main.clone() };
    let out = decide_with(&nowhere, &routes());
    assert_eq!((out.reason, out.display.go_to.is_empty()), (Some(Reason::Product), true));
    // Another event's list is never named, even if it admits every type.
    assert!(entrances_for(&routes(), EVENT, 99).is_empty());
    // Exits are sent on too: a VIP guest leaves by the VIP door's gate.
    let leaving = Case { direction: Exit, ..main.clone() };
    assert_eq!(decide_with(&leaving, &routes()).reason, Some(Reason::OtherEntrance));
    // A list that admits the ticket at every entrance names no door.
    let mut open = routes();
    open.push(Route { event_id: EVENT, ticket_types: None, entrances: Vec::new() });
    assert_eq!(decide_with(&main, &open).reason, Some(Reason::Product));
}

#[test]
fn entrances_are_named_once_each_in_order() {
    let routes = vec![
        Route {
            event_id: EVENT,
            ticket_types: Some(BTreeSet::from([10])),
            entrances: vec!["VIP".into(), "East".into()],
        },
        Route { event_id: EVENT, ticket_types: None, entrances: vec!["VIP".into()] },
    ];
    assert_eq!(entrances_for(&routes, EVENT, 10), ["East", "VIP"]);
    let display = schema::entry::Display { go_to: entrances_for(&routes, EVENT, 10), ..Default::default() };
    assert_eq!(display.go_to_words().as_deref(), Some("Use the East or VIP entrance"));
    let three = schema::entry::Display { go_to: vec!["A".into(), "B".into(), "C".into()], ..Default::default() };
    assert_eq!(three.go_to_words().as_deref(), Some("Use the A, B or C entrance"));
    assert_eq!(schema::entry::Display::default().go_to_words(), None);
    assert_eq!(entrances_for(&routes, EVENT, 11), ["VIP"]);
}

#[test]
fn a_list_admits_only_in_its_hours_and_lets_people_out_any_time() {
    let hours = Hours { opens_at: Some(NOW - 60), closes_at: Some(NOW + 60) };
    let open = Case { list: CheckInList { hours, ..base().list }, ..base() };
    assert_eq!(run(&open).1, None);
    for now in [NOW - 61, NOW + 60, NOW + 3600] {
        let closed = Case { now, ..open.clone() };
        assert_eq!(run(&closed).1, Some("list_closed"), "at {now}");
        let leaving = Case { direction: Exit, ..closed };
        assert_eq!(run(&leaving).1, None, "exits at {now}");
    }
    assert!(Hours::default().contains(0) && Hours::default().contains(u64::MAX));
}

#[test]
fn a_gate_at_an_entrance_checks_each_ticket_against_the_list_that_admits_it() {
    let list = |id: u32, event_id: u64, types: Option<&[u32]>, hours: Hours| CheckInList {
        id,
        event_id,
        ticket_types: types.map(|t| t.iter().copied().collect()),
        hours,
        ..base().list
    };
    let early = Hours { opens_at: None, closes_at: Some(NOW) };
    let late = Hours { opens_at: Some(NOW), closes_at: None };
    let lists = [
        list(1, EVENT, Some(&[10]), early),
        list(2, EVENT, Some(&[10, 11]), late),
        list(3, EVENT, Some(&[12]), Hours::default()),
        list(4, EVENT + 1, None, Hours::default()),
    ];
    let chosen = |event, ty, now| schema::entry::list_for(&lists, event, ty, now).map(|l| l.id);
    assert_eq!(chosen(EVENT, 10, NOW - 1), Some(1), "the first that admits and is open");
    assert_eq!(chosen(EVENT, 10, NOW), Some(2), "the early list closed: the late one");
    assert_eq!(chosen(EVENT, 11, NOW - 1), Some(2), "admits but closed: refused as closed there");
    assert_eq!(chosen(EVENT, 99, NOW), Some(1), "no list admits the type: the event's first names the way");
    assert_eq!(chosen(EVENT + 1, 99, NOW), Some(4), "another event's list");
    assert_eq!(chosen(EVENT + 5, 10, NOW), Some(1), "no list of the event: refused as wrong event");
    assert_eq!(schema::entry::list_for(&[], EVENT, 10, NOW), None);
}
