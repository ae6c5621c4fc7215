//! Who is calling: argon2id password hashes, signed access tokens (HS256 JWT)
//! and the roles that gate each endpoint.
//!
//! Customers, organizers and admins log in with a password; a venue hub holds
//! a long-lived device token naming its venue, which an admin or the venue's
//! organizer issues and can revoke.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::common::error::ApiError;
use crate::db::Db;

/// What any area needs to name the caller of a request and read the store.
#[derive(Clone, FromRef)]
pub struct Access {
    /// The store.
    pub db: Db,
    /// Access tokens.
    pub tokens: Arc<Tokens>,
}

/// The roles that run venues and events.
pub const RUNNERS: &[Role] = &[Role::Organizer, Role::Admin];

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Buys tickets; sees only their own orders and tickets.
    Customer,
    /// Runs venues and events they own.
    Organizer,
    /// Runs everything.
    Admin,
    /// A venue hub: reads its venue's manifest and sends its scans.
    Hub,
}

impl Role {
    /// The role's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Organizer => "organizer",
            Self::Admin => "admin",
            Self::Hub => "hub",
        }
    }

    /// Parses a stored role name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Customer, Self::Organizer, Self::Admin, Self::Hub].into_iter().find(|r| r.as_str() == text)
    }
}

/// The claims inside an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id, or device id for [`Role::Hub`] (a string, as JWT requires).
    pub sub: String,
    /// The caller's role.
    pub role: Role,
    /// The venue of a hub device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<i64>,
    /// A person's sign-in session ([`crate::accounts::sessions`]); hub devices have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<i64>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

/// Signs and checks access tokens with the service's secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Lifetime of a login token, seconds.
    pub login_ttl: i64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(..)")
    }
}

/// Lifetime of a hub device token: a venue box may sit offline for a season.
pub const DEVICE_TOKEN_TTL: i64 = 400 * 24 * 3600;

impl Tokens {
    /// Keys from the shared secret (at least 32 bytes; checked by the config).
    pub fn new(secret: &[u8], login_ttl: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            login_ttl,
        }
    }

    /// Signs a token without a session: a hub device's (people's tokens come
    /// from [`crate::accounts::sessions::open`]).
    pub fn issue(&self, sub: i64, role: Role, venue: Option<i64>, now: i64, ttl: i64) -> Result<String, ApiError> {
        self.sign(&Claims { sub: sub.to_string(), role, venue, sid: None, iat: now, exp: now.saturating_add(ttl) })
    }

    /// Signs a person's token for sign-in session `session`.
    pub fn issue_for_session(
        &self,
        user: i64,
        role: Role,
        session: i64,
        now: i64,
        ttl: i64,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user.to_string(),
            role,
            venue: None,
            sid: Some(session),
            iat: now,
            exp: now.saturating_add(ttl),
        };
        self.sign(&claims)
    }

    fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("token signing: {e}")))
    }

    /// Checks a token's signature and expiry.
    pub fn check(&self, token: &str) -> Result<Claims, ApiError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(ApiError::Unauthenticated("access token expired"))
            }
            Err(_) => Err(ApiError::Unauthenticated("access token invalid")),
        }
    }
}

/// What a wallet link grants: showing one ticket, nothing else. Its audience
/// keeps it from passing as a login token, and login tokens from passing as it.
#[derive(Debug, Serialize, Deserialize)]
struct WalletClaims {
    sub: String,
    aud: String,
    exp: i64,
}

const WALLET_AUDIENCE: &str = "tixgate-wallet";

impl Tokens {
    /// A link token for the wallet page of ticket `ticket_id`, valid until `until`.
    pub fn wallet_token(&self, ticket_id: i64, until: i64) -> Result<String, ApiError> {
        let claims = WalletClaims { sub: ticket_id.to_string(), aud: WALLET_AUDIENCE.into(), exp: until };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("token signing: {e}")))
    }

    /// The ticket a wallet link token opens.
    pub fn wallet_ticket(&self, token: &str) -> Result<i64, ApiError> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[WALLET_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        match jsonwebtoken::decode::<WalletClaims>(token, &self.decoding, &validation) {
            Ok(data) => data.claims.sub.parse().map_err(|_| ApiError::Unauthenticated("wallet link invalid")),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(ApiError::Unauthenticated("wallet link expired"))
            }
            Err(_) => Err(ApiError::Unauthenticated("wallet link invalid")),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// User or device id.
    pub id: i64,
    /// Role.
    pub role: Role,
    /// A hub's venue.
    pub venue: Option<i64>,
}

impl Caller {
    /// Someone without a token: sees what a customer sees of public things.
    /// No user has id 0.
    pub const ANONYMOUS: Self = Self { id: 0, role: Role::Customer, venue: None };

    /// Refuses unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) { Ok(()) } else { Err(ApiError::Forbidden("your role may not do this")) }
    }

    /// Refuses hub devices: only people buy and manage.
    pub fn require_person(&self) -> Result<(), ApiError> {
        self.require(&[Role::Customer, Role::Organizer, Role::Admin])
    }

    /// Whether the caller is the person with this user id (device ids are a
    /// separate numbering, so a hub is never anyone's user).
    pub fn is_user(&self, user_id: i64) -> bool {
        self.role != Role::Hub && self.id == user_id
    }

    /// Whether the caller may manage what `owner_id` set up: an admin, or that
    /// user as an organizer.
    pub fn manages(&self, owner_id: i64) -> bool {
        self.is_admin() || (self.role == Role::Organizer && self.is_user(owner_id))
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller runs events (an organizer or an admin).
    pub fn is_runner(&self) -> bool {
        matches!(self.role, Role::Organizer | Role::Admin)
    }
}

/// Any area's state that holds the store and the token keys can name the
/// caller: the extractor asks for those two things only.
impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Db: FromRef<S>,
    Arc<Tokens>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or(ApiError::Unauthenticated("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthenticated("Authorization must be `Bearer <token>`"))?;
        let claims = Arc::<Tokens>::from_ref(state).check(token.trim())?;
        Self::of_claims(&Db::from_ref(state), &claims, crate::common::clock::now()).await
    }
}

/// No `Authorization` header is an anonymous caller; a bad one is still refused.
impl<S> OptionalFromRequestParts<S> for Caller
where
    S: Send + Sync,
    Db: FromRef<S>,
    Arc<Tokens>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if parts.headers.contains_key(AUTHORIZATION) {
            <Self as FromRequestParts<S>>::from_request_parts(parts, state).await.map(Some)
        } else {
            Ok(None)
        }
    }
}

impl Caller {
    /// The caller a checked token names, once its session is found open (a
    /// person's); refused when the person signed out or their role changed.
    pub async fn of_claims(db: &Db, claims: &Claims, now: i64) -> Result<Self, ApiError> {
        let id = claims.sub.parse().map_err(|_| ApiError::Unauthenticated("access token invalid"))?;
        if claims.role != Role::Hub {
            let Some(session) = claims.sid else { return Err(ApiError::Unauthenticated("access token invalid")) };
            if !crate::accounts::sessions::is_open(db, id, session, now).await? {
                return Err(ApiError::Unauthenticated("session ended; sign in again"));
            }
        }
        Ok(Self { id, role: claims.role, venue: claims.venue })
    }
}

/// Hashes a password with argon2id and a fresh salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing: {e}")))
}

/// Checks a password against a stored PHC string, in constant time.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let stored = hash_password("correct horse").unwrap_or_default();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("correct horsE", &stored));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let tokens = Tokens::new(&[7; 32], 3600);
        let now = crate::common::clock::now();
        let token = tokens.issue(5, Role::Hub, Some(9), now, 60).unwrap_or_default();
        let claims = tokens.check(&token).ok();
        assert_eq!(claims.map(|c| (c.sub, c.role, c.venue)), Some(("5".into(), Role::Hub, Some(9))));
        let old = tokens.issue(5, Role::Customer, None, now - 7200, 3600).unwrap_or_default();
        assert!(matches!(tokens.check(&old), Err(ApiError::Unauthenticated("access token expired"))));
        let foreign = Tokens::new(&[8; 32], 3600).issue(5, Role::Admin, None, now, 60).unwrap_or_default();
        assert!(matches!(tokens.check(&foreign), Err(ApiError::Unauthenticated("access token invalid"))));
    }
}
