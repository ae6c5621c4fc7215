//! The hub's link to the cloud API: scans and conflicts go up, signed ticket
//! lists come down. Both are idempotent, so either may be cut at any moment.
//!
//! - **Upload:** batches of what `hub.db` has not yet sent, `POST
//!   /venues/{id}/scans`; marked uploaded only after the cloud's 200. The cloud
//!   stores each scan once by its `gate:seq` id, so a batch repeated after a lost
//!   answer changes nothing. Failures back off from 1 s to 5 min and retry for as
//!   long as it takes — a venue may be offline for days.
//! - **Pull:** `GET /venues/{id}/manifest?since=V`, V the newest version in the
//!   replica folder; a new file is written there atomically (temp file, fsync,
//!   rename) and the folder watcher offers it to the gates. Gates check every
//!   file's signature themselves: the hub is not trusted with ticket lists.
//! - **Gates:** before a pull, the hub's enrolled gates (and which are revoked)
//!   go up with `PUT /venues/{id}/gates` whenever they changed since the cloud
//!   last took them, so the organizer can assign them to entrances. What the
//!   cloud revokes comes back down in the manifest (`manifest_watch`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use schema::manifest::ManifestHeader;
use schema::uplink::{ScanUpload, UploadReceipt};
use tokio_util::sync::CancellationToken;

use crate::status::Status;
use crate::uplink_store::{Pending, UplinkStore};

/// Scans and conflicts per upload.
const BATCH: usize = 1_000;
/// Gates per report (the cloud takes at most 1,000 at once).
const GATES_PER_REPORT: usize = 1_000;
/// Pause when there is nothing to send.
const IDLE: Duration = Duration::from_secs(2);
/// How often the ticket list is pulled.
const PULL_EVERY: Duration = Duration::from_secs(15);
/// First and longest wait after a failure.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));

/// Where the cloud is and how the hub proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// Base URL of the cloud API.
    pub url: String,
    /// The hub's device token (from `POST /admin/venues/{id}/devices`).
    pub token: String,
}

/// Why talking to the cloud failed this time.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// No answer.
    #[error("cloud unreachable: {0}")]
    Unreachable(String),
    /// An answer other than success.
    #[error("cloud answered {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem document or body, shortened.
        body: String,
    },
    /// `hub.db` or the replica folder failed.
    #[error("{0}")]
    Local(String),
}

/// Runs both directions until `shutdown`.
pub async fn run(
    cloud: CloudConfig,
    venue_id: u32,
    db: PathBuf,
    folder: PathBuf,
    status: Status,
    shutdown: CancellationToken,
) {
    let http = match reqwest::Client::builder().timeout(Duration::from_secs(30)).build() {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client: the cloud link is off");
            return;
        }
    };
    let link = Link { http, cloud, venue_id };
    tokio::join!(upload_loop(&link, &db, &status, &shutdown), pull_loop(&link, &db, &folder, &status, &shutdown));
}

struct Link {
    http: reqwest::Client,
    cloud: CloudConfig,
    venue_id: u32,
}

impl Link {
    fn url(&self, path: &str) -> String {
        format!("{}/venues/{}{path}", self.cloud.url.trim_end_matches('/'), self.venue_id)
    }

    async fn upload(&self, batch: &Pending) -> Result<UploadReceipt, CloudError> {
        let body = ScanUpload {
            scans: batch.scans.clone(),
            conflicts: batch.conflicts.iter().map(|(_, c)| c.clone()).collect(),
        };
        let response = self
            .http
            .post(self.url("/scans"))
            .bearer_auth(&self.cloud.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| CloudError::Unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(refused(response).await);
        }
        response.json().await.map_err(|e| CloudError::Unreachable(format!("unreadable receipt: {e}")))
    }

    /// Tells the cloud which gates are enrolled here (and revoked).
    async fn report_gates(&self, gates: &[(String, bool)]) -> Result<(), CloudError> {
        for chunk in gates.chunks(GATES_PER_REPORT) {
            // The cloud's `GateReport`: `{"gates": [{"gate_id", "revoked"}]}`.
            let body = serde_json::json!({
                "gates": chunk.iter().map(|(id, revoked)| serde_json::json!({ "gate_id": id, "revoked": revoked })).collect::<Vec<_>>(),
            });
            let response = self
                .http
                .put(self.url("/gates"))
                .bearer_auth(&self.cloud.token)
                .json(&body)
                .send()
                .await
                .map_err(|e| CloudError::Unreachable(e.to_string()))?;
            if !response.status().is_success() {
                return Err(refused(response).await);
            }
        }
        Ok(())
    }

    /// The manifest after `since`: `None` when there is nothing newer.
    async fn pull(&self, since: Option<u64>) -> Result<Option<Vec<u8>>, CloudError> {
        let query = since.map(|v| format!("?since={v}")).unwrap_or_default();
        let response = self
            .http
            .get(self.url(&format!("/manifest{query}")))
            .bearer_auth(&self.cloud.token)
            .send()
            .await
            .map_err(|e| CloudError::Unreachable(e.to_string()))?;
        match response.status().as_u16() {
            304 => Ok(None),
            200 => Ok(Some(response.bytes().await.map_err(|e| CloudError::Unreachable(e.to_string()))?.to_vec())),
            _ => Err(refused(response).await),
        }
    }
}

async fn refused(response: reqwest::Response) -> CloudError {
    let status = response.status().as_u16();
    let mut body = response.text().await.unwrap_or_default();
    body.truncate(300);
    CloudError::Refused { status, body }
}

/// Sleeps `wait`, or returns `false` at shutdown.
async fn pause(wait: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF.1)
}

async fn upload_loop(link: &Link, db: &Path, status: &Status, shutdown: &CancellationToken) {
    let mut store = match UplinkStore::open(db) {
        Ok(store) => store,
        Err(e) => {
            tracing::error!(error = %e, "cannot open hub.db for the uplink");
            return;
        }
    };
    let mut backoff = BACKOFF.0;
    loop {
        let wait = match upload_once(link, &mut store, status).await {
            Ok(0) => IDLE,
            Ok(_) => {
                backoff = BACKOFF.0;
                Duration::ZERO
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "upload to the cloud failed");
                status.cloud_failed(&e.to_string());
                let wait = backoff;
                backoff = next_backoff(backoff);
                wait
            }
        };
        if let Ok(pending) = store.backlog() {
            status.cloud_backlog(pending);
        }
        if !pause(wait, shutdown).await {
            return;
        }
    }
}

/// Sends one batch; returns how many items it held.
async fn upload_once(link: &Link, store: &mut UplinkStore, status: &Status) -> Result<usize, CloudError> {
    let batch = store.pending(BATCH).map_err(|e| CloudError::Local(e.to_string()))?;
    if batch.is_empty() {
        return Ok(0);
    }
    let receipt = link.upload(&batch).await?;
    store.mark_uploaded(&batch).map_err(|e| CloudError::Local(e.to_string()))?;
    status.cloud_uploaded(u64::from(receipt.stored) + u64::from(receipt.duplicates));
    tracing::info!(stored = receipt.stored, duplicates = receipt.duplicates, "uploaded to the cloud");
    Ok(batch.scans.len() + batch.conflicts.len())
}

async fn pull_loop(link: &Link, db: &Path, folder: &Path, status: &Status, shutdown: &CancellationToken) {
    let store = match UplinkStore::open(db) {
        Ok(store) => store,
        Err(e) => {
            tracing::error!(error = %e, "cannot open hub.db for the gate report");
            return;
        }
    };
    // What the cloud last took; `None`: not yet since start.
    let mut reported: Option<Vec<(String, bool)>> = None;
    let mut backoff = BACKOFF.0;
    loop {
        // A failed report is retried next round; it never holds up the ticket list.
        let enrolled = store.enrolled_gates().map_err(|e| CloudError::Local(e.to_string()));
        if let Err(e) = report_gates(link, enrolled, &mut reported).await {
            tracing::warn!(error = %e, "reporting the enrolled gates to the cloud failed");
            status.cloud_failed(&e.to_string());
        }
        let wait = match pull_once(link, folder, status).await {
            Ok(()) => {
                backoff = BACKOFF.0;
                PULL_EVERY
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "ticket list pull from the cloud failed");
                status.cloud_failed(&e.to_string());
                let wait = backoff;
                backoff = next_backoff(backoff);
                wait.min(PULL_EVERY)
            }
        };
        if !pause(wait, shutdown).await {
            return;
        }
    }
}

/// Reports the enrolled gates if they changed since the cloud last took them.
async fn report_gates(
    link: &Link,
    enrolled: Result<Vec<(String, bool)>, CloudError>,
    reported: &mut Option<Vec<(String, bool)>>,
) -> Result<(), CloudError> {
    let gates = enrolled?;
    if reported.as_ref() == Some(&gates) || gates.is_empty() {
        return Ok(());
    }
    link.report_gates(&gates).await?;
    tracing::info!(gates = gates.len(), "enrolled gates reported to the cloud");
    *reported = Some(gates);
    Ok(())
}

async fn pull_once(link: &Link, folder: &Path, status: &Status) -> Result<(), CloudError> {
    let newest =
        newest_version(folder, link.venue_id).map_err(|e| CloudError::Local(format!("{}: {e}", folder.display())))?;
    let Some(bytes) = link.pull(newest).await? else {
        return Ok(());
    };
    let header = ManifestHeader::peek(&bytes)
        .filter(|h| h.venue_id == u64::from(link.venue_id))
        .ok_or_else(|| CloudError::Local("the cloud sent a ticket list that is not for this venue".into()))?;
    let kind = if header.base_version.is_some() { "delta" } else { "full" };
    let name = format!("cloud-v{:010}-{kind}.txm", header.version);
    write_atomically(folder, &name, &bytes).map_err(|e| CloudError::Local(format!("{}: {e}", folder.display())))?;
    status.cloud_manifest(header.version);
    tracing::info!(version = header.version, kind, bytes = bytes.len(), "ticket list from the cloud");
    Ok(())
}

/// The newest version among this venue's manifest files in `folder`.
fn newest_version(folder: &Path, venue_id: u32) -> std::io::Result<Option<u64>> {
    let mut newest = None;
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "txm") {
            continue;
        }
        let mut head = vec![0u8; 4096];
        let n = std::io::Read::read(&mut std::fs::File::open(&path)?, &mut head)?;
        head.truncate(n);
        if let Some(h) = ManifestHeader::peek(&head).filter(|h| h.venue_id == u64::from(venue_id)) {
            newest = newest.max(Some(h.version));
        }
    }
    Ok(newest)
}

fn write_atomically(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    // Not `.txm` until complete, so the folder watcher never reads half a file.
    let temp = folder.join(format!(".{name}.part"));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, folder.join(name))?;
    std::fs::File::open(folder)?.sync_all()
}
