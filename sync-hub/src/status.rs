//! What the operator sees: every gate's connection, last contact, replica
//! version, entrance and scan rate; people inside per area; entries per minute
//! per entrance; refusals. Shared between the core (which updates it), the
//! manifest watcher (which hands it the venue's doors) and the dashboard and
//! metrics (which read it).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use schema::Decision;
use schema::entry::Direction;
use schema::manifest::ManifestDoors;
use schema::sync::GateMessage;
use serde::Serialize;

use crate::arbiter::Change;
use crate::venue_view::{self, AreaView, EntranceSeries, GateEntries, RefusalView};

/// How a gate reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// MQTT through the embedded or an external broker.
    Mqtt,
    /// QUIC, straight to the hub.
    Quic,
}

/// A double entry, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictView {
    /// The ticket let in twice.
    pub ticket_id: u64,
    /// Its list.
    pub list_id: u32,
    /// The earlier entry's gate.
    pub first_gate: String,
    /// …and wall-clock time, Unix ms.
    pub first_at_ms: u64,
    /// The later entry's gate.
    pub second_gate: String,
    /// …and time.
    pub second_at_ms: u64,
}

impl From<&crate::arbiter::Conflict> for ConflictView {
    fn from(c: &crate::arbiter::Conflict) -> Self {
        Self {
            ticket_id: c.ticket_id,
            list_id: c.list_id,
            first_gate: c.first.1.clone(),
            first_at_ms: c.first.2.millis(),
            second_gate: c.second.1.clone(),
            second_at_ms: c.second.2.millis(),
        }
    }
}

/// Conflicts kept for the dashboard (all stay in `hub.db`).
const RECENT_CONFLICTS: usize = 50;
/// Refused scans kept for the dashboard (all stay in `hub.db`).
const RECENT_REFUSALS: usize = 50;

/// A gate is shown offline after this long without a frame (gates say hello or
/// send scans at least every few seconds while connected).
pub const OFFLINE_AFTER: Duration = Duration::from_secs(15);

/// One gate, as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GateView {
    /// Gate id.
    pub gate_id: String,
    /// Heard from within [`OFFLINE_AFTER`].
    pub online: bool,
    /// Milliseconds since the last frame, if any.
    pub last_seen_ms_ago: Option<u64>,
    /// Transport of the last frame.
    pub transport: Option<Transport>,
    /// Replica version from its last hello.
    pub replica_version: Option<u64>,
    /// Scans received in the last minute.
    pub scans_per_min: usize,
    /// Scans stored in all.
    pub scans: u64,
    /// Enrolment revoked.
    pub revoked: bool,
    /// The entrance its entries count at.
    pub entrance: String,
}

#[derive(Debug, Default)]
struct GateState {
    last_seen: Option<Instant>,
    transport: Option<Transport>,
    replica_version: Option<u64>,
    recent: VecDeque<Instant>,
    scans: u64,
    revoked: bool,
}

#[derive(Debug, Default)]
struct Inner {
    gates: BTreeMap<String, GateState>,
    inside: HashMap<u32, u64>,
    refused: BTreeMap<String, u64>,
    rejections: BTreeMap<String, u64>,
    recent_refusals: VecDeque<RefusalView>,
    conflicts: u64,
    recent_conflicts: VecDeque<ConflictView>,
    commits: u64,
    cloud: CloudView,
    doors: Option<Arc<ManifestDoors>>,
    entries: BTreeMap<String, GateEntries>,
}

/// The link to the cloud, for the operator.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CloudView {
    /// Whether a cloud link is configured.
    pub configured: bool,
    /// Scans and conflicts waiting to go up.
    pub backlog: u64,
    /// Items the cloud acknowledged since start.
    pub uploaded: u64,
    /// Newest ticket list pulled since start.
    pub manifest_version: Option<u64>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<Mutex<Inner>>);

/// A point-in-time copy for the dashboard and `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Every enrolled or heard-from gate.
    pub gates: Vec<GateView>,
    /// People inside per list (of their latest entry).
    pub inside: BTreeMap<u32, u64>,
    /// People inside per area, against capacity.
    pub areas: Vec<AreaView>,
    /// Entries per minute per entrance over the last [`venue_view::PLOT_MINUTES`].
    pub entrances: Vec<EntranceSeries>,
    /// The current minute (Unix seconds / 60), the plot's right edge.
    pub now_minute: u64,
    /// Refused frames by reason.
    pub refused: BTreeMap<String, u64>,
    /// Rejected scans by reason code.
    pub rejections: BTreeMap<String, u64>,
    /// The latest refused scans, newest first, with where each was sent.
    pub recent_refusals: Vec<RefusalView>,
    /// Conflicts recorded (all time).
    pub conflicts: u64,
    /// The latest conflicts, newest first.
    pub recent_conflicts: Vec<ConflictView>,
    /// Grouped commits since start.
    pub commits: u64,
    /// The cloud link.
    pub cloud: CloudView,
}

impl Inner {
    fn add_entry(&mut self, gate: &str, list_id: u32, wall_ms: u64) {
        let now = now_minute();
        // A gate's clock may run ahead; its entries are not drawn in the future.
        let minute = (wall_ms / 60_000).min(now);
        self.entries.entry(gate.to_owned()).or_default().add(minute, list_id, now);
    }

    fn add_conflict(&mut self, conflict: ConflictView) {
        self.conflicts += 1;
        self.recent_conflicts.push_front(conflict);
        self.recent_conflicts.truncate(RECENT_CONFLICTS);
    }
}

impl Status {
    /// Conflicts already in the store, oldest first (at start).
    pub fn restore_conflicts(&self, conflicts: Vec<ConflictView>) {
        let mut inner = self.lock();
        for conflict in conflicts {
            inner.add_conflict(conflict);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain counters: keep going.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Accepted entries from the store (`(gate, list, wall_ms)`), at start.
    pub fn restore_entries(&self, entries: Vec<(String, u32, u64)>) {
        let mut inner = self.lock();
        for (gate, list, wall_ms) in entries {
            inner.add_entry(&gate, list, wall_ms);
        }
    }

    /// The newest manifest's lists and layout: areas and entrances.
    pub fn set_doors(&self, doors: Option<Arc<ManifestDoors>>) {
        self.lock().doors = doors;
    }

    /// A gate known from enrolment.
    pub fn enrolled(&self, gate: &str, revoked: bool) {
        self.lock().gates.entry(gate.to_owned()).or_default().revoked = revoked;
    }

    /// A frame from `gate` was accepted.
    pub fn seen(&self, gate: &str, transport: Transport, message: &GateMessage) {
        let now = Instant::now();
        let mut inner = self.lock();
        let state = inner.gates.entry(gate.to_owned()).or_default();
        state.last_seen = Some(now);
        state.transport = Some(transport);
        if let GateMessage::Hello(hello) = message {
            state.replica_version = Some(hello.replica_version);
        }
    }

    /// Changes were committed.
    pub fn committed(&self, changes: &[Change]) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.commits += 1;
        for change in changes {
            match change {
                Change::Scan { gate, report } => {
                    if report.decision == Decision::Reject {
                        let refusal = venue_view::refusal(inner.doors.as_deref(), gate, report);
                        *inner.rejections.entry(refusal.reason.clone()).or_default() += 1;
                        inner.recent_refusals.push_front(refusal);
                        inner.recent_refusals.truncate(RECENT_REFUSALS);
                    } else if report.direction == Direction::Entry && !report.annulled {
                        inner.add_entry(gate, report.list_id, report.wall_ms);
                    }
                    let state = inner.gates.entry(gate.clone()).or_default();
                    state.scans += 1;
                    state.recent.push_back(now);
                }
                Change::Conflict(c) => inner.add_conflict(c.into()),
                _ => {}
            }
        }
    }

    /// People inside, per list.
    pub fn set_inside(&self, inside: HashMap<u32, u64>) {
        self.lock().inside = inside;
    }

    /// A frame was refused.
    pub fn refused(&self, why: &str) {
        // Group by the error's kind (its first words), not its variable detail.
        let kind: String = why.split([':', '"']).next().unwrap_or(why).trim().to_owned();
        *self.lock().refused.entry(kind).or_default() += 1;
    }

    /// Marks the cloud link as configured.
    pub fn cloud_configured(&self) {
        self.lock().cloud.configured = true;
    }

    /// What waits to go up.
    pub fn cloud_backlog(&self, backlog: u64) {
        self.lock().cloud.backlog = backlog;
    }

    /// The cloud acknowledged `n` items.
    pub fn cloud_uploaded(&self, n: u64) {
        let mut inner = self.lock();
        inner.cloud.uploaded += n;
        inner.cloud.last_error = None;
    }

    /// A ticket list came down.
    pub fn cloud_manifest(&self, version: u64) {
        let mut inner = self.lock();
        inner.cloud.manifest_version = Some(version);
        inner.cloud.last_error = None;
    }

    /// Talking to the cloud failed.
    pub fn cloud_failed(&self, why: &str) {
        self.lock().cloud.last_error = Some(why.to_owned());
    }

    /// A copy for display.
    pub fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let mut inner = self.lock();
        let minute_ago = now.checked_sub(Duration::from_secs(60));
        let doors = inner.doors.clone();
        let doors = doors.as_deref();
        let entrance_of = |inner: &Inner, gate: &str| {
            venue_view::entrance_of(doors, gate, inner.entries.get(gate).and_then(|e| e.list_id))
        };
        let entrances: Vec<String> = inner.gates.keys().map(|id| entrance_of(&inner, id)).collect();
        let gates = inner
            .gates
            .iter_mut()
            .zip(entrances)
            .map(|((id, state), entrance)| {
                while state.recent.front().is_some_and(|t| Some(*t) < minute_ago) {
                    state.recent.pop_front();
                }
                let ago = state.last_seen.map(|t| now.duration_since(t));
                GateView {
                    gate_id: id.clone(),
                    online: ago.is_some_and(|a| a < OFFLINE_AFTER),
                    last_seen_ms_ago: ago.map(|a| a.as_millis() as u64),
                    transport: state.transport,
                    replica_version: state.replica_version,
                    scans_per_min: state.recent.len(),
                    scans: state.scans,
                    revoked: state.revoked,
                    entrance,
                }
            })
            .collect();
        let now_minute = now_minute();
        Snapshot {
            gates,
            inside: inner.inside.iter().map(|(k, v)| (*k, *v)).collect(),
            areas: venue_view::areas(doors, &inner.inside),
            entrances: venue_view::entrances(doors, &inner.entries, now_minute),
            now_minute,
            refused: inner.refused.clone(),
            rejections: inner.rejections.clone(),
            recent_refusals: inner.recent_refusals.iter().cloned().collect(),
            conflicts: inner.conflicts,
            recent_conflicts: inner.recent_conflicts.iter().cloned().collect(),
            commits: inner.commits,
            cloud: inner.cloud.clone(),
        }
    }
}

/// Now, in minutes since the Unix epoch.
fn now_minute() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60)
}
