//! Signing keys on disk: a PKCS#8 PEM private key (mode 0600) and the public
//! keyring JSON beside it.
//!
//! A private key file that group or others can read is refused, as OpenSSH does:
//! whoever reads it can mint tickets.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use schema::{KeyError, Keyring, TicketSigner, TrustedKey, UnixSeconds};

/// File name of the private key inside a key directory.
pub const SIGNING_KEY_FILE: &str = "signing-key.pem";
/// File name of the public keyring inside a key directory.
pub const KEYRING_FILE: &str = "keyring.json";

/// What can go wrong with key files.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The private key file is readable by group or others.
    #[error("{path}: private key is readable by group or others (mode {mode:o}); run `chmod 600` on it")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key directory already holds a signing key.
    #[error("{0}: a signing key already exists; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    /// Key material or keyring content is invalid.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// The problem.
        source: KeyError,
    },
    /// No randomness from the operating system.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeystoreError + '_ {
    move |source| KeystoreError::Io { path: path.to_owned(), source }
}

/// Creates a fresh signing key in `dir` and adds its public key to the
/// directory's keyring (created if absent). Returns the new signer.
pub fn generate(dir: &Path, valid_from: UnixSeconds) -> Result<TicketSigner, KeystoreError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let key_path = dir.join(SIGNING_KEY_FILE);
    if key_path.exists() {
        return Err(KeystoreError::AlreadyExists(key_path));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| KeystoreError::Random(e.to_string()))?;
    let signer = TicketSigner::from_secret_bytes(&secret);
    secret.fill(0);

    let ring_path = dir.join(KEYRING_FILE);
    let mut ring = if ring_path.exists() { read_keyring(&ring_path)? } else { Keyring::default() };
    ring.add(TrustedKey { key_id: signer.key_id(), key: signer.verifying_key(), valid_from, valid_until: None });

    let pem = signer.to_pkcs8_pem().map_err(|source| KeystoreError::Key { path: key_path.clone(), source })?;
    write_private(&key_path, pem.as_bytes())?;
    write_keyring(&ring_path, &ring)?;
    Ok(signer)
}

/// Reads a private key, refusing files that group or others may read.
pub fn read_signer(path: &Path) -> Result<TicketSigner, KeystoreError> {
    let mode = fs::metadata(path).map_err(io_error(path))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeystoreError::InsecurePermissions { path: path.to_owned(), mode: mode & 0o777 });
    }
    let pem = fs::read_to_string(path).map_err(io_error(path))?;
    TicketSigner::from_pkcs8_pem(&pem).map_err(|source| KeystoreError::Key { path: path.to_owned(), source })
}

/// Reads and checks a keyring file.
pub fn read_keyring(path: &Path) -> Result<Keyring, KeystoreError> {
    let json = fs::read_to_string(path).map_err(io_error(path))?;
    Keyring::from_json(&json).map_err(|source| KeystoreError::Key { path: path.to_owned(), source })
}

/// Replaces a keyring file atomically.
pub fn write_keyring(path: &Path, ring: &Keyring) -> Result<(), KeystoreError> {
    write_atomically(path, ring.to_json().as_bytes())
}

/// Creates `path` with mode 0600 from the start (never briefly world-readable).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io_error(path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_error(path))
}

/// Writes via a temporary file and rename, so a crash leaves the old or the new file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    let tmp = path.with_extension("json.tmp");
    let mut file = fs::File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_error(&tmp))?;
    fs::rename(&tmp, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_private_and_listed_in_the_keyring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = generate(dir.path(), 0).expect("generate");
        let key_path = dir.path().join(SIGNING_KEY_FILE);
        let mode = fs::metadata(&key_path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_signer(&key_path).expect("read").key_id(), signer.key_id());
        let ring = read_keyring(&dir.path().join(KEYRING_FILE)).expect("ring");
        assert_eq!(ring.keys().len(), 1);
        assert!(matches!(generate(dir.path(), 0), Err(KeystoreError::AlreadyExists(_))));
    }

    #[test]
    fn a_readable_private_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate(dir.path(), 0).expect("generate");
        let key_path = dir.path().join(SIGNING_KEY_FILE);
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(matches!(read_signer(&key_path), Err(KeystoreError::InsecurePermissions { mode: 0o640, .. })));
    }

    #[test]
    fn a_second_key_joins_the_existing_keyring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = generate(dir.path(), 0).expect("generate");
        fs::rename(dir.path().join(SIGNING_KEY_FILE), dir.path().join("old.pem")).expect("move old key");
        let second = generate(dir.path(), 10).expect("rotate");
        let ring = read_keyring(&dir.path().join(KEYRING_FILE)).expect("ring");
        let ids: Vec<_> = ring.keys().iter().map(|k| k.key_id).collect();
        assert_eq!(ids, vec![first.key_id(), second.key_id()]);
    }
}
