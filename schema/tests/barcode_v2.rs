//! Barcode v2 inside the pure core: a ticket bound to its holder's key, shown
//! with the time and the holder's signature, refused once stale, and never
//! made fresh by anyone without the holder's key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use std::collections::BTreeSet;

use proptest::prelude::*;
use schema::barcode::{self, BarcodeError, MAX_SEAT_LEN, MAX_TEXT_LEN, Malformed};
use schema::entry::{self, CheckInList, Direction, ReplicaTicket, ScanContext, TicketStatus, UnknownTicketPolicy};
use schema::{
    Freshness, HolderSigner, KeyError, Keyring, Reason, SeatLabel, TicketClaims, TicketFlags, TicketSigner, TrustedKey,
    Validity, VerifyError,
};

const NOW: u64 = 1_780_000_000;

fn issuer() -> TicketSigner {
    TicketSigner::from_secret_bytes(&[3; 32])
}

fn holder(seed: u8) -> HolderSigner {
    HolderSigner::from_secret_bytes(&[seed; 32])
}

fn ring() -> Keyring {
    let s = issuer();
    Keyring::new(vec![TrustedKey { key_id: s.key_id(), key: s.verifying_key(), valid_from: 0, valid_until: None }])
}

fn ticket(ticket_id: u64) -> TicketClaims {
    TicketClaims {
        event_id: 4_242,
        ticket_id,
        ticket_type_id: 3,
        flags: TicketFlags::default(),
        validity: Validity::default(),
        seat: None,
    }
}

fn bound(ticket_id: u64, holder: &HolderSigner) -> Vec<u8> {
    issuer().bind(&ticket(ticket_id), &holder.verifying_key()).expect("strong key")
}

#[test]
fn a_shown_code_verifies_with_its_claims_and_time() {
    let h = holder(7);
    let code = h.show(&bound(77, &h), NOW - 4);
    assert!(code.starts_with("TX2:"), "{code}");
    let t = ring().verify(&code, NOW).expect("valid");
    assert_eq!(t.claims, ticket(77));
    assert_eq!(t.shown_at, Some(NOW - 4));
    assert_eq!(Freshness::default().check(&t, NOW), Ok(()));
}

#[test]
fn codes_older_than_the_window_or_dated_too_far_ahead_are_stale() {
    let h = holder(7);
    let static_part = bound(1, &h);
    let f = Freshness { max_age: 30, max_ahead: 10 };
    let age = |shown: u64| f.check(&ring().verify(&h.show(&static_part, shown), NOW).expect("authentic"), NOW);
    assert_eq!(age(NOW - 30), Ok(()));
    assert_eq!(age(NOW - 31), Err(Reason::StaleCode));
    assert_eq!(age(NOW + 10), Ok(()), "a gate clock 10 s behind the phone's");
    assert_eq!(age(NOW + 11), Err(Reason::StaleCode));
    assert_eq!(age(0), Err(Reason::StaleCode));
    assert_eq!(age(u64::MAX), Err(Reason::StaleCode));
    // Static paper codes carry no time and never go stale.
    let paper = ring().verify(&issuer().mint(&ticket(2)), NOW).expect("valid");
    assert_eq!(f.check(&paper, u64::MAX), Ok(()));
}

/// What a gate holds (the keyring, the code it scanned) cannot make a fresh code:
/// re-dating an old code, or signing it with any other key, breaks a signature.
#[test]
fn a_screenshot_cannot_be_redated_without_the_holder_key() {
    let h = holder(7);
    let static_part = bound(5, &h);
    let old = barcode::parse(&h.show(&static_part, NOW - 60)).expect("parses");
    let proof = old.holder.expect("v2 carries a holder proof");
    // The old signature under a new time.
    let redated = barcode::shown_text(&static_part, NOW, &proof.signature);
    assert_eq!(ring().verify(&redated, NOW).map_err(|e| e.reason()), Err(Reason::BadSignature));
    // A fresh signature by somebody else's key on the same static part.
    let thief = holder(8).show(&static_part, NOW);
    assert_eq!(ring().verify(&thief, NOW).map_err(|e| e.reason()), Err(Reason::BadSignature));
    // A static part re-signed for the thief's key needs the issuer's private key.
    let mut forged = static_part.clone();
    let key_at = forged.len() - 64 - 32;
    forged[key_at..key_at + 32].copy_from_slice(holder(8).verifying_key().as_bytes());
    let forged_code = holder(8).show(&forged, NOW);
    assert_eq!(ring().verify(&forged_code, NOW).map_err(|e| e.reason()), Err(Reason::BadSignature));
}

#[test]
fn a_weak_holder_key_is_refused_at_binding() {
    let identity = ed25519_dalek::VerifyingKey::from_bytes(&[
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ])
    .expect("a curve point");
    assert!(matches!(issuer().bind(&ticket(1), &identity), Err(KeyError::WeakHolderKey)));
}

#[test]
fn prefix_and_bytes_must_name_the_same_version() {
    let h = holder(7);
    let v2 = h.show(&bound(1, &h), NOW);
    let as_v1 = v2.replacen("TX2:", "TX1:", 1);
    assert_eq!(barcode::parse(&as_v1), Err(Malformed::VersionMismatch { text: 1, bytes: 2 }.into()));
    let v1 = issuer().mint(&ticket(1));
    let as_v2 = v1.replacen("TX1:", "TX2:", 1);
    assert_eq!(barcode::parse(&as_v2), Err(Malformed::VersionMismatch { text: 2, bytes: 1 }.into()));
}

#[test]
fn a_static_part_alone_is_not_a_code() {
    let h = holder(7);
    let static_part = bound(1, &h);
    let text = format!("TX2:{}", base45::encode(&static_part));
    assert_eq!(barcode::parse(&text), Err(BarcodeError::Truncated("time shown")));
}

#[test]
fn the_largest_code_fits_the_text_limit() {
    let claims = TicketClaims {
        event_id: u64::MAX,
        ticket_id: u64::MAX,
        ticket_type_id: u32::MAX,
        flags: TicketFlags { paper: false, reentry_allowed: true },
        validity: Validity { not_before: Some(u64::MAX - 1), not_after: Some(u64::MAX) },
        seat: Some(SeatLabel::new(&"W".repeat(MAX_SEAT_LEN)).expect("seat")),
    };
    let h = holder(7);
    let code = h.show(&issuer().bind(&claims, &h.verifying_key()).expect("bind"), u64::MAX);
    println!("largest v2 code: {} characters", code.len());
    assert!(code.len() <= MAX_TEXT_LEN, "{} > {MAX_TEXT_LEN}", code.len());
    assert!(barcode::parse(&code).is_ok());
}

fn list() -> CheckInList {
    CheckInList {
        id: 1,
        event_id: 4_242,
        ticket_types: Some(BTreeSet::from([3])),
        allow_multiple_entries: false,
        allow_entry_after_exit: false,
        unknown_tickets: UnknownTicketPolicy::Reject,
        hours: entry::Hours::default(),
    }
}

#[test]
fn the_entry_decision_refuses_a_stale_code_in_and_out() {
    let h = holder(7);
    let static_part = bound(9, &h);
    let replica = ReplicaTicket { status: TicketStatus::Valid, holder: None };
    let decide = |shown: u64, direction| {
        let verified = ring().verify(&h.show(&static_part, shown), NOW);
        entry::decide(&ScanContext {
            verified: &verified,
            replica: Some(&replica),
            history: &[],
            list: &list(),
            routes: &[],
            direction,
            freshness: Freshness::default(),
            now: NOW,
        })
        .reason
    };
    assert_eq!(decide(NOW - 2, Direction::Entry), None);
    assert_eq!(decide(NOW - 45, Direction::Entry), Some(Reason::StaleCode));
    assert_eq!(decide(NOW - 45, Direction::Exit), Some(Reason::StaleCode));
}

fn claims_strategy() -> impl Strategy<Value = TicketClaims> {
    (any::<u64>(), any::<u64>(), any::<u32>(), any::<bool>(), proptest::option::of("[A-Za-z0-9 -]{1,12}")).prop_map(
        |(event_id, ticket_id, ticket_type_id, reentry_allowed, seat)| TicketClaims {
            event_id,
            ticket_id,
            ticket_type_id,
            flags: TicketFlags { paper: false, reentry_allowed },
            validity: Validity::default(),
            seat: seat.and_then(|s| SeatLabel::new(&s).ok()),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn show_then_verify_is_identity(claims in claims_strategy(), seed in 1u8.., shown in any::<u64>()) {
        let h = holder(seed);
        let code = h.show(&issuer().bind(&claims, &h.verifying_key()).expect("bind"), shown);
        prop_assert!(code.len() <= MAX_TEXT_LEN);
        let t = ring().verify(&code, NOW).expect("valid");
        prop_assert_eq!(t.claims, claims);
        prop_assert_eq!(t.shown_at, Some(shown));
    }

    #[test]
    fn any_single_character_change_is_rejected(claims in claims_strategy(), pos in any::<prop::sample::Index>(), replacement in any::<char>()) {
        let h = holder(7);
        let code = h.show(&issuer().bind(&claims, &h.verifying_key()).expect("bind"), NOW);
        let chars: Vec<char> = code.chars().collect();
        let i = pos.index(chars.len());
        prop_assume!(chars[i] != replacement);
        let mut changed = chars.clone();
        changed[i] = replacement;
        let changed: String = changed.into_iter().collect();
        prop_assume!(changed.trim() != code);
        prop_assert!(ring().verify(&changed, NOW).is_err(), "accepted {:?}", changed);
    }

    #[test]
    fn random_bytes_behind_the_v2_prefix_are_refused_with_a_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = format!("TX2:{}", base45::encode(&bytes));
        let result = ring().verify(&text, NOW);
        prop_assert!(matches!(result, Err(VerifyError::Barcode(_) | VerifyError::UnknownKey(_) | VerifyError::BadSignature)));
    }
}
