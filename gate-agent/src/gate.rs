//! One gate's decision loop step: a scanned code in, a recorded decision out.
//!
//! Order per scan: verify the signature (keyring) → read the replica row and
//! unseal the holder name → read the ticket's history from the ledger → decide
//! (pure, `schema::entry`) → record the scan in the ledger, fsynced. Only then
//! is the result returned, so nothing is shown or opened that is not on disk.

use schema::entry::{self, CheckInList, Direction, Outcome, ReplicaTicket, ScanContext};
use schema::hlc::Hlc;
use schema::{DecisionLine, Keyring, VerifiedTicket, barcode, holder};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::store::{Ledger, NewScan, Replica, ScanRecord, StoreError};

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
    /// No manifest has given this gate its check-in list yet.
    #[error("the replica has no check-in list {0}: import a manifest first")]
    NoList(u32),
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
        Ok(Self { config, keyring, replica, ledger, clock })
    }

    /// The keyring the gate verifies with (manifests too).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The replica, for imports and status.
    pub fn replica_mut(&mut self) -> &mut Replica {
        &mut self.replica
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
        let now = now_ms / 1_000;
        let list = self.list()?;
        let verified = self.keyring.verify(scanned, now);
        let (replica, history) = match &verified {
            Ok(ticket) => (self.replica_view(ticket)?, self.ledger.history(ticket.claims.ticket_id, list.id)?),
            Err(_) => (None, Vec::new()),
        };
        let mut outcome = entry::decide(&ScanContext {
            verified: &verified,
            replica: replica.as_ref(),
            history: &history,
            list: &list,
            direction,
            now,
        });
        if outcome.display.type_name.is_none()
            && let Ok(ticket) = &verified
        {
            outcome.display.type_name = self.replica.type_name(ticket.claims.ticket_type_id)?;
        }
        let ticket = verified.as_ref().ok().or_else(|| verified.as_ref().err().and_then(|e| e.ticket()));
        let record = self.ledger.record(&NewScan {
            hlc: self.clock.tick(now_ms),
            wall_ms: now_ms,
            ticket_id: ticket.map(|t| t.claims.ticket_id),
            event_id: ticket.map(|t| t.claims.event_id),
            code_hash: code_hash(scanned),
            direction,
            list_id: list.id,
            decision: outcome.decision,
            reason: outcome.reason,
            not_in_replica: outcome.not_in_replica,
            offline: true,
        })?;
        let line = DecisionLine { decision: outcome.decision, reason: outcome.reason, ticket: ticket.map(Into::into) };
        Ok(ScanResult { outcome, line, record })
    }

    fn list(&self) -> Result<CheckInList, GateError> {
        let list_id = self.config.list_id;
        self.replica.list(list_id)?.map(|(_, list)| list).ok_or(GateError::NoList(list_id))
    }

    fn replica_view(&self, ticket: &VerifiedTicket) -> Result<Option<ReplicaTicket>, GateError> {
        let Some(stored) = self.replica.ticket(ticket.claims.ticket_id)? else {
            return Ok(None);
        };
        let holder = stored
            .sealed_holder
            .as_deref()
            .and_then(|sealed| holder::open(&ticket.signature, ticket.claims.ticket_id, sealed));
        Ok(Some(ReplicaTicket { status: stored.status, type_name: stored.type_name, holder }))
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
