//! The text form of a barcode, and the input hygiene real scanners need.
//!
//! Hardware scanners decorate what they read: trailing CR/LF, an AIM symbology
//! identifier such as `]Q1`, an ECI escape such as `\000026` (pretix strips the
//! same). Those are removed; anything else unexpected is an error, never guessed at.
#![warn(clippy::indexing_slicing)]

use super::BarcodeError;

/// Prefix of the v1 text form. The digit is the text version.
pub const PREFIX_V1: &str = "TX1:";
/// Prefix of the v2 text form (a holder-bound code shown by the holder's device).
pub const PREFIX_V2: &str = "TX2:";
/// Longest cleaned code accepted: a v2 code with every optional field at its
/// maximum is 385 characters (a v1 ticket 226).
pub const MAX_TEXT_LEN: usize = 400;
/// Longest raw scan looked at, decorations included.
const MAX_RAW_LEN: usize = 2 * MAX_TEXT_LEN;

/// Strips scanner decorations and checks what is left is plausible code text.
pub fn clean_scanned_text(raw: &str) -> Result<&str, BarcodeError> {
    if raw.len() > MAX_RAW_LEN {
        return Err(BarcodeError::TooLong(raw.len()));
    }
    let mut s = raw.trim();
    loop {
        let before = s.len();
        s = strip_symbology_id(s);
        s = strip_eci_escape(s);
        s = s.trim();
        if s.len() == before {
            break;
        }
    }
    if s.is_empty() {
        return Err(BarcodeError::Empty);
    }
    if let Some(pos) = s.chars().position(char::is_control) {
        return Err(BarcodeError::ControlCharacter(pos));
    }
    if s.len() > MAX_TEXT_LEN {
        return Err(BarcodeError::TooLong(s.len()));
    }
    Ok(s)
}

/// `]` + symbology code + modifier (ISO/IEC 15424), e.g. `]Q1` for QR.
fn strip_symbology_id(s: &str) -> &str {
    let b = s.as_bytes();
    match b {
        [b']', code, modifier, ..] if code.is_ascii_alphabetic() && modifier.is_ascii_alphanumeric() => {
            s.get(3..).unwrap_or(s)
        }
        _ => s,
    }
}

/// A backslash and six digits: an ECI designator in the transmitted data.
fn strip_eci_escape(s: &str) -> &str {
    match s.as_bytes() {
        [b'\\', digits @ ..] if digits.len() >= 6 && digits.iter().take(6).all(u8::is_ascii_digit) => {
            s.get(7..).unwrap_or(s)
        }
        _ => s,
    }
}

/// Text form of the barcode bytes under a prefix ([`PREFIX_V1`] or [`PREFIX_V2`]).
pub(super) fn encode(prefix: &str, bytes: &[u8]) -> String {
    let mut out = String::with_capacity(prefix.len() + bytes.len() * 3 / 2 + 2);
    out.push_str(prefix);
    out.push_str(&base45::encode(bytes));
    out
}

/// Bytes of a scanned code, and the version its prefix names. Each byte string
/// has exactly one accepted text.
pub(super) fn decode(scanned: &str) -> Result<(u8, Vec<u8>), BarcodeError> {
    let s = clean_scanned_text(scanned)?;
    let (version, body) = match (s.strip_prefix(PREFIX_V1), s.strip_prefix(PREFIX_V2)) {
        (Some(body), _) => (1, body),
        (_, Some(body)) => (2, body),
        _ => return Err(other_prefix(s)),
    };
    let bytes = base45::decode(body).map_err(|_| BarcodeError::InvalidEncoding)?;
    // The crate accepts a final pair worth more than 255 and truncates it; a
    // round trip refuses such non-canonical text.
    if base45::encode(&bytes) != body {
        return Err(BarcodeError::InvalidEncoding);
    }
    Ok((version, bytes))
}

/// `TX<n>:` with another n is a newer (or older) format, not garbage.
fn other_prefix(s: &str) -> BarcodeError {
    let Some(rest) = s.strip_prefix("TX") else {
        return BarcodeError::NotTixgate;
    };
    let digits: &str = rest.split(':').next().unwrap_or_default();
    let tagged = rest.len() > digits.len() && !digits.is_empty() && digits.len() <= 3;
    match digits.parse::<u16>() {
        Ok(v) if tagged && digits.bytes().all(|b| b.is_ascii_digit()) => {
            BarcodeError::UnsupportedVersion(u8::try_from(v).unwrap_or(u8::MAX))
        }
        _ => BarcodeError::NotTixgate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<&str, BarcodeError>) {
        assert_eq!(clean_scanned_text(raw), expected, "input {raw:?}");
    }

    #[test]
    fn scanner_decorations_are_removed() {
        check("TX1:ABC\r\n", Ok("TX1:ABC"));
        check("  TX1:ABC  ", Ok("TX1:ABC"));
        check("]Q1TX1:ABC", Ok("TX1:ABC"));
        check("]Q3\\000026TX1:ABC\r", Ok("TX1:ABC"));
        check("\\000026TX1:ABC", Ok("TX1:ABC"));
    }

    #[test]
    fn unexpected_content_is_refused() {
        check("", Err(BarcodeError::Empty));
        check(" \r\n\t", Err(BarcodeError::Empty));
        check("]Q1", Err(BarcodeError::Empty));
        check("TX1:A\u{0}BC", Err(BarcodeError::ControlCharacter(5)));
        check("TX1:A\u{1b}[2J", Err(BarcodeError::ControlCharacter(5)));
        check(&"A".repeat(MAX_TEXT_LEN + 1), Err(BarcodeError::TooLong(MAX_TEXT_LEN + 1)));
        check(&"A".repeat(MAX_RAW_LEN + 1), Err(BarcodeError::TooLong(MAX_RAW_LEN + 1)));
    }

    #[test]
    fn prefixes_are_told_apart() {
        assert_eq!(decode("TX3:AAAA"), Err(BarcodeError::UnsupportedVersion(3)));
        assert_eq!(decode("TX300:AAAA"), Err(BarcodeError::UnsupportedVersion(255)));
        assert_eq!(decode("TXA:AAAA"), Err(BarcodeError::NotTixgate));
        assert_eq!(decode("TX1AAAA"), Err(BarcodeError::NotTixgate));
        assert_eq!(decode("https://example.com/t/1"), Err(BarcodeError::NotTixgate));
        assert_eq!(decode("tx1:AAAA"), Err(BarcodeError::NotTixgate));
    }

    #[test]
    fn base45_must_be_canonical() {
        // "GG" is 16*45+16 = 736 > 255: a final pair that does not encode one byte.
        assert_eq!(decode("TX1:GG"), Err(BarcodeError::InvalidEncoding));
        assert_eq!(decode("TX1:abc"), Err(BarcodeError::InvalidEncoding));
        assert_eq!(decode("TX1:A"), Err(BarcodeError::InvalidEncoding));
        assert_eq!(decode("TX1:FGW"), Ok((1, vec![0xff, 0xff])));
        assert_eq!(decode("TX2:FGW"), Ok((2, vec![0xff, 0xff])));
    }
}
