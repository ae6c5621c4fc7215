//! Offline verification of a scanned barcode against a keyring.
//!
//! Order, each step only after the previous passed: parse → key lookup by id →
//! `verify_strict` signature → (v2) the holder's signature → key validity
//! window → (v2) the code's age → (optional) event → ticket validity window. Checks needing ticket state (revoked, redeemed…) belong
//! to the entry decision, which starts from a [`VerifiedTicket`].

use ed25519_dalek::{Signature, VerifyingKey};

use crate::barcode::{self, BarcodeError, HolderProof, TicketClaims, UnixSeconds};
use crate::keys::{KeyId, Keyring};
use crate::reason::Reason;

/// A ticket whose signature checked out against a key in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTicket {
    /// Key that signed it.
    pub key_id: KeyId,
    /// What the ticket claims; trustworthy now.
    pub claims: TicketClaims,
    /// The barcode's signature: a secret of the holder's, which also unseals the
    /// holder's name in the replica (see [`crate::holder`]).
    pub signature: [u8; crate::barcode::SIGNATURE_LEN],
    /// For a v2 code: when the holder's device made it (its clock). `None` for
    /// a static v1 code.
    pub shown_at: Option<UnixSeconds>,
}

/// How old a holder-shown (v2) code may be when a gate scans it. The wallet
/// makes a new code every few seconds from a clock set by the server, so a
/// code older than `max_age` by the gate's clock is a screenshot or a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Oldest accepted code, in seconds; it also absorbs a gate clock running
    /// ahead of the phone's.
    pub max_age: u64,
    /// How far in the future a code may be dated: a gate clock running behind.
    pub max_ahead: u64,
}

impl Default for Freshness {
    fn default() -> Self {
        Self { max_age: 30, max_ahead: 30 }
    }
}

impl Freshness {
    /// `Err(StaleCode)` when a v2 code was made outside the accepted window
    /// around `now`; static codes always pass.
    pub fn check(&self, ticket: &VerifiedTicket, now: UnixSeconds) -> Result<(), Reason> {
        match ticket.shown_at {
            Some(shown) if shown.saturating_add(self.max_age) < now || shown > now.saturating_add(self.max_ahead) => {
                Err(Reason::StaleCode)
            }
            _ => Ok(()),
        }
    }
}

/// Why a barcode did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a well-formed barcode.
    #[error(transparent)]
    Barcode(#[from] BarcodeError),
    /// No key in the keyring has this id.
    #[error("no key {0} in the keyring")]
    UnknownKey(KeyId),
    /// No key with this id produced the signature.
    #[error("signature does not verify")]
    BadSignature,
    /// Genuine, but the signing key is retired or not yet in force.
    #[error("signing key {key_id} is not in force")]
    KeyExpired {
        /// The key.
        key_id: KeyId,
        /// The ticket, authentic but not to be admitted.
        ticket: Box<VerifiedTicket>,
    },
}

impl VerifyError {
    /// The reason code for this failure.
    pub fn reason(&self) -> Reason {
        match self {
            VerifyError::Barcode(BarcodeError::UnsupportedVersion(_)) => Reason::UnsupportedVersion,
            VerifyError::Barcode(_) => Reason::Malformed,
            VerifyError::UnknownKey(_) => Reason::UnknownKey,
            VerifyError::BadSignature => Reason::BadSignature,
            VerifyError::KeyExpired { .. } => Reason::KeyExpired,
        }
    }

    /// The authentic ticket, when the failure came after the signature check.
    pub fn ticket(&self) -> Option<&VerifiedTicket> {
        match self {
            VerifyError::KeyExpired { ticket, .. } => Some(ticket),
            _ => None,
        }
    }
}

impl Keyring {
    /// Parses `scanned` and checks its signature and key. Total and panic-free.
    pub fn verify(&self, scanned: &str, now: UnixSeconds) -> Result<VerifiedTicket, VerifyError> {
        let parsed = barcode::parse(scanned)?;
        let message = barcode::signing_message(&parsed.signed_part);
        let signature = Signature::from_bytes(&parsed.signature);
        let mut candidates = self.candidates(parsed.key_id).peekable();
        if candidates.peek().is_none() {
            return Err(VerifyError::UnknownKey(parsed.key_id));
        }
        let signer =
            candidates.find(|k| k.key.verify_strict(&message, &signature).is_ok()).ok_or(VerifyError::BadSignature)?;
        if let Some(proof) = &parsed.holder {
            verify_holder(proof)?;
        }
        let ticket = VerifiedTicket {
            key_id: parsed.key_id,
            claims: parsed.claims,
            signature: parsed.signature,
            shown_at: parsed.holder.map(|p| p.shown_at),
        };
        if !signer.in_force(now) {
            return Err(VerifyError::KeyExpired { key_id: parsed.key_id, ticket: Box::new(ticket) });
        }
        Ok(ticket)
    }
}

/// The holder's signature over a v2 code, with the key the issuer signed in.
fn verify_holder(proof: &HolderProof) -> Result<(), VerifyError> {
    let key = VerifyingKey::from_bytes(&proof.key).map_err(|_| VerifyError::BadSignature)?;
    if key.is_weak() {
        return Err(VerifyError::BadSignature);
    }
    let message = barcode::holder_signing_message(&proof.signed);
    key.verify_strict(&message, &Signature::from_bytes(&proof.signature)).map_err(|_| VerifyError::BadSignature)
}

/// The checks that need nothing but the ticket, the gate's event and the time.
pub fn check_event_and_time(
    ticket: &VerifiedTicket,
    event_id: Option<u64>,
    freshness: Freshness,
    now: UnixSeconds,
) -> Result<(), Reason> {
    freshness.check(ticket, now)?;
    if event_id.is_some_and(|e| e != ticket.claims.event_id) {
        return Err(Reason::WrongEvent);
    }
    if !ticket.claims.validity.contains(now) {
        return Err(Reason::InvalidTime);
    }
    Ok(())
}

/// A ticket as the JSON every part prints and exchanges.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketSummary {
    /// Event id.
    pub event_id: u64,
    /// Ticket id.
    pub ticket_id: u64,
    /// Ticket type id.
    pub ticket_type_id: u32,
    /// Signing key id, 8 hex digits.
    pub key_id: String,
    /// Seat label, if seated.
    pub seat: Option<String>,
    /// Printed on paper.
    pub paper: bool,
    /// Re-entry after exit allowed.
    pub reentry_allowed: bool,
    /// Start of validity, RFC 3339.
    pub valid_from: Option<String>,
    /// End of validity, RFC 3339.
    pub valid_until: Option<String>,
}

impl From<&VerifiedTicket> for TicketSummary {
    fn from(t: &VerifiedTicket) -> Self {
        let c = &t.claims;
        let rfc3339 = |s: UnixSeconds| {
            crate::keys::date_time(s).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        };
        Self {
            event_id: c.event_id,
            ticket_id: c.ticket_id,
            ticket_type_id: c.ticket_type_id,
            key_id: t.key_id.to_string(),
            seat: c.seat.as_ref().map(|s| s.as_str().to_owned()),
            paper: c.flags.paper,
            reentry_allowed: c.flags.reentry_allowed,
            valid_from: c.validity.not_before.map(rfc3339),
            valid_until: c.validity.not_after.map(rfc3339),
        }
    }
}

/// ACCEPT or REJECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Let the person in.
    Accept,
    /// Keep the person out; see the reason.
    Reject,
}

impl Decision {
    /// The stored code: `accept` or `reject`.
    pub fn code(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Reject => "reject",
        }
    }

    /// Reads a stored code; anything but `accept` reads as a rejection (the safe
    /// reading of a damaged row).
    pub fn from_code(code: &str) -> Self {
        if code == "accept" { Decision::Accept } else { Decision::Reject }
    }
}

/// The one-line JSON answer of `verify` and `scan`:
/// `{"decision":…,"reason":…,"ticket":…}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionLine {
    /// ACCEPT or REJECT.
    pub decision: Decision,
    /// Why it was rejected; `None` on accept.
    pub reason: Option<Reason>,
    /// The authentic ticket, when the signature checked out.
    pub ticket: Option<TicketSummary>,
}

impl DecisionLine {
    /// An accept of this ticket.
    pub fn accept(ticket: &VerifiedTicket) -> Self {
        Self { decision: Decision::Accept, reason: None, ticket: Some(ticket.into()) }
    }

    /// A reject, with the ticket if it was authentic.
    pub fn reject(reason: Reason, ticket: Option<&VerifiedTicket>) -> Self {
        Self { decision: Decision::Reject, reason: Some(reason), ticket: ticket.map(TicketSummary::from) }
    }
}

/// Offline check of one scanned code: signature, key, age, event, validity window.
pub fn check_offline(
    keyring: &Keyring,
    scanned: &str,
    event_id: Option<u64>,
    freshness: Freshness,
    now: UnixSeconds,
) -> DecisionLine {
    match keyring.verify(scanned, now) {
        Ok(ticket) => match check_event_and_time(&ticket, event_id, freshness, now) {
            Ok(()) => DecisionLine::accept(&ticket),
            Err(reason) => DecisionLine::reject(reason, Some(&ticket)),
        },
        Err(e) => DecisionLine::reject(e.reason(), e.ticket()),
    }
}
