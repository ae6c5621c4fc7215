//! Arbitration between gates: one ticket, one entry. Pure — no I/O, no clock.
//!
//! The hub is the venue's single writer. A gate asks ([`Claim`]) before it
//! accepts; the arbiter answers from every admission the venue has seen, so the
//! first claim wins and the second gate hears "already in, at gate X". A ticket
//! has one history across the venue's check-in lists: entering at the VIP
//! entrance counts at the main one, and an exit anywhere lets it in again where
//! the list allows re-entry. Gates that
//! decided offline report their scans later ([`ScanReport`]); the arbiter stores
//! each scan once (by `gate:seq`), and where two accepted entries of one ticket
//! have no exit between them it records a [`Conflict`].
//!
//! Every call returns the [`Change`]s to make durable; the caller commits them
//! (many calls in one transaction) *before* sending any reply or broadcast, so
//! an answer never runs ahead of the disk.

use std::collections::{BTreeSet, HashMap};

use schema::Decision;
use schema::entry::{self, Direction, PastScan};
use schema::hlc::HlcTimestamp;
use schema::sync::{Admission, Claim, FirstEntry, ScanReport, Verdict};

/// One admission or exit the venue knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// `gate#claim` for an online grant, `gate:seq` for an offline scan.
    pub key: String,
    /// The ticket.
    pub ticket_id: u64,
    /// The list it was scanned on: its area is where the ticket is.
    pub list_id: u32,
    /// Gate that let it through.
    pub gate: String,
    /// Logical time.
    pub at: HlcTimestamp,
    /// In or out.
    pub direction: Direction,
    /// Withdrawn: nobody passed, or the gate turned the person away after all.
    pub annulled: bool,
    /// The gate's scan report has arrived (always true for offline scans).
    pub confirmed: bool,
    /// When it last changed, in the hub's order of admission changes.
    pub seq: u64,
}

impl Admitted {
    /// As broadcast to gates.
    pub fn broadcast(&self) -> Admission {
        Admission {
            ticket_id: self.ticket_id,
            list_id: self.list_id,
            direction: self.direction,
            at: self.at,
            gate: self.gate.clone(),
            annulled: self.annulled,
            key: self.key.clone(),
            seq: self.seq,
        }
    }

    fn past_scan(&self) -> PastScan {
        PastScan { at: self.at, direction: self.direction, gate: self.gate.clone() }
    }
}

/// Two accepted entries of one ticket with no exit between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The ticket.
    pub ticket_id: u64,
    /// The list.
    pub list_id: u32,
    /// The earlier entry: key, gate, time.
    pub first: (String, String, HlcTimestamp),
    /// The later entry.
    pub second: (String, String, HlcTimestamp),
}

/// What must become durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new admission or exit.
    Admit(Admitted),
    /// An admission withdrawn.
    Annul {
        /// Its key.
        key: String,
        /// Its new place in the order of changes.
        seq: u64,
    },
    /// A granted claim's scan report arrived.
    Confirm {
        /// The admission's key.
        key: String,
    },
    /// A scan report stored as received.
    Scan {
        /// Reporting gate.
        gate: String,
        /// The report.
        report: ScanReport,
    },
    /// A stored scan was annulled afterwards.
    AnnulScan {
        /// Gate.
        gate: String,
        /// Sequence.
        seq: u64,
    },
    /// A double entry.
    Conflict(Conflict),
    /// Every scan of `gate` up to `through` is stored.
    Progress {
        /// Gate.
        gate: String,
        /// Cumulative sequence.
        through: u64,
    },
}

/// What handling a message produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// To commit, in order, before anything below is sent.
    pub changes: Vec<Change>,
    /// To broadcast to every gate after the commit.
    pub broadcasts: Vec<Admission>,
}

impl Effects {
    fn admit(&mut self, admitted: Admitted) {
        self.broadcasts.push(admitted.broadcast());
        self.changes.push(Change::Admit(admitted));
    }
}

/// Per gate: which scans are stored. Gates send in sequence order, so the set
/// above the watermark stays small.
#[derive(Debug, Default, Clone)]
struct Received {
    through: u64,
    above: BTreeSet<u64>,
}

impl Received {
    fn contains(&self, seq: u64) -> bool {
        seq <= self.through || self.above.contains(&seq)
    }

    fn insert(&mut self, seq: u64) {
        self.above.insert(seq);
        while self.above.remove(&(self.through + 1)) {
            self.through += 1;
        }
    }
}

/// The venue's admissions, in memory; rebuilt from the store at start.
#[derive(Debug, Default)]
pub struct Arbiter {
    /// Admissions per ticket, on every list, in arrival order.
    tickets: HashMap<u64, Vec<Admitted>>,
    /// Admission key → ticket, for grants and accepted scans.
    by_key: HashMap<String, u64>,
    /// Scans stored per gate.
    received: HashMap<String, Received>,
    /// The last admission change's sequence.
    last_seq: u64,
    /// Tickets inside now, by the list they entered on: kept up to date as
    /// admissions change, since the dashboard's figure is refreshed after every
    /// commit. A ticket is counted once, on the list of its latest entry.
    inside: HashMap<u32, u64>,
}

/// Where a ticket is: the list of its latest admission (by logical time, not
/// annulled) if that is an entry, `None` if outside.
fn inside_on(admitted: &[Admitted]) -> Option<u32> {
    let last = admitted.iter().filter(|a| !a.annulled).max_by_key(|a| (a.at, a.direction == Direction::Entry))?;
    (last.direction == Direction::Entry).then_some(last.list_id)
}

/// The key of an online grant.
pub fn claim_key(gate: &str, claim_id: u64) -> String {
    format!("{gate}#{claim_id:x}")
}

/// The key (and id) of a scan.
pub fn scan_key(gate: &str, seq: u64) -> String {
    format!("{gate}:{seq}")
}

impl Arbiter {
    /// Restores an admission from the store.
    pub fn restore_admission(&mut self, admitted: Admitted) {
        self.last_seq = self.last_seq.max(admitted.seq);
        let ticket = admitted.ticket_id;
        self.by_key.insert(admitted.key.clone(), ticket);
        self.change_ticket(ticket, |admissions| admissions.push(admitted));
    }

    /// Changes the admissions of one ticket, keeping `inside` right.
    fn change_ticket<R>(&mut self, ticket: u64, change: impl FnOnce(&mut Vec<Admitted>) -> R) -> R {
        let admissions = self.tickets.entry(ticket).or_default();
        let before = inside_on(admissions);
        let result = change(admissions);
        let after = inside_on(admissions);
        if before != after {
            if let Some(list) = before {
                let count = self.inside.entry(list).or_default();
                *count = count.saturating_sub(1);
            }
            if let Some(list) = after {
                *self.inside.entry(list).or_default() += 1;
            }
        }
        result
    }

    /// Restores which scans of a gate are stored: all up to `through`, plus `above`.
    pub fn restore_received(&mut self, gate: &str, through: u64, above: impl IntoIterator<Item = u64>) {
        let received = self.received.entry(gate.to_owned()).or_default();
        received.through = received.through.max(through);
        for seq in above {
            received.insert(seq);
        }
    }

    /// Every scan of `gate` up to this sequence is stored.
    pub fn acked_through(&self, gate: &str) -> u64 {
        self.received.get(gate).map_or(0, |r| r.through)
    }

    fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// Admissions changed after `seq`, in the order they changed: what a gate
    /// that has seen up to `seq` missed.
    pub fn admissions_after(&self, seq: u64) -> Vec<Admission> {
        let mut after: Vec<&Admitted> = self.tickets.values().flatten().filter(|a| a.seq > seq).collect();
        after.sort_by_key(|a| a.seq);
        after.into_iter().map(Admitted::broadcast).collect()
    }

    /// Admissions of one ticket, on every list.
    pub fn admissions(&self, ticket_id: u64) -> &[Admitted] {
        self.tickets.get(&ticket_id).map_or(&[], Vec::as_slice)
    }

    /// Number of tickets inside now, by the list of their latest entry: each
    /// ticket counts once, wherever it entered, and not after its exit.
    pub fn inside(&self) -> HashMap<u32, u64> {
        self.inside.clone()
    }

    fn find_mut(&mut self, key: &str) -> Option<&mut Admitted> {
        let ticket = self.by_key.get(key)?;
        self.tickets.get_mut(ticket)?.iter_mut().find(|a| a.key == key)
    }

    /// Answers a claim from `gate`. Asking again with the same claim id gets the
    /// same grant; a refusal is not stored, so asking again re-evaluates.
    pub fn claim(&mut self, gate: &str, claim: &Claim) -> (Verdict, Effects) {
        let key = claim_key(gate, claim.claim_id);
        let mut effects = Effects::default();
        let existing = self.find_mut(&key).map(|a| a.annulled);
        if existing == Some(false) {
            return (Verdict::Granted, effects);
        }
        if claim.direction == Direction::Entry {
            // A grant to this same gate that it never confirmed was lost there
            // (it crashed before recording, or gave up waiting): had it recorded
            // the admission, its own history would have refused this scan.
            let history: Vec<PastScan> = self
                .admissions(claim.ticket_id)
                .iter()
                .filter(|a| !a.annulled && (a.confirmed || a.gate != gate))
                .map(Admitted::past_scan)
                .collect();
            if let Err(first) = entry::may_enter(&history, claim.rule.multiple, claim.rule.after_exit) {
                let (at, gate) = first.unwrap_or_default();
                return (Verdict::AlreadyIn(FirstEntry { at, gate }), effects);
            }
        }
        let admitted = Admitted {
            key: key.clone(),
            ticket_id: claim.ticket_id,
            list_id: claim.list_id,
            gate: gate.to_owned(),
            at: claim.hlc,
            direction: claim.direction,
            annulled: false,
            confirmed: false,
            seq: self.next_seq(),
        };
        match self.by_key.get(&key).copied() {
            // The same claim asked again after its grant was withdrawn: grant anew.
            Some(ticket) => self.change_ticket(ticket, |admissions| {
                if let Some(withdrawn) = admissions.iter_mut().find(|a| a.key == key) {
                    *withdrawn = admitted.clone();
                }
            }),
            None => self.restore_admission(admitted.clone()),
        }
        effects.admit(admitted);
        (Verdict::Granted, effects)
    }

    /// Takes in a batch of scan reports from `gate` (already checked to be in
    /// sequence order). Returns the effects and the new cumulative ack.
    pub fn ingest(&mut self, gate: &str, reports: &[ScanReport]) -> (u64, Effects) {
        let mut effects = Effects::default();
        for report in reports {
            self.ingest_one(gate, report, &mut effects);
        }
        let through = self.acked_through(gate);
        effects.changes.push(Change::Progress { gate: gate.to_owned(), through });
        (through, effects)
    }

    fn ingest_one(&mut self, gate: &str, report: &ScanReport, effects: &mut Effects) {
        let accepted = report.decision == Decision::Accept;
        let key = match report.claim_id {
            Some(claim) => claim_key(gate, claim),
            None => scan_key(gate, report.seq),
        };
        let received = self.received.entry(gate.to_owned()).or_default();
        if received.contains(report.seq) {
            // Already stored; the only news a repeat can carry is an annulment.
            if accepted && report.annulled {
                effects.changes.push(Change::AnnulScan { gate: gate.to_owned(), seq: report.seq });
                self.annul(&key, effects);
            }
            return;
        }
        received.insert(report.seq);
        effects.changes.push(Change::Scan { gate: gate.to_owned(), report: report.clone() });

        let granted = report.claim_id.is_some() && self.by_key.contains_key(&key);
        if granted {
            if accepted && !report.annulled {
                if let Some(admission) = self.find_mut(&key) {
                    admission.confirmed = true;
                }
                effects.changes.push(Change::Confirm { key });
            } else {
                // Granted, but the gate did not let the person in after all.
                self.annul(&key, effects);
            }
            return;
        }
        let Some(ticket_id) = report.ticket_id.filter(|_| accepted && !report.annulled) else {
            return;
        };
        let admitted = Admitted {
            key,
            ticket_id,
            list_id: report.list_id,
            gate: gate.to_owned(),
            at: report.hlc,
            direction: report.direction,
            annulled: false,
            confirmed: true,
            seq: self.next_seq(),
        };
        if admitted.direction == Direction::Entry
            && !report.rule.multiple
            && let Some(conflict) = self.double_entry(&admitted)
        {
            effects.changes.push(Change::Conflict(conflict));
        }
        self.restore_admission(admitted.clone());
        effects.admit(admitted);
    }

    fn annul(&mut self, key: &str, effects: &mut Effects) {
        let Some(&ticket) = self.by_key.get(key) else { return };
        if self.find_mut(key).is_none_or(|a| a.annulled) {
            return;
        }
        let seq = self.next_seq();
        let annulled = self.change_ticket(ticket, |admissions| {
            let admission = admissions.iter_mut().find(|a| a.key == key)?;
            admission.annulled = true;
            admission.seq = seq;
            Some(admission.broadcast())
        });
        if let Some(broadcast) = annulled {
            effects.broadcasts.push(broadcast);
            effects.changes.push(Change::Annul { key: key.to_owned(), seq });
        }
    }

    /// An entry already recorded, on any list, with no exit between it and
    /// `new`, by logical time.
    fn double_entry(&self, new: &Admitted) -> Option<Conflict> {
        let live = || self.admissions(new.ticket_id).iter().filter(|a| !a.annulled);
        let before = live().filter(|a| a.at <= new.at).max_by_key(|a| a.at);
        let after = live().filter(|a| a.at > new.at).min_by_key(|a| a.at);
        let entry = |a: &&Admitted| a.direction == Direction::Entry;
        let (first, second) = match (before.filter(entry), after.filter(entry)) {
            (Some(earlier), _) => (earlier, new),
            (None, Some(later)) => (new, later),
            (None, None) => return None,
        };
        Some(Conflict {
            ticket_id: new.ticket_id,
            list_id: new.list_id,
            first: (first.key.clone(), first.gate.clone(), first.at),
            second: (second.key.clone(), second.gate.clone(), second.at),
        })
    }
}
