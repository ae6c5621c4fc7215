//! A gate on a venue with entrances, offline: its replica holds the venue's
//! lists with their doors, a ticket for another entrance is refused with the
//! right entrance named, and a list outside its hours lets nobody in.
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::BTreeSet;

use gate_agent::config::Config;
use gate_agent::gate::{Gate, GateError};
use gate_agent::store::replica::Post;
use gate_agent::store::replica::Replica;
use schema::entry::{Direction, TicketStatus, UnknownTicketPolicy};
use schema::hlc::HlcTimestamp;
use schema::manifest::{
    AreaRecord, EntranceRecord, GateRecord, ListDoors, ListRecord, Manifest, TicketRecord, TicketTypeRecord,
    VenueLayout,
};
use schema::sync::Admission;
use schema::{Keyring, Reason, TicketClaims, TicketFlags, TicketSigner, TrustedKey, Validity};

const VENUE: u64 = 3;
const EVENT: u64 = 9;
const STANDING: u32 = 1;
const VIP: u32 = 2;
const MAIN_LIST: u32 = (1 << 31) + 1;
const VIP_LIST: u32 = (1 << 31) + 2;
const NOW: u64 = 1_900_000_000;

fn signer() -> TicketSigner {
    TicketSigner::from_secret_bytes(&[5; 32])
}

fn list(id: u32, name: &str, types: u32, entrance: u32, doors: ListDoors) -> ListRecord {
    ListRecord {
        id,
        name: name.into(),
        event_id: EVENT,
        ticket_types: Some(vec![types]),
        allow_multiple_entries: false,
        allow_entry_after_exit: false,
        unknown_tickets: UnknownTicketPolicy::Reject,
        doors: ListDoors { entrance_ids: vec![entrance], ..doors },
    }
}

fn manifest(main_hours: ListDoors) -> Manifest {
    Manifest {
        venue_id: VENUE,
        version: 1,
        base_version: None,
        issued_at: NOW,
        ticket_types: vec![
            TicketTypeRecord { id: STANDING, event_id: EVENT, name: "Standing".into() },
            TicketTypeRecord { id: VIP, event_id: EVENT, name: "VIP".into() },
        ],
        lists: vec![
            list(MAIN_LIST, "General", STANDING, 1, main_hours),
            list(VIP_LIST, "VIP", VIP, 2, ListDoors { area_id: Some(7), ..ListDoors::default() }),
        ],
        layout: VenueLayout {
            entrances: vec![
                EntranceRecord { id: 1, name: "Main".into() },
                EntranceRecord { id: 2, name: "VIP".into() },
            ],
            areas: vec![AreaRecord { id: 7, name: "Lounge".into(), capacity: Some(50) }],
            gates: vec![],
        },
        tickets: (1..=4)
            .map(|ticket_id| TicketRecord {
                ticket_id,
                event_id: EVENT,
                ticket_type_id: if ticket_id.is_multiple_of(2) { VIP } else { STANDING },
                status: TicketStatus::Valid,
                sealed_holder: None,
            })
            .collect(),
    }
}

fn code(ticket_id: u64) -> String {
    signer().mint(&TicketClaims {
        event_id: EVENT,
        ticket_id,
        ticket_type_id: if ticket_id.is_multiple_of(2) { VIP } else { STANDING },
        flags: TicketFlags::default(),
        validity: Validity::default(),
        seat: None,
    })
}

/// The main entrance's gate, pinned to the main list, with `manifest` imported.
fn gate(dir: &std::path::Path, manifest: &Manifest) -> Gate {
    gate_at(dir, manifest, "main-1", &format!("list_id = {MAIN_LIST}\n"))
}

/// Gate `gate_id` (its config lines `extra`) with `manifest` imported.
fn gate_at(dir: &std::path::Path, manifest: &Manifest, gate_id: &str, extra: &str) -> Gate {
    let mut gate = reopen(dir, gate_id, extra);
    gate.import(&manifest.sign(&signer()), NOW).unwrap();
    gate
}

/// Opens gate `gate_id` over whatever state `dir` holds (a restart).
fn reopen(dir: &std::path::Path, gate_id: &str, extra: &str) -> Gate {
    let s = signer();
    let ring =
        Keyring::new(vec![TrustedKey { key_id: s.key_id(), key: s.verifying_key(), valid_from: 0, valid_until: None }]);
    std::fs::write(dir.join("keyring.json"), ring.to_json()).unwrap();
    let toml = format!(
        "gate_id = \"{gate_id}\"\nvenue_id = {VENUE}\n{extra}state_dir = \"state\"\nkeyring = \"keyring.json\"\n"
    );
    std::fs::write(dir.join("gate.toml"), toml).unwrap();
    Gate::open(Config::load(&dir.join("gate.toml")).unwrap()).unwrap()
}

#[test]
fn a_vip_ticket_at_the_main_door_is_sent_to_the_vip_entrance() {
    let dir = tempfile::tempdir().unwrap();
    let mut gate = gate(dir.path(), &manifest(ListDoors::default()));
    let standing = gate.scan(&code(1), Direction::Entry, NOW * 1000).unwrap();
    assert_eq!(standing.line.reason, None, "the main list admits standing tickets");
    let vip = gate.scan(&code(2), Direction::Entry, NOW * 1000).unwrap();
    assert_eq!(vip.line.reason, Some(Reason::OtherEntrance));
    assert_eq!(vip.outcome.display.go_to, ["VIP"]);
    assert_eq!(vip.outcome.display.go_to_words().as_deref(), Some("Use the VIP entrance"));
    // Still refused a second later: nothing was recorded as an entry.
    let again = gate.scan(&code(2), Direction::Entry, NOW * 1000 + 1000).unwrap();
    assert_eq!(again.line.reason, Some(Reason::OtherEntrance));
}

#[test]
fn an_entry_on_another_list_counts_at_this_door() {
    let dir = tempfile::tempdir().unwrap();
    let mut gate = gate(dir.path(), &manifest(ListDoors::default()));
    // The hub says ticket 1 came in through the VIP gate, on the VIP list.
    let elsewhere = Admission {
        ticket_id: 1,
        list_id: VIP_LIST,
        direction: Direction::Entry,
        at: HlcTimestamp((NOW * 1000) << 16),
        gate: "vip-1".into(),
        annulled: false,
        key: "vip-1#1".into(),
        seq: 1,
    };
    gate.apply_admissions(&[elsewhere], NOW * 1000).unwrap();
    let main = gate.scan(&code(1), Direction::Entry, NOW * 1000 + 5000).unwrap();
    assert_eq!(main.line.reason, Some(Reason::AlreadyRedeemed));
    assert_eq!(main.outcome.display.first_entry.map(|(_, gate)| gate).as_deref(), Some("vip-1"));
    // A ticket nobody let in yet is admitted as before.
    assert_eq!(gate.scan(&code(3), Direction::Entry, NOW * 1000 + 5000).unwrap().line.reason, None);
}

#[test]
fn a_gate_assigned_to_an_entrance_works_the_lists_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manifest(ListDoors::default());
    m.layout.gates = vec![GateRecord { gate_id: "door-7".into(), entrance_id: Some(2), revoked: false }];
    let mut gate = gate_at(dir.path(), &m, "door-7", "");
    assert_eq!(gate.post(), Some(Post::Entrance(2)));
    assert_eq!(gate.entrance_name().unwrap().as_deref(), Some("VIP"));
    assert!(gate.entrance_choices().unwrap().is_empty(), "assigned: nothing to choose");
    let vip = gate.scan(&code(2), Direction::Entry, NOW * 1000).unwrap();
    assert_eq!((vip.line.reason, vip.record.list_id), (None, VIP_LIST), "checked against the VIP list");
    let standing = gate.scan(&code(1), Direction::Entry, NOW * 1000).unwrap();
    assert_eq!(standing.line.reason, Some(Reason::OtherEntrance));
    assert_eq!(standing.outcome.display.go_to, ["Main"]);
    // The organizer moves the gate to the main entrance: the next manifest says so.
    m.version = 2;
    m.layout.gates[0].entrance_id = Some(1);
    gate.import(&m.sign(&signer()), NOW).unwrap();
    assert_eq!(gate.entrance_name().unwrap().as_deref(), Some("Main"));
    assert_eq!(gate.scan(&code(1), Direction::Entry, NOW * 1000).unwrap().line.reason, None);
}

#[test]
fn a_gate_whose_entrance_lost_its_lists_sends_every_ticket_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manifest(ListDoors::default());
    m.layout.gates = vec![GateRecord { gate_id: "door-7".into(), entrance_id: Some(2), revoked: false }];
    let mut gate = gate_at(dir.path(), &m, "door-7", "");
    // The VIP list moves to the main entrance: nothing admits at VIP any more.
    m.version = 2;
    m.lists[1].doors.entrance_ids = vec![1];
    gate.import(&m.sign(&signer()), NOW).unwrap();
    let vip = gate.scan(&code(2), Direction::Entry, NOW * 1000).unwrap();
    assert_eq!(
        (vip.line.reason, vip.outcome.display.go_to.clone()),
        (Some(Reason::OtherEntrance), vec!["Main".into()])
    );
    assert_eq!(vip.record.list_id, 0, "recorded against no list");
    assert_eq!(gate.scan("TX1:garbage", Direction::Entry, NOW * 1000).unwrap().line.reason, Some(Reason::Malformed));
}

#[test]
fn door_staff_choose_the_entrance_of_an_unassigned_gate_and_it_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let mut gate = gate_at(dir.path(), &manifest(ListDoors::default()), "spare-1", "");
    assert_eq!(gate.post(), None);
    assert!(matches!(gate.scan(&code(2), Direction::Entry, NOW * 1000), Err(GateError::NoList)), "nobody in yet");
    assert_eq!(gate.entrance_choices().unwrap(), [(1, "Main".to_owned()), (2, "VIP".to_owned())]);
    assert!(!gate.choose_entrance(9).unwrap(), "no such entrance");
    assert!(gate.choose_entrance(2).unwrap());
    assert_eq!(gate.scan(&code(2), Direction::Entry, NOW * 1000).unwrap().line.reason, None);
    drop(gate);
    let gate = reopen(dir.path(), "spare-1", "");
    assert_eq!((gate.post(), gate.entrance_name().unwrap().as_deref()), (Some(Post::Entrance(2)), Some("VIP")));
}

#[test]
fn the_main_list_admits_only_in_its_hours() {
    let dir = tempfile::tempdir().unwrap();
    let hours = ListDoors { opens_at: Some(NOW + 60), closes_at: Some(NOW + 3600), ..ListDoors::default() };
    let mut gate = gate(dir.path(), &manifest(hours));
    assert_eq!(gate.scan(&code(1), Direction::Entry, NOW * 1000).unwrap().line.reason, Some(Reason::ListClosed));
    assert_eq!(gate.scan(&code(3), Direction::Entry, (NOW + 60) * 1000).unwrap().line.reason, None);
    assert_eq!(
        gate.scan(&code(1), Direction::Entry, (NOW + 3600) * 1000).unwrap().line.reason,
        Some(Reason::ListClosed)
    );
}

#[test]
fn a_replica_from_before_doors_opens_and_takes_them_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE lists (id INTEGER PRIMARY KEY, name TEXT NOT NULL, event_id INTEGER NOT NULL,
                 ticket_types TEXT, allow_multiple_entries INTEGER NOT NULL, allow_entry_after_exit INTEGER NOT NULL,
                 accept_unknown INTEGER NOT NULL);
             INSERT INTO lists VALUES (9, 'Concert — all entrances', 9, NULL, 0, 0, 0);",
        )
        .unwrap();
    }
    let mut replica = Replica::open(&path).unwrap();
    let (_, old) = replica.list(9).unwrap().expect("the old list is still there");
    assert_eq!((old.hours.opens_at, old.hours.closes_at, old.ticket_types), (None, None, None));
    replica.apply(&manifest(ListDoors::default()), VENUE).unwrap();
    let (_, routes) = replica.doors_for(Post::List(MAIN_LIST)).unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(
        (routes[0].ticket_types.clone(), routes[0].entrances.clone()),
        (Some(BTreeSet::from([VIP])), vec!["VIP".to_owned()])
    );
}
