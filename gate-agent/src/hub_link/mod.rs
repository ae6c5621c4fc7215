//! The gate's link to the venue hub, over MQTT ([`mqtt`]) or QUIC ([`quic`]).
//! The wire only carries authenticated frames (linked with the hub, see
//! [`sync::LinkKey`]; broadcasts signed) and says when it is up or down; what
//! follows is the same on both.
//!
//! - **Claims.** Before an accept stands, the owner thread asks the hub
//!   ([`HubLink::arbitrate`]) and waits at most the claim deadline. No link, or no
//!   answer in time: the gate's own decision stands and the scan is marked
//!   offline; the claim id travels with the scan so the hub can match a late grant.
//!   After a missed deadline the hub counts as *silent* until any frame from it
//!   arrives: a hub that died without closing the connection (power, Wi-Fi) costs
//!   the queue one deadline, not one per person until the transport notices.
//! - **Outbox.** Recorded scans go up in sequence order, one batch in flight;
//!   the hub's cumulative ack moves the cursor. On (re)connection the hub's
//!   `Welcome` says where it stands, and anything unacknowledged is sent again.
//! - **Broadcasts.** Admissions at other gates are handed to the owner, which
//!   stores them so later decisions — online or not — know who is inside.
//! - **Ticket lists.** A manifest the hub offers that is newer than the replica
//!   is downloaded chunk by chunk, resumably ([`download`]), and handed to the
//!   owner to check and apply.
//!
//! Frames from the hub are opened with the hub's public key from enrolment;
//! anything else on our topics is dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use schema::sync::{self, Claim, GateMessage, HUB_ID, Hello, HubMessage, MAX_BATCH, ManifestOffer, Recipient, Verdict};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{HubSettings, HubTransport};
use crate::daemon::Input;
use crate::gate::{Decided, Gate};
use crate::store::Ledger;

/// Resend what is unacknowledged after this long without an ack.
const RESEND_AFTER: Duration = Duration::from_secs(2);
/// Say hello again this often until the hub answers.
const HELLO_RETRY: Duration = Duration::from_secs(1);
/// Say hello this often when idle, so the hub sees the gate alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Tell the owner how a manifest download is going at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

pub mod download;
pub mod mqtt;
pub mod quic;

/// What a wire tells the link.
#[derive(Debug)]
pub enum WireEvent {
    /// Connected and ready: frames sent now reach the hub.
    Up,
    /// A frame arrived (not yet opened or checked).
    Frame(Vec<u8>),
    /// The connection failed or could not be made; the wire retries.
    Down(String),
}

/// The transport under the link.
enum Wire {
    Mqtt(mqtt::MqttWire),
    Quic(quic::QuicWire),
}

impl Wire {
    fn start(settings: &HubSettings, gate_id: &str, events: mpsc::Sender<WireEvent>) -> Self {
        match &settings.transport {
            HubTransport::Mqtt(host, port) => {
                let target = mqtt::MqttTarget {
                    host,
                    port: *port,
                    venue: settings.enrolment.venue_id,
                    gate_id,
                    password: &settings.enrolment.mqtt_password,
                };
                Wire::Mqtt(mqtt::MqttWire::start(&target, events))
            }
            HubTransport::Quic { host, port, client } => {
                Wire::Quic(quic::QuicWire::start((host.clone(), *port), client.clone(), events))
            }
        }
    }

    fn send(&self, frame: Vec<u8>) -> bool {
        match self {
            Wire::Mqtt(wire) => wire.send(frame),
            Wire::Quic(wire) => wire.send(frame),
        }
    }

    fn stop(self) {
        match self {
            Wire::Mqtt(wire) => wire.stop(),
            Wire::Quic(wire) => wire.stop(),
        }
    }
}

enum Command {
    Claim {
        claim: Claim,
        reply: std::sync::mpsc::SyncSender<Verdict>,
    },
    /// A scan was recorded (or re-opened by an annulment at `seq`).
    Recorded {
        reopened: Option<u64>,
    },
}

/// The owner thread's handle on the link.
#[derive(Clone)]
pub struct HubLink {
    commands: mpsc::UnboundedSender<Command>,
    online: Arc<AtomicBool>,
    /// A claim went unanswered and nothing has come from the hub since.
    silent: Arc<AtomicBool>,
    replica_version: Arc<AtomicU64>,
    admissions_through: Arc<AtomicU64>,
    deadline: Duration,
}

impl HubLink {
    /// The hub has welcomed this gate and the connection is up.
    pub fn online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Asks the hub about an accept, if it can be asked; updates `decided`.
    pub fn arbitrate(&self, gate: &mut Gate, decided: &mut Decided, now_ms: u64) {
        let online = self.online();
        if !decided.wants_claim() {
            decided.offline = !online;
            return;
        }
        if !online || self.silent.load(Ordering::Acquire) {
            return; // decided.offline stays true
        }
        let claim_id = random_id();
        let Some(claim) = decided.claim(claim_id, gate.tick(now_ms)) else { return };
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        if self.commands.send(Command::Claim { claim, reply }).is_err() {
            return;
        }
        // A dropped sender (link lost) wakes us at once: decide alone.
        let asked = Instant::now();
        match answer.recv_timeout(self.deadline) {
            Ok(verdict) => {
                tracing::debug!(claim_id, waited = ?asked.elapsed(), "verdict");
                decided.apply(verdict);
            }
            Err(e) => {
                tracing::warn!(claim_id, waited = ?asked.elapsed(), error = %e, "no verdict from the hub; deciding alone until it is heard from");
                self.silent.store(true, Ordering::Release);
            }
        }
    }

    /// The replica version the gate holds, for the hub's dashboard.
    pub fn set_replica_version(&self, version: u64) {
        self.replica_version.store(version, Ordering::Relaxed);
    }

    /// The highest admission sequence stored in the ledger, read at start; the
    /// link keeps it up to date from the broadcasts it passes on.
    pub fn set_admissions_through(&self, seq: u64) {
        self.admissions_through.fetch_max(seq, Ordering::Relaxed);
    }

    /// A scan was recorded: the outbox has work.
    pub fn recorded(&self) {
        let _ = self.commands.send(Command::Recorded { reopened: None });
    }

    /// Scan `seq` changed after it was sent (annulled): send it again.
    pub fn reopened(&self, seq: u64) {
        let _ = self.commands.send(Command::Recorded { reopened: Some(seq) });
    }
}

fn random_id() -> u64 {
    let mut bytes = [0u8; 8];
    // Without randomness, a time-based id is still unique enough per gate.
    if getrandom::fill(&mut bytes).is_err() {
        return std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(bytes)
}

/// Starts the link task; returns the owner's handle.
pub fn spawn(
    settings: HubSettings,
    gate_id: String,
    ledger_path: PathBuf,
    to_owner: mpsc::WeakSender<Input>,
    shutdown: CancellationToken,
) -> HubLink {
    let (commands, rx) = mpsc::unbounded_channel();
    let online = Arc::new(AtomicBool::new(false));
    let silent = Arc::new(AtomicBool::new(false));
    let replica_version = Arc::new(AtomicU64::new(0));
    let admissions_through = Arc::new(AtomicU64::new(0));
    let link = HubLink {
        commands,
        online: online.clone(),
        silent: silent.clone(),
        replica_version: replica_version.clone(),
        admissions_through: admissions_through.clone(),
        deadline: settings.claim_deadline,
    };
    tokio::spawn(async move {
        let mut task = LinkTask::new(settings, gate_id, ledger_path, to_owner, online, replica_version);
        task.admissions_through = admissions_through;
        task.silent = silent;
        task.run(rx, shutdown).await;
    });
    link
}

/// The outbox cursor.
#[derive(Debug, Default)]
struct Outbox {
    acked: u64,
    sent: u64,
    sent_at: Option<Instant>,
}

struct LinkTask {
    settings: HubSettings,
    /// The key this gate shares with the hub: its frames to the hub are
    /// linked (a tag, not a signature: cheaper on the claim's path).
    link: Option<sync::LinkKey>,
    gate_id: String,
    ledger_path: PathBuf,
    ledger: Option<Ledger>,
    to_owner: mpsc::WeakSender<Input>,
    online: Arc<AtomicBool>,
    /// Shared with [`HubLink`]: cleared by any authentic frame from the hub.
    silent: Arc<AtomicBool>,
    pending: HashMap<u64, (Instant, std::sync::mpsc::SyncSender<Verdict>)>,
    replica_version: Arc<AtomicU64>,
    /// Highest admission sequence handed to the owner (or stored before start).
    admissions_through: Arc<AtomicU64>,
    outbox: Outbox,
    last_sent: Instant,
    /// The broker accepted our connection (the hub may not have answered yet).
    connected: bool,
    /// Inputs the owner's queue had no room for yet.
    for_owner: std::collections::VecDeque<Input>,
    /// The manifest being downloaded, if any.
    download: Option<download::Download>,
    /// When download progress was last told to the owner.
    progress_told: Instant,
    /// The last manifest handed to the owner.
    handed_over: Option<ManifestOffer>,
}

impl LinkTask {
    fn new(
        settings: HubSettings,
        gate_id: String,
        ledger_path: PathBuf,
        to_owner: mpsc::WeakSender<Input>,
        online: Arc<AtomicBool>,
        replica_version: Arc<AtomicU64>,
    ) -> Self {
        Self {
            link: settings.gate_key.link_key(&settings.hub_key),
            settings,
            gate_id,
            ledger_path,
            ledger: None,
            to_owner,
            online,
            silent: Arc::default(),
            pending: HashMap::new(),
            replica_version,
            admissions_through: Arc::default(),
            outbox: Outbox::default(),
            last_sent: Instant::now(),
            connected: false,
            for_owner: std::collections::VecDeque::new(),
            download: None,
            progress_told: Instant::now(),
            handed_over: None,
        }
    }

    async fn run(&mut self, mut commands: mpsc::UnboundedReceiver<Command>, shutdown: CancellationToken) {
        let (events_tx, mut events) = mpsc::channel(1_024);
        let wire = Wire::start(&self.settings, &self.gate_id, events_tx);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.recv() => match event {
                    Some(event) => self.on_event(event, &wire),
                    None => break,
                },
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command, &wire),
                    None => break,
                },
                _ = tick.tick() => self.on_tick(&wire),
            }
        }
        self.set_offline();
        wire.stop();
    }

    fn set_offline(&mut self) {
        if self.online.swap(false, Ordering::AcqRel) {
            self.hand_over(Input::HubLink { online: false });
        }
        // The request died with the link; the download resumes after the welcome.
        if let Some(download) = &mut self.download {
            download.asked_at = None;
        }
        // Waiting claims give up at once and decide alone.
        self.pending.clear();
    }

    fn publish(&mut self, wire: &Wire, message: &GateMessage) -> bool {
        let frame = match &self.link {
            Some(link) => link.seal(&self.gate_id, HUB_ID, &message.encode()),
            None => self.settings.gate_key.seal(&self.gate_id, Recipient::Node(HUB_ID), &message.encode()),
        };
        self.last_sent = Instant::now();
        wire.send(frame)
    }

    fn hello(&mut self, wire: &Wire) {
        let hello = Hello {
            replica_version: self.replica_version.load(Ordering::Relaxed),
            last_seq: self.outbox.sent,
            hlc: Default::default(),
            admissions_through: self.admissions_through.load(Ordering::Relaxed),
        };
        self.publish(wire, &GateMessage::Hello(hello));
    }

    fn ledger(&mut self) -> Option<&Ledger> {
        if self.ledger.is_none() {
            match Ledger::open(&self.ledger_path, &self.gate_id) {
                Ok(ledger) => self.ledger = Some(ledger),
                Err(e) => tracing::warn!(error = %e, "outbox cannot read the ledger"),
            }
        }
        self.ledger.as_ref()
    }

    fn on_event(&mut self, event: WireEvent, wire: &Wire) {
        match event {
            WireEvent::Up => {
                self.connected = true;
                self.hello(wire);
            }
            WireEvent::Frame(bytes) => self.on_frame(&bytes, wire),
            WireEvent::Down(why) => {
                self.connected = false;
                if self.online.load(Ordering::Acquire) {
                    tracing::warn!(%why, "hub link lost; deciding alone");
                } else {
                    tracing::debug!(%why, "hub not reachable");
                }
                self.set_offline();
            }
        }
    }

    fn on_frame(&mut self, bytes: &[u8], wire: &Wire) {
        let hub = sync::SenderKeys { public: self.settings.hub_key, link: self.link.clone() };
        let message = sync::frame::open(bytes, |sender| (sender == HUB_ID).then_some(hub))
            .map_err(|e| e.to_string())
            .and_then(|frame| {
                if frame.recipient.includes(&self.gate_id) {
                    HubMessage::decode(frame.body).map_err(|e| e.to_string())
                } else {
                    Err("addressed to another gate".into())
                }
            });
        let message = match message {
            Ok(message) => message,
            Err(why) => {
                tracing::warn!(%why, "frame from the hub topic refused");
                return;
            }
        };
        if self.silent.swap(false, Ordering::AcqRel) {
            tracing::info!("the hub answers again: claims resume");
        }
        match message {
            HubMessage::Welcome { acked_through } => {
                self.outbox = Outbox { acked: acked_through, sent: acked_through, sent_at: None };
                if let Some(first) = self.ledger().and_then(|l| l.first_unacked().ok().flatten()) {
                    // Annulled after it was acknowledged: goes up again.
                    self.outbox.sent = self.outbox.sent.min(first.saturating_sub(1));
                }
                if !self.online.swap(true, Ordering::AcqRel) {
                    self.hand_over(Input::HubLink { online: true });
                }
                self.hand_over(Input::Acked { through: acked_through });
                self.pump(wire);
            }
            HubMessage::Verdict { claim_id, verdict } => {
                if let Some((_, reply)) = self.pending.remove(&claim_id) {
                    let _ = reply.try_send(verdict);
                }
            }
            HubMessage::Ack { through } => {
                if through >= self.outbox.sent {
                    self.outbox.sent_at = None;
                }
                if through > self.outbox.acked {
                    self.outbox.acked = through;
                    self.hand_over(Input::Acked { through });
                }
                self.outbox.sent = self.outbox.sent.max(through);
                self.pump(wire);
            }
            HubMessage::Admissions(admissions) => {
                if let Some(highest) = admissions.iter().map(|a| a.seq).max() {
                    self.admissions_through.fetch_max(highest, Ordering::Relaxed);
                }
                self.hand_over(Input::Admissions(admissions));
            }
            HubMessage::Offer(offer) => self.on_offer(offer, wire),
            HubMessage::Chunk { version, offset, bytes } => self.on_chunk(version, offset, &bytes, wire),
        }
    }

    fn on_offer(&mut self, offer: ManifestOffer, wire: &Wire) {
        let have = self.replica_version.load(Ordering::Relaxed);
        if offer.version <= have || self.handed_over == Some(offer) {
            // Up to date, or this very file is with the owner (applied, or refused:
            // fetching it again would not change that).
            return;
        }
        if offer.base_version.is_some_and(|base| base != have) {
            // A delta for other gates: our hello gets us what fits.
            self.hello(wire);
            return;
        }
        if self.download.as_ref().is_none_or(|d| d.offer != offer) {
            let Some(state_dir) = self.ledger_path.parent() else { return };
            match download::Download::start(state_dir, offer) {
                Ok(download) => {
                    tracing::info!(
                        version = offer.version,
                        bytes = offer.len,
                        from = download.received,
                        "downloading manifest"
                    );
                    self.download = Some(download);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot download the manifest");
                    return;
                }
            }
        }
        self.fetch(wire);
    }

    /// Asks for the next chunk unless one is outstanding.
    fn fetch(&mut self, wire: &Wire) {
        let Some(download) = &self.download else { return };
        if download.asked_at.is_some() || !self.online.load(Ordering::Acquire) {
            return;
        }
        let message = GateMessage::Fetch {
            version: download.offer.version,
            sha256: download.offer.sha256,
            offset: download.received,
        };
        if self.publish(wire, &message)
            && let Some(download) = &mut self.download
        {
            download.asked_at = Some(Instant::now());
        }
    }

    fn on_chunk(&mut self, version: u64, offset: u64, bytes: &[u8], wire: &Wire) {
        let Some(download) = self.download.as_mut().filter(|d| d.offer.version == version) else { return };
        if bytes.is_empty() && offset < download.offer.len {
            // The hub no longer holds it; the next offer says what it has.
            self.download = None;
            return;
        }
        let result = download.append(offset, bytes);
        let (received, total, resumed_from) = (download.received, download.offer.len, download.resumed_from);
        match result {
            // A late duplicate of an earlier request: the one outstanding still stands.
            Ok(download::Progress::Stale) => {}
            Ok(download::Progress::More(_)) => {
                if self.progress_told.elapsed() >= PROGRESS_EVERY {
                    self.progress_told = Instant::now();
                    self.hand_over(Input::ReplicaDownload { version, received, total, resumed_from });
                }
                self.fetch(wire);
            }
            Ok(download::Progress::Done(path)) => {
                self.handed_over = self.download.take().map(|d| d.offer);
                self.hand_over(Input::ReplicaDownload { version, received, total, resumed_from });
                self.hand_over(Input::Manifest { path });
            }
            Err(e) => {
                tracing::warn!(error = %e, "manifest download failed");
                self.download = None;
                // Ask again: the offer comes back with the welcome.
                self.hello(wire);
            }
        }
    }

    /// Hands `input` to the owner thread without blocking the link; what does
    /// not fit in its queue (a scan burst) waits here, in order, for the next tick.
    fn hand_over(&mut self, input: Input) {
        self.for_owner.push_back(input);
        self.flush_to_owner();
    }

    fn flush_to_owner(&mut self) {
        let Some(owner) = self.to_owner.upgrade() else {
            self.for_owner.clear(); // the owner has stopped
            return;
        };
        while let Some(input) = self.for_owner.pop_front() {
            if let Err(mpsc::error::TrySendError::Full(input)) = owner.try_send(input) {
                self.for_owner.push_front(input);
                return;
            }
        }
    }

    fn on_command(&mut self, command: Command, wire: &Wire) {
        match command {
            Command::Claim { claim, reply } => {
                if self.online.load(Ordering::Acquire) && self.publish(wire, &GateMessage::Claim(claim.clone())) {
                    self.pending.insert(claim.claim_id, (Instant::now(), reply));
                }
                // Otherwise the reply sender drops here and the owner decides alone.
            }
            Command::Recorded { reopened } => {
                if let Some(seq) = reopened {
                    self.outbox.sent = self.outbox.sent.min(seq.saturating_sub(1));
                    self.outbox.sent_at = None;
                }
                self.pump(wire);
            }
        }
    }

    fn on_tick(&mut self, wire: &Wire) {
        self.flush_to_owner();
        // Answers that never came: the owner has long decided alone.
        let expired = self.settings.claim_deadline * 2;
        self.pending.retain(|_, (asked, _)| asked.elapsed() < expired);
        if !self.online.load(Ordering::Acquire) {
            // Connected but not welcomed yet (the hello or its answer was lost).
            if self.connected && self.last_sent.elapsed() > HELLO_RETRY {
                self.hello(wire);
            }
            return;
        }
        if let Some(download) = &mut self.download
            && download.asked_at.is_some_and(|at| at.elapsed() > RESEND_AFTER)
        {
            download.asked_at = None;
        }
        self.fetch(wire);
        if self.outbox.sent_at.is_some_and(|at| at.elapsed() > RESEND_AFTER) {
            self.outbox.sent = self.outbox.acked;
            self.outbox.sent_at = None;
        }
        self.pump(wire);
        if self.last_sent.elapsed() > HEARTBEAT {
            self.hello(wire);
        }
    }

    /// Sends the next batch if none is in flight.
    fn pump(&mut self, wire: &Wire) {
        if !self.online.load(Ordering::Acquire) || self.outbox.sent_at.is_some() {
            return;
        }
        let after = self.outbox.sent;
        let reports = match self.ledger().map(|l| l.reports_after(after, MAX_BATCH)) {
            Some(Ok(reports)) => reports,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "outbox cannot read the ledger");
                return;
            }
            None => return,
        };
        let Some(last) = reports.last().map(|r| r.seq) else { return };
        if self.publish(wire, &GateMessage::Scans(reports)) {
            self.outbox.sent = last;
            self.outbox.sent_at = Some(Instant::now());
        }
    }
}
