//! One gate's decision loop step: a scanned code in, a recorded decision out.
//!
//! Order per scan: verify the signature (keyring) → read the replica row and
//! unseal the holder name → read the ticket's history from the ledger → decide
//! (pure, `schema::entry`) → record the scan in the ledger, fsynced. Only then
//! is the result returned, so nothing is shown or opened that is not on disk.

use schema::entry::{self, CheckInList, Direction, Outcome, ReplicaTicket, Route, ScanContext};
use schema::hlc::Hlc;
use schema::hlc::HlcTimestamp;
use schema::manifest::Manifest;
use schema::sync::{Admission, Claim, ReentryRule, Verdict};
use schema::{Decision, DecisionLine, Keyring, Reason, UnixSeconds, VerifiedTicket, barcode, holder};
use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::store::replica::Post;
use crate::store::{Applied, Ledger, NewScan, Replica, ScanRecord, StoreError};

/// File name of the replica inside the state folder.
pub const REPLICA_FILE: &str = "replica.db";
/// File name of the ledger inside the state folder.
pub const LEDGER_FILE: &str = "ledger.db";

/// Why a gate cannot decide at all (as opposed to rejecting a ticket).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The local stores failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The keyring file is missing or invalid.
    #[error("{0}")]
    Keyring(String),
    /// The state folder cannot be created.
    #[error("{path}: {source}")]
    StateDir {
        /// The folder.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The gate cannot decide: no manifest imported yet, or it does not know
    /// what it works (no list pinned, no entrance assigned, none chosen).
    #[error("this gate serves no check-in list yet: import a manifest first, or choose the entrance")]
    NoList,
    /// Remembering door staff's choice of entrance failed.
    #[error("{path}: {source}")]
    Choice {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
}

/// A decision not yet recorded.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The decision with what staff need to see.
    pub outcome: Outcome,
    /// The authentic ticket, if the signature verified.
    pub ticket: Option<VerifiedTicket>,
    /// Decided without the hub (the default until a hub answers).
    pub offline: bool,
    /// The claim the hub was asked, if any.
    pub claim_id: Option<u64>,
    /// Logical time, fixed when a claim is made (else taken at recording).
    pub hlc: Option<HlcTimestamp>,
    code_hash: [u8; 32],
    direction: Direction,
    list_id: u32,
    rule: ReentryRule,
    now_ms: u64,
}

impl Decided {
    /// The hub must be asked before this accept stands.
    pub fn wants_claim(&self) -> bool {
        self.outcome.decision == Decision::Accept && self.ticket.is_some()
    }

    /// The claim to send: `claim_id` random, `hlc` from [`Gate::tick`].
    pub fn claim(&mut self, claim_id: u64, hlc: HlcTimestamp) -> Option<Claim> {
        let ticket = self.ticket.as_ref()?;
        self.claim_id = Some(claim_id);
        self.hlc = Some(hlc);
        Some(Claim {
            claim_id,
            ticket_id: ticket.claims.ticket_id,
            list_id: self.list_id,
            direction: self.direction,
            rule: self.rule,
            hlc,
        })
    }

    /// Takes the hub's answer: a refusal turns the accept into `already_redeemed`
    /// with where and when the ticket entered.
    pub fn apply(&mut self, verdict: Verdict) {
        self.offline = false;
        if let Verdict::AlreadyIn(first) = verdict {
            self.outcome.decision = Decision::Reject;
            self.outcome.reason = Some(Reason::AlreadyRedeemed);
            self.outcome.display.first_entry = Some((first.at, first.gate));
        }
    }
}

/// The result of one scan.
#[derive(Debug, Clone)]
pub struct ScanResult {
    /// The decision with what staff need to see.
    pub outcome: Outcome,
    /// The JSON line of `verify` and `scan`.
    pub line: DecisionLine,
    /// The ledger entry, already durable.
    pub record: ScanRecord,
}

/// A gate: keyring, replica, ledger and clock.
pub struct Gate {
    config: Config,
    keyring: Keyring,
    replica: Replica,
    ledger: Ledger,
    clock: Hlc,
    /// What the gate works: its pinned list, its assigned entrance, or the
    /// entrance door staff chose; `None` until one is known.
    post: Option<Post>,
    /// The check-in lists served there, as the replica last defined them.
    lists: Vec<CheckInList>,
    /// A manifest has been imported (an empty replica decides nothing).
    imported: bool,
    /// The venue's other lists, to name the right entrance in a refusal.
    routes: Vec<Route>,
    /// Ticket type names, for display (a handful; kept in memory).
    type_names: HashMap<u32, String>,
}

impl Gate {
    /// Opens the gate's state (creating the folder and databases if needed).
    pub fn open(config: Config) -> Result<Self, GateError> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|source| GateError::StateDir { path: config.state_dir.display().to_string(), source })?;
        let keyring = crate::cli::load_keyring(&config.keyring).map_err(GateError::Keyring)?;
        let replica = Replica::open(&config.state_dir.join(REPLICA_FILE))?;
        let ledger = Ledger::open(&config.state_dir.join(LEDGER_FILE), &config.gate_id)?;
        let clock = Hlc::resume(ledger.last_hlc()?);
        let mut gate = Self {
            config,
            keyring,
            replica,
            ledger,
            clock,
            post: None,
            lists: Vec::new(),
            imported: false,
            routes: Vec::new(),
            type_names: HashMap::new(),
        };
        gate.refresh_doors()?;
        Ok(gate)
    }

    /// Re-reads what the gate works and its lists: the list `gate.toml` pins,
    /// else the entrance the cloud assigned this gate, else the one door
    /// staff chose here (while it still exists).
    fn refresh_doors(&mut self) -> Result<(), GateError> {
        let entrances = self.replica.entrances()?;
        let chosen = crate::post::chosen(&self.config.state_dir).filter(|id| entrances.iter().any(|(e, _)| e == id));
        self.post = match self.config.list_id {
            Some(list) => Some(Post::List(list)),
            None => self.replica.gate_entrance(&self.config.gate_id)?.or(chosen).map(Post::Entrance),
        };
        (self.lists, self.routes) = match self.post {
            Some(post) => self.replica.doors_for(post)?,
            None => (Vec::new(), Vec::new()),
        };
        self.type_names = self.replica.type_names()?;
        self.imported = self.replica.version()?.is_some();
        Ok(())
    }

    /// What the gate works now.
    pub fn post(&self) -> Option<Post> {
        self.post
    }

    /// The entrance the gate works, by name (`None` for a pinned list).
    pub fn entrance_name(&self) -> Result<Option<String>, GateError> {
        let Some(Post::Entrance(id)) = self.post else { return Ok(None) };
        Ok(self.replica.entrances()?.into_iter().find(|(e, _)| *e == id).map(|(_, name)| name))
    }

    /// The entrances door staff may choose from, when the gate has neither a
    /// pinned list nor an assigned entrance (empty otherwise).
    pub fn entrance_choices(&self) -> Result<Vec<(u32, String)>, GateError> {
        if self.post.is_some() {
            return Ok(Vec::new());
        }
        Ok(self.replica.entrances()?)
    }

    /// Door staff chose entrance `id`: remembered across restarts. Returns
    /// `false` for an entrance the venue does not have.
    pub fn choose_entrance(&mut self, id: u32) -> Result<bool, GateError> {
        if !self.replica.entrances()?.iter().any(|(e, _)| *e == id) {
            return Ok(false);
        }
        crate::post::remember(&self.config.state_dir, id)
            .map_err(|source| GateError::Choice { path: self.config.state_dir.display().to_string(), source })?;
        self.refresh_doors()?;
        Ok(true)
    }

    /// The replica.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// This gate's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Decides one scanned code at wall-clock `now_ms` and records it durably.
    pub fn scan(&mut self, scanned: &str, direction: Direction, now_ms: u64) -> Result<ScanResult, GateError> {
        let decided = self.decide(scanned, direction, now_ms)?;
        self.record(decided)
    }

    /// The decision alone: verify, replica, history, rules. Reads only.
    pub fn decide(&self, scanned: &str, direction: Direction, now_ms: u64) -> Result<Decided, GateError> {
        let now = now_ms / 1_000;
        let verified = self.keyring.verify(scanned, now);
        let claims = match &verified {
            Ok(ticket) => Some(&ticket.claims),
            Err(e) => e.ticket().map(|t| &t.claims),
        };
        let list = match claims {
            Some(c) => entry::list_for(&self.lists, c.event_id, c.ticket_type_id, now),
            None => self.lists.first(),
        };
        // A gate that knows where it stands but has no list there sends every
        // ticket on; one that does not know, or has no replica, must be told first.
        let none_here;
        let list = match list {
            Some(list) => list,
            None if self.post.is_some() && self.imported => {
                none_here = CheckInList::none_here(claims.map_or(0, |c| c.event_id));
                &none_here
            }
            None => return Err(GateError::NoList),
        };
        let (replica, history) = match &verified {
            Ok(ticket) => (self.replica_view(ticket)?, self.ledger.history(ticket.claims.ticket_id)?),
            Err(_) => (None, Vec::new()),
        };
        let mut outcome = entry::decide(&ScanContext {
            verified: &verified,
            replica: replica.as_ref(),
            history: &history,
            list,
            routes: &self.routes,
            direction,
            freshness: self.config.freshness,
            now,
        });
        if let Ok(ticket) = &verified {
            outcome.display.type_name = self.type_names.get(&ticket.claims.ticket_type_id).cloned();
        }
        let ticket = match verified {
            Ok(ticket) => Some(ticket),
            Err(e) => e.ticket().cloned(),
        };
        let rule = ReentryRule {
            multiple: list.allow_multiple_entries,
            after_exit: list.allow_entry_after_exit || ticket.as_ref().is_some_and(|t| t.claims.flags.reentry_allowed),
        };
        Ok(Decided {
            outcome,
            ticket,
            offline: true,
            claim_id: None,
            hlc: None,
            code_hash: code_hash(scanned),
            direction,
            list_id: list.id,
            rule,
            now_ms,
        })
    }

    /// A logical timestamp for an event now.
    pub fn tick(&mut self, now_ms: u64) -> HlcTimestamp {
        self.clock.tick(now_ms)
    }

    /// Stores admissions the hub broadcast; later decisions see them.
    pub fn apply_admissions(&mut self, admissions: &[Admission], now_ms: u64) -> Result<usize, GateError> {
        if let Some(latest) = admissions.iter().map(|a| a.at).max() {
            self.clock.observe(latest, now_ms);
        }
        Ok(self.ledger.apply_admissions(admissions)?)
    }

    /// The highest admission sequence from the hub stored here.
    pub fn admissions_through(&self) -> Result<u64, GateError> {
        Ok(self.ledger.admissions_through()?)
    }

    /// The hub holds every scan up to `through`.
    pub fn acked(&mut self, through: u64) -> Result<(), GateError> {
        Ok(self.ledger.mark_acked(through)?)
    }

    /// Records a decision in the ledger (fsynced) and returns it with its scan id.
    pub fn record(&mut self, decided: Decided) -> Result<ScanResult, GateError> {
        let Decided { outcome, ticket, offline, claim_id, hlc, code_hash, direction, list_id, rule, now_ms } = decided;
        let hlc = hlc.unwrap_or_else(|| self.clock.tick(now_ms));
        let record = self.ledger.record(&NewScan {
            hlc,
            wall_ms: now_ms,
            ticket_id: ticket.as_ref().map(|t| t.claims.ticket_id),
            event_id: ticket.as_ref().map(|t| t.claims.event_id),
            ticket_type: ticket.as_ref().map(|t| t.claims.ticket_type_id),
            code_hash,
            direction,
            list_id,
            decision: outcome.decision,
            reason: outcome.reason,
            not_in_replica: outcome.not_in_replica,
            offline,
            claim_id,
            rule,
        })?;
        let line = DecisionLine {
            decision: outcome.decision,
            reason: outcome.reason,
            ticket: ticket.as_ref().map(Into::into),
        };
        Ok(ScanResult { outcome, line, record })
    }

    /// Annuls admission `seq` (nobody passed the turnstile); returns it, or `None`
    /// if it was not an accepted, unannulled scan.
    pub fn annul(&mut self, seq: u64) -> Result<Option<ScanRecord>, GateError> {
        if !self.ledger.annul(seq)? {
            return Ok(None);
        }
        Ok(self.ledger.get(seq)?)
    }

    /// Verifies and applies a manifest file's bytes; the gate's lists follow it.
    pub fn import(&mut self, bytes: &[u8], now: UnixSeconds) -> Result<Applied, GateError> {
        let manifest = Manifest::open(bytes, &self.keyring, now).map_err(StoreError::from)?;
        let applied = self.replica.apply(&manifest, self.config.venue_id)?;
        self.refresh_doors()?;
        Ok(applied)
    }

    fn replica_view(&self, ticket: &VerifiedTicket) -> Result<Option<ReplicaTicket>, GateError> {
        let Some(stored) = self.replica.ticket(ticket.claims.ticket_id)? else {
            return Ok(None);
        };
        let holder = stored
            .sealed_holder
            .as_deref()
            .and_then(|sealed| holder::open(&ticket.signature, ticket.claims.ticket_id, sealed));
        Ok(Some(ReplicaTicket { status: stored.status, holder }))
    }
}

/// What the ledger keeps of a scanned code: a hash, never the code itself (a
/// stored code could be replayed). Codes carry a 64-byte signature, so the hash
/// cannot be reversed by guessing.
pub fn code_hash(scanned: &str) -> [u8; 32] {
    let cleaned = barcode::clean_scanned_text(scanned).unwrap_or(scanned);
    let mut hasher = Sha256::new();
    hasher.update(b"tixgate/scan-code/v1\0");
    hasher.update(cleaned.as_bytes());
    hasher.finalize().into()
}
