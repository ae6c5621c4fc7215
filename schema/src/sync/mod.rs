//! The venue sync protocol, version 1: what gates and the hub say to each other
//! over MQTT or QUIC. Pure: messages, their limits and their authenticated frames.
//!
//! Gate → hub: [`GateMessage`] — `Hello`, `Claim` (may this ticket enter?), `Scans`
//! (the outbox, in sequence order). Hub → gate: [`HubMessage`] — `Welcome`,
//! `Verdict` (the claim's answer), `Ack` (every scan up to a sequence is durable at
//! the hub), `Admissions` (broadcast: who went in or out, at which gate).
//!
//! Every message travels in a [`frame`] signed by its sender's Ed25519 key and
//! addressed to one recipient, so a transport that cannot tell senders apart (an
//! MQTT broker without ACLs) still cannot be used to forge or redirect a message.
//! Decoding is strict: bounded sizes, no trailing bytes, ids checked.

pub mod frame;

use serde::{Deserialize, Serialize};

use crate::entry::{Direction, PastScan};
use crate::hlc::HlcTimestamp;
use crate::reason::Reason;
use crate::verify::Decision;

pub use frame::{Auth, Frame, FrameError, LinkKey, NodeKey, Recipient, SenderKeys};

/// Largest frame either side accepts, in bytes.
pub const MAX_FRAME: usize = 64 * 1024;
/// Most scans in one `Scans` message, and most admissions in one broadcast.
pub const MAX_BATCH: usize = 256;
/// Longest node id (gate ids, and the hub's name).
pub const MAX_NODE_ID: usize = 32;
/// The node id the hub signs as.
pub const HUB_ID: &str = "hub";
/// Largest piece of a manifest file in one [`HubMessage::Chunk`]: the frame
/// around it stays under [`MAX_FRAME`].
pub const MANIFEST_CHUNK: usize = 48 * 1024;

/// Checks a node id: 1–32 of `A-Z a-z 0-9 - _`, so it is safe in an MQTT topic
/// (no `/`, `+`, `#`) and in file names.
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_NODE_ID && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Splits `host:port` (port 1–65535, host not empty); `None` otherwise.
pub fn parse_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// How a check-in list treats a second entry; travels with claims and reports so
/// the hub applies the gate's own list rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReentryRule {
    /// Any number of entries.
    pub multiple: bool,
    /// Entry again after an exit.
    pub after_exit: bool,
}

/// A gate says who it is and where it stands, on every (re)connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Version of the replica the gate holds (0: none).
    pub replica_version: u64,
    /// Highest scan sequence the gate has recorded.
    pub last_seq: u64,
    /// The gate's clock.
    pub hlc: HlcTimestamp,
    /// Highest [`Admission::seq`] the gate has stored: the hub sends what came
    /// after it, so a gate that was away learns who came in meanwhile.
    pub admissions_through: u64,
}

/// "May this ticket pass?", asked before the gate accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Random id chosen by the gate; asking again with it gets the same answer.
    pub claim_id: u64,
    /// The ticket.
    pub ticket_id: u64,
    /// The check-in list.
    pub list_id: u32,
    /// Entry or exit.
    pub direction: Direction,
    /// The list's re-entry rule.
    pub rule: ReentryRule,
    /// The gate's logical time of the scan.
    pub hlc: HlcTimestamp,
}

/// One recorded scan, accepted or rejected, as a gate reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Gate-local sequence, from 1; the scan id is `gate:seq`.
    pub seq: u64,
    /// Logical time.
    pub hlc: HlcTimestamp,
    /// The gate's wall clock, Unix ms.
    pub wall_ms: u64,
    /// Ticket, when the signature verified.
    pub ticket_id: Option<u64>,
    /// Event, when the signature verified.
    pub event_id: Option<u64>,
    /// Ticket type, when the signature verified: the hub names the entrance
    /// a refused ticket was sent to from it.
    pub ticket_type: Option<u32>,
    /// Check-in list.
    pub list_id: u32,
    /// Entry or exit.
    pub direction: Direction,
    /// What the gate decided.
    pub decision: Decision,
    /// Why, when rejected or annulled.
    pub reason: Option<Reason>,
    /// The list's re-entry rule (for conflict detection).
    pub rule: ReentryRule,
    /// Decided without the hub.
    pub offline: bool,
    /// Admission withdrawn: nobody passed.
    pub annulled: bool,
    /// The claim the hub granted for it, when decided online.
    pub claim_id: Option<u64>,
    /// The ticket was missing from the gate's replica.
    pub not_in_replica: bool,
}

/// Everything a gate sends the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GateMessage {
    /// On connection.
    Hello(Hello),
    /// Before accepting.
    Claim(Claim),
    /// Recorded scans not yet acknowledged, in sequence order.
    Scans(Vec<ScanReport>),
    /// "Send me manifest `version` from byte `offset`" (after an [`HubMessage::Offer`];
    /// a download resumes from what the gate already has).
    Fetch {
        /// The offered version.
        version: u64,
        /// The offered file's SHA-256: a snapshot and a delta may share a version.
        sha256: [u8; 32],
        /// Bytes the gate already holds.
        offset: u64,
    },
}

/// A manifest file the hub can send a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestOffer {
    /// Its version.
    pub version: u64,
    /// For a delta, the version it applies on top of.
    pub base_version: Option<u64>,
    /// File size in bytes.
    pub len: u64,
    /// SHA-256 of the whole file: the download is checked against it (the
    /// manifest's own signature is checked again when applied).
    pub sha256: [u8; 32],
}

/// Where and when a ticket already entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstEntry {
    /// Logical time of that entry.
    pub at: HlcTimestamp,
    /// The gate that admitted it.
    pub gate: String,
}

/// The hub's answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Pass: the admission is durable at the hub.
    Granted,
    /// Already inside.
    AlreadyIn(FirstEntry),
}

/// An accepted entry or exit, broadcast to every gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// The ticket.
    pub ticket_id: u64,
    /// The list.
    pub list_id: u32,
    /// In or out.
    pub direction: Direction,
    /// Logical time.
    pub at: HlcTimestamp,
    /// Gate that let it through.
    pub gate: String,
    /// Withdrawn (nobody passed): forget the earlier broadcast of it.
    pub annulled: bool,
    /// The hub's id for this admission (`c:<claim>` or the scan id).
    pub key: String,
    /// The hub's sequence of admission changes (new or withdrawn), from 1.
    pub seq: u64,
}

impl Admission {
    /// As history for the entry decision.
    pub fn past_scan(&self) -> PastScan {
        PastScan { at: self.at, direction: self.direction, gate: self.gate.clone() }
    }
}

/// Everything the hub sends a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HubMessage {
    /// Reply to `Hello`: the highest sequence of this gate the hub holds durably.
    Welcome {
        /// Every scan of the gate up to here is stored at the hub.
        acked_through: u64,
    },
    /// Reply to a claim.
    Verdict {
        /// The claim answered.
        claim_id: u64,
        /// The answer.
        verdict: Verdict,
    },
    /// Every scan of the gate up to `through` is durable at the hub.
    Ack {
        /// Cumulative sequence.
        through: u64,
    },
    /// Admissions and exits anywhere in the venue.
    Admissions(Vec<Admission>),
    /// A newer ticket list for the gate: after `Welcome` if the gate is behind,
    /// and to every gate when a new one arrives.
    Offer(ManifestOffer),
    /// Part of an offered manifest, in answer to `Fetch`.
    Chunk {
        /// The manifest version.
        version: u64,
        /// Where these bytes start in the file.
        offset: u64,
        /// At most [`MANIFEST_CHUNK`] bytes; empty when nothing is left (or the
        /// version is no longer held: the gate waits for the next offer).
        bytes: Vec<u8>,
    },
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The body does not decode as a message of this version.
    #[error("undecodable message body: {0}")]
    Body(String),
    /// Bytes after the message.
    #[error("{0} bytes after the message")]
    Trailing(usize),
    /// More than [`MAX_BATCH`] items.
    #[error("{0} items in one message (at most {MAX_BATCH})")]
    TooMany(usize),
    /// A manifest chunk over [`MANIFEST_CHUNK`].
    #[error("manifest chunk of {0} bytes (at most {MANIFEST_CHUNK})")]
    ChunkTooLarge(usize),
    /// A gate id inside the message is not a valid node id.
    #[error("invalid gate id in message")]
    BadGateId,
    /// A scan sequence of 0, or sequences not strictly increasing.
    #[error("scan sequences must start at 1 and increase")]
    BadSequence,
    /// A message claiming an annulled accept without it being an accept, and the like.
    #[error("inconsistent scan report {0}")]
    Inconsistent(u64),
}

fn decode_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, MessageError> {
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| MessageError::Body(e.to_string()))?;
    if !rest.is_empty() {
        return Err(MessageError::Trailing(rest.len()));
    }
    Ok(value)
}

fn encode_body<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own types into a Vec cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

impl GateMessage {
    /// Decodes and checks a body.
    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        let message: Self = decode_body(body)?;
        if let GateMessage::Scans(scans) = &message {
            if scans.len() > MAX_BATCH {
                return Err(MessageError::TooMany(scans.len()));
            }
            let mut last = 0;
            for scan in scans {
                if scan.seq <= last {
                    return Err(MessageError::BadSequence);
                }
                last = scan.seq;
                let accepted = scan.decision == Decision::Accept;
                if (scan.annulled && !accepted) || (accepted && scan.ticket_id.is_none()) {
                    return Err(MessageError::Inconsistent(scan.seq));
                }
            }
        }
        Ok(message)
    }

    /// The body bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode_body(self)
    }
}

impl HubMessage {
    /// Decodes and checks a body.
    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        let message: Self = decode_body(body)?;
        match &message {
            HubMessage::Admissions(list) => {
                if list.len() > MAX_BATCH {
                    return Err(MessageError::TooMany(list.len()));
                }
                if list.iter().any(|a| !valid_node_id(&a.gate) || a.key.len() > 2 * MAX_NODE_ID + 2) {
                    return Err(MessageError::BadGateId);
                }
            }
            HubMessage::Verdict { verdict: Verdict::AlreadyIn(first), .. } if !valid_node_id(&first.gate) => {
                return Err(MessageError::BadGateId);
            }
            HubMessage::Chunk { bytes, .. } if bytes.len() > MANIFEST_CHUNK => {
                return Err(MessageError::ChunkTooLarge(bytes.len()));
            }
            _ => {}
        }
        Ok(message)
    }

    /// The body bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode_body(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seq: u64) -> ScanReport {
        ScanReport {
            seq,
            hlc: HlcTimestamp(seq << 16),
            wall_ms: seq,
            ticket_id: Some(7),
            event_id: Some(1),
            ticket_type: Some(1),
            list_id: 1,
            direction: Direction::Entry,
            decision: Decision::Accept,
            reason: None,
            rule: ReentryRule::default(),
            offline: true,
            annulled: false,
            claim_id: None,
            not_in_replica: false,
        }
    }

    #[test]
    fn messages_round_trip() {
        let messages = [
            GateMessage::Hello(Hello { replica_version: 3, last_seq: 9, hlc: HlcTimestamp(5), admissions_through: 4 }),
            GateMessage::Claim(Claim {
                claim_id: 42,
                ticket_id: 7,
                list_id: 1,
                direction: Direction::Exit,
                rule: ReentryRule { multiple: false, after_exit: true },
                hlc: HlcTimestamp(1),
            }),
            GateMessage::Scans(vec![report(1), report(2)]),
        ];
        for m in messages {
            assert_eq!(GateMessage::decode(&m.encode()), Ok(m));
        }
        let first = FirstEntry { at: HlcTimestamp(3), gate: "north-1".into() };
        let hub = HubMessage::Verdict { claim_id: 1, verdict: Verdict::AlreadyIn(first) };
        assert_eq!(HubMessage::decode(&hub.encode()), Ok(hub));
    }

    #[test]
    fn out_of_order_oversized_and_trailing_bodies_are_refused() {
        let swapped = GateMessage::Scans(vec![report(2), report(1)]).encode();
        assert_eq!(GateMessage::decode(&swapped), Err(MessageError::BadSequence));
        let zero = GateMessage::Scans(vec![report(0)]).encode();
        assert_eq!(GateMessage::decode(&zero), Err(MessageError::BadSequence));
        let many = GateMessage::Scans((1..=MAX_BATCH as u64 + 1).map(report).collect()).encode();
        assert_eq!(GateMessage::decode(&many), Err(MessageError::TooMany(MAX_BATCH + 1)));
        let mut trailing = GateMessage::Scans(vec![report(1)]).encode();
        trailing.push(0);
        assert_eq!(GateMessage::decode(&trailing), Err(MessageError::Trailing(1)));
        let mut annulled_reject = report(1);
        annulled_reject.decision = Decision::Reject;
        annulled_reject.annulled = true;
        let body = GateMessage::Scans(vec![annulled_reject]).encode();
        assert_eq!(GateMessage::decode(&body), Err(MessageError::Inconsistent(1)));
        let bad_gate = HubMessage::Admissions(vec![Admission {
            ticket_id: 1,
            list_id: 1,
            direction: Direction::Entry,
            at: HlcTimestamp(1),
            gate: "a/b".into(),
            annulled: false,
            key: "k".into(),
            seq: 1,
        }]);
        assert_eq!(HubMessage::decode(&bad_gate.encode()), Err(MessageError::BadGateId));
    }
}

/// The gate's private key in its enrolment folder.
pub const GATE_KEY_FILE: &str = "gate-key.pem";
/// The enrolment description in its folder.
pub const ENROLMENT_FILE: &str = "enrolment.json";
/// The gate's QUIC client certificate, issued by the venue CA.
pub const GATE_CERT_FILE: &str = "gate-cert.pem";
/// The private key of [`GATE_CERT_FILE`].
pub const GATE_TLS_KEY_FILE: &str = "gate-tls-key.pem";
/// The venue CA certificate: the only root a gate trusts for the hub.
pub const VENUE_CA_FILE: &str = "venue-ca.pem";

/// QUIC between gates and the hub: the constants both ends must agree on.
///
/// One bidirectional stream per connection, opened by the gate; each frame on
/// it is a 4-byte big-endian length followed by that many bytes (at most
/// [`MAX_FRAME`]).
pub mod quic {
    use std::time::Duration;

    /// ALPN protocol id: refuses peers that speak anything else.
    pub const ALPN: &[u8] = b"tixgate-sync/1";
    /// The name in the hub's certificate; gates verify it against the venue CA,
    /// whatever address they dialled.
    pub const HUB_SERVER_NAME: &str = "hub.tixgate";
    /// Keepalive: quinn sends none by default, and a quiet gate must not look dead.
    pub const KEEP_ALIVE: Duration = Duration::from_secs(2);
    /// A peer silent this long is gone (three keepalives missed).
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(7);

    /// The length prefix of a frame of `len` bytes.
    pub fn length_prefix(len: usize) -> [u8; 4] {
        u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
    }

    /// A frame as it goes on the stream: its length prefix, then its bytes.
    pub fn framed(frame: &[u8]) -> Vec<u8> {
        [&length_prefix(frame.len())[..], frame].concat()
    }

    /// The frame length a prefix announces, if within bounds.
    pub fn announced_length(prefix: [u8; 4]) -> Option<usize> {
        let len = u32::from_be_bytes(prefix) as usize;
        (len <= super::MAX_FRAME).then_some(len)
    }
}

/// What a gate is told at enrolment (`enrolment.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    /// The venue.
    pub venue_id: u32,
    /// This gate's id.
    pub gate_id: String,
    /// The hub's Ed25519 public key, hex.
    pub hub_public_key: String,
    /// The MQTT broker, `host:port`.
    pub mqtt_address: String,
    /// The hub's QUIC listener, `host:port`, if it has one.
    #[serde(default)]
    pub quic_address: Option<String>,
    /// MQTT password for user `gate_id` (the embedded broker checks it; see
    /// [`mqtt_client_id`] for the client ids that go with it).
    pub mqtt_password: String,
}

/// The MQTT client id of gate `gate`'s connection in direction `direction`
/// (`in` or `out`). The embedded broker accepts a gate's password only with
/// its own client ids, so no gate can take over another's session.
pub fn mqtt_client_id(venue: u32, gate: &str, direction: &str) -> String {
    format!("tixgate-gate-{venue}-{gate}-{direction}")
}

/// Whether `client_id` is one of gate `gate`'s client ids.
pub fn is_client_id_of(venue: u32, gate: &str, client_id: &str) -> bool {
    ["in", "out"].iter().any(|d| mqtt_client_id(venue, gate, d) == client_id)
}

impl Enrolment {
    /// The hub's public key, if the hex is a valid Ed25519 key.
    pub fn hub_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        let bytes: [u8; 32] =
            data_encoding::HEXLOWER_PERMISSIVE.decode(self.hub_public_key.as_bytes()).ok()?.try_into().ok()?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
    }
}

/// MQTT topics of one venue. Gates publish on their own `up` topic only; the hub
/// checks that a frame's signer is the gate the topic names.
pub mod topics {
    /// Where gate `gate` publishes.
    pub fn up(venue: u32, gate: &str) -> String {
        format!("tixgate/{venue}/up/{gate}")
    }

    /// What the hub subscribes to: every gate's `up` topic.
    pub fn up_filter(venue: u32) -> String {
        format!("tixgate/{venue}/up/+")
    }

    /// Where the hub answers gate `gate`.
    pub fn down(venue: u32, gate: &str) -> String {
        format!("tixgate/{venue}/down/{gate}")
    }

    /// Broadcasts to every gate.
    pub fn broadcast(venue: u32) -> String {
        format!("tixgate/{venue}/all")
    }

    /// The gate an `up` topic names, if it is one of this venue's.
    pub fn gate_of_up(venue: u32, topic: &str) -> Option<&str> {
        let prefix = format!("tixgate/{venue}/up/");
        topic.strip_prefix(prefix.as_str()).filter(|g| super::valid_node_id(g))
    }

    /// What a gate asks of the venue's broker.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum GateAction<'a> {
        /// Publish (or leave as its last will) a message on `topic`.
        Publish {
            /// The topic.
            topic: &'a str,
            /// Whether the broker is asked to keep it for later subscribers.
            retain: bool,
        },
        /// Subscribe to `filter`.
        Subscribe(&'a str),
    }

    /// Whether gate `gate` may do `action`: publish, never retained, on its own
    /// `up` topic only; subscribe to its own `down` topic and the broadcast,
    /// named exactly (no wildcards). The embedded broker enforces this, and
    /// the Mosquitto ACL `sync-hub broker-files` writes says the same.
    pub fn gate_may(venue: u32, gate: &str, action: GateAction<'_>) -> bool {
        match action {
            GateAction::Publish { topic, retain } => !retain && topic == up(venue, gate),
            GateAction::Subscribe(filter) => filter == down(venue, gate) || filter == broadcast(venue),
        }
    }
}
