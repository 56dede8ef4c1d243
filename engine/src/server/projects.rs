//! Project operations: the one implementation behind the dashboard, REST and (later) MCP.

use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::store::projects as store;
use crate::types::{ApprovedConfig, NewProject, Project, ProjectDetail, ProjectUpdate};
use crate::validate::{self, DESCRIPTION_MAX, NOTES_MAX};

/// At most this many projects per page.
pub const PAGE_MAX: i64 = 500;

pub async fn list_projects(
    core: &Core,
    _actor: &Actor,
    limit: i64,
    offset: i64,
) -> Result<Vec<Project>> {
    validate::page(limit, offset, PAGE_MAX)?;
    store::list(&core.db, limit, offset).await
}

pub async fn get_project(core: &Core, actor: &Actor, id: Uuid) -> Result<ProjectDetail> {
    let project = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("project"))?;
    let mut experiments = store::experiment_summaries(&core.db, id).await?;
    let mut approved = Vec::new();
    for summary in &mut experiments {
        let Some(e) = super::store::experiments::get(&core.db, summary.id).await? else {
            continue;
        };
        if let Some(sweep) = super::store::sweeps::latest(&core.db, e.id).await? {
            summary.progress = Some(sweep.progress());
            summary.sweep_status = Some(sweep.status.clone());
        }
        // An experiment deleted while this page is read is left out, not an error.
        match super::leaderboard::top(core, &e).await {
            Ok(Some(top)) => {
                summary.best_score = top.score;
                summary.best_label = Some(top.label);
            }
            Ok(None) | Err(Error::NotFound(_)) => {}
            Err(other) => return Err(other),
        }
        let marks = match super::sweeps::list_marks(core, actor, e.id).await {
            Ok(m) => m,
            Err(Error::NotFound(_)) => continue,
            Err(other) => return Err(other),
        };
        let marks: Vec<_> = marks.into_iter().filter(|m| m.mark == "approved").collect();
        let keys: Vec<String> = marks.iter().map(|m| m.config_key.clone()).collect();
        let scores: std::collections::HashMap<String, Option<f64>> =
            super::store::leaderboard::full(&core.db, e.id, &keys)
                .await?
                .into_iter()
                .map(|f| (f.config_key, f.score))
                .collect();
        approved.extend(marks.into_iter().map(|m| {
            ApprovedConfig {
                experiment_id: e.id,
                experiment_name: e.name.clone(),
                label: m
                    .config
                    .as_ref()
                    .map(|c| super::leaderboard::label(c, &e))
                    .unwrap_or_default(),
                score: scores.get(&m.config_key).copied().flatten(),
                config_key: m.config_key,
                note: m.note,
                marked_at: m.marked_at,
            }
        }));
    }
    approved.sort_by_key(|a| std::cmp::Reverse(a.marked_at));
    let (exports, export_total) =
        super::exports::list_exports(core, actor, id, true, 20, 0).await?;
    Ok(ProjectDetail {
        project,
        experiments,
        approved,
        exports,
        export_total,
    })
}

pub async fn create_project(core: &Core, actor: &Actor, new: NewProject) -> Result<Project> {
    actor.require_write()?;
    let name = validate::name("name", &new.name)?;
    validate::text("description", &new.description, DESCRIPTION_MAX)?;
    validate::text("notes", &new.notes, NOTES_MAX)?;
    store::insert(
        &core.db,
        &name,
        &new.description,
        &new.notes,
        actor.user_id(),
    )
    .await
}

pub async fn update_project(
    core: &Core,
    actor: &Actor,
    id: Uuid,
    update: ProjectUpdate,
) -> Result<Project> {
    actor.require_write()?;
    let current = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("project"))?;
    let name = match &update.name {
        Some(n) => validate::name("name", n)?,
        None => current.name,
    };
    let description = update.description.unwrap_or(current.description);
    validate::text("description", &description, DESCRIPTION_MAX)?;
    let notes = update.notes.unwrap_or(current.notes);
    validate::text("notes", &notes, NOTES_MAX)?;
    if !store::update(&core.db, id, &name, &description, &notes).await? {
        return Err(Error::NotFound("project"));
    }
    store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("project"))
}

/// Deletes a project with all its experiments and runs.
pub async fn delete_project(core: &Core, actor: &Actor, id: Uuid) -> Result<()> {
    actor.require_write()?;
    if store::delete(&core.db, id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("project"))
    }
}
