//! The hub's core loop: frames in, arbitration, one grouped commit, replies out.
//!
//! Transports (MQTT, QUIC) hand every received frame to one [`Core`] thread
//! through a channel. The core takes everything waiting (up to [`MAX_GROUP`]
//! frames), opens and checks each, runs the arbiter, commits all the changes in
//! one transaction, and only then sends replies and broadcasts. A refused frame
//! (garbage, oversized, forged, unknown or revoked sender, wrong topic) is logged
//! and counted, and changes nothing.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use schema::sync::{
    self, Auth, FrameError, GateMessage, HUB_ID, HubMessage, MAX_BATCH, MessageError, NodeKey, Recipient, SenderKeys,
};
use tokio::sync::mpsc;

use crate::arbiter::{Arbiter, Change};
use crate::fanout::Fanout;
use crate::status::{Status, Transport};
use crate::store::{HubStore, StoreError};

/// Most frames handled in one commit.
pub const MAX_GROUP: usize = 1_024;
/// A commit slower than this is logged: gates wait on it.
const SLOW_COMMIT: Duration = Duration::from_millis(100);
/// How often an unknown sender may trigger a re-read of the enrolled gates.
const KEY_RELOAD: Duration = Duration::from_millis(500);
/// Known keys are read again this often, so a revoked gate is refused soon.
const KEY_REFRESH: Duration = Duration::from_secs(5);

/// A frame as a transport received it.
#[derive(Debug)]
pub struct Inbound {
    /// The transport it came over.
    pub transport: Transport,
    /// The gate the transport vouches for: the MQTT topic's gate, or the QUIC
    /// client certificate's. The signer must be this gate.
    pub claimed_gate: Option<String>,
    /// The frame.
    pub bytes: Vec<u8>,
}

/// A frame to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// To one gate.
    To {
        /// The gate.
        gate: String,
        /// The sealed frame.
        frame: Vec<u8>,
    },
    /// To every gate.
    All(Vec<u8>),
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Bad frame: layout, size, signature, sender.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Bad body.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// Signed by one gate, sent on another's topic or connection.
    #[error("frame signed by {signer:?} arrived as {transport_gate:?}")]
    WrongGate {
        /// The signer.
        signer: String,
        /// What the transport said.
        transport_gate: String,
    },
    /// Addressed to someone else.
    #[error("frame not addressed to the hub")]
    NotForHub,
}

/// Why the core stopped.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The store failed; nothing more can be acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The manifests the hub serves, replaced whole when the folder changes.
pub type SharedLibrary = std::sync::Arc<std::sync::RwLock<crate::manifests::Library>>;

/// The hub's single writer.
pub struct Core {
    store: HubStore,
    library: SharedLibrary,
    arbiter: Arbiter,
    keys: HashMap<String, SenderKeys>,
    keys_read: Instant,
    /// Gates whose last frame was linked: they are answered in kind. A gate
    /// that signs (older software) gets signed answers.
    linked: HashSet<String>,
    hub_key: NodeKey,
    status: Status,
    /// Where admissions go once committed; without one, they are sealed and
    /// sent right after the replies of their group.
    fanout: Option<Fanout>,
}

/// What one handled frame wants sent after the commit.
#[derive(Default)]
struct Pending {
    changes: Vec<Change>,
    replies: Vec<(String, HubMessage)>,
    broadcasts: Vec<sync::Admission>,
}

impl Core {
    /// Opens the core over `store`, rebuilding the arbiter from it.
    pub fn new(store: HubStore, hub_key: NodeKey, status: Status) -> Result<Self, CoreError> {
        let arbiter = store.load()?;
        let keys = sender_keys(&hub_key, store.gate_keys()?, &HashMap::new());
        for gate in store.gates()? {
            status.enrolled(&gate.gate_id, gate.revoked_ms.is_some());
        }
        status.set_inside(arbiter.inside());
        status.restore_conflicts(store.conflicts()?);
        let plot_from = now_ms().saturating_sub(crate::venue_view::PLOT_MINUTES * 60_000);
        status.restore_entries(store.entries_since(plot_from)?);
        Ok(Self {
            store,
            library: SharedLibrary::default(),
            arbiter,
            keys,
            keys_read: Instant::now(),
            linked: HashSet::new(),
            hub_key,
            status,
            fanout: None,
        })
    }

    /// Hands committed admissions to `fanout` instead of broadcasting each group's.
    pub fn broadcast_through(&mut self, fanout: Fanout) {
        self.fanout = Some(fanout);
    }

    /// Serves the manifests of `library` to gates (none until this is called).
    pub fn serve_manifests(&mut self, library: SharedLibrary) {
        self.library = library;
    }

    /// Runs until every transport has dropped its sender.
    pub fn run(mut self, mut inbound: mpsc::Receiver<Inbound>, outbound: &dyn Fn(Outbound)) -> Result<(), CoreError> {
        while let Some(first) = inbound.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match inbound.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            self.handle_group(group, outbound)?;
        }
        Ok(())
    }

    /// Handles frames as one group: one commit, then every reply.
    pub fn handle_group(&mut self, group: Vec<Inbound>, outbound: &dyn Fn(Outbound)) -> Result<(), CoreError> {
        let mut pending = Pending::default();
        for inbound in group {
            if let Err(refusal) = self.handle(&inbound, &mut pending) {
                tracing::warn!(transport = ?inbound.transport, gate = ?inbound.claimed_gate, %refusal, "frame refused");
                self.status.refused(&refusal.to_string());
            }
        }
        if !pending.changes.is_empty() {
            let started = Instant::now();
            self.store.commit(&pending.changes, now_ms())?;
            let took = started.elapsed();
            if took > SLOW_COMMIT {
                tracing::warn!(?took, changes = pending.changes.len(), "slow commit: the disk is holding answers back");
            }
        }
        // Durable: now answer — verdicts first. A gate is waiting on those, and
        // on brokers without TCP_NODELAY a small message queued behind another
        // small one to the same gate waits for a delayed TCP ack (40 ms).
        let mut replies = pending.replies;
        replies.sort_by_key(|(_, message)| !matches!(message, HubMessage::Verdict { .. }));
        for (gate, message) in replies {
            let link = self.keys.get(&gate).and_then(|k| k.link.as_ref()).filter(|_| self.linked.contains(&gate));
            let frame = match link {
                Some(link) => link.seal(HUB_ID, &gate, &message.encode()),
                None => self.hub_key.seal(HUB_ID, Recipient::Node(&gate), &message.encode()),
            };
            outbound(Outbound::To { gate, frame });
        }
        let broadcasts = match &self.fanout {
            Some(fanout) if !pending.broadcasts.is_empty() => fanout.send(pending.broadcasts).err().unwrap_or_default(),
            _ => pending.broadcasts,
        };
        for frame in crate::fanout::seal(&self.hub_key, &broadcasts) {
            outbound(Outbound::All(frame));
        }
        // The dashboard's figures last: nobody waits on them.
        if !pending.changes.is_empty() {
            self.status.committed(&pending.changes);
            self.status.set_inside(self.arbiter.inside());
        }
        Ok(())
    }

    fn key_of(&mut self, sender: &str) -> Option<SenderKeys> {
        let stale = self.keys_read.elapsed() > KEY_REFRESH;
        if stale || (!self.keys.contains_key(sender) && self.keys_read.elapsed() > KEY_RELOAD) {
            // A gate enrolled (or revoked, here or in the cloud) while the hub runs.
            if let Ok(keys) = self.store.gate_keys() {
                self.keys = sender_keys(&self.hub_key, keys, &self.keys);
            }
            self.keys_read = Instant::now();
        }
        self.keys.get(sender).cloned()
    }

    fn handle(&mut self, inbound: &Inbound, pending: &mut Pending) -> Result<(), Refusal> {
        let frame = sync::frame::open(&inbound.bytes, |sender| self.key_of(sender))?;
        if frame.recipient != Recipient::Node(HUB_ID) {
            return Err(Refusal::NotForHub);
        }
        let gate = frame.sender.to_owned();
        if let Some(transport_gate) = &inbound.claimed_gate
            && *transport_gate != gate
        {
            return Err(Refusal::WrongGate { signer: gate, transport_gate: transport_gate.clone() });
        }
        match frame.auth {
            Auth::Linked => self.linked.insert(gate.clone()),
            Auth::Signed => self.linked.remove(&gate),
        };
        let message = GateMessage::decode(frame.body)?;
        self.status.seen(&gate, inbound.transport, &message);
        match message {
            GateMessage::Hello(hello) => {
                let acked_through = self.arbiter.acked_through(&gate);
                pending.replies.push((gate.clone(), HubMessage::Welcome { acked_through }));
                // Who came in while the gate was away (or before it was installed).
                for missed in self.arbiter.admissions_after(hello.admissions_through).chunks(MAX_BATCH) {
                    pending.replies.push((gate.clone(), HubMessage::Admissions(missed.to_vec())));
                }
                let offer = self.library.read().ok().and_then(|l| l.offer_for(hello.replica_version));
                if let Some(offer) = offer {
                    pending.replies.push((gate, HubMessage::Offer(offer)));
                }
            }
            GateMessage::Fetch { version, sha256, offset } => {
                // A read of at most one chunk, usually from the page cache; nothing to commit.
                let bytes = self.library.read().map_or(Ok(Vec::new()), |l| l.chunk(&sha256, offset));
                let bytes = bytes.unwrap_or_else(|e| {
                    tracing::warn!(version, error = %e, "cannot read manifest");
                    Vec::new()
                });
                pending.replies.push((gate, HubMessage::Chunk { version, offset, bytes }));
            }
            GateMessage::Claim(claim) => {
                let (verdict, effects) = self.arbiter.claim(&gate, &claim);
                pending.changes.extend(effects.changes);
                pending.broadcasts.extend(effects.broadcasts);
                pending.replies.push((gate, HubMessage::Verdict { claim_id: claim.claim_id, verdict }));
            }
            GateMessage::Scans(scans) => {
                let (through, effects) = self.arbiter.ingest(&gate, &scans);
                pending.changes.extend(effects.changes);
                pending.broadcasts.extend(effects.broadcasts);
                pending.replies.push((gate, HubMessage::Ack { through }));
            }
        }
        Ok(())
    }
}

/// What the hub knows of each enrolled gate: its public key and their link key
/// (an X25519 agreement: kept from `known` while the gate's key is unchanged).
fn sender_keys(
    hub_key: &NodeKey,
    gates: HashMap<String, VerifyingKey>,
    known: &HashMap<String, SenderKeys>,
) -> HashMap<String, SenderKeys> {
    gates
        .into_iter()
        .map(|(gate, public)| {
            let link = match known.get(&gate) {
                Some(k) if k.public == public => k.link.clone(),
                _ => hub_key.link_key(&public),
            };
            (gate, SenderKeys { public, link })
        })
        .collect()
}

/// Wall clock, Unix ms.
pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
