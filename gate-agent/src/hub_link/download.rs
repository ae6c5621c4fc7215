//! Downloading a manifest the hub offers, in chunks, resumable.
//!
//! Bytes go to `incoming/<version>-<sha prefix>.part` in the gate's state
//! folder, appended as they arrive; the next request asks from the file's
//! length, so a download interrupted by a lost link or a restart continues
//! where it stopped. When the file is complete its SHA-256 must match the
//! offer; then it is renamed `.txm` and handed to the owner, which checks the
//! manifest's signature and applies it like any imported file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use schema::sync::ManifestOffer;

/// Where the download stands after a chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not the chunk asked for (a late duplicate): ignored.
    Stale,
    /// More to fetch, from this offset.
    More(u64),
    /// Complete and checked: the manifest file.
    Done(PathBuf),
}

/// Why a download was given up.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The file cannot be written.
    #[error("{path}: {source}")]
    Io {
        /// The partial file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes do not hash to what was offered; the partial file is deleted.
    #[error("manifest {0} does not match the hub's hash; downloading again")]
    Corrupt(u64),
}

/// One manifest being downloaded.
#[derive(Debug)]
pub struct Download {
    /// What the hub offered.
    pub offer: ManifestOffer,
    path: PathBuf,
    /// Bytes on disk so far.
    pub received: u64,
    /// Bytes already on disk when this download (re)started.
    pub resumed_from: u64,
    /// When the last request went out, while one is outstanding.
    pub asked_at: Option<Instant>,
}

impl Download {
    /// Starts (or resumes) downloading `offer` into `state_dir/incoming`;
    /// partial files of other offers are removed (finished ones are the owner's).
    pub fn start(state_dir: &Path, offer: ManifestOffer) -> Result<Self, DownloadError> {
        let dir = state_dir.join("incoming");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| DownloadError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let sha: String = offer.sha256.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!("{}-{sha}.part", offer.version));
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))?.flatten() {
            if entry.path() != path && entry.path().extension().is_some_and(|ext| ext == "part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let received = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if received > offer.len {
            std::fs::remove_file(&path).map_err(io(&path))?;
            return Self::start(state_dir, offer);
        }
        Ok(Self { offer, path, received, resumed_from: received, asked_at: None })
    }

    /// Appends the chunk that starts at `offset`; any other is a late duplicate
    /// of an earlier request and changes nothing ([`Progress::Stale`]).
    pub fn append(&mut self, offset: u64, bytes: &[u8]) -> Result<Progress, DownloadError> {
        let io = |source| DownloadError::Io { path: self.path.clone(), source };
        if offset != self.received || bytes.is_empty() {
            return Ok(Progress::Stale);
        }
        let take = bytes.len().min(usize::try_from(self.offer.len - self.received).unwrap_or(usize::MAX));
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
        file.write_all(&bytes[..take]).map_err(io)?;
        self.received += take as u64;
        self.asked_at = None;
        if self.received < self.offer.len {
            return Ok(Progress::More(self.received));
        }
        self.finish()
    }

    fn finish(&self) -> Result<Progress, DownloadError> {
        use sha2::{Digest, Sha256};
        let io = |source| DownloadError::Io { path: self.path.clone(), source };
        let bytes = std::fs::read(&self.path).map_err(io)?;
        if <[u8; 32]>::from(Sha256::digest(&bytes)) != self.offer.sha256 {
            let _ = std::fs::remove_file(&self.path);
            return Err(DownloadError::Corrupt(self.offer.version));
        }
        let done = self.path.with_extension("txm");
        std::fs::rename(&self.path, &done).map_err(io)?;
        Ok(Progress::Done(done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(bytes: &[u8]) -> ManifestOffer {
        use sha2::{Digest, Sha256};
        ManifestOffer { version: 3, base_version: None, len: bytes.len() as u64, sha256: Sha256::digest(bytes).into() }
    }

    #[test]
    fn a_download_resumes_from_what_is_on_disk_and_checks_the_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file: Vec<u8> = (0..100u8).collect();
        let mut download = Download::start(dir.path(), offer(&file)).expect("start");
        assert_eq!(download.append(0, &file[..40]).expect("append"), Progress::More(40));
        // A duplicate of an earlier chunk changes nothing.
        assert_eq!(download.append(0, &file[..40]).expect("append"), Progress::Stale);
        drop(download);

        // Restarted: picks up at 40.
        let mut download = Download::start(dir.path(), offer(&file)).expect("resume");
        assert_eq!((download.received, download.resumed_from), (40, 40));
        let Progress::Done(path) = download.append(40, &file[40..]).expect("append") else { panic!("not done") };
        assert_eq!(std::fs::read(path).expect("read"), file);
    }

    #[test]
    fn bytes_that_do_not_match_the_offer_are_thrown_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = vec![1u8; 10];
        let mut download = Download::start(dir.path(), offer(&file)).expect("start");
        assert!(matches!(download.append(0, &[2u8; 10]), Err(DownloadError::Corrupt(3))));
        let again = Download::start(dir.path(), offer(&file)).expect("start");
        assert_eq!(again.received, 0, "the bad bytes are gone");
    }
}
