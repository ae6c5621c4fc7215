//! What a venue hub sends up to the cloud: the gates' scans and the double
//! entries it found, as JSON to `POST /venues/{id}/scans`.
//!
//! Every scan carries the id the hub knows it by (`gate:seq`), so an upload
//! that is repeated after a lost answer stores nothing twice.

use serde::{Deserialize, Serialize};

/// Most scans plus conflicts in one upload.
pub const MAX_UPLOAD_ITEMS: usize = 2_000;

/// One upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanUpload {
    /// Scans, in any order.
    #[serde(default)]
    pub scans: Vec<UploadedScan>,
    /// Double entries found after partitions healed.
    #[serde(default)]
    pub conflicts: Vec<UploadedConflict>,
}

/// One scan at a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadedScan {
    /// `gate:seq`, unique within the venue.
    pub scan_id: String,
    /// The gate.
    pub gate_id: String,
    /// The ticket, if the code named one.
    pub ticket_id: Option<u64>,
    /// The ticket's event, if known.
    pub event_id: Option<u64>,
    /// The gate's check-in list.
    pub list_id: u32,
    /// `entry` or `exit`.
    pub direction: String,
    /// `accept` or `reject`.
    pub decision: String,
    /// Why it was refused.
    pub reason: Option<String>,
    /// Decided without the hub.
    pub offline: bool,
    /// Withdrawn by the hub (another gate won the same ticket).
    pub annulled: bool,
    /// Hybrid logical clock of the scan.
    pub hlc: u64,
    /// The gate's wall clock, Unix milliseconds.
    pub wall_ms: i64,
}

/// Two accepted entries of one ticket with no exit between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadedConflict {
    /// The ticket.
    pub ticket_id: u64,
    /// The check-in list.
    pub list_id: u32,
    /// Scan id of the earlier entry.
    pub first_scan: String,
    /// Its gate.
    pub first_gate: String,
    /// Its clock.
    pub first_hlc: u64,
    /// Scan id of the later entry.
    pub second_scan: String,
    /// Its gate.
    pub second_gate: String,
    /// Its clock.
    pub second_hlc: u64,
    /// When the hub found it, Unix milliseconds.
    pub detected_ms: i64,
}

/// The cloud's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReceipt {
    /// Scans and conflicts stored for the first time.
    pub stored: u32,
    /// Ones the cloud already had.
    pub duplicates: u32,
}

/// Why an upload is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// More than [`MAX_UPLOAD_ITEMS`].
    #[error("{0} items in one upload; at most {MAX_UPLOAD_ITEMS}")]
    TooLarge(usize),
    /// A field is out of range.
    #[error("{index}: {problem}")]
    Invalid {
        /// Which item (`scans[3]`, `conflicts[0]`).
        index: String,
        /// What is wrong.
        problem: &'static str,
    },
}

impl ScanUpload {
    /// Checks the sizes and values the cloud relies on.
    pub fn validate(&self) -> Result<(), UploadError> {
        let items = self.scans.len() + self.conflicts.len();
        if items > MAX_UPLOAD_ITEMS {
            return Err(UploadError::TooLarge(items));
        }
        let invalid =
            |kind: &str, i: usize, problem| Err(UploadError::Invalid { index: format!("{kind}[{i}]"), problem });
        for (i, s) in self.scans.iter().enumerate() {
            if !id_ok(&s.scan_id) || !id_ok(&s.gate_id) {
                return invalid("scans", i, "scan_id and gate_id: 1 to 128 visible characters");
            }
            if !matches!(s.direction.as_str(), "entry" | "exit") {
                return invalid("scans", i, "direction: entry or exit");
            }
            if !matches!(s.decision.as_str(), "accept" | "reject") {
                return invalid("scans", i, "decision: accept or reject");
            }
            if s.reason.as_ref().is_some_and(|r| r.len() > 200) || too_big(s.ticket_id) || too_big(s.event_id) {
                return invalid("scans", i, "reason at most 200 bytes; ids below 2^63");
            }
        }
        for (i, c) in self.conflicts.iter().enumerate() {
            let ids = [&c.first_scan, &c.first_gate, &c.second_scan, &c.second_gate];
            if !ids.iter().all(|id| id_ok(id)) || too_big(Some(c.ticket_id)) {
                return invalid("conflicts", i, "scan and gate ids: 1 to 128 visible characters");
            }
        }
        Ok(())
    }
}

fn id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic())
}

fn too_big(id: Option<u64>) -> bool {
    id.is_some_and(|v| i64::try_from(v).is_err())
}
