//! Barcode v1 end to end inside the pure core: mint, parse, verify, and every
//! way a code can be wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests and benches fail loudly")]

use proptest::prelude::*;
use schema::barcode::{self, BarcodeError, MAX_TEXT_LEN, Malformed};
use schema::{Keyring, Reason, SeatLabel, TicketClaims, TicketFlags, TicketSigner, TrustedKey, Validity, VerifyError};

const NOW: u64 = 1_780_000_000;

fn signer(seed: u8) -> TicketSigner {
    TicketSigner::from_secret_bytes(&[seed; 32])
}

fn ring_of(signers: &[&TicketSigner]) -> Keyring {
    Keyring::new(
        signers
            .iter()
            .map(|s| TrustedKey { key_id: s.key_id(), key: s.verifying_key(), valid_from: 0, valid_until: None })
            .collect(),
    )
}

fn plain_ticket(ticket_id: u64) -> TicketClaims {
    TicketClaims {
        event_id: 4_242,
        ticket_id,
        ticket_type_id: 3,
        flags: TicketFlags::default(),
        validity: Validity::default(),
        seat: None,
    }
}

fn claims_strategy() -> impl Strategy<Value = TicketClaims> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<(bool, bool)>(),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of("[A-Za-z0-9 ÄÖÜ-]{1,10}"),
    )
        .prop_map(|(event_id, ticket_id, ticket_type_id, (paper, reentry_allowed), a, b, seat)| {
            let (not_before, not_after) = match (a, b) {
                (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                other => other,
            };
            TicketClaims {
                event_id,
                ticket_id,
                ticket_type_id,
                flags: TicketFlags { paper, reentry_allowed },
                validity: Validity { not_before, not_after },
                seat: seat.and_then(|s| SeatLabel::new(&s).ok()),
            }
        })
}

fn verify(ring: &Keyring, code: &str) -> Result<TicketClaims, Reason> {
    ring.verify(code, NOW).map(|t| t.claims).map_err(|e| e.reason())
}

#[test]
fn a_minted_ticket_verifies_with_its_claims() {
    let s = signer(1);
    let claims = plain_ticket(77);
    let code = s.mint(&claims);
    assert!(code.starts_with("TX1:"), "{code}");
    assert_eq!(verify(&ring_of(&[&s]), &code), Ok(claims));
}

#[test]
fn scanner_decorations_do_not_change_the_result() {
    let s = signer(1);
    let code = s.mint(&plain_ticket(5));
    let ring = ring_of(&[&s]);
    for decorated in [format!("{code}\r\n"), format!("]Q1{code}"), format!("]Q2\\000026{code}\n"), format!("  {code} ")]
    {
        assert_eq!(verify(&ring, &decorated), Ok(plain_ticket(5)), "{decorated:?}");
    }
}

#[test]
fn plain_tickets_stay_short() {
    let s = signer(1);
    let mut big = plain_ticket(u64::MAX);
    big.event_id = u64::from(u32::MAX);
    big.ticket_type_id = u32::MAX;
    let code = s.mint(&big);
    println!("plain ticket with large ids: {} characters", code.len());
    // 154 alphanumeric characters is what a version-6 QR code holds at level M.
    assert!(code.len() <= 154, "{} chars", code.len());
    let typical = s.mint(&plain_ticket(9_876_543_210));
    println!("plain ticket with a 10-digit ticket id: {} characters", typical.len());
    assert!(typical.len() <= 122, "a typical ticket no longer fits version 5: {} chars", typical.len());
    let mut everything = big;
    everything.validity = Validity { not_before: Some(u64::MAX - 1), not_after: Some(u64::MAX) };
    everything.seat = SeatLabel::new(&"S".repeat(barcode::MAX_SEAT_LEN)).ok();
    let longest = s.mint(&everything);
    println!("longest possible ticket: {} characters", longest.len());
    assert!(longest.len() <= MAX_TEXT_LEN);
    assert_eq!(verify(&ring_of(&[&s]), &longest), Ok(everything));
}

#[test]
fn tampered_truncated_resigned_and_random_codes_are_rejected_with_the_right_reason() {
    let good = signer(1);
    let other = signer(2);
    let ring = ring_of(&[&good]);
    let code = good.mint(&plain_ticket(9));

    // Claims changed and re-encoded without the key.
    let mut forged = barcode::parse(&code).expect("parses");
    forged.claims.ticket_id = 10;
    let forged_part = barcode::signed_part(forged.key_id, &forged.claims);
    assert_eq!(verify(&ring, &barcode::to_text(&forged_part, &forged.signature)), Err(Reason::BadSignature));

    // Re-signed by a key the gate does not trust, under its own id...
    assert_eq!(verify(&ring, &other.mint(&plain_ticket(9))), Err(Reason::UnknownKey));
    // ...or claiming the trusted key's id.
    let impostor_part = barcode::signed_part(good.key_id(), &plain_ticket(9));
    let impostor_sig = {
        use ed25519_dalek::Signer;
        ed25519_dalek::SigningKey::from_bytes(&[2; 32]).sign(&barcode::signing_message(&impostor_part)).to_bytes()
    };
    assert_eq!(verify(&ring, &barcode::to_text(&impostor_part, &impostor_sig)), Err(Reason::BadSignature));

    // Every truncation.
    for len in 0..code.len() {
        let cut = code.get(..len).expect("ascii");
        assert!(verify(&ring, cut).is_err(), "truncated to {len}: {cut}");
    }
    let parsed = barcode::parse(&code).expect("parses");
    let short_sig = barcode::to_text(&parsed.signed_part, &[0; 64]);
    let without_last_byte = short_sig.get(..short_sig.len() - 3).expect("ascii");
    assert!(matches!(barcode::parse(without_last_byte), Err(BarcodeError::Truncated("signature"))));

    // Not ours at all.
    for junk in ["", "hello", "https://tixgate.example/t/1", "TX1:", "TX1:00", "TX9:ABC", "4006381333931"] {
        assert!(verify(&ring, junk).is_err(), "{junk:?}");
    }
    assert_eq!(verify(&ring, "TX9:ABC"), Err(Reason::UnsupportedVersion));
}

#[test]
fn a_retired_key_is_reported_as_key_expired_with_the_ticket() {
    let s = signer(1);
    let code = s.mint(&plain_ticket(9));
    let mut ring = ring_of(&[&s]);
    assert!(ring.retire(s.key_id(), NOW - 1));
    let err = ring.verify(&code, NOW).expect_err("retired");
    assert_eq!(err.reason(), Reason::KeyExpired);
    assert_eq!(err.ticket().map(|t| t.claims.ticket_id), Some(9));
    assert!(ring.verify(&code, NOW - 1).is_ok(), "still valid up to and including the retirement time");
}

#[test]
fn keys_rotate_old_and_new_tickets_both_verify() {
    let old = signer(1);
    let new = signer(2);
    let ring = ring_of(&[&old, &new]);
    assert!(ring.verify(&old.mint(&plain_ticket(1)), NOW).is_ok());
    assert!(ring.verify(&new.mint(&plain_ticket(2)), NOW).is_ok());
}

#[test]
fn event_and_time_checks_use_inclusive_edges() {
    let s = signer(1);
    let mut claims = plain_ticket(1);
    claims.validity = Validity { not_before: Some(100), not_after: Some(200) };
    let ticket = ring_of(&[&s]).verify(&s.mint(&claims), NOW).expect("valid");
    let check = |event, now| schema::check_event_and_time(&ticket, event, schema::Freshness::default(), now);
    assert_eq!(check(Some(4_242), 100), Ok(()));
    assert_eq!(check(None, 200), Ok(()));
    assert_eq!(check(Some(4_242), 99), Err(Reason::InvalidTime));
    assert_eq!(check(Some(4_242), 201), Err(Reason::InvalidTime));
    assert_eq!(check(Some(1), 150), Err(Reason::WrongEvent));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_then_decode_is_identity(claims in claims_strategy()) {
        let s = signer(3);
        let code = s.mint(&claims);
        prop_assert!(code.len() <= MAX_TEXT_LEN);
        let ticket = ring_of(&[&s]).verify(&code, NOW);
        prop_assert_eq!(ticket.map(|t| t.claims), Ok(claims));
    }

    #[test]
    fn any_single_character_change_is_rejected(claims in claims_strategy(), pos in any::<prop::sample::Index>(), replacement in any::<char>()) {
        let s = signer(3);
        let code = s.mint(&claims);
        let chars: Vec<char> = code.chars().collect();
        let i = pos.index(chars.len());
        prop_assume!(chars[i] != replacement);
        let mut changed = chars.clone();
        changed[i] = replacement;
        let changed: String = changed.into_iter().collect();
        // Whitespace at either end is trimmed by design: the code itself is unchanged.
        prop_assume!(changed.trim() != code);
        prop_assert!(ring_of(&[&s]).verify(&changed, NOW).is_err(), "accepted {:?}", changed);
    }

    #[test]
    fn any_string_is_parsed_or_refused_without_panic(input in ".{0,600}") {
        let _ = barcode::parse(&input);
    }

    #[test]
    fn base45_garbage_after_the_prefix_never_verifies(body in "[0-9A-Z $%*+./:-]{0,300}") {
        let s = signer(3);
        let result = ring_of(&[&s]).verify(&format!("TX1:{body}"), NOW);
        prop_assert!(result.is_err());
    }

    #[test]
    fn a_version_byte_other_than_the_prefix_names_is_malformed_never_unsupported(claims in claims_strategy(), version in any::<u8>()) {
        prop_assume!(version != 1);
        let code = signer(3).mint(&claims);
        let mut bytes = base45::decode(&code["TX1:".len()..]).expect("a minted code is Base45");
        bytes[0] = version;
        let changed = format!("TX1:{}", base45::encode(&bytes));
        let expected = BarcodeError::Malformed(Malformed::VersionMismatch { text: 1, bytes: version });
        prop_assert_eq!(barcode::parse(&changed).err(), Some(expected));
        prop_assert_eq!(verify(&ring_of(&[&signer(3)]), &changed), Err(Reason::Malformed));
    }

    #[test]
    fn random_bytes_behind_the_prefix_are_refused_with_a_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = format!("TX1:{}", base45::encode(&bytes));
        let result = ring_of(&[&signer(3)]).verify(&text, NOW);
        prop_assert!(matches!(result, Err(VerifyError::Barcode(_) | VerifyError::UnknownKey(_) | VerifyError::BadSignature)));
        // Garbage behind a known prefix never asks staff to update the gate.
        prop_assert_ne!(result.err().map(|e| e.reason()), Some(Reason::UnsupportedVersion));
    }
}
