//! The `settings` table: one JSON value per key. `Settings` is read as a whole, with defaults
//! for keys never written.

use chrono::Utc;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::Settings;

const KEY: &str = "settings";

pub async fn load(db: &Db) -> Result<Settings> {
    let raw: Option<String> = on_db!(db, p => sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(KEY).fetch_optional(p).await)?;
    Ok(match raw {
        // Fields added in later versions fall back to their defaults.
        Some(raw) => {
            let mut value = serde_json::to_value(Settings::default())
                .map_err(|e| crate::Error::Internal(e.to_string()))?;
            if let (Some(base), Ok(serde_json::Value::Object(stored))) = (
                value.as_object_mut(),
                serde_json::from_str::<serde_json::Value>(&raw),
            ) {
                base.extend(stored);
            }
            serde_json::from_value(value).unwrap_or_default()
        }
        None => Settings::default(),
    })
}

pub async fn save(db: &Db, settings: &Settings) -> Result<()> {
    let raw = serde_json::to_string(settings).map_err(|e| crate::Error::Internal(e.to_string()))?;
    on_db!(db, p => sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")
        .bind(KEY).bind(raw).bind(Utc::now()).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Sets a one-time marker; true for the one caller that set it first (safe across processes).
pub async fn claim_marker(db: &Db, key: &str) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, 'true', $2) ON CONFLICT (key) DO NOTHING")
        .bind(key).bind(Utc::now()).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
