//! The link's MQTT wire: two connections to the broker, one per direction,
//! everything QoS 1 with a persistent session.
//!
//! Why two: brokers with Nagle's algorithm on (Mosquitto's default, rumqttd)
//! would hold a verdict back 40 ms behind the broker's PUBACK of our own
//! publish; see the hub's `mqtt` module.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeFilter};
use schema::sync::{self, topics};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::WireEvent;

/// Room for the MQTT header around a frame.
const PACKET_SLACK: usize = 1_024;
/// Wait this long before polling a failed connection again (which reconnects).
const RETRY: Duration = Duration::from_millis(250);

/// Where and who: the broker, the venue, the gate and its password.
pub struct MqttTarget<'a> {
    /// Broker host.
    pub host: &'a str,
    /// Broker port.
    pub port: u16,
    /// The venue.
    pub venue: u32,
    /// This gate.
    pub gate_id: &'a str,
    /// Its MQTT password from enrolment.
    pub password: &'a str,
}

/// Both connections and their pollers.
pub struct MqttWire {
    subscriber: AsyncClient,
    publisher: AsyncClient,
    up_topic: String,
    pollers: [JoinHandle<()>; 2],
}

fn connection(target: &MqttTarget<'_>, direction: &str) -> (AsyncClient, EventLoop) {
    let id = sync::mqtt_client_id(target.venue, target.gate_id, direction);
    let mut options = MqttOptions::new(id, target.host, target.port);
    options.set_credentials(target.gate_id, target.password);
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_clean_session(false)
        .set_max_packet_size(sync::MAX_FRAME + PACKET_SLACK, sync::MAX_FRAME + PACKET_SLACK);
    let (client, mut eventloop) = AsyncClient::new(options, 1_024);
    // Claims are small request/response messages: never hold them back (Nagle).
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    (client, eventloop)
}

impl MqttWire {
    /// Connects (and keeps reconnecting); what arrives goes to `events`.
    pub fn start(target: &MqttTarget<'_>, events: mpsc::Sender<WireEvent>) -> Self {
        let (subscriber, sub_loop) = connection(target, "in");
        let (publisher, pub_loop) = connection(target, "out");
        let filters = vec![
            SubscribeFilter::new(topics::down(target.venue, target.gate_id), QoS::AtLeastOnce),
            SubscribeFilter::new(topics::broadcast(target.venue), QoS::AtLeastOnce),
        ];
        // Each event loop is polled by a task of its own and never cancelled
        // half-way through a read.
        let sub_poller = tokio::spawn(poll_incoming(sub_loop, subscriber.clone(), filters, events));
        let pub_poller = tokio::spawn(poll_outgoing(pub_loop));
        Self {
            subscriber,
            publisher,
            up_topic: topics::up(target.venue, target.gate_id),
            pollers: [sub_poller, pub_poller],
        }
    }

    /// Queues a frame for the hub; false if the client is gone.
    pub fn send(&self, frame: Vec<u8>) -> bool {
        self.publisher.try_publish(&self.up_topic, QoS::AtLeastOnce, false, frame).is_ok()
    }

    /// Disconnects both connections.
    pub fn stop(self) {
        let _ = self.subscriber.try_disconnect();
        let _ = self.publisher.try_disconnect();
        for poller in self.pollers {
            poller.abort();
        }
    }
}

/// The receiving connection: subscribes on every (re)connection, then hands
/// frames over. Polling is what reconnects after a failure.
async fn poll_incoming(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    events: mpsc::Sender<WireEvent>,
) {
    loop {
        let event = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.try_subscribe_many(filters.clone());
                continue;
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => WireEvent::Up,
            Ok(Event::Incoming(Packet::Publish(publish))) => WireEvent::Frame(publish.payload.to_vec()),
            Ok(_) => continue,
            Err(e) => WireEvent::Down(e.to_string()),
        };
        let failed = matches!(event, WireEvent::Down(_));
        if events.send(event).await.is_err() {
            return;
        }
        if failed {
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// The sending connection: only its acknowledgements come back.
async fn poll_outgoing(mut eventloop: EventLoop) {
    loop {
        if eventloop.poll().await.is_err() {
            tokio::time::sleep(RETRY).await;
        }
    }
}
