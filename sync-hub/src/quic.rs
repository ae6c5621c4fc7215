//! The QUIC side of the hub: gates connect straight to it, no broker between.
//!
//! Mutual TLS 1.3 from the venue CA ([`crate::ca`]): the hub presents a
//! certificate the CA issued at start-up, a gate presents the one it got at
//! enrolment, and the hub maps that certificate's fingerprint to an enrolled,
//! unrevoked gate — or closes the connection. Each connection carries one
//! bidirectional stream of length-prefixed frames ([`schema::sync::quic`]);
//! frames go to the core exactly like MQTT ones, with the certificate's gate as
//! the one the transport vouches for. Keepalives every 2 s; a connection silent
//! for 7 s is dead — unless the hub restarted: its reset keys survive restarts,
//! so it resets the old connections at their next keepalive. 0-RTT is off: a
//! gate's first frame waits for the handshake, so nothing it sends can be replayed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use schema::sync::quic::{ALPN, IDLE_TIMEOUT, KEEP_ALIVE, announced_length, framed};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ca::{VenueCa, fingerprint};
use crate::core::{Inbound, Outbound};
use crate::status::{Status, Transport};
use crate::store::HubStore;

/// How often a connected gate's enrolment is checked again (revocation).
const RECHECK: Duration = Duration::from_secs(2);

/// Application error codes the hub closes connections with.
mod close {
    pub const STOPPING: u32 = 0;
    pub const NOT_ENROLLED: u32 = 1;
    pub const BAD_FRAME: u32 = 2;
    pub const REPLACED: u32 = 3;
}

/// Why the QUIC listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// TLS configuration (certificates, keys).
    #[error("QUIC TLS setup: {0}")]
    Tls(String),
    /// The UDP port is taken or not ours.
    #[error("QUIC cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// One connected gate: its connection's id, and its writer's queue.
type Connected = (usize, mpsc::UnboundedSender<Vec<u8>>);

/// Gates connected over QUIC, and how to reach each.
#[derive(Clone, Default)]
pub struct QuicGates {
    inner: Arc<Mutex<HashMap<String, Connected>>>,
}

impl QuicGates {
    /// Delivers what is for QUIC gates; returns what is left for MQTT (a frame
    /// for a gate not connected here, or every broadcast, since MQTT gates need it too).
    pub fn route(&self, out: Outbound) -> Option<Outbound> {
        let Ok(gates) = self.inner.lock() else { return Some(out) };
        match out {
            Outbound::To { gate, frame } => match gates.get(&gate) {
                Some((_, tx)) => tx.send(frame).err().map(|e| Outbound::To { gate, frame: e.0 }),
                None => Some(Outbound::To { gate, frame }),
            },
            Outbound::All(frame) => {
                for (_, tx) in gates.values() {
                    let _ = tx.send(frame.clone());
                }
                Some(Outbound::All(frame))
            }
        }
    }

    /// Registers a connection of `gate`; an older one is closed by its task.
    fn register(&self, gate: &str, connection: usize, tx: mpsc::UnboundedSender<Vec<u8>>) {
        if let Ok(mut gates) = self.inner.lock() {
            gates.insert(gate.to_owned(), (connection, tx));
        }
    }

    fn unregister(&self, gate: &str, connection: usize) {
        if let Ok(mut gates) = self.inner.lock()
            && gates.get(gate).is_some_and(|(id, _)| *id == connection)
        {
            gates.remove(gate);
        }
    }

    fn is_current(&self, gate: &str, connection: usize) -> bool {
        self.inner.lock().is_ok_and(|gates| gates.get(gate).is_some_and(|(id, _)| *id == connection))
    }
}

/// Transport settings both ends use: keepalive, idle timeout, one stream.
pub fn transport_config() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    transport.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.max_concurrent_bidi_streams(1u32.into());
    transport
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The hub's server configuration: its certificate from `ca`, client
/// certificates required and checked against `ca`.
pub fn server_config(ca: &VenueCa) -> Result<quinn::ServerConfig, QuicError> {
    let tls_err = |e: &dyn std::fmt::Display| QuicError::Tls(e.to_string());
    let hub = ca.issue_hub_cert().map_err(|e| tls_err(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).map_err(|e| tls_err(&e))?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| tls_err(&e))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![hub.cert_der], hub.key_der)
        .map_err(|e| tls_err(&e))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| tls_err(&e))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport_config()));
    Ok(server)
}

/// Binds the QUIC listener. Its stateless-reset and connection-id keys come from
/// the venue CA, so
/// after a restart (even a crash) the packets of gates still talking to the old
/// hub are answered with a reset they accept: they reconnect within a keepalive
/// instead of waiting out the idle timeout.
pub fn listen(addr: SocketAddr, ca: &VenueCa) -> Result<quinn::Endpoint, QuicError> {
    let listen_err = |source| QuicError::Listen { addr, source };
    let socket = std::net::UdpSocket::bind(addr).map_err(listen_err)?;
    let secret = ca.reset_secret();
    let mut config = quinn::EndpointConfig::new(Arc::new(ResetKey(secret)));
    // Connection ids carry a hash under a key; with a key drawn at each start, a
    // restarted hub would drop the old connections' packets as invalid ids
    // instead of resetting them.
    let cid_key = u64::from_le_bytes(secret[..8].try_into().unwrap_or_default());
    config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
    let runtime = quinn::default_runtime().ok_or_else(|| listen_err(std::io::Error::other("no async runtime")))?;
    quinn::Endpoint::new(config, Some(server_config(ca)?), socket, runtime).map_err(listen_err)
}

/// HMAC-SHA256 under the hub's stateless-reset secret.
struct ResetKey([u8; 32]);

impl ResetKey {
    fn mac(&self, data: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        use hmac::{KeyInit, Mac};
        // Any key length is valid for HMAC.
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(data);
        mac
    }
}

impl quinn::crypto::HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        use hmac::Mac;
        let tag = self.mac(data).finalize().into_bytes();
        for (out, byte) in signature_out.iter_mut().zip(tag) {
            *out = byte;
        }
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        use hmac::Mac;
        self.mac(data).verify_slice(signature).map_err(|_| quinn::crypto::CryptoError)
    }
}

/// Accepts gates until `shutdown`; their frames go to `inbound`.
pub async fn serve(
    endpoint: quinn::Endpoint,
    db: PathBuf,
    gates: QuicGates,
    inbound: mpsc::Sender<Inbound>,
    status: Status,
    shutdown: CancellationToken,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let incoming = tokio::select! {
            () = shutdown.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else { break };
        let gate_link =
            GateLink { db: db.clone(), gates: gates.clone(), inbound: inbound.clone(), status: status.clone() };
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let remote = incoming.remote_address();
            if let Err(e) = gate_link.serve(incoming, shutdown).await {
                tracing::debug!(%remote, error = %e, "QUIC connection ended");
            }
        });
        // Reap finished connections so the set does not grow with reconnects.
        while connections.try_join_next().is_some() {}
    }
    endpoint.close(close::STOPPING.into(), b"hub stopping");
    connections.shutdown().await;
    endpoint.wait_idle().await;
}

/// Why one connection ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Read(#[from] quinn::ReadExactError),
    #[error("no client certificate")]
    NoCertificate,
    #[error("certificate of no enrolled gate")]
    NotEnrolled,
    #[error("frame of {0} bytes announced; refused")]
    Oversized(u32),
    #[error("the hub is stopping")]
    Stopping,
}

/// What one gate connection needs.
struct GateLink {
    db: PathBuf,
    gates: QuicGates,
    inbound: mpsc::Sender<Inbound>,
    status: Status,
}

impl GateLink {
    /// The enrolled gate holding `cert`, read from `hub.db` off the async
    /// threads; `Err` when the store could not say.
    async fn gate_of(&self, cert: [u8; 32]) -> Result<Option<String>, ()> {
        let db = self.db.clone();
        let found = tokio::task::spawn_blocking(move || HubStore::open(&db).and_then(|s| s.gate_of_cert(&cert))).await;
        match found {
            Ok(Ok(gate)) => Ok(gate),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read enrolled gates");
                Err(())
            }
            Err(_) => Err(()),
        }
    }

    async fn serve(self, incoming: quinn::Incoming, shutdown: CancellationToken) -> Result<(), LinkError> {
        let remote = incoming.remote_address();
        let connection = incoming.await?;
        let cert = connection
            .peer_identity()
            .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
            .and_then(|chain| chain.first().map(|cert| fingerprint(cert)))
            .ok_or(LinkError::NoCertificate)?;
        let Ok(Some(gate)) = self.gate_of(cert).await else {
            tracing::warn!(%remote, "QUIC connection refused: certificate of no enrolled gate (unknown or revoked)");
            self.status.refused("unknown gate certificate");
            connection.close(close::NOT_ENROLLED.into(), b"not enrolled");
            return Err(LinkError::NotEnrolled);
        };
        let (send, mut recv) = tokio::select! {
            () = shutdown.cancelled() => return Err(LinkError::Stopping),
            stream = connection.accept_bi() => stream?,
        };
        let id = connection.stable_id();
        let (tx, rx) = mpsc::unbounded_channel();
        self.gates.register(&gate, id, tx);
        tracing::info!(%gate, %remote, "gate connected over QUIC");
        let writer = tokio::spawn(write_frames(send, rx));
        // Whichever ends first ends the connection; reading is abandoned only as
        // a whole, never half-way through a frame it would then misread.
        let result = tokio::select! {
            read = self.read_frames(&gate, &mut recv) => read,
            watched = self.watch(&gate, id, cert) => watched,
            () = shutdown.cancelled() => Err(LinkError::Stopping),
        };
        self.gates.unregister(&gate, id);
        writer.abort();
        let code = match &result {
            Err(LinkError::Oversized(_)) => close::BAD_FRAME,
            Err(LinkError::NotEnrolled) => close::NOT_ENROLLED,
            Ok(()) => close::REPLACED,
            _ => close::STOPPING,
        };
        connection.close(code.into(), b"");
        result
    }

    /// Reads frames into the core until the stream ends or a frame is refused.
    async fn read_frames(&self, gate: &str, recv: &mut quinn::RecvStream) -> Result<(), LinkError> {
        loop {
            let mut prefix = [0u8; 4];
            recv.read_exact(&mut prefix).await?;
            let Some(len) = announced_length(prefix) else {
                let len = u32::from_be_bytes(prefix);
                tracing::warn!(gate, len, "oversized frame announced over QUIC: connection closed");
                self.status.refused("oversized frame");
                return Err(LinkError::Oversized(len));
            };
            let mut bytes = vec![0u8; len];
            recv.read_exact(&mut bytes).await?;
            let frame = Inbound { transport: Transport::Quic, claimed_gate: Some(gate.to_owned()), bytes };
            if self.inbound.send(frame).await.is_err() {
                return Err(LinkError::Stopping);
            }
        }
    }

    /// Returns once this connection should end: the gate was revoked, or it
    /// connected again and this connection is stale.
    async fn watch(&self, gate: &str, id: usize, cert: [u8; 32]) -> Result<(), LinkError> {
        loop {
            tokio::time::sleep(RECHECK).await;
            if !self.gates.is_current(gate, id) {
                return Ok(());
            }
            // Only a definite answer closes a working connection; a busy store does not.
            if matches!(self.gate_of(cert).await, Ok(found) if found.as_deref() != Some(gate)) {
                tracing::warn!(gate, "gate revoked: closing its QUIC connection");
                return Err(LinkError::NotEnrolled);
            }
        }
    }
}

/// Writes queued frames to a gate, each behind its length.
async fn write_frames(mut send: quinn::SendStream, mut frames: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = frames.recv().await {
        if send.write_all(&framed(&frame)).await.is_err() {
            return;
        }
    }
}
