//! The hub's embedded broker probed with an enrolled gate's own credentials on
//! every topic pattern: only its own `up` topic to write (never retained), its
//! own `down` topic and the broadcast to read; anything else ends the session
//! and reaches no one.

use std::time::Duration;

use rumqttc::QoS;
use schema::sync::{mqtt_client_id, topics};
use tixgate_tests::mqtt_session::{accepted, closed_within, received, session};
use tixgate_tests::venue_fixture::{BrokerChoice, VenueFixture};

const WAIT: Duration = Duration::from_secs(20);
/// Long enough for a message, or a disconnection, to arrive on loopback.
const QUIET: Duration = Duration::from_millis(600);

#[test]
fn an_enrolled_gate_reaches_its_own_topics_and_nothing_else() {
    let venue = VenueFixture::new(1, &BrokerChoice::Embedded);
    venue.add_gate("north-1", "");
    venue.add_gate("south-2", "");
    let _hub = venue.start_hub();
    let v = u32::try_from(venue.venue_id).unwrap();
    let port = schema::sync::parse_host_port(&venue.mqtt_address).unwrap().1;
    let (north, south) = (venue.mqtt_password("north-1"), venue.mqtt_password("south-2"));

    // South listens on everything it may, and must hear none of north's reaches.
    let (listener, heard) = session(port, &mqtt_client_id(v, "south-2", "in"), "south-2", &south);
    assert!(accepted(&heard, WAIT));
    listener.subscribe(topics::down(v, "south-2"), QoS::AtLeastOnce).unwrap();
    listener.subscribe(topics::broadcast(v), QoS::AtLeastOnce).unwrap();

    let (own_up, own_down, all) = (topics::up(v, "north-1"), topics::down(v, "north-1"), topics::broadcast(v));
    let other_venue = v.wrapping_add(1);
    let filters = [
        "#".to_owned(),
        "+".into(),
        "+/#".into(),
        "+/+/+/+".into(),
        "tixgate".into(),
        "tixgate/#".into(),
        "tixgate/+".into(),
        format!("tixgate/{v}"),
        format!("tixgate/{v}/#"),
        format!("tixgate/{v}/+"),
        format!("tixgate/{v}/+/+"),
        format!("tixgate/{v}/up/+"),
        format!("tixgate/{v}/up/#"),
        format!("tixgate/{v}/down/+"),
        format!("tixgate/{v}/down/#"),
        format!("tixgate/{v}/+/north-1"),
        format!("tixgate/{v}/all/#"),
        format!("{own_down}/#"),
        own_up.clone(),
        topics::up(v, "south-2"),
        topics::down(v, "south-2"),
        topics::broadcast(other_venue),
        topics::down(other_venue, "north-1"),
        "$SYS/#".into(),
        format!("$share/probe/tixgate/{v}/up/+"),
        format!("tixgate/{v}/down/north-1 "),
    ];
    let mut failures = Vec::new();
    for filter in &filters {
        let (client, events) = session(port, &mqtt_client_id(v, "north-1", "in"), "north-1", &north);
        assert!(accepted(&events, WAIT), "north-1 logs in");
        let _ = client.subscribe(filter.as_str(), QoS::AtLeastOnce);
        if closed_within(&events, WAIT).is_none() {
            failures.push(format!("subscribe to {filter:?} kept the session"));
        }
    }
    let topics_to_write = [
        topics::up(v, "south-2"),
        own_down.clone(),
        topics::down(v, "south-2"),
        all.clone(),
        topics::up(other_venue, "north-1"),
        format!("tixgate/{v}/up"),
        format!("{own_up}/x"),
        "tixgate".into(),
        "$SYS/probe".into(),
        format!("{own_up} "),
    ];
    for topic in &topics_to_write {
        for retain in [false, true] {
            let (client, events) = session(port, &mqtt_client_id(v, "north-1", "out"), "north-1", &north);
            assert!(accepted(&events, WAIT), "north-1 logs in");
            let _ = client.publish(topic.as_str(), QoS::AtLeastOnce, retain, b"probe".to_vec());
            if closed_within(&events, WAIT).is_none() {
                failures.push(format!("publish on {topic:?} (retain {retain}) kept the session"));
            }
        }
    }
    let (client, events) = session(port, &mqtt_client_id(v, "north-1", "out"), "north-1", &north);
    assert!(accepted(&events, WAIT));
    let _ = client.publish(own_up.as_str(), QoS::AtLeastOnce, true, b"kept".to_vec());
    if closed_within(&events, WAIT).is_none() {
        failures.push("a retained publish on its own up topic kept the session".into());
    }
    let seen = received(&heard, QUIET);
    assert!(failures.is_empty(), "the broker let a gate through:\n{}", failures.join("\n"));
    assert!(seen.is_empty(), "south heard north's reaches: {seen:?}");

    // What north may do, it may: read its own topics and write its own up topic.
    let (client, events) = session(port, &mqtt_client_id(v, "north-1", "out"), "north-1", &north);
    assert!(accepted(&events, WAIT));
    client.subscribe(own_down.as_str(), QoS::AtLeastOnce).unwrap();
    client.subscribe(all.as_str(), QoS::AtLeastOnce).unwrap();
    client.publish(own_up.as_str(), QoS::AtLeastOnce, false, b"not a frame".to_vec()).unwrap();
    assert_eq!(closed_within(&events, QUIET), None, "north's own topics are north's");
    println!("{} subscriptions and {} publications refused", filters.len(), topics_to_write.len() * 2 + 1);
}
