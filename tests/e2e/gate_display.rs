//! The door staff's screen, in a real terminal (tmux): green with ACCEPT, red
//! with the reason in words and where the ticket first entered.

use std::process::Command;
use std::time::{Duration, Instant};

use tixgate_tests::binary;
use tixgate_tests::gate_fixture::GateFixture;

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux is installed (.ci/run installs it)");
    assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the pane (with colours) contains `text`.
fn pane_with(session: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pane = tmux(&["capture-pane", "-t", session, "-p", "-e"]);
        if pane.contains(text) || Instant::now() > deadline {
            return pane;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_screen_turns_green_then_red_with_the_reason() {
    let gate = GateFixture::build("north-1", 1, 1, "", true);
    let (p, code) = (gate.path(), &gate.codes[0]);

    let session = format!("tixgate-display-{}", std::process::id());
    let command =
        format!("cd {} && {} run --config gate.toml --display tui", p.display(), binary("gate-agent").display());
    tmux(&["new-session", "-d", "-s", &session, "-x", "60", "-y", "16", &command]);
    let ready = pane_with(&session, "R E A D Y");
    tmux(&["send-keys", "-t", &session, code, "Enter"]);
    let accepted = pane_with(&session, "A C C E P T");
    tmux(&["send-keys", "-t", &session, code, "Enter"]);
    let rejected = pane_with(&session, "Already used");
    let _ = Command::new("tmux").args(["kill-session", "-t", &session]).status();

    assert!(ready.contains("R E A D Y"), "{ready}");
    assert!(accepted.contains("A C C E P T") && accepted.contains("Guest 1"), "{accepted}");
    assert!(accepted.contains("48;5;2m") || accepted.contains("42m"), "green background: {accepted:?}");
    assert!(rejected.contains("R E J E C T") && rejected.contains("at north-1"), "{rejected}");
    assert!(rejected.contains("48;5;1m") || rejected.contains("41m"), "red background: {rejected:?}");
    assert!(rejected.contains("in 1   refused 1"), "{rejected}");
}
