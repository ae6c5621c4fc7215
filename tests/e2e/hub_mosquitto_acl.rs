//! An external Mosquitto locked down with `sync-hub broker-files`: the hub and
//! its gates log in and work as usual; a wrong password or an unknown user gets
//! no connection; a gate cannot publish on another gate's topic.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rumqttc::QoS;
use tixgate_tests::mqtt_session::{accepted, received, session};
use tixgate_tests::venue_fixture::{BrokerChoice, VenueFixture, free_port};

const WAIT: Duration = Duration::from_secs(20);

/// A Mosquitto of this test's own, stopped on drop.
struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_mosquitto(dir: &std::path::Path, port: u16) -> Mosquitto {
    let conf = dir.join("mosquitto.conf");
    // The files are 0600 in a private temp dir: this broker keeps the test's user
    // rather than switching to `mosquitto` (a venue chowns the files instead).
    let as_root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir).is_ok_and(|m| m.uid() == 0)
    };
    let user = if as_root { "user root\n" } else { "" };
    let text = format!(
        "{user}listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\npersistence false\n",
        dir.join("broker/passwd").display(),
        dir.join("broker/acl").display()
    );
    std::fs::write(&conf, text).unwrap();
    let child =
        Command::new("mosquitto").arg("-c").arg(&conf).spawn().expect("mosquitto is installed (CI installs it)");
    let end = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "mosquitto did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Mosquitto(child)
}

#[test]
fn a_locked_down_mosquitto_admits_enrolled_gates_to_their_own_topics_only() {
    let port = free_port();
    let venue = VenueFixture::new(2, &BrokerChoice::External(format!("127.0.0.1:{port}")));
    venue.add_gate("north-1", "");
    venue.add_gate("south-2", "");
    let files =
        tixgate_tests::run("sync-hub", &["broker-files", "--config", "hub.toml", "--out", "broker"], venue.path());
    assert_eq!(files.code, 0, "{files:?}");
    let _mosquitto = start_mosquitto(venue.path(), port);

    // The hub and a gate log in with what enrolment issued, and work.
    let _hub = venue.start_hub();
    let mut north = venue.start_gate("north-1");
    north.wait_for(WAIT, |l| l.contains("\"hub_link\"") && l.contains("\"online\":true"));
    north.send_line(&venue.codes[0]);
    let decision = north.next_decision(WAIT);
    assert_eq!((decision["decision"].as_str(), decision["offline"].as_bool()), (Some("accept"), Some(false)));

    // Strangers get no connection.
    let enrolment: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(venue.gate_dir("north-1").join("enrolment/enrolment.json")).unwrap(),
    )
    .unwrap();
    let north_password = enrolment["mqtt_password"].as_str().unwrap();
    assert!(!accepted(&session(port, "x1", "north-1", "not-the-password").1, WAIT), "wrong password");
    assert!(!accepted(&session(port, "x2", "intruder", north_password).1, WAIT), "unknown user");

    // North may publish on its own topic only: a listener with the hub's rights sees
    // what north sends on its own topic, never what it sends on south's.
    let hub_password = std::fs::read_to_string(venue.path().join("hub-state/broker-hub-password")).unwrap();
    let (spy, spy_events) = session(port, "acl-spy", "hub", hub_password.trim());
    assert!(accepted(&spy_events, WAIT));
    let v = venue.venue_id;
    spy.subscribe(format!("tixgate/{v}/up/+"), QoS::AtLeastOnce).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (north_client, north_events) = session(port, "acl-north", "north-1", north_password);
    assert!(accepted(&north_events, WAIT));
    north_client.publish(format!("tixgate/{v}/up/south-2"), QoS::AtLeastOnce, false, b"forged".to_vec()).unwrap();
    north_client.publish(format!("tixgate/{v}/up/north-1"), QoS::AtLeastOnce, false, b"own".to_vec()).unwrap();
    let seen = received(&spy_events, Duration::from_secs(2));
    assert!(seen.contains(&(format!("tixgate/{v}/up/north-1"), b"own".to_vec())), "{seen:?}");
    assert!(!seen.iter().any(|(_, payload)| payload == b"forged"), "a gate wrote on another's topic: {seen:?}");
    north.close_stdin();
}
