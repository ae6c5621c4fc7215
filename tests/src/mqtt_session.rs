//! A plain MQTT session of the test's own, driven on a thread: for probing a
//! broker with a gate's (or a stranger's) credentials.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet};

/// What the session's event loop reported, or the error that ended it.
pub type Events = mpsc::Receiver<Result<Event, String>>;

/// Connects to `127.0.0.1:port` as `user` with client id `id`; the session
/// stops at its first error (no reconnection).
pub fn session(port: u16, id: &str, user: &str, password: &str) -> (Client, Events) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_credentials(user, password).set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 16);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            let failed = event.is_err();
            if tx.send(event.map_err(|e| e.to_string())).is_err() || failed {
                return;
            }
        }
    });
    (client, rx)
}

/// Whether the session was accepted (its first answer is a successful ConnAck).
pub fn accepted(events: &Events, within: Duration) -> bool {
    loop {
        match events.recv_timeout(within).expect("an answer from the broker") {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => return ack.code == rumqttc::ConnectReturnCode::Success,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

/// Messages (topic, payload) the session receives within `within`.
pub fn received(events: &Events, within: Duration) -> Vec<(String, Vec<u8>)> {
    let end = Instant::now() + within;
    let mut got = Vec::new();
    while let Ok(event) = events.recv_timeout(end.saturating_duration_since(Instant::now())) {
        if let Ok(Event::Incoming(Packet::Publish(p))) = event {
            got.push((p.topic.clone(), p.payload.to_vec()));
        }
    }
    got
}

/// How long until the broker ended the session (an error from its event
/// loop), if it did within `within`; messages received meanwhile are dropped.
pub fn closed_within(events: &Events, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let end = start + within;
    loop {
        match events.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(mpsc::RecvTimeoutError::Timeout) => return None,
        }
    }
}
