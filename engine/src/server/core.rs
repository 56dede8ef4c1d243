//! `Core`: the cheap-to-clone handle every operation takes (database, secrets, settings
//! that come from the environment).

use std::sync::Arc;
use std::time::Instant;

use jsonwebtoken::{DecodingKey, EncodingKey};

use super::store::Db;

/// Keys derived from the server secret. `Debug` never prints them.
pub struct Secrets {
    pub(crate) jwt_encoding: EncodingKey,
    pub(crate) jwt_decoding: DecodingKey,
    /// SHA-256 of the static `API_KEY`, if one is configured (compared in constant time).
    pub(crate) static_api_key_hash: Option<[u8; 32]>,
}

impl Secrets {
    pub fn new(jwt_secret: &[u8], static_api_key: Option<&str>) -> Self {
        use sha2::Digest;
        Secrets {
            jwt_encoding: EncodingKey::from_secret(jwt_secret),
            jwt_decoding: DecodingKey::from_secret(jwt_secret),
            static_api_key_hash: static_api_key.map(|k| sha2::Sha256::digest(k.as_bytes()).into()),
        }
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

#[derive(Clone, Debug)]
pub struct Core {
    pub db: Db,
    pub secrets: Arc<Secrets>,
    pub started_at: Instant,
}

impl Core {
    pub fn new(db: Db, secrets: Secrets) -> Self {
        Core {
            db,
            secrets: Arc::new(secrets),
            started_at: Instant::now(),
        }
    }
}
