//! Authentication and authorization: who is calling (`Actor`) and what they may do.
//!
//! Principals come from a browser session (user id + session version), a JWT from `login`,
//! an API key (`pl_…`, stored as SHA-256), the static `API_KEY`, or, when the admin allows
//! guest access, nobody at all (a read-only guest).

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::core::Core;
use super::error::{Error, Result};
use super::store::{api_keys, settings, users};
use crate::types::{Me, Role, TokenResponse, User};
use crate::validate;

/// Failed sign-ins allowed before the account is locked for a while.
pub const FREE_ATTEMPTS: i64 = 5;
/// The first lock lasts this long and doubles with each further failure, up to `MAX_LOCK`.
const FIRST_LOCK_SECS: i64 = 30;
const MAX_LOCK_SECS: i64 = 15 * 60;
/// Prefix of every generated API key, so a leaked key is easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "pl_";

/// How a request authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthVia {
    Session,
    Jwt,
    ApiKey(Uuid),
    StaticApiKey,
    Guest,
}

impl AuthVia {
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthVia::Session => "session",
            AuthVia::Jwt => "jwt",
            AuthVia::ApiKey(_) => "api_key",
            AuthVia::StaticApiKey => "static_api_key",
            AuthVia::Guest => "guest",
        }
    }
}

/// The principal behind a request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: Option<User>,
    pub role: Role,
    pub via: AuthVia,
}

impl Actor {
    pub fn user_id(&self) -> Option<Uuid> {
        self.user.as_ref().map(|u| u.id)
    }

    /// Members and admins write; guests only read.
    pub fn require_write(&self) -> Result<()> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "read-only access: this needs a member or admin",
            ))
        }
    }

    pub fn require_admin(&self) -> Result<()> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(Error::Forbidden("this needs an admin"))
        }
    }

    pub fn me(&self) -> Me {
        Me {
            user: self.user.clone(),
            role: self.role,
            via: self.via.as_str().to_owned(),
        }
    }
}

/// Hashes a password for storage (argon2id; see `passwords`).
pub async fn hash_password(password: &str) -> Result<String> {
    super::passwords::hash(password).await
}

/// A valid hash of a random password, verified against when the username is unknown so that
/// unknown and known users take the same time to reject.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn dummy_hash() -> Result<String> {
    if let Some(h) = DUMMY_HASH.get() {
        return Ok(h.clone());
    }
    let h = hash_password("not-a-real-password").await?;
    Ok(DUMMY_HASH.get_or_init(|| h).clone())
}

pub async fn needs_setup(core: &Core) -> Result<bool> {
    Ok(users::count(&core.db).await? == 0)
}

/// Creates the first admin. Only works while no user exists; afterwards it is a conflict.
pub async fn setup_admin(core: &Core, username: &str, password: &str) -> Result<User> {
    if !needs_setup(core).await? {
        return Err(Error::conflict("username", "setup is already complete"));
    }
    let username = validate::username(username)?;
    validate::password(password)?;
    let hash = hash_password(password).await?;
    match users::insert_first_admin(&core.db, &username, &hash).await? {
        Some(row) => {
            tracing::info!(username = %row.username, "first admin created");
            Ok(row.to_user())
        }
        None => Err(Error::conflict("username", "setup is already complete")),
    }
}

/// Checks a username and password. Repeated failures lock the account for a growing time;
/// while locked, the password is not even checked. The lock is read, and a failure counted,
/// in the attempt's turn at the hasher (one per core), so parallel guesses get at most one
/// more try per core than the free ones. A username without an account is counted, locked and checked (against a dummy
/// hash) exactly like one with: the answer and its timing do not tell whether it exists.
pub async fn login(core: &Core, username: &str, password: &str) -> Result<users::UserRow> {
    let Ok(username) = validate::username(username) else {
        return Err(Error::BadCredentials);
    };
    let user = users::get_by_username(&core.db, &username).await?;
    let who = match &user {
        Some(u) => users::Signer::Account(u.id),
        None => users::Signer::Unknown(&username),
    };
    let stored = match &user {
        Some(u) => u.password_hash.clone(),
        None => dummy_hash().await?,
    };
    let turn = super::passwords::turn().await?;
    let now = Utc::now();
    if let Some(until) = users::locked_until(&core.db, who, now).await? {
        return Err(Error::Locked {
            retry_after_secs: (until - now).num_seconds().max(1) as u64,
        });
    }
    let matches = turn.verify(password, &stored).await?;
    // The failure is counted before the turn passes on, so the next attempt in line sees it.
    let outcome = match user {
        Some(user) if matches => {
            users::clear_failed_logins(&core.db, user.id).await?;
            Ok(user)
        }
        _ => {
            let lock_for = |n| lock_after(n).map(Duration::seconds);
            let failures = users::record_failed_login(&core.db, who, Utc::now(), lock_for).await?;
            let locked = lock_after(failures).is_some();
            match &user {
                Some(u) => {
                    tracing::warn!(username = %u.username, failures, locked, "failed sign-in")
                }
                None => tracing::warn!(
                    failures,
                    locked,
                    "failed sign-in for a username with no account"
                ),
            }
            Err(Error::BadCredentials)
        }
    };
    drop(turn);
    outcome
}

/// How long to lock an account once `failures` consecutive sign-in attempts have not succeeded.
pub fn lock_after(failures: i64) -> Option<i64> {
    if failures < FREE_ATTEMPTS {
        return None;
    }
    let doublings = (failures - FREE_ATTEMPTS).min(10) as u32;
    Some((FIRST_LOCK_SECS << doublings).min(MAX_LOCK_SECS))
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    /// The user's session version when issued; a password or role change invalidates it.
    ver: i64,
    iat: i64,
    exp: i64,
}

/// Signs a JWT for a user, valid for the admin's configured lifetime.
pub async fn issue_token(core: &Core, user: &users::UserRow) -> Result<TokenResponse> {
    let ttl = settings::load(&core.db).await?.token_ttl_minutes;
    let now = Utc::now();
    let expires_at = now + Duration::minutes(ttl);
    let claims = Claims {
        sub: user.id,
        ver: user.session_version,
        iat: now.timestamp(),
        exp: expires_at.timestamp(),
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &core.secrets.jwt_encoding,
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(TokenResponse {
        token,
        token_type: "Bearer".to_owned(),
        expires_at,
        user: user.to_user(),
    })
}

/// Resolves an `Authorization: Bearer` credential: an API key, the static `API_KEY`, or a JWT.
pub async fn authenticate_bearer(core: &Core, credential: &str) -> Result<Actor> {
    if credential.starts_with(API_KEY_PREFIX) {
        let hash = hash_api_key(credential);
        if let Some(key) = api_keys::find_active(&core.db, &hash).await? {
            let creator = users::get(&core.db, key.created_by).await?;
            api_keys::touch(&core.db, key.id, Utc::now()).await?;
            // A key never grants more than its creator currently has.
            let Some(creator_role) = creator.as_ref().map(|u| u.role) else {
                return Err(Error::Unauthenticated);
            };
            let role = key.role.min(creator_role);
            return Ok(Actor {
                user: creator.map(|u| u.to_user()),
                role,
                via: AuthVia::ApiKey(key.id),
            });
        }
    }
    if let Some(expected) = &core.secrets.static_api_key_hash {
        let given: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        if constant_time_eq(&given, expected) {
            return Ok(Actor {
                user: None,
                role: Role::Admin,
                via: AuthVia::StaticApiKey,
            });
        }
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    let data = jsonwebtoken::decode::<Claims>(credential, &core.secrets.jwt_decoding, &validation)
        .map_err(|_| Error::Unauthenticated)?;
    session_actor(core, data.claims.sub, data.claims.ver, AuthVia::Jwt)
        .await?
        .ok_or(Error::Unauthenticated)
}

/// The actor for a user id carried by a session or token, if that user still exists and the
/// credential's session version is current.
pub async fn session_actor(
    core: &Core,
    user_id: Uuid,
    version: i64,
    via: AuthVia,
) -> Result<Option<Actor>> {
    let Some(user) = users::get(&core.db, user_id).await? else {
        return Ok(None);
    };
    if user.session_version != version {
        return Ok(None);
    }
    Ok(Some(Actor {
        role: user.role,
        user: Some(user.to_user()),
        via,
    }))
}

/// The actor for a request with no credentials: a read-only guest when the admin allows it.
pub async fn anonymous_actor(core: &Core) -> Result<Option<Actor>> {
    let allowed = settings::load(&core.db).await?.allow_guest_access;
    Ok(allowed.then_some(Actor {
        user: None,
        role: Role::Guest,
        via: AuthVia::Guest,
    }))
}

/// A new random API key and the parts stored about it: (key, prefix, hash).
pub fn generate_api_key() -> (String, String, String) {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("{API_KEY_PREFIX}{}", hex::encode(bytes));
    let prefix = key[..API_KEY_PREFIX.len() + 6].to_owned();
    let hash = hash_api_key(&key);
    (key, prefix, hash)
}

pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether a given secret equals the expected one, in time that does not depend on where they
/// differ (both are hashed first, then compared in constant time).
pub fn same_secret(given: &str, expected: &str) -> bool {
    let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    let expected: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
    constant_time_eq(&given, &expected)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_grows_and_is_capped() {
        assert_eq!(lock_after(1), None);
        assert_eq!(lock_after(4), None);
        assert_eq!(lock_after(5), Some(30));
        assert_eq!(lock_after(6), Some(60));
        assert_eq!(lock_after(100), Some(MAX_LOCK_SECS));
    }

    #[test]
    fn api_keys_are_prefixed_and_hashed() {
        let (key, prefix, hash) = generate_api_key();
        assert!(key.starts_with("pl_") && key.len() == 3 + 48);
        assert!(key.starts_with(&prefix));
        assert_eq!(hash, hash_api_key(&key));
        assert_ne!(hash, key);
    }

    #[tokio::test]
    async fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        let turn = crate::server::passwords::turn().await.unwrap();
        assert!(turn.verify("correct horse", &h).await.unwrap());
        assert!(!turn.verify("wrong horse", &h).await.unwrap());
    }
}
