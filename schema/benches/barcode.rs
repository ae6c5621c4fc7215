//! Criterion: decode + verify of one barcode against the bare Ed25519 check of
//! the same bytes, measured in the same run; prints the ratio and a JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests and benches fail loudly")]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::Criterion;
use ed25519_dalek::Signature;
use schema::barcode;
use schema::{Keyring, TicketClaims, TicketFlags, TicketSigner, TrustedKey, Validity};

const GROUP: &str = "barcode_v1";

fn setup() -> (String, Keyring) {
    let signer = TicketSigner::from_secret_bytes(&[7; 32]);
    let claims = TicketClaims {
        event_id: 1_001,
        ticket_id: 123_456_789,
        ticket_type_id: 4,
        flags: TicketFlags::default(),
        validity: Validity::default(),
        seat: None,
    };
    let ring = Keyring::new(vec![TrustedKey {
        key_id: signer.key_id(),
        key: signer.verifying_key(),
        valid_from: 0,
        valid_until: None,
    }]);
    (signer.mint(&claims), ring)
}

fn bench(c: &mut Criterion) {
    let (code, ring) = setup();
    let parsed = barcode::parse(&code).expect("bench barcode parses");
    let message = barcode::signing_message(&parsed.signed_part);
    let signature = Signature::from_bytes(&parsed.signature);
    let key = ring.keys().first().expect("one key").key;

    let mut group = c.benchmark_group(GROUP);
    group.bench_function("decode_verify", |b| {
        b.iter(|| ring.verify(black_box(&code), black_box(1_800_000_000)).expect("valid"))
    });
    group.bench_function("bare_verify_strict", |b| {
        b.iter(|| key.verify_strict(black_box(&message), black_box(&signature)).expect("valid"))
    });
    group.bench_function("bare_verify", |b| {
        b.iter(|| {
            use ed25519_dalek::Verifier;
            key.verify(black_box(&message), black_box(&signature)).expect("valid")
        })
    });
    group.bench_function("decode_only", |b| b.iter(|| barcode::parse(black_box(&code)).expect("parses")));
    group.finish();
}

/// Mean time in ns of a finished benchmark, from criterion's own estimates.
fn mean_ns(name: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = dir.join("criterion").join(GROUP).join(name).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    let names = ["decode_verify", "bare_verify_strict", "bare_verify", "decode_only"];
    let [ours, strict, plain, decode] = names.map(mean_ns);
    let (Some(ours), Some(strict), Some(plain), Some(decode)) = (ours, strict, plain, decode) else {
        return; // `--list` or a filtered run: nothing to compare.
    };
    println!(
        "decode+verify {:.1} µs, bare verify_strict {:.1} µs, bare verify {:.1} µs, decode alone {:.2} µs",
        ours / 1e3,
        strict / 1e3,
        plain / 1e3,
        decode / 1e3
    );
    println!("ratio to verify_strict (the same check): {:.3}; to plain verify: {:.3}", ours / strict, ours / plain);
    println!(
        "{{\"decode_verify_us\":{:.2},\"bare_verify_strict_us\":{:.2},\"bare_verify_us\":{:.2},\"decode_us\":{:.3},\"ratio\":{:.3},\"ratio_plain\":{:.3}}}",
        ours / 1e3,
        strict / 1e3,
        plain / 1e3,
        decode / 1e3,
        ours / strict,
        ours / plain
    );
}
