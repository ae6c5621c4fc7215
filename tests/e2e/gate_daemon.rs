//! `gate-agent run` as a process: bursts of scans on stdin, SIGKILL in the middle,
//! SIGTERM for a clean stop. What the gate announced must be what it stored.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tixgate_tests::gate_fixture::GateFixture;
use tixgate_tests::{binary, run};

/// Starts the daemon; returns the child and a channel of its announced lines.
fn start(dir: &Path) -> (Child, mpsc::Receiver<Value>) {
    let mut child = Command::new(binary("gate-agent"))
        .args(["run", "--config", "gate.toml"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(serde_json::from_str::<Value>(&line).unwrap()).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// The ledger, by scan id.
fn ledger(dir: &Path) -> HashMap<String, Value> {
    let out = run("gate-agent", &["scans", "--config", "gate.toml"], dir);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["scan_id"].as_str().unwrap().to_owned(), v))
        .collect()
}

/// Lines of a burst: every code twice (the second time must be refused) and garbage.
fn burst(codes: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = codes.iter().chain(codes.iter()).cloned().collect();
    for i in (0..lines.len()).step_by(17) {
        lines.insert(i, format!("garbage-{i}"));
    }
    lines
}

#[test]
fn sigkill_mid_burst_loses_no_announced_scan() {
    let v = GateFixture::new(150, "");
    let (dir, codes) = (v.path(), &v.codes);
    let lines = burst(codes);
    let (mut child, rx) = start(dir);
    let mut stdin = child.stdin.take().unwrap();
    let feed = lines.clone();
    let writer = std::thread::spawn(move || {
        for line in feed {
            if writeln!(stdin, "{line}").is_err() {
                return;
            }
        }
        // Keep stdin open: the daemon must be killed mid-stream, not end by EOF.
        std::thread::sleep(Duration::from_secs(30));
    });
    let mut announced = Vec::new();
    while announced.len() < 120 {
        announced.push(rx.recv_timeout(Duration::from_secs(30)).expect("the gate announces decisions"));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    announced.extend(rx.try_iter());
    drop(writer);

    let stored = ledger(dir);
    assert!(
        announced.len() >= 120 && stored.len() >= announced.len(),
        "{} announced, {} stored",
        announced.len(),
        stored.len()
    );
    for a in &announced {
        let id = a["scan_id"].as_str().unwrap();
        let s = stored.get(id).unwrap_or_else(|| panic!("announced scan {id} missing from the ledger"));
        assert_eq!((&s["decision"], &s["reason"]), (&a["decision"], &a["reason"]), "scan {id}");
    }

    // Restart: the rest of the burst is decided against what survived.
    let (mut child, rx) = start(dir);
    let mut stdin = child.stdin.take().unwrap();
    for code in codes {
        writeln!(stdin, "{code}").unwrap();
    }
    drop(stdin); // end of input: the daemon drains and exits
    assert!(child.wait().unwrap().success());
    let after: Vec<Value> = rx.iter().collect();
    assert_eq!(after.len(), codes.len());
    let stored = ledger(dir);
    let mut accepted_per_ticket: HashMap<u64, usize> = HashMap::new();
    for s in stored.values().filter(|s| s["decision"] == "accept") {
        *accepted_per_ticket.entry(s["ticket_id"].as_u64().unwrap()).or_default() += 1;
    }
    assert!(accepted_per_ticket.values().all(|&n| n == 1), "a ticket entered twice across the crash");
    assert_eq!(accepted_per_ticket.len(), codes.len(), "every ticket entered exactly once in the end");
}

#[test]
fn sigterm_drains_commits_and_exits_0() {
    let v = GateFixture::new(40, "");
    let (dir, codes) = (v.path(), &v.codes);
    let (mut child, rx) = start(dir);
    let mut stdin = child.stdin.take().unwrap();
    for code in codes {
        writeln!(stdin, "{code}").unwrap();
    }
    stdin.flush().unwrap();
    for _ in 0..5 {
        rx.recv_timeout(Duration::from_secs(30)).expect("decisions");
    }
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    drop(stdin);
    let announced = 5 + rx.iter().count();
    assert_eq!(ledger(dir).len(), announced, "everything read was decided, stored and announced");
}

#[test]
fn binary_garbage_and_huge_lines_do_not_stop_the_gate() {
    let v = GateFixture::new(2, "");
    let (dir, codes) = (v.path(), &v.codes);
    let (mut child, rx) = start(dir);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\xff\xfe\x00\x01binary\n").unwrap();
    stdin.write_all(&vec![b'A'; 1 << 20]).unwrap();
    stdin.write_all(b"\n\r\n\n").unwrap();
    writeln!(stdin, "]Q1{}\r", codes[0]).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let lines: Vec<Value> = rx.iter().collect();
    let reasons: Vec<&str> = lines.iter().map(|l| l["reason"].as_str().unwrap_or("accept")).collect();
    assert_eq!(reasons, ["malformed", "malformed", "accept"], "{lines:?}");
}
