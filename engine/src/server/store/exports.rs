//! The `exports` table (the export history) and the totals a report shows.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::ExportRecord;

pub struct NewExport<'a> {
    pub id: Uuid,
    pub project_id: Uuid,
    pub experiment_id: Uuid,
    pub experiment_name: &'a str,
    pub format: &'a str,
    pub config_key: &'a str,
    pub score: Option<f64>,
    pub content: &'a str,
    pub exported_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(db: &Db, e: &NewExport<'_>) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO exports (id, project_id, experiment_id, experiment_name, format, config_key, score, content, \
         exported_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(e.id).bind(e.project_id).bind(e.experiment_id).bind(e.experiment_name).bind(e.format)
        .bind(e.config_key).bind(e.score).bind(e.content).bind(e.exported_by).bind(e.created_at)
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    experiment_id: Option<Uuid>,
    experiment_name: String,
    format: String,
    config_key: String,
    score: Option<f64>,
    exported_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// Exports of an experiment (`by_project`: false) or of a project, newest first.
pub async fn list(
    db: &Db,
    id: Uuid,
    by_project: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ExportRecord>, i64)> {
    // The column is one of two fixed names, never input.
    let column = if by_project {
        "project_id"
    } else {
        "experiment_id"
    };
    let rows: Vec<Row> = on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, experiment_id, experiment_name, format, config_key, score, exported_by, created_at \
         FROM exports WHERE {column} = $1 ORDER BY created_at DESC LIMIT $2 OFFSET $3")))
        .bind(id).bind(limit).bind(offset).fetch_all(p).await)?;
    let total: i64 = on_db!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM exports WHERE {column} = $1")))
        .bind(id).fetch_one(p).await)?;
    Ok((
        rows.into_iter()
            .map(|r| ExportRecord {
                id: r.id,
                experiment_id: r.experiment_id,
                experiment_name: r.experiment_name,
                format: r.format,
                config_key: r.config_key,
                score: r.score,
                exported_by: r.exported_by,
                created_at: r.created_at,
            })
            .collect(),
        total,
    ))
}

/// One export's content, as it was exported.
pub async fn content(db: &Db, id: Uuid) -> Result<Option<(String, String, String)>> {
    Ok(on_db!(db, p => sqlx::query_as(
        "SELECT format, experiment_name, content FROM exports WHERE id = $1").bind(id).fetch_optional(p).await)?)
}

/// Runs of an experiment by status: (status, runs, tokens in, tokens out, cost, runs priced).
pub async fn run_totals(
    db: &Db,
    experiment_id: Uuid,
) -> Result<Vec<(String, i64, i64, i64, f64, i64)>> {
    Ok(on_db!(db, p => sqlx::query_as(
        "SELECT status, COUNT(*), CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT), CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT), \
         CAST(COALESCE(SUM(cost_estimate), 0) AS DOUBLE PRECISION), COUNT(cost_estimate) FROM runs \
         WHERE experiment_id = $1 GROUP BY status ORDER BY status")
        .bind(experiment_id).fetch_all(p).await)?)
}
