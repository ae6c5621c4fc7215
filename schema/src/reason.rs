//! Reason codes: the one stable, snake_case list every part of tixgate reports.
//!
//! Codes follow pretix's check-in reasons where the meaning is the same and add
//! what a signature scheme needs. Codes are never renamed or reused; new ones
//! are appended. `docs/barcode-format.md` lists them with their meaning.

use serde::{Deserialize, Serialize};

/// Why a scan was rejected (or annulled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not a readable tixgate code: garbage, truncated, bad encoding.
    Malformed,
    /// A tixgate code of a format version this gate does not know.
    UnsupportedVersion,
    /// Signed with a key the gate's keyring does not hold.
    UnknownKey,
    /// The signature does not match: forged or altered.
    BadSignature,
    /// Signed with a key outside its validity window (retired or not yet active).
    KeyExpired,
    /// A genuine ticket for a different event.
    WrongEvent,
    /// Outside the ticket's validity window.
    InvalidTime,
    /// Revoked: refunded, cancelled or re-issued.
    Revoked,
    /// Blocked for now (may be unblocked).
    Blocked,
    /// Ticket type not admitted through this gate's check-in list.
    Product,
    /// Already used for entry.
    AlreadyRedeemed,
    /// Validly signed but absent from the gate's replica, and the list refuses such tickets.
    UnknownTicket,
    /// An admission withdrawn because nobody passed the turnstile.
    Annulled,
    /// A holder-shown code made too long ago (or dated in the future): a
    /// screenshot or photo of the live ticket.
    StaleCode,
    /// A ticket that another entrance admits: the display names it.
    OtherEntrance,
    /// The gate's check-in list is outside its hours.
    ListClosed,
}

impl Reason {
    /// Every code, in documentation order.
    pub const ALL: [Reason; 16] = [
        Reason::Malformed,
        Reason::UnsupportedVersion,
        Reason::UnknownKey,
        Reason::BadSignature,
        Reason::KeyExpired,
        Reason::WrongEvent,
        Reason::InvalidTime,
        Reason::Revoked,
        Reason::Blocked,
        Reason::Product,
        Reason::AlreadyRedeemed,
        Reason::UnknownTicket,
        Reason::Annulled,
        Reason::StaleCode,
        Reason::OtherEntrance,
        Reason::ListClosed,
    ];

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::UnsupportedVersion => "unsupported_version",
            Reason::UnknownKey => "unknown_key",
            Reason::BadSignature => "bad_signature",
            Reason::KeyExpired => "key_expired",
            Reason::WrongEvent => "wrong_event",
            Reason::InvalidTime => "invalid_time",
            Reason::Revoked => "revoked",
            Reason::Blocked => "blocked",
            Reason::Product => "product",
            Reason::AlreadyRedeemed => "already_redeemed",
            Reason::UnknownTicket => "unknown_ticket",
            Reason::Annulled => "annulled",
            Reason::StaleCode => "stale_code",
            Reason::OtherEntrance => "other_entrance",
            Reason::ListClosed => "list_closed",
        }
    }

    /// Words for door staff, readable at arm's length.
    pub fn words(self) -> &'static str {
        match self {
            Reason::Malformed => "Not a ticket code",
            Reason::UnsupportedVersion => "Ticket format not supported: update this gate",
            Reason::UnknownKey => "Unknown issuer: fake or from another system",
            Reason::BadSignature => "Forged or altered ticket",
            Reason::KeyExpired => "Ticket signed with a retired key",
            Reason::WrongEvent => "Ticket for a different event",
            Reason::InvalidTime => "Ticket not valid at this time",
            Reason::Revoked => "Ticket cancelled or replaced",
            Reason::Blocked => "Ticket blocked: send to the box office",
            Reason::Product => "Ticket type not allowed at this entrance",
            Reason::AlreadyRedeemed => "Already used",
            Reason::UnknownTicket => "Ticket not on this gate's list",
            Reason::Annulled => "Entry annulled: nobody passed",
            Reason::StaleCode => "Old code or screenshot: ask for the live ticket",
            Reason::OtherEntrance => "Wrong entrance for this ticket",
            Reason::ListClosed => "This entrance is not open now",
        }
    }

    /// The reason with this code, if any.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_match_serde() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let code = r.code();
            assert!(seen.insert(code), "duplicate {code}");
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
            assert_eq!(serde_json::to_string(&r).ok(), Some(format!("\"{code}\"")));
            assert_eq!(Reason::from_code(code), Some(r));
        }
    }
}
