//! `tixgate-venue`: the README's main job — a whole venue on one machine with
//! embedded defaults. The real daemons run as processes in a temp dir:
//! `cloud-api` on SQLite sets up a main and a VIP entrance, the floor and the
//! lounge, and sells 5,000 Standing and 40 VIP tickets through its API (test
//! gateway); `sync-hub` with its embedded broker serves six gates the cloud
//! assigned to their entrances (four at Main, two on MQTT and two on QUIC; one
//! at VIP; one exit gate at Main), and a crowd comes through the doors — valid
//! tickets, QR images read back by the gate's decoder, VIP guests at the main
//! door sent on to the VIP entrance, the same ticket at two gates at once,
//! screenshots, refunded, forged, altered, cut-short and other-night tickets,
//! people stepping out and back in — while the hub is SIGKILLed mid-way and
//! restarted. The daemons are this binary started
//! under their names, so one build makes everything the demo runs. It ends with a table and fails
//! unless every answer was right, each area's count on the hub's dashboard is
//! right and no scan was lost on the way to the cloud.

mod crowd;
mod sale;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use crowd::{Answer, Expect, Gate, Kind, Person, Tally};
use indicatif::{ProgressBar, ProgressStyle};
use sale::{Sold, Ticket};
use tixgate_tests::venue_fixture::{Daemon, free_port, free_udp_port, http_get};
use tixgate_tests::{run, run_as_daemon, serve_daemons_from_this_binary};

/// Run a whole venue on this machine: the cloud sells, the hub and four gates
/// let the crowd in, the hub fails mid-way, and every scan reaches the cloud.
#[derive(Debug, Parser)]
#[command(name = "tixgate-venue", version, about)]
struct Args {
    /// Keep the venue running (dashboard, cloud, gates) after the night, until Ctrl-C.
    #[arg(long)]
    keep: bool,
    /// Put the venue's files (keys, databases, logs) here instead of a temporary folder.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Tickets sold for tonight's show (at least 500).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(500..=50_000))]
    tickets: u32,
}

/// One of the venue's gates.
pub struct GateSpec {
    /// Its id.
    pub id: &'static str,
    /// `mqtt` or `quic`.
    pub transport: &'static str,
    /// The entrance the cloud assigns it to.
    pub entrance: &'static str,
    /// Scans people out.
    pub exit: bool,
}

const fn gate(id: &'static str, transport: &'static str, entrance: &'static str, exit: bool) -> GateSpec {
    GateSpec { id, transport, entrance, exit }
}

/// The gates: the crowd's four at Main first, then the VIP gate and the exit gate.
pub const ALL_GATES: [GateSpec; 6] = [
    gate("north-1", "mqtt", sale::MAIN, false),
    gate("north-2", "mqtt", sale::MAIN, false),
    gate("south-1", "quic", sale::MAIN, false),
    gate("south-2", "quic", sale::MAIN, false),
    gate("vip-1", "mqtt", sale::VIP, false),
    gate("out-1", "quic", sale::MAIN, true),
];
/// The crowd's gates at the main entrance: the first of [`ALL_GATES`].
const CROWD_GATES: usize = 4;
/// The VIP entrance's gate and the exit gate, in [`ALL_GATES`].
const VIP_GATE: usize = 4;
const EXIT_GATE: usize = 5;
/// VIP tickets sold for tonight.
const VIP_TICKETS: usize = 40;
/// People who step out after the hub is back, and how many of them come back in.
const STEPPING_OUT: usize = 100;
const BACK_IN: usize = 60;
/// Orders refunded before the doors open (ten tickets each).
const REFUNDED_ORDERS: usize = 10;
/// Tickets sold for tomorrow's show; some of them come tonight.
const TOMORROW: usize = 40;
/// Pairs at two gates at once while the hub is up, and while it is down.
const PAIRS_ONLINE: usize = 40;
const PAIRS_OFFLINE: usize = 10;
/// How long set-up steps (replicas, links, reconciliation, upload) may take.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);

fn main() -> ExitCode {
    // The daemons it starts are this binary under their names (links in the
    // venue's `bin/`), so `cargo run --bin tixgate-venue` is one build.
    if let Some(code) = run_as_daemon() {
        return code;
    }
    match run_venue(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tixgate-venue: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn bar(len: u64, message: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{msg:<28} [{bar:40}] {pos:>5}/{len:5} {per_sec:>12} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(len).with_style(style).with_message(message.to_owned())
}

/// Prints a line above the progress bar (also when output is not a terminal,
/// where the bar itself stays hidden).
fn say(bar: &ProgressBar, line: String) {
    bar.suspend(|| println!("{line}"));
}

fn run_venue(args: &Args) -> anyhow::Result<bool> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let temp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    if std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} is not empty: the venue starts from nothing", dir.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let started = Instant::now();

    serve_daemons_from_this_binary(&dir.join("bin"))?;

    // The cloud sells.
    let cloud = sale::start(&dir)?;
    println!("cloud-api   {} (SQLite in {})", cloud.api.base, dir.display());
    let tickets = args.tickets as usize;
    let selling = bar((tickets + VIP_TICKETS + TOMORROW) as u64, "customers buying");
    let sold = runtime.block_on(cloud.api.sell(tickets, VIP_TICKETS, TOMORROW, REFUNDED_ORDERS, &selling))?;
    selling.finish_with_message("tickets sold");
    let refunded: BTreeSet<i64> = sold.refunded_orders.iter().copied().collect();
    let (revoked, valid): (Vec<&Ticket>, Vec<&Ticket>) =
        sold.tonight_tickets.iter().partition(|t| refunded.contains(&t.order_id));
    println!(
        "sold        {} Standing and {} VIP tickets for tonight and {} for tomorrow through the API; {} refunded ({} orders)",
        sold.tonight_tickets.len(),
        sold.vip_tickets.len(),
        sold.tomorrow_tickets.len(),
        revoked.len(),
        refunded.len()
    );
    let version = runtime.block_on(cloud.api.manifest_version(sold.venue_id, &sold.hub_token))?;

    // The venue: a hub and six gates, which get their ticket list and their
    // entrance through it.
    let venue = Venue::set_up(&dir, &sold, &cloud.api.base)?;
    let mut hub = venue.start_hub()?;
    println!("dashboard   http://{}/", venue.dashboard);
    let mut gates = venue.start_gates()?;
    let step = spinner("gates connecting and downloading tonight's ticket list from the hub");
    for gate in &mut gates {
        if !gate.wait_link(true, SETTLE_WITHIN) {
            bail!("gate {} did not reach the hub", gate.id);
        }
        wait_for_replica(gate, version)?;
    }
    step.finish_and_clear();
    println!(
        "gates       4 at Main (2 on MQTT, 2 on QUIC), 1 at VIP, 1 exit gate at Main, online, with the cloud's \
         ticket list (version {version}) and their entrances through the hub"
    );

    // The night, then everything reaches the cloud.
    let plan = Night::plan(&sold, &valid, &revoked, &cloud.api, &dir, &runtime)?;
    let (answers, outage) = night(plan, &mut gates, &mut hub, &venue)?;
    let step = spinner("scans going up to the cloud");
    let closed = Instant::now();
    let audit = Audit::wait_for(&cloud.store, sold.venue_id, &answers)?;
    step.finish_and_clear();
    let hub_conflicts = venue.hub_conflicts()?;
    let areas = venue.wait_areas(&inside_per_area(&answers))?;
    let timings = Timings { outage, uploaded: closed.elapsed(), total: started.elapsed() };
    let ok = report(&gates, &answers, &audit, hub_conflicts, &areas, &timings);

    if args.keep {
        println!(
            "\nThe venue stays up: dashboard http://{}/ · cloud {} · Ctrl-C to stop.",
            venue.dashboard, cloud.api.base
        );
        runtime.block_on(tokio::signal::ctrl_c())?;
    }
    if args.dir.is_some() {
        println!("keys, databases and logs kept in {}", dir.display());
    }
    drop(hub);
    Ok(ok)
}

/// How the hub outage went.
struct Outage {
    /// From the SIGKILL until every gate's link was down.
    noticed: Duration,
    /// From the SIGKILL until the restart.
    lasted: Duration,
    /// From the restart until the hub held every gate's scans.
    reconciled: Duration,
    /// Answers given without the hub.
    alone: usize,
}

/// Walks the crowd through the doors: doors open, the rush, the hub SIGKILLed
/// (gates decide alone), the hub restarted (gates reconcile), the rest.
fn night(plan: Night, gates: &mut [Gate], hub: &mut Daemon, venue: &Venue) -> anyhow::Result<(Vec<Answer>, Outage)> {
    let people = bar(plan.answers() as u64, "doors open");
    let part = Instant::now();
    let mut answers = crowd::walk(gates, plan.doors_open, &people)?;
    let secs = part.elapsed().as_secs_f64();
    say(&people, format!("doors open  {} people at four gates in {secs:.1} s", answers.len()));

    people.set_message("VIP guests");
    let before = answers.len();
    answers.extend(crowd::walk(gates, plan.vip_at_main, &people)?);
    answers.extend(crowd::walk(gates, plan.vip_at_vip, &people)?);
    let sent_on = answers[before..].iter().filter(|a| a.reason() == Some("other_entrance")).count();
    say(
        &people,
        format!("VIP guests  {sent_on} VIP tickets shown at Main sent on to the VIP entrance, and let in there"),
    );

    people.set_message("rush: two gates at once");
    let (part, before) = (Instant::now(), answers.len());
    answers.extend(crowd::at_two_gates(gates, &plan.rush_pairs, false, &people)?);
    answers.extend(crowd::walk(gates, plan.rush, &people)?);
    let secs = part.elapsed().as_secs_f64();
    let pairs = plan.rush_pairs.len();
    say(
        &people,
        format!(
            "rush        {pairs} tickets at two gates at once, then screenshots: {} answers in {secs:.1} s",
            answers.len() - before
        ),
    );

    people.set_message("hub down (SIGKILL)");
    let killed = Instant::now();
    hub.kill();
    for gate in gates.iter_mut() {
        if !gate.wait_link(false, SETTLE_WITHIN) {
            bail!("gate {} did not notice that the hub is gone", gate.id);
        }
    }
    let noticed = killed.elapsed();
    let before = answers.len();
    answers.extend(crowd::walk(gates, plan.hub_down, &people)?);
    answers.extend(crowd::at_two_gates(gates, &plan.offline_pairs, true, &people)?);
    let alone = answers.iter().filter(|a| a.offline()).count();
    let pairs = plan.offline_pairs.len();
    say(
        &people,
        format!(
            "hub down    SIGKILLed; every gate's link was down within {:.1} s; {} answers given alone, {pairs} tickets at two gates",
            noticed.as_secs_f64(),
            answers.len() - before
        ),
    );

    people.set_message("hub back");
    let lasted = killed.elapsed();
    let restarted = Instant::now();
    *hub = venue.start_hub()?;
    for gate in gates.iter_mut() {
        if !gate.wait_link(true, SETTLE_WITHIN) {
            bail!("gate {} did not reach the restarted hub", gate.id);
        }
    }
    venue.wait_reconciled(&answers)?;
    let reconciled = restarted.elapsed();
    let before = answers.len();
    answers.extend(crowd::walk(gates, plan.hub_back, &people)?);
    let secs = reconciled.as_secs_f64();
    say(
        &people,
        format!(
            "hub back    restarted; it held every gate's scans {secs:.1} s later; {} more answers",
            answers.len() - before
        ),
    );

    people.set_message("stepping out and back in");
    let before = answers.len();
    answers.extend(crowd::walk(gates, plan.stepping_out, &people)?);
    venue.wait_areas(&inside_per_area(&answers))?;
    let out = answers.len() - before;
    answers.extend(crowd::walk(gates, plan.back_in, &people)?);
    say(
        &people,
        format!(
            "interval    {out} scanned out at the exit gate, {} of them back in at Main",
            answers.len() - before - out
        ),
    );
    people.finish_and_clear();
    Ok((answers, Outage { noticed, lasted, reconciled, alone }))
}

/// The hub's and gates' files.
struct Venue {
    dir: PathBuf,
    dashboard: String,
}

impl Venue {
    /// Writes the hub's config (embedded broker, QUIC, dashboard, cloud link)
    /// and enrols and configures the gates.
    fn set_up(dir: &Path, sold: &Sold, cloud: &str) -> anyhow::Result<Self> {
        let dashboard = format!("127.0.0.1:{}", free_port());
        std::fs::write(dir.join("cloud-token"), &sold.hub_token)?;
        let hub = format!(
            "venue_id = {}\nstate_dir = \"hub-state\"\n[mqtt]\nbroker = \"embedded\"\naddress = \"127.0.0.1:{}\"\n\
             [quic]\nlisten = \"127.0.0.1:{}\"\n[http]\nlisten = \"{dashboard}\"\n[replica]\nfolder = \"manifests\"\n\
             [cloud]\nurl = \"{cloud}\"\ntoken_file = \"cloud-token\"\n",
            sold.venue_id,
            free_port(),
            free_udp_port()
        );
        std::fs::write(dir.join("hub.toml"), hub)?;
        for GateSpec { id, transport, exit, .. } in &ALL_GATES {
            let gate_dir = dir.join("gates").join(id);
            std::fs::create_dir_all(&gate_dir)?;
            let out = gate_dir.join("enrolment");
            let out = out.to_str().context("a non-UTF-8 path")?;
            let enrolled =
                run("sync-hub", &["enroll-gate", "--config", "hub.toml", "--gate-id", id, "--out", out], dir);
            if enrolled.code != 0 {
                bail!("sync-hub enroll-gate {id}: {}", enrolled.stderr);
            }
            // No check-in list in the config: each gate works the entrance the
            // cloud assigned it. A claim deadline above the 300 ms default: here
            // the cloud, the hub and six gates share one machine, and a verdict
            // late behind a disk stall would let a ticket shown at two gates at
            // once in twice.
            let direction = if *exit { "direction = \"exit\"\n" } else { "" };
            let config = format!(
                "gate_id = \"{id}\"\nvenue_id = {}\n{direction}state_dir = \"state\"\nkeyring = \"../../keys/keyring.json\"\n\
                 [hub]\nenrolment = \"enrolment\"\ntransport = \"{transport}\"\nclaim_deadline_ms = 1000\n",
                sold.venue_id
            );
            std::fs::write(gate_dir.join("gate.toml"), config)?;
        }
        Ok(Self { dir: dir.to_owned(), dashboard })
    }

    /// Starts the hub and waits until it takes frames.
    fn start_hub(&self) -> anyhow::Result<Daemon> {
        let mut hub =
            Daemon::spawn_logged("sync-hub", &["run", "--config", "hub.toml"], &self.dir, &self.dir.join("hub.log"));
        hub.try_wait_for(SETTLE_WITHIN, |l| l.contains("\"event\":\"ready\""))
            .with_context(|| format!("the hub did not start; see {}", self.dir.join("hub.log").display()))?;
        Ok(hub)
    }

    fn start_gates(&self) -> anyhow::Result<Vec<Gate>> {
        Ok(ALL_GATES
            .iter()
            .map(|&GateSpec { id, transport, .. }| {
                let dir = self.dir.join("gates").join(id);
                let daemon =
                    Daemon::spawn_logged("gate-agent", &["run", "--config", "gate.toml"], &dir, &dir.join("gate.log"));
                Gate { id: id.to_owned(), transport, daemon }
            })
            .collect())
    }

    /// Waits until the hub holds every scan each gate made.
    fn wait_reconciled(&self, answers: &[Answer]) -> anyhow::Result<()> {
        let end = Instant::now() + SETTLE_WITHIN;
        loop {
            let out = run("sync-hub", &["gates", "--config", "hub.toml"], &self.dir);
            let gates: Vec<serde_json::Value> =
                out.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
            let behind = ALL_GATES.iter().enumerate().any(|(i, spec)| {
                let made = answers.iter().filter(|a| a.gate == i).count() as u64;
                !gates.iter().any(|g| g["gate_id"] == spec.id && g["acked_through"] == made)
            });
            if !behind {
                return Ok(());
            }
            if Instant::now() > end {
                bail!("the hub did not catch up with the gates: {gates:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the hub's dashboard shows `expected` people in each area
    /// (within [`SETTLE_WITHIN`]); returns what it shows: (area, inside, capacity).
    fn wait_areas(&self, expected: &BTreeMap<String, u64>) -> anyhow::Result<Vec<(String, u64, Option<u64>)>> {
        let end = Instant::now() + SETTLE_WITHIN;
        loop {
            let (code, body) = http_get(&self.dashboard, "/api/status", None);
            if code != 200 {
                bail!("the dashboard answered {code}");
            }
            let status: serde_json::Value = serde_json::from_str(&body)?;
            let areas: Vec<(String, u64, Option<u64>)> = status["areas"]
                .as_array()
                .context("status without areas")?
                .iter()
                .map(|a| {
                    (
                        a["name"].as_str().unwrap_or("?").to_owned(),
                        a["inside"].as_u64().unwrap_or(0),
                        a["capacity"].as_u64(),
                    )
                })
                .collect();
            let right = expected.iter().all(|(name, n)| areas.iter().any(|(a, inside, _)| a == name && inside == n));
            if right || Instant::now() > end {
                return Ok(areas);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Conflicts the hub recorded, from its dashboard.
    fn hub_conflicts(&self) -> anyhow::Result<u64> {
        let (code, body) = http_get(&self.dashboard, "/api/status", None);
        if code != 200 {
            bail!("the dashboard answered {code}");
        }
        let status: serde_json::Value = serde_json::from_str(&body)?;
        status["conflicts"].as_u64().context("status without conflicts")
    }
}

/// Waits until the gate holds ticket list `version` and works the entrance the cloud assigned it.
fn wait_for_replica(gate: &mut Gate, version: u64) -> anyhow::Result<()> {
    let line = gate.daemon.try_wait_for(SETTLE_WITHIN, |l| {
        l.contains("\"event\":\"replica\"")
            && serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["version"].as_u64() >= Some(version))
    });
    line.with_context(|| format!("gate {} did not get ticket list version {version}", gate.id))?;
    let line = gate.daemon.try_wait_for(SETTLE_WITHIN, |l| l.contains("\"event\":\"entrance\""));
    let line = line.with_context(|| format!("gate {} was not told its entrance", gate.id))?;
    let told: serde_json::Value = serde_json::from_str(&line)?;
    let wanted = ALL_GATES.iter().find(|g| g.id == gate.id).map(|g| g.entrance);
    if told["name"].as_str() != wanted {
        bail!("gate {} works the wrong entrance: {line}", gate.id);
    }
    Ok(())
}

/// Who is inside each area by the answers the gates gave: a ticket let in at
/// the VIP gate is in the lounge, at the others on the floor, until it is
/// scanned out; one let in twice (two gates at once, without the hub) counts
/// once.
fn inside_per_area(answers: &[Answer]) -> BTreeMap<String, u64> {
    let mut inside: BTreeMap<u64, &str> = BTreeMap::new();
    for answer in answers.iter().filter(|a| a.accepted()) {
        let Some(ticket) = answer.line["ticket"]["ticket_id"].as_u64() else { continue };
        match answer.gate {
            EXIT_GATE => inside.remove(&ticket),
            VIP_GATE => inside.insert(ticket, "Lounge"),
            _ => inside.insert(ticket, "Floor"),
        };
    }
    let mut per_area = BTreeMap::from([("Floor".to_owned(), 0), ("Lounge".to_owned(), 0)]);
    for area in inside.values() {
        *per_area.entry((*area).to_owned()).or_default() += 1;
    }
    per_area
}

/// Who comes to which gate in each part of the night.
struct Night {
    doors_open: Vec<Vec<Person>>,
    vip_at_main: Vec<Vec<Person>>,
    vip_at_vip: Vec<Vec<Person>>,
    rush_pairs: Vec<(String, usize, usize)>,
    rush: Vec<Vec<Person>>,
    hub_down: Vec<Vec<Person>>,
    offline_pairs: Vec<(String, usize, usize)>,
    hub_back: Vec<Vec<Person>>,
    stepping_out: Vec<Vec<Person>>,
    back_in: Vec<Vec<Person>>,
}

impl Night {
    fn plan(
        sold: &Sold,
        valid: &[&Ticket],
        revoked: &[&Ticket],
        api: &sale::Api,
        dir: &Path,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<Self> {
        use crowd::{mix_in, round_robin};
        let n = CROWD_GATES;
        let (first, down) = (valid.len() * 6 / 10, valid.len() * 2 / 10);
        let (open, rest) = valid.split_at(first);
        let (rush_pairs, rest) = rest.split_at(PAIRS_ONLINE);
        let (during, rest) = rest.split_at(down);
        let (offline_pairs, back) = rest.split_at(PAIRS_OFFLINE);
        let thirds = |v: &[&Ticket], i: usize| -> Vec<String> {
            v.iter().skip(i).step_by(3).map(|t| t.barcode.clone()).collect()
        };
        let refused = |codes: Vec<String>, kind, reason| -> Vec<Person> {
            codes.iter().map(|c| Person::refused(kind, c, reason)).collect()
        };
        let event = sold.tonight as u64;
        let forged = |from: u64| (from..from + 10).map(|id| crowd::forged(event, id)).collect::<Vec<_>>();
        let altered = |v: &[&Ticket]| v.iter().take(10).map(|t| crowd::altered(&t.barcode)).collect::<Vec<_>>();
        // Tickets let in at gate i % n (`v[i]`), shown again at the next gate.
        let screenshots = |v: &[&Ticket], count: usize, from: usize| -> Vec<Vec<Person>> {
            let mut queues = vec![Vec::new(); n];
            let step = (v.len() / count).max(1);
            for i in (from..v.len()).step_by(step).take(count) {
                queues[(i % n + 1) % n].push(Person::refused(Kind::Screenshot, &v[i].barcode, "already_redeemed"));
            }
            queues
        };
        let pairs = |v: &[&Ticket], gates: &[(usize, usize)]| -> Vec<(String, usize, usize)> {
            v.iter().zip(gates.iter().cycle()).map(|(t, &(a, b))| (t.barcode.clone(), a, b)).collect()
        };

        // Doors open: the first people show their phones to the camera.
        let phones = runtime.block_on(read_phone_screens(api, &open[..n * 3], dir))?;
        let mut doors_open = round_robin(
            open.iter().enumerate().map(|(i, t)| match phones.get(i) {
                Some(code) => Person::entering(Kind::PhoneScreen, code),
                None => Person::entering(Kind::Entry, &t.barcode),
            }),
            n,
        );
        mix_in(&mut doors_open, refused(thirds(revoked, 0), Kind::Refunded, "revoked"));
        mix_in(&mut doors_open, refused(forged(9_000_000), Kind::Forged, "unknown_key"));
        mix_in(&mut doors_open, refused(altered(open), Kind::Altered, "bad_signature"));
        let cut_short = open.iter().rev().take(10).map(|t| t.barcode.chars().take(40).collect()).collect();
        mix_in(&mut doors_open, refused(cut_short, Kind::CutShort, "malformed"));
        let tomorrow: Vec<&Ticket> = sold.tomorrow_tickets.iter().collect();
        // Tomorrow's tickets meet tomorrow's list at Main, which is not open yet.
        mix_in(&mut doors_open, refused(thirds(&tomorrow, 0), Kind::OtherNight, "list_closed"));

        // VIP guests try the main door first; it sends them to the VIP entrance.
        let vip_at_main = round_robin(
            sold.vip_tickets
                .iter()
                .map(|t| Person { expect: Expect::SentTo(sale::VIP), ..Person::entering(Kind::VipAtMain, &t.barcode) }),
            n,
        );
        let at_gate = |gate: usize, people: Vec<Person>| -> Vec<Vec<Person>> {
            let mut queues = vec![Vec::new(); ALL_GATES.len()];
            queues[gate] = people;
            queues
        };
        let vip_at_vip =
            at_gate(VIP_GATE, sold.vip_tickets.iter().map(|t| Person::entering(Kind::Vip, &t.barcode)).collect());

        // The rush: pairs at two gates (MQTT with QUIC too), and screenshots.
        let rush_pairs = pairs(rush_pairs, &[(0, 1), (2, 3), (0, 2), (1, 3), (0, 3), (1, 2)]);
        let rush = screenshots(open, 100, 0);

        // The hub is down: gates decide alone from their replica and what the
        // hub told them before.
        let mut hub_down = round_robin(during.iter().map(|t| Person::entering(Kind::Entry, &t.barcode)), n);
        for (queue, screens) in hub_down.iter_mut().zip(screenshots(open, 40, 1)) {
            mix_in(std::slice::from_mut(queue), screens);
        }
        mix_in(&mut hub_down, refused(thirds(revoked, 1), Kind::Refunded, "revoked"));
        mix_in(&mut hub_down, refused(altered(during), Kind::Altered, "bad_signature"));
        mix_in(&mut hub_down, refused(thirds(&tomorrow, 1), Kind::OtherNight, "list_closed"));
        let offline_pairs = pairs(offline_pairs, &[(0, 2), (1, 3)]);

        // The hub is back and has caught up: screenshots of tickets let in
        // while it was down, at another gate, are stopped.
        let mut hub_back = round_robin(back.iter().map(|t| Person::entering(Kind::Entry, &t.barcode)), n);
        let mut seen_alone = screenshots(during, 40, 0);
        // `screenshots` put them at the gate after the one that let them in.
        for (queue, screens) in hub_back.iter_mut().zip(&mut seen_alone) {
            queue.append(screens);
        }
        mix_in(&mut hub_back, refused(thirds(revoked, 2), Kind::Refunded, "revoked"));
        mix_in(&mut hub_back, refused(forged(9_100_000), Kind::Forged, "unknown_key"));
        mix_in(&mut hub_back, refused(thirds(&tomorrow, 2), Kind::OtherNight, "list_closed"));

        // The interval: people let in after the hub came back step out at the
        // exit gate, and some of them come back in at Main.
        let out: Vec<&&Ticket> = back.iter().rev().take(STEPPING_OUT).collect();
        let stepping_out =
            at_gate(EXIT_GATE, out.iter().map(|t| Person::entering(Kind::SteppingOut, &t.barcode)).collect());
        let back_in = round_robin(out.iter().take(BACK_IN).map(|t| Person::entering(Kind::BackIn, &t.barcode)), n);
        Ok(Self {
            doors_open,
            vip_at_main,
            vip_at_vip,
            rush_pairs,
            rush,
            hub_down,
            offline_pairs,
            hub_back,
            stepping_out,
            back_in,
        })
    }

    /// Answers the night will give (two per ticket shown at two gates).
    fn answers(&self) -> usize {
        let queued: usize = [
            &self.doors_open,
            &self.vip_at_main,
            &self.vip_at_vip,
            &self.rush,
            &self.hub_down,
            &self.hub_back,
            &self.stepping_out,
            &self.back_in,
        ]
        .iter()
        .map(|queues| queues.iter().map(Vec::len).sum::<usize>())
        .sum();
        queued + 2 * (self.rush_pairs.len() + self.offline_pairs.len())
    }
}

/// Downloads each ticket's QR image as its customer would and reads it back
/// through the gate's camera decoder; returns what the camera read.
async fn read_phone_screens(api: &sale::Api, tickets: &[&Ticket], dir: &Path) -> anyhow::Result<Vec<String>> {
    let folder = dir.join("phones");
    std::fs::create_dir_all(&folder)?;
    let reader = gate_agent::qr::QrReader::default();
    let mut codes = Vec::new();
    for ticket in tickets {
        let png = api.qr_png(ticket).await?;
        let path = folder.join(format!("ticket-{}.png", ticket.id));
        std::fs::write(&path, &png)?;
        let frame = gate_agent::qr::LumaFrame::load(&path)?;
        let read = reader.decode(&frame).with_context(|| format!("the camera read nothing in {}", path.display()))?;
        if read != ticket.barcode {
            bail!("the camera misread {}", path.display());
        }
        codes.push(read);
    }
    Ok(codes)
}

/// What reached the cloud.
struct Audit {
    /// Scans the gates showed that the cloud holds.
    arrived: usize,
    /// Scans the gates showed that the cloud does not hold.
    lost: usize,
    /// Scans the cloud holds that no gate showed.
    unknown: usize,
    /// Conflicts the cloud holds.
    conflicts: u64,
}

impl Audit {
    /// Waits until the cloud holds every scan the gates showed and the
    /// conflicts, or [`SETTLE_WITHIN`] passes; reads the cloud's SQLite store.
    fn wait_for(store: &Path, venue_id: i64, answers: &[Answer]) -> anyhow::Result<Self> {
        let shown: BTreeSet<&str> = answers.iter().filter_map(Answer::scan_id).collect();
        let expected_conflicts = PAIRS_OFFLINE as u64;
        let end = Instant::now() + SETTLE_WITHIN;
        loop {
            let db = rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            let mut query = db.prepare("SELECT scan_id FROM scans WHERE venue_id = ?1")?;
            let stored: BTreeSet<String> = query.query_map([venue_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
            let conflicts: i64 =
                db.query_row("SELECT COUNT(*) FROM scan_conflicts WHERE venue_id = ?1", [venue_id], |r| r.get(0))?;
            let conflicts = conflicts.unsigned_abs();
            let arrived = shown.iter().filter(|id| stored.contains(**id)).count();
            let audit = Self { arrived, lost: shown.len() - arrived, unknown: stored.len() - arrived, conflicts };
            if (audit.lost == 0 && conflicts >= expected_conflicts) || Instant::now() > end {
                return Ok(audit);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

struct Timings {
    outage: Outage,
    /// From the doors closing until the cloud held every scan.
    uploaded: Duration,
    total: Duration,
}

/// Prints the night's table; true if every answer was right, nothing was lost
/// and exactly the double entries became conflicts.
fn report(
    gates: &[Gate],
    answers: &[Answer],
    audit: &Audit,
    hub_conflicts: u64,
    areas: &[(String, u64, Option<u64>)],
    t: &Timings,
) -> bool {
    let tally = Tally::of(answers);
    println!(
        "\n{:<10} {:<9} {:>7} {:>9} {:>9} {:>6}  {:>17}  {:>17}",
        "gate", "transport", "answers", "accepted", "rejected", "alone", "ms p50/p99 (hub)", "ms p50/p99 (alone)"
    );
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    for (i, gate) in gates.iter().enumerate() {
        let (accepted, rejected, offline) = tally.per_gate.get(&i).copied().unwrap_or_default();
        let with_hub = format!("{}/{}", ms(tally.wait_ms(i, false, 0.5)), ms(tally.wait_ms(i, false, 0.99)));
        let alone = format!("{}/{}", ms(tally.wait_ms(i, true, 0.5)), ms(tally.wait_ms(i, true, 0.99)));
        println!(
            "{:<10} {:<9} {:>7} {:>9} {:>9} {:>6}  {with_hub:>17}  {alone:>18}",
            gate.id,
            gate.transport,
            accepted + rejected,
            accepted,
            rejected,
            offline
        );
    }
    println!("\n{:<32} {:>7} {:>12}", "who came", "answers", "as expected");
    for (kind, (people, right)) in &tally.per_kind {
        println!("{:<32} {:>7} {:>12}", kind.label(), people, right);
    }
    let rejected: usize = tally.rejected.values().sum();
    println!(
        "\naccepted                         {:>7} ({} while the hub was down)",
        tally.accepted, tally.accepted_offline
    );
    println!("rejected                         {rejected:>7}");
    for (reason, count) in &tally.rejected {
        let words = schema::Reason::ALL.iter().find(|r| r.code() == reason).map_or("", |r| r.words());
        println!("  {reason:<30} {count:>7}  {words}");
    }
    let stopped = tally.rejected.get("already_redeemed").copied().unwrap_or(0);
    println!("duplicates stopped               {stopped:>7}");
    println!("double entries while hub down    {PAIRS_OFFLINE:>7}");
    println!("conflicts flagged                {hub_conflicts:>7} at the hub, {} in the cloud", audit.conflicts);
    println!("scans shown at the gates         {:>7}", answers.len());
    println!("scans in the cloud               {:>7}", audit.arrived + audit.unknown);
    println!("scans lost                       {:>7}", audit.lost);
    let expected = inside_per_area(answers);
    println!("\n{:<10} {:>15} {:>9} {:>9}", "area", "inside (hub)", "expected", "capacity");
    for (name, inside, capacity) in areas {
        let capacity = capacity.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let wanted = expected.get(name).map_or_else(|| "-".to_owned(), u64::to_string);
        println!("{name:<10} {inside:>15} {wanted:>9} {capacity:>9}");
    }
    let areas_right =
        expected.iter().all(|(name, n)| areas.iter().any(|(area, inside, _)| area == name && inside == n));
    println!(
        "\nhub outage (SIGKILL) of {:.1} s: every gate's link was down within {:.1} s; {} answers given alone; \
         after the restart the hub held every scan in {:.1} s; the cloud held them {:.1} s after the doors closed; \
         whole run {:.0} s",
        t.outage.lasted.as_secs_f64(),
        t.outage.noticed.as_secs_f64(),
        t.outage.alone,
        t.outage.reconciled.as_secs_f64(),
        t.uploaded.as_secs_f64(),
        t.total.as_secs_f64()
    );
    for answer in tally.unexpected.iter().take(10) {
        println!("UNEXPECTED at {}: {} -> {}", gates[answer.gate].id, answer.kind.label(), answer.line);
    }
    let expected_conflicts = PAIRS_OFFLINE as u64;
    let ok = tally.unexpected.is_empty()
        && areas_right
        && audit.lost == 0
        && audit.unknown == 0
        && hub_conflicts == expected_conflicts
        && audit.conflicts == expected_conflicts;
    println!(
        "{}",
        if ok {
            "\nthe venue worked: every answer right, every area's count right, nothing lost, every double entry flagged"
        } else {
            "\nTHE VENUE DID NOT WORK AS IT SHOULD (see above)"
        }
    );
    ok
}
