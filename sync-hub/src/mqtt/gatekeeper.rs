//! The embedded broker's front door. Gates connect here; rumqttd listens on a
//! loopback port behind it. rumqttd checks passwords but has no topic rules and
//! no way to end a session from outside, so each gate connection passes through
//! this gatekeeper, which reads what the gate sends with rumqttc's MQTT codec:
//!
//! - the CONNECT must carry an enrolled, unrevoked gate's password and one of its
//!   client ids ([`Credentials::check`]), and a last will, if any, must be one the
//!   gate could publish;
//! - every PUBLISH and SUBSCRIBE must pass [`topics::gate_may`], the rule the
//!   Mosquitto ACL of `sync-hub broker-files` writes too: publish only on the
//!   gate's own `up` topic, never retained; subscribe only to its own `down`
//!   topic and the broadcast, with no wildcards;
//! - the gate's credentials are checked again every [`RECHECK_EVERY`]: a gate
//!   revoked while connected loses its sessions within
//!   [`RECHECK_EVERY`] plus the second the enrolled gates are cached for.
//!
//! A gate that breaks a rule is disconnected (an honest gate never does) and the
//! refusal counted on the dashboard. What the broker sends back is copied
//! unchanged. The CONNECT reaches rumqttd with the password replaced by this
//! run's gatekeeper secret, so a local process that knows a gate's password
//! still cannot go around the gatekeeper to the loopback port.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes;
use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Packet};
use schema::sync::topics::{self, GateAction};
use schema::sync::{HUB_ID, MAX_FRAME};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{BrokerError, Credentials, PACKET_SLACK};
use crate::status::Status;

/// How often a connected gate's credentials are checked again.
pub const RECHECK_EVERY: Duration = Duration::from_millis(500);
/// How long a new connection may take to send its CONNECT.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);
/// The largest packet a gate may send.
const MAX_PACKET: usize = MAX_FRAME + PACKET_SLACK;

/// Why a gate's connection was closed.
#[derive(Debug, thiserror::Error)]
enum Closed {
    #[error("mqtt: connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("mqtt: malformed packet: {0}")]
    Malformed(#[from] mqttbytes::Error),
    #[error("mqtt: no CONNECT within {CONNECT_WITHIN:?}")]
    Silent,
    #[error("mqtt: first packet is not a CONNECT")]
    NotConnect,
    #[error("mqtt login refused: unknown gate, revoked, wrong password or client id")]
    LoginRefused,
    #[error("mqtt: a second CONNECT")]
    SecondConnect,
    #[error("mqtt acl: {0}")]
    Forbidden(String),
    #[error("mqtt: gate revoked while connected")]
    Revoked,
}

/// Listens on `listen` for gates and passes their allowed traffic to the
/// broker at `broker` until `shutdown`.
pub async fn start(
    listen: SocketAddr,
    broker: SocketAddr,
    credentials: Credentials,
    status: Status,
    shutdown: CancellationToken,
) -> Result<(), BrokerError> {
    let listener = TcpListener::bind(listen).await.map_err(|source| BrokerError::Listen { addr: listen, source })?;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, peer)) = accepted else { continue };
            let (credentials, status, shutdown) = (credentials.clone(), status.clone(), shutdown.clone());
            tokio::spawn(async move {
                match serve(stream, broker, &credentials, &shutdown).await {
                    Ok(()) => {}
                    Err(Closed::Io(_)) => {}
                    Err(why) => {
                        tracing::warn!(%peer, error = %why, "gate connection closed by the gatekeeper");
                        status.refused(&why.to_string());
                    }
                }
            });
        }
    });
    Ok(())
}

/// One gate connection, from its CONNECT until either side closes.
async fn serve(
    client: TcpStream,
    broker: SocketAddr,
    credentials: &Credentials,
    shutdown: &CancellationToken,
) -> Result<(), Closed> {
    client.set_nodelay(true)?;
    let (mut from_gate, mut to_gate) = client.into_split();
    let mut buf = BytesMut::with_capacity(4096);
    let first = tokio::time::timeout(CONNECT_WITHIN, next_packet(&mut from_gate, &mut buf)).await;
    let Ok(first) = first else { return Err(Closed::Silent) };
    let Some((_, Packet::Connect(mut connect))) = first? else { return Err(Closed::NotConnect) };
    let Some(login) = connect.login.clone() else { return refuse(&mut to_gate).await };
    let venue = credentials.venue;
    let gate = login.username.clone();
    let will_allowed = connect.last_will.as_ref().is_none_or(|will| {
        topics::gate_may(venue, &gate, GateAction::Publish { topic: &will.topic, retain: will.retain })
    });
    // The hub itself uses the loopback port; here only gates come in.
    if gate == HUB_ID || !will_allowed || !credentials.check(&connect.client_id, &gate, &login.password) {
        return refuse(&mut to_gate).await;
    }
    let upstream = TcpStream::connect(broker).await?;
    upstream.set_nodelay(true)?;
    let (broker_read, mut to_broker) = upstream.into_split();
    connect.set_login(gate.clone(), credentials.gatekeeper_secret());
    let mut encoded = BytesMut::new();
    connect.write(&mut encoded)?;
    to_broker.write_all(&encoded).await?;
    // What the broker sends goes back unchanged.
    let mut down = tokio::spawn(async move {
        let mut broker_read = broker_read;
        tokio::io::copy(&mut broker_read, &mut to_gate).await
    });
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    let result = loop {
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            _ = &mut down => break Ok(()),
            _ = recheck.tick() => {
                if !credentials.check(&connect.client_id, &gate, &login.password) {
                    break Err(Closed::Revoked);
                }
            }
            next = next_packet(&mut from_gate, &mut buf) => match next {
                Ok(Some((raw, packet))) => {
                    if let Err(e) = allowed(venue, &gate, &packet) {
                        break Err(e);
                    }
                    if let Err(e) = to_broker.write_all(&raw).await {
                        break Err(e.into());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
        }
    };
    // Dropping both halves closes both connections; the broker sees the gate go.
    down.abort();
    result
}

/// Whether gate `gate` may send `packet`.
fn allowed(venue: u32, gate: &str, packet: &Packet) -> Result<(), Closed> {
    match packet {
        Packet::Publish(publish) => {
            let action = GateAction::Publish { topic: &publish.topic, retain: publish.retain };
            if topics::gate_may(venue, gate, action) {
                Ok(())
            } else {
                Err(Closed::Forbidden(format!("publish on {:?} (retain {})", publish.topic, publish.retain)))
            }
        }
        Packet::Subscribe(subscribe) => {
            match subscribe.filters.iter().find(|f| !topics::gate_may(venue, gate, GateAction::Subscribe(&f.path))) {
                Some(filter) => Err(Closed::Forbidden(format!("subscribe to {:?}", filter.path))),
                None => Ok(()),
            }
        }
        Packet::Connect(_) => Err(Closed::SecondConnect),
        _ => Ok(()),
    }
}

/// Answers a refused CONNECT as a broker does (return code 5) and closes.
async fn refuse(to_gate: &mut tokio::net::tcp::OwnedWriteHalf) -> Result<(), Closed> {
    let mut encoded = BytesMut::new();
    ConnAck::new(ConnectReturnCode::NotAuthorized, false).write(&mut encoded)?;
    let _ = to_gate.write_all(&encoded).await;
    Err(Closed::LoginRefused)
}

/// The next whole packet from the gate: its bytes as sent, and what they say.
/// `None` when the gate closed the connection between packets.
async fn next_packet(from: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<Option<(Bytes, Packet)>, Closed> {
    loop {
        match mqttbytes::check(buf.iter(), MAX_PACKET) {
            Ok(header) => {
                let raw = buf.split_to(header.frame_length());
                let mut parsed = raw.clone();
                let packet = Packet::read(&mut parsed, MAX_PACKET)?;
                return Ok(Some((raw.freeze(), packet)));
            }
            Err(mqttbytes::Error::InsufficientBytes(_)) => {
                if from.read_buf(buf).await? == 0 {
                    return if buf.is_empty() {
                        Ok(None)
                    } else {
                        Err(Closed::Io(std::io::ErrorKind::UnexpectedEof.into()))
                    };
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::QoS;
    use rumqttc::mqttbytes::v4::{Connect, Publish, Subscribe};

    #[test]
    fn a_gate_s_packets_are_judged_by_the_venue_s_topic_rules() {
        let own = Packet::Publish(Publish::new(topics::up(7, "north-1"), QoS::AtLeastOnce, b"x".to_vec()));
        assert!(allowed(7, "north-1", &own).is_ok());
        let mut retained = Publish::new(topics::up(7, "north-1"), QoS::AtLeastOnce, b"x".to_vec());
        retained.retain = true;
        assert!(matches!(allowed(7, "north-1", &Packet::Publish(retained)), Err(Closed::Forbidden(_))));
        let other = Packet::Publish(Publish::new(topics::down(7, "south-2"), QoS::AtLeastOnce, b"x".to_vec()));
        assert!(matches!(allowed(7, "north-1", &other), Err(Closed::Forbidden(_))));
        let mut subscribe = Subscribe::new(topics::down(7, "north-1"), QoS::AtLeastOnce);
        subscribe.add(topics::broadcast(7), QoS::AtLeastOnce);
        assert!(allowed(7, "north-1", &Packet::Subscribe(subscribe.clone())).is_ok());
        subscribe.add("#".into(), QoS::AtLeastOnce);
        assert!(matches!(allowed(7, "north-1", &Packet::Subscribe(subscribe)), Err(Closed::Forbidden(_))));
        assert!(matches!(allowed(7, "north-1", &Packet::Connect(Connect::new("x"))), Err(Closed::SecondConnect)));
    }
}
