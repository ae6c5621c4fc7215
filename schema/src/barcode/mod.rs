//! Signed ticket barcodes: what a ticket claims, its byte layouts and text forms.
//!
//! A v1 barcode is `TX1:` followed by the Base45 encoding of the v1 bytes: static,
//! for paper. A v2 barcode (`TX2:`) carries the holder's public key in its signed
//! part, and the holder's device adds the current time and its own signature at
//! every refresh, so a screenshot goes stale (see `docs/barcode-format.md`).
//! Base45 uses only the QR alphanumeric alphabet, so a plain v1 ticket fits a
//! version-6 QR code at error-correction level M.

mod text;
mod wire;

pub use text::{MAX_TEXT_LEN, PREFIX_V1, PREFIX_V2, clean_scanned_text};
pub use wire::{FORMAT_V1, FORMAT_V2, HolderProof, MAX_SEAT_LEN, PUBLIC_KEY_LEN, ParsedBarcode, SIGNATURE_LEN};

use crate::keys::KeyId;

/// Seconds since the Unix epoch, UTC.
pub type UnixSeconds = u64;

/// What the cloud asserts about one ticket, signed into its barcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketClaims {
    /// The event the ticket admits to.
    pub event_id: u64,
    /// Unique across all events and never reused.
    pub ticket_id: u64,
    /// Ticket type (product), checked against a gate's check-in list.
    pub ticket_type_id: u32,
    /// Properties of the ticket.
    pub flags: TicketFlags,
    /// When the ticket may be used, if restricted.
    pub validity: Validity,
    /// Seat label, for seated tickets.
    pub seat: Option<SeatLabel>,
}

/// Boolean properties of a ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketFlags {
    /// Printed on paper: the holder cannot show a refreshed code.
    pub paper: bool,
    /// The holder may enter again after scanning out.
    pub reentry_allowed: bool,
}

/// An optional validity window; both ends inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before this time.
    pub not_before: Option<UnixSeconds>,
    /// Not valid after this time.
    pub not_after: Option<UnixSeconds>,
}

impl Validity {
    /// A window; refuses one that ends before it starts.
    pub fn new(not_before: Option<UnixSeconds>, not_after: Option<UnixSeconds>) -> Result<Self, Malformed> {
        if let (Some(from), Some(until)) = (not_before, not_after)
            && from > until
        {
            return Err(Malformed::InvertedValidity);
        }
        Ok(Self { not_before, not_after })
    }

    /// Whether `now` lies inside the window.
    pub fn contains(&self, now: UnixSeconds) -> bool {
        self.not_before.is_none_or(|from| now >= from) && self.not_after.is_none_or(|until| now <= until)
    }
}

/// A seat label: 1 to 32 bytes of UTF-8 text without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatLabel(String);

impl SeatLabel {
    /// Checks and wraps a seat label.
    pub fn new(label: &str) -> Result<Self, Malformed> {
        if label.is_empty() || label.len() > MAX_SEAT_LEN {
            return Err(Malformed::SeatLength(label.len()));
        }
        if label.chars().any(char::is_control) {
            return Err(Malformed::SeatNotText);
        }
        Ok(Self(label.to_owned()))
    }

    /// The label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not a well-formed tixgate barcode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarcodeError {
    /// Nothing left after trimming.
    #[error("empty code")]
    Empty,
    /// Longer than any valid code; refused before decoding.
    #[error("code is {0} characters long, more than the {MAX_TEXT_LEN} allowed")]
    TooLong(usize),
    /// A control character inside the code.
    #[error("control character at position {0}")]
    ControlCharacter(usize),
    /// Does not start with a tixgate prefix.
    #[error("not a tixgate ticket code (no TX prefix)")]
    NotTixgate,
    /// A tixgate code of a version this build cannot read.
    #[error("unsupported barcode version {0}")]
    UnsupportedVersion(u8),
    /// Characters outside Base45, or a non-canonical Base45 group.
    #[error("invalid Base45 text")]
    InvalidEncoding,
    /// The bytes end before the named field.
    #[error("truncated: the code ends before its {0}")]
    Truncated(&'static str),
    /// The bytes are complete but break a rule of the layout.
    #[error("malformed: {0}")]
    Malformed(#[from] Malformed),
}

/// Layout rules a decoded byte string can break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Reserved flag bits set.
    #[error("reserved flag bits set in {0:#04x}")]
    ReservedFlags(u8),
    /// A number that does not fit its field.
    #[error("{0} is out of range")]
    Overflow(&'static str),
    /// A number written with superfluous bytes: each ticket has one encoding.
    #[error("{0} is not in canonical form")]
    NonCanonicalNumber(&'static str),
    /// Seat label length outside 1..=32.
    #[error("seat label of {0} bytes (1 to {MAX_SEAT_LEN} allowed)")]
    SeatLength(usize),
    /// Seat label not UTF-8 or containing control characters.
    #[error("seat label is not printable text")]
    SeatNotText,
    /// Validity window ending before it starts.
    #[error("validity window ends before it starts")]
    InvertedValidity,
    /// Bytes after the signature.
    #[error("{0} unexpected bytes after the signature")]
    TrailingBytes(usize),
    /// The text prefix names another version than the bytes carry.
    #[error("text prefix TX{text}: holds version {bytes} bytes")]
    VersionMismatch {
        /// Version named by the prefix.
        text: u8,
        /// Version byte inside.
        bytes: u8,
    },
}

/// Parses scanned text into a ticket whose signature is still unchecked.
///
/// Total: any string gives `Ok` or a [`BarcodeError`]; the work done is bounded
/// by [`MAX_TEXT_LEN`] whatever the input.
pub fn parse(scanned: &str) -> Result<ParsedBarcode, BarcodeError> {
    let (text_version, bytes) = text::decode(scanned)?;
    // Only the prefix can name a version this gate does not know; a version
    // byte that disagrees with a known prefix is damage or forgery, and must
    // not tell staff to update the gate.
    match bytes.first() {
        Some(&v) if v != text_version => Err(Malformed::VersionMismatch { text: text_version, bytes: v }.into()),
        _ => wire::decode(&bytes),
    }
}

/// The bytes an issuer signs for these claims, domain-separated (see [`signing_message`]).
pub fn signed_part(key_id: KeyId, claims: &TicketClaims) -> Vec<u8> {
    wire::encode_signed_part(key_id, claims)
}

/// Prefix of every signed message, so a ticket signature can never be replayed
/// as a signature over some other tixgate structure (manifests, scans).
pub const SIGNING_DOMAIN: &[u8] = b"tixgate/ticket/v1\0";

/// The message actually signed: [`SIGNING_DOMAIN`] followed by the signed part.
pub fn signing_message(signed_part: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + signed_part.len());
    msg.extend_from_slice(SIGNING_DOMAIN);
    msg.extend_from_slice(signed_part);
    msg
}

/// The text form of a signed v1 ticket: prefix and Base45 of signed part + signature.
pub fn to_text(signed_part: &[u8], signature: &[u8; SIGNATURE_LEN]) -> String {
    let mut bytes = Vec::with_capacity(signed_part.len() + SIGNATURE_LEN);
    bytes.extend_from_slice(signed_part);
    bytes.extend_from_slice(signature);
    text::encode(PREFIX_V1, &bytes)
}

/// Prefix of what a holder signs, so a holder key's signature over a code can
/// never pass for anything else.
pub const HOLDER_DOMAIN: &[u8] = b"tixgate/ticket-shown/v2\0";

/// The message a holder's device signs to show a v2 ticket at `shown_at`.
/// `static_part` is the issuer-signed part followed by the issuer's signature
/// (what the cloud hands the wallet).
pub fn holder_message(static_part: &[u8], shown_at: UnixSeconds) -> Vec<u8> {
    holder_signing_message(&wire::encode_shown(static_part, shown_at))
}

/// [`HOLDER_DOMAIN`] followed by what the holder signs (a parsed code's
/// [`HolderProof::signed`]).
pub fn holder_signing_message(shown: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HOLDER_DOMAIN.len() + shown.len());
    msg.extend_from_slice(HOLDER_DOMAIN);
    msg.extend_from_slice(shown);
    msg
}

/// The text of a v2 code shown at `shown_at`: static part, time, and the holder
/// signature over [`holder_message`].
pub fn shown_text(static_part: &[u8], shown_at: UnixSeconds, holder_signature: &[u8; SIGNATURE_LEN]) -> String {
    let mut bytes = wire::encode_shown(static_part, shown_at);
    bytes.extend_from_slice(holder_signature);
    text::encode(PREFIX_V2, &bytes)
}

/// The issuer-signed part of a v2 ticket bound to `holder_key`.
pub fn signed_part_v2(key_id: KeyId, claims: &TicketClaims, holder_key: &[u8; PUBLIC_KEY_LEN]) -> Vec<u8> {
    wire::encode_signed_part_v2(key_id, claims, holder_key)
}
