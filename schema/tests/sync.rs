#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]
//! The sync protocol's decoders on arbitrary input: a value or a typed error,
//! never a panic; what is sealed opens to the same message.

use proptest::prelude::*;
use schema::Decision;
use schema::entry::Direction;
use schema::hlc::HlcTimestamp;
use schema::sync::{self, GateMessage, HubMessage, NodeKey, Recipient, ReentryRule, ScanReport, SenderKeys};

/// What the hub knows of gate `gate`: its public key and their link.
fn at_hub(gate: &NodeKey) -> SenderKeys {
    let hub = NodeKey::from_secret_bytes(&[1; 32]);
    SenderKeys { public: gate.public(), link: hub.link_key(&gate.public()) }
}

fn hub_link(gate: &NodeKey) -> sync::LinkKey {
    gate.link_key(&NodeKey::from_secret_bytes(&[1; 32]).public()).unwrap()
}

fn report() -> impl Strategy<Value = ScanReport> {
    (1u64..1_000, any::<u64>(), proptest::option::of(any::<u64>()), any::<bool>(), any::<bool>(), any::<bool>())
        .prop_map(|(seq, hlc, ticket, exit, offline, multiple)| ScanReport {
            seq,
            hlc: HlcTimestamp(hlc),
            wall_ms: hlc >> 16,
            ticket_id: ticket,
            event_id: ticket.map(|_| 9),
            ticket_type: ticket.map(|_| 2),
            list_id: 1,
            direction: if exit { Direction::Exit } else { Direction::Entry },
            decision: if ticket.is_some() { Decision::Accept } else { Decision::Reject },
            reason: None,
            rule: ReentryRule { multiple, after_exit: false },
            offline,
            annulled: false,
            claim_id: None,
            not_in_replica: false,
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        let key = NodeKey::from_secret_bytes(&[4; 32]);
        let _ = sync::frame::open(&bytes, |_| Some(at_hub(&key)));
        let _ = GateMessage::decode(&bytes);
        let _ = HubMessage::decode(&bytes);
        for magic in [b"TXS1", b"TXL1"] {
            let mut framed = magic.to_vec();
            framed.extend_from_slice(&bytes);
            prop_assert!(sync::frame::open(&framed, |_| Some(at_hub(&key))).is_err(), "unauthenticated bytes never open");
        }
    }

    #[test]
    fn sealed_scan_batches_open_to_the_same_message(mut scans in proptest::collection::vec(report(), 0..40)) {
        scans.sort_by_key(|s| s.seq);
        scans.dedup_by_key(|s| s.seq);
        let message = GateMessage::Scans(scans);
        let key = NodeKey::from_secret_bytes(&[5; 32]);
        let sealed = key.seal("g-1", Recipient::Node("hub"), &message.encode());
        let frame = sync::frame::open(&sealed, |_| Some(key.public())).unwrap();
        prop_assert_eq!(GateMessage::decode(frame.body), Ok(message.clone()));
        let linked = hub_link(&key).seal("g-1", "hub", &message.encode());
        let frame = sync::frame::open(&linked, |_| Some(at_hub(&key))).unwrap();
        prop_assert_eq!(GateMessage::decode(frame.body), Ok(message));
    }

    #[test]
    fn any_single_bit_flip_of_a_sealed_frame_is_refused(at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let key = NodeKey::from_secret_bytes(&[6; 32]);
        let body = GateMessage::Scans(vec![]).encode();
        let signed = key.seal("g-1", Recipient::Node("hub"), &body);
        let linked = hub_link(&key).seal("g-1", "hub", &body);
        for mut sealed in [signed, linked] {
            let i = at.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(sync::frame::open(&sealed, |_| Some(at_hub(&key))).is_err());
        }
    }
}

#[test]
fn a_gate_may_publish_on_its_own_up_topic_and_read_its_own_down_topic_and_the_broadcast_only() {
    use schema::sync::topics::{self, GateAction, gate_may};
    let own_up = topics::up(7, "north-1");
    assert!(gate_may(7, "north-1", GateAction::Publish { topic: &own_up, retain: false }));
    assert!(!gate_may(7, "north-1", GateAction::Publish { topic: &own_up, retain: true }), "nothing retained");
    for topic in [
        topics::up(7, "south-2"),
        topics::down(7, "south-2"),
        topics::down(7, "north-1"),
        topics::broadcast(7),
        topics::up(8, "north-1"),
        "#".into(),
    ] {
        assert!(!gate_may(7, "north-1", GateAction::Publish { topic: &topic, retain: false }), "publish on {topic}");
    }
    assert!(gate_may(7, "north-1", GateAction::Subscribe(&topics::down(7, "north-1"))));
    assert!(gate_may(7, "north-1", GateAction::Subscribe(&topics::broadcast(7))));
    for filter in [
        "#",
        "tixgate/#",
        "tixgate/7/+",
        "tixgate/7/down/+",
        "tixgate/7/up/north-1",
        "tixgate/7/down/south-2",
        "tixgate/8/all",
        "$SYS/#",
    ] {
        assert!(!gate_may(7, "north-1", GateAction::Subscribe(filter)), "subscribe to {filter}");
    }
}
