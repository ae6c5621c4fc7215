#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]
//! The arbitration rules: first claim wins, reports are stored once, double
//! entries after a partition become conflicts.

use proptest::prelude::*;
use schema::Decision;
use schema::entry::Direction;
use schema::hlc::HlcTimestamp;
use schema::sync::{Claim, FirstEntry, ReentryRule, ScanReport, Verdict};
use sync_hub::arbiter::{Arbiter, Change};

const SINGLE: ReentryRule = ReentryRule { multiple: false, after_exit: false };
const REENTRY: ReentryRule = ReentryRule { multiple: false, after_exit: true };

fn claim(claim_id: u64, ticket_id: u64, direction: Direction, at: u64, rule: ReentryRule) -> Claim {
    Claim { claim_id, ticket_id, list_id: 1, direction, rule, hlc: HlcTimestamp(at) }
}

fn report(seq: u64, ticket_id: u64, at: u64) -> ScanReport {
    ScanReport {
        seq,
        hlc: HlcTimestamp(at),
        wall_ms: at,
        ticket_id: Some(ticket_id),
        event_id: Some(1),
        ticket_type: Some(1),
        list_id: 1,
        direction: Direction::Entry,
        decision: Decision::Accept,
        reason: None,
        rule: SINGLE,
        offline: true,
        annulled: false,
        claim_id: None,
        not_in_replica: false,
    }
}

fn conflicts(changes: &[Change]) -> usize {
    changes.iter().filter(|c| matches!(c, Change::Conflict(_))).count()
}

#[test]
fn the_first_claim_wins_and_the_second_gate_hears_where() {
    let mut hub = Arbiter::default();
    let (first, effects) = hub.claim("north-1", &claim(1, 7, Direction::Entry, 100, SINGLE));
    assert_eq!(first, Verdict::Granted);
    assert_eq!(effects.broadcasts.len(), 1);
    assert!(matches!(&effects.changes[..], [Change::Admit(a)] if a.key == "north-1#1"));
    let (second, effects) = hub.claim("south-2", &claim(9, 7, Direction::Entry, 100, SINGLE));
    assert_eq!(second, Verdict::AlreadyIn(FirstEntry { at: HlcTimestamp(100), gate: "north-1".into() }));
    assert!(effects.changes.is_empty() && effects.broadcasts.is_empty(), "a refusal stores nothing");
    // Asking again with the same claim id is idempotent.
    let (again, effects) = hub.claim("north-1", &claim(1, 7, Direction::Entry, 100, SINGLE));
    assert_eq!((again, effects.changes.len()), (Verdict::Granted, 0));
    // Another ticket is unaffected.
    assert_eq!(hub.claim("south-2", &claim(10, 8, Direction::Entry, 101, SINGLE)).0, Verdict::Granted);
    assert_eq!(hub.inside().get(&1), Some(&2));
}

#[test]
fn a_ticket_has_one_history_across_the_venues_lists() {
    let on = |list_id: u32, c: Claim| Claim { list_id, ..c };
    let mut hub = Arbiter::default();
    // In at the main entrance (list 1): the VIP entrance (list 2) hears it is inside.
    assert_eq!(hub.claim("main", &on(1, claim(1, 7, Direction::Entry, 100, REENTRY))).0, Verdict::Granted);
    let (vip, _) = hub.claim("vip", &on(2, claim(1, 7, Direction::Entry, 101, REENTRY)));
    assert_eq!(vip, Verdict::AlreadyIn(FirstEntry { at: HlcTimestamp(100), gate: "main".into() }));
    assert_eq!(hub.inside().get(&1), Some(&1));
    // Out through the VIP door's exit lane, back in at the VIP gate: counted once, now on list 2.
    assert_eq!(hub.claim("vip-out", &on(2, claim(2, 7, Direction::Exit, 200, REENTRY))).0, Verdict::Granted);
    assert_eq!((hub.inside().get(&1), hub.inside().get(&2)), (Some(&0), None));
    assert_eq!(hub.claim("vip", &on(2, claim(3, 7, Direction::Entry, 300, REENTRY))).0, Verdict::Granted);
    assert_eq!((hub.inside().get(&1), hub.inside().get(&2)), (Some(&0), Some(&1)));
    // An offline entry at main while inside through VIP is a double entry.
    let offline = ScanReport { list_id: 1, ..report(1, 7, 400) };
    let (_, effects) = hub.ingest("main", &[offline]);
    assert_eq!(conflicts(&effects.changes), 1);
    assert_eq!(hub.inside().values().sum::<u64>(), 1, "one ticket, counted once");
}

#[test]
fn re_entry_after_an_exit_follows_the_list_rule() {
    let mut hub = Arbiter::default();
    hub.claim("a", &claim(1, 7, Direction::Entry, 100, REENTRY));
    assert_eq!(hub.claim("b", &claim(2, 7, Direction::Exit, 200, REENTRY)).0, Verdict::Granted);
    assert_eq!(hub.claim("c", &claim(3, 7, Direction::Entry, 300, REENTRY)).0, Verdict::Granted);
    assert!(matches!(hub.claim("a", &claim(4, 7, Direction::Entry, 400, REENTRY)).0, Verdict::AlreadyIn(_)));
    // Without the re-entry rule, an exit does not reopen the door.
    assert!(matches!(hub.claim("a", &claim(5, 7, Direction::Entry, 400, SINGLE)).0, Verdict::AlreadyIn(_)));
    let multiple = ReentryRule { multiple: true, after_exit: false };
    assert_eq!(hub.claim("a", &claim(6, 7, Direction::Entry, 500, multiple)).0, Verdict::Granted);
}

#[test]
fn a_grant_the_same_gate_never_confirmed_does_not_lock_the_ticket_out_there() {
    let mut hub = Arbiter::default();
    hub.claim("a", &claim(1, 7, Direction::Entry, 100, SINGLE));
    // Gate a lost the grant (crashed before recording): it asks again.
    assert_eq!(hub.claim("a", &claim(2, 7, Direction::Entry, 150, SINGLE)).0, Verdict::Granted);
    // Gate b must still be refused: a may have let the person in.
    assert!(matches!(hub.claim("b", &claim(3, 7, Direction::Entry, 160, SINGLE)).0, Verdict::AlreadyIn(_)));
    // Once a confirms, a itself is refused too.
    let mut confirmed = report(1, 7, 150);
    confirmed.claim_id = Some(2);
    confirmed.offline = false;
    hub.ingest("a", &[confirmed]);
    assert!(matches!(hub.claim("a", &claim(4, 7, Direction::Entry, 170, SINGLE)).0, Verdict::AlreadyIn(_)));
}

#[test]
fn a_grant_the_gate_turned_down_is_withdrawn_and_broadcast() {
    let mut hub = Arbiter::default();
    hub.claim("a", &claim(1, 7, Direction::Entry, 100, SINGLE));
    let mut turned_down = report(1, 7, 100);
    turned_down.claim_id = Some(1);
    turned_down.decision = Decision::Reject;
    let (_, effects) = hub.ingest("a", &[turned_down]);
    assert!(effects.changes.contains(&Change::Annul { key: "a#1".into(), seq: 2 }));
    assert!(effects.broadcasts.iter().all(|b| b.annulled) && effects.broadcasts.len() == 1);
    assert_eq!(hub.claim("b", &claim(2, 7, Direction::Entry, 200, SINGLE)).0, Verdict::Granted);
}

#[test]
fn reports_are_stored_once_and_acked_cumulatively() {
    let mut hub = Arbiter::default();
    let (through, effects) = hub.ingest("a", &[report(1, 7, 100), report(2, 8, 101), report(4, 9, 103)]);
    assert_eq!(through, 2, "seq 3 is missing: the ack stops below it");
    assert_eq!(effects.changes.iter().filter(|c| matches!(c, Change::Scan { .. })).count(), 3);
    let (through, effects) = hub.ingest("a", &[report(1, 7, 100), report(2, 8, 101), report(3, 10, 102)]);
    assert_eq!(through, 4);
    let stored = effects.changes.iter().filter(|c| matches!(c, Change::Scan { .. })).count();
    assert_eq!((stored, effects.broadcasts.len()), (1, 1), "the re-sent scans are duplicates");
    assert_eq!(hub.acked_through("a"), 4);
    assert_eq!(hub.acked_through("b"), 0);
    // A repeat carrying an annulment withdraws the admission.
    let mut annulled = report(2, 8, 101);
    annulled.annulled = true;
    let (_, effects) = hub.ingest("a", &[annulled]);
    assert!(effects.changes.contains(&Change::Annul { key: "a:2".into(), seq: 5 }));
    assert!(hub.admissions(8).iter().all(|a| a.annulled));
    // A gate that saw up to change 3 missed the admission of seq 3 and the annulment.
    let missed: Vec<(String, u64, bool)> =
        hub.admissions_after(3).into_iter().map(|a| (a.key, a.seq, a.annulled)).collect();
    assert_eq!(missed, [("a:3".to_owned(), 4, false), ("a:2".to_owned(), 5, true)]);
    assert!(hub.admissions_after(5).is_empty());
}

#[test]
fn double_entries_from_a_partition_become_conflicts_unless_an_exit_lies_between() {
    let mut hub = Arbiter::default();
    let (_, effects) = hub.ingest("a", &[report(1, 7, 100)]);
    assert_eq!(conflicts(&effects.changes), 0);
    let (_, effects) = hub.ingest("b", &[report(1, 7, 90)]);
    let Some(Change::Conflict(c)) = effects.changes.iter().find(|c| matches!(c, Change::Conflict(_))) else {
        panic!("no conflict in {effects:?}")
    };
    assert_eq!((c.first.1.as_str(), c.second.1.as_str()), ("b", "a"), "ordered by logical time, not arrival");

    let mut hub = Arbiter::default();
    hub.ingest("a", &[report(1, 7, 100)]);
    let mut exit = report(1, 7, 150);
    exit.direction = Direction::Exit;
    hub.ingest("b", &[exit]);
    let (_, effects) = hub.ingest("c", &[report(1, 7, 200)]);
    assert_eq!(conflicts(&effects.changes), 0, "in, out, in again");

    let mut hub = Arbiter::default();
    let mut multiple = report(1, 7, 100);
    multiple.rule.multiple = true;
    hub.ingest("a", &[multiple.clone()]);
    let (_, effects) = hub.ingest("b", &[multiple]);
    assert_eq!(conflicts(&effects.changes), 0, "the list allows many entries");
}

#[test]
fn rejected_scans_are_stored_but_admit_nobody() {
    let mut hub = Arbiter::default();
    let mut rejected = report(1, 7, 100);
    rejected.decision = Decision::Reject;
    rejected.reason = Some(schema::Reason::Revoked);
    let (through, effects) = hub.ingest("a", &[rejected]);
    assert_eq!((through, effects.broadcasts.len()), (1, 0));
    assert!(hub.admissions(7).is_empty());
}

proptest! {
    /// Whatever order claims from many gates for one ticket arrive in, exactly one is granted.
    #[test]
    fn exactly_one_entry_per_ticket(order in Just((0..8u64).collect::<Vec<_>>()).prop_shuffle(), at in 1u64..1_000) {
        let mut hub = Arbiter::default();
        let granted = order
            .iter()
            .filter(|&&g| hub.claim(&format!("g{g}"), &claim(g, 7, Direction::Entry, at + g, SINGLE)).0 == Verdict::Granted)
            .count();
        prop_assert_eq!(granted, 1);
    }

    /// The count of people inside, kept as admissions change, always equals a
    /// count from scratch: claims and offline reports, entries and exits,
    /// grants withdrawn by a declined report and granted again, each gate on a
    /// list of its own (so tickets move between lists and count once).
    #[test]
    fn the_inside_count_matches_a_recount(
        steps in proptest::collection::vec((0u8..4, 0u64..6, 0u64..3, any::<bool>()), 1..80)
    ) {
        let mut hub = Arbiter::default();
        let mut seqs = [0u64; 3];
        for (i, (kind, ticket, gate, exit)) in steps.into_iter().enumerate() {
            let (gate_id, at) = (format!("g{gate}"), 100 + i as u64);
            let direction = if exit { Direction::Exit } else { Direction::Entry };
            match kind {
                0 | 1 => {
                    let asked = Claim { list_id: gate as u32 + 1, ..claim(ticket % 3 + 10 * u64::from(kind), ticket, direction, at, REENTRY) };
                    hub.claim(&gate_id, &asked);
                }
                _ => {
                    seqs[gate as usize] += 1;
                    let mut scan = ScanReport { direction, rule: REENTRY, list_id: gate as u32 + 1, ..report(seqs[gate as usize], ticket, at) };
                    if kind == 3 {
                        // The gate reports a grant it then declined.
                        scan.claim_id = Some(ticket % 3);
                        scan.annulled = true;
                    }
                    hub.ingest(&gate_id, &[scan]);
                }
            }
            let mut recount = std::collections::BTreeMap::<u32, u64>::new();
            for t in 0..6 {
                let last = hub.admissions(t).iter().filter(|a| !a.annulled).max_by_key(|a| (a.at, a.direction == Direction::Entry));
                if let Some(entry) = last.filter(|a| a.direction == Direction::Entry) {
                    *recount.entry(entry.list_id).or_default() += 1;
                }
            }
            let kept: std::collections::BTreeMap<u32, u64> = hub.inside().into_iter().filter(|(_, n)| *n > 0).collect();
            prop_assert_eq!(kept, recount);
        }
    }
}
