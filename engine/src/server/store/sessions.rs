//! The `sessions` table behind browser sessions (the data is an opaque JSON record).

use chrono::{DateTime, Utc};

use super::{Db, on_db};
use crate::server::error::Result;

/// Inserts a session; returns false if the id is taken (the caller picks a new one).
pub async fn create(db: &Db, id: &str, data: &str, expires_at: DateTime<Utc>) -> Result<bool> {
    let r = on_db!(db, p => sqlx::query(
        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
        .bind(id).bind(data).bind(expires_at).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

pub async fn save(db: &Db, id: &str, data: &str, expires_at: DateTime<Utc>) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at")
        .bind(id).bind(data).bind(expires_at).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The session's data and expiry, if it exists and has not expired.
pub async fn load(
    db: &Db,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>)>> {
    Ok(
        on_db!(db, p => sqlx::query_as("SELECT data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2")
        .bind(id).bind(now).fetch_optional(p).await)?,
    )
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    on_db!(db, p => sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes expired sessions; returns how many.
pub async fn delete_expired(db: &Db, now: DateTime<Utc>) -> Result<u64> {
    let r = on_db!(db, p => sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r)
}
