//! Enrolment: what a gate needs to talk to this hub, and the hub's own key.
//!
//! `sync-hub enroll-gate` makes a key pair for the gate, registers its public
//! half in `hub.db`, and writes the gate's folder: `gate-key.pem` (0600),
//! `enrolment.json` (venue, gate id, the hub's public key, the broker and QUIC
//! addresses, the MQTT password; 0600), and for QUIC a client certificate from
//! the venue CA (`gate-cert.pem`, `gate-tls-key.pem` 0600) with the CA's own
//! certificate (`venue-ca.pem`). Private keys never stay on the hub; it keeps
//! the public key, the password's hash and the certificate's fingerprint.

use std::io::Write;
use std::path::{Path, PathBuf};

use schema::sync::{
    ENROLMENT_FILE, Enrolment, GATE_CERT_FILE, GATE_KEY_FILE, GATE_TLS_KEY_FILE, NodeKey, VENUE_CA_FILE,
};

use crate::ca::{VenueCa, fingerprint};

use crate::config::HubConfig;
use crate::store::{GateCredentials, HubStore, StoreError};

/// File name of the hub's signing key in its state folder.
pub const HUB_KEY_FILE: &str = "hub-key.pem";
/// File name of the hub's database in its state folder.
pub const HUB_DB_FILE: &str = "hub.db";

/// Why enrolment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Invalid key file or gate id.
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EnrollError + '_ {
    move |source| EnrollError::Io { path: path.to_owned(), source }
}

/// Writes a new file readable by its owner only; never overwrites.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), EnrollError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(io(path))
}

/// Writes a new public file (a certificate); never overwrites.
fn write_public(path: &Path, contents: &[u8]) -> Result<(), EnrollError> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(io(path))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(io(path))
}

/// A fresh password: 32 random bytes, hex.
pub fn random_secret() -> Result<String, EnrollError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| EnrollError::Invalid(format!("no randomness: {e}")))?;
    Ok(data_encoding::HEXLOWER.encode(&secret))
}

/// What the hub keeps of a password.
pub fn secret_hash(password: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(password.as_bytes()).into()
}

fn new_key() -> Result<NodeKey, EnrollError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| EnrollError::Invalid(format!("no randomness: {e}")))?;
    Ok(NodeKey::from_secret_bytes(&secret))
}

/// The hub's key, created on first use.
pub fn hub_key(config: &HubConfig) -> Result<NodeKey, EnrollError> {
    std::fs::create_dir_all(&config.state_dir).map_err(io(&config.state_dir))?;
    let path = config.state_dir.join(HUB_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(pem) => NodeKey::from_pkcs8_pem(&pem).map_err(|e| EnrollError::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = new_key()?;
            let pem = key.to_pkcs8_pem().map_err(|e| EnrollError::Invalid(e.to_string()))?;
            write_private(&path, pem.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(io(&path)(e)),
    }
}

/// Opens the hub's database in its state folder.
pub fn open_store(config: &HubConfig) -> Result<HubStore, EnrollError> {
    std::fs::create_dir_all(&config.state_dir).map_err(io(&config.state_dir))?;
    Ok(HubStore::open(&config.state_dir.join(HUB_DB_FILE))?)
}

/// Enrols `gate_id` and writes its folder `out`.
pub fn enroll_gate(config: &HubConfig, gate_id: &str, out: &Path, now_ms: u64) -> Result<Enrolment, EnrollError> {
    if !schema::sync::valid_node_id(gate_id) || gate_id == schema::sync::HUB_ID {
        return Err(EnrollError::Invalid(format!("{gate_id:?}: a gate id is 1-32 of A-Z a-z 0-9 - _ (not \"hub\")")));
    }
    let hub = hub_key(config)?;
    let key = new_key()?;
    let store = open_store(config)?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let key_path = out.join(GATE_KEY_FILE);
    if key_path.exists() {
        return Err(EnrollError::Invalid(format!("{} exists: enrol into an empty folder", key_path.display())));
    }
    let mqtt_password = random_secret()?;
    let ca = VenueCa::load_or_create(&config.state_dir, config.venue_id)?;
    let cert = ca.issue_gate_cert(gate_id)?;
    let credentials = GateCredentials {
        public_key: key.public(),
        mqtt_secret: secret_hash(&mqtt_password),
        cert_fingerprint: fingerprint(&cert.cert_der),
        broker_hash: crate::broker_files::mosquitto_hash(&mqtt_password, &crate::broker_files::new_salt()?),
    };
    store.enroll(gate_id, &credentials, now_ms)?;
    let (host, port) = config.broker.connect_to();
    let enrolment = Enrolment {
        venue_id: config.venue_id,
        gate_id: gate_id.to_owned(),
        hub_public_key: data_encoding::HEXLOWER.encode(hub.public().as_bytes()),
        mqtt_address: format!("{host}:{port}"),
        mqtt_password,
        quic_address: config.quic.map(|addr| addr.to_string()),
    };
    let pem = key.to_pkcs8_pem().map_err(|e| EnrollError::Invalid(e.to_string()))?;
    write_private(&key_path, pem.as_bytes())?;
    write_private(&out.join(GATE_TLS_KEY_FILE), cert.key_pem.as_bytes())?;
    write_public(&out.join(GATE_CERT_FILE), cert.cert_pem.as_bytes())?;
    write_public(&out.join(VENUE_CA_FILE), ca.cert_pem().as_bytes())?;
    let json = serde_json::to_string_pretty(&enrolment).map_err(|e| EnrollError::Invalid(e.to_string()))?;
    // It holds the MQTT password: private, like the key.
    write_private(&out.join(ENROLMENT_FILE), (json + "\n").as_bytes())?;
    Ok(enrolment)
}
