//! Ticket lists for the gates: the signed manifest files the hub holds and
//! serves in chunks.
//!
//! Until the cloud API feeds the hub, the files come from a folder (`[replica]
//! folder`), re-read every few seconds: drop a newer snapshot or delta there
//! and every gate is offered it. The hub reads only each file's header (venue,
//! version, base) and hashes it; it does not need the issuer's keyring, because
//! each gate checks the signature before applying anything. Which file a gate
//! gets is [`Library::offer_for`]: a delta from exactly its version to the
//! newest if there is one, else the newest snapshot.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use schema::manifest::ManifestHeader;
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
}

/// The manifests of this venue, by version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Library {
    files: BTreeMap<u64, Held>,
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
                self.files.values().find(|h| h.path == path && h.modified == modified && Some(h.offer.len) == len);
            if let Some(held) = known {
                library.files.insert(held.offer.version, held.clone());
                continue;
            }
            match read_header(&path) {
                Ok((header, offer)) if header.venue_id == u64::from(venue) => {
                    tracing::info!(path = %path.display(), version = offer.version, "manifest to serve");
                    library.files.insert(offer.version, Held { path, offer, modified });
                }
                Ok((header, _)) => {
                    tracing::warn!(path = %path.display(), venue = header.venue_id, "manifest of another venue: skipped")
                }
                Err(why) => tracing::warn!(path = %path.display(), %why, "not a manifest: skipped"),
            }
        }
        library
    }

    /// The newest version held.
    pub fn newest(&self) -> Option<&Held> {
        self.files.values().next_back()
    }

    /// What to send a gate holding `version` (0: nothing): a delta from exactly
    /// that version to the newest, else the newest snapshot, if newer than what
    /// it has. Pure.
    pub fn offer_for(&self, version: u64) -> Option<ManifestOffer> {
        let newest = self.newest()?.offer.version;
        if newest <= version {
            return None;
        }
        let delta = self.files.get(&newest).filter(|h| h.offer.base_version == Some(version));
        let snapshot = self.files.values().rev().find(|h| h.offer.base_version.is_none() && h.offer.version > version);
        delta.or(snapshot).map(|h| h.offer)
    }

    /// Up to [`MANIFEST_CHUNK`] bytes of version `version` from `offset`; empty
    /// past the end or for a version no longer held.
    pub fn chunk(&self, version: u64, offset: u64) -> std::io::Result<Vec<u8>> {
        let Some(held) = self.files.get(&version) else { return Ok(Vec::new()) };
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

/// Header and offer of one file (reads it whole, for the hash).
fn read_header(path: &Path) -> Result<(ManifestHeader, ManifestOffer), String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let header = ManifestHeader::peek(&bytes).ok_or("no manifest header")?;
    let offer = ManifestOffer {
        version: header.version,
        base_version: header.base_version,
        len: bytes.len() as u64,
        sha256: Sha256::digest(&bytes).into(),
    };
    Ok((header, offer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(version: u64, base_version: Option<u64>) -> (u64, Held) {
        let offer = ManifestOffer { version, base_version, len: 10, sha256: [version as u8; 32] };
        (version, Held { path: PathBuf::from(format!("{version}.txm")), offer, modified: None })
    }

    #[test]
    fn a_gate_gets_the_delta_from_its_version_or_else_the_newest_snapshot() {
        let library = Library { files: [held(1, None), held(2, Some(1)), held(3, None), held(4, Some(3))].into() };
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
        std::fs::write(dir.path().join("junk.txm"), b"TXM1 but nothing else").expect("write");
        let other = schema::manifest::Manifest { venue_id: 6, version: 9, ..manifest };
        std::fs::write(dir.path().join("other.txm"), other.sign(&signer)).expect("write");

        let library = Library::scan(dir.path(), 5);
        let offer = library.offer_for(0).expect("the snapshot is offered");
        assert_eq!((offer.version, offer.len), (2, bytes.len() as u64));
        assert!(bytes.len() > 2 * MANIFEST_CHUNK, "several chunks");
        let mut copy = Vec::new();
        loop {
            let chunk = library.chunk(2, copy.len() as u64).expect("read");
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= MANIFEST_CHUNK);
            copy.extend(chunk);
        }
        assert_eq!(copy, bytes);
        assert!(library.chunk(7, 0).expect("read").is_empty(), "a version not held gives nothing");
    }
}
