//! `tixgate-bench gate`: a gate with a 1,000,000-ticket replica of a venue
//! with four entrances, two areas and 24 check-in lists (the gate works the
//! main entrance, assigned in the manifest, so it serves 22 of them). Decision
//! and durable-scan latency against, in the same run, the bare costs they are
//! built from (one `verify_strict` + one primary-key lookup; one fsynced
//! commit), the replica import time, the manifest's growth per list, the
//! daemon's resident memory, and the camera path.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use cloud_api::tickets::batch::single_list_snapshot;
use ed25519_dalek::Signature;
use gate_agent::config::{Config, RawConfig};
use gate_agent::gate::{Gate, REPLICA_FILE};
use rusqlite::Connection;
use schema::entry::{Direction, TicketStatus, UnknownTicketPolicy};
use schema::keys::unix_seconds;
use schema::manifest::{
    AreaRecord, EntranceRecord, GateRecord, ListDoors, ListRecord, Manifest, TicketRecord, TicketTypeRecord,
    VenueLayout,
};
use schema::{Keyring, TicketClaims, TicketFlags, TicketSigner, TrustedKey, Validity, barcode, holder};
use serde_json::json;

const TICKETS: u64 = 1_000_000;
/// Tickets with real barcodes, scanned in the latency runs.
const SAMPLES: usize = 5_000;
/// Durable scans timed (each one fsync).
const DURABLE: usize = 1_000;
const EVENT: u64 = 9;
/// The venue's check-in lists.
const LISTS: u32 = 24;
/// The type of the sampled tickets: admitted at the main entrance.
const STANDING: u32 = 1;

/// Latencies in µs, sorted.
struct Latencies(Vec<f64>);

impl Latencies {
    fn sorted(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        Self(v)
    }

    fn p(&self, p: f64) -> f64 {
        let rank = ((self.0.len().saturating_sub(1)) as f64 * p).round() as usize;
        self.0.get(rank).copied().unwrap_or(f64::NAN)
    }
}

/// Runs the gate benchmark and prints its figures and JSON line.
pub fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let now = unix_seconds(time::OffsetDateTime::now_utc());
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("{e}"))?;
    let signer = TicketSigner::from_secret_bytes(&secret);
    let keyring = Keyring::new(vec![TrustedKey {
        key_id: signer.key_id(),
        key: signer.verifying_key(),
        valid_from: 0,
        valid_until: None,
    }]);
    std::fs::write(dir.path().join("keyring.json"), keyring.to_json())?;

    let started = Instant::now();
    let (manifest, codes) = build_manifest(&signer, now)?;
    let manifest_path = dir.path().join("manifest.txm");
    std::fs::write(&manifest_path, &manifest)?;
    println!(
        "built a {}-ticket manifest ({:.1} MB) and {SAMPLES} barcodes in {:.1} s",
        TICKETS,
        manifest.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let config_path = write_config(dir.path())?;
    let config = Config::load(&config_path)?;
    let mut gate = Gate::open(config)?;
    let started = Instant::now();
    gate.import(&manifest, now).context("import")?;
    let import_s = started.elapsed().as_secs_f64();
    println!("import of {TICKETS} tickets (verify + parse + one transaction): {import_s:.2} s");

    let now_ms = now * 1_000;
    // Ours and its reference alternate, sample by sample, so both see the same
    // machine: these VMs' noise comes in bursts.
    let mut bare = BareVerifyLookup::new(&keyring, &codes, &dir.path().join("state").join(REPLICA_FILE))?;
    let (mut decision, mut bare_times) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for (i, code) in codes.iter().enumerate() {
        let start = Instant::now();
        let decided = gate.decide(code, Direction::Entry, now_ms)?;
        decision.push(start.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(decided.outcome.reason.is_none(), "sample {i} rejected: {:?}", decided.outcome.reason);
        bare_times.push(bare.time(i)?);
    }
    let (decision, bare) = (Latencies::sorted(decision), Latencies::sorted(bare_times));
    let decision_ratio = decision.p(0.99) / bare.p(0.99);
    println!(
        "decision (decode + verify + replica + history + rules): p50 {:.1} µs, p99 {:.1} µs",
        decision.p(0.5),
        decision.p(0.99)
    );
    println!(
        "bare verify_strict + one primary-key lookup: p50 {:.1} µs, p99 {:.1} µs → ratio {decision_ratio:.2}",
        bare.p(0.5),
        bare.p(0.99)
    );

    let mut commit = BareCommit::new(&dir.path().join("bare-commit.db"))?;
    let (mut durable, mut commit_times) = (Vec::with_capacity(DURABLE), Vec::with_capacity(DURABLE));
    for (i, code) in codes.iter().take(DURABLE).enumerate() {
        let start = Instant::now();
        let result = gate.scan(code, Direction::Entry, now_ms + i as u64)?;
        durable.push(start.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(result.line.reason.is_none(), "durable sample {i} rejected");
        commit_times.push(commit.time()?);
    }
    let (durable, commit) = (Latencies::sorted(durable), Latencies::sorted(commit_times));
    let durable_ratio = durable.p(0.99) / commit.p(0.99);
    println!(
        "durable scan (decision + fsynced ledger commit): p50 {:.0} µs, p99 {:.0} µs",
        durable.p(0.5),
        durable.p(0.99)
    );
    println!(
        "bare fsynced SQLite commit: p50 {:.0} µs, p99 {:.0} µs → ratio {durable_ratio:.2}",
        commit.p(0.5),
        commit.p(0.99)
    );
    drop(gate);

    let rss_mb = daemon_rss_mb(&config_path, &codes)?;
    println!("resident memory of `gate-agent run` with the 1M replica (peak, VmHWM): {rss_mb:.1} MB");

    let per_list = manifest_bytes_per_list(&signer, now);
    println!("manifest growth: {per_list:.1} bytes per check-in list (with its hours, area and entrances)");

    let qr = crate::qr::measure()?;
    println!(
        "{}",
        json!({
            "decision_p99_us": decision.p(0.99),
            "decision_p50_us": decision.p(0.5),
            "bare_verify_lookup_us": bare.p(0.99),
            "decision_ratio": decision_ratio,
            "durable_p99_us": durable.p(0.99),
            "durable_p50_us": durable.p(0.5),
            "bare_commit_us": commit.p(0.99),
            "durable_ratio": durable_ratio,
            "import_1m_s": import_s,
            "lists": LISTS,
            "manifest_bytes_per_list": per_list,
            "rss_mb": rss_mb,
            "decode_rate": qr["decode_rate"],
            "frame_1280x720_ms": qr["frame_1280x720_ms"],
        })
    );
    Ok(())
}

/// A signed snapshot of `TICKETS` tickets, and real barcodes for the first `SAMPLES`.
fn build_manifest(signer: &TicketSigner, now: u64) -> anyhow::Result<(Vec<u8>, Vec<String>)> {
    let mut codes = Vec::with_capacity(SAMPLES);
    let mut tickets = Vec::with_capacity(TICKETS as usize);
    for ticket_id in 1..=TICKETS {
        // Only the sampled tickets need a barcode; the rest get a stand-in
        // signature so every row carries a sealed name of realistic size.
        let signature = if codes.len() < SAMPLES {
            let code = signer.mint(&TicketClaims {
                event_id: EVENT,
                ticket_id,
                ticket_type_id: STANDING,
                flags: TicketFlags::default(),
                validity: Validity::default(),
                seat: None,
            });
            let sig = barcode::parse(&code)?.signature;
            codes.push(code);
            sig
        } else {
            let mut sig = [0u8; 64];
            sig[..8].copy_from_slice(&ticket_id.to_le_bytes());
            sig
        };
        let nonce = [(ticket_id & 0xff) as u8; holder::NONCE_LEN];
        // The sampled tickets are admitted here; the rest are of every type.
        let ticket_type_id = if ticket_id <= SAMPLES as u64 { STANDING } else { 1 + (ticket_id % 3) as u32 };
        tickets.push(TicketRecord {
            ticket_id,
            event_id: EVENT,
            ticket_type_id,
            status: TicketStatus::Valid,
            sealed_holder: Some(holder::seal(&signature, ticket_id, &format!("Guest {ticket_id}"), nonce)),
        });
    }
    let mut manifest = single_list_snapshot(1, 1, EVENT, STANDING, now, tickets);
    (manifest.ticket_types, manifest.lists, manifest.layout) = venue_doors(LISTS, now);
    Ok((manifest.sign(signer), codes))
}

/// The benchmark's venue: entrances Main (1), VIP (2), Staff (3), East (4);
/// areas Floor and Balcony; the event's General (Standing, at Main and East),
/// VIP and Crew lists, and `lists - 3` lists of other events at Main (a
/// season's worth). The gate `bench` is assigned to Main.
fn venue_doors(lists: u32, now: u64) -> (Vec<TicketTypeRecord>, Vec<ListRecord>, VenueLayout) {
    let types = ["Standing", "VIP", "Crew"]
        .iter()
        .zip(1..)
        .map(|(name, id)| TicketTypeRecord { id, event_id: EVENT, name: (*name).into() })
        .collect();
    let list = |id: u32, event_id: u64, types: Option<Vec<u32>>, area: u32, entrance_ids: Vec<u32>| ListRecord {
        id,
        name: format!("List {id}"),
        event_id,
        ticket_types: types,
        allow_multiple_entries: false,
        allow_entry_after_exit: true,
        unknown_tickets: UnknownTicketPolicy::Reject,
        doors: ListDoors {
            opens_at: Some(now - 3_600),
            closes_at: Some(now + 6 * 3_600),
            scan_exits: true,
            area_id: Some(area),
            entrance_ids,
        },
    };
    let mut records = vec![
        list(1, EVENT, Some(vec![STANDING]), 1, vec![1, 4]),
        list(2, EVENT, Some(vec![2]), 2, vec![2]),
        list(3, EVENT, Some(vec![3]), 1, vec![3]),
    ];
    records.extend((4..=lists).map(|id| list(id, EVENT + u64::from(id), None, 1 + id % 2, vec![1])));
    let layout = VenueLayout {
        entrances: ["Main", "VIP", "Staff", "East"]
            .iter()
            .zip(1..)
            .map(|(name, id)| EntranceRecord { id, name: (*name).into() })
            .collect(),
        areas: vec![
            AreaRecord { id: 1, name: "Floor".into(), capacity: Some(20_000) },
            AreaRecord { id: 2, name: "Balcony".into(), capacity: Some(2_000) },
        ],
        gates: vec![GateRecord { gate_id: "bench".into(), entrance_id: Some(1), revoked: false }],
    };
    (types, records, layout)
}

/// What one more check-in list adds to a signed manifest, averaged over 100.
fn manifest_bytes_per_list(signer: &TicketSigner, now: u64) -> f64 {
    let size = |lists: u32| {
        let (ticket_types, lists, layout) = venue_doors(lists, now);
        let manifest = Manifest {
            venue_id: 1,
            version: 1,
            base_version: None,
            issued_at: now,
            ticket_types,
            lists,
            layout,
            tickets: Vec::new(),
        };
        manifest.sign(signer).len() as f64
    };
    (size(103) - size(3)) / 100.0
}

fn write_config(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("gate.toml");
    std::fs::write(&path, "gate_id = \"bench\"\nvenue_id = 1\nstate_dir = \"state\"\nkeyring = \"keyring.json\"\n")?;
    // Check the file parses the way the daemon will read it.
    let raw: RawConfig = toml::from_str(&std::fs::read_to_string(&path)?)?;
    Config::check(raw, dir).map_err(|(key, msg)| anyhow::anyhow!("{key}: {msg}"))?;
    Ok(path)
}

/// The reference for a decision: `verify_strict` of the barcode's own bytes plus
/// one prepared primary-key lookup in the same replica file.
struct BareVerifyLookup {
    key: ed25519_dalek::VerifyingKey,
    prepared: Vec<(Vec<u8>, Signature, u64)>,
    conn: Connection,
}

impl BareVerifyLookup {
    fn new(keyring: &Keyring, codes: &[String], replica: &Path) -> anyhow::Result<Self> {
        let key = keyring.keys().first().context("a key")?.key;
        let prepared = codes
            .iter()
            .map(|c| {
                let p = barcode::parse(c)?;
                Ok((barcode::signing_message(&p.signed_part), Signature::from_bytes(&p.signature), p.claims.ticket_id))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { key, prepared, conn: Connection::open(replica)? })
    }

    fn time(&mut self, i: usize) -> anyhow::Result<f64> {
        let (msg, sig, id) = self.prepared.get(i).context("sample")?;
        let mut stmt = self.conn.prepare_cached("SELECT status, sealed_holder FROM tickets WHERE ticket_id = ?1")?;
        let start = Instant::now();
        self.key.verify_strict(msg, sig)?;
        let _: (i64, Option<Vec<u8>>) = stmt.query_row([*id as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(start.elapsed().as_secs_f64() * 1e6)
    }
}

/// The reference for a durable scan: one INSERT committed with WAL +
/// `synchronous=FULL` (fsync), in the same file system.
struct BareCommit {
    conn: Connection,
}

impl BareCommit {
    fn new(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL);",
        )?;
        Ok(Self { conn })
    }

    fn time(&mut self) -> anyhow::Result<f64> {
        let mut stmt = self.conn.prepare_cached("INSERT INTO t (payload) VALUES (?1)")?;
        let start = Instant::now();
        stmt.execute([vec![0u8; 96]])?;
        Ok(start.elapsed().as_secs_f64() * 1e6)
    }
}

/// Peak resident memory of the real daemon serving the 1M replica while it
/// decides a burst of scans.
fn daemon_rss_mb(config: &Path, codes: &[String]) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let gate_agent = exe.with_file_name("gate-agent");
    anyhow::ensure!(gate_agent.exists(), "build gate-agent first: cargo build --release --bin gate-agent");
    let mut child = Command::new(&gate_agent)
        .args(["run", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let stdout = child.stdout.take().context("stdout")?;
    // Rejections (already used) and fresh entries both read the replica. Fed from
    // a thread, so the daemon's output never backs up into its input.
    let burst: Vec<String> = codes.iter().skip(DURABLE - 500).take(2_000).cloned().collect();
    let expected = burst.len();
    let feeder = std::thread::spawn(move || -> std::io::Result<std::process::ChildStdin> {
        for code in &burst {
            writeln!(stdin, "{code}")?;
        }
        stdin.flush()?;
        Ok(stdin)
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut decided = 0;
    while decided < expected {
        let line = lines.next().context("daemon output ended early")??;
        decided += usize::from(line.contains("\"decision\""));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
    let stdin = feeder.join().map_err(|_| anyhow::anyhow!("feeder panicked"))??;
    drop(stdin);
    let _ = child.wait_timeout_or_kill(Duration::from_secs(10));
    let hwm_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmHWM in /proc status")?;
    Ok(hwm_kb / 1024.0)
}

trait WaitOrKill {
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> std::io::Result<()>;
}

impl WaitOrKill for std::process::Child {
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()?;
        self.wait().map(|_| ())
    }
}
