#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]
//! The hub's single writer against hostile and broken input: every refused
//! frame leaves `hub.db` exactly as it was; good frames are answered only after
//! their commit.

use std::sync::Mutex;

use schema::Decision;
use schema::entry::Direction;
use schema::hlc::HlcTimestamp;
use schema::sync::{
    self, Claim, GateMessage, HUB_ID, Hello, HubMessage, MAX_FRAME, NodeKey, Recipient, ReentryRule, ScanReport,
    Verdict,
};
use sync_hub::core::{Core, Inbound, Outbound};
use sync_hub::status::{Status, Transport};
use sync_hub::store::{GateCredentials, HubStore};

struct Hub {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    core: Core,
    hub_key: NodeKey,
    status: Status,
}

fn key(seed: u8) -> NodeKey {
    NodeKey::from_secret_bytes(&[seed; 32])
}

fn hub_with(gates: &[(&str, u8)]) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let store = HubStore::open(&path).unwrap();
    for (gate, seed) in gates {
        store
            .enroll(
                gate,
                &GateCredentials {
                    public_key: key(*seed).public(),
                    mqtt_secret: [0; 32],
                    cert_fingerprint: [*seed; 32],
                    broker_hash: String::new(),
                },
                1,
            )
            .unwrap();
    }
    let hub_key = key(200);
    let status = Status::default();
    let core = Core::new(store, hub_key.clone(), status.clone()).unwrap();
    Hub { _dir: dir, path, core, hub_key, status }
}

fn frame(sender: &str, seed: u8, message: &GateMessage) -> Vec<u8> {
    key(seed).seal(sender, Recipient::Node(HUB_ID), &message.encode())
}

fn inbound(topic_gate: &str, bytes: Vec<u8>) -> Inbound {
    Inbound { transport: Transport::Mqtt, claimed_gate: Some(topic_gate.to_owned()), bytes }
}

impl Hub {
    /// Handles frames as one group; returns the decoded replies in order.
    fn handle(&mut self, group: Vec<Inbound>) -> Vec<(Option<String>, HubMessage)> {
        let sent = Mutex::new(Vec::new());
        self.core.handle_group(group, &|out| sent.lock().unwrap().push(out)).unwrap();
        let hub = self.hub_key.public();
        sent.into_inner()
            .unwrap()
            .into_iter()
            .map(|out| {
                let (to, bytes) = match out {
                    Outbound::To { gate, frame } => (Some(gate), frame),
                    Outbound::All(frame) => (None, frame),
                };
                let opened = sync::frame::open(&bytes, |s| (s == HUB_ID).then_some(hub)).expect("hub frames verify");
                (to, HubMessage::decode(opened.body).expect("hub frames decode"))
            })
            .collect()
    }

    /// Every row of every table, for before/after comparisons.
    fn dump(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open(&self.path).unwrap();
        let mut rows = Vec::new();
        for table in ["gates", "scans", "admissions", "conflicts"] {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let n = stmt.column_count();
            let mut q = stmt.query([]).unwrap();
            while let Some(row) = q.next().unwrap() {
                let cells: Vec<String> =
                    (0..n).map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap())).collect();
                rows.push(format!("{table}: {}", cells.join(", ")));
            }
        }
        rows
    }
}

fn claim(claim_id: u64, ticket_id: u64) -> GateMessage {
    GateMessage::Claim(Claim {
        claim_id,
        ticket_id,
        list_id: 1,
        direction: Direction::Entry,
        rule: ReentryRule::default(),
        hlc: HlcTimestamp(claim_id),
    })
}

fn scan(seq: u64, ticket_id: u64) -> ScanReport {
    ScanReport {
        seq,
        hlc: HlcTimestamp(seq << 16),
        wall_ms: seq,
        ticket_id: Some(ticket_id),
        event_id: Some(9),
        ticket_type: Some(1),
        list_id: 1,
        direction: Direction::Entry,
        decision: Decision::Accept,
        reason: None,
        rule: ReentryRule::default(),
        offline: true,
        annulled: false,
        claim_id: None,
        not_in_replica: false,
    }
}

#[test]
fn hostile_frames_are_refused_and_store_nothing() {
    let mut hub = hub_with(&[("north-1", 1), ("south-2", 2), ("old-3", 3)]);
    hub.core.handle_group(Vec::new(), &|_| {}).unwrap();
    let conn = rusqlite::Connection::open(&hub.path).unwrap();
    conn.execute("UPDATE gates SET revoked_ms = 5 WHERE gate_id = 'old-3'", []).unwrap();
    drop(conn);
    // Reopen so the revocation is read.
    let store = HubStore::open(&hub.path).unwrap();
    hub.core = Core::new(store, hub.hub_key.clone(), hub.status.clone()).unwrap();
    let before = hub.dump();

    let good = GateMessage::Scans(vec![scan(1, 7)]);
    let mut oversized = frame("north-1", 1, &good);
    oversized.resize(MAX_FRAME + 1, 0);
    let mut altered = frame("north-1", 1, &good);
    let last = altered.len() - 1;
    altered[last] ^= 0x40;
    let mut trailing_body = good.encode();
    trailing_body.push(0);
    let hostile = vec![
        inbound("north-1", b"garbage".to_vec()),
        inbound("north-1", Vec::new()),
        inbound("north-1", oversized),
        inbound("north-1", altered),
        // Signed by someone else under north-1's name.
        inbound("north-1", frame("north-1", 99, &good)),
        // A gate the hub never enrolled, with a key of its own.
        inbound("ghost", frame("ghost", 50, &good)),
        // A revoked gate.
        inbound("old-3", frame("old-3", 3, &good)),
        // North's genuine frame published on south's topic.
        inbound("south-2", frame("north-1", 1, &good)),
        // Genuine, but addressed to another node.
        inbound("north-1", key(1).seal("north-1", Recipient::Node("south-2"), &good.encode())),
        inbound("north-1", key(1).seal("north-1", Recipient::Everyone, &good.encode())),
        // Genuine signature over a body that does not decode strictly.
        inbound("north-1", key(1).seal("north-1", Recipient::Node(HUB_ID), &trailing_body)),
        inbound("north-1", key(1).seal("north-1", Recipient::Node(HUB_ID), &[0xff; 40])),
        // Scans out of order.
        inbound("north-1", frame("north-1", 1, &GateMessage::Scans(vec![scan(2, 7), scan(1, 8)]))),
    ];
    let count = hostile.len();
    let replies = hub.handle(hostile);
    assert!(replies.is_empty(), "nothing is answered: {replies:?}");
    assert_eq!(hub.dump(), before, "nothing is stored");
    let refused: u64 = hub.status.snapshot().refused.values().sum();
    assert_eq!(refused, count as u64, "every frame refused and counted: {:?}", hub.status.snapshot().refused);

    // The hub still serves honest gates afterwards.
    let replies = hub.handle(vec![inbound("north-1", frame("north-1", 1, &good))]);
    assert!(replies.contains(&(Some("north-1".into()), HubMessage::Ack { through: 1 })), "{replies:?}");
}

#[test]
fn a_group_commits_before_anything_is_answered_and_replays_change_nothing() {
    let mut hub = hub_with(&[("north-1", 1), ("south-2", 2)]);
    let replies = hub.handle(vec![
        inbound(
            "north-1",
            frame(
                "north-1",
                1,
                &GateMessage::Hello(Hello {
                    replica_version: 3,
                    last_seq: 0,
                    hlc: HlcTimestamp(0),
                    admissions_through: 0,
                }),
            ),
        ),
        inbound("south-2", frame("south-2", 2, &claim(11, 7))),
        inbound("north-1", frame("north-1", 1, &claim(12, 7))),
    ]);
    // Verdicts first, then the welcome, then the broadcast of the one grant.
    assert_eq!(replies[0], (Some("south-2".into()), HubMessage::Verdict { claim_id: 11, verdict: Verdict::Granted }));
    assert!(matches!(&replies[1], (Some(g), HubMessage::Verdict { claim_id: 12, verdict: Verdict::AlreadyIn(first) })
        if g == "north-1" && first.gate == "south-2"));
    assert_eq!(replies[2], (Some("north-1".into()), HubMessage::Welcome { acked_through: 0 }));
    assert!(matches!(&replies[3], (None, HubMessage::Admissions(a)) if a.len() == 1 && a[0].gate == "south-2"));
    let stored = hub.dump();
    assert!(stored.iter().any(|r| r.starts_with("admissions:") && r.contains("south-2#b")), "{stored:?}");

    // The very same frames again (a replay, or the broker's redelivery).
    let replay = hub.handle(vec![inbound("south-2", frame("south-2", 2, &claim(11, 7)))]);
    assert_eq!(replay, vec![(Some("south-2".into()), HubMessage::Verdict { claim_id: 11, verdict: Verdict::Granted })]);
    assert_eq!(hub.dump(), stored, "a replayed claim stores nothing new");

    // The store survives a restart with the same answers.
    let store = HubStore::open(&hub.path).unwrap();
    hub.core = Core::new(store, hub.hub_key.clone(), hub.status.clone()).unwrap();
    let after_restart = hub.handle(vec![inbound("north-1", frame("north-1", 1, &claim(13, 7)))]);
    assert!(matches!(&after_restart[0], (_, HubMessage::Verdict { verdict: Verdict::AlreadyIn(_), .. })));

    // A gate back from an outage says how far it got; the hub fills in the rest
    // (from its store: the order of admission changes survives the restart).
    let hello = |through| Hello { replica_version: 3, last_seq: 0, hlc: HlcTimestamp(0), admissions_through: through };
    let replies = hub.handle(vec![inbound("north-1", frame("north-1", 1, &GateMessage::Hello(hello(0))))]);
    assert!(
        matches!(&replies[1], (Some(g), HubMessage::Admissions(a)) if g == "north-1" && a.len() == 1 && a[0].seq == 1),
        "{replies:?}"
    );
    let replies = hub.handle(vec![inbound("north-1", frame("north-1", 1, &GateMessage::Hello(hello(1))))]);
    assert_eq!(replies.len(), 1, "nothing missed: only the welcome: {replies:?}");
}

#[test]
fn a_gate_that_links_is_answered_linked_and_one_that_signs_is_answered_signed() {
    let mut hub = hub_with(&[("north-1", 1), ("south-2", 2)]);
    let hub_public = hub.hub_key.public();
    let north_link = key(1).link_key(&hub_public).unwrap();
    let before = hub.dump();

    // Forged linked frames: under south's link in north's name, and to everyone.
    let south_link = key(2).link_key(&hub_public).unwrap();
    let forged = vec![
        inbound("north-1", south_link.seal("north-1", HUB_ID, &claim(1, 7).encode())),
        inbound("north-1", north_link.seal("north-1", sync::frame::EVERYONE, &claim(1, 7).encode())),
    ];
    let sent = Mutex::new(Vec::new());
    hub.core.handle_group(forged, &|out| sent.lock().unwrap().push(out)).unwrap();
    assert!(sent.lock().unwrap().is_empty(), "forged linked frames get no answer");
    assert_eq!(hub.dump(), before, "and store nothing");

    let group = vec![
        inbound("north-1", north_link.seal("north-1", HUB_ID, &claim(1, 7).encode())),
        inbound("south-2", frame("south-2", 2, &claim(2, 8))),
    ];
    let sent = Mutex::new(Vec::new());
    hub.core.handle_group(group, &|out| sent.lock().unwrap().push(out)).unwrap();
    let at_north = sync::SenderKeys { public: hub_public, link: Some(north_link) };
    let mut verdicts = Vec::new();
    for out in sent.into_inner().unwrap() {
        match out {
            Outbound::To { gate, frame } if gate == "north-1" => {
                assert!(frame.starts_with(b"TXL1"), "linked answer to a linked gate");
                assert!(sync::frame::open(&frame, |_| Some(hub_public)).is_err(), "needs the link to open");
                let opened = sync::frame::open(&frame, |_| Some(at_north.clone())).unwrap();
                verdicts.push((gate, HubMessage::decode(opened.body).unwrap()));
            }
            Outbound::To { gate, frame } => {
                assert!(frame.starts_with(b"TXS1"), "signed answer to a signing gate");
                let opened = sync::frame::open(&frame, |_| Some(hub_public)).unwrap();
                verdicts.push((gate, HubMessage::decode(opened.body).unwrap()));
            }
            Outbound::All(frame) => {
                assert!(frame.starts_with(b"TXS1"), "broadcasts are signed");
                sync::frame::open(&frame, |_| Some(hub_public)).unwrap();
            }
        }
    }
    assert_eq!(
        verdicts,
        vec![
            ("north-1".to_owned(), HubMessage::Verdict { claim_id: 1, verdict: Verdict::Granted }),
            ("south-2".to_owned(), HubMessage::Verdict { claim_id: 2, verdict: Verdict::Granted }),
        ]
    );
}
