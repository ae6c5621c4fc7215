//! The hub's QUIC listener against real QUIC clients: an enrolled gate's frames
//! reach the core as that gate's; a certificate from another CA, a revoked
//! gate's certificate and an oversized frame get the connection closed with
//! nothing handed on; the hub's replies reach the gate's own connection.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use gate_agent::hub_link::quic::client_config;
use schema::sync::quic::framed;
use sync_hub::config::{Broker, HubConfig};
use sync_hub::core::{Inbound, Outbound};
use sync_hub::quic::{QuicGates, listen, serve};
use sync_hub::status::{Status, Transport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

struct Hub {
    addr: SocketAddr,
    config: HubConfig,
    gates: QuicGates,
    inbound: mpsc::Receiver<Inbound>,
    status: Status,
    shutdown: CancellationToken,
}

fn config(dir: &Path, venue: u32) -> HubConfig {
    HubConfig {
        venue_id: venue,
        state_dir: dir.join("hub"),
        broker: Broker::Embedded(([127, 0, 0, 1], 1).into()),
        quic: Some(([127, 0, 0, 1], 0).into()),
        http: ([127, 0, 0, 1], 0).into(),
        http_hosts: Vec::new(),
        manifests: None,
        cloud: None,
    }
}

/// A hub's QUIC side alone, with `gates` enrolled into `dir/<gate>`.
fn start_hub(dir: &Path, enrolled: &[&str]) -> Hub {
    let config = config(dir, 7);
    for gate in enrolled {
        sync_hub::enroll::enroll_gate(&config, gate, &dir.join(gate), 1).expect("enrol");
    }
    let ca = sync_hub::ca::VenueCa::load_or_create(&config.state_dir, config.venue_id).expect("CA");
    let endpoint = listen(([127, 0, 0, 1], 0).into(), &ca).expect("listen");
    let addr = endpoint.local_addr().expect("bound");
    let (tx, inbound) = mpsc::channel(16);
    let (gates, status, shutdown) = (QuicGates::default(), Status::default(), CancellationToken::new());
    let db = config.state_dir.join(sync_hub::enroll::HUB_DB_FILE);
    tokio::spawn(serve(endpoint, db, gates.clone(), tx, status.clone(), shutdown.clone()));
    Hub { addr, config, gates, inbound, status, shutdown }
}

/// Connects with the enrolment folder `dir` and opens the stream.
async fn connect(
    addr: SocketAddr,
    dir: &Path,
) -> Result<(quinn::Endpoint, quinn::Connection, quinn::SendStream, quinn::RecvStream), String> {
    let mut endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(client_config(dir)?);
    let connection = endpoint
        .connect(addr, schema::sync::quic::HUB_SERVER_NAME)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let (send, recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
    Ok((endpoint, connection, send, recv))
}

/// The application close code the hub ended `connection` with.
async fn closed_with(connection: &quinn::Connection) -> Option<u64> {
    match tokio::time::timeout(WAIT, connection.closed()).await.expect("the hub closes the connection") {
        quinn::ConnectionError::ApplicationClosed(close) => Some(close.error_code.into_inner()),
        _ => None,
    }
}

#[tokio::test]
async fn an_enrolled_gate_is_heard_as_itself_and_answered_on_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = start_hub(dir.path(), &["north-1"]);
    let (_endpoint, _connection, mut send, mut recv) = connect(hub.addr, &dir.path().join("north-1")).await.unwrap();
    send.write_all(&framed(b"any bytes: the core judges them")).await.unwrap();
    let frame = tokio::time::timeout(WAIT, hub.inbound.recv()).await.unwrap().unwrap();
    assert_eq!(frame.transport, Transport::Quic);
    assert_eq!(frame.claimed_gate.as_deref(), Some("north-1"), "the certificate says who");
    assert_eq!(frame.bytes, b"any bytes: the core judges them");

    // A reply for this gate goes down its connection, not to MQTT.
    let left = hub.gates.route(Outbound::To { gate: "north-1".into(), frame: b"verdict".to_vec() });
    assert_eq!(left, None);
    let left = hub.gates.route(Outbound::To { gate: "south-2".into(), frame: b"other".to_vec() });
    assert!(matches!(left, Some(Outbound::To { .. })), "a gate not on QUIC is left for MQTT");
    let mut reply = [0u8; 4 + 7];
    tokio::time::timeout(WAIT, recv.read_exact(&mut reply)).await.unwrap().unwrap();
    assert_eq!(&reply[4..], b"verdict");
    hub.shutdown.cancel();
}

#[tokio::test]
async fn a_certificate_from_another_venue_gets_no_connection() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let mut hub = start_hub(ours.path(), &["north-1"]);
    // Same gate id, same layout — but issued by another hub's CA.
    sync_hub::enroll::enroll_gate(&config(theirs.path(), 7), "north-1", &theirs.path().join("north-1"), 1).unwrap();
    let attempt = connect(hub.addr, &theirs.path().join("north-1")).await;
    if let Ok((_endpoint, connection, mut send, _recv)) = attempt {
        // TLS 1.3: the client may finish before the hub rejects its certificate.
        let _ = send.write_all(&framed(b"hello")).await;
        let _ = tokio::time::timeout(WAIT, connection.closed()).await.expect("refused");
    }
    assert!(tokio::time::timeout(Duration::from_millis(300), hub.inbound.recv()).await.is_err(), "nothing handed on");
    hub.shutdown.cancel();
}

#[tokio::test]
async fn a_revoked_gate_is_closed_out_and_an_oversized_frame_ends_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = start_hub(dir.path(), &["north-1", "south-2"]);

    // Revoked before connecting: closed as not enrolled (code 1).
    let store = sync_hub::enroll::open_store(&hub.config).unwrap();
    store.revoke("south-2", 2).unwrap();
    let (_e, connection, mut send, _r) = connect(hub.addr, &dir.path().join("south-2")).await.unwrap();
    let _ = send.write_all(&framed(b"hello")).await;
    assert_eq!(closed_with(&connection).await, Some(1));

    // Connected, then revoked: closed within the recheck (2 s).
    let (_e, connection, mut send, _r) = connect(hub.addr, &dir.path().join("north-1")).await.unwrap();
    send.write_all(&framed(b"first")).await.unwrap();
    assert_eq!(tokio::time::timeout(WAIT, hub.inbound.recv()).await.unwrap().unwrap().bytes, b"first");
    store.revoke("north-1", 3).unwrap();
    assert_eq!(closed_with(&connection).await, Some(1));

    // Re-enrolled, it announces a frame over the limit: closed (code 2), counted.
    let again = dir.path().join("north-1-again");
    sync_hub::enroll::enroll_gate(&hub.config, "north-1", &again, 4).unwrap();
    let (_e, connection, mut send, _r) = connect(hub.addr, &again).await.unwrap();
    send.write_all(&schema::sync::quic::length_prefix(schema::sync::MAX_FRAME + 1)).await.unwrap();
    send.write_all(&[0u8; 1024]).await.unwrap();
    assert_eq!(closed_with(&connection).await, Some(2));
    assert!(hub.inbound.try_recv().is_err(), "nothing handed on");
    assert_eq!(hub.status.snapshot().refused.get("oversized frame"), Some(&1));
    hub.shutdown.cancel();
}
