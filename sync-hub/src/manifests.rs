//! Ticket lists for the gates: the signed manifest files the hub holds and
//! serves in chunks.
//!
//! Until the cloud API feeds the hub, the files come from a folder (`[replica]
//! folder`), re-read every few seconds: drop a newer snapshot or delta there
//! and every gate is offered it. The hub reads only each file's header (venue,
//! version, base) and hashes it; it does not need the issuer's keyring, because
//! each gate checks the signature before applying anything. Which file a gate
//! gets is [`Library::offer_for`]: the furthest-reaching delta from exactly its
//! version if there is one, else the newest snapshot. Files are told apart by
//! their SHA-256 (a snapshot and a delta may share a version).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use schema::manifest::{ManifestDoors, ManifestHeader};
use schema::sync::{MANIFEST_CHUNK, ManifestOffer};

/// One file the hub holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Where it is.
    pub path: PathBuf,
    /// What the gate is told.
    pub offer: ManifestOffer,
    /// The file's modification time when read: unchanged files are not read again.
    pub modified: Option<std::time::SystemTime>,
    /// Its lists and layout, unverified: what the dashboard shows.
    pub doors: Option<Arc<ManifestDoors>>,
}

/// The manifests of this venue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Library {
    /// By (version, delta or not, base): the newest last; at one version the delta after the snapshot.
    files: Vec<Held>,
}

impl Library {
    /// Reads the headers of every `*.txm` file in `folder` that belongs to
    /// `venue`; other files are skipped with a warning. A missing folder is empty.
    pub fn scan(folder: &Path, venue: u32) -> Self {
        Self::default().rescan(folder, venue)
    }

    /// Like [`Library::scan`], reusing what `self` read of files unchanged since
    /// (same path, size and modification time).
    pub fn rescan(&self, folder: &Path, venue: u32) -> Self {
        let mut library = Self::default();
        let Ok(entries) = std::fs::read_dir(folder) else { return library };
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_none_or(|ext| ext != "txm") {
                continue;
            }
            let metadata = std::fs::metadata(&path).ok();
            let modified = metadata.as_ref().and_then(|m| m.modified().ok());
            let len = metadata.map(|m| m.len());
            let known =
                self.files.iter().find(|h| h.path == path && h.modified == modified && Some(h.offer.len) == len);
            if let Some(held) = known {
                library.files.push(held.clone());
                continue;
            }
            match read_header(&path) {
                Ok((header, offer, doors)) if header.venue_id == u64::from(venue) => {
                    tracing::info!(path = %path.display(), version = offer.version, "manifest to serve");
                    library.files.push(Held { path, offer, modified, doors: doors.map(Arc::new) });
                }
                Ok((header, _, _)) => {
                    tracing::warn!(path = %path.display(), venue = header.venue_id, "manifest of another venue: skipped")
                }
                Err(why) => tracing::warn!(path = %path.display(), %why, "not a manifest: skipped"),
            }
        }
        library.files.sort_by_key(|h| (h.offer.version, h.offer.base_version.is_some(), h.offer.base_version));
        library
    }

    /// The newest file held (at one version, a delta: gates on its base take
    /// it, the others ask and are offered a snapshot).
    pub fn newest(&self) -> Option<&Held> {
        self.files.last()
    }

    /// The venue's lists and layout as the newest file states them (deltas
    /// carry them whole too).
    pub fn doors(&self) -> Option<Arc<ManifestDoors>> {
        self.newest().and_then(|h| h.doors.clone())
    }

    /// What to send a gate holding `version` (0: nothing): the delta from
    /// exactly that version that reaches furthest, else the newest snapshot, if
    /// newer than what it has. Pure.
    pub fn offer_for(&self, version: u64) -> Option<ManifestOffer> {
        let newer = || self.files.iter().rev().filter(|h| h.offer.version > version);
        let delta = newer().find(|h| h.offer.base_version == Some(version));
        let snapshot = newer().find(|h| h.offer.base_version.is_none());
        delta.or(snapshot).map(|h| h.offer)
    }

    /// Up to [`MANIFEST_CHUNK`] bytes of the file with this SHA-256 from
    /// `offset`; empty past the end or for a file no longer held.
    pub fn chunk(&self, sha256: &[u8; 32], offset: u64) -> std::io::Result<Vec<u8>> {
        let Some(held) = self.files.iter().find(|h| h.offer.sha256 == *sha256) else { return Ok(Vec::new()) };
        if offset >= held.offer.len {
            return Ok(Vec::new());
        }
        let mut file = std::fs::File::open(&held.path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(MANIFEST_CHUNK);
        file.take(MANIFEST_CHUNK as u64).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// Header, offer and doors of one file (reads it whole, for the hash).
fn read_header(path: &Path) -> Result<(ManifestHeader, ManifestOffer, Option<ManifestDoors>), String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let header = ManifestHeader::peek(&bytes).ok_or("no manifest header")?;
    let offer = ManifestOffer {
        version: header.version,
        base_version: header.base_version,
        len: bytes.len() as u64,
        sha256: Sha256::digest(&bytes).into(),
    };
    Ok((header, offer, ManifestDoors::peek(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(version: u64, base_version: Option<u64>) -> Held {
        let sha = (version * 10 + base_version.map_or(0, |b| b + 1)) as u8;
        let offer = ManifestOffer { version, base_version, len: 10, sha256: [sha; 32] };
        Held { path: PathBuf::from(format!("{version}-{base_version:?}.txm")), offer, modified: None, doors: None }
    }

    #[test]
    fn a_gate_gets_the_delta_from_its_version_or_else_the_newest_snapshot() {
        let library = Library { files: vec![held(1, None), held(2, Some(1)), held(3, None), held(4, Some(3))] };
        // Exactly on the delta's base: the delta.
        assert_eq!(library.offer_for(3).map(|o| o.version), Some(4));
        assert_eq!(library.offer_for(3).and_then(|o| o.base_version), Some(3));
        // Anywhere else behind: the newest snapshot (3), then the delta on its next Hello.
        assert_eq!(library.offer_for(0).map(|o| (o.version, o.base_version)), Some((3, None)));
        assert_eq!(library.offer_for(2).map(|o| (o.version, o.base_version)), Some((3, None)));
        // Up to date, or ahead: nothing.
        assert_eq!(library.offer_for(4), None);
        assert_eq!(library.offer_for(9), None);
        assert_eq!(Library::default().offer_for(0), None);

        // What an issuer usually leaves: a snapshot and a delta of the same
        // version, and a chain of deltas. Both files of version 3 are kept.
        let mut files = vec![held(1, None), held(3, Some(2)), held(2, Some(1)), held(3, None)];
        files.sort_by_key(|h| (h.offer.version, h.offer.base_version.is_some(), h.offer.base_version));
        let library = Library { files };
        let offer = |v| library.offer_for(v).map(|o| (o.version, o.base_version));
        assert_eq!(offer(2), Some((3, Some(2))), "on the delta's base: the delta");
        assert_eq!(offer(1), Some((2, Some(1))), "one step of the chain, then the next");
        assert_eq!(offer(0), Some((3, None)), "no delta fits: the newest snapshot");
        assert_eq!(library.newest().map(|h| h.offer.base_version), Some(Some(2)));
    }

    #[test]
    fn files_are_read_by_header_and_served_in_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = schema::TicketSigner::from_secret_bytes(&[7; 32]);
        let manifest = schema::manifest::Manifest {
            venue_id: 5,
            version: 2,
            base_version: None,
            issued_at: 0,
            ticket_types: vec![],
            lists: vec![],
            layout: schema::manifest::VenueLayout::default(),
            tickets: (0..5_000)
                .map(|id| schema::manifest::TicketRecord {
                    ticket_id: id,
                    event_id: 1,
                    ticket_type_id: 1,
                    status: schema::entry::TicketStatus::Valid,
                    sealed_holder: Some(vec![0xAB; 20]),
                })
                .collect(),
        };
        let bytes = manifest.sign(&signer);
        std::fs::write(dir.path().join("v2.txm"), &bytes).expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"not a manifest").expect("write");
        std::fs::write(dir.path().join("junk.txm"), b"TXM3 but nothing else").expect("write");
        let other = schema::manifest::Manifest { venue_id: 6, version: 9, ..manifest };
        std::fs::write(dir.path().join("other.txm"), other.sign(&signer)).expect("write");

        let library = Library::scan(dir.path(), 5);
        let offer = library.offer_for(0).expect("the snapshot is offered");
        assert_eq!((offer.version, offer.len), (2, bytes.len() as u64));
        assert_eq!(library.doors().map(|d| d.version), Some(2), "the dashboard reads the newest doors");
        assert!(bytes.len() > 2 * MANIFEST_CHUNK, "several chunks");
        let mut copy = Vec::new();
        loop {
            let chunk = library.chunk(&offer.sha256, copy.len() as u64).expect("read");
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= MANIFEST_CHUNK);
            copy.extend(chunk);
        }
        assert_eq!(copy, bytes);
        assert!(library.chunk(&[7; 32], 0).expect("read").is_empty(), "a file not held gives nothing");
    }
}
