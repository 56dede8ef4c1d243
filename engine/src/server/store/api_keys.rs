//! The `api_keys` table. Only a SHA-256 of each key is stored.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::{ApiKey, Role};

#[derive(Debug, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        ApiKey {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            role: r.role,
            created_by: r.created_by,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

macro_rules! select_keys {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, prefix, role, created_by, created_at, last_used_at, revoked_at ",
            "FROM api_keys ",
            $tail
        )
    };
}

pub async fn insert(
    db: &Db,
    name: &str,
    prefix: &str,
    key_hash: &str,
    role: Role,
    created_by: Uuid,
) -> Result<ApiKey> {
    let id = Uuid::new_v4();
    on_db!(db, p => sqlx::query(
        "INSERT INTO api_keys (id, name, prefix, key_hash, role, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(id).bind(name).bind(prefix).bind(key_hash).bind(role.as_str()).bind(created_by).bind(Utc::now())
        .execute(p).await.map(|r| r.rows_affected()))?;
    let row = on_db!(db, p => sqlx::query_as::<_, ApiKeyRow>(select_keys!("WHERE id = $1")).bind(id).fetch_one(p).await)?;
    Ok(row.into())
}

pub async fn list(db: &Db) -> Result<Vec<ApiKey>> {
    let rows = on_db!(db, p => sqlx::query_as::<_, ApiKeyRow>(select_keys!("ORDER BY created_at DESC")).fetch_all(p).await)?;
    Ok(rows.into_iter().map(ApiKey::from).collect())
}

/// The active (not revoked) key with this hash.
pub async fn find_active(db: &Db, key_hash: &str) -> Result<Option<ApiKeyRow>> {
    let sql = select_keys!("WHERE key_hash = $1 AND revoked_at IS NULL");
    Ok(on_db!(db, p => sqlx::query_as::<_, ApiKeyRow>(sql).bind(key_hash).fetch_optional(p).await)?)
}

/// Records use, at most once a minute per key so that reads stay reads.
pub async fn touch(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    let stale = now - chrono::Duration::seconds(60);
    on_db!(db, p => sqlx::query(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)")
        .bind(id).bind(now).bind(stale).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Revokes a key; returns false when no active key has this id.
pub async fn revoke(db: &Db, id: Uuid) -> Result<bool> {
    let r = on_db!(db, p => sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id).bind(Utc::now()).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

pub async fn count_active(db: &Db) -> Result<i64> {
    Ok(
        on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetch_one(p).await)?,
    )
}
