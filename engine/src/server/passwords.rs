//! Password hashing (argon2id with the crate's defaults: 19 MiB, 2 passes, 1 lane — OWASP's
//! recommendation) in memory that goes back to the system after each hash.
//!
//! argon2 needs its whole memory block for every hash. Allocated the usual way, glibc serves
//! each block from the arena of whichever blocking thread runs the hash and keeps it there
//! when it is freed (its mmap threshold rises to the size of the last freed mapping), so a
//! server that had a burst of sign-ins held on to 100–200 MB for good. Here the block is
//! reserved with a capacity above glibc's largest mmap threshold (32 MiB): such an allocation is
//! always a mapping of its own, only the pages argon2 writes become resident, and dropping it
//! unmaps it. At most one hash per core runs at a time ([`Turn`]), so the peak is bounded too.

use argon2::password_hash::phc::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::error::{Error, Result};

/// Capacity reserved for a hash's memory: above glibc's `DEFAULT_MMAP_THRESHOLD_MAX`.
const RESERVE_BYTES: usize = 33 << 20;

/// The blocks argon2 works in, for `params`; see the module documentation.
fn scratch(params: &Params) -> Vec<Block> {
    let blocks = params.block_count();
    let mut memory = Vec::with_capacity(blocks.max(RESERVE_BYTES / Block::SIZE));
    memory.resize(blocks, Block::default());
    memory
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The PHC string of `password` hashed with a fresh salt.
fn hash_now(password: &[u8]) -> Result<String> {
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(password, &salt, &mut out, scratch(&params))
        .map_err(internal)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(internal)?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(internal)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (compared in constant time).
fn verify_now(password: &[u8], hash: &str) -> Result<bool> {
    let parsed = PasswordHash::new(hash).map_err(internal)?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(internal)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(internal)?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(internal)?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(Error::Internal(
            "a stored password hash has no salt or output".into(),
        ));
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt, &mut out, scratch(&params))
        .map_err(internal)?;
    Ok(Output::new(&out).map_err(internal)? == *expected)
}

/// A turn at the hasher: at most one hash per core runs at a time, so a flood of sign-in
/// attempts queues instead of exhausting memory or starving the other blocking work. Sign-in
/// checks its lock inside its turn, so a lock being set stops every attempt still queued.
pub struct Turn(#[allow(dead_code)] tokio::sync::SemaphorePermit<'static>);

/// Waits for a turn at the hasher.
pub async fn turn() -> Result<Turn> {
    static PERMITS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    Ok(Turn(PERMITS.acquire().await.map_err(internal)?))
}

impl Turn {
    /// Hashes a password for storage.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_now(password.as_bytes()))
            .await
            .map_err(internal)?
    }

    /// Checks a password against a stored hash.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool> {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        tokio::task::spawn_blocking(move || verify_now(password.as_bytes(), &hash))
            .await
            .map_err(internal)?
    }
}

/// Hashes a password for storage, in its turn.
pub async fn hash(password: &str) -> Result<String> {
    turn().await?.hash(password).await
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[test]
    fn hashes_verify_both_ways_with_the_argon2_crate() {
        let ours = hash_now(b"correct horse").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(verify_now(b"correct horse", &ours).unwrap());
        assert!(!verify_now(b"wrong horse", &ours).unwrap());
        // The crate verifies ours, and we verify the crate's (hashes stored before this module).
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let theirs = Argon2::default()
            .hash_password(b"battery staple")
            .unwrap()
            .to_string();
        assert!(verify_now(b"battery staple", &theirs).unwrap());
        assert!(!verify_now(b"battery", &theirs).unwrap());
    }

    #[test]
    fn the_scratch_memory_is_its_own_mapping() {
        let params = Params::default();
        let memory = scratch(&params);
        assert_eq!(memory.len(), params.block_count());
        assert!(memory.capacity() * Block::SIZE >= RESERVE_BYTES);
    }
}
