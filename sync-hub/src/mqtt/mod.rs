//! The MQTT side of the hub: the embedded broker (rumqttd on a loopback port,
//! behind the [`gatekeeper`] gates connect to), and the hub's own client (to
//! the embedded broker or an external one such as Mosquitto).
//!
//! The hub subscribes to every gate's `up` topic with QoS 1 and a persistent
//! session, so an external broker keeps what gates sent while the hub restarts.
//! Frames go to the core; what the core sends back is published on the gates'
//! `down` topics (or the broadcast topic), QoS 1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use schema::sync::{HUB_ID, MAX_FRAME, is_client_id_of, topics};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub mod gatekeeper;

use crate::core::{Inbound, Outbound};
use crate::enroll::secret_hash;
use crate::status::Transport;
use crate::store::HubStore;

/// Room for the MQTT header around a frame.
const PACKET_SLACK: usize = 1_024;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address is taken or not ours.
    #[error("embedded MQTT broker cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Who may connect to the embedded broker: enrolled, unrevoked gates with their
/// password and their own client ids (at the gatekeeper), and the hub itself.
#[derive(Clone)]
pub struct Credentials {
    venue: u32,
    db: PathBuf,
    hub_secret: [u8; 32],
    /// What the gatekeeper puts in a gate's CONNECT for rumqttd, this run only.
    gatekeeper_secret: Arc<str>,
    gates: Arc<Mutex<GateSecrets>>,
}

/// Password hashes of enrolled gates, and when they were read.
type GateSecrets = (Option<Instant>, HashMap<String, [u8; 32]>);

/// Re-read the enrolled gates at most this often (enrolments and revocations
/// take effect within it).
const CREDENTIALS_TTL: Duration = Duration::from_secs(1);

impl Credentials {
    /// Credentials from `hub.db` at `db`, plus the hub's own password and the
    /// gatekeeper's secret for this run.
    pub fn new(venue: u32, db: PathBuf, hub_password: &str, gatekeeper_secret: &str) -> Self {
        Self {
            venue,
            db,
            hub_secret: secret_hash(hub_password),
            gatekeeper_secret: gatekeeper_secret.into(),
            gates: Arc::default(),
        }
    }

    /// What the gatekeeper logs a gate in with at rumqttd.
    fn gatekeeper_secret(&self) -> &str {
        &self.gatekeeper_secret
    }

    /// May this client log in at rumqttd's loopback port? The hub with its
    /// password; a gate only through the gatekeeper, which has checked it.
    fn check_behind_gatekeeper(&self, client_id: &str, user: &str, password: &str) -> bool {
        if user == HUB_ID {
            return self.check(client_id, user, password);
        }
        let secret = secret_hash(&self.gatekeeper_secret);
        is_client_id_of(self.venue, user, client_id) && same(&secret_hash(password), &secret)
    }

    /// May this gate (or the hub) connect with this password?
    pub fn check(&self, client_id: &str, user: &str, password: &str) -> bool {
        let hash = secret_hash(password);
        if user == HUB_ID {
            return same(&hash, &self.hub_secret) && client_id.starts_with(&format!("tixgate-hub-{}-", self.venue));
        }
        if !is_client_id_of(self.venue, user, client_id) {
            return false;
        }
        let Ok(mut cache) = self.gates.lock() else { return false };
        let stale = cache.0.is_none_or(|read| read.elapsed() > CREDENTIALS_TTL);
        if stale {
            match HubStore::open(&self.db).and_then(|store| store.mqtt_secrets()) {
                Ok(gates) => *cache = (Some(Instant::now()), gates),
                Err(e) => tracing::warn!(error = %e, "cannot read enrolled gates; keeping the last list"),
            }
        }
        let known = cache.1.get(user).is_some_and(|secret| same(&hash, secret));
        if !known {
            tracing::warn!(client_id, user, "MQTT connection refused: unknown gate, revoked, or wrong password");
        }
        known
    }
}

/// Compares two hashes in constant time.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts the embedded broker: rumqttd on a free loopback port in its own
/// threads (it runs for the life of the process), and the [`gatekeeper`] on
/// `listen` in front of it. Returns the loopback address, where the hub's own
/// client connects.
pub async fn start_embedded_broker(
    listen: SocketAddr,
    credentials: Credentials,
    status: crate::status::Status,
    shutdown: CancellationToken,
) -> Result<SocketAddr, BrokerError> {
    let inner = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|probe| probe.local_addr())
        .map_err(|source| BrokerError::Listen { addr: listen, source })?;
    let mut connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: MAX_FRAME + PACKET_SLACK,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let behind = credentials.clone();
    connections.set_auth_handler(move |client_id: String, user: String, password: String| {
        let credentials = behind.clone();
        async move { credentials.check_behind_gatekeeper(&client_id, &user, &password) }
    });
    let server = rumqttd::ServerSettings {
        name: "tixgate-v4".into(),
        listen: inner,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 1_000,
            max_segment_size: 10 << 20,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("tixgate".to_owned(), server)])),
        ..Default::default()
    };
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|source| BrokerError::Listen { addr: inner, source })?;
    gatekeeper::start(listen, inner, credentials, status, shutdown).await?;
    Ok(inner)
}

/// One MQTT connection with the options tixgate uses everywhere: persistent
/// session, QoS 1 in flight up to a window, frames up to [`MAX_FRAME`], and
/// `TCP_NODELAY` (claims and verdicts are small and latency-bound).
pub fn connection(client_id: &str, host: &str, port: u16, login: Option<(&str, &str)>) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(client_id, host, port);
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_clean_session(false)
        .set_max_packet_size(MAX_FRAME + PACKET_SLACK, MAX_FRAME + PACKET_SLACK)
        .set_inflight(500);
    let (client, mut eventloop) = AsyncClient::new(options, 4_096);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    (client, eventloop)
}

/// Runs the hub's MQTT side until `shutdown`: frames from gates go to
/// `inbound`; `outbound` is published. `connected` turns true once both
/// connections are up and subscribed.
///
/// Two connections, one per direction, both QoS 1. Brokers that leave Nagle's
/// algorithm on (Mosquitto's default, rumqttd) hold a small packet back until the
/// previous one is acknowledged at the TCP level, and a client that sends nothing
/// back delays that acknowledgement by 40 ms. On the receiving connection every
/// message is QoS 1, so the immediate PUBACK carries the acknowledgement; the
/// broker's PUBACKs for what we publish arrive on the other connection, where
/// nothing waits behind them.
pub async fn run_hub_client(
    (host, port): (String, u16),
    login: Option<(String, String)>,
    venue: u32,
    inbound: mpsc::Sender<Inbound>,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    connected: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let login = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let (subscriber, sub_events) = connection(&format!("tixgate-hub-{venue}-in"), &host, port, login);
    let (publisher, mut pub_events) = connection(&format!("tixgate-hub-{venue}-out"), &host, port, login);
    let publish_up = watch::Sender::new(false);
    let mut publish_ready = publish_up.subscribe();
    let pub_poller = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = pub_events.poll() => event,
                };
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => drop(publish_up.send_replace(true)),
                    Ok(_) => {}
                    Err(e) => {
                        if publish_up.send_replace(false) {
                            tracing::warn!(error = %e, "MQTT (outgoing) connection lost; reconnecting");
                        } else {
                            tracing::debug!(error = %e, "MQTT broker not reachable yet");
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        })
    };
    let sender = {
        let shutdown = shutdown.clone();
        let publisher = publisher.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = outbound.recv() => next,
                };
                let Some(out) = next else { return };
                let (topic, frame) = match out {
                    Outbound::To { gate, frame } => (topics::down(venue, &gate), frame),
                    Outbound::All(frame) => (topics::broadcast(venue), frame),
                };
                if publisher.publish(topic, QoS::AtLeastOnce, false, frame).await.is_err() {
                    return; // the event loop is gone: shutting down
                }
            }
        })
    };
    let (subscribed_tx, mut subscribed) = watch::channel(false);
    let readiness = tokio::spawn(async move {
        loop {
            let both = *subscribed.borrow_and_update() && *publish_ready.borrow_and_update();
            connected.send_replace(both);
            tokio::select! {
                changed = subscribed.changed() => if changed.is_err() { return },
                changed = publish_ready.changed() => if changed.is_err() { return },
            }
        }
    });
    poll_loop(sub_events, &subscriber, venue, &inbound, &subscribed_tx, &shutdown).await;
    let _ = subscriber.disconnect().await;
    let _ = publisher.disconnect().await;
    for task in [pub_poller, sender, readiness] {
        task.abort();
    }
}

async fn poll_loop(
    mut eventloop: EventLoop,
    client: &AsyncClient,
    venue: u32,
    inbound: &mpsc::Sender<Inbound>,
    connected: &watch::Sender<bool>,
    shutdown: &CancellationToken,
) {
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // Subscribe on every connection: harmless when the session kept it.
                if client.subscribe(topics::up_filter(venue), QoS::AtLeastOnce).await.is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                connected.send_replace(true);
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let claimed_gate = topics::gate_of_up(venue, &publish.topic).map(str::to_owned);
                if claimed_gate.is_none() {
                    tracing::warn!(topic = %publish.topic, "message on a topic that names no gate: refused");
                    continue;
                }
                let frame = Inbound { transport: Transport::Mqtt, claimed_gate, bytes: publish.payload.to_vec() };
                if inbound.send(frame).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if connected.send_replace(false) {
                    tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                } else {
                    tracing::debug!(error = %e, "MQTT broker not reachable yet");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        }
    }
}
