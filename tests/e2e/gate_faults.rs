//! Faults at a gate: SIGKILLed mid-burst, cut off from the hub by the network,
//! and a wall clock five minutes off. Each test prints its measured result
//! (scans lost, duplicates admitted, conflicts flagged, time to converge).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cloud_api::params;
use serde_json::Value;
use tixgate_tests::proxy::Proxy;
use tixgate_tests::venue_fixture::{BrokerChoice, Daemon, VenueFixture};
use tokio_util::sync::CancellationToken;

use crate::cloud_venue::{cloud_config, point_hub_at_cloud, set_up_cloud};

const WAIT: Duration = Duration::from_secs(60);

fn wait_link(gate: &mut Daemon, online: bool) {
    let wanted = format!("\"online\":{online}");
    gate.wait_for(WAIT, |l| l.contains("\"event\":\"hub_link\"") && l.contains(&wanted));
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Scan ids in a gate's ledger.
fn ledger(venue: &VenueFixture, gate: &str) -> BTreeSet<String> {
    let path = venue.gate_dir(gate).join("state").join(gate_agent::gate::LEDGER_FILE);
    let db = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = db.prepare("SELECT scan_id FROM scans").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// Scans the hub holds, as `gate:seq`.
fn hub_scans(venue: &VenueFixture) -> BTreeSet<String> {
    let db = rusqlite::Connection::open(venue.path().join("hub-state/hub.db")).unwrap();
    let mut stmt = db.prepare("SELECT gate_id || ':' || seq FROM scans").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// Waits until the hub has acknowledged `count` scans from each of `gates`.
fn wait_acked(venue: &VenueFixture, gates: &[(&str, u64)]) {
    wait_until("the hub holds every gate's scans", || {
        let listed = venue.hub_query("gates");
        gates.iter().all(|(id, count)| listed.iter().any(|g| g["gate_id"] == *id && g["acked_through"] == *count))
    });
}

fn decision(line: &Value) -> (&str, &str) {
    (line["decision"].as_str().unwrap_or("?"), line["reason"].as_str().unwrap_or("-"))
}

#[test]
fn a_gate_sigkilled_mid_burst_keeps_every_scan_it_showed_and_the_cloud_gets_each_once() {
    const SOLD: usize = 120;
    const KILL_AFTER: usize = 40;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let venue = VenueFixture::new(1, &BrokerChoice::Embedded);
    let cloud_dir = tempfile::tempdir().unwrap();
    let config = cloud_config(&venue, cloud_dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let state = runtime.block_on(cloud_api::server::state(&config)).unwrap();
    let (token, codes) = runtime.block_on(set_up_cloud(&state, venue.venue_id as i64, SOLD));
    point_hub_at_cloud(&venue, &config, &token);
    let shutdown = CancellationToken::new();
    let server = {
        let (config, stop) = (config.clone(), shutdown.clone());
        runtime.spawn(async move { cloud_api::server::run(&config, stop, None).await })
    };
    venue.add_gate_without_replica("g1", "");
    let _hub = venue.start_hub();
    let mut gate = venue.start_gate("g1");
    wait_link(&mut gate, true);
    gate.wait_for(WAIT, |l| l.contains("\"event\":\"replica\"") && l.contains("\"version\""));

    // A queue of people; the gate is SIGKILLed while it works through them.
    for code in &codes[..KILL_AFTER] {
        gate.send_line(code);
    }
    let mut shown: Vec<Value> = (0..KILL_AFTER).map(|_| gate.next_decision(WAIT)).collect();
    for code in &codes[KILL_AFTER..] {
        gate.send_line(code);
    }
    gate.kill();
    // What it printed before it died counts as shown, to the last line.
    while let Some(line) = gate.try_wait_for(Duration::from_secs(2), |l| l.contains("\"decision\"")) {
        shown.push(serde_json::from_str(&line).unwrap());
    }
    assert!(shown.len() < SOLD, "the gate died mid-burst: {} of {SOLD} answered", shown.len());
    assert!(shown.iter().all(|d| d["decision"] == "accept"), "distinct sold tickets are let in");
    let shown_ids: BTreeSet<String> = shown.iter().map(|d| d["scan_id"].as_str().unwrap().to_owned()).collect();
    let kept = ledger(&venue, "g1");
    assert!(shown_ids.is_subset(&kept), "every scan the gate showed is in its ledger: {shown_ids:?} vs {kept:?}");

    // It restarts; the rest of the queue comes through, and someone let in
    // before the kill tries again.
    let restarted = Instant::now();
    let mut gate = venue.start_gate("g1");
    wait_link(&mut gate, true);
    let mut later = Vec::new();
    for code in &codes[kept.len()..] {
        gate.send_line(code);
        later.push(gate.next_decision(WAIT));
    }
    assert!(later.iter().all(|d| d["decision"] == "accept"), "{later:?}");
    gate.send_line(&codes[0]);
    let again = gate.next_decision(WAIT);
    assert_eq!(decision(&again), ("reject", "already_redeemed"), "{again}");

    // Every scan in the ledger reaches the cloud exactly once: the same set, no more.
    let all = ledger(&venue, "g1");
    assert_eq!(all.len(), SOLD + 1);
    let in_cloud = || -> Vec<String> {
        let rows = runtime
            .block_on(state.db.query("SELECT scan_id FROM scans WHERE venue_id = ?1", params![venue.venue_id as i64]))
            .unwrap();
        rows.iter().map(|r| r.text(0).unwrap()).collect()
    };
    wait_until("the cloud holds every scan", || in_cloud().len() >= all.len());
    let stored = in_cloud();
    let unique: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), unique.len(), "each scan once");
    assert_eq!(unique, all, "the cloud holds exactly the gate's scans");
    eprintln!(
        "gate SIGKILL mid-burst: {} shown before the kill, {} in the ledger, 0 lost; \
         all {} scans in the cloud once, {:?} after the restart",
        shown.len(),
        kept.len(),
        all.len(),
        restarted.elapsed()
    );
    gate.close_stdin();
    shutdown.cancel();
    let _ = runtime.block_on(server);
}

#[test]
fn a_gate_cut_off_from_the_hub_reconciles_when_healed_and_double_entries_become_conflicts() {
    const ALONE: usize = 10;
    const TWICE: usize = 5;
    let venue = VenueFixture::new((1 + ALONE + TWICE) as u32, &BrokerChoice::Embedded);
    venue.add_gate("near", "");
    venue.add_gate("far", "");
    // The far gate reaches the broker only through the proxy.
    let proxy = Proxy::start(venue.mqtt_address.parse().unwrap());
    let enrolment = venue.gate_dir("far").join("enrolment/enrolment.json");
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&enrolment).unwrap()).unwrap();
    file["mqtt_address"] = proxy.addr.to_string().into();
    std::fs::write(&enrolment, file.to_string()).unwrap();
    let hub = venue.start_hub();
    let mut near = venue.start_gate("near");
    let mut far = venue.start_gate("far");
    wait_link(&mut near, true);
    wait_link(&mut far, true);
    let (single, alone, twice) = (&venue.codes[0], &venue.codes[1..=ALONE], &venue.codes[1 + ALONE..]);
    let shown = std::cell::RefCell::new(BTreeSet::new());
    // The far gate's answers that took a whole claim deadline (300 ms) or more.
    let slow = std::cell::Cell::new(0);
    let ask = |gate: &mut Daemon, code: &str| {
        let asked = Instant::now();
        gate.send_line(code);
        let d = gate.next_decision(WAIT);
        let waited = asked.elapsed() >= Duration::from_millis(300);
        slow.set(slow.get() + usize::from(waited && d["scan_id"].as_str().is_some_and(|id| id.starts_with("far:"))));
        shown.borrow_mut().insert(d["scan_id"].as_str().unwrap().to_owned());
        d
    };
    assert_eq!(decision(&ask(&mut far, single)), ("accept", "-"));
    assert_eq!(decision(&ask(&mut near, single)), ("reject", "already_redeemed"));

    // The network fails between the far gate and the hub; nobody tells the gate.
    proxy.cut();
    let cut = Instant::now();
    for code in alone {
        let d = ask(&mut far, code);
        assert_eq!((decision(&d), d["offline"].as_bool()), (("accept", "-"), Some(true)), "{d}");
    }
    for code in twice {
        assert_eq!(decision(&ask(&mut near, code)), ("accept", "-"));
        let d = ask(&mut far, code);
        assert_eq!((decision(&d), d["offline"].as_bool()), (("accept", "-"), Some(true)), "it cannot know: {d}");
    }
    let d = ask(&mut far, single);
    assert_eq!(decision(&d), ("reject", "already_redeemed"), "its own ledger remembers: {d}");
    // The first claim into the silence waits its deadline; after that the gate
    // decides alone at once instead of making each person wait for the hub.
    assert!(slow.get() <= 2, "{} answers waited a claim deadline", slow.get());
    wait_link(&mut far, false);
    let noticed = cut.elapsed();

    // Healed: the far gate reconnects and the hub catches up.
    proxy.heal();
    let healed = Instant::now();
    wait_link(&mut far, true);
    let (near_count, far_count) = (1 + TWICE as u64, 2 + (ALONE + TWICE) as u64);
    wait_acked(&venue, &[("near", near_count), ("far", far_count)]);
    let converged = healed.elapsed();
    let stored = hub_scans(&venue);
    let lost = shown.borrow().difference(&stored).count();
    assert_eq!(stored, *shown.borrow(), "the hub holds exactly the scans the gates showed");
    let conflicts = venue.hub_query("conflicts");
    let tickets: BTreeSet<u64> = conflicts.iter().map(|c| c["ticket_id"].as_u64().unwrap()).collect();
    let expected: BTreeSet<u64> = (2 + ALONE as u64..=(1 + ALONE + TWICE) as u64).collect();
    assert_eq!(tickets, expected, "the double entries and nothing else: {conflicts:?}");
    // What the far gate let in alone is known everywhere now.
    let d = ask(&mut near, &alone[0]);
    assert_eq!(decision(&d), ("reject", "already_redeemed"), "{d}");
    assert_eq!(d["first_entry"]["gate"], "far", "{d}");
    eprintln!(
        "partition: link declared down after {noticed:?}, {} answers waited a claim deadline; {} scans decided alone, \
         {lost} lost; {} double entries -> {} conflicts; converged {converged:?} after healing",
        slow.get(),
        ALONE + TWICE + 1,
        TWICE,
        conflicts.len()
    );
    near.close_stdin();
    far.close_stdin();
    drop(hub);
}

/// Starts gate `gate` with its wall clock shifted by `offset` (libfaketime,
/// Debian package `faketime`; the monotonic clock stays true).
fn start_skewed(venue: &VenueFixture, gate: &str, offset: &str) -> Daemon {
    let faketime = format!("/usr/lib/{}-linux-gnu/faketime/libfaketime.so.1", std::env::consts::ARCH);
    assert!(std::path::Path::new(&faketime).exists(), "{faketime} is missing: apt-get install faketime");
    let env = [("LD_PRELOAD", faketime.as_str()), ("FAKETIME", offset), ("FAKETIME_DONT_FAKE_MONOTONIC", "1")];
    Daemon::spawn_with_env("gate-agent", &["run", "--config", "gate.toml"], &venue.gate_dir(gate), &env)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn gates_five_minutes_fast_and_slow_still_let_each_ticket_in_once() {
    const ROUNDS: usize = 50;
    const TWICE: usize = 5;
    let venue = VenueFixture::new((2 + ROUNDS + TWICE) as u32, &BrokerChoice::Embedded);
    // A generous deadline: on a loaded machine a late verdict must not turn an
    // arbitrated pair into two offline accepts (`hub_arbitration` does the same).
    venue.add_gate("fast", "claim_deadline_ms = 2000\n");
    venue.add_gate("slow", "claim_deadline_ms = 2000\ntransport = \"quic\"\n");
    let mut hub = venue.start_hub();
    let mut fast = start_skewed(&venue, "fast", "+5m");
    let mut slow = start_skewed(&venue, "slow", "-5m");
    wait_link(&mut fast, true);
    wait_link(&mut slow, true);
    let codes = &venue.codes;

    // The clocks are off: each gate's first entry shows its own time.
    fast.send_line(&codes[0]);
    assert_eq!(decision(&fast.next_decision(WAIT)), ("accept", "-"));
    slow.send_line(&codes[0]);
    let d = slow.next_decision(WAIT);
    assert_eq!(decision(&d), ("reject", "already_redeemed"), "{d}");
    let ahead = d["first_entry"]["at_ms"].as_i64().unwrap() - now_ms();
    assert!((240_000..360_000).contains(&ahead), "the fast gate stamps 5 min ahead: {ahead} ms");
    slow.send_line(&codes[1]);
    assert_eq!(decision(&slow.next_decision(WAIT)), ("accept", "-"));
    fast.send_line(&codes[1]);
    let d = fast.next_decision(WAIT);
    assert_eq!(decision(&d), ("reject", "already_redeemed"), "{d}");

    // The same ticket at both at once: the hub's order decides, not the clocks.
    let mut accepted_twice = 0;
    for code in &codes[2..2 + ROUNDS] {
        fast.send_line(code);
        slow.send_line(code);
        let answers = [fast.next_decision(WAIT), slow.next_decision(WAIT)];
        let accepts = answers.iter().filter(|a| a["decision"] == "accept").count();
        assert!(accepts >= 1, "a valid ticket gets in: {answers:?}");
        accepted_twice += usize::from(accepts > 1);
    }
    assert_eq!(accepted_twice, 0, "one entry per ticket, whatever the clocks say");

    // Without the hub both let the same tickets in; back together, each is a conflict.
    hub.kill();
    wait_link(&mut fast, false);
    wait_link(&mut slow, false);
    for code in &codes[2 + ROUNDS..] {
        for gate in [&mut slow, &mut fast] {
            gate.send_line(code);
            assert_eq!(decision(&gate.next_decision(WAIT)), ("accept", "-"));
        }
    }
    let restarted = Instant::now();
    let _hub = venue.start_hub();
    wait_link(&mut fast, true);
    wait_link(&mut slow, true);
    let per_gate = (2 + ROUNDS + TWICE) as u64;
    wait_acked(&venue, &[("fast", per_gate), ("slow", per_gate)]);
    let converged = restarted.elapsed();
    assert_eq!(hub_scans(&venue).len() as u64, 2 * per_gate, "nothing lost");
    let conflicts = venue.hub_query("conflicts");
    let tickets: BTreeSet<u64> = conflicts.iter().map(|c| c["ticket_id"].as_u64().unwrap()).collect();
    let expected: BTreeSet<u64> = ((3 + ROUNDS) as u64..=(2 + ROUNDS + TWICE) as u64).collect();
    assert_eq!(tickets, expected, "{conflicts:?}");
    // Each names both gates, ordered by hybrid logical time.
    for c in &conflicts {
        let pair = BTreeSet::from([c["first_gate"].as_str().unwrap(), c["second_gate"].as_str().unwrap()]);
        assert_eq!(pair, BTreeSet::from(["fast", "slow"]), "{c}");
        assert!(c["first_at_ms"].as_u64() <= c["second_at_ms"].as_u64(), "{c}");
    }
    eprintln!(
        "clock skew +5/-5 min: {ROUNDS} rounds at both gates, {accepted_twice} admitted twice; \
         {TWICE} offline double entries -> {} conflicts; converged {converged:?} after the hub restart; 0 lost",
        conflicts.len()
    );
    fast.close_stdin();
    slow.close_stdin();
}
