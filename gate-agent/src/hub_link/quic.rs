//! The link's QUIC wire: straight to the hub, mutual TLS from the venue CA.
//!
//! The gate trusts the venue CA only and presents the certificate the hub
//! issued at enrolment. One bidirectional stream per connection carries
//! length-prefixed frames ([`schema::sync::quic`]). Keepalive every 2 s, dead
//! after 7 s of silence; a lost connection is retried every 250 ms. 0-RTT is not
//! used: claims must not be replayable, and reconnects on a LAN cost little.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use schema::sync::quic::{ALPN, HUB_SERVER_NAME, IDLE_TIMEOUT, KEEP_ALIVE, announced_length, framed};
use schema::sync::{GATE_CERT_FILE, GATE_TLS_KEY_FILE, VENUE_CA_FILE};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::WireEvent;

/// Wait this long before connecting again.
const RETRY: Duration = Duration::from_millis(250);

/// The gate's TLS and transport settings from its enrolment folder `dir`.
pub fn client_config(dir: &Path) -> Result<quinn::ClientConfig, String> {
    let read_err = |name: &str| {
        let path = dir.join(name);
        move |e: rustls::pki_types::pem::Error| format!("{}: {e}", path.display())
    };
    let ca = CertificateDer::from_pem_file(dir.join(VENUE_CA_FILE)).map_err(read_err(VENUE_CA_FILE))?;
    let cert = CertificateDer::from_pem_file(dir.join(GATE_CERT_FILE)).map_err(read_err(GATE_CERT_FILE))?;
    let key = PrivateKeyDer::from_pem_file(dir.join(GATE_TLS_KEY_FILE)).map_err(read_err(GATE_TLS_KEY_FILE))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).map_err(|e| format!("{VENUE_CA_FILE}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert], key)
        .map_err(|e| format!("{GATE_CERT_FILE}: {e}"))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    transport.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.max_concurrent_bidi_streams(0u32.into());
    client.transport_config(Arc::new(transport));
    Ok(client)
}

/// The connection task and the way to it.
pub struct QuicWire {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    driver: JoinHandle<()>,
}

impl QuicWire {
    /// Connects to the hub at `host:port` (and keeps reconnecting); what
    /// arrives goes to `events`.
    pub fn start(address: (String, u16), client: quinn::ClientConfig, events: mpsc::Sender<WireEvent>) -> Self {
        let (frames, outgoing) = mpsc::unbounded_channel();
        Self { frames, driver: tokio::spawn(drive(address, client, outgoing, events)) }
    }

    /// Queues a frame for the hub; false if the connection task is gone.
    pub fn send(&self, frame: Vec<u8>) -> bool {
        self.frames.send(frame).is_ok()
    }

    /// Ends the connection.
    pub fn stop(self) {
        self.driver.abort();
    }
}

/// Keeps a connection to the hub at `host:port` up until `events` closes:
/// frames from `outgoing` go out, frames and state changes come back on `events`.
async fn drive(
    (host, port): (String, u16),
    client: quinn::ClientConfig,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    events: mpsc::Sender<WireEvent>,
) {
    loop {
        let why = session(&host, port, &client, &mut outgoing, &events).await;
        if events.send(WireEvent::Down(why)).await.is_err() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One connection, from dialling to its end; returns why it ended.
async fn session(
    host: &str,
    port: u16,
    client: &quinn::ClientConfig,
    outgoing: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    events: &mpsc::Sender<WireEvent>,
) -> String {
    let addr = match tokio::net::lookup_host((host, port)).await.map(|mut addrs| addrs.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) => return format!("{host}: no address"),
        Err(e) => return format!("{host}: {e}"),
    };
    let local: SocketAddr =
        if addr.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let mut endpoint = match quinn::Endpoint::client(local) {
        Ok(endpoint) => endpoint,
        Err(e) => return format!("cannot open a UDP socket: {e}"),
    };
    endpoint.set_default_client_config(client.clone());
    let connection = match endpoint.connect(addr, HUB_SERVER_NAME) {
        Ok(connecting) => match connecting.await {
            Ok(connection) => connection,
            Err(e) => return e.to_string(),
        },
        Err(e) => return e.to_string(),
    };
    let (mut send, mut recv) = match connection.open_bi().await {
        Ok(stream) => stream,
        Err(e) => return e.to_string(),
    };
    // Frames queued while there was no connection (claims long decided alone,
    // batches the outbox will send again after the hub's Welcome) are dropped.
    while outgoing.try_recv().is_ok() {}
    if events.send(WireEvent::Up).await.is_err() {
        return "link stopped".into();
    }
    let why = tokio::select! {
        why = read_frames(&mut recv, events) => why,
        why = write_frames(&mut send, outgoing) => why,
    };
    connection.close(0u32.into(), b"");
    why
}

/// Hands frames from the hub to the link until the stream fails; returns why.
async fn read_frames(recv: &mut quinn::RecvStream, events: &mpsc::Sender<WireEvent>) -> String {
    loop {
        let mut prefix = [0u8; 4];
        if let Err(e) = recv.read_exact(&mut prefix).await {
            return e.to_string();
        }
        let Some(len) = announced_length(prefix) else { return "the hub announced an oversized frame".into() };
        let mut frame = vec![0u8; len];
        if let Err(e) = recv.read_exact(&mut frame).await {
            return e.to_string();
        }
        if events.send(WireEvent::Frame(frame)).await.is_err() {
            return "link stopped".into();
        }
    }
}

/// Sends the link's frames, each behind its length, until the stream fails.
async fn write_frames(send: &mut quinn::SendStream, outgoing: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> String {
    while let Some(frame) = outgoing.recv().await {
        if let Err(e) = send.write_all(&framed(&frame)).await {
            return e.to_string();
        }
    }
    "link stopped".into()
}
