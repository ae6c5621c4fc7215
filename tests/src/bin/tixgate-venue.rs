//! `tixgate-venue`: the main job of the README, run on one machine with embedded
//! defaults. For now it is the barcode round trip — issuer keys, minted tickets,
//! QR images read back through the gate's camera path, offline decisions — and it
//! grows into the whole-venue demo.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cloud_api::{keystore, qr_render};
use gate_agent::qr::{LumaFrame, QrReader};
use schema::keys::unix_seconds;
use schema::{Decision, SeatLabel, TicketClaims, TicketFlags, TicketSigner, Validity, check_offline};
use time::OffsetDateTime;

/// Run the tixgate venue demo.
#[derive(Debug, Parser)]
#[command(name = "tixgate-venue", version, about)]
struct Args {
    /// Keep keys and QR images in this directory instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// One ticket presented at the gate, and what the gate must answer.
struct Presentation {
    label: &'static str,
    code: String,
    expected: Option<&'static str>,
}

const EVENT: u64 = 2026;
const DAY: u64 = 86_400;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tixgate-venue: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<bool> {
    let temp = tempfile::tempdir()?;
    let kept = args.keep.is_some();
    let dir = args.keep.unwrap_or_else(|| temp.path().to_owned());
    let now = unix_seconds(OffsetDateTime::now_utc());
    let signer = keystore::generate(&dir.join("keys"), now - DAY).context("generating issuer keys")?;
    let ring = keystore::read_keyring(&dir.join("keys").join(keystore::KEYRING_FILE))?;
    println!("issuer key {} generated; gates get only its public keyring", signer.key_id());

    let presentations = presentations(&signer, now);
    let reader = QrReader::default();
    let mut all_as_expected = true;
    println!("\n{:<34} {:>5} {:>4}  {:<8} {:<16} result", "ticket", "chars", "QR v", "decision", "reason");
    for (i, p) in presentations.iter().enumerate() {
        let png = dir.join(format!("ticket-{i}.png"));
        qr_render::write_file(&p.code, &png)?;
        let version = qr_render::qr_version(&p.code)?;
        let seen = reader.decode(&LumaFrame::load(&png)?).context("camera path read nothing")?;
        let line = check_offline(&ring, &seen, Some(EVENT), now);
        let reason = line.reason.map(|r| r.code());
        let ok = seen == p.code && reason == p.expected;
        all_as_expected &= ok;
        let decision = if line.decision == Decision::Accept { "ACCEPT" } else { "REJECT" };
        println!(
            "{:<34} {:>5} {:>4}  {:<8} {:<16} {}",
            p.label,
            p.code.len(),
            version,
            decision,
            reason.unwrap_or("-"),
            if ok { "as expected" } else { "UNEXPECTED" }
        );
    }
    if kept {
        println!("\nkeys and QR images kept in {}", dir.display());
    }
    println!("{}", if all_as_expected { "all decisions as expected" } else { "SOME DECISIONS WERE WRONG" });
    Ok(all_as_expected)
}

fn presentations(signer: &TicketSigner, now: u64) -> Vec<Presentation> {
    let ticket = |ticket_id, event_id| TicketClaims {
        event_id,
        ticket_id,
        ticket_type_id: 1,
        flags: TicketFlags::default(),
        validity: Validity::default(),
        seat: None,
    };
    let seated = TicketClaims {
        seat: SeatLabel::new("BLOCK C ROW 12 SEAT 4").ok(),
        validity: Validity { not_before: Some(now - DAY), not_after: Some(now + DAY) },
        ..ticket(1_000_002, EVENT)
    };
    let expired = TicketClaims {
        validity: Validity { not_before: Some(now - 3 * DAY), not_after: Some(now - 2 * DAY) },
        ..ticket(1_000_003, EVENT)
    };
    let good = signer.mint(&ticket(1_000_001, EVENT));
    let mut tampered: Vec<char> = good.chars().collect();
    if let Some(c) = tampered.get_mut(20) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    let forger = TicketSigner::from_secret_bytes(&[0x66; 32]);
    vec![
        Presentation { label: "general admission", code: good.clone(), expected: None },
        Presentation { label: "seated, valid today", code: signer.mint(&seated), expected: None },
        Presentation {
            label: "ticket for another event",
            code: signer.mint(&ticket(1_000_004, 1999)),
            expected: Some("wrong_event"),
        },
        Presentation {
            label: "valid the day before yesterday",
            code: signer.mint(&expired),
            expected: Some("invalid_time"),
        },
        Presentation {
            label: "one character altered",
            code: tampered.into_iter().collect(),
            expected: Some("bad_signature"),
        },
        Presentation {
            label: "signed by a forger's key",
            code: forger.mint(&ticket(1_000_001, EVENT)),
            expected: Some("unknown_key"),
        },
        Presentation { label: "cut short", code: good.chars().take(60).collect(), expected: Some("malformed") },
    ]
}
