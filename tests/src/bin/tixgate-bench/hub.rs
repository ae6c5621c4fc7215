//! `tixgate-bench hub`: the venue hub with 100 simulated gates, per transport.
//!
//! For the embedded broker, Mosquitto (127.0.0.1:1883) and QUIC straight to the
//! hub: claim round trip against a bare ping-pong over the same transport (an
//! echo through the same broker, or an echo QUIC server with the same TLS;
//! samples interleaved, so both see the same machine); sustained durable ingest
//! against one fsynced commit per scan on the same disk; and how long an
//! admission takes to reach all 100 gates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use schema::Decision;
use schema::entry::Direction;
use schema::hlc::HlcTimestamp;
use schema::sync::{
    self, Claim, GateMessage, HUB_ID, Hello, HubMessage, LinkKey, NodeKey, ReentryRule, ScanReport, SenderKeys, topics,
};
use serde_json::json;
use sync_hub::config::{Broker, HubConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const GATES: usize = 100;
const SAMPLES: usize = 1_000;
const BATCHES_PER_GATE: u64 = 2;
const BATCH: u64 = 250;
const MOSQUITTO: (&str, u16) = ("127.0.0.1", 1883);

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Runs the hub benchmark and prints its figures and JSON line.
pub fn run(only: &[String]) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // An embedded broker lives as long as the process: each run gets its own port.
    let embedded = || -> anyhow::Result<Broker> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).context("free port")?.port();
        Ok(Broker::Embedded(([127, 0, 0, 1], port).into()))
    };
    let transports = [
        ("embedded", embedded()?, false),
        ("mosquitto", Broker::External(MOSQUITTO.0.into(), MOSQUITTO.1), false),
        ("quic", embedded()?, true),
    ];
    let mut results = serde_json::Map::new();
    for (name, broker, quic) in transports {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        println!("\n== {name} ==");
        let figures = runtime.block_on(bench(broker, quic)).with_context(|| format!("{name} transport"))?;
        results.insert(name.into(), figures);
    }
    runtime.shutdown_background();
    println!("{}", json!({ "bench": "hub", "gates": GATES, "transports": results }));
    Ok(())
}

/// What the simulated gates hear, shared with their receiving tasks.
#[derive(Default)]
struct Heard {
    verdicts: HashMap<u64, oneshot::Sender<()>>,
    pongs: HashMap<u64, oneshot::Sender<()>>,
    welcomes: usize,
    subscribed: usize,
    /// Admission key → when each gate heard it, while `timing_broadcasts`.
    admissions: HashMap<String, Vec<Instant>>,
    /// Whether broadcasts are being timed (not during ingest, where keeping
    /// 100 arrival times of 50,000 admissions would cost more than the hub).
    timing_broadcasts: bool,
    acked: HashMap<String, u64>,
    /// Broadcast frames already opened, by a hash of their bytes.
    broadcasts: HashMap<u64, Arc<HubMessage>>,
}

/// How a simulated gate sends.
enum SimWire {
    /// Its outgoing MQTT connection.
    Mqtt(AsyncClient),
    /// Its QUIC connections: to the hub, and to the echo server.
    Quic { hub: mpsc::UnboundedSender<Vec<u8>>, echo: mpsc::UnboundedSender<Vec<u8>> },
}

struct SimGate {
    id: String,
    /// The key it shares with the hub, as a real gate's.
    link: LinkKey,
    wire: SimWire,
}

impl SimGate {
    async fn send(&self, venue: u32, message: &GateMessage) -> anyhow::Result<()> {
        let frame = self.link.seal(&self.id, HUB_ID, &message.encode());
        match &self.wire {
            SimWire::Mqtt(out) => out.publish(topics::up(venue, &self.id), QoS::AtLeastOnce, false, frame).await?,
            SimWire::Quic { hub, .. } => hub.send(frame).map_err(|_| anyhow::anyhow!("QUIC link gone"))?,
        }
        Ok(())
    }

    async fn send_ping(&self, venue: u32, nonce: u64) -> anyhow::Result<()> {
        let payload = nonce.to_le_bytes().to_vec();
        match &self.wire {
            SimWire::Mqtt(out) => {
                let topic = format!("tixgate-bench/{venue}/ping/{}", self.id);
                out.publish(topic, QoS::AtLeastOnce, false, payload).await?;
            }
            SimWire::Quic { echo, .. } => echo.send(payload).map_err(|_| anyhow::anyhow!("QUIC echo gone"))?,
        }
        Ok(())
    }
}

async fn bench(broker: Broker, quic: bool) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let venue = 1_000_000 + (std::process::id() % 1_000_000);
    let config = HubConfig {
        venue_id: venue,
        state_dir: dir.path().join("hub"),
        broker: broker.clone(),
        quic: quic.then(|| ([127, 0, 0, 1], 0).into()),
        manifests: None,
        http: ([127, 0, 0, 1], 0).into(),
        http_hosts: Vec::new(),
        cloud: None,
    };
    let mut keys = Vec::new();
    let mut hub_key = None;
    for g in 0..GATES {
        let id = format!("g{g:03}");
        let out = dir.path().join(&id);
        let enrolment = sync_hub::enroll::enroll_gate(&config, &id, &out, 1)?;
        hub_key = enrolment.hub_key();
        let pem = std::fs::read_to_string(out.join(sync::GATE_KEY_FILE))?;
        keys.push((id, NodeKey::from_pkcs8_pem(&pem)?, enrolment.mqtt_password, out));
    }
    // The echo of the ping-pong reference logs in as one more gate.
    let echo_login = sync_hub::enroll::enroll_gate(&config, "echo", &dir.path().join("echo"), 1)?.mqtt_password;
    let hub_key = hub_key.context("hub key")?;

    let shutdown = CancellationToken::new();
    let (ready_tx, ready) = oneshot::channel();
    let state_dir = config.state_dir.clone();
    let hub = tokio::spawn(sync_hub::daemon::run(config, Default::default(), shutdown.clone(), move |ready| {
        let _ = ready_tx.send(ready.quic);
    }));
    let quic_addr = match tokio::time::timeout(Duration::from_secs(20), ready).await.context("hub start")? {
        Ok(addr) => addr,
        // The hub stopped before it was ready: say why.
        Err(_) => return Err(anyhow::anyhow!("hub did not start: {:?}", hub.await)),
    };
    let heard = Arc::new(Mutex::new(Heard::default()));
    // The simulated gates' tasks: all stopped (connections closed) before the
    // next transport is measured, so it runs on a quiet machine.
    let mut sims = tokio::task::JoinSet::new();
    if let Some(hub_addr) = quic_addr {
        let gates = quic_gates(keys, &state_dir, venue, hub_addr, hub_key, &heard, &mut sims).await?;
        let figures = measure(&gates, venue, &heard, dir.path()).await;
        drop(gates);
        sims.shutdown().await;
        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), hub).await;
        return figures;
    }
    let (host, port) = broker.connect_to();

    let mut gates = Vec::new();
    for (id, key, password, _) in keys {
        let login = Some((id.as_str(), password.as_str()));
        let (inbound, events) = sync_hub::mqtt::connection(&sync::mqtt_client_id(venue, &id, "in"), &host, port, login);
        let (out, out_events) =
            sync_hub::mqtt::connection(&sync::mqtt_client_id(venue, &id, "out"), &host, port, login);
        inbound.subscribe(topics::down(venue, &id), QoS::AtLeastOnce).await?;
        inbound.subscribe(topics::broadcast(venue), QoS::AtLeastOnce).await?;
        inbound.subscribe(format!("tixgate-bench/{venue}/pong/{id}"), QoS::AtLeastOnce).await?;
        sims.spawn(drain(out_events));
        let hub = SenderKeys { public: hub_key, link: key.link_key(&hub_key) };
        let link = hub.link.clone().context("link key")?;
        sims.spawn(listen(events, id.clone(), hub, heard.clone()));
        gates.push(SimGate { id, link, wire: SimWire::Mqtt(out) });
    }
    // The ping-pong reference: an echo through the same broker, no hub logic, no disk.
    let login = Some(("echo", echo_login.as_str()));
    let (echo_in, echo_events) =
        sync_hub::mqtt::connection(&sync::mqtt_client_id(venue, "echo", "in"), &host, port, login);
    let (echo_out, echo_out_events) =
        sync_hub::mqtt::connection(&sync::mqtt_client_id(venue, "echo", "out"), &host, port, login);
    echo_in.subscribe(format!("tixgate-bench/{venue}/ping/+"), QoS::AtLeastOnce).await?;
    sims.spawn(drain(echo_out_events));
    sims.spawn(echo(echo_events, echo_out, venue));

    // Every subscription in place (three per gate), then everyone says hello.
    let end = Instant::now() + Duration::from_secs(30);
    while heard.lock().map(|h| h.subscribed).unwrap_or(0) < 3 * GATES {
        anyhow::ensure!(Instant::now() < end, "subscriptions not acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let figures = measure(&gates, venue, &heard, dir.path()).await;
    drop(gates);
    sims.shutdown().await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), hub).await;
    figures
}

/// Hello from every gate, then claims against pings, broadcasts and ingest.
async fn measure(
    gates: &[SimGate],
    venue: u32,
    heard: &Arc<Mutex<Heard>>,
    dir: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    let end = Instant::now() + Duration::from_secs(30);
    while heard.lock().map(|h| h.welcomes).unwrap_or(0) < GATES {
        anyhow::ensure!(Instant::now() < end, "not every gate was welcomed");
        for gate in gates {
            gate.send(
                venue,
                &GateMessage::Hello(Hello {
                    replica_version: 1,
                    last_seq: 0,
                    hlc: HlcTimestamp(0),
                    admissions_through: u64::MAX,
                }),
            )
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if heard.lock().map(|h| h.welcomes).unwrap_or(0) >= GATES {
            break;
        }
    }

    // Claims and pings, interleaved (alternating which goes first), from gates in
    // turn. Each sample starts only once the previous admission has reached every
    // gate, so neither waits behind the other's fan-out.
    let (mut claims, mut pings, mut broadcast, mut commits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut reference = ReferenceStore::open(dir)?;
    heard.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.timing_broadcasts = true;
    for i in 0..SAMPLES {
        let gate = &gates[i % GATES];
        let claim_first = i % 2 == 0;
        if !claim_first {
            pings.push(ping(gate, venue, i as u64, heard).await?);
        }
        let claim_id = 1 + i as u64;
        let (tx, rx) = oneshot::channel();
        heard.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.verdicts.insert(claim_id, tx);
        let claim = Claim {
            claim_id,
            ticket_id: claim_id,
            list_id: 1,
            direction: Direction::Entry,
            rule: ReentryRule::default(),
            hlc: HlcTimestamp::from_millis(claim_id),
        };
        let sent = Instant::now();
        gate.send(venue, &GateMessage::Claim(claim)).await?;
        tokio::time::timeout(Duration::from_secs(5), rx).await.context("verdict")??;
        claims.push(sent.elapsed().as_secs_f64() * 1e3);
        // Broadcast: when the last of the gates heard this admission.
        let key = format!("{}#{claim_id:x}", gate.id);
        let end = Instant::now() + Duration::from_secs(5);
        let last = loop {
            let times = heard.lock().map(|h| h.admissions.get(&key).cloned().unwrap_or_default()).unwrap_or_default();
            if times.len() >= GATES {
                break times.into_iter().max().unwrap_or(sent);
            }
            anyhow::ensure!(Instant::now() < end, "admission {key} reached {} of {GATES} gates", times.len());
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        broadcast.push(last.duration_since(sent).as_secs_f64() * 1e3);
        if claim_first {
            pings.push(ping(gate, venue, i as u64, heard).await?);
        }
        // One fsynced commit on the same disk, at the same moment.
        commits.push(reference.commit_ms(i as i64)?);
    }

    heard.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.timing_broadcasts = false;

    // Ingest: every gate sends its batches at once; time until all are acknowledged.
    let total = GATES as u64 * BATCHES_PER_GATE * BATCH;
    let started = Instant::now();
    for batch in 0..BATCHES_PER_GATE {
        for gate in gates {
            let scans = (1..=BATCH).map(|s| report(batch * BATCH + s)).collect();
            gate.send(venue, &GateMessage::Scans(scans)).await?;
        }
    }
    let want = BATCHES_PER_GATE * BATCH;
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let done = heard.lock().map(|h| h.acked.values().filter(|&&a| a >= want).count()).unwrap_or(0);
        if done == GATES {
            break;
        }
        anyhow::ensure!(Instant::now() < end, "ingest not acknowledged: {done}/{GATES} gates");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ingest_per_s = total as f64 / started.elapsed().as_secs_f64();
    let single_commit_per_s = reference.rate(SAMPLES as i64)?;

    let (claims, pings, broadcast) = (sorted(claims), sorted(pings), sorted(broadcast));
    let commit_p99 = crate::percentile(&sorted(commits), 0.99);
    let (claim_p99, ping_p99) = (crate::percentile(&claims, 0.99), crate::percentile(&pings, 0.99));
    // The goal: 1.5x the bare round trip, plus one durable commit.
    let claim_goal = 1.5 * ping_p99 + commit_p99;
    println!(
        "claim round trip   p50 {:.2} ms  p99 {:.2} ms   (bare ping-pong p50 {:.2} ms  p99 {:.2} ms; ratio {:.2})",
        crate::percentile(&claims, 0.5),
        claim_p99,
        crate::percentile(&pings, 0.5),
        ping_p99,
        claim_p99 / ping_p99
    );
    println!(
        "                   goal 1.5 x ping p99 + one commit p99 ({commit_p99:.2} ms) = {claim_goal:.2} ms: {}",
        if claim_p99 <= claim_goal { "met" } else { "NOT met" }
    );
    println!(
        "durable ingest     {ingest_per_s:.0} scans/s   (one fsynced commit per scan: {single_commit_per_s:.0}/s; ratio {:.1})",
        ingest_per_s / single_commit_per_s
    );
    println!(
        "broadcast to all {GATES} gates  p50 {:.2} ms  p99 {:.2} ms",
        crate::percentile(&broadcast, 0.5),
        crate::percentile(&broadcast, 0.99)
    );
    Ok(json!({
        "claim_p50_ms": crate::percentile(&claims, 0.5),
        "claim_p99_ms": claim_p99,
        "bare_ping_p99_ms": ping_p99,
        "claim_ratio": claim_p99 / ping_p99,
        "commit_p99_ms": commit_p99,
        "claim_goal_ms": claim_goal,
        "ingest_per_s": ingest_per_s,
        "single_commit_per_s": single_commit_per_s,
        "ingest_ratio": ingest_per_s / single_commit_per_s,
        "broadcast_p99_ms": crate::percentile(&broadcast, 0.99),
    }))
}

/// One bare round trip over the transport: gate → echo → gate.
async fn ping(gate: &SimGate, venue: u32, nonce: u64, heard: &Mutex<Heard>) -> anyhow::Result<f64> {
    let (tx, rx) = oneshot::channel();
    heard.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pongs.insert(nonce, tx);
    let sent = Instant::now();
    gate.send_ping(venue, nonce).await?;
    tokio::time::timeout(Duration::from_secs(5), rx).await.context("pong")??;
    Ok(sent.elapsed().as_secs_f64() * 1e3)
}

fn report(seq: u64) -> ScanReport {
    ScanReport {
        seq,
        hlc: HlcTimestamp::from_millis(seq),
        wall_ms: seq,
        ticket_id: Some(1_000_000 + seq),
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

/// The reference: scans stored one fsynced commit each, on the same disk.
struct ReferenceStore(rusqlite::Connection);

impl ReferenceStore {
    fn open(dir: &std::path::Path) -> anyhow::Result<Self> {
        let conn = rusqlite::Connection::open(dir.join("reference.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE scans (gate TEXT, seq INTEGER, body BLOB, PRIMARY KEY (gate, seq));",
        )?;
        Ok(Self(conn))
    }

    /// Stores scan `seq` in its own commit; returns how long that took, in ms.
    fn commit_ms(&mut self, seq: i64) -> anyhow::Result<f64> {
        let started = Instant::now();
        self.0.execute("INSERT INTO scans VALUES ('g', ?1, zeroblob(60))", [seq])?;
        Ok(started.elapsed().as_secs_f64() * 1e3)
    }

    /// Commits per second, one scan each, over 500 in a row after `after`.
    fn rate(&mut self, after: i64) -> anyhow::Result<f64> {
        let n: i64 = 500;
        let started = Instant::now();
        for seq in after..after + n {
            self.commit_ms(seq)?;
        }
        Ok(n as f64 / started.elapsed().as_secs_f64())
    }
}

async fn drain(mut events: rumqttc::EventLoop) {
    loop {
        if events.poll().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn listen(mut events: rumqttc::EventLoop, gate: String, hub: SenderKeys, heard: Arc<Mutex<Heard>>) {
    loop {
        let publish = match events.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => p,
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Ok(mut heard) = heard.lock() {
                    heard.subscribed += 1;
                }
                continue;
            }
            Ok(_) => continue,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let at = Instant::now();
        if publish.topic.contains("/pong/") {
            pong(&heard, &publish.payload);
        } else {
            heard_from_hub(&heard, &gate, &hub, &publish.payload, at);
        }
    }
}

fn pong(heard: &Mutex<Heard>, payload: &[u8]) {
    let nonce = payload.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    if let Ok(mut heard) = heard.lock()
        && let Some(tx) = nonce.and_then(|n| heard.pongs.remove(&n))
    {
        let _ = tx.send(());
    }
}

/// Opens a frame from the hub. The simulated gates share two cores with the
/// hub, while each real gate checks the hub's signature on its own CPU; so a
/// broadcast (the same bytes for all 100) is checked once and its message
/// shared, and frames for one gate are checked by that gate.
fn open_from_hub(heard: &Mutex<Heard>, hub: &SenderKeys, payload: &[u8]) -> Option<Arc<HubMessage>> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(payload);
    if let Some(message) = heard.lock().ok()?.broadcasts.get(&hash) {
        return Some(Arc::clone(message));
    }
    let frame = sync::frame::open(payload, |s| (s == HUB_ID).then(|| hub.clone())).ok()?;
    let message = Arc::new(HubMessage::decode(frame.body).ok()?);
    if frame.recipient == sync::Recipient::Everyone {
        heard.lock().ok()?.broadcasts.insert(hash, Arc::clone(&message));
    }
    Some(message)
}

/// Records what gate `gate` heard from the hub at `at`.
fn heard_from_hub(heard: &Mutex<Heard>, gate: &str, hub: &SenderKeys, payload: &[u8], at: Instant) {
    let Some(message) = open_from_hub(heard, hub, payload) else { return };
    let Ok(mut heard) = heard.lock() else { return };
    match &*message {
        HubMessage::Welcome { .. } => heard.welcomes += 1,
        HubMessage::Verdict { claim_id, .. } => {
            if let Some(tx) = heard.verdicts.remove(claim_id) {
                let _ = tx.send(());
            }
        }
        HubMessage::Ack { through } => {
            let acked = heard.acked.entry(gate.to_owned()).or_default();
            *acked = (*acked).max(*through);
        }
        HubMessage::Admissions(list) if heard.timing_broadcasts => {
            for a in list {
                heard.admissions.entry(a.key.clone()).or_default().push(at);
            }
        }
        HubMessage::Admissions(_) => {}
        HubMessage::Offer(_) | HubMessage::Chunk { .. } => {}
    }
}

async fn echo(mut events: rumqttc::EventLoop, out: AsyncClient, venue: u32) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((topic, payload)) = rx.recv().await {
            if out.publish(topic, QoS::AtLeastOnce, false, payload).await.is_err() {
                return;
            }
        }
    });
    let prefix = format!("tixgate-bench/{venue}/ping/");
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Some(gate) = p.topic.strip_prefix(&prefix) {
                    let _ = tx.send((format!("tixgate-bench/{venue}/pong/{gate}"), p.payload.to_vec()));
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The gates over QUIC: each connects to the hub, and to an echo server with
/// the hub's TLS setup (venue CA, client certificates) as the bare reference.
async fn quic_gates(
    keys: Vec<(String, NodeKey, String, std::path::PathBuf)>,
    state_dir: &std::path::Path,
    venue: u32,
    hub_addr: std::net::SocketAddr,
    hub_key: ed25519_dalek::VerifyingKey,
    heard: &Arc<Mutex<Heard>>,
    sims: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<Vec<SimGate>> {
    let ca = sync_hub::ca::VenueCa::load_or_create(state_dir, venue)?;
    let echo = sync_hub::quic::listen(([127, 0, 0, 1], 0).into(), &ca)?;
    let echo_addr = echo.local_addr()?;
    sims.spawn(echo_server(echo));
    let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into())?;
    let mut gates = Vec::new();
    for (id, key, _, dir) in keys {
        let client = gate_agent::hub_link::quic::client_config(&dir).map_err(anyhow::Error::msg)?;
        let (heard_hub, gate) = (heard.clone(), id.clone());
        let hub_keys = SenderKeys { public: hub_key, link: key.link_key(&hub_key) };
        let link = hub_keys.link.clone().context("link key")?;
        let on_hub = move |bytes: Vec<u8>, at| heard_from_hub(&heard_hub, &gate, &hub_keys, &bytes, at);
        let hub = quic_stream(&endpoint, client.clone(), hub_addr, on_hub, sims).await?;
        let heard_echo = heard.clone();
        let echo = quic_stream(&endpoint, client, echo_addr, move |bytes, _| pong(&heard_echo, &bytes), sims).await?;
        gates.push(SimGate { id, link, wire: SimWire::Quic { hub, echo } });
    }
    Ok(gates)
}

/// A connection and its stream: frames sent on the returned channel go out,
/// frames that come back go to `on_frame` with when they arrived.
async fn quic_stream(
    endpoint: &quinn::Endpoint,
    client: quinn::ClientConfig,
    addr: std::net::SocketAddr,
    on_frame: impl Fn(Vec<u8>, Instant) + Send + 'static,
    sims: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<mpsc::UnboundedSender<Vec<u8>>> {
    let connection = endpoint.connect_with(client, addr, sync::quic::HUB_SERVER_NAME)?.await?;
    let (mut send, mut recv) = connection.open_bi().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    sims.spawn(async move {
        let _connection = connection;
        while let Some(frame) = rx.recv().await {
            if send.write_all(&sync::quic::framed(&frame)).await.is_err() {
                return;
            }
        }
    });
    sims.spawn(async move {
        while let Some(frame) = read_frame(&mut recv).await {
            on_frame(frame, Instant::now());
        }
    });
    Ok(tx)
}

async fn read_frame(recv: &mut quinn::RecvStream) -> Option<Vec<u8>> {
    let mut prefix = [0u8; 4];
    recv.read_exact(&mut prefix).await.ok()?;
    let mut frame = vec![0u8; sync::quic::announced_length(prefix)?];
    recv.read_exact(&mut frame).await.ok()?;
    Some(frame)
}

/// Sends every frame back on the connection it came from.
async fn echo_server(endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else { return };
            let Ok((mut send, mut recv)) = connection.accept_bi().await else { return };
            while let Some(frame) = read_frame(&mut recv).await {
                if send.write_all(&sync::quic::framed(&frame)).await.is_err() {
                    return;
                }
            }
        });
    }
}
