#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]
//! The ledger as the hub link uses it: other gates' admissions join the history,
//! the outbox reads reports in order, acks and annulments move the cursor, and a
//! ledger written before these columns existed is brought up to date in place.

use gate_agent::store::{Ledger, NewScan};
use schema::entry::Direction;
use schema::hlc::HlcTimestamp;
use schema::sync::{Admission, ReentryRule};
use schema::{Decision, Reason};

fn scan(ticket_id: u64, at: u64, claim_id: Option<u64>) -> NewScan {
    NewScan {
        hlc: HlcTimestamp(at),
        wall_ms: at,
        ticket_id: Some(ticket_id),
        event_id: Some(9),
        ticket_type: Some(1),
        code_hash: [0; 32],
        direction: Direction::Entry,
        list_id: 1,
        decision: Decision::Accept,
        reason: None,
        not_in_replica: false,
        offline: claim_id.is_none(),
        claim_id,
        rule: ReentryRule { multiple: false, after_exit: true },
    }
}

fn admission(gate: &str, key: &str, ticket_id: u64, at: u64, annulled: bool) -> Admission {
    Admission {
        ticket_id,
        list_id: 1,
        direction: Direction::Entry,
        at: HlcTimestamp(at),
        gate: gate.into(),
        annulled,
        key: key.into(),
        seq: at,
    }
}

#[test]
fn the_ledger_remembers_how_far_the_hub_broadcasts_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut ledger = Ledger::open(&path, "north-1").unwrap();
    assert_eq!(ledger.admissions_through().unwrap(), 0);
    // Our own admissions are not stored twice, but they move the cursor too.
    ledger
        .apply_admissions(&[
            admission("south-2", "south-2:1", 7, 5, false),
            admission("north-1", "north-1:1", 8, 9, false),
        ])
        .unwrap();
    ledger.apply_admissions(&[admission("south-2", "south-2:2", 9, 3, false)]).unwrap();
    drop(ledger);
    assert_eq!(
        Ledger::open(&path, "north-1").unwrap().admissions_through().unwrap(),
        9,
        "never backwards, kept on disk"
    );
}

#[test]
fn broadcast_admissions_join_the_history_until_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("ledger.db"), "north-1").unwrap();
    ledger.record(&scan(7, 100, Some(5))).unwrap();
    let changed = ledger
        .apply_admissions(&[
            admission("south-2", "south-2#1", 8, 200, false),
            admission("north-1", "north-1#5", 7, 100, false), // our own: already in `scans`
        ])
        .unwrap();
    assert_eq!(changed, 1);
    let history = ledger.history(8).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].gate.as_str(), history[0].at), ("south-2", HlcTimestamp(200)));
    assert_eq!(ledger.history(7).unwrap().len(), 1, "our own admission is not counted twice");
    // The same broadcast again changes nothing; its withdrawal removes it.
    assert_eq!(ledger.apply_admissions(&[admission("south-2", "south-2#1", 8, 200, false)]).unwrap(), 0);
    assert_eq!(ledger.apply_admissions(&[admission("south-2", "south-2#1", 8, 200, true)]).unwrap(), 1);
    assert!(ledger.history(8).unwrap().is_empty());
    // A withdrawal is final: a late copy of the original does not revive it.
    ledger.apply_admissions(&[admission("south-2", "south-2#1", 8, 200, false)]).unwrap();
    assert!(ledger.history(8).unwrap().is_empty());
}

#[test]
fn the_outbox_reads_reports_in_order_and_annulments_reopen_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("ledger.db"), "north-1").unwrap();
    for i in 0..5 {
        ledger.record(&scan(10 + i, 100 + i, (i % 2 == 0).then_some(i))).unwrap();
    }
    let reports = ledger.reports_after(1, 2).unwrap();
    assert_eq!(reports.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(reports[0].claim_id, None);
    assert_eq!(reports[1].claim_id, Some(2));
    assert_eq!(reports[1].rule, ReentryRule { multiple: false, after_exit: true });
    assert!(!reports[1].offline);
    ledger.mark_acked(5).unwrap();
    assert_eq!(ledger.first_unacked().unwrap(), None);
    assert!(ledger.annul(3).unwrap());
    assert_eq!(ledger.first_unacked().unwrap(), Some(3), "an annulment goes up again");
    let reopened = &ledger.reports_after(2, 1).unwrap()[0];
    assert!(reopened.annulled);
    assert_eq!(reopened.reason, Some(Reason::Annulled));
}

#[test]
fn a_ledger_from_before_the_hub_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE scans (
            seq INTEGER PRIMARY KEY, scan_id TEXT NOT NULL UNIQUE, hlc INTEGER NOT NULL, wall_ms INTEGER NOT NULL,
            ticket_id INTEGER, event_id INTEGER, code_hash BLOB NOT NULL, direction TEXT NOT NULL,
            list_id INTEGER NOT NULL, decision TEXT NOT NULL, reason TEXT, not_in_replica INTEGER NOT NULL,
            offline INTEGER NOT NULL, annulled INTEGER NOT NULL DEFAULT 0, acked INTEGER NOT NULL DEFAULT 0);
         INSERT INTO scans VALUES (1, 'north-1:1', 65536, 1, 7, 9, x'00', 'entry', 1, 'accept', NULL, 0, 1, 0, 0);",
    )
    .unwrap();
    drop(old);
    let mut ledger = Ledger::open(&path, "north-1").unwrap();
    let old_scan = &ledger.reports_after(0, 10).unwrap()[0];
    assert_eq!((old_scan.seq, old_scan.claim_id, old_scan.ticket_id), (1, None, Some(7)));
    assert_eq!(ledger.record(&scan(8, 200, Some(1))).unwrap().seq, 2, "the sequence continues");
    assert_eq!(ledger.history(7).unwrap().len(), 1, "old scans still count");
}
