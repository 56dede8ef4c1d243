//! The `projects` table (and the experiment summaries a project page lists).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::{Result, unique_violation};
use crate::types::{ExperimentSummary, Project, RecentExperiment};

#[derive(Debug, sqlx::FromRow)]
struct ProjectRow {
    id: Uuid,
    name: String,
    description: String,
    notes: String,
    owner_id: Option<Uuid>,
    experiment_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ProjectRow> for Project {
    fn from(r: ProjectRow) -> Self {
        Project {
            id: r.id,
            name: r.name,
            description: r.description,
            notes: r.notes,
            owner_id: r.owner_id,
            experiment_count: r.experiment_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

macro_rules! select_projects {
    ($tail:literal) => {
        concat!(
            "SELECT p.id, p.name, p.description, p.notes, p.owner_id, p.created_at, p.updated_at, ",
            "(SELECT COUNT(*) FROM experiments e WHERE e.project_id = p.id) AS experiment_count ",
            "FROM projects p ",
            $tail
        )
    };
}

const NAME_TAKEN: &str = "a project with this name already exists";

pub async fn insert(
    db: &Db,
    name: &str,
    description: &str,
    notes: &str,
    owner_id: Option<Uuid>,
) -> Result<Project> {
    let id = Uuid::new_v4();
    let now = Utc::now();
    on_db!(db, p => sqlx::query(
        "INSERT INTO projects (id, name, description, notes, owner_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)")
        .bind(id).bind(name).bind(description).bind(notes).bind(owner_id).bind(now)
        .execute(p).await.map(|r| r.rows_affected()))
    .map_err(unique_violation("name", NAME_TAKEN))?;
    get(db, id).await?.ok_or(crate::Error::NotFound("project"))
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Project>> {
    let sql = select_projects!("WHERE p.id = $1");
    let row =
        on_db!(db, p => sqlx::query_as::<_, ProjectRow>(sql).bind(id).fetch_optional(p).await)?;
    Ok(row.map(Project::from))
}

/// Projects, most recently updated first.
pub async fn list(db: &Db, limit: i64, offset: i64) -> Result<Vec<Project>> {
    let sql = select_projects!("ORDER BY p.updated_at DESC, p.name LIMIT $1 OFFSET $2");
    let rows = on_db!(db, p => sqlx::query_as::<_, ProjectRow>(sql).bind(limit).bind(offset).fetch_all(p).await)?;
    Ok(rows.into_iter().map(Project::from).collect())
}

pub async fn count(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM projects").fetch_one(p).await)?)
}

/// Writes the given fields (all already validated); returns false when the project is gone.
pub async fn update(db: &Db, id: Uuid, name: &str, description: &str, notes: &str) -> Result<bool> {
    let r = on_db!(db, p => sqlx::query(
        "UPDATE projects SET name = $2, description = $3, notes = $4, updated_at = $5 WHERE id = $1")
        .bind(id).bind(name).bind(description).bind(notes).bind(Utc::now())
        .execute(p).await.map(|r| r.rows_affected()))
    .map_err(unique_violation("name", NAME_TAKEN))?;
    Ok(r == 1)
}

/// Deletes a project; its experiments, runs, stage results and scores go with it (cascade).
pub async fn delete(db: &Db, id: Uuid) -> Result<bool> {
    let r = on_db!(db, p => sqlx::query("DELETE FROM projects WHERE id = $1").bind(id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

#[derive(Debug, sqlx::FromRow)]
struct ExperimentSummaryRow {
    id: Uuid,
    name: String,
    description: String,
    status: String,
    run_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

pub async fn experiment_summaries(db: &Db, project_id: Uuid) -> Result<Vec<ExperimentSummary>> {
    let sql = "SELECT e.id, e.name, e.description, e.status, e.created_at, e.updated_at, \
               (SELECT COUNT(*) FROM runs r WHERE r.experiment_id = e.id) AS run_count \
               FROM experiments e WHERE e.project_id = $1 ORDER BY e.updated_at DESC, e.name";
    let rows = on_db!(db, p => sqlx::query_as::<_, ExperimentSummaryRow>(sql).bind(project_id).fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(|r| ExperimentSummary {
            id: r.id,
            name: r.name,
            description: r.description,
            status: r.status,
            run_count: r.run_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
            sweep_status: None,
            progress: None,
            best_score: None,
            best_label: None,
        })
        .collect())
}

#[derive(Debug, sqlx::FromRow)]
struct RecentRow {
    id: Uuid,
    name: String,
    status: String,
    run_count: i64,
    project_id: Uuid,
    project_name: String,
    updated_at: DateTime<Utc>,
}

/// The experiments changed most recently, across projects, with their project's name.
pub async fn recent_experiments(db: &Db, limit: i64) -> Result<Vec<RecentExperiment>> {
    let sql = "SELECT e.id, e.name, e.status, e.updated_at, e.project_id, p.name AS project_name, \
               (SELECT COUNT(*) FROM runs r WHERE r.experiment_id = e.id) AS run_count \
               FROM experiments e JOIN projects p ON p.id = e.project_id \
               ORDER BY e.updated_at DESC, e.name LIMIT $1";
    let rows = on_db!(db, p => sqlx::query_as::<_, RecentRow>(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(|r| RecentExperiment {
            id: r.id,
            name: r.name,
            status: r.status,
            run_count: r.run_count,
            project_id: r.project_id,
            project_name: r.project_name,
            updated_at: r.updated_at,
        })
        .collect())
}
