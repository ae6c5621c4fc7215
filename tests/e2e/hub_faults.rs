//! The hub dies mid-burst: gates keep deciding alone, the hub comes back, every
//! scan reconciles, nothing acknowledged is lost, and the tickets let in twice
//! while the hub was away show up as conflicts.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tixgate_tests::venue_fixture::{BrokerChoice, Daemon, VenueFixture};

const WAIT: Duration = Duration::from_secs(30);
const BURST: usize = 100;
const TWICE: usize = 10;

fn wait_link(gate: &mut Daemon, online: bool) {
    let wanted = format!("\"online\":{online}");
    gate.wait_for(WAIT, |l| l.contains("\"event\":\"hub_link\"") && l.contains(&wanted));
}

/// Admissions at other gates that `gate` has stored from the hub: (ticket, gate).
fn heard_of(venue: &VenueFixture, gate: &str) -> Vec<(i64, String)> {
    let path = venue.gate_dir(gate).join("state").join(gate_agent::gate::LEDGER_FILE);
    let Ok(db) = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let Ok(mut stmt) = db.prepare("SELECT ticket_id, gate FROM venue WHERE annulled = 0") else { return Vec::new() };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[test]
fn hub_sigkilled_mid_burst_over_mqtt_loses_nothing_and_double_entries_become_conflicts() {
    hub_sigkilled_mid_burst("mqtt");
}

#[test]
fn hub_sigkilled_mid_burst_over_quic_loses_nothing_and_double_entries_become_conflicts() {
    hub_sigkilled_mid_burst("quic");
}

fn hub_sigkilled_mid_burst(transport: &str) {
    let venue = VenueFixture::new((2 * BURST + TWICE) as u32, &BrokerChoice::Embedded);
    let config = format!("transport = \"{transport}\"\n");
    venue.add_gate("north-1", &config);
    venue.add_gate("south-2", &config);
    let mut hub = venue.start_hub();
    let mut north = venue.start_gate("north-1");
    let mut south = venue.start_gate("south-2");
    wait_link(&mut north, true);
    wait_link(&mut south, true);

    // A burst of different tickets at each gate; the hub is killed part-way.
    for code in &venue.codes[..BURST] {
        north.send_line(code);
    }
    for code in &venue.codes[BURST..2 * BURST] {
        south.send_line(code);
    }
    let mut shown = BTreeSet::new();
    let mut offline = 0;
    for i in 0..BURST {
        if i == BURST / 4 {
            hub.kill();
        }
        for gate in [&mut north, &mut south] {
            let d = gate.next_decision(WAIT);
            assert_eq!(d["decision"], "accept", "distinct valid tickets are let in, hub or not: {d}");
            offline += usize::from(d["offline"] == true);
            shown.insert(d["scan_id"].as_str().unwrap().to_owned());
        }
    }
    assert!(offline > 0, "some of the burst was decided without the hub");

    // While the hub is away the same tickets arrive at both gates: both let them in.
    for code in &venue.codes[2 * BURST..] {
        north.send_line(code);
        south.send_line(code);
        for gate in [&mut north, &mut south] {
            let d = gate.next_decision(WAIT);
            assert_eq!((d["decision"].as_str(), d["offline"].as_bool()), (Some("accept"), Some(true)), "{d}");
            shown.insert(d["scan_id"].as_str().unwrap().to_owned());
        }
    }

    // The hub restarts from its disk; gates reconnect and send what it lacks.
    let started = Instant::now();
    let hub = venue.start_hub();
    wait_link(&mut north, true);
    wait_link(&mut south, true);
    let per_gate = (BURST + TWICE) as u64;
    loop {
        let gates = venue.hub_query("gates");
        if gates.iter().all(|g| g["acked_through"] == per_gate) {
            break;
        }
        assert!(started.elapsed() < WAIT, "not reconciled: {gates:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("reconciled {} scans in {:?} after the restart", 2 * per_gate, started.elapsed());
    // QUIC gates still hold connections to the dead hub: the restarted one resets
    // them (its reset and connection-id keys survive restarts), so they reconnect
    // within a keepalive instead of waiting out the idle timeout.
    assert!(
        started.elapsed() < schema::sync::quic::IDLE_TIMEOUT,
        "reconciling took {:?}: the gates waited out the idle timeout",
        started.elapsed()
    );

    // Every decision a gate showed is stored at the hub, exactly once.
    let db = rusqlite::Connection::open(venue.path().join("hub-state/hub.db")).unwrap();
    let mut stmt = db.prepare("SELECT gate_id || ':' || seq FROM scans").unwrap();
    let stored: BTreeSet<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(stored, shown, "the hub holds exactly the scans the gates showed");

    // The tickets let in at both gates are conflicts, and nothing else is.
    let conflicts = venue.hub_query("conflicts");
    let tickets: BTreeSet<u64> = conflicts.iter().map(|c| c["ticket_id"].as_u64().unwrap()).collect();
    let expected: BTreeSet<u64> = (2 * BURST as u64 + 1..=(2 * BURST + TWICE) as u64).collect();
    assert_eq!(tickets, expected, "{conflicts:?}");
    assert_eq!(conflicts.len(), TWICE);
    for c in &conflicts {
        let pair = BTreeSet::from([c["first_gate"].as_str().unwrap(), c["second_gate"].as_str().unwrap()]);
        assert_eq!(pair, BTreeSet::from(["north-1", "south-2"]), "{c}");
    }
    // The operator sees them on the dashboard, with where and when.
    let http = hub.ready.as_ref().unwrap()["http"].as_str().unwrap().to_owned();
    let (_, body) = tixgate_tests::venue_fixture::http_get(&http, "/api/status", None);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["conflicts"], TWICE as u64);
    let shown = status["recent_conflicts"].as_array().unwrap();
    assert_eq!(shown.len(), TWICE);
    assert!(shown.iter().all(|c| c["first_at_ms"].as_u64() <= c["second_at_ms"].as_u64()));
}

#[test]
fn a_gate_that_was_away_learns_who_came_in_and_refuses_them_when_the_hub_is_gone() {
    let venue = VenueFixture::new(3, &BrokerChoice::Embedded);
    venue.add_gate("north-1", "");
    venue.add_gate("south-2", "transport = \"quic\"\n");
    let mut hub = venue.start_hub();
    let mut north = venue.start_gate("north-1");
    wait_link(&mut north, true);
    // South is switched off while north lets ticket 1 in.
    north.send_line(&venue.codes[0]);
    assert_eq!(north.next_decision(WAIT)["decision"], "accept");

    // South comes up, is told what it missed, then loses the hub for good. The
    // catch-up follows the link coming up, so wait until south has stored it.
    let mut south = venue.start_gate("south-2");
    wait_link(&mut south, true);
    let end = Instant::now() + WAIT;
    while !heard_of(&venue, "south-2").contains(&(1, "north-1".to_owned())) {
        assert!(Instant::now() < end, "south never heard that north let ticket 1 in");
        std::thread::sleep(Duration::from_millis(50));
    }
    hub.kill();
    wait_link(&mut south, false);
    south.send_line(&venue.codes[0]);
    let decision = south.next_decision(WAIT);
    assert_eq!(decision["decision"], "reject", "{decision}");
    assert_eq!(decision["reason"], "already_redeemed", "{decision}");
    assert_eq!(decision["offline"], true, "{decision}");
    assert_eq!(decision["first_entry"]["gate"], "north-1", "{decision}");
    north.close_stdin();
    south.close_stdin();
}
