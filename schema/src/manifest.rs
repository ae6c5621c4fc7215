//! Signed replica manifests: the ticket lists the cloud sends a venue's gates,
//! as a full snapshot or as a delta since an earlier version.
//!
//! File layout: `TXM3` ‖ key id (4) ‖ Ed25519 signature (64) ‖ body, where the
//! body is the postcard encoding of [`Manifest`] and the signature covers
//! `tixgate/manifest/v3\0 ‖ key id ‖ body`. The signature is checked before a
//! single byte of the body is parsed.
//!
//! Version 2 added the venue's entrances and areas and each list's hours,
//! exits, area and entrances; version 3 the venue's gates (each one's entrance,
//! and whether the cloud revoked it). A file of an older format is refused as
//! not a manifest: a hub holding only such files fetches a snapshot again, and
//! a gate keeps its replica until the hub offers it one.

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::barcode::UnixSeconds;
use crate::entry::{TicketStatus, UnknownTicketPolicy};
use crate::keys::{KeyId, Keyring, TicketSigner};

/// First bytes of every manifest file.
pub const MAGIC: &[u8; 4] = b"TXM3";
/// Signature domain of manifests.
pub const SIGNING_DOMAIN: &[u8] = b"tixgate/manifest/v3\0";
/// Largest manifest accepted: about 10 million tickets.
pub const MAX_MANIFEST_BYTES: usize = 512 << 20;
const HEADER_LEN: usize = 4 + 4 + 64;

/// The content of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The venue whose gates this is for.
    pub venue_id: u64,
    /// Monotonic version of the venue's replica.
    pub version: u64,
    /// `None` for a full snapshot; for a delta, the version it applies on top of.
    pub base_version: Option<u64>,
    /// When the cloud produced it.
    pub issued_at: UnixSeconds,
    /// Every ticket type of the venue's events (complete in deltas too).
    pub ticket_types: Vec<TicketTypeRecord>,
    /// Every check-in list of the venue (complete in deltas too).
    pub lists: Vec<ListRecord>,
    /// The venue's entrances, areas and gates (complete in deltas too).
    pub layout: VenueLayout,
    /// All tickets (snapshot) or the tickets changed since `base_version` (delta).
    pub tickets: Vec<TicketRecord>,
}

/// A ticket type, for display at the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketTypeRecord {
    /// Type id (as in barcodes).
    pub id: u32,
    /// Its event.
    pub event_id: u64,
    /// Display name.
    pub name: String,
}

/// A check-in list as the cloud configures it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRecord {
    /// List id.
    pub id: u32,
    /// Display name, e.g. "North entrance".
    pub name: String,
    /// The event it admits to.
    pub event_id: u64,
    /// Admitted ticket types; `None` admits all.
    pub ticket_types: Option<Vec<u32>>,
    /// Any number of entries.
    pub allow_multiple_entries: bool,
    /// Entry again after an exit.
    pub allow_entry_after_exit: bool,
    /// Tickets missing from the replica.
    pub unknown_tickets: UnknownTicketPolicy,
    /// Where and when it admits.
    pub doors: ListDoors,
}

/// Where and when a list admits: its hours, whether exits are scanned, the
/// area it leads into and the entrances that work it. The default is the
/// rule of a list with none of these set: always, anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDoors {
    /// Entries from (Unix seconds).
    pub opens_at: Option<UnixSeconds>,
    /// Entries until (Unix seconds).
    pub closes_at: Option<UnixSeconds>,
    /// Exits are scanned at its gates.
    pub scan_exits: bool,
    /// The area it leads into.
    pub area_id: Option<u32>,
    /// The entrances that work it; empty: every entrance.
    pub entrance_ids: Vec<u32>,
}

/// A venue's entrances, areas and gates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueLayout {
    /// Entrances.
    pub entrances: Vec<EntranceRecord>,
    /// Areas.
    pub areas: Vec<AreaRecord>,
    /// The gates the cloud knows of (as the hub reported them).
    pub gates: Vec<GateRecord>,
}

impl VenueLayout {
    /// What the cloud says of gate `gate_id`, if anything.
    pub fn gate(&self, gate_id: &str) -> Option<&GateRecord> {
        self.gates.iter().find(|g| g.gate_id == gate_id)
    }

    /// The entrance with this id.
    pub fn entrance(&self, id: u32) -> Option<&EntranceRecord> {
        self.entrances.iter().find(|e| e.id == id)
    }
}

/// One gate of the venue, as the organizer set it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRecord {
    /// The gate's id (its enrolment name at the hub).
    pub gate_id: String,
    /// The entrance it stands at; `None`: door staff choose on the gate.
    pub entrance_id: Option<u32>,
    /// Revoked in the cloud: the hub revokes its enrolment.
    pub revoked: bool,
}

/// An entrance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntranceRecord {
    /// Id.
    pub id: u32,
    /// What door staff and visitors call it.
    pub name: String,
}

/// An area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaRecord {
    /// Id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// How many people it may hold, if limited.
    pub capacity: Option<u32>,
}

/// One ticket's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    /// Ticket id.
    pub ticket_id: u64,
    /// Its event.
    pub event_id: u64,
    /// Its type.
    pub ticket_type_id: u32,
    /// Valid, revoked or blocked.
    pub status: TicketStatus,
    /// Holder details sealed with a key only the ticket's barcode gives
    /// (see [`crate::holder`]).
    pub sealed_holder: Option<Vec<u8>>,
}

impl Manifest {
    /// Whether this is a full snapshot.
    pub fn is_snapshot(&self) -> bool {
        self.base_version.is_none()
    }

    /// Encodes and signs the manifest.
    pub fn sign(&self, signer: &TicketSigner) -> Vec<u8> {
        let body = postcard::to_stdvec(self).unwrap_or_default();
        sign_body(signer, &body).unwrap_or_default()
    }

    /// Checks magic, size, key and signature, then parses. Total.
    pub fn open(bytes: &[u8], keyring: &Keyring, now: UnixSeconds) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let (header, body) = bytes.split_at_checked(HEADER_LEN).ok_or(ManifestError::Truncated)?;
        let (magic, rest) = header.split_at(4);
        if magic != MAGIC {
            return Err(ManifestError::NotAManifest);
        }
        let (kid, sig) = rest.split_at(4);
        let key_id = KeyId(kid.try_into().map_err(|_| ManifestError::Truncated)?);
        let signature = Signature::from_bytes(&sig.try_into().map_err(|_| ManifestError::Truncated)?);
        let message = signing_message(key_id, body);
        let mut candidates = keyring.candidates(key_id).peekable();
        if candidates.peek().is_none() {
            return Err(ManifestError::UnknownKey(key_id));
        }
        let signer = candidates
            .find(|k| k.key.verify_strict(&message, &signature).is_ok())
            .ok_or(ManifestError::BadSignature)?;
        if !signer.in_force(now) {
            return Err(ManifestError::KeyExpired(key_id));
        }
        let (manifest, rest) =
            postcard::take_from_bytes::<Manifest>(body).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ManifestError::Malformed(format!("{} bytes after the body", rest.len())));
        }
        manifest.check_consistent()?;
        Ok(manifest)
    }

    fn check_consistent(&self) -> Result<(), ManifestError> {
        if let Some(base) = self.base_version
            && base >= self.version
        {
            return Err(ManifestError::Malformed(format!("delta from {base} to {} goes backwards", self.version)));
        }
        Ok(())
    }

    /// Whether a gate of `venue_id` holding `current` (its replica version, if any)
    /// may apply this manifest: right venue, never older, deltas only on their base.
    pub fn applicable_to(&self, venue_id: u64, current: Option<u64>) -> Result<(), ManifestError> {
        if self.venue_id != venue_id {
            return Err(ManifestError::WrongVenue { expected: venue_id, found: self.venue_id });
        }
        if let Some(have) = current
            && self.version <= have
        {
            return Err(ManifestError::Rollback { have, offered: self.version });
        }
        match (self.base_version, current) {
            (Some(base), have) if Some(base) != have => Err(ManifestError::WrongBase { have, base }),
            _ => Ok(()),
        }
    }
}

/// What a manifest file says it is, read without checking its signature: for a
/// hub that passes files on to gates, which check everything before applying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHeader {
    /// The venue.
    pub venue_id: u64,
    /// Its version.
    pub version: u64,
    /// For a delta, the version it applies on top of.
    pub base_version: Option<u64>,
}

impl ManifestHeader {
    /// Reads the header fields of a manifest file's first bytes (the whole file
    /// is not needed). Total: `None` for anything that is not a manifest.
    pub fn peek(bytes: &[u8]) -> Option<Self> {
        let body = bytes.strip_prefix(MAGIC.as_slice())?.get(HEADER_LEN - MAGIC.len()..)?;
        // The body starts with these three fields, in this order (postcard is sequential).
        let (header, _) = postcard::take_from_bytes::<Self>(body).ok()?;
        header.base_version.is_none_or(|base| base < header.version).then_some(header)
    }
}

/// A manifest's lists and layout, read without checking its signature: for a
/// hub's dashboard, which shows the venue's areas and entrances (the gates
/// check every manifest before obeying it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDoors {
    /// The venue.
    pub venue_id: u64,
    /// Its version.
    pub version: u64,
    /// For a delta, the version it applies on top of.
    pub base_version: Option<u64>,
    /// When the cloud produced it.
    pub issued_at: UnixSeconds,
    /// Every ticket type.
    pub ticket_types: Vec<TicketTypeRecord>,
    /// Every check-in list.
    pub lists: Vec<ListRecord>,
    /// Entrances, areas and gates.
    pub layout: VenueLayout,
}

impl ManifestDoors {
    /// Reads everything before the tickets (lists and layout are complete in
    /// deltas too). Total: `None` for anything that is not a manifest.
    pub fn peek(bytes: &[u8]) -> Option<Self> {
        let body = bytes.strip_prefix(MAGIC.as_slice())?.get(HEADER_LEN - MAGIC.len()..)?;
        // The body starts with these fields, in this order (postcard is sequential).
        let (doors, _) = postcard::take_from_bytes::<Self>(body).ok()?;
        doors.base_version.is_none_or(|base| base < doors.version).then_some(doors)
    }
}

/// Signs bytes as a manifest body (used by [`Manifest::sign`]; tests and fuzzers
/// also use it to reach the body parser). `None` if the body is too large.
pub fn sign_body(signer: &TicketSigner, body: &[u8]) -> Option<Vec<u8>> {
    if body.len() > MAX_MANIFEST_BYTES - HEADER_LEN {
        return None;
    }
    let key_id = signer.key_id();
    let signature = signer.sign_message(&signing_message(key_id, body));
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key_id.0);
    out.extend_from_slice(&signature);
    out.extend_from_slice(body);
    Some(out)
}

fn signing_message(key_id: KeyId, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + 4 + body.len());
    msg.extend_from_slice(SIGNING_DOMAIN);
    msg.extend_from_slice(&key_id.0);
    msg.extend_from_slice(body);
    msg
}

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest of {0} bytes is larger than allowed")]
    TooLarge(usize),
    /// Shorter than its header.
    #[error("manifest is truncated")]
    Truncated,
    /// No `TXM3` magic: unsigned, of an older format, or not a manifest at all.
    #[error("not a signed tixgate manifest")]
    NotAManifest,
    /// Signed by a key the gate does not trust.
    #[error("manifest signed by unknown key {0}")]
    UnknownKey(KeyId),
    /// Signature does not verify: altered or forged.
    #[error("manifest signature does not verify")]
    BadSignature,
    /// Signed by a key outside its validity window.
    #[error("manifest signing key {0} is not in force")]
    KeyExpired(KeyId),
    /// Authentic but not parseable (a bug on the cloud side).
    #[error("manifest body is malformed: {0}")]
    Malformed(String),
    /// For another venue.
    #[error("manifest is for venue {found}, this gate serves venue {expected}")]
    WrongVenue {
        /// This gate's venue.
        expected: u64,
        /// The manifest's venue.
        found: u64,
    },
    /// Not newer than what the gate has: refused to prevent rollback.
    #[error("manifest version {offered} is not newer than the replica's {have}")]
    Rollback {
        /// The replica's version.
        have: u64,
        /// The manifest's version.
        offered: u64,
    },
    /// A delta whose base is not the replica's version.
    #[error("delta applies on version {base}, the replica is at {have:?}")]
    WrongBase {
        /// The replica's version, if any.
        have: Option<u64>,
        /// The delta's base.
        base: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::TrustedKey;

    fn signer(seed: u8) -> TicketSigner {
        TicketSigner::from_secret_bytes(&[seed; 32])
    }

    fn ring() -> Keyring {
        let s = signer(1);
        Keyring::new(vec![TrustedKey { key_id: s.key_id(), key: s.verifying_key(), valid_from: 0, valid_until: None }])
    }

    fn manifest(version: u64, base: Option<u64>) -> Manifest {
        Manifest {
            venue_id: 5,
            version,
            base_version: base,
            issued_at: 1_800_000_000,
            ticket_types: vec![TicketTypeRecord { id: 1, event_id: 9, name: "Standing".into() }],
            lists: vec![ListRecord {
                id: 1,
                name: "Main".into(),
                event_id: 9,
                ticket_types: None,
                allow_multiple_entries: false,
                allow_entry_after_exit: true,
                unknown_tickets: UnknownTicketPolicy::Accept,
                doors: ListDoors {
                    opens_at: Some(1_800_000_000),
                    closes_at: None,
                    scan_exits: true,
                    area_id: Some(3),
                    entrance_ids: vec![1, 2],
                },
            }],
            layout: VenueLayout {
                entrances: vec![
                    EntranceRecord { id: 1, name: "Main".into() },
                    EntranceRecord { id: 2, name: "VIP".into() },
                ],
                areas: vec![AreaRecord { id: 3, name: "Floor".into(), capacity: Some(800) }],
                gates: vec![
                    GateRecord { gate_id: "main-1".into(), entrance_id: Some(1), revoked: false },
                    GateRecord { gate_id: "spare".into(), entrance_id: None, revoked: true },
                ],
            },
            tickets: vec![TicketRecord {
                ticket_id: 77,
                event_id: 9,
                ticket_type_id: 1,
                status: TicketStatus::Valid,
                sealed_holder: Some(vec![1, 2, 3]),
            }],
        }
    }

    #[test]
    fn a_list_with_its_doors_costs_a_few_dozen_bytes() {
        let list = |id: u32| ListRecord {
            id: (1 << 31) + id,
            name: format!("List {id:02}"),
            event_id: 9,
            ticket_types: Some(vec![1, 2, 3]),
            allow_multiple_entries: false,
            allow_entry_after_exit: true,
            unknown_tickets: UnknownTicketPolicy::Reject,
            doors: ListDoors {
                opens_at: Some(1_800_000_000),
                closes_at: Some(1_800_021_600),
                scan_exits: true,
                area_id: Some(3),
                entrance_ids: vec![1, 2],
            },
        };
        let size =
            |lists: u32| Manifest { lists: (0..lists).map(list).collect(), ..manifest(3, None) }.sign(&signer(1)).len();
        let per_list = (size(100) - size(0)) / 100;
        // About 40 bytes: the name and its length, ids as varints, the two
        // times (5 bytes each), flags. A venue's lists weigh like a few
        // dozen tickets, nothing beside the tickets themselves.
        assert!(per_list <= 48, "{per_list} bytes per list");
        assert!(per_list >= 30, "{per_list} bytes per list: the doors are in it");
    }

    #[test]
    fn a_signed_manifest_opens_to_itself() {
        let m = manifest(3, None);
        assert_eq!(Manifest::open(&m.sign(&signer(1)), &ring(), 0), Ok(m));
    }

    #[test]
    fn unsigned_forged_altered_and_foreign_manifests_are_refused() {
        let bytes = manifest(3, None).sign(&signer(1));
        assert_eq!(Manifest::open(&bytes[..10], &ring(), 0), Err(ManifestError::Truncated));
        assert_eq!(Manifest::open(b"{\"tickets\":[]}", &ring(), 0), Err(ManifestError::Truncated));
        let mut unsigned = bytes.clone();
        unsigned[..4].copy_from_slice(b"TXM0");
        assert_eq!(Manifest::open(&unsigned, &ring(), 0), Err(ManifestError::NotAManifest));
        for format in [b"TXM1", b"TXM2"] {
            let mut older = bytes.clone();
            older[..4].copy_from_slice(format);
            assert_eq!(Manifest::open(&older, &ring(), 0), Err(ManifestError::NotAManifest), "an older format");
            assert_eq!(ManifestHeader::peek(&older), None, "a hub does not offer it");
            assert_eq!(ManifestDoors::peek(&older), None);
        }
        let mut altered = bytes.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(Manifest::open(&altered, &ring(), 0), Err(ManifestError::BadSignature));
        let foreign = manifest(3, None).sign(&signer(2));
        assert_eq!(Manifest::open(&foreign, &ring(), 0), Err(ManifestError::UnknownKey(signer(2).key_id())));
        let mut impostor = foreign;
        impostor[4..8].copy_from_slice(&signer(1).key_id().0);
        assert_eq!(Manifest::open(&impostor, &ring(), 0), Err(ManifestError::BadSignature));
    }

    #[test]
    fn a_hub_reads_the_doors_without_the_tickets() {
        let m = manifest(3, None);
        let doors = ManifestDoors::peek(&m.sign(&signer(2))).expect("read unverified");
        assert_eq!((doors.venue_id, doors.version, &doors.lists, &doors.layout), (5, 3, &m.lists, &m.layout));
        assert_eq!(doors.layout.gate("main-1").and_then(|g| g.entrance_id), Some(1));
        assert_eq!(doors.layout.entrance(2).map(|e| e.name.as_str()), Some("VIP"));
        let bytes = m.sign(&signer(1));
        assert_eq!(ManifestDoors::peek(&bytes[..100]), None, "cut inside the lists");
    }

    #[test]
    fn rollback_wrong_venue_and_wrong_base_are_refused() {
        let full = manifest(3, None);
        assert_eq!(full.applicable_to(5, None), Ok(()));
        assert_eq!(full.applicable_to(5, Some(2)), Ok(()));
        assert_eq!(full.applicable_to(5, Some(3)), Err(ManifestError::Rollback { have: 3, offered: 3 }));
        assert_eq!(full.applicable_to(6, None), Err(ManifestError::WrongVenue { expected: 6, found: 5 }));
        let delta = manifest(4, Some(3));
        assert_eq!(delta.applicable_to(5, Some(3)), Ok(()));
        assert_eq!(delta.applicable_to(5, Some(2)), Err(ManifestError::WrongBase { have: Some(2), base: 3 }));
        assert_eq!(delta.applicable_to(5, None), Err(ManifestError::WrongBase { have: None, base: 3 }));
        let backwards = manifest(3, Some(3)).sign(&signer(1));
        assert!(matches!(Manifest::open(&backwards, &ring(), 0), Err(ManifestError::Malformed(_))));
    }
}
