//! Authenticated frames: every sync message is wrapped, addressed and
//! authenticated end to end, whatever carries it (broker or QUIC).
//!
//! Two layouts, both `magic` ‖ sender length (1 byte) ‖ sender ‖ recipient length
//! (1 byte) ‖ recipient ‖ authenticator ‖ body:
//!
//! - **Signed** (`TXS1`, Ed25519 signature, 64 bytes) over `tixgate/sync/v1\0` ‖
//!   both lengths and ids ‖ body. Broadcasts (`*`, every gate) are always signed:
//!   a gate can check them but not forge them.
//! - **Linked** (`TXL1`, HMAC-SHA256 tag, 32 bytes) over `tixgate/sync/link/v1\0` ‖
//!   both lengths and ids ‖ body, keyed by the [`LinkKey`] only the two ends of a
//!   gate–hub link can compute. Point-to-point only. A signature costs ~20 µs to
//!   make and ~36 µs to check on a venue box; a tag, about 1 µs each — and a claim
//!   waits on four of them, on the path where a person stands at the door.
//!
//! Either way a frame can be neither forged, altered, attributed to another
//! sender, nor redirected to another recipient.

#![warn(clippy::indexing_slicing)]

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{MAX_FRAME, valid_node_id};

const MAGIC: &[u8; 4] = b"TXS1";
const DOMAIN: &[u8] = b"tixgate/sync/v1\0";
const LINK_MAGIC: &[u8; 4] = b"TXL1";
const LINK_DOMAIN: &[u8] = b"tixgate/sync/link/v1\0";
/// HKDF salt of link keys: binds them to this use.
const LINK_SALT: &[u8] = b"tixgate/sync/link-key/v1";
const TAG_LEN: usize = 32;
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
    /// The link tag does not verify (forged or altered), or no link with the
    /// sender exists to check it by.
    #[error("bad link tag from {0:?}")]
    BadTag(String),
    /// A linked frame addressed to every gate: only signatures may do that.
    #[error("linked frame addressed to everyone")]
    LinkedBroadcast,
    /// The key file is not a PKCS#8 Ed25519 key.
    #[error("invalid node key: {0}")]
    BadKey(String),
}

/// A frame whose authenticator verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Who sent it.
    pub sender: &'a str,
    /// Whom it is for.
    pub recipient: Recipient<'a>,
    /// The message body.
    pub body: &'a [u8],
    /// How it was authenticated.
    pub auth: Auth,
}

/// How a frame was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The sender's Ed25519 signature.
    Signed,
    /// A tag under the link key the sender shares with the recipient.
    Linked,
}

/// What a receiver knows of a sender: its public key, and the key of the link
/// between them (if the receiver speaks linked frames with it).
#[derive(Clone)]
pub struct SenderKeys {
    /// The sender's public key: checks signed frames.
    pub public: VerifyingKey,
    /// The link key: checks linked frames.
    pub link: Option<LinkKey>,
}

impl From<VerifyingKey> for SenderKeys {
    fn from(public: VerifyingKey) -> Self {
        Self { public, link: None }
    }
}

/// The secret a gate and the hub share, for linked frames: HKDF-SHA256 of the
/// X25519 agreement between one's node key and the other's public key, with
/// both public keys as context. Each side computes it alone from what
/// enrolment already gave it; nothing more is stored or sent.
///
/// Ed25519 keys used for X25519 as well: shown safe for this combination in
/// "On using the same key pair for Ed25519 and an X25519 based KEM"
/// (Thormarker, eprint 2021/509); the HKDF context keeps the uses apart.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkKey {
    /// Wraps `body` from `sender` to one `recipient` and tags it. Ids must be
    /// valid node ids (they are ours: checked at configuration time).
    pub fn seal(&self, sender: &str, recipient: &str, body: &[u8]) -> Vec<u8> {
        let header = header(sender, recipient);
        let tag = self.tag(&header, body).finalize().into_bytes();
        let mut frame = Vec::with_capacity(LINK_MAGIC.len() + header.len() + TAG_LEN + body.len());
        frame.extend_from_slice(LINK_MAGIC);
        frame.extend_from_slice(&header);
        frame.extend_from_slice(&tag);
        frame.extend_from_slice(body);
        frame
    }

    fn tag(&self, header: &[u8], body: &[u8]) -> Hmac<Sha256> {
        // Any key length is valid for HMAC.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(LINK_DOMAIN);
        mac.update(header);
        mac.update(body);
        mac
    }
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

    /// The key of the link between this node and the one holding `peer`; both
    /// ends compute the same. `None` for a weak (small-order) peer key, which
    /// would make the agreement predictable.
    pub fn link_key(&self, peer: &VerifyingKey) -> Option<LinkKey> {
        if peer.is_weak() {
            return None;
        }
        let shared = peer.to_montgomery() * self.0.to_scalar();
        let (mine, theirs) = (self.public().to_bytes(), peer.to_bytes());
        let (low, high) = if mine <= theirs { (mine, theirs) } else { (theirs, mine) };
        let info = [low, high].concat();
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 8,160.
        let _ = hkdf::Hkdf::<Sha256>::new(Some(LINK_SALT), shared.as_bytes()).expand(&info, &mut key);
        Some(LinkKey(key))
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

/// Opens a frame: checks size, layout and ids, looks the sender's keys up with
/// `key_of` (`None`: unknown or revoked), and verifies the signature or link tag
/// before anything in the body is trusted.
pub fn open<'a, K: Into<SenderKeys>>(
    bytes: &'a [u8],
    key_of: impl FnOnce(&str) -> Option<K>,
) -> Result<Frame<'a>, FrameError> {
    if bytes.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    let mut rest = bytes;
    let auth = match take(&mut rest, MAGIC.len()).map_err(|_| FrameError::BadMagic)? {
        magic if magic == MAGIC => Auth::Signed,
        magic if magic == LINK_MAGIC => Auth::Linked,
        _ => return Err(FrameError::BadMagic),
    };
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
    match auth {
        Auth::Signed => {
            let signature: [u8; 64] = take(&mut rest, 64)?.try_into().map_err(|_| FrameError::Truncated)?;
            let body = rest;
            let keys = key_of(sender).ok_or_else(|| FrameError::UnknownSender(sender.to_owned()))?.into();
            keys.public
                .verify_strict(&signed_bytes(header, body), &Signature::from_bytes(&signature))
                .map_err(|_| FrameError::BadSignature(sender.to_owned()))?;
            Ok(Frame { sender, recipient, body, auth })
        }
        Auth::Linked => {
            if recipient == Recipient::Everyone {
                return Err(FrameError::LinkedBroadcast);
            }
            let tag = take(&mut rest, TAG_LEN)?;
            let body = rest;
            let keys = key_of(sender).ok_or_else(|| FrameError::UnknownSender(sender.to_owned()))?.into();
            let link = keys.link.ok_or_else(|| FrameError::BadTag(sender.to_owned()))?;
            // Constant-time comparison.
            link.tag(header, body).verify_slice(tag).map_err(|_| FrameError::BadTag(sender.to_owned()))?;
            Ok(Frame { sender, recipient, body, auth })
        }
    }
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
        assert_eq!(
            opened,
            Frame { sender: "north-1", recipient: Recipient::Node("hub"), body: b"body", auth: Auth::Signed }
        );
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
        assert_eq!(open(&frame, |_| None::<VerifyingKey>), Err(FrameError::UnknownSender("north-1".into())));
        assert_eq!(open(&frame[..20], |_| Some(gate.public())), Err(FrameError::Truncated));
        assert_eq!(open(b"TXS", |_| None::<VerifyingKey>), Err(FrameError::BadMagic));
        let huge = vec![0u8; MAX_FRAME + 1];
        assert_eq!(open(&huge, |_| None::<VerifyingKey>), Err(FrameError::TooLarge(MAX_FRAME + 1)));
        let broadcast = gate.seal("hub", Recipient::Everyone, b"x");
        let opened = open(&broadcast, |_| Some(gate.public())).expect("opens");
        assert!(opened.recipient.includes("south-2"));
        assert!(!Recipient::Node("a").includes("b"));
    }

    #[test]
    fn both_ends_of_a_link_compute_one_key_that_nobody_else_has() {
        let (gate, hub, other) = (
            NodeKey::from_secret_bytes(&[7; 32]),
            NodeKey::from_secret_bytes(&[8; 32]),
            NodeKey::from_secret_bytes(&[9; 32]),
        );
        let at_gate = gate.link_key(&hub.public()).expect("link");
        let at_hub = hub.link_key(&gate.public()).expect("link");
        assert_eq!(at_gate.0, at_hub.0);
        assert_ne!(other.link_key(&hub.public()).expect("link").0, at_hub.0, "another gate's link");
        assert_ne!(gate.link_key(&other.public()).expect("link").0, at_gate.0, "a link to another node");
        let weak = VerifyingKey::from_bytes(&[0; 32]).expect("the identity decodes");
        assert!(gate.link_key(&weak).is_none(), "a small-order key gives no link");
    }

    #[test]
    fn linked_frames_open_with_the_link_and_any_change_is_refused() {
        let (gate, hub) = (NodeKey::from_secret_bytes(&[7; 32]), NodeKey::from_secret_bytes(&[8; 32]));
        let link = gate.link_key(&hub.public()).expect("link");
        let at_hub = || Some(SenderKeys { public: gate.public(), link: hub.link_key(&gate.public()) });
        let frame = link.seal("north-1", "hub", b"claim");
        let opened = open(&frame, |_| at_hub()).expect("opens");
        assert_eq!(
            opened,
            Frame { sender: "north-1", recipient: Recipient::Node("hub"), body: b"claim", auth: Auth::Linked }
        );
        for i in 0..frame.len() {
            let mut altered = frame.clone();
            altered[i] ^= 1;
            assert!(open(&altered, |_| at_hub()).is_err(), "byte {i} altered");
        }
        // A receiver without the link, or with another link, refuses it.
        assert_eq!(open(&frame, |_| Some(gate.public())), Err(FrameError::BadTag("north-1".into())));
        let other = NodeKey::from_secret_bytes(&[9; 32]).link_key(&hub.public());
        assert_eq!(
            open(&frame, |_| Some(SenderKeys { public: gate.public(), link: other })),
            Err(FrameError::BadTag("north-1".into()))
        );
        assert_eq!(open(&frame, |_| None::<SenderKeys>), Err(FrameError::UnknownSender("north-1".into())));
        // A linked broadcast is refused, even with a correct tag.
        let broadcast = link.seal("north-1", EVERYONE, b"x");
        assert_eq!(open(&broadcast, |_| at_hub()), Err(FrameError::LinkedBroadcast));
        // A tag cut short.
        assert_eq!(open(&frame[..20], |_| at_hub()), Err(FrameError::Truncated));
    }

    #[test]
    fn keys_round_trip_through_pem() {
        let key = NodeKey::from_secret_bytes(&[9; 32]);
        let pem = key.to_pkcs8_pem().expect("pem");
        assert_eq!(NodeKey::from_pkcs8_pem(&pem).expect("parses").public(), key.public());
        assert!(NodeKey::from_pkcs8_pem("nope").is_err());
    }
}
