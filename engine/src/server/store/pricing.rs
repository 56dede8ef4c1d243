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

/// Inserts a price only if the model has none (keeps the admin's edits).
pub async fn insert_default(db: &Db, price: &ModelPrice) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO model_pricing (model, input_per_million, output_per_million, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (model) DO NOTHING")
        .bind(&price.model).bind(price.input_per_million).bind(price.output_per_million).bind(Utc::now())
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The models stage results were priced on.
pub async fn models_used(db: &Db) -> Result<Vec<String>> {
    Ok(
        on_db!(db, p => sqlx::query_scalar("SELECT DISTINCT model_used FROM stage_results")
        .fetch_all(p).await)?,
    )
}

/// Writes price changes and re-prices what they change, in one transaction: `upserts` and
/// `delete` change the table; each `(model, price)` of `reprice` sets the cost of every stage
/// run on that model (none when the price is unknown), each affected run's cost (the sum of
/// its stages', none if any stage has none), and marks the leaderboards of the experiments
/// concerned for recomputing. Returns whether `delete` removed a price.
pub async fn apply(
    db: &Db,
    upserts: &[ModelPrice],
    delete: Option<&str>,
    reprice: &[(String, Option<(f64, f64)>)],
) -> Result<bool> {
    use super::leaderboard::bump_all_on;
    const UPSERT: &str = "INSERT INTO model_pricing (model, input_per_million, output_per_million, updated_at) \
        VALUES ($1, $2, $3, $4) ON CONFLICT (model) DO UPDATE SET input_per_million = excluded.input_per_million, \
        output_per_million = excluded.output_per_million, updated_at = excluded.updated_at";
    const STAGES: &str = "UPDATE stage_results SET cost_estimate = CASE WHEN $2 IS NULL THEN NULL \
        ELSE (tokens_in * $2 + tokens_out * $3) / 1000000.0 END WHERE model_used = $1";
    const RUNS: &str = "UPDATE runs SET cost_estimate = (SELECT CASE WHEN COUNT(*) = COUNT(s.cost_estimate) \
        THEN SUM(s.cost_estimate) END FROM stage_results s WHERE s.run_id = runs.id) \
        WHERE id IN (SELECT run_id FROM stage_results WHERE model_used = $1)";
    const EXPERIMENTS: &str = "SELECT DISTINCT r.experiment_id FROM runs r \
        JOIN stage_results s ON s.run_id = r.id WHERE s.model_used = $1";
    let now = Utc::now();
    let deleted = on_db!(db, p => {
        let mut tx = p.begin().await?;
        for price in upserts {
            sqlx::query(UPSERT).bind(&price.model).bind(price.input_per_million)
                .bind(price.output_per_million).bind(now).execute(&mut *tx).await?;
        }
        let mut deleted = 0;
        if let Some(model) = delete {
            deleted = sqlx::query("DELETE FROM model_pricing WHERE model = $1").bind(model)
                .execute(&mut *tx).await?.rows_affected();
        }
        let mut experiments = std::collections::BTreeSet::new();
        for (model, price) in reprice {
            sqlx::query(STAGES).bind(model).bind(price.map(|p| p.0)).bind(price.map(|p| p.1))
                .execute(&mut *tx).await?;
            sqlx::query(RUNS).bind(model).execute(&mut *tx).await?;
            let ids: Vec<uuid::Uuid> = sqlx::query_scalar(EXPERIMENTS).bind(model).fetch_all(&mut *tx).await?;
            experiments.extend(ids);
        }
        for e in experiments {
            bump_all_on(&mut *tx, e).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(deleted)
    })?;
    Ok(deleted == 1)
}
