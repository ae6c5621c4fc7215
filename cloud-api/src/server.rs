//! `cloud-api serve`: opens the store, loads the signing key, serves HTTP and
//! sweeps expired holds until shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::accounts::auth::Tokens;
use crate::config::Config;
use crate::db::Db;
use crate::domain_events::publisher::Publisher;
use crate::notifications::email::Mailer;
use crate::notifications::sms::{SmsSender, TwilioSms};
use crate::notifications::{Deliverer, Retries};
use crate::sale::payments::{Gateways, StripeClient};
use crate::web::{AppState, router};
use crate::{catalog::read_model, common::clock, common::keystore, domain_events, sale::inventory, sale::orders};

/// How often expired holds and unpaid orders are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened or migrated.
    #[error("store: {0}")]
    Store(#[from] crate::db::DbError),
    /// The signing key could not be read.
    #[error("signing key: {0}")]
    Keys(#[from] keystore::KeystoreError),
    /// The token secret could not be read or created.
    #[error("{path}: {source}")]
    Secret {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("listen {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Something else in set-up.
    #[error("{0}")]
    Other(String),
}

/// Builds the shared state from a checked config.
pub async fn state(config: &Config) -> Result<AppState, StartError> {
    // reqwest (Stripe, OIDC, SMS, S3) uses rustls with whichever provider is installed; ring is the one built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = Db::open(&config.store).await?;
    let signer = keystore::read_signer(&config.keys.join(keystore::SIGNING_KEY_FILE))?;
    let secret = token_secret(&config.token_secret_file)?;
    let stripe = match &config.stripe {
        Some(s) => Some(StripeClient::new(&s.base_url, &s.secret_key).map_err(|e| StartError::Other(e.to_string()))?),
        None => None,
    };
    Ok(AppState {
        db,
        tokens: Arc::new(Tokens::new(&secret, config.login_seconds)),
        signer: Arc::new(signer),
        gateways: Arc::new(Gateways { stripe, test_enabled: config.test_gateway }),
        oidc: crate::accounts::oidc::Providers::new(&config.oidc).map_err(|e| StartError::Other(e.to_string()))?,
        media: media_store(&config.media)?,
        sale: crate::sale::Settings {
            hold_seconds: config.hold_seconds,
            pay_seconds: config.pay_seconds,
            resale_max_percent: config.resale_max_percent,
            fraud: config.fraud,
            trust_forwarded_for: config.rate_limit.trust_forwarded_for,
            webhook_secret: config.stripe.as_ref().map(|s| Arc::from(s.webhook_secret.as_str())),
        },
        rate_limit: crate::common::rate_limit::limiter(config.rate_limit),
    })
}

/// Opens the media store: the folder (created if missing) or the bucket.
fn media_store(config: &crate::config::MediaConfig) -> Result<crate::catalog::media::MediaStore, StartError> {
    use crate::config::MediaConfig;
    let other = |e: &dyn std::fmt::Display| StartError::Other(format!("media store: {e}"));
    Ok(match config {
        MediaConfig::Folder(folder) => {
            std::fs::create_dir_all(folder).map_err(|e| other(&format!("{}: {e}", folder.display())))?;
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(folder).map_err(|e| other(&e))?)
        }
        MediaConfig::S3 { bucket, endpoint, region, credentials } => {
            use object_store::aws::AmazonS3Builder;
            let mut builder = match credentials {
                // Configured credentials stand alone: a session token in the environment would not match them.
                Some((key_id, secret_file)) => {
                    let secret = std::fs::read_to_string(secret_file)
                        .map_err(|e| other(&format!("{}: {e}", secret_file.display())))?;
                    AmazonS3Builder::new().with_access_key_id(key_id).with_secret_access_key(secret.trim())
                }
                None => AmazonS3Builder::from_env(),
            }
            .with_bucket_name(bucket);
            if let Some(endpoint) = endpoint {
                builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
            }
            if let Some(region) = region {
                builder = builder.with_region(region);
            }
            Arc::new(builder.build().map_err(|e| other(&e))?)
        }
    })
}

/// Reads the token secret, creating 32 random bytes (mode 0600) on first start.
fn token_secret(path: &Path) -> Result<Vec<u8>, StartError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| StartError::Secret { path: path.into(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.trim().as_bytes())
            .ok()
            .filter(|s| s.len() >= 32)
            .ok_or_else(|| err(std::io::Error::other("expected at least 32 bytes as hex"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = vec![0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| err(std::io::Error::other(e.to_string())))?;
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
            file.write_all(data_encoding::HEXLOWER.encode(&secret).as_bytes()).map_err(err)?;
            file.sync_all().map_err(err)?;
            Ok(secret)
        }
        Err(e) => Err(err(e)),
    }
}

/// Serves until `shutdown`; `ready` gets the bound address.
pub async fn run(
    config: &Config,
    shutdown: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), StartError> {
    let state = state(config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
    tracing::info!(%addr, store = state.db.dialect(), "cloud-api listening");
    if let Some(ready) = ready {
        let _ = ready.send(addr);
    }
    let sweeper = tokio::spawn(sweep(state.clone(), shutdown.clone(), config.events.is_some()));
    let deliverer = deliverer(config, &state)?.map(|d| tokio::spawn(deliver(d, shutdown.clone())));
    let mut streams = Vec::new();
    if let Some(target) = &config.events {
        let publisher = Publisher::connect(state.db.clone(), target.clone())
            .await
            .map_err(|e| StartError::Other(format!("events: {e}")))?;
        streams.push(tokio::spawn(publish(publisher, shutdown.clone())));
        streams.push(tokio::spawn(crate::analytics::sales::run(state.db.clone(), target.clone(), shutdown.clone())));
    }
    let projector = tokio::spawn(project(state.db.clone(), shutdown.clone()));
    let stop = shutdown.clone();
    let served = axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    shutdown.cancel();
    let _ = sweeper.await;
    let _ = projector.await;
    if let Some(deliverer) = deliverer {
        let _ = deliverer.await;
    }
    for task in streams {
        let _ = task.await;
    }
    served.map_err(|e| StartError::Other(format!("serve: {e}")))
}

/// The notification deliverer of a config with `[notifications]`.
fn deliverer(config: &Config, state: &AppState) -> Result<Option<Deliverer>, StartError> {
    let Some(n) = &config.notifications else { return Ok(None) };
    let mailer = match &n.smtp_url {
        Some(url) => Some(Mailer::new(url, &n.from).map_err(|e| StartError::Other(format!("notifications: {e}")))?),
        None => None,
    };
    let sms: Option<Arc<dyn SmsSender>> = match &n.sms {
        Some(s) => Some(Arc::new(
            TwilioSms::new(&s.base_url, &s.account_sid, &s.auth_token, &s.from)
                .map_err(|e| StartError::Other(format!("notifications.sms: {e}")))?,
        )),
        None => None,
    };
    Ok(Some(Deliverer {
        db: state.db.clone(),
        mailer,
        sms,
        tokens: Arc::clone(&state.tokens),
        public_url: n.public_url.clone(),
        retries: Retries { first_delay: n.first_retry_seconds, max_delay: 3600, max_attempts: n.max_attempts },
    }))
}

/// How often the outbox of notifications is read.
const DELIVER_EVERY: Duration = Duration::from_millis(500);

/// Sends queued notifications until shutdown; a message being sent is finished first.
async fn deliver(deliverer: Deliverer, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(DELIVER_EVERY) => {}
        }
        match deliverer.deliver_due(clock::now()).await {
            Ok(pass) if pass.sent + pass.retrying + pass.failed > 0 => {
                tracing::info!(sent = pass.sent, retrying = pass.retrying, failed = pass.failed, "notifications");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "delivering notifications failed; will retry"),
        }
    }
}

/// How often the domain events outbox is published.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// Publishes domain events until shutdown.
async fn publish(mut publisher: Publisher, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(PUBLISH_EVERY) => {}
        }
        if let Err(e) = publisher.publish_due(clock::now()).await {
            tracing::warn!(error = %e, "publishing domain events failed; will retry");
        }
    }
}

/// How often the read model catches up with the outbox.
const PROJECT_EVERY: Duration = Duration::from_millis(100);

/// Keeps the read model (listings, availability) current.
async fn project(db: Db, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(PROJECT_EVERY) => {}
        }
        if let Err(e) = read_model::project(&db, clock::now()).await {
            tracing::warn!(error = %e, "projecting listings failed; will retry");
        }
    }
}

/// Returns expired holds and unpaid orders to sale, and retries refunds of
/// payments that could not be honoured.
async fn sweep(state: AppState, shutdown: CancellationToken, publishing: bool) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        match inventory::sweep_expired(&state.db, clock::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "expired holds and orders returned to sale"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired holds failed"),
        }
        let shop = state.shop();
        let ctx = shop.orders();
        if let Err(e) = orders::retry_due_refunds(ctx).await {
            tracing::warn!(error = %e, "retrying refunds failed");
        }
        if let Some(limiter) = &state.rate_limit {
            // Forget clients whose quota is whole again, so the table does not grow forever.
            limiter.limiter().retain_recent();
        }
        if let Err(e) = domain_events::publisher::prune(&state.db, clock::now(), publishing).await {
            tracing::warn!(error = %e, "pruning domain events failed");
        }
    }
}
