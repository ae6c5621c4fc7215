//! A gate revoked while connected to the embedded broker loses its live
//! session within 2 s and cannot log in again; the other gates keep theirs.
//! (Every topic rule: the probe suite's `broker`; logins: `hub_dashboard`.)

use std::time::Duration;

use rumqttc::QoS;
use schema::sync::{mqtt_client_id, topics};
use tixgate_tests::mqtt_session::{accepted, closed_within, session};
use tixgate_tests::venue_fixture::{BrokerChoice, VenueFixture};

const WAIT: Duration = Duration::from_secs(20);
/// Long enough for a disconnection to arrive on loopback.
const QUIET: Duration = Duration::from_millis(700);

#[test]
fn a_gate_revoked_while_connected_loses_its_session_within_two_seconds() {
    let venue = VenueFixture::new(1, &BrokerChoice::Embedded);
    venue.add_gate("north-1", "");
    venue.add_gate("south-2", "");
    let _hub = venue.start_hub();
    let v = u32::try_from(venue.venue_id).unwrap();
    let port = schema::sync::parse_host_port(&venue.mqtt_address).unwrap().1;
    let (north, south) = (venue.mqtt_password("north-1"), venue.mqtt_password("south-2"));
    let (north_client, north_events) = session(port, &mqtt_client_id(v, "north-1", "in"), "north-1", &north);
    let (south_client, south_events) = session(port, &mqtt_client_id(v, "south-2", "in"), "south-2", &south);
    assert!(accepted(&north_events, WAIT) && accepted(&south_events, WAIT));
    north_client.subscribe(topics::down(v, "north-1"), QoS::AtLeastOnce).unwrap();
    south_client.subscribe(topics::down(v, "south-2"), QoS::AtLeastOnce).unwrap();
    assert_eq!(closed_within(&north_events, QUIET), None, "north's own topic is north's");

    let out =
        tixgate_tests::run("sync-hub", &["revoke-gate", "--config", "hub.toml", "--gate-id", "north-1"], venue.path());
    assert_eq!(out.code, 0, "{out:?}");
    let cut = closed_within(&north_events, WAIT).expect("the revoked gate's session ends");
    assert!(cut <= Duration::from_secs(2), "the revoked gate kept its session for {cut:?}");
    let (_, again) = session(port, &mqtt_client_id(v, "north-1", "in"), "north-1", &north);
    assert!(!accepted(&again, WAIT), "and cannot log in again");
    assert_eq!(closed_within(&south_events, QUIET), None, "south, never revoked, keeps its session");
}
