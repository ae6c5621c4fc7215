//! Accounts: registration, login and role changes.

use serde::{Deserialize, Serialize};

use crate::accounts::auth::{self, Role, Tokens};
use crate::common::error::ApiError;
use crate::db::Db;
use crate::params;

/// Shortest password accepted.
const MIN_PASSWORD_LEN: usize = 10;
/// Longest password accepted: hashing cost must not be the caller's to choose.
const MAX_PASSWORD_LEN: usize = 1024;
/// Hashes computed at once; each takes ~19 MiB, so a login flood queues instead of exhausting memory.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Runs an argon2 computation on the blocking pool, a few at a time.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let _permit = HASHING.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(e.to_string()))
}

/// `POST /auth/register` and `POST /auth/login` bodies.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// E-mail address (the login name).
    pub email: String,
    /// Password.
    pub password: String,
    /// Display name (registration only).
    #[serde(default)]
    pub name: Option<String>,
    /// Mobile number in E.164 form, e.g. `+4915112345678`, for text messages (registration only).
    #[serde(default)]
    pub phone: Option<String>,
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct User {
    /// Id.
    pub id: i64,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Mobile number for text messages.
    pub phone: Option<String>,
}

/// A login's answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessToken {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

fn normalise_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if valid { Ok(email) } else { Err(ApiError::BadRequest("email: not an e-mail address".into())) }
}

/// E.164: `+`, then 8 to 15 digits (spaces and dashes as typed are dropped).
fn normalise_phone(phone: &str) -> Result<String, ApiError> {
    let compact: String = phone.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = compact.strip_prefix('+').unwrap_or_default();
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0') {
        Ok(compact)
    } else {
        Err(ApiError::BadRequest("phone: an E.164 number such as +4915112345678".into()))
    }
}

/// Creates an account with `role`.
pub async fn create(db: &Db, credentials: &Credentials, role: Role, now: i64) -> Result<User, ApiError> {
    let email = normalise_email(&credentials.email)?;
    if credentials.password.chars().count() < MIN_PASSWORD_LEN || credentials.password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::BadRequest(format!(
            "password: {MIN_PASSWORD_LEN} characters to {MAX_PASSWORD_LEN} bytes"
        )));
    }
    let name = credentials.name.clone().unwrap_or_default().trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::BadRequest("name: 1 to 200 characters".into()));
    }
    let phone = credentials.phone.as_deref().map(normalise_phone).transpose()?;
    let password = credentials.password.clone();
    let hash = hashing(move || auth::hash_password(&password)).await??;
    let mut tx = db.begin().await?;
    let row = tx
        .query_one(
            "INSERT INTO users (email, password_hash, name, role, created_at, phone) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             RETURNING id",
            params![email.clone(), hash, name.clone(), role.as_str(), now, phone.clone()],
        )
        .await;
    let id = match row {
        Ok(row) => row.int(0)?,
        Err(e) if e.is_duplicate() => return Err(ApiError::Conflict("email: already registered".into())),
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(User { id, email, name, role, phone })
}

/// Checks a password and issues an access token.
pub async fn login(db: &Db, tokens: &Tokens, credentials: &Credentials, now: i64) -> Result<AccessToken, ApiError> {
    const REFUSED: ApiError = ApiError::Unauthenticated("wrong e-mail or password");
    let email = normalise_email(&credentials.email).map_err(|_| REFUSED)?;
    if credentials.password.len() > MAX_PASSWORD_LEN {
        return Err(REFUSED);
    }
    let row = db.query_opt("SELECT id, password_hash, role FROM users WHERE email = ?1", params![email]).await?;
    // Unknown e-mails are hashed against too, so timing does not tell which accounts exist.
    let (id, stored, role) = match row {
        Some(row) => (Some(row.int(0)?), row.text(1)?, Role::parse(&row.text(2)?)),
        None => (None, DUMMY_HASH.clone(), None),
    };
    let password = credentials.password.clone();
    let ok = hashing(move || auth::verify_password(&password, &stored)).await?;
    match (id, role, ok) {
        (Some(id), Some(role), true) => Ok(AccessToken {
            access_token: crate::accounts::sessions::open(db, tokens, id, role, now).await?,
            token_type: "Bearer".into(),
            expires_in: tokens.login_ttl,
        }),
        _ => Err(REFUSED),
    }
}

/// A hash that no password matches, verified against for unknown e-mails.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| auth::hash_password("no account has this password").unwrap_or_default());

/// Reads one user.
pub async fn get(db: &Db, id: i64) -> Result<User, ApiError> {
    let row = db
        .query_opt("SELECT id, email, name, role, phone FROM users WHERE id = ?1", params![id])
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(User {
        id: row.int(0)?,
        email: row.text(1)?,
        name: row.text(2)?,
        role: Role::parse(&row.text(3)?).ok_or(ApiError::Internal("stored role unknown".into()))?,
        phone: row.opt_text(4)?,
    })
}

/// Changes a user's role (admins only; hub is a device role, not a person's)
/// and ends their sessions: the new role holds from their next sign-in, the
/// old one from no request on.
pub async fn set_role(db: &Db, id: i64, role: Role, now: i64) -> Result<User, ApiError> {
    if role == Role::Hub {
        return Err(ApiError::BadRequest("role: hub is for devices; issue a device token instead".into()));
    }
    let mut tx = db.begin().await?;
    if tx.execute("UPDATE users SET role = ?1 WHERE id = ?2", params![role.as_str(), id]).await? == 0 {
        return Err(ApiError::NotFound("user"));
    }
    crate::accounts::sessions::end_all(&mut tx, id, now).await?;
    tx.commit().await?;
    get(db, id).await
}
