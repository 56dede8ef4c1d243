//! The `model_pricing` table: price per million input and output tokens.

use chrono::Utc;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::ModelPrice;

pub async fn list(db: &Db) -> Result<Vec<ModelPrice>> {
    let rows: Vec<(String, f64, f64)> = on_db!(db, p => sqlx::query_as(
        "SELECT model, input_per_million, output_per_million FROM model_pricing ORDER BY model")
        .fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(
            |(model, input_per_million, output_per_million)| ModelPrice {
                model,
                input_per_million,
                output_per_million,
            },
        )
        .collect())
}

/// Inserts or replaces a price.
pub async fn upsert(db: &Db, price: &ModelPrice) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO model_pricing (model, input_per_million, output_per_million, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (model) DO UPDATE SET input_per_million = excluded.input_per_million, \
         output_per_million = excluded.output_per_million, updated_at = excluded.updated_at")
        .bind(&price.model).bind(price.input_per_million).bind(price.output_per_million).bind(Utc::now())
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Inserts a price only if the model has none (keeps the admin's edits).
pub async fn insert_default(db: &Db, price: &ModelPrice) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO model_pricing (model, input_per_million, output_per_million, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (model) DO NOTHING")
        .bind(&price.model).bind(price.input_per_million).bind(price.output_per_million).bind(Utc::now())
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete(db: &Db, model: &str) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query("DELETE FROM model_pricing WHERE model = $1").bind(model).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
