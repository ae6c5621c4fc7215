//! `sync-hub run`: the hub daemon.
//!
//! Threads and tasks: the embedded broker (if configured); the MQTT client task
//! and the QUIC listener (if configured), which feed received frames into one
//! channel; and the core thread, the single writer, which reads that channel,
//! commits in groups and hands replies back — to the gate's QUIC connection if
//! it has one, else over MQTT; broadcasts go both ways. With `[cloud]`, the
//! cloud link uploads scans and pulls ticket lists. Shutdown: the token is
//! cancelled (SIGTERM/SIGINT), the transports stop and drop their senders, the
//! core finishes the frames already received, commits, and returns.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Broker, HubConfig};
use crate::core::{Core, CoreError, SharedLibrary};
use crate::enroll::{self, EnrollError};
use crate::fanout::Fanout;
use crate::http;
use crate::manifest_watch::ManifestWatch;
use crate::manifests::Library;
use crate::mqtt::{self, BrokerError, Credentials};
use crate::quic::{self, QuicError, QuicGates};
use crate::status::Status;
use crate::store::Checkpointer;
use schema::sync::HUB_ID;

/// Frames waiting for the core; a transport waits when it is full.
const INBOUND_QUEUE: usize = 16_384;
/// How long start-up waits for the broker connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the hub stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Keys or store could not be opened.
    #[error(transparent)]
    Enroll(#[from] EnrollError),
    /// The core failed (its store).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The embedded broker could not start.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The QUIC listener could not start.
    #[error(transparent)]
    Quic(#[from] QuicError),
    /// No broker connection at start-up.
    #[error("cannot reach the MQTT broker at {0} within {CONNECT_TIMEOUT:?}")]
    Unreachable(String),
    /// The dashboard cannot listen.
    #[error("dashboard cannot listen on {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The replica folder does not exist and cannot be made.
    #[error("cannot create the replica folder {path}: {source}")]
    ReplicaFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The core thread died.
    #[error("the hub's core stopped unexpectedly")]
    CoreLost,
}

/// Where a running hub can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The MQTT broker, `host:port`.
    pub mqtt: String,
    /// The QUIC listener, as bound, if there is one.
    pub quic: Option<SocketAddr>,
    /// The dashboard, as bound (a configured port 0 becomes a real one).
    pub http: SocketAddr,
}

/// Runs the hub until `shutdown`. `ready` is called once the hub takes frames.
pub async fn run(
    config: HubConfig,
    status: Status,
    shutdown: CancellationToken,
    ready: impl FnOnce(&Ready),
) -> Result<(), DaemonError> {
    let hub_key = enroll::hub_key(&config)?;
    let store = enroll::open_store(&config)?;
    // The cloud link writes ticket lists here; a packaged hub's state folder
    // starts empty.
    if let Some(folder) = &config.manifests {
        std::fs::create_dir_all(folder)
            .map_err(|source| DaemonError::ReplicaFolder { path: folder.clone(), source })?;
    }
    let _checkpointer = Checkpointer::start(store.path()).map_err(CoreError::from)?;
    let core = Core::new(store, hub_key.clone(), status.clone())?;
    let (http, http_task) = http::serve(config.http, config.http_hosts.clone(), status.clone(), shutdown.clone())
        .await
        .map_err(|source| DaemonError::Http { addr: config.http, source })?;
    // The embedded broker admits enrolled gates (through its gatekeeper) and
    // this run of the hub only; the hub's client talks to it on loopback.
    let (login, hub_broker) = match &config.broker {
        Broker::Embedded(listen) => {
            let password = enroll::random_secret()?;
            let db = config.state_dir.join(enroll::HUB_DB_FILE);
            let credentials = Credentials::new(config.venue_id, db, &password, &enroll::random_secret()?);
            let inner = mqtt::start_embedded_broker(*listen, credentials, status.clone(), shutdown.clone()).await?;
            (Some((HUB_ID.to_owned(), password)), (inner.ip().to_string(), inner.port()))
        }
        // With the files of `sync-hub broker-files`, Mosquitto checks this; a
        // broker without a password file ignores it.
        Broker::External(..) => (
            Some((HUB_ID.to_owned(), crate::broker_files::hub_password(&config.state_dir)?)),
            config.broker.connect_to(),
        ),
    };
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
    let (outbound_tx, outbound_rx) = mpsc::unbounded_channel();
    let quic_gates = QuicGates::default();
    let quic_task = match config.quic {
        Some(listen) => {
            let ca = crate::ca::VenueCa::load_or_create(&config.state_dir, config.venue_id)?;
            let endpoint = quic::listen(listen, &ca)?;
            let bound = endpoint.local_addr().map_err(|source| QuicError::Listen { addr: listen, source })?;
            let db = config.state_dir.join(enroll::HUB_DB_FILE);
            let task =
                quic::serve(endpoint, db, quic_gates.clone(), inbound_tx.clone(), status.clone(), shutdown.clone());
            Some((bound, tokio::spawn(task)))
        }
        None => None,
    };
    // To a gate's QUIC connection if it has one, else MQTT; broadcasts both ways.
    let deliver = move |out| {
        if let Some(for_mqtt) = quic_gates.route(out) {
            let _ = outbound_tx.send(for_mqtt);
        }
    };
    let mut core = core;
    let (fanout, admissions) = Fanout::new();
    core.broadcast_through(fanout);
    let fanout = tokio::spawn(crate::fanout::run(admissions, hub_key.clone(), deliver.clone()));
    let manifests = config.manifests.clone().map(|folder| {
        let library = SharedLibrary::new(RwLock::new(Library::scan(&folder, config.venue_id)));
        core.serve_manifests(library.clone());
        let watch = ManifestWatch {
            folder,
            venue: config.venue_id,
            library,
            hub_key: hub_key.clone(),
            status: status.clone(),
            hub_db: config.state_dir.join(enroll::HUB_DB_FILE),
        };
        tokio::spawn(watch.run(deliver.clone(), shutdown.clone()))
    });
    // Scans up, ticket lists down; the config guarantees a replica folder.
    let cloud = match (config.cloud.clone(), config.manifests.clone()) {
        (Some(cloud), Some(folder)) => {
            // reqwest's TLS needs a process-wide provider; ring is the one built.
            let _ = rustls::crypto::ring::default_provider().install_default();
            status.cloud_configured();
            let db = config.state_dir.join(enroll::HUB_DB_FILE);
            Some(tokio::spawn(crate::cloud::run(cloud, config.venue_id, db, folder, status.clone(), shutdown.clone())))
        }
        _ => None,
    };
    let core_thread = std::thread::Builder::new()
        .name("hub-core".into())
        .spawn(move || core.run(inbound_rx, &deliver))
        .map_err(|_| DaemonError::CoreLost)?;

    let (connected_tx, mut connected) = watch::channel(false);
    let client = tokio::spawn(mqtt::run_hub_client(
        hub_broker.clone(),
        login,
        config.venue_id,
        inbound_tx,
        outbound_rx,
        connected_tx,
        shutdown.clone(),
    ));
    // `wait_for` returns a read guard: drop it here, before any other await.
    let up = matches!(tokio::time::timeout(CONNECT_TIMEOUT, connected.wait_for(|c| *c)).await, Ok(Ok(_)));
    if !up {
        shutdown.cancel();
        let _ = client.await;
        return Err(DaemonError::Unreachable(format!("{}:{}", hub_broker.0, hub_broker.1)));
    }
    let quic = quic_task.as_ref().map(|(bound, _)| *bound);
    let (host, port) = config.broker.connect_to();
    ready(&Ready { mqtt: format!("{host}:{port}"), quic, http });

    // The transports return on shutdown and drop the core's senders.
    let _ = client.await;
    if let Some((_, task)) = quic_task {
        let _ = task.await;
    }
    if let Some(task) = manifests {
        let _ = task.await;
    }
    if let Some(task) = cloud {
        let _ = task.await;
    }
    let _ = http_task.await;
    tokio::task::spawn_blocking(move || core_thread.join())
        .await
        .map_err(|_| DaemonError::CoreLost)?
        .map_err(|_| DaemonError::CoreLost)??;
    // The core is gone, and with it the fan-out's sender.
    let _ = fanout.await;
    Ok(())
}
