//! A venue with three entrances (Main, VIP, Staff) and two areas (Floor,
//! Lounge), on the real daemons: every ticket type at every entrance gets the
//! right answer and reason, with the hub and without it; one VIP ticket shown
//! at Main and VIP at once enters once; exits and re-entries keep each area's
//! count right through a hub SIGKILL; a gate with no assignment is set to its
//! entrance on the door display (tmux) and keeps it after a restart.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tixgate_tests::binary;
use tixgate_tests::venue_fixture::{BrokerChoice, Daemon, VenueFixture, http_get};

const WAIT: Duration = Duration::from_secs(30);

/// Standing tickets (type 1) come in at Main onto the floor; VIP tickets
/// (type 2) at Main onto the floor or at VIP into the lounge; crew (type 3) at
/// Staff onto the floor. Every list allows re-entry after an exit. Main and
/// VIP gates are assigned in the cloud; `staff-1` is not.
const DOORS: &str = r#"{
  "ticket_types": [
    {"id": 1, "event_id": EVENT, "name": "Standing"},
    {"id": 2, "event_id": EVENT, "name": "VIP"},
    {"id": 3, "event_id": EVENT, "name": "Crew"}
  ],
  "lists": [
    {"id": 1, "name": "General", "event_id": EVENT, "ticket_types": [1, 2], "allow_multiple_entries": false,
     "allow_entry_after_exit": true, "unknown_tickets": "reject",
     "doors": {"opens_at": null, "closes_at": null, "scan_exits": true, "area_id": 10, "entrance_ids": [1]}},
    {"id": 2, "name": "VIP lounge", "event_id": EVENT, "ticket_types": [2], "allow_multiple_entries": false,
     "allow_entry_after_exit": true, "unknown_tickets": "reject",
     "doors": {"opens_at": null, "closes_at": null, "scan_exits": true, "area_id": 20, "entrance_ids": [2]}},
    {"id": 3, "name": "Crew", "event_id": EVENT, "ticket_types": [3], "allow_multiple_entries": false,
     "allow_entry_after_exit": true, "unknown_tickets": "reject",
     "doors": {"opens_at": null, "closes_at": null, "scan_exits": true, "area_id": 10, "entrance_ids": [3]}}
  ],
  "layout": {
    "entrances": [{"id": 1, "name": "Main"}, {"id": 2, "name": "VIP"}, {"id": 3, "name": "Staff"}],
    "areas": [{"id": 10, "name": "Floor", "capacity": 500}, {"id": 20, "name": "Lounge", "capacity": 40}],
    "gates": [{"gate_id": "main-1", "entrance_id": 1, "revoked": false},
              {"gate_id": "vip-1", "entrance_id": 2, "revoked": false},
              {"gate_id": "out-1", "entrance_id": 1, "revoked": false}]
  }
}"#;

/// Ticket `id`'s barcode: tickets take the types in turn (1 Standing, 2 VIP, 3 Crew, 4 Standing…).
fn code(venue: &VenueFixture, id: usize) -> &str {
    &venue.codes[id - 1]
}

/// Shows ticket `id` at `gate` and returns the decision line.
fn show(gate: &mut Daemon, venue: &VenueFixture, id: usize) -> Value {
    gate.send_line(code(venue, id));
    gate.next_decision(WAIT)
}

/// Checks one answer: accepted (`None`; with the hub's word unless `offline`)
/// or refused with `reason` and `go_to` (a gate refuses on its own either way).
fn expect(d: &Value, reason: Option<&str>, go_to: &[&str], offline: bool, what: &str) {
    assert_eq!(d["reason"].as_str(), reason, "{what}: {d}");
    if reason.is_none() {
        assert_eq!(d["offline"].as_bool(), Some(offline), "{what}: {d}");
    }
    let sent: Vec<&str> =
        d["go_to"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    assert_eq!(sent, go_to, "{what}: {d}");
}

/// Every ticket type at every entrance: tickets `base…base + 8`, fresh, `base`
/// a Standing ticket.
fn every_type_at_every_entrance(gates: &mut [&mut Daemon; 3], venue: &VenueFixture, base: usize, offline: bool) {
    let [main, vip, staff] = gates;
    // base: Standing, base+1: VIP, base+2: Crew; base+3…: the same again.
    expect(&show(main, venue, base), None, &[], offline, "Standing at Main");
    expect(&show(main, venue, base + 1), None, &[], offline, "VIP at Main");
    expect(&show(main, venue, base + 2), Some("other_entrance"), &["Staff"], offline, "Crew at Main");
    expect(&show(vip, venue, base + 3), Some("other_entrance"), &["Main"], offline, "Standing at VIP");
    expect(&show(vip, venue, base + 4), None, &[], offline, "VIP at VIP");
    expect(&show(vip, venue, base + 5), Some("other_entrance"), &["Staff"], offline, "Crew at VIP");
    expect(&show(staff, venue, base + 6), Some("other_entrance"), &["Main"], offline, "Standing at Staff");
    expect(&show(staff, venue, base + 7), Some("other_entrance"), &["Main", "VIP"], offline, "VIP at Staff");
    expect(&show(staff, venue, base + 8), None, &[], offline, "Crew at Staff");
}

/// People inside per area, as the hub's status says.
fn areas(http: &str) -> Vec<(String, u64)> {
    let (code, body) = http_get(http, "/api/status", None);
    assert_eq!(code, 200, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    status["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_owned(), a["inside"].as_u64().unwrap()))
        .collect()
}

/// Waits until the hub counts `floor` and `lounge`.
fn wait_areas(http: &str, floor: u64, lounge: u64, when: &str) {
    let wanted = vec![("Floor".to_owned(), floor), ("Lounge".to_owned(), lounge)];
    let started = Instant::now();
    loop {
        let now = areas(http);
        if now == wanted {
            return;
        }
        assert!(started.elapsed() < WAIT, "{when}: the hub counts {now:?}, expected {wanted:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `gate` stored the hub's broadcast of an exit of `ticket`.
fn heard_exit(venue: &VenueFixture, gate: &str, ticket: i64) -> bool {
    let path = venue.gate_dir(gate).join("state").join(gate_agent::gate::LEDGER_FILE);
    let Ok(db) = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return false;
    };
    db.query_row(
        "SELECT count(*) FROM venue WHERE ticket_id = ?1 AND direction = 'exit' AND annulled = 0",
        [ticket],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

fn wait_link(gate: &mut Daemon, online: bool) {
    let wanted = format!("\"online\":{online}");
    gate.wait_for(WAIT, |l| l.contains("\"event\":\"hub_link\"") && l.contains(&wanted));
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux is installed (./test installs it)");
    assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the pane shows `text`; returns the pane.
fn pane_with(session: &str, text: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let pane = tmux(&["capture-pane", "-t", session, "-p"]);
        if pane.contains(text) {
            return pane;
        }
        assert!(Instant::now() < deadline, "the display never showed {text:?}:\n{pane}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `staff-1` has no entrance: its display offers the three, staff type 3,
/// and it works the Staff entrance from then on.
fn choose_staff_on_the_display(venue: &VenueFixture) {
    let session = format!("tixgate-entrance-{}", std::process::id());
    let command = format!(
        "cd {} && {} run --config gate.toml --display tui",
        venue.gate_dir("staff-1").display(),
        binary("gate-agent").display()
    );
    tmux(&["new-session", "-d", "-s", &session, "-x", "70", "-y", "20", &command]);
    let asked = pane_with(&session, "W H I C H   E N T R A N C E ?");
    for choice in ["1  Main", "2  VIP", "3  Staff"] {
        assert!(asked.contains(choice), "{choice:?} offered:\n{asked}");
    }
    tmux(&["send-keys", "-t", &session, "3", "Enter"]);
    pane_with(&session, "Staff entrance");
    // Ticket 45 is Crew, 46 Standing.
    tmux(&["send-keys", "-t", &session, code(venue, 45), "Enter"]);
    pane_with(&session, "A C C E P T");
    tmux(&["send-keys", "-t", &session, code(venue, 46), "Enter"]);
    let sent_on = pane_with(&session, "Use the Main entrance");
    let _ = Command::new("tmux").args(["kill-session", "-t", &session]).status();
    assert!(sent_on.contains("R E J E C T") && sent_on.contains("in 1   refused 1"), "{sent_on}");
}

#[test]
fn three_entrances_two_areas_online_offline_and_through_a_hub_sigkill() {
    let doors = DOORS.replace("EVENT", &tixgate_tests::gate_fixture::EVENT.to_string());
    let venue = VenueFixture::with_doors(60, &BrokerChoice::Embedded, Some(&doors));
    venue.serve_manifests();
    venue.add_gate_with("main-1", "", "claim_deadline_ms = 2000\n");
    venue.add_gate_with("vip-1", "", "claim_deadline_ms = 2000\n");
    venue.add_gate_with("staff-1", "", "claim_deadline_ms = 2000\n");
    venue.add_gate_with("out-1", "direction = \"exit\"\n", "claim_deadline_ms = 2000\n");
    let mut hub = venue.start_hub();
    let http = hub.ready.as_ref().unwrap()["http"].as_str().unwrap().to_owned();

    choose_staff_on_the_display(&venue);
    let mut main = venue.start_gate("main-1");
    let mut vip = venue.start_gate("vip-1");
    let mut staff = venue.start_gate("staff-1");
    let mut out = venue.start_gate("out-1");
    let remembered = staff.wait_for(WAIT, |l| l.contains("\"event\":\"entrance\""));
    assert!(remembered.contains("\"name\":\"Staff\""), "the choice survives a restart: {remembered}");
    for gate in [&mut main, &mut vip, &mut staff, &mut out] {
        wait_link(gate, true);
    }
    // Inside so far: ticket 45 (Crew, Floor), let in on the display.
    wait_areas(&http, 1, 0, "after the display");

    // Online: tickets 1-9.
    every_type_at_every_entrance(&mut [&mut main, &mut vip, &mut staff], &venue, 1, false);
    // Floor: 45, 1, 2, 9; Lounge: 5.
    wait_areas(&http, 4, 1, "online");

    // One VIP ticket at Main and VIP at the same moment: in once.
    main.send_line(code(&venue, 11));
    vip.send_line(code(&venue, 11));
    let answers = [main.next_decision(WAIT), vip.next_decision(WAIT)];
    let admitted: Vec<_> = answers.iter().filter(|d| d["decision"] == "accept").collect();
    assert_eq!(admitted.len(), 1, "{answers:?}");
    let refused = answers.iter().find(|d| d["decision"] == "reject").unwrap();
    assert_eq!(refused["reason"], "already_redeemed", "{refused}");
    let (floor, lounge) = if answers[0]["decision"] == "accept" { (5, 1) } else { (4, 2) };
    wait_areas(&http, floor, lounge, "after the race");

    // Ticket 1 leaves by the exit gate and comes back in at Main; VIP 5 leaves the lounge.
    expect(&show(&mut out, &venue, 1), None, &[], false, "exit of 1");
    expect(&show(&mut out, &venue, 5), None, &[], false, "exit of 5");
    wait_areas(&http, floor - 1, lounge - 1, "after two exits");
    expect(&show(&mut main, &venue, 1), None, &[], false, "1 back in");
    expect(
        &show(&mut main, &venue, 9),
        Some("other_entrance"),
        &["Staff"],
        false,
        "a crew ticket stays refused at Main",
    );
    wait_areas(&http, floor, lounge - 1, "after a re-entry");

    // The VIP gate has heard of 5's exit before the hub dies.
    let started = Instant::now();
    while !heard_exit(&venue, "vip-1", 5) {
        assert!(started.elapsed() < WAIT, "vip-1 never heard of ticket 5's exit");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The hub dies: the gates decide alone, with the same answers.
    hub.kill();
    for gate in [&mut main, &mut vip, &mut staff, &mut out] {
        wait_link(gate, false);
    }
    every_type_at_every_entrance(&mut [&mut main, &mut vip, &mut staff], &venue, 22, true);
    expect(&show(&mut out, &venue, 2), None, &[], true, "exit of 2 offline");
    // Ticket 5 left the lounge (heard before the kill): back in at VIP, offline.
    expect(&show(&mut vip, &venue, 5), None, &[], true, "5 back into the lounge");

    // Back: every offline scan reconciles, and each area counts each ticket once.
    let hub = venue.start_hub();
    let http = hub.ready.as_ref().unwrap()["http"].as_str().unwrap().to_owned();
    // Offline in: 22, 23, 30 (Floor), 26 and 5 again (Lounge); out: 2 (Floor).
    wait_areas(&http, floor + 3 - 1, lounge - 1 + 2, "after the hub's restart");
    let (_, body) = http_get(&http, "/api/status", None);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["conflicts"], json!(0), "no ticket entered twice: {status}");
}
