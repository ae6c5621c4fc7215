//! Manifests as outside bytes: round trips, and every alteration refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use proptest::prelude::*;
use schema::entry::{TicketStatus, UnknownTicketPolicy};
use schema::manifest::{
    AreaRecord, EntranceRecord, GateRecord, ListDoors, ListRecord, Manifest, ManifestDoors, ManifestError,
    ManifestHeader, TicketRecord, TicketTypeRecord, VenueLayout, sign_body,
};
use schema::{Keyring, TicketSigner, TrustedKey};

fn signer() -> TicketSigner {
    TicketSigner::from_secret_bytes(&[5; 32])
}

fn ring() -> Keyring {
    let s = signer();
    Keyring::new(vec![TrustedKey { key_id: s.key_id(), key: s.verifying_key(), valid_from: 0, valid_until: None }])
}

fn status() -> impl Strategy<Value = TicketStatus> {
    prop_oneof![Just(TicketStatus::Valid), Just(TicketStatus::Revoked), Just(TicketStatus::Blocked)]
}

fn manifest() -> impl Strategy<Value = Manifest> {
    let ticket = (
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        status(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
    )
        .prop_map(|(ticket_id, event_id, ticket_type_id, status, sealed_holder)| TicketRecord {
            ticket_id,
            event_id,
            ticket_type_id,
            status,
            sealed_holder,
        });
    let list = (
        any::<u32>(),
        ".{0,20}",
        any::<u64>(),
        proptest::option::of(proptest::collection::vec(any::<u32>(), 0..5)),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(|(id, name, event_id, ticket_types, (multi, after_exit, accept))| ListRecord {
            id,
            name,
            event_id,
            ticket_types,
            allow_multiple_entries: multi,
            allow_entry_after_exit: after_exit,
            unknown_tickets: if accept { UnknownTicketPolicy::Accept } else { UnknownTicketPolicy::Reject },
            doors: ListDoors {
                opens_at: multi.then_some(id.into()),
                closes_at: None,
                scan_exits: after_exit,
                area_id: accept.then_some(id),
                entrance_ids: vec![id, id / 2],
            },
        });
    (
        any::<u64>(),
        1..u64::MAX,
        any::<bool>(),
        any::<u64>(),
        proptest::collection::vec((any::<u32>(), any::<u64>(), ".{0,20}"), 0..3),
        proptest::collection::vec(list, 0..3),
        proptest::collection::vec(ticket, 0..20),
    )
        .prop_map(|(venue_id, version, delta, issued_at, types, lists, tickets)| Manifest {
            venue_id,
            version,
            base_version: delta.then(|| version - 1),
            issued_at,
            ticket_types: types
                .into_iter()
                .map(|(id, event_id, name)| TicketTypeRecord { id, event_id, name })
                .collect(),
            lists,
            layout: VenueLayout {
                entrances: vec![EntranceRecord { id: 1, name: "Main".into() }],
                areas: vec![AreaRecord { id: 2, name: "Floor".into(), capacity: delta.then_some(10) }],
                gates: vec![GateRecord {
                    gate_id: format!("g{version}"),
                    entrance_id: delta.then_some(1),
                    revoked: !delta,
                }],
            },
            tickets,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_signed_manifest_opens_to_itself(m in manifest()) {
        let bytes = m.sign(&signer());
        let doors = ManifestDoors::peek(&bytes).expect("the doors read unverified");
        prop_assert_eq!((&doors.lists, &doors.layout, doors.version), (&m.lists, &m.layout, m.version));
        prop_assert_eq!(Manifest::open(&bytes, &ring(), 0), Ok(m));
    }

    #[test]
    fn any_altered_byte_is_refused(m in manifest(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = m.sign(&signer());
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(Manifest::open(&bytes, &ring(), 0).is_err());
    }

    #[test]
    fn any_signed_body_parses_or_is_refused_as_malformed(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let signed = sign_body(&signer(), &body).unwrap();
        match Manifest::open(&signed, &ring(), 0) {
            Ok(_) | Err(ManifestError::Malformed(_)) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn any_bytes_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(Manifest::open(&bytes, &ring(), 0).is_err());
        let _ = ManifestHeader::peek(&bytes);
    }

    #[test]
    fn the_header_of_a_manifest_is_read_from_its_first_bytes(m in manifest()) {
        let bytes = m.sign(&signer());
        let want = ManifestHeader { venue_id: m.venue_id, version: m.version, base_version: m.base_version };
        prop_assert_eq!(ManifestHeader::peek(&bytes), Some(want));
        prop_assert_eq!(ManifestHeader::peek(&bytes[..bytes.len().min(120)]), Some(want));
    }
}
