//! Sign-in through external OpenID Connect providers (Keycloak, Auth0, …).
//!
//! The browser does the provider's login and hands us its ID token. We find
//! the provider's keys from its discovery document, check the token's
//! signature against them (RS256, ES256 or EdDSA; never a shared secret or
//! `none`), its issuer, audience (our client id) and expiry, then sign the
//! caller in: the account already linked to `(provider, subject)`, else the
//! local account with the same e-mail (linked from then on), else a new account
//! without a password; the last two only if the provider vouches that the
//! address is verified.
//!
//! Keys are cached; a token signed with a key id we do not know makes one
//! refetch (at most one every 2 s), so a provider's key rotation needs nothing
//! from us.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::accounts::auth::{Role, Tokens};
use crate::accounts::users::AccessToken;
use crate::common::error::ApiError;
use crate::db::Db;
use crate::params;

/// Refetches of a provider's keys are at least this many seconds apart, so
/// tokens with made-up key ids cannot make us hammer the provider.
const REFETCH_AFTER: i64 = 2;

/// One configured provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The name in `POST /auth/oidc/{provider}`.
    pub name: String,
    /// The issuer URL, exactly as in its tokens' `iss`.
    pub issuer: String,
    /// Our client id: the audience its ID tokens must name.
    pub client_id: String,
}

/// `POST /auth/oidc/{provider}` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcLogin {
    /// The ID token the provider issued to the browser.
    pub id_token: String,
}

/// The claims we read from an ID token.
#[derive(Debug, Clone, Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

struct Keys {
    set: JwkSet,
    fetched_at: i64,
}

struct Provider {
    config: ProviderConfig,
    keys: Mutex<Option<Keys>>,
}

/// Every configured provider, with its cached keys.
#[derive(Clone)]
pub struct Providers {
    http: reqwest::Client,
    by_name: Arc<BTreeMap<String, Provider>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Providers {
    /// Providers from the config; keys are fetched when first needed.
    pub fn new(configs: &[ProviderConfig]) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ApiError::Internal(format!("HTTP client: {e}")))?;
        let by_name =
            configs.iter().map(|c| (c.name.clone(), Provider { config: c.clone(), keys: Mutex::new(None) })).collect();
        Ok(Self { http, by_name: Arc::new(by_name) })
    }

    /// Checks an ID token from `provider`; answers its subject and claims.
    async fn verify(&self, provider: &str, id_token: &str, now: i64) -> Result<(String, IdClaims), ApiError> {
        let refused = || ApiError::Unauthenticated("ID token refused");
        let p = self.by_name.get(provider).ok_or(ApiError::NotFound("identity provider"))?;
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| refused())?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA) {
            return Err(refused());
        }
        let kid = header.kid.ok_or_else(refused)?;
        let key = self.key(p, &kid, header.alg, now).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&p.config.issuer]);
        validation.set_audience(&[&p.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 60;
        match jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation) {
            Ok(data) if !data.claims.sub.is_empty() && data.claims.sub.len() <= 255 => {
                Ok((p.config.name.clone(), data.claims))
            }
            Ok(_) => Err(refused()),
            Err(e) => {
                tracing::info!(provider, error = %e, "ID token refused");
                Err(refused())
            }
        }
    }

    /// The provider's key `kid`, refetching the key set once if it is unknown.
    async fn key(&self, p: &Provider, kid: &str, alg: Algorithm, now: i64) -> Result<DecodingKey, ApiError> {
        let mut keys = p.keys.lock().await;
        let known = keys.as_ref().and_then(|k| k.set.find(kid).cloned());
        let jwk = match known {
            Some(jwk) => jwk,
            None => {
                if keys.as_ref().is_some_and(|k| now - k.fetched_at < REFETCH_AFTER) {
                    return Err(ApiError::Unauthenticated("ID token signed with an unknown key"));
                }
                let set = self.fetch_keys(&p.config).await?;
                let found = set.find(kid).cloned();
                *keys = Some(Keys { set, fetched_at: now });
                found.ok_or(ApiError::Unauthenticated("ID token signed with an unknown key"))?
            }
        };
        // A key published for one algorithm is never used for another.
        if jwk.common.key_algorithm.is_some_and(|a| a.to_string() != format!("{alg:?}")) {
            return Err(ApiError::Unauthenticated("ID token refused"));
        }
        DecodingKey::from_jwk(&jwk).map_err(|_| ApiError::Unauthenticated("ID token refused"))
    }

    async fn fetch_keys(&self, config: &ProviderConfig) -> Result<JwkSet, ApiError> {
        let unreachable = |e: String| ApiError::Gateway(format!("identity provider {}: {e}", config.name));
        let url = format!("{}/.well-known/openid-configuration", config.issuer.trim_end_matches('/'));
        let discovery: Discovery = self.get_json(&url).await.map_err(unreachable)?;
        if discovery.issuer != config.issuer {
            return Err(unreachable(format!("its discovery names issuer {:?}", discovery.issuer)));
        }
        self.get_json(&discovery.jwks_uri).await.map_err(unreachable)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let resp = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{url}: {}", resp.status()));
        }
        resp.json().await.map_err(|e| format!("{url}: {e}"))
    }
}

/// Signs the holder of a valid ID token in, linking or creating the account.
pub async fn sign_in(
    db: &Db,
    providers: &Providers,
    tokens: &Tokens,
    provider: &str,
    login: &OidcLogin,
    now: i64,
) -> Result<AccessToken, ApiError> {
    let (provider, claims) = providers.verify(provider, &login.id_token, now).await?;
    // Two first sign-ins of one subject at once: the loser's insert is a
    // duplicate, and reading again finds the winner's link.
    let user = match account_for(db, &provider, &claims, now).await {
        Err(ApiError::Store(e)) if e.is_duplicate() => account_for(db, &provider, &claims, now).await?,
        other => other?,
    };
    let role = db.query_one("SELECT role FROM users WHERE id = ?1", params![user]).await?.text(0)?;
    let role = Role::parse(&role).ok_or(ApiError::Internal("stored role unknown".into()))?;
    Ok(AccessToken {
        access_token: crate::accounts::sessions::open(db, tokens, user, role, now).await?,
        token_type: "Bearer".into(),
        expires_in: tokens.login_ttl,
    })
}

async fn account_for(db: &Db, provider: &str, claims: &IdClaims, now: i64) -> Result<i64, ApiError> {
    let mut tx = db.begin().await?;
    let linked = tx
        .query_opt(
            "SELECT user_id FROM user_identities WHERE provider = ?1 AND subject = ?2",
            params![provider, claims.sub.clone()],
        )
        .await?;
    if let Some(row) = linked {
        return Ok(row.int(0)?);
    }
    let email = claims
        .email
        .as_deref()
        .map(str::trim)
        .map(str::to_lowercase)
        .filter(|e| e.contains('@') && e.len() <= 254)
        .ok_or(ApiError::Conflict("the provider gave no e-mail address; allow the email scope".into()))?;
    // An address the provider has not verified is never claimed: not to link to
    // an account, and not for a new one that its owner would later land in.
    if claims.email_verified != Some(true) {
        return Err(ApiError::Conflict(
            "the provider has not verified this e-mail address; verify it there first".into(),
        ));
    }
    let existing = tx.query_opt("SELECT id FROM users WHERE email = ?1", params![email.clone()]).await?;
    let user = match existing {
        Some(row) => row.int(0)?,
        None => {
            let name = claims.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| email.clone());
            // "!" is no PHC string, so no password ever matches it.
            tx.query_one(
                "INSERT INTO users (email, password_hash, name, role, created_at) VALUES (?1, '!', ?2, 'customer', ?3)
                 RETURNING id",
                params![email, name.chars().take(200).collect::<String>(), now],
            )
            .await?
            .int(0)?
        }
    };
    tx.execute(
        "INSERT INTO user_identities (provider, subject, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![provider, claims.sub.clone(), user, now],
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}
