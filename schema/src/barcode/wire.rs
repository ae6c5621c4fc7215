//! The byte layouts of a signed ticket (v1 static, v2 shown by its holder):
//! bounded, canonical, total parsing.
//!
//! Every read is bounds-checked against the bytes actually present; no length
//! taken from the input ever sizes an allocation beyond [`MAX_SEAT_LEN`].
#![warn(clippy::indexing_slicing)]

use super::{BarcodeError, Malformed, SeatLabel, TicketClaims, TicketFlags, Validity};
use crate::keys::KeyId;

/// Format version byte of barcode v1.
pub const FORMAT_V1: u8 = 1;
/// Format version byte of barcode v2 (bound to a holder key, shown rotating).
pub const FORMAT_V2: u8 = 2;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Longest seat label, in bytes of UTF-8.
pub const MAX_SEAT_LEN: usize = 32;

const FLAG_PAPER: u8 = 1 << 0;
const FLAG_REENTRY: u8 = 1 << 1;
const FLAG_NOT_BEFORE: u8 = 1 << 2;
const FLAG_NOT_AFTER: u8 = 1 << 3;
const FLAG_SEAT: u8 = 1 << 4;
const FLAGS_KNOWN: u8 = FLAG_PAPER | FLAG_REENTRY | FLAG_NOT_BEFORE | FLAG_NOT_AFTER | FLAG_SEAT;

/// A barcode parsed from text, its signature not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBarcode {
    /// Key that signed the ticket.
    pub key_id: KeyId,
    /// What the ticket claims.
    pub claims: TicketClaims,
    /// Every byte before the issuer's signature (version through seat, and the
    /// holder key in v2): what the issuer signed.
    pub signed_part: Vec<u8>,
    /// The issuer's Ed25519 signature.
    pub signature: [u8; SIGNATURE_LEN],
    /// v2 only: the holder's proof that this code was shown at a given time.
    pub holder: Option<HolderProof>,
}

/// The part of a v2 code its holder's device adds at each refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderProof {
    /// The holder's public key, as the issuer signed it into the ticket.
    pub key: [u8; PUBLIC_KEY_LEN],
    /// When the holder's device made the code (Unix seconds, its clock).
    pub shown_at: super::UnixSeconds,
    /// Everything the holder signed, without the domain prefix: the static part,
    /// the issuer's signature and the time.
    pub signed: Vec<u8>,
    /// The holder's Ed25519 signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Serialises the signed part of a v1 ticket (everything but the signature).
pub fn encode_signed_part(key_id: KeyId, claims: &TicketClaims) -> Vec<u8> {
    encode_claims(FORMAT_V1, key_id, claims)
}

/// Serialises the issuer-signed part of a v2 ticket: the v1 fields under
/// version 2, then the holder's public key.
pub fn encode_signed_part_v2(key_id: KeyId, claims: &TicketClaims, holder_key: &[u8; PUBLIC_KEY_LEN]) -> Vec<u8> {
    let mut out = encode_claims(FORMAT_V2, key_id, claims);
    out.extend_from_slice(holder_key);
    out
}

/// Appends the holder's time to a v2 static part (signed part + issuer signature):
/// the bytes the holder signs.
pub fn encode_shown(static_part: &[u8], shown_at: super::UnixSeconds) -> Vec<u8> {
    let mut out = Vec::with_capacity(static_part.len() + 10);
    out.extend_from_slice(static_part);
    put_varint(&mut out, shown_at);
    out
}

fn encode_claims(version: u8, key_id: KeyId, claims: &TicketClaims) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.push(version);
    out.extend_from_slice(&key_id.0);
    out.push(flags_byte(claims));
    put_varint(&mut out, claims.event_id);
    put_varint(&mut out, claims.ticket_id);
    put_varint(&mut out, u64::from(claims.ticket_type_id));
    if let Some(t) = claims.validity.not_before {
        put_varint(&mut out, t);
    }
    if let Some(t) = claims.validity.not_after {
        put_varint(&mut out, t);
    }
    if let Some(seat) = &claims.seat {
        // SeatLabel guarantees 1..=MAX_SEAT_LEN bytes, so the cast is lossless.
        out.push(seat.as_str().len() as u8);
        out.extend_from_slice(seat.as_str().as_bytes());
    }
    out
}

fn flags_byte(claims: &TicketClaims) -> u8 {
    let mut flags = 0;
    for (on, bit) in [
        (claims.flags.paper, FLAG_PAPER),
        (claims.flags.reentry_allowed, FLAG_REENTRY),
        (claims.validity.not_before.is_some(), FLAG_NOT_BEFORE),
        (claims.validity.not_after.is_some(), FLAG_NOT_AFTER),
        (claims.seat.is_some(), FLAG_SEAT),
    ] {
        if on {
            flags |= bit;
        }
    }
    flags
}

/// Parses the bytes of a ticket. Total: every input gives `Ok` or a typed error.
pub fn decode(bytes: &[u8]) -> Result<ParsedBarcode, BarcodeError> {
    let mut r = Reader { rest: bytes };
    let version = r.byte("version")?;
    if version != FORMAT_V1 && version != FORMAT_V2 {
        return Err(BarcodeError::UnsupportedVersion(version));
    }
    let key_id = KeyId(r.array::<4>("key id")?);
    let flags = r.byte("flags")?;
    if flags & !FLAGS_KNOWN != 0 {
        return Err(Malformed::ReservedFlags(flags).into());
    }
    let event_id = r.varint("event id")?;
    let ticket_id = r.varint("ticket id")?;
    let ticket_type_id =
        u32::try_from(r.varint("ticket type id")?).map_err(|_| Malformed::Overflow("ticket type id"))?;
    let not_before = r.varint_if(flags & FLAG_NOT_BEFORE != 0, "valid-from time")?;
    let not_after = r.varint_if(flags & FLAG_NOT_AFTER != 0, "valid-until time")?;
    let validity = Validity::new(not_before, not_after).map_err(BarcodeError::Malformed)?;
    let seat = if flags & FLAG_SEAT != 0 { Some(r.seat()?) } else { None };
    let holder_key = if version == FORMAT_V2 { Some(r.array::<PUBLIC_KEY_LEN>("holder key")?) } else { None };
    let signed_len = bytes.len() - r.rest.len();
    let signature = r.array::<SIGNATURE_LEN>("signature")?;
    let holder = match holder_key {
        None => None,
        Some(key) => {
            let shown_at = r.varint("time shown")?;
            let holder_signed_len = bytes.len() - r.rest.len();
            let signature = r.array::<SIGNATURE_LEN>("holder signature")?;
            let signed = bytes.get(..holder_signed_len).unwrap_or_default().to_vec();
            Some(HolderProof { key, shown_at, signed, signature })
        }
    };
    if !r.rest.is_empty() {
        return Err(Malformed::TrailingBytes(r.rest.len()).into());
    }
    let claims = TicketClaims {
        event_id,
        ticket_id,
        ticket_type_id,
        flags: TicketFlags { paper: flags & FLAG_PAPER != 0, reentry_allowed: flags & FLAG_REENTRY != 0 },
        validity,
        seat,
    };
    let signed_part = bytes.get(..signed_len).unwrap_or_default().to_vec();
    Ok(ParsedBarcode { key_id, claims, signed_part, signature, holder })
}

/// LEB128, least significant group first.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// A cursor over input bytes; every read names the field it wanted, for errors.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], BarcodeError> {
        if self.rest.len() < n {
            return Err(BarcodeError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, BarcodeError> {
        let (&first, tail) = self.rest.split_first().ok_or(BarcodeError::Truncated(field))?;
        self.rest = tail;
        Ok(first)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], BarcodeError> {
        let bytes = self.take(N, field)?;
        <[u8; N]>::try_from(bytes).map_err(|_| BarcodeError::Truncated(field))
    }

    /// A canonical (shortest-form) LEB128 u64.
    fn varint(&mut self, field: &'static str) -> Result<u64, BarcodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte(field)?;
            let group = u64::from(b & 0x7f);
            if shift == 63 && group > 1 {
                return Err(Malformed::Overflow(field).into());
            }
            value |= group << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return Err(Malformed::NonCanonicalNumber(field).into());
                }
                return Ok(value);
            }
        }
        Err(Malformed::Overflow(field).into())
    }

    fn varint_if(&mut self, present: bool, field: &'static str) -> Result<Option<u64>, BarcodeError> {
        present.then(|| self.varint(field)).transpose()
    }

    fn seat(&mut self) -> Result<SeatLabel, BarcodeError> {
        let len = usize::from(self.byte("seat length")?);
        if len == 0 || len > MAX_SEAT_LEN {
            return Err(Malformed::SeatLength(len).into());
        }
        let bytes = self.take(len, "seat")?;
        let text = std::str::from_utf8(bytes).map_err(|_| Malformed::SeatNotText)?;
        SeatLabel::new(text).map_err(BarcodeError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varints_round_trip_at_group_edges() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let bytes = varint_bytes(v);
            let mut r = Reader { rest: &bytes };
            assert_eq!(r.varint("x"), Ok(v), "value {v}");
            assert!(r.rest.is_empty());
        }
    }

    #[test]
    fn varint_with_padding_group_is_not_canonical() {
        let mut r = Reader { rest: &[0x81, 0x00] };
        assert_eq!(r.varint("x"), Err(Malformed::NonCanonicalNumber("x").into()));
    }

    #[test]
    fn varint_past_64_bits_overflows() {
        let mut r = Reader { rest: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02] };
        assert_eq!(r.varint("x"), Err(Malformed::Overflow("x").into()));
        let mut r = Reader { rest: &[0xff; 11] };
        assert_eq!(r.varint("x"), Err(Malformed::Overflow("x").into()));
    }

    #[test]
    fn varint_cut_short_is_truncated() {
        let mut r = Reader { rest: &[0x80, 0x80] };
        assert_eq!(r.varint("x"), Err(BarcodeError::Truncated("x")));
    }
}
