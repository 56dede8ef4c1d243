//! The `llm_endpoints` table. The API key is stored sealed (see `Secrets::seal`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::{Result, unique_violation};
use crate::server::pacing::Limits;
use crate::types::{Endpoint, EndpointKind};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub kind: EndpointKind,
    pub base_url: String,
    pub api_key_enc: Option<String>,
    pub api_key_hint: Option<String>,
    pub options: Json<Value>,
    pub max_concurrency: Option<i64>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub timeout_ms: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointRow {
    pub fn to_endpoint(&self) -> Endpoint {
        Endpoint {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind,
            base_url: self.base_url.clone(),
            has_api_key: self.api_key_enc.is_some(),
            api_key_hint: self.api_key_hint.clone(),
            options: self.options.0.clone(),
            max_concurrency: self.max_concurrency,
            rpm: self.rpm,
            tpm: self.tpm,
            timeout_ms: self.timeout_ms,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

macro_rules! select_endpoints {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, kind, base_url, api_key_enc, api_key_hint, options, max_concurrency, ",
            "rpm, tpm, timeout_ms, created_at, updated_at FROM llm_endpoints ",
            $tail
        )
    };
}

const NAME_TAKEN: &str = "an endpoint with this name already exists";

/// Everything an endpoint row holds but its id and times.
pub struct EndpointFields<'a> {
    pub name: &'a str,
    pub kind: EndpointKind,
    pub base_url: &'a str,
    pub api_key_enc: Option<&'a str>,
    pub api_key_hint: Option<&'a str>,
    pub options: &'a Value,
    pub limits: Limits,
    pub timeout_ms: i64,
}

pub async fn insert(db: &Db, f: &EndpointFields<'_>) -> Result<EndpointRow> {
    let (id, now) = (Uuid::new_v4(), Utc::now());
    on_db!(db, p => sqlx::query(
        "INSERT INTO llm_endpoints (id, name, kind, base_url, api_key_enc, api_key_hint, options, \
         max_concurrency, timeout_ms, created_at, updated_at, rpm, tpm) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12)")
        .bind(id).bind(f.name).bind(f.kind.as_str()).bind(f.base_url).bind(f.api_key_enc).bind(f.api_key_hint)
        .bind(Json(f.options)).bind(f.limits.max_concurrency).bind(f.timeout_ms).bind(now)
        .bind(f.limits.rpm).bind(f.limits.tpm)
        .execute(p).await.map(|r| r.rows_affected()))
    .map_err(unique_violation("name", NAME_TAKEN))?;
    get(db, id).await?.ok_or(crate::Error::NotFound("endpoint"))
}

pub async fn update(db: &Db, id: Uuid, f: &EndpointFields<'_>) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query(
        "UPDATE llm_endpoints SET name = $2, base_url = $3, api_key_enc = $4, api_key_hint = $5, options = $6, \
         max_concurrency = $7, timeout_ms = $8, updated_at = $9, rpm = $10, tpm = $11 WHERE id = $1")
        .bind(id).bind(f.name).bind(f.base_url).bind(f.api_key_enc).bind(f.api_key_hint).bind(Json(f.options))
        .bind(f.limits.max_concurrency).bind(f.timeout_ms).bind(Utc::now()).bind(f.limits.rpm).bind(f.limits.tpm)
        .execute(p).await.map(|r| r.rows_affected()))
    .map_err(unique_violation("name", NAME_TAKEN))?;
    Ok(n == 1)
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<EndpointRow>> {
    let sql = select_endpoints!("WHERE id = $1");
    Ok(on_db!(db, p => sqlx::query_as::<_, EndpointRow>(sql).bind(id).fetch_optional(p).await)?)
}

pub async fn get_by_name(db: &Db, name: &str) -> Result<Option<EndpointRow>> {
    let sql = select_endpoints!("WHERE name = $1");
    Ok(on_db!(db, p => sqlx::query_as::<_, EndpointRow>(sql).bind(name).fetch_optional(p).await)?)
}

pub async fn list(db: &Db) -> Result<Vec<EndpointRow>> {
    let sql = select_endpoints!("ORDER BY name");
    Ok(on_db!(db, p => sqlx::query_as::<_, EndpointRow>(sql).fetch_all(p).await)?)
}

pub async fn delete(db: &Db, id: Uuid) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query("DELETE FROM llm_endpoints WHERE id = $1").bind(id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
