//! The `experiments` table. Sample data, stages, parameter space and scoring config are JSON.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::{Result, unique_violation};
use crate::types::{Experiment, ParameterSpace, SampleItem, Stage};

#[derive(Debug, sqlx::FromRow)]
struct ExperimentRow {
    id: Uuid,
    project_id: Uuid,
    name: String,
    description: String,
    sample_data: Json<Vec<SampleItem>>,
    pipeline_stages: Json<Vec<Stage>>,
    parameter_space: Json<ParameterSpace>,
    scoring_config: Json<Value>,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ExperimentRow> for Experiment {
    fn from(r: ExperimentRow) -> Self {
        Experiment {
            id: r.id,
            project_id: r.project_id,
            name: r.name,
            description: r.description,
            sample_data: r.sample_data.0,
            pipeline_stages: r.pipeline_stages.0,
            parameter_space: r.parameter_space.0,
            scoring_config: r.scoring_config.0,
            status: r.status,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

macro_rules! select_experiments {
    ($tail:literal) => {
        concat!(
            "SELECT id, project_id, name, description, sample_data, pipeline_stages, parameter_space, ",
            "scoring_config, status, created_at, updated_at FROM experiments ",
            $tail
        )
    };
}

const NAME_TAKEN: &str = "this project already has an experiment with this name";

/// Inserts an experiment with its webhook scorers' sealed header values, in one transaction.
pub async fn insert(db: &Db, e: &Experiment, secrets: &[(String, String, String)]) -> Result<()> {
    // In a block of its own, so that a name already taken is told as such.
    on_db!(db, p => async {
        let mut tx = p.begin().await?;
        sqlx::query(
            "INSERT INTO experiments (id, project_id, name, description, sample_data, pipeline_stages, \
             parameter_space, scoring_config, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(e.id).bind(e.project_id).bind(&e.name).bind(&e.description).bind(Json(&e.sample_data))
            .bind(Json(&e.pipeline_stages)).bind(Json(&e.parameter_space)).bind(Json(&e.scoring_config))
            .bind(&e.status).bind(e.created_at).bind(e.updated_at)
            .execute(&mut *tx).await?;
        super::scores::replace_secrets_on!(tx, e.id, secrets);
        tx.commit().await
    }.await)
    .map_err(unique_violation("name", NAME_TAKEN))?;
    Ok(())
}

/// Writes every editable field of `e` (validated by the caller) with the webhook scorers'
/// sealed header values and, when the scorers changed
/// (`keep`: the names configured now), the scores of removed scorers forgotten and every
/// leaderboard entry bumped: one transaction, so a failed save changes nothing.
pub async fn update_scored(
    db: &Db,
    e: &Experiment,
    secrets: &[(String, String, String)],
    keep: Option<&[String]>,
) -> Result<bool> {
    let n = on_db!(db, p => async {
        let mut tx = p.begin().await?;
        let n = sqlx::query(
            "UPDATE experiments SET name = $2, description = $3, sample_data = $4, pipeline_stages = $5, \
             parameter_space = $6, scoring_config = $7, updated_at = $8 WHERE id = $1")
            .bind(e.id).bind(&e.name).bind(&e.description).bind(Json(&e.sample_data)).bind(Json(&e.pipeline_stages))
            .bind(Json(&e.parameter_space)).bind(Json(&e.scoring_config)).bind(Utc::now())
            .execute(&mut *tx).await?.rows_affected();
        super::scores::replace_secrets_on!(tx, e.id, secrets);
        if let Some(keep) = keep {
            super::scores::forget_removed_on!(tx, e.id, keep);
            super::leaderboard::bump_all_on(&mut *tx, e.id).await?;
        }
        tx.commit().await.map(|_| n)
    }.await)
    .map_err(unique_violation("name", NAME_TAKEN))?;
    Ok(n == 1)
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Experiment>> {
    let sql = select_experiments!("WHERE id = $1");
    let row =
        on_db!(db, p => sqlx::query_as::<_, ExperimentRow>(sql).bind(id).fetch_optional(p).await)?;
    Ok(row.map(Experiment::from))
}

/// When the experiment was last saved (`None`: it no longer exists).
pub async fn updated_at(db: &Db, id: Uuid) -> Result<Option<DateTime<Utc>>> {
    Ok(
        on_db!(db, p => sqlx::query_scalar("SELECT updated_at FROM experiments WHERE id = $1")
        .bind(id).fetch_optional(p).await)?,
    )
}

pub async fn list(
    db: &Db,
    project_id: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Experiment>> {
    let rows = match project_id {
        Some(project) => {
            let sql = select_experiments!(
                "WHERE project_id = $1 ORDER BY updated_at DESC, name LIMIT $2 OFFSET $3"
            );
            on_db!(db, p => sqlx::query_as::<_, ExperimentRow>(sql).bind(project).bind(limit).bind(offset).fetch_all(p).await)?
        }
        None => {
            let sql = select_experiments!("ORDER BY updated_at DESC, name LIMIT $1 OFFSET $2");
            on_db!(db, p => sqlx::query_as::<_, ExperimentRow>(sql).bind(limit).bind(offset).fetch_all(p).await)?
        }
    };
    Ok(rows.into_iter().map(Experiment::from).collect())
}

pub async fn delete(db: &Db, id: Uuid) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query("DELETE FROM experiments WHERE id = $1").bind(id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Names of experiments whose stages or parameter space name this endpoint.
pub async fn names_using_endpoint(db: &Db, endpoint_id: Uuid) -> Result<Vec<String>> {
    let rows: Vec<(String, Json<Vec<Stage>>, Json<ParameterSpace>)> = on_db!(db, p => sqlx::query_as(
        "SELECT name, pipeline_stages, parameter_space FROM experiments").fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .filter(|(_, stages, space)| {
            stages.0.iter().any(|s| s.endpoint_id == endpoint_id)
                || space
                    .0
                    .stages
                    .iter()
                    .any(|s| s.models.iter().any(|m| m.endpoint_id == Some(endpoint_id)))
        })
        .map(|(name, _, _)| name)
        .collect())
}
