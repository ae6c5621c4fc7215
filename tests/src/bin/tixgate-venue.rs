//! `tixgate-venue`: the main job of the README, run on one machine with embedded
//! defaults. For now it is one offline gate: issuer keys, tickets and their signed
//! manifest, the gate's replica, and a queue of people whose QR codes are read
//! back through the camera path, decided, and recorded in the ledger. It grows
//! into the whole-venue demo (hub, several gates, the cloud).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cloud_api::batch::single_list_snapshot;
use cloud_api::{keystore, qr_render};
use gate_agent::config::{Config, RawConfig};
use gate_agent::gate::Gate;
use gate_agent::qr::{LumaFrame, QrReader};
use schema::entry::{Direction, TicketStatus};
use schema::keys::unix_seconds;
use schema::manifest::TicketRecord;
use schema::{SeatLabel, TicketClaims, TicketFlags, TicketSigner, Validity, barcode, holder};
use time::OffsetDateTime;

/// Run the tixgate venue demo.
#[derive(Debug, Parser)]
#[command(name = "tixgate-venue", version, about)]
struct Args {
    /// Keep keys, QR images and the gate's state in this directory instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// One person at the gate, and what the gate must answer.
struct Presentation {
    label: &'static str,
    code: String,
    expected: Option<&'static str>,
}

const EVENT: u64 = 2026;
const VENUE: u64 = 1;
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
    println!("issuer key {} generated; the gate gets only its public keyring", signer.key_id());

    let (queue, tickets) = queue(&signer, now)?;
    let mut gate = open_gate(&dir)?;
    let applied = gate.import(&single_list_snapshot(VENUE, 1, EVENT, 1, now, tickets).sign(&signer), now)?;
    println!("gate north-1: replica at version {} with {} tickets (one revoked)", applied.version, applied.tickets);

    let reader = QrReader::default();
    let mut all_as_expected = true;
    println!("\n{:<34} {:>4}  {:<8} {:<18} {:<20} result", "at the gate", "QR v", "decision", "reason", "shown");
    for (i, p) in queue.iter().enumerate() {
        let png = dir.join(format!("person-{i}.png"));
        qr_render::write_file(&p.code, &png)?;
        let version = qr_render::qr_version(&p.code)?;
        let seen = reader.decode(&LumaFrame::load(&png)?).context("camera path read nothing")?;
        let now_ms = now * 1_000 + i as u64;
        let result = gate.scan(&seen, Direction::Entry, now_ms)?;
        let reason = result.line.reason.map(|r| r.code());
        let ok = seen == p.code && reason == p.expected;
        all_as_expected &= ok;
        let shown = result.outcome.display.holder.clone().unwrap_or_else(|| "-".into());
        println!(
            "{:<34} {:>4}  {:<8} {:<18} {:<20} {}",
            p.label,
            version,
            if reason.is_none() { "ACCEPT" } else { "REJECT" },
            reason.unwrap_or("-"),
            shown,
            if ok { "as expected" } else { "UNEXPECTED" }
        );
    }
    let stored = gate.ledger().since(0)?.len();
    println!("\nscans in the gate's ledger (fsynced before each answer): {stored} of {}", queue.len());
    all_as_expected &= stored == queue.len();
    if kept {
        println!("keys, QR images and gate state kept in {}", dir.display());
    }
    println!("{}", if all_as_expected { "all decisions as expected" } else { "SOME DECISIONS WERE WRONG" });
    Ok(all_as_expected)
}

fn open_gate(dir: &std::path::Path) -> anyhow::Result<Gate> {
    let raw: RawConfig = toml::from_str(
        "gate_id = \"north-1\"\nvenue_id = 1\nlist_id = 1\nstate_dir = \"gate\"\nkeyring = \"keys/keyring.json\"\n",
    )?;
    let config = Config::check(raw, dir).map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
    Ok(Gate::open(config)?)
}

fn claims(ticket_id: u64, event_id: u64) -> TicketClaims {
    TicketClaims {
        event_id,
        ticket_id,
        ticket_type_id: 1,
        flags: TicketFlags::default(),
        validity: Validity::default(),
        seat: None,
    }
}

/// The people in the queue, and the venue's tickets (id, barcode, status, holder).
fn queue(signer: &TicketSigner, now: u64) -> anyhow::Result<(Vec<Presentation>, Vec<TicketRecord>)> {
    let seated = TicketClaims {
        seat: SeatLabel::new("BLOCK C ROW 12 SEAT 4").ok(),
        validity: Validity { not_before: Some(now - DAY), not_after: Some(now + DAY) },
        ..claims(1_000_002, EVENT)
    };
    let expired = TicketClaims {
        validity: Validity { not_before: Some(now - 3 * DAY), not_after: Some(now - 2 * DAY) },
        ..claims(1_000_003, EVENT)
    };
    let sold = [
        (signer.mint(&claims(1_000_001, EVENT)), TicketStatus::Valid, "Ada Lovelace"),
        (signer.mint(&seated), TicketStatus::Valid, "Grace Hopper"),
        (signer.mint(&expired), TicketStatus::Valid, "Alan Turing"),
        (signer.mint(&claims(1_000_005, EVENT)), TicketStatus::Revoked, "Refunded Buyer"),
    ];
    let mut tickets = Vec::new();
    for (code, status, name) in &sold {
        let parsed = barcode::parse(code)?;
        let mut nonce = [0u8; holder::NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("{e}"))?;
        let id = parsed.claims.ticket_id;
        tickets.push(TicketRecord {
            ticket_id: id,
            event_id: EVENT,
            ticket_type_id: 1,
            status: *status,
            sealed_holder: Some(holder::seal(&parsed.signature, id, name, nonce)),
        });
    }
    let first = sold[0].0.clone();
    let mut altered: Vec<char> = first.chars().collect();
    if let Some(c) = altered.get_mut(20) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    let forger = TicketSigner::from_secret_bytes(&[0x66; 32]);
    let queue = vec![
        Presentation { label: "general admission", code: first.clone(), expected: None },
        Presentation {
            label: "a screenshot of the same ticket",
            code: first.clone(),
            expected: Some("already_redeemed"),
        },
        Presentation { label: "seated, valid today", code: sold[1].0.clone(), expected: None },
        Presentation {
            label: "valid the day before yesterday",
            code: sold[2].0.clone(),
            expected: Some("invalid_time"),
        },
        Presentation { label: "refunded ticket", code: sold[3].0.clone(), expected: Some("revoked") },
        Presentation {
            label: "ticket for another event",
            code: signer.mint(&claims(1_000_004, 1999)),
            expected: Some("wrong_event"),
        },
        Presentation {
            label: "one character altered",
            code: altered.into_iter().collect(),
            expected: Some("bad_signature"),
        },
        Presentation {
            label: "signed by a forger's key",
            code: forger.mint(&claims(1_000_001, EVENT)),
            expected: Some("unknown_key"),
        },
        Presentation { label: "cut short", code: first.chars().take(60).collect(), expected: Some("malformed") },
    ];
    Ok((queue, tickets))
}
