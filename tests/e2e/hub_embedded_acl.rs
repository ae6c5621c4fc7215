//! The embedded broker's topic rules, from a gate's own credentials: what the
//! Mosquitto ACL of `sync-hub broker-files` allows and no more. A gate that
//! reaches for another gate's traffic, writes where it may not, or leaves a
//! retained message is disconnected and its message goes nowhere; a gate
//! revoked while connected loses its session within 2 s. (Logins: `hub_dashboard`.)

use std::time::Duration;

use rumqttc::QoS;
use schema::sync::{mqtt_client_id, topics};
use tixgate_tests::mqtt_session::{Events, accepted, closed_within, received, session};
use tixgate_tests::venue_fixture::{BrokerChoice, VenueFixture};

const WAIT: Duration = Duration::from_secs(20);
/// How long a message may take to arrive on loopback, and then some.
const QUIET: Duration = Duration::from_millis(700);

fn password(venue: &VenueFixture, gate: &str) -> String {
    let path = venue.gate_dir(gate).join("enrolment/enrolment.json");
    let enrolment: schema::sync::Enrolment = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    enrolment.mqtt_password
}

#[test]
fn a_gate_gets_its_own_topics_only_and_a_revoked_gate_loses_its_live_session() {
    let venue = VenueFixture::new(1, &BrokerChoice::Embedded);
    venue.add_gate("north-1", "");
    venue.add_gate("south-2", "");
    let _hub = venue.start_hub();
    let v = u32::try_from(venue.venue_id).unwrap();
    let port = schema::sync::parse_host_port(&venue.mqtt_address).unwrap().1;
    let (north, south) = (password(&venue, "north-1"), password(&venue, "south-2"));
    let north_session = |direction: &str| -> (rumqttc::Client, Events) {
        let (client, events) = session(port, &mqtt_client_id(v, "north-1", direction), "north-1", &north);
        assert!(accepted(&events, WAIT), "north-1 logs in ({direction})");
        (client, events)
    };

    // South listens where it may: its own down topic and the broadcast.
    let (south_client, south_events) = session(port, &mqtt_client_id(v, "south-2", "in"), "south-2", &south);
    assert!(accepted(&south_events, WAIT));
    south_client.subscribe(topics::down(v, "south-2"), QoS::AtLeastOnce).unwrap();
    south_client.subscribe(topics::broadcast(v), QoS::AtLeastOnce).unwrap();

    // Every reach past north's own topics ends its session; nothing it sent arrives.
    let reaches = [
        ("subscribe to", "#".to_owned()),
        ("subscribe to", format!("tixgate/{v}/down/+")),
        ("subscribe to", topics::down(v, "south-2")),
        ("publish on", topics::down(v, "south-2")),
        ("publish on", topics::broadcast(v)),
        ("publish on", topics::up(v, "south-2")),
    ];
    for (what, topic) in reaches {
        let (client, events) = north_session("out");
        match what {
            "subscribe to" => client.subscribe(&topic, QoS::AtLeastOnce),
            _ => client.publish(&topic, QoS::AtLeastOnce, false, b"forged".to_vec()),
        }
        .unwrap();
        assert!(closed_within(&events, WAIT).is_some(), "{what} {topic}: north-1 kept its session");
    }
    // A retained message on its own topic is refused too, and none is kept.
    let (client, events) = north_session("out");
    client.publish(topics::up(v, "north-1"), QoS::AtLeastOnce, true, b"kept".to_vec()).unwrap();
    assert!(closed_within(&events, WAIT).is_some(), "a retained publish");
    let seen = received(&south_events, QUIET);
    assert!(seen.is_empty(), "south received what north may not send: {seen:?}");
    let (late, late_events) = session(port, &mqtt_client_id(v, "south-2", "out"), "south-2", &south);
    assert!(accepted(&late_events, WAIT));
    late.subscribe(topics::up(v, "north-1"), QoS::AtLeastOnce).unwrap();
    assert!(closed_within(&late_events, WAIT).is_some(), "south may not read north's up topic either");

    // What north may do, it does: its own up topic reaches the hub, and the
    // session stays.
    let (own, own_events) = north_session("out");
    own.subscribe(topics::down(v, "north-1"), QoS::AtLeastOnce).unwrap();
    own.subscribe(topics::broadcast(v), QoS::AtLeastOnce).unwrap();
    own.publish(topics::up(v, "north-1"), QoS::AtLeastOnce, false, b"not a frame".to_vec()).unwrap();
    assert_eq!(closed_within(&own_events, QUIET), None, "north's own topics are north's");

    // Revoked while connected: the live session ends within 2 s.
    let out =
        tixgate_tests::run("sync-hub", &["revoke-gate", "--config", "hub.toml", "--gate-id", "north-1"], venue.path());
    assert_eq!(out.code, 0, "{out:?}");
    let cut = closed_within(&own_events, WAIT).expect("the revoked gate's session ends");
    assert!(cut <= Duration::from_secs(2), "the revoked gate kept its session for {cut:?}");
    let (_, again) = session(port, &mqtt_client_id(v, "north-1", "in"), "north-1", &north);
    assert!(!accepted(&again, WAIT), "and cannot log in again");
    // South, never revoked, still has its session.
    assert_eq!(closed_within(&south_events, QUIET), None);
}
