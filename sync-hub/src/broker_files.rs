//! Files for an external Mosquitto: who may log in, and who may use which topic.
//!
//! The embedded broker asks the hub at every connection (`mqtt::Credentials`).
//! Mosquitto cannot, so `sync-hub broker-files` writes what it reads instead:
//! a `password_file` with every enrolled, unrevoked gate and the hub, and an
//! `acl_file` that lets a gate publish only on its own `up` topic and read only
//! its own `down` topic and the venue's broadcast. The hub's own checks (signed
//! frames, signer = topic's gate) stay in force behind it.
//!
//! Passwords are stored in Mosquitto's `$6$` form: SHA-512 of password and a
//! random salt. The hub keeps only that and a SHA-256, never the password;
//! so the line is made at enrolment, when the password exists.

use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use sha2::{Digest, Sha512};

use crate::enroll::{EnrollError, io, random_secret, write_private};

/// The hub's own password at the external broker, in its state folder (0600).
pub const HUB_PASSWORD_FILE: &str = "broker-hub-password";
/// File names written by [`write`](fn@write).
pub const PASSWORD_FILE: &str = "passwd";
/// See [`PASSWORD_FILE`].
pub const ACL_FILE: &str = "acl";

/// A password as a Mosquitto `password_file` stores it: `$6$` salt `$` hash.
pub fn mosquitto_hash(password: &str, salt: &[u8; 12]) -> String {
    let mut digest = Sha512::new();
    digest.update(password.as_bytes());
    digest.update(salt);
    format!("$6${}${}", BASE64.encode(salt), BASE64.encode(&digest.finalize()))
}

/// A fresh salt.
pub fn new_salt() -> Result<[u8; 12], EnrollError> {
    let mut salt = [0u8; 12];
    getrandom::fill(&mut salt).map_err(|e| EnrollError::Invalid(format!("no randomness: {e}")))?;
    Ok(salt)
}

/// The hub's password at the external broker, created on first use.
pub fn hub_password(state_dir: &Path) -> Result<String, EnrollError> {
    let path = state_dir.join(HUB_PASSWORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(password) => Ok(password.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(state_dir).map_err(io(state_dir))?;
            let password = random_secret()?;
            write_private(&path, password.as_bytes())?;
            Ok(password)
        }
        Err(e) => Err(io(&path)(e)),
    }
}

/// The ACL for `venue`: the hub reads every gate's `up` and writes every
/// `down` and the broadcast; each gate only its own. Pure.
pub fn acl(venue: u32, gates: &[String]) -> String {
    use schema::sync::{HUB_ID, topics};
    let mut acl = format!(
        "# tixgate venue {venue}: written by `sync-hub broker-files`; regenerate after enrolling or revoking.\n\
         user {HUB_ID}\ntopic read {}\ntopic write tixgate/{venue}/down/+\ntopic write {}\n",
        topics::up_filter(venue),
        topics::broadcast(venue),
    );
    for gate in gates {
        acl.push_str(&format!(
            "\nuser {gate}\ntopic write {}\ntopic read {}\ntopic read {}\n",
            topics::up(venue, gate),
            topics::down(venue, gate),
            topics::broadcast(venue)
        ));
    }
    acl
}

/// Writes `passwd` (0600) and `acl` into `out` from `hub.db`'s enrolled,
/// unrevoked gates and the hub's password; returns their paths.
pub fn write(config: &crate::config::HubConfig, out: &Path) -> Result<(PathBuf, PathBuf), EnrollError> {
    let store = crate::enroll::open_store(config)?;
    let logins = store.broker_logins()?;
    let hub = mosquitto_hash(&hub_password(&config.state_dir)?, &new_salt()?);
    let mut passwd = format!("{}:{hub}\n", schema::sync::HUB_ID);
    for (gate, hash) in &logins {
        passwd.push_str(&format!("{gate}:{hash}\n"));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let (passwd_path, acl_path) = (out.join(PASSWORD_FILE), out.join(ACL_FILE));
    for path in [&passwd_path, &acl_path] {
        let _ = std::fs::remove_file(path);
    }
    write_private(&passwd_path, passwd.as_bytes())?;
    let gates: Vec<String> = logins.into_iter().map(|(gate, _)| gate).collect();
    write_private(&acl_path, acl(config.venue_id, &gates).as_bytes())?;
    Ok((passwd_path, acl_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_have_mosquittos_layout() {
        let hash = mosquitto_hash("secret", &[1; 12]);
        let parts: Vec<&str> = hash.split('$').collect();
        assert_eq!(parts[..2], ["", "6"]);
        assert_eq!(BASE64.decode(parts[2].as_bytes()).expect("salt"), [1; 12]);
        assert_eq!(BASE64.decode(parts[3].as_bytes()).expect("hash").len(), 64);
        assert_ne!(mosquitto_hash("secret", &[2; 12]), hash, "salted");
    }

    #[test]
    fn a_gate_may_use_its_own_topics_only() {
        let acl = acl(7, &["north-1".into()]);
        assert!(acl.contains("user north-1\ntopic write tixgate/7/up/north-1\ntopic read tixgate/7/down/north-1\n"));
        assert!(acl.contains("user hub\ntopic read tixgate/7/up/+\n"));
        assert!(!acl.contains("topic write tixgate/7/up/+"));
    }
}
