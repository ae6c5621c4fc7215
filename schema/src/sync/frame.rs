//! Signed frames: every sync message is wrapped, signed and addressed.
//!
//! Layout: `TXS1` ‖ sender length (1 byte) ‖ sender ‖ recipient length (1 byte) ‖
//! recipient ‖ Ed25519 signature (64 bytes) ‖ body. The signature covers
//! `tixgate/sync/v1\0` ‖ both lengths and ids ‖ body, so a frame can be neither
//! forged, altered, attributed to another sender, nor redirected to another
//! recipient. `*` addresses every gate (broadcasts).

#![warn(clippy::indexing_slicing)]

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::{MAX_FRAME, valid_node_id};

const MAGIC: &[u8; 4] = b"TXS1";
const DOMAIN: &[u8] = b"tixgate/sync/v1\0";
/// The recipient id of a broadcast.
pub const EVERYONE: &str = "*";

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Larger than [`MAX_FRAME`].
    #[error("frame of {0} bytes (at most {MAX_FRAME})")]
    TooLarge(usize),
    /// Not a tixgate sync frame.
    #[error("not a tixgate sync frame")]
    BadMagic,
    /// Ends before its header does.
    #[error("truncated frame")]
    Truncated,
    /// The sender id is not a valid node id.
    #[error("invalid sender id")]
    BadSender,
    /// The recipient id is not a valid node id or `*`.
    #[error("invalid recipient id")]
    BadRecipient,
    /// No key is known for the sender (not enrolled, or revoked).
    #[error("unknown or revoked sender {0:?}")]
    UnknownSender(String),
    /// The signature does not verify: forged or altered.
    #[error("bad signature from {0:?}")]
    BadSignature(String),
    /// The key file is not a PKCS#8 Ed25519 key.
    #[error("invalid node key: {0}")]
    BadKey(String),
}

/// A frame whose signature verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Who signed it.
    pub sender: &'a str,
    /// Whom it is for.
    pub recipient: Recipient<'a>,
    /// The message body.
    pub body: &'a [u8],
}

/// Whom a frame is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient<'a> {
    /// One node.
    Node(&'a str),
    /// Every gate.
    Everyone,
}

impl<'a> Recipient<'a> {
    fn id(self) -> &'a str {
        match self {
            Recipient::Node(id) => id,
            Recipient::Everyone => EVERYONE,
        }
    }

    /// True if a node called `me` should read it.
    pub fn includes(self, me: &str) -> bool {
        match self {
            Recipient::Node(id) => id == me,
            Recipient::Everyone => true,
        }
    }
}

/// A node's signing key: the hub's, or a gate's from enrolment.
#[derive(Clone)]
pub struct NodeKey(SigningKey);

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", data_encoding::HEXLOWER.encode(self.0.verifying_key().as_bytes()))
    }
}

impl NodeKey {
    /// A key from 32 secret bytes (the caller draws them from the OS).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(secret))
    }

    /// Reads a PKCS#8 PEM key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, FrameError> {
        SigningKey::from_pkcs8_pem(pem).map(Self).map_err(|e| FrameError::BadKey(e.to_string()))
    }

    /// Writes it as PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Result<String, FrameError> {
        self.0
            .to_pkcs8_pem(Default::default())
            .map(|pem| pem.to_string())
            .map_err(|e| FrameError::BadKey(e.to_string()))
    }

    /// The public half, which the other side holds.
    pub fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// Wraps `body` from `sender` to `recipient` and signs it. Ids must be valid
    /// node ids (they are ours: checked at configuration time).
    pub fn seal(&self, sender: &str, recipient: Recipient<'_>, body: &[u8]) -> Vec<u8> {
        let recipient = recipient.id();
        let header = header(sender, recipient);
        let signature = self.0.sign(&signed_bytes(&header, body));
        let mut frame = Vec::with_capacity(MAGIC.len() + header.len() + 64 + body.len());
        frame.extend_from_slice(MAGIC);
        frame.extend_from_slice(&header);
        frame.extend_from_slice(&signature.to_bytes());
        frame.extend_from_slice(body);
        frame
    }
}

fn header(sender: &str, recipient: &str) -> Vec<u8> {
    let mut header = Vec::with_capacity(2 + sender.len() + recipient.len());
    header.push(sender.len() as u8);
    header.extend_from_slice(sender.as_bytes());
    header.push(recipient.len() as u8);
    header.extend_from_slice(recipient.as_bytes());
    header
}

fn signed_bytes(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(DOMAIN.len() + header.len() + body.len());
    signed.extend_from_slice(DOMAIN);
    signed.extend_from_slice(header);
    signed.extend_from_slice(body);
    signed
}

/// Reads `n` bytes off the front.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
    if bytes.len() < n {
        return Err(FrameError::Truncated);
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn take_id<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], FrameError> {
    let len = take(bytes, 1)?.first().copied().unwrap_or(0);
    take(bytes, usize::from(len))
}

/// Opens a frame: checks size, layout and ids, looks the sender's public key up
/// with `key_of` (`None`: unknown or revoked), and verifies the signature before
/// anything in the body is trusted.
pub fn open<'a>(bytes: &'a [u8], key_of: impl FnOnce(&str) -> Option<VerifyingKey>) -> Result<Frame<'a>, FrameError> {
    if bytes.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    let mut rest = bytes;
    if take(&mut rest, MAGIC.len()).map_err(|_| FrameError::BadMagic)? != MAGIC {
        return Err(FrameError::BadMagic);
    }
    let header_start = rest;
    let sender = std::str::from_utf8(take_id(&mut rest)?).map_err(|_| FrameError::BadSender)?;
    if !valid_node_id(sender) {
        return Err(FrameError::BadSender);
    }
    let recipient = std::str::from_utf8(take_id(&mut rest)?).map_err(|_| FrameError::BadRecipient)?;
    let recipient = match recipient {
        EVERYONE => Recipient::Everyone,
        id if valid_node_id(id) => Recipient::Node(id),
        _ => return Err(FrameError::BadRecipient),
    };
    let header = header_start.get(..header_start.len() - rest.len()).ok_or(FrameError::Truncated)?;
    let signature: [u8; 64] = take(&mut rest, 64)?.try_into().map_err(|_| FrameError::Truncated)?;
    let body = rest;
    let key = key_of(sender).ok_or_else(|| FrameError::UnknownSender(sender.to_owned()))?;
    key.verify_strict(&signed_bytes(header, body), &Signature::from_bytes(&signature))
        .map_err(|_| FrameError::BadSignature(sender.to_owned()))?;
    Ok(Frame { sender, recipient, body })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, reason = "tests index known frames")]
    use super::*;

    #[test]
    fn sealed_frames_open_and_any_change_is_refused() {
        let gate = NodeKey::from_secret_bytes(&[7; 32]);
        let other = NodeKey::from_secret_bytes(&[8; 32]);
        let frame = gate.seal("north-1", Recipient::Node("hub"), b"body");
        let opened = open(&frame, |id| (id == "north-1").then(|| gate.public())).expect("opens");
        assert_eq!(opened, Frame { sender: "north-1", recipient: Recipient::Node("hub"), body: b"body" });
        for i in 0..frame.len() {
            let mut altered = frame.clone();
            altered[i] ^= 1;
            assert!(open(&altered, |_| Some(gate.public())).is_err(), "byte {i} altered");
        }
        assert_eq!(
            open(&frame, |_| Some(other.public())),
            Err(FrameError::BadSignature("north-1".into())),
            "signed by someone else"
        );
        assert_eq!(open(&frame, |_| None), Err(FrameError::UnknownSender("north-1".into())));
        assert_eq!(open(&frame[..20], |_| Some(gate.public())), Err(FrameError::Truncated));
        assert_eq!(open(b"TXS", |_| None), Err(FrameError::BadMagic));
        let huge = vec![0u8; MAX_FRAME + 1];
        assert_eq!(open(&huge, |_| None), Err(FrameError::TooLarge(MAX_FRAME + 1)));
        let broadcast = gate.seal("hub", Recipient::Everyone, b"x");
        let opened = open(&broadcast, |_| Some(gate.public())).expect("opens");
        assert!(opened.recipient.includes("south-2"));
        assert!(!Recipient::Node("a").includes("b"));
    }

    #[test]
    fn keys_round_trip_through_pem() {
        let key = NodeKey::from_secret_bytes(&[9; 32]);
        let pem = key.to_pkcs8_pem().expect("pem");
        assert_eq!(NodeKey::from_pkcs8_pem(&pem).expect("parses").public(), key.public());
        assert!(NodeKey::from_pkcs8_pem("nope").is_err());
    }
}
