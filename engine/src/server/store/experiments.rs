//! The `experiments` table. Stages, parameter space and scoring config are JSON; the items are
//! a dataset version (`store::datasets`), summarised here.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::{Result, unique_violation};
use crate::types::{Experiment, ItemsSummary, ParameterSpace, Stage};

#[derive(Debug, sqlx::FromRow)]
struct ExperimentRow {
    id: Uuid,
    project_id: Uuid,
    name: String,
    description: String,
    dataset_id: Uuid,
    dataset_version: i64,
    dataset_name: Option<String>,
    latest_version: i64,
    item_count: i64,
    fields: Option<Json<Vec<String>>>,
    common_fields: Option<Json<Vec<String>>>,
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
            items: ItemsSummary {
                dataset_id: r.dataset_id,
                dataset_name: r.dataset_name,
                version: r.dataset_version,
                latest_version: r.latest_version,
                count: r.item_count,
                fields: r.fields.map(|f| f.0).unwrap_or_default(),
                common_fields: r.common_fields.map(|f| f.0).unwrap_or_default(),
            },
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
            "SELECT e.id, e.project_id, e.name, e.description, e.dataset_id, e.dataset_version, ",
            "d.name AS dataset_name, d.version AS latest_version, v.item_count, v.fields, v.common_fields, ",
            "e.pipeline_stages, e.parameter_space, e.scoring_config, e.status, e.created_at, e.updated_at ",
            "FROM experiments e JOIN datasets d ON d.id = e.dataset_id ",
            "JOIN dataset_versions v ON v.dataset_id = e.dataset_id AND v.version = e.dataset_version ",
            $tail
        )
    };
}

pub const NAME_TAKEN: &str = "this project already has an experiment with this name";

/// Inserts an experiment with its webhook scorers' sealed header values, in one transaction;
/// `private`: it gets a dataset of its own (`e.items.dataset_id`, empty at version 0).
pub async fn insert(
    db: &Db,
    e: &Experiment,
    secrets: &[(String, String, String)],
    private: bool,
) -> Result<()> {
    // In a block of its own, so that a name already taken is told as such.
    on_db!(db, p => async {
        let mut tx = p.begin().await?;
        if private {
            super::datasets::create_on!(tx, e.items.dataset_id, e.project_id, None::<String>, "");
        }
        sqlx::query(
            "INSERT INTO experiments (id, project_id, name, description, dataset_id, dataset_version, pipeline_stages, \
             parameter_space, scoring_config, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(e.id).bind(e.project_id).bind(&e.name).bind(&e.description).bind(e.items.dataset_id)
            .bind(e.items.version)
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
            "UPDATE experiments SET name = $2, description = $3, dataset_id = $4, dataset_version = $9, \
             pipeline_stages = $5, parameter_space = $6, scoring_config = $7, updated_at = $8 WHERE id = $1")
            .bind(e.id).bind(&e.name).bind(&e.description).bind(e.items.dataset_id).bind(Json(&e.pipeline_stages))
            .bind(Json(&e.parameter_space)).bind(Json(&e.scoring_config)).bind(Utc::now())
            .bind(e.items.version)
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
    let sql = select_experiments!("WHERE e.id = $1");
    let row =
        on_db!(db, p => sqlx::query_as::<_, ExperimentRow>(sql).bind(id).fetch_optional(p).await)?;
    match row {
        Some(row) => Ok(Some(counted(db, row).await?)),
        None => Ok(None),
    }
}

/// The experiment, with its items' fields counted if its dataset version predates counting.
async fn counted(db: &Db, row: ExperimentRow) -> Result<Experiment> {
    let uncounted = row.fields.is_none() || row.common_fields.is_none();
    let (dataset, version) = (row.dataset_id, row.dataset_version);
    let mut e = Experiment::from(row);
    if uncounted && let Some(summary) = super::datasets::summary(db, dataset, version).await? {
        e.items = summary;
    }
    Ok(e)
}

/// Whether another experiment of the project has this name.
pub async fn name_taken(db: &Db, project_id: Uuid, name: &str, except: Uuid) -> Result<bool> {
    let n: i64 = on_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM experiments WHERE project_id = $1 AND name = $2 AND id <> $3")
        .bind(project_id).bind(name).bind(except).fetch_one(p).await)?;
    Ok(n > 0)
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
                "WHERE e.project_id = $1 ORDER BY e.updated_at DESC, e.name LIMIT $2 OFFSET $3"
            );
            on_db!(db, p => sqlx::query_as::<_, ExperimentRow>(sql).bind(project).bind(limit).bind(offset).fetch_all(p).await)?
        }
        None => {
            let sql = select_experiments!("ORDER BY e.updated_at DESC, e.name LIMIT $1 OFFSET $2");
            on_db!(db, p => sqlx::query_as::<_, ExperimentRow>(sql).bind(limit).bind(offset).fetch_all(p).await)?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(counted(db, row).await?);
    }
    Ok(out)
}

/// Deletes an experiment with its runs, and its dataset when that is its own (unnamed). A
/// delete that runs into a concurrent writer (the cascade locks many rows) is tried again.
pub async fn delete(db: &Db, id: Uuid) -> Result<bool> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match delete_once(db, id).await {
            Err(e) if attempt < 4 && super::is_transient(&e) => {
                tracing::warn!(experiment = %id, error = %e, "deleting an experiment ran into another writer; again");
            }
            other => return Ok(other? == 1),
        }
    }
}

async fn delete_once(db: &Db, id: Uuid) -> sqlx::Result<u64> {
    on_db!(db, p => async {
        let mut tx = p.begin().await?;
        let dataset: Option<Option<Uuid>> = sqlx::query_scalar("SELECT dataset_id FROM experiments WHERE id = $1")
            .bind(id).fetch_optional(&mut *tx).await?;
        let n = sqlx::query("DELETE FROM experiments WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
        if let Some(Some(dataset)) = dataset {
            sqlx::query("DELETE FROM datasets WHERE id = $1 AND name IS NULL AND NOT EXISTS \
                         (SELECT 1 FROM experiments WHERE dataset_id = $1)")
                .bind(dataset).execute(&mut *tx).await?;
        }
        tx.commit().await.map(|_| n)
    }.await)
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
