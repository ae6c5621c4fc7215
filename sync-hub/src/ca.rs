//! The venue CA: the root of trust between gates and the hub over QUIC.
//!
//! Created on first use in the hub's state folder (`venue-ca.pem`, and its key
//! `venue-ca-key.pem`, 0600). It signs the hub's server certificate (made fresh
//! at every start, name [`HUB_SERVER_NAME`]) and each gate's client certificate
//! at enrolment. Both ends trust this CA only, so a certificate from anywhere
//! else — or a gate certificate the hub no longer lists — gets no connection.
//! The hub identifies a gate by the SHA-256 of its certificate, recorded at
//! enrolment: no certificate parsing is needed, and revoking the gate revokes
//! the certificate.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use schema::sync::quic::HUB_SERVER_NAME;

use crate::enroll::{EnrollError, io, write_private};

/// File name of the CA certificate (public; gates get a copy).
pub const CA_CERT_FILE: &str = schema::sync::VENUE_CA_FILE;
/// File name of the CA's private key.
pub const CA_KEY_FILE: &str = "venue-ca-key.pem";

/// The venue CA, loaded.
pub struct VenueCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    /// The QUIC stateless-reset key: derived from the CA key, so the same
    /// at every start of this hub.
    reset_secret: [u8; 32],
}

/// A certificate and its key, as PEM (for files) and DER (for rustls).
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// Its private key, DER.
    pub key_der: PrivateKeyDer<'static>,
}

fn invalid(what: &str) -> impl FnOnce(rcgen::Error) -> EnrollError + '_ {
    move |e| EnrollError::Invalid(format!("{what}: {e}"))
}

/// The CA's own parameters. Rebuilt the same way on every load: a certificate's
/// issuer is matched to the CA by this name.
fn ca_params(venue: u32) -> Result<CertificateParams, EnrollError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(invalid("venue CA"))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "tixgate");
    name.push(DnType::CommonName, format!("tixgate venue {venue} CA"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    // Valid from rcgen's default (1975): a gate whose clock was never set must still connect.
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(params)
}

/// The SHA-256 of a certificate: how the hub knows which gate holds it.
pub fn fingerprint(cert: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(cert).into()
}

impl VenueCa {
    /// Loads the CA from `state_dir`, creating it on first use.
    pub fn load_or_create(state_dir: &Path, venue: u32) -> Result<Self, EnrollError> {
        let cert_path = state_dir.join(CA_CERT_FILE);
        let key_path = state_dir.join(CA_KEY_FILE);
        let params = ca_params(venue)?;
        let (key, cert_pem) = match std::fs::read_to_string(&key_path) {
            Ok(key_pem) => {
                let key = KeyPair::from_pem(&key_pem).map_err(invalid(CA_KEY_FILE))?;
                let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
                (key, cert_pem)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(state_dir).map_err(io(state_dir))?;
                let key = KeyPair::generate().map_err(invalid("venue CA key"))?;
                let cert = params.self_signed(&key).map_err(invalid("venue CA"))?;
                // Certificate first: a crash between the two leaves no key without
                // its certificate (the next start would fail to read it).
                let _ = std::fs::remove_file(&cert_path);
                write_private(&cert_path, cert.pem().as_bytes())?;
                write_private(&key_path, key.serialize_pem().as_bytes())?;
                (key, cert.pem())
            }
            Err(e) => return Err(io(&key_path)(e)),
        };
        let cert_der = pem_certificate(&cert_pem)
            .ok_or_else(|| EnrollError::Invalid(format!("{}: not a PEM certificate", cert_path.display())))?;
        let reset_secret = {
            use sha2::{Digest, Sha256};
            Sha256::new()
                .chain_update(b"tixgate/quic/stateless-reset/v1\0")
                .chain_update(key.serialize_der())
                .finalize()
        };
        Ok(Self { cert_pem, cert_der, issuer: Issuer::new(params, key), reset_secret: reset_secret.into() })
    }

    /// The key QUIC stateless resets are made with: the same at every start, so
    /// a restarted hub can tell gates still holding a connection to the dead
    /// one that it is gone (they reconnect at once instead of after the idle
    /// timeout).
    pub fn reset_secret(&self) -> [u8; 32] {
        self.reset_secret
    }

    /// The CA certificate, PEM (what gates trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// A fresh server certificate for the hub's QUIC listener.
    pub fn issue_hub_cert(&self) -> Result<IssuedCert, EnrollError> {
        self.issue(HUB_SERVER_NAME, Some(HUB_SERVER_NAME), ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for gate `gate_id`. The name is for people reading
    /// it; the hub goes by the certificate's fingerprint.
    pub fn issue_gate_cert(&self, gate_id: &str) -> Result<IssuedCert, EnrollError> {
        self.issue(&format!("tixgate gate {gate_id}"), None, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        common_name: &str,
        dns_name: Option<&str>,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<IssuedCert, EnrollError> {
        let key = KeyPair::generate().map_err(invalid("certificate key"))?;
        let names: Vec<String> = dns_name.into_iter().map(str::to_owned).collect();
        let mut params = CertificateParams::new(names).map_err(invalid(common_name))?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).map_err(invalid(common_name))?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

/// The first certificate in a PEM text.
pub fn pem_certificate(pem: &str) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).ok()
}
