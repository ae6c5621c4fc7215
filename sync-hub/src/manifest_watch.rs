//! Watches the manifest folder: a newer file is offered to every gate, and the
//! newest file's doors reach the dashboard (areas, entrances) and the hub's
//! enrolments (a gate the cloud revoked is revoked here too).

use std::path::PathBuf;
use std::time::Duration;

use schema::manifest::ManifestDoors;
use schema::sync::{HUB_ID, HubMessage, NodeKey, Recipient};
use tokio_util::sync::CancellationToken;

use crate::core::{Outbound, SharedLibrary};
use crate::manifests::Library;
use crate::status::Status;
use crate::store::HubStore;

/// How often the manifest folder is looked at.
const MANIFEST_RESCAN: Duration = Duration::from_secs(3);

/// What the watcher reads and tells.
pub struct ManifestWatch {
    /// The replica folder.
    pub folder: PathBuf,
    /// This hub's venue.
    pub venue: u32,
    /// What the core serves.
    pub library: SharedLibrary,
    /// Seals offers.
    pub hub_key: NodeKey,
    /// The dashboard's figures.
    pub status: Status,
    /// `hub.db`, for revocations.
    pub hub_db: PathBuf,
}

impl ManifestWatch {
    /// Re-reads the folder until `shutdown`; when a newer version appears,
    /// every gate is offered it (a gate that cannot use it asks again).
    pub async fn run(self, deliver: impl Fn(Outbound), shutdown: CancellationToken) {
        // The doors last taken in full: a failed revocation is retried next round.
        let mut doors = None;
        loop {
            let fresh_doors = self.library.read().ok().and_then(|l| l.doors());
            if fresh_doors != doors && self.take_doors(fresh_doors.clone()).await {
                doors = fresh_doors;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(MANIFEST_RESCAN) => {}
            }
            let Ok(current) = self.library.read().map(|l| l.clone()) else { return };
            let (folder, venue) = (self.folder.clone(), self.venue);
            let Ok(fresh) = tokio::task::spawn_blocking(move || current.rescan(&folder, venue)).await else { return };
            let newest = |l: &Library| l.newest().map(|h| h.offer);
            let announce = match self.library.write() {
                Ok(mut held) if *held != fresh => {
                    let announce = (newest(&fresh) != newest(&held)).then(|| newest(&fresh)).flatten();
                    *held = fresh;
                    announce
                }
                _ => None,
            };
            if let Some(offer) = announce {
                tracing::info!(version = offer.version, "new manifest: offered to every gate");
                let frame = self.hub_key.seal(HUB_ID, Recipient::Everyone, &HubMessage::Offer(offer).encode());
                deliver(Outbound::All(frame));
            }
        }
    }

    /// Shows the doors on the dashboard and revokes the gates the cloud
    /// revoked; `false` if a revocation could not be stored.
    async fn take_doors(&self, doors: Option<std::sync::Arc<ManifestDoors>>) -> bool {
        self.status.set_doors(doors.clone());
        let revoked: Vec<String> =
            doors.iter().flat_map(|d| d.layout.gates.iter().filter(|g| g.revoked).map(|g| g.gate_id.clone())).collect();
        if revoked.is_empty() {
            return true;
        }
        let db = self.hub_db.clone();
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let result = tokio::task::spawn_blocking(move || {
            let store = HubStore::open(&db)?;
            let enrolled = store.gates()?;
            let mut newly = Vec::new();
            for gate in enrolled.iter().filter(|g| g.revoked_ms.is_none() && revoked.contains(&g.gate_id)) {
                store.revoke(&gate.gate_id, now_ms as u64)?;
                newly.push(gate.gate_id.clone());
            }
            Ok::<_, crate::store::StoreError>(newly)
        })
        .await;
        match result {
            Ok(Ok(newly)) => {
                for gate in newly {
                    tracing::warn!(gate, "gate revoked in the cloud: revoked here");
                    self.status.enrolled(&gate, true);
                }
                true
            }
            Ok(Err(why)) => {
                tracing::error!(%why, "revoking the cloud's revoked gates failed; retried in a moment");
                false
            }
            Err(_) => false,
        }
    }
}
