//! Ticket signing keys, key ids, and the public keyring gates verify against.
//!
//! A key id is the first 4 bytes of SHA-256 of the 32-byte public key, so it
//! needs no bookkeeping and a keyring can check every id it holds. Ids may in
//! principle collide; verification then tries every key with that id (as the EU
//! digital COVID certificate does).

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::barcode::{self, SIGNATURE_LEN, TicketClaims, UnixSeconds};

/// Names a signing key inside a barcode.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// The id of a public key.
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut id = [0u8; 4];
        id.copy_from_slice(digest.get(..4).unwrap_or(&[0; 4]));
        KeyId(id)
    }

    /// Parses the 8-hex-digit form.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()?;
        Some(KeyId(bytes.try_into().ok()?))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Problems with key material or a keyring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The PEM text is not an Ed25519 PKCS#8 private key.
    #[error("not an Ed25519 PKCS#8 private key: {0}")]
    BadPrivateKey(String),
    /// The keyring JSON does not parse.
    #[error("keyring is not valid JSON of the expected shape: {0}")]
    KeyringSyntax(String),
    /// The keyring declares another format.
    #[error("keyring format {0:?} is not {KEYRING_FORMAT:?}")]
    KeyringFormat(String),
    /// A public key that is not 32 bytes of Base64, or not a curve point.
    #[error("key {index}: public key is not a valid Ed25519 key")]
    BadPublicKey {
        /// Position in the keyring.
        index: usize,
    },
    /// A small-order public key, for which forgeries are easy.
    #[error("key {index}: public key is weak (small order)")]
    WeakPublicKey {
        /// Position in the keyring.
        index: usize,
    },
    /// The stated key id is not the id of the key.
    #[error("key {index}: kid {stated} does not match its public key (expected {actual})")]
    KidMismatch {
        /// Position in the keyring.
        index: usize,
        /// The kid written in the file.
        stated: String,
        /// The kid computed from the key.
        actual: KeyId,
    },
    /// The same public key twice.
    #[error("key {index}: duplicate of an earlier key")]
    DuplicateKey {
        /// Position in the keyring.
        index: usize,
    },
    /// A validity window that ends before it starts.
    #[error("key {index}: valid_until is before valid_from")]
    InvertedWindow {
        /// Position in the keyring.
        index: usize,
    },
    /// A keyring with no keys verifies nothing.
    #[error("keyring holds no keys")]
    Empty,
    /// A holder key of small order: a ticket bound to it could be shown by anyone.
    #[error("holder key is weak (small order)")]
    WeakHolderKey,
}

/// The private half: signs tickets. Lives only in the cloud.
pub struct TicketSigner {
    key: SigningKey,
    key_id: KeyId,
}

impl TicketSigner {
    /// A signer from 32 secret bytes (from a CSPRNG, or a test vector).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        let key_id = KeyId::of(&key.verifying_key());
        Self { key, key_id }
    }

    /// Reads a PKCS#8 PEM private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        let key_id = KeyId::of(&key.verifying_key());
        Ok(Self { key, key_id })
    }

    /// The PKCS#8 PEM text of the private key.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))
    }

    /// Id of this key, written into every barcode it signs.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs the claims and returns the barcode text.
    pub fn mint(&self, claims: &TicketClaims) -> String {
        let signed = barcode::signed_part(self.key_id, claims);
        let signature = self.sign_bytes(&signed);
        barcode::to_text(&signed, &signature)
    }

    /// Signs the claims bound to a holder's public key (barcode v2) and returns
    /// the static part the holder's wallet keeps: signed part, then signature.
    /// Refuses a weak (small-order) holder key, which would sign anything.
    pub fn bind(&self, claims: &TicketClaims, holder_key: &VerifyingKey) -> Result<Vec<u8>, KeyError> {
        if holder_key.is_weak() {
            return Err(KeyError::WeakHolderKey);
        }
        let mut out = barcode::signed_part_v2(self.key_id, claims, holder_key.as_bytes());
        let signature = self.sign_bytes(&out);
        out.extend_from_slice(&signature);
        Ok(out)
    }

    fn sign_bytes(&self, signed_part: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign_message(&barcode::signing_message(signed_part))
    }

    /// Signs a complete, already domain-separated message.
    pub(crate) fn sign_message(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(message).to_bytes()
    }
}

/// The key a holder's device keeps to show a v2 ticket. In the product it lives
/// in the browser (WebCrypto); this Rust twin serves tests, benchmarks and tools.
pub struct HolderSigner {
    key: SigningKey,
}

impl HolderSigner {
    /// A holder key from 32 secret bytes.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(secret) }
    }

    /// The public half, which the issuer signs into the ticket.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The code of a v2 ticket (`static_part` from [`TicketSigner::bind`]) shown at `shown_at`.
    pub fn show(&self, static_part: &[u8], shown_at: UnixSeconds) -> String {
        let signature = self.key.sign(&barcode::holder_message(static_part, shown_at)).to_bytes();
        barcode::shown_text(static_part, shown_at, &signature)
    }
}

impl fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketSigner").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Format tag of the keyring JSON.
pub const KEYRING_FORMAT: &str = "tixgate-keyring-v1";

/// A checked public key with the window in which gates accept its tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// Id of the key.
    pub key_id: KeyId,
    /// The public key.
    pub key: VerifyingKey,
    /// Tickets signed with this key are accepted from this time on.
    pub valid_from: UnixSeconds,
    /// ... until this time; `None` while the key is current.
    pub valid_until: Option<UnixSeconds>,
}

/// How long before its `valid_from` a gate already takes a key. A key starts
/// signing the moment it is generated, and a gate whose clock runs minutes slow
/// would otherwise refuse every ticket and ticket list of a fresh key. Taking an
/// authentic key's signatures early weakens nothing; retirement (`valid_until`)
/// stays exact, because that is the one that stops a key.
pub const KEY_CLOCK_TOLERANCE: UnixSeconds = 15 * 60;

impl TrustedKey {
    /// Whether the key is in force at `now`, by a clock that may run up to
    /// [`KEY_CLOCK_TOLERANCE`] slow.
    pub fn in_force(&self, now: UnixSeconds) -> bool {
        now.saturating_add(KEY_CLOCK_TOLERANCE) >= self.valid_from && self.valid_until.is_none_or(|until| now <= until)
    }
}

/// The public keys a gate trusts, several at once so keys can rotate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<TrustedKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: String,
    keys: Vec<KeyringEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringEntry {
    kid: String,
    /// Base64 of the 32-byte public key.
    public_key: String,
    #[serde(with = "time::serde::rfc3339")]
    valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    valid_until: Option<OffsetDateTime>,
}

impl Keyring {
    /// A keyring of already-checked keys.
    pub fn new(keys: Vec<TrustedKey>) -> Self {
        Self { keys }
    }

    /// Parses and checks keyring JSON: formats, key ids, weak keys, duplicates.
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        let file: KeyringFile = serde_json::from_str(json).map_err(|e| KeyError::KeyringSyntax(e.to_string()))?;
        if file.format != KEYRING_FORMAT {
            return Err(KeyError::KeyringFormat(file.format));
        }
        if file.keys.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut keys: Vec<TrustedKey> = Vec::with_capacity(file.keys.len());
        for (index, entry) in file.keys.into_iter().enumerate() {
            let key = check_entry(index, entry)?;
            if keys.iter().any(|k| k.key == key.key) {
                return Err(KeyError::DuplicateKey { index });
            }
            keys.push(key);
        }
        Ok(Self { keys })
    }

    /// The keyring as JSON, in the form [`Keyring::from_json`] reads.
    pub fn to_json(&self) -> String {
        let file = KeyringFile { format: KEYRING_FORMAT.to_owned(), keys: self.keys.iter().map(entry_of).collect() };
        // Serialising plain strings and timestamps cannot fail.
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }

    /// Adds a key (rotation: the new key joins, the old one stays until retired).
    pub fn add(&mut self, key: TrustedKey) {
        self.keys.push(key);
    }

    /// Sets the end of a key's window; returns false if no such key.
    pub fn retire(&mut self, key_id: KeyId, at: UnixSeconds) -> bool {
        let mut found = false;
        for key in self.keys.iter_mut().filter(|k| k.key_id == key_id) {
            key.valid_until = Some(at);
            found = true;
        }
        found
    }

    /// Every key with this id (usually one).
    pub fn candidates(&self, key_id: KeyId) -> impl Iterator<Item = &TrustedKey> {
        self.keys.iter().filter(move |k| k.key_id == key_id)
    }

    /// All keys, in file order.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }
}

fn check_entry(index: usize, entry: KeyringEntry) -> Result<TrustedKey, KeyError> {
    let raw =
        data_encoding::BASE64.decode(entry.public_key.as_bytes()).map_err(|_| KeyError::BadPublicKey { index })?;
    let raw: [u8; 32] = raw.try_into().map_err(|_| KeyError::BadPublicKey { index })?;
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::BadPublicKey { index })?;
    if key.is_weak() {
        return Err(KeyError::WeakPublicKey { index });
    }
    let key_id = KeyId::of(&key);
    if KeyId::from_hex(&entry.kid) != Some(key_id) {
        return Err(KeyError::KidMismatch { index, stated: entry.kid, actual: key_id });
    }
    let valid_from = unix_seconds(entry.valid_from);
    let valid_until = entry.valid_until.map(unix_seconds);
    if valid_until.is_some_and(|until| until < valid_from) {
        return Err(KeyError::InvertedWindow { index });
    }
    Ok(TrustedKey { key_id, key, valid_from, valid_until })
}

fn entry_of(key: &TrustedKey) -> KeyringEntry {
    KeyringEntry {
        kid: key.key_id.to_string(),
        public_key: data_encoding::BASE64.encode(key.key.as_bytes()),
        valid_from: date_time(key.valid_from),
        valid_until: key.valid_until.map(date_time),
    }
}

/// Seconds since the epoch; times before 1970 clamp to 0.
pub fn unix_seconds(t: OffsetDateTime) -> UnixSeconds {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

/// The UTC date-time of a Unix time; out-of-range values clamp to the epoch.
pub fn date_time(t: UnixSeconds) -> OffsetDateTime {
    i64::try_from(t)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(seed: u8) -> TicketSigner {
        TicketSigner::from_secret_bytes(&[seed; 32])
    }

    fn ring_json(entries: &str) -> String {
        format!(r#"{{"format":"{KEYRING_FORMAT}","keys":[{entries}]}}"#)
    }

    fn entry(s: &TicketSigner, kid: &str) -> String {
        let pk = data_encoding::BASE64.encode(s.verifying_key().as_bytes());
        format!(r#"{{"kid":"{kid}","public_key":"{pk}","valid_from":"2026-01-01T00:00:00Z"}}"#)
    }

    #[test]
    fn a_slow_clock_takes_a_fresh_key_but_retirement_is_exact() {
        let s = signer(1);
        let key =
            TrustedKey { key_id: s.key_id(), key: s.verifying_key(), valid_from: 10_000, valid_until: Some(20_000) };
        assert!(key.in_force(10_000 - 5 * 60), "a gate 5 min slow, just after the key came into force");
        assert!(!key.in_force(10_000 - KEY_CLOCK_TOLERANCE - 1), "not hours early");
        assert!(key.in_force(20_000), "up to and including the retirement time");
        assert!(!key.in_force(20_001), "retired means retired");
    }

    #[test]
    fn keyring_round_trips_through_json() {
        let mut ring = Keyring::default();
        for seed in [1, 2] {
            let s = signer(seed);
            ring.add(TrustedKey {
                key_id: s.key_id(),
                key: s.verifying_key(),
                valid_from: 1_700_000_000,
                valid_until: None,
            });
        }
        assert!(ring.retire(signer(1).key_id(), 1_800_000_000));
        assert_eq!(Keyring::from_json(&ring.to_json()), Ok(ring));
    }

    #[test]
    fn private_key_round_trips_through_pem() {
        let s = signer(7);
        let pem = s.to_pkcs8_pem().expect("pem");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = TicketSigner::from_pkcs8_pem(&pem).expect("parse");
        assert_eq!(back.key_id(), s.key_id());
        assert!(matches!(TicketSigner::from_pkcs8_pem("garbage"), Err(KeyError::BadPrivateKey(_))));
    }

    #[test]
    fn keyring_refuses_inconsistent_entries() {
        let s = signer(3);
        let good = entry(&s, &s.key_id().to_string());
        assert!(Keyring::from_json(&ring_json(&good)).is_ok());
        assert_eq!(
            Keyring::from_json(&ring_json(&entry(&s, "00000000"))),
            Err(KeyError::KidMismatch { index: 0, stated: "00000000".into(), actual: s.key_id() })
        );
        assert_eq!(Keyring::from_json(&ring_json(&format!("{good},{good}"))), Err(KeyError::DuplicateKey { index: 1 }));
        assert_eq!(Keyring::from_json(&ring_json("")), Err(KeyError::Empty));
        let weak = r#"{"kid":"x","public_key":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","valid_from":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(Keyring::from_json(&ring_json(weak)), Err(KeyError::WeakPublicKey { index: 0 }));
        let short = r#"{"kid":"x","public_key":"AAAA","valid_from":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(Keyring::from_json(&ring_json(short)), Err(KeyError::BadPublicKey { index: 0 }));
        let inverted = good.replace(r#""valid_from""#, r#""valid_until":"2025-01-01T00:00:00Z","valid_from""#);
        assert_eq!(Keyring::from_json(&ring_json(&inverted)), Err(KeyError::InvertedWindow { index: 0 }));
        let extra = good.replace(r#""kid""#, r#""private_key":"oops","kid""#);
        assert!(matches!(Keyring::from_json(&ring_json(&extra)), Err(KeyError::KeyringSyntax(_))));
        assert!(matches!(Keyring::from_json(r#"{"format":"v0","keys":[]}"#), Err(KeyError::KeyringFormat(_))));
    }
}
