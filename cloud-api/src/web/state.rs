//! The state the server builds once from its config, and the slice of it
//! each area's routes are given.

use std::sync::Arc;

use crate::accounts::auth::{Access, Tokens};
use crate::accounts::{self, oidc::Providers};
use crate::catalog::{self, media::MediaStore};
use crate::common::rate_limit::Limiter;
use crate::db::Db;
use crate::sale::{self, payments::Gateways};
use crate::{tickets, venue};

/// Everything the service shares between requests.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub db: Db,
    /// Access tokens.
    pub tokens: Arc<Tokens>,
    /// Signs barcodes and manifests.
    pub signer: Arc<schema::TicketSigner>,
    /// Payment gateways.
    pub gateways: Arc<Gateways>,
    /// OpenID Connect providers.
    pub oidc: Providers,
    /// Event pictures and videos.
    pub media: MediaStore,
    /// Hold and payment times, resale cap, fraud rules, webhook secret.
    pub sale: sale::Settings,
    /// The per-client limiter of the public write endpoints; `None` when off.
    pub rate_limit: Option<Limiter>,
}

impl AppState {
    /// The store and the token keys.
    pub fn access(&self) -> Access {
        Access { db: self.db.clone(), tokens: Arc::clone(&self.tokens) }
    }

    /// What the accounts' routes need.
    pub fn accounts(&self) -> accounts::Accounts {
        accounts::Accounts { db: self.db.clone(), tokens: Arc::clone(&self.tokens), oidc: self.oidc.clone() }
    }

    /// What the catalog's routes need.
    pub fn catalog(&self) -> catalog::Catalog {
        catalog::Catalog { db: self.db.clone(), tokens: Arc::clone(&self.tokens), media: Arc::clone(&self.media) }
    }

    /// What the sale's routes (and the shop's pages) need.
    pub fn shop(&self) -> sale::Shop {
        sale::Shop {
            db: self.db.clone(),
            tokens: Arc::clone(&self.tokens),
            gateways: Arc::clone(&self.gateways),
            signer: Arc::clone(&self.signer),
            settings: self.sale.clone(),
        }
    }

    /// What the tickets' routes need.
    pub fn tickets(&self) -> tickets::Tickets {
        tickets::Tickets { db: self.db.clone(), tokens: Arc::clone(&self.tokens), signer: Arc::clone(&self.signer) }
    }

    /// What the venue feed's routes need.
    pub fn venue(&self) -> venue::Venue {
        venue::Venue { db: self.db.clone(), tokens: Arc::clone(&self.tokens), signer: Arc::clone(&self.signer) }
    }
}
