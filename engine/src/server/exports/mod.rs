//! Exports: the best configuration as JSON, a `.env` snippet or YAML, and a markdown report.
//! Every export is recorded (the project's export history). Exports carry what a program
//! needs to reproduce the configuration — model, endpoint URL, parameters, prompts — and never
//! a secret: no API keys, no webhook headers, and URLs without credentials or query strings.

mod formats;
mod report;

use chrono::Utc;
use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::leaderboard;
use super::store::exports::{self as store, NewExport};
use super::store::leaderboard as board_store;
use super::store::{endpoints, experiments, projects, sweeps};
use crate::types::{EXPORT_FORMATS, Experiment, ExportRecord, LeaderboardEntry};
use crate::validate;

/// An export, ready to send.
#[derive(Clone, Debug)]
pub struct Export {
    /// Its entry in the export history (`None`: exported by a viewer, which records nothing).
    pub id: Option<Uuid>,
    pub content_type: &'static str,
    pub filename: String,
    pub body: String,
}

/// One stage of the exported configuration, with its endpoint as it may be shown.
pub(super) struct StageOut {
    pub name: String,
    pub endpoint_name: Option<String>,
    pub provider: Option<String>,
    /// The endpoint's URL without credentials, query or fragment (none for simulated).
    pub endpoint: Option<String>,
    pub config: crate::types::StageConfig,
}

/// Everything an export format needs.
pub(super) struct Subject {
    pub experiment: Experiment,
    pub project_name: String,
    pub best: LeaderboardEntry,
    pub stages: Vec<StageOut>,
    pub exported_at: chrono::DateTime<Utc>,
}

/// An endpoint URL fit to show: scheme, host, port and path only.
pub fn public_url(raw: &str) -> Option<String> {
    let mut url = url::Url::parse(raw).ok()?;
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    Some(url.as_str().trim_end_matches('/').to_owned())
}

/// A name fit for a file: letters, digits and dashes.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out
        .trim_end_matches('-')
        .chars()
        .take(60)
        .collect::<String>();
    if out.is_empty() {
        "experiment".into()
    } else {
        out
    }
}

/// Which configuration an export is about: the one asked for, else the best approved one,
/// else the leader.
async fn choose(core: &Core, e: &Experiment, config_key: Option<&str>) -> Result<LeaderboardEntry> {
    leaderboard::refresh(core, e).await?;
    if let Some(key) = config_key {
        let found = board_store::full(&core.db, e.id, &[key.to_owned()])
            .await?
            .pop();
        let Some(f) = found.filter(|f| f.runs > 0) else {
            return Err(Error::invalid(
                "config_key",
                "no configuration with this key has runs in this experiment",
            ));
        };
        let marks = sweeps::marks(&core.db, e.id).await?;
        let mark = marks
            .iter()
            .find(|m| m.config_key == key)
            .map(|m| m.mark.clone());
        return Ok(leaderboard::entry(0, f, mark, e));
    }
    let approved: Vec<String> = sweeps::marks(&core.db, e.id)
        .await?
        .into_iter()
        .filter(|m| m.mark == "approved")
        .map(|m| m.config_key)
        .collect();
    if !approved.is_empty() {
        let mut candidates = board_store::full(&core.db, e.id, &approved).await?;
        candidates.retain(|f| f.score.is_some());
        candidates.sort_by(|a, b| b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)));
        if let Some(f) = candidates.into_iter().next() {
            return Ok(leaderboard::entry(0, f, Some("approved".into()), e));
        }
    }
    leaderboard::top(core, e).await?.ok_or_else(|| {
        Error::conflict(
            "experiment",
            if super::scoring::parse_lenient(&e.scoring_config).0.is_empty() {
                "nothing to export yet: the experiment has no scorers, so no configuration is best; add scorers to its scoring_config"
            } else {
                "nothing to export yet: no configuration of this experiment has a score; run a sweep first"
            },
        )
    })
}

/// `GET /api/v1/experiments/{id}/export/{format}`: `best` (JSON), `env`, `yaml` or `report`
/// (markdown), of `config_key` or the best configuration. Recorded in the export history.
pub async fn export(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    format: &str,
    config_key: Option<&str>,
) -> Result<Export> {
    if !EXPORT_FORMATS.contains(&format) {
        return Err(Error::invalid(
            "format",
            format!(
                "unknown export format {format:?} (one of {})",
                EXPORT_FORMATS.join(", ")
            ),
        ));
    }
    let experiment = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    let best = choose(core, &experiment, config_key).await?;
    let config = best
        .config
        .clone()
        .ok_or(Error::NotFound("configuration"))?;
    let mut stages = Vec::with_capacity(config.stages.len());
    for (k, s) in config.stages.into_iter().enumerate() {
        let row = endpoints::get(&core.db, s.endpoint_id).await?;
        stages.push(StageOut {
            name: experiment
                .pipeline_stages
                .get(k)
                .map_or_else(|| format!("stage {}", k + 1), |p| p.name.clone()),
            endpoint_name: row.as_ref().map(|r| r.name.clone()),
            provider: row.as_ref().map(|r| r.kind.as_str().to_owned()),
            endpoint: row
                .as_ref()
                .filter(|r| !r.base_url.is_empty())
                .and_then(|r| public_url(&r.base_url)),
            config: s,
        });
    }
    let project_name = projects::get(&core.db, experiment.project_id)
        .await?
        .map(|p| p.name)
        .unwrap_or_default();
    let subject = Subject {
        experiment,
        project_name,
        best,
        stages,
        exported_at: Utc::now(),
    };
    let (body, content_type, extension) = match format {
        "best" => (formats::json(&subject), "application/json", "json"),
        "env" => (formats::env(&subject), "text/plain; charset=utf-8", "env"),
        "yaml" => (formats::yaml(&subject)?, "application/yaml", "yaml"),
        _ => (
            report::markdown(core, &subject).await?,
            "text/markdown; charset=utf-8",
            "md",
        ),
    };
    // The history records what members and admins exported; a viewer's read writes nothing.
    let id = actor.role.can_write().then(Uuid::new_v4);
    if let Some(id) = id {
        store::insert(
            &core.db,
            &NewExport {
                id,
                project_id: subject.experiment.project_id,
                experiment_id: subject.experiment.id,
                experiment_name: &subject.experiment.name,
                format,
                config_key: &subject.best.config_key,
                score: subject.best.score,
                content: &body,
                exported_by: actor.user_id(),
                created_at: subject.exported_at,
            },
        )
        .await?;
    }
    tracing::info!(experiment = %subject.experiment.id, format, config = %subject.best.config_key, "exported");
    Ok(Export {
        id,
        content_type,
        filename: format!(
            "{}-{}.{extension}",
            slug(&subject.experiment.name),
            if format == "report" { "report" } else { "best" }
        ),
        body,
    })
}

/// The export history of an experiment or (`by_project`) a project.
pub async fn list_exports(
    core: &Core,
    _actor: &Actor,
    id: Uuid,
    by_project: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ExportRecord>, i64)> {
    validate::page(limit, offset, 1000)?;
    let exists = if by_project {
        projects::get(&core.db, id).await?.is_some()
    } else {
        experiments::get(&core.db, id).await?.is_some()
    };
    if !exists {
        return Err(Error::NotFound(if by_project {
            "project"
        } else {
            "experiment"
        }));
    }
    store::list(&core.db, id, by_project, limit, offset).await
}

/// `GET /api/v1/exports/{id}`: a past export, exactly as it was exported.
pub async fn get_export(core: &Core, _actor: &Actor, id: Uuid) -> Result<Export> {
    let (format, name, body) = store::content(&core.db, id)
        .await?
        .ok_or(Error::NotFound("export"))?;
    let (content_type, extension) = match format.as_str() {
        "best" => ("application/json", "json"),
        "env" => ("text/plain; charset=utf-8", "env"),
        "yaml" => ("application/yaml", "yaml"),
        _ => ("text/markdown; charset=utf-8", "md"),
    };
    Ok(Export {
        id: Some(id),
        content_type,
        filename: format!("{}-{format}.{extension}", slug(&name)),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            public_url("https://user:pw@api.example.com/v1/?api-key=s3cret#x").as_deref(),
            Some("https://api.example.com/v1")
        );
        assert_eq!(
            public_url("http://localhost:11434/v1").as_deref(),
            Some("http://localhost:11434/v1")
        );
        assert_eq!(
            slug("Demo: entity extraction (simulated)"),
            "demo-entity-extraction-simulated"
        );
        assert_eq!(slug("!!!"), "experiment");
    }
}
