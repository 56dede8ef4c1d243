//! `Core`: the cheap-to-clone handle every operation takes (database, secrets, settings
//! that come from the environment).

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use jsonwebtoken::{DecodingKey, EncodingKey};

use super::endpoints::ProviderRegistry;
use super::store::Db;

/// Keys derived from the server's secrets (kept outside the database). `Debug` never prints them.
pub struct Secrets {
    pub(crate) jwt_encoding: EncodingKey,
    pub(crate) jwt_decoding: DecodingKey,
    /// SHA-256 of the static `API_KEY`, if one is configured (compared in constant time).
    pub(crate) static_api_key_hash: Option<[u8; 32]>,
    /// Encrypts endpoint API keys at rest.
    cipher: XChaCha20Poly1305,
}

/// Prefix of stored ciphertexts, so the format can change later.
const SEALED_PREFIX: &str = "v1:";

impl Secrets {
    /// `encryption_secret` is the key material for endpoint API keys (any length; it is hashed).
    pub fn new(jwt_secret: &[u8], static_api_key: Option<&str>, encryption_secret: &[u8]) -> Self {
        use sha2::Digest;
        let mut key = sha2::Sha256::new();
        key.update(b"promptlooper endpoint keys v1\0");
        key.update(encryption_secret);
        let key: [u8; 32] = key.finalize().into();
        Secrets {
            jwt_encoding: EncodingKey::from_secret(jwt_secret),
            jwt_decoding: DecodingKey::from_secret(jwt_secret),
            static_api_key_hash: static_api_key.map(|k| sha2::Sha256::digest(k.as_bytes()).into()),
            cipher: XChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    /// Encrypts a secret for storage (random 192-bit nonce, authenticated).
    pub fn seal(&self, plaintext: &str) -> Result<String, crate::Error> {
        let nonce_bytes: [u8; 24] = rand::random();
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce_bytes), plaintext.as_bytes())
            .map_err(|_| crate::Error::Internal("encryption failed".into()))?;
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend(ciphertext);
        Ok(format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        ))
    }

    /// Decrypts what `seal` produced. Fails (without detail) if the data or the key changed.
    pub fn open(&self, sealed: &str) -> Result<String, crate::Error> {
        let failed = || {
            crate::Error::Internal(
                "a stored endpoint key cannot be decrypted (was the encryption key changed?)"
                    .into(),
            )
        };
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|raw| raw.len() > 24)
            .ok_or_else(failed)?;
        let (nonce, ciphertext) = raw.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| failed())?;
        let plaintext = self
            .cipher
            .decrypt(&XNonce::from(nonce), ciphertext)
            .map_err(|_| failed())?;
        String::from_utf8(plaintext).map_err(|_| failed())
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
    /// Built providers per endpoint, and their concurrency limits.
    pub providers: Arc<ProviderRegistry>,
    /// At most `MAX_CONCURRENT_RUNS` runs execute at once across the process.
    pub run_slots: Arc<tokio::sync::Semaphore>,
    /// One in-flight LLM call per cache key: identical concurrent calls wait for the first.
    pub in_flight: Arc<super::cache::InFlight>,
    pub max_concurrent_runs: usize,
    /// `MAX_TOKENS_PER_SWEEP` (none: unlimited).
    pub max_tokens_per_sweep: Option<i64>,
    /// `EVENT_RETENTION_DAYS` (none: per-run events are kept forever).
    pub event_retention_days: Option<u32>,
    /// This process's identity: owner of the run leases it holds.
    pub node: Arc<str>,
    /// Live event subscribers of this process.
    pub hub: Arc<super::events::Hub>,
    /// Commits run outcomes in groups.
    pub recorder: super::recorder::Recorder,
    /// Sweeps this process is driving.
    pub driving: Arc<super::jobs::Driving>,
    /// Set on shutdown: lanes stop claiming runs.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
    /// One lane of this process claims at a time, so a claim takes every free run slot (lanes
    /// waiting on the slots side by side would split them and claim a run or two each).
    pub claim_lock: Arc<tokio::sync::Mutex<()>>,
    /// Wakes this process's lane worker when lanes are enqueued (set by `jobs::start`).
    pub lane_wake: Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<()>>>,
    /// Notices of possible leader changes, for `new_best_found`.
    pub leader_watch: Arc<super::leaderboard::LeaderWatch>,
    /// Scoring jobs this process is driving (the heartbeat keeps them claimed).
    pub scoring_driving: Arc<super::jobs::Driving>,
    /// Background tasks shutdown waits for (scoring jobs).
    pub tasks: Arc<Tasks>,
}

/// Tasks a process runs in the background and waits for on shutdown.
#[derive(Debug, Default)]
pub struct Tasks(std::sync::Mutex<tokio::task::JoinSet<()>>);

impl Tasks {
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the ones that finished.
        while set.try_join_next().is_some() {}
        set.spawn(task);
    }

    /// Waits for every task (they watch `Core::stopping` and end soon after it is set).
    pub async fn join_all(&self) {
        loop {
            let mut set = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
            if set.is_empty() {
                return;
            }
            while set.join_next().await.is_some() {}
        }
    }
}

/// The default for `MAX_CONCURRENT_RUNS`.
pub const DEFAULT_MAX_CONCURRENT_RUNS: usize = 4;

impl Core {
    pub fn new(db: Db, secrets: Secrets) -> Self {
        Core::with_limits(db, secrets, DEFAULT_MAX_CONCURRENT_RUNS)
    }

    pub fn with_limits(db: Db, secrets: Secrets, max_concurrent_runs: usize) -> Self {
        // reqwest is built without a default TLS provider: use ring, like sqlx.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let max_concurrent_runs = max_concurrent_runs.max(1);
        let node: Arc<str> = format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
        .into();
        let hub = Arc::new(super::events::Hub::new());
        let leader_watch = Arc::new(super::leaderboard::LeaderWatch::default());
        let recorder = super::recorder::Recorder::start(
            db.clone(),
            hub.clone(),
            node.clone(),
            leader_watch.clone(),
        );
        Core {
            max_tokens_per_sweep: None,
            event_retention_days: Some(super::retention::DEFAULT_DAYS),
            node,
            hub,
            recorder,
            driving: Arc::default(),
            stopping: Arc::default(),
            lane_wake: Arc::default(),
            claim_lock: Arc::default(),
            leader_watch,
            scoring_driving: Arc::default(),
            tasks: Arc::default(),
            db,
            secrets: Arc::new(secrets),
            started_at: Instant::now(),
            providers: Arc::new(ProviderRegistry::new()),
            run_slots: Arc::new(tokio::sync::Semaphore::new(max_concurrent_runs)),
            in_flight: Arc::default(),
            max_concurrent_runs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_round_trip_and_resist_tampering() {
        let a = Secrets::new(b"jwt", None, b"key material A");
        let sealed = a.seal("sk-live-1234567890").unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("sk-live"));
        assert_ne!(
            sealed,
            a.seal("sk-live-1234567890").unwrap(),
            "nonces are random"
        );
        assert_eq!(a.open(&sealed).unwrap(), "sk-live-1234567890");
        let b = Secrets::new(b"jwt", None, b"key material B");
        assert!(b.open(&sealed).is_err(), "another key cannot open it");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(a.open(&tampered).is_err());
    }
}
