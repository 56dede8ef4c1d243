//! Project operations: the one implementation behind the dashboard, REST and (later) MCP.

use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::store::projects as store;
use crate::types::{NewProject, Project, ProjectDetail, ProjectUpdate};
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

pub async fn get_project(core: &Core, _actor: &Actor, id: Uuid) -> Result<ProjectDetail> {
    let project = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("project"))?;
    let experiments = store::experiment_summaries(&core.db, id).await?;
    Ok(ProjectDetail {
        project,
        experiments,
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
