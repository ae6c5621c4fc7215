//! The gate's real serial paths through pseudo-terminals: a barcode scanner
//! sending codes (with line noise), and a turnstile controller that reports
//! passage — or does not, and the admission is annulled.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use serialport::{SerialPort, TTYPort};
use tixgate_tests::gate_fixture::GateFixture;
use tixgate_tests::{binary, run};

/// Reads one `\r`-terminated command from the turnstile's side of the link.
fn read_command(port: &mut TTYPort) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while Instant::now() < deadline {
        match port.read(&mut byte) {
            Ok(1) if byte[0] == b'\r' => return String::from_utf8_lossy(&line).into_owned(),
            Ok(1) => line.push(byte[0]),
            _ => {}
        }
    }
    panic!("no command from the gate (got {:?} so far)", String::from_utf8_lossy(&line));
}

#[test]
fn scanner_and_turnstile_over_serial_with_annul_when_nobody_passes() {
    let (mut scanner, scanner_tty) = TTYPort::pair().unwrap();
    let (mut turnstile, turnstile_tty) = TTYPort::pair().unwrap();
    turnstile.set_timeout(Duration::from_millis(50)).unwrap();
    let extra = format!(
        "stdin = false\n[scanner]\nprofile = \"zebra-ds2208-usb-cdc\"\nport = \"{}\"\n[turnstile]\nprofile = \"tripod.toml\"\nport = \"{}\"\n",
        scanner_tty.name().unwrap(),
        turnstile_tty.name().unwrap()
    );
    // The turnstile profile file must exist before the config is read.
    let gate = GateFixture::build("g1", 1, 3, &extra, false);
    let (p, codes) = (gate.path(), &gate.codes);
    std::fs::write(
        p.join("tripod.toml"),
        "kind = \"turnstile\"\nname = \"test-tripod\"\ndescription = \"test\"\nbaud = 9600\nline_ending = \"cr\"\nopen = \"OPEN 1\"\ndeny = \"DENY\"\nidle = \"IDLE\"\npulse_ms = 50\npassage = \"PASSED\"\npassage_timeout_ms = 1000\n",
    )
    .unwrap();
    gate.ok("gate-agent", &["replica", "import", "--config", "gate.toml", "batch/manifest.txm"]);

    let mut child = Command::new(binary("gate-agent"))
        .args(["run", "--config", "gate.toml"])
        .current_dir(p)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut announced = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || -> Value { serde_json::from_str(&announced.next().unwrap().unwrap()).unwrap() };

    // Line noise, then a code split across two writes.
    scanner.write_all(b"\x00\xff\xfe\r\n").unwrap();
    assert_eq!(read_command(&mut turnstile), "DENY");
    assert_eq!(read_command(&mut turnstile), "IDLE");
    assert_eq!(next()["reason"], "malformed");
    let (head, tail) = codes[0].split_at(30);
    scanner.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    scanner.write_all(format!("{tail}\r\n").as_bytes()).unwrap();
    assert_eq!(next()["decision"], "accept", "stored and announced before the turnstile opens");
    assert_eq!(read_command(&mut turnstile), "OPEN 1");
    turnstile.write_all(b"PASSED\r").unwrap();
    assert_eq!(read_command(&mut turnstile), "IDLE");

    // Released, but nobody turns the arm: annulled after the profile's timeout.
    scanner.write_all(format!("{}\r\n", codes[1]).as_bytes()).unwrap();
    let admitted = next();
    assert_eq!(admitted["decision"], "accept");
    assert_eq!(read_command(&mut turnstile), "OPEN 1");
    assert_eq!(read_command(&mut turnstile), "IDLE");
    let annulled = next();
    assert_eq!((&annulled["decision"], &annulled["scan_id"]), (&Value::from("annulled"), &admitted["scan_id"]));

    // The annulled ticket may try again; the used one may not.
    scanner.write_all(format!("{}\r\n{}\r\n", codes[1], codes[0]).as_bytes()).unwrap();
    assert_eq!(next()["decision"], "accept", "an annulled admission does not count");
    assert_eq!(read_command(&mut turnstile), "OPEN 1");
    turnstile.write_all(b"PASSED\r").unwrap();
    assert_eq!(read_command(&mut turnstile), "IDLE");
    assert_eq!(next()["reason"], "already_redeemed");
    assert_eq!(read_command(&mut turnstile), "DENY");

    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let out = run("gate-agent", &["scans", "--config", "gate.toml"], p);
    let scans: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let annulled: Vec<&Value> = scans.iter().filter(|s| s["annulled"] == true).collect();
    assert_eq!(annulled.len(), 1);
    assert_eq!(annulled[0]["reason"], "annulled");
    assert_eq!(scans.len(), 5);
}
