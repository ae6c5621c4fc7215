//! What systemd sees of the three daemons (`systemd/*.service` are
//! `Type=notify` with a watchdog): READY=1 once each takes work, WATCHDOG=1
//! pings at half the interval systemd asks for, STOPPING=1 on SIGTERM before a
//! clean exit; and exit code 78 for an unusable configuration, which the units'
//! `RestartPreventExitStatus=78` does not restart.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use tixgate_tests::run;
use tixgate_tests::venue_fixture::{BrokerChoice, Daemon, VenueFixture, free_port};

/// systemd's end of `NOTIFY_SOCKET`.
struct Manager {
    socket: UnixDatagram,
    path: String,
}

impl Manager {
    fn bind(dir: &Path, name: &str) -> Self {
        let path = dir.join(format!("{name}.notify"));
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Self { socket, path: path.display().to_string() }
    }

    /// The environment systemd gives a `Type=notify` service with `WatchdogSec=0.4s`.
    fn env(&self) -> [(&str, &str); 2] {
        [("NOTIFY_SOCKET", self.path.as_str()), ("WATCHDOG_USEC", "400000")]
    }

    /// Messages until one contains `wanted`; panics after `timeout`.
    fn wait_for(&self, wanted: &str, timeout: Duration) -> Vec<String> {
        let end = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = message.lines().any(|l| l == wanted);
                got.push(message);
                if done {
                    return got;
                }
            }
        }
        panic!("no {wanted} within {timeout:?}; got {got:?}");
    }

    /// Counts watchdog pings over `window`.
    fn pings_during(&self, window: Duration) -> usize {
        let end = Instant::now() + window;
        let mut pings = 0;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.socket.recv(&mut buf) {
                pings += usize::from(String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "WATCHDOG=1"));
            }
        }
        pings
    }
}

/// Ready, fed, stopped: the life of one daemon as systemd sees it.
fn check_life(mut daemon: Daemon, manager: &Manager, name: &str) {
    let ready = manager.wait_for("READY=1", Duration::from_secs(30));
    assert!(ready.concat().contains("STATUS="), "{name} says what it is doing: {ready:?}");
    // Every 200 ms: at least 4 in 1.5 s, even on a loaded machine.
    let pings = manager.pings_during(Duration::from_millis(1_500));
    assert!(pings >= 4, "{name}: {pings} watchdog pings in 1.5 s with WatchdogSec=0.4s");
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0), "{name} exits cleanly on SIGTERM");
    manager.wait_for("STOPPING=1", Duration::from_secs(1));
}

#[test]
fn each_daemon_tells_systemd_it_is_ready_feeds_the_watchdog_and_says_when_it_stops() {
    let venue = VenueFixture::new(5, &BrokerChoice::Embedded);
    venue.add_gate("north-1", "");

    let manager = Manager::bind(venue.path(), "hub");
    let hub = Daemon::spawn_with_env("sync-hub", &["run", "--config", "hub.toml"], venue.path(), &manager.env());
    check_life(hub, &manager, "sync-hub");

    let manager = Manager::bind(venue.path(), "gate");
    let gate_dir = venue.gate_dir("north-1");
    let gate = Daemon::spawn_with_env("gate-agent", &["run", "--config", "gate.toml"], &gate_dir, &manager.env());
    check_life(gate, &manager, "gate-agent");

    let cloud_dir = venue.path().join("cloud");
    std::fs::create_dir(&cloud_dir).unwrap();
    assert_eq!(run("cloud-api", &["keys", "generate", "--dir", "keys"], &cloud_dir).code, 0);
    std::fs::write(
        cloud_dir.join("cloud.toml"),
        format!(
            "listen = \"127.0.0.1:{}\"\nstore = \"cloud.db\"\nkeys = \"keys\"\ntoken_secret_file = \"token-secret\"\n",
            free_port()
        ),
    )
    .unwrap();
    let manager = Manager::bind(venue.path(), "cloud");
    let cloud = Daemon::spawn_with_env("cloud-api", &["serve", "--config", "cloud.toml"], &cloud_dir, &manager.env());
    check_life(cloud, &manager, "cloud-api");
}

#[test]
fn an_unusable_configuration_exits_78_which_systemd_does_not_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "this is = = not toml\n").unwrap();
    for (bin, args) in [
        ("gate-agent", ["run", "--config", "bad.toml"]),
        ("sync-hub", ["run", "--config", "bad.toml"]),
        ("cloud-api", ["serve", "--config", "bad.toml"]),
    ] {
        let out = run(bin, &args, dir.path());
        assert_eq!(out.code, 78, "{bin}: {out:?}");
        assert!(out.stderr.contains("bad.toml"), "{bin} names the file: {}", out.stderr);
    }
    for unit in ["tixgate-gate-agent", "tixgate-sync-hub", "tixgate-cloud-api"] {
        let text =
            std::fs::read_to_string(tixgate_tests::workspace_root().join(format!("systemd/{unit}.service"))).unwrap();
        assert!(text.contains("RestartPreventExitStatus=78"), "{unit}");
        assert!(text.contains("Type=notify") && text.contains("WatchdogSec="), "{unit}");
    }
}
