//! Experiment operations: create, read, update, delete, import sample data (items live in
//! datasets: `super::datasets`). Everything is
//! validated at save time — template syntax and variables, endpoints and models, parameter
//! ranges — with errors naming the stage and field (`pipeline_stages[1].user`).

use std::collections::BTreeSet;

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::providers::simulated;
use super::scoring;
use super::store::{endpoints, experiments as store, projects};
use super::templates;
use crate::types::{
    Dimension, EndpointKind, Experiment, ExperimentUpdate, NewExperiment, ParameterSpace, Params,
    SampleImport, SampleItem, Stage,
};
use crate::validate::{self, DESCRIPTION_MAX};

/// Most items per experiment (planning, lanes, re-scoring and exports read them page by page).
pub const MAX_ITEMS: usize = 1_000_000;
/// Most items given inline (`sample_data` in a JSON body); larger sets are imported as files.
pub const MAX_INLINE_ITEMS: usize = 10_000;
pub const MAX_STAGES: usize = 20;
pub const MAX_TEMPLATE: usize = 100_000;
pub const PAGE_MAX: i64 = 500;

pub async fn list_experiments(
    core: &Core,
    _actor: &Actor,
    project_id: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Experiment>> {
    validate::page(limit, offset, PAGE_MAX)?;
    store::list(&core.db, project_id, limit, offset).await
}

pub async fn get_experiment(core: &Core, _actor: &Actor, id: Uuid) -> Result<Experiment> {
    store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("experiment"))
}

pub async fn create_experiment(
    core: &Core,
    actor: &Actor,
    new: NewExperiment,
) -> Result<Experiment> {
    actor.require_write()?;
    if projects::get(&core.db, new.project_id).await?.is_none() {
        return Err(Error::invalid("project_id", "no such project"));
    }
    let now = Utc::now();
    let id = Uuid::new_v4();
    let dataset_id = match (&new.dataset_id, &new.dataset) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "dataset",
                "give either dataset_id or dataset (a name), not both",
            ));
        }
        (_, Some(name)) => Some(dataset_named(core, new.project_id, name).await?),
        (id, None) => *id,
    };
    let private = dataset_id.is_none();
    let items = match dataset_id {
        Some(dataset) => {
            if !new.sample_data.is_empty() {
                return Err(Error::invalid(
                    "sample_data",
                    "give either sample_data or dataset_id, not both",
                ));
            }
            shared_version(core, new.project_id, dataset, new.dataset_version).await?
        }
        None => {
            if new.dataset_version.is_some() {
                return Err(Error::invalid(
                    "dataset_version",
                    "only with dataset_id (a shared dataset)",
                ));
            }
            if new.sample_data.len() > MAX_INLINE_ITEMS {
                return Err(Error::invalid(
                    "sample_data",
                    format!(
                        "at most {MAX_INLINE_ITEMS} items inline; import larger sets as a file"
                    ),
                ));
            }
            super::datasets::check_items(&new.sample_data, "sample_data")?;
            crate::types::ItemsSummary {
                dataset_id: Uuid::new_v4(),
                count: new.sample_data.len() as i64,
                common_fields: common_inputs(&new.sample_data)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                ..Default::default()
            }
        }
    };
    let mut experiment = Experiment {
        id,
        project_id: new.project_id,
        name: validate::name("name", &new.name)?,
        description: new.description,
        items,
        pipeline_stages: new.pipeline_stages,
        parameter_space: new.parameter_space,
        scoring_config: new.scoring_config,
        status: "draft".to_owned(),
        created_at: now,
        updated_at: now,
    };
    let checked = check_experiment(core, &experiment).await?;
    experiment.scoring_config = checked.config;
    if private {
        experiment.items.count = 0;
        experiment.items.common_fields.clear();
    }
    store::insert(&core.db, &experiment, &checked.secrets, private).await?;
    if private && !new.sample_data.is_empty() {
        // The experiment exists with no items if this fails: it goes again.
        if let Err(err) = super::datasets::fill_new(core, &experiment, new.sample_data).await {
            let _ = store::delete(&core.db, id).await;
            return Err(err);
        }
    }
    store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("experiment"))
}

/// The project's dataset with this name.
async fn dataset_named(core: &Core, project_id: Uuid, name: &str) -> Result<Uuid> {
    super::store::datasets::id_by_name(&core.db, project_id, name)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "dataset",
                format!("this project has no dataset named {name:?}"),
            )
        })
}

/// A shared dataset of the project, at `version` (default its newest).
async fn shared_version(
    core: &Core,
    project_id: Uuid,
    dataset_id: Uuid,
    version: Option<i64>,
) -> Result<crate::types::ItemsSummary> {
    let row = super::store::datasets::get(&core.db, dataset_id)
        .await?
        .filter(|d| d.project_id == project_id)
        .ok_or_else(|| Error::invalid("dataset_id", "no such dataset in this project"))?;
    let version = version.unwrap_or(row.version);
    super::store::datasets::summary(&core.db, dataset_id, version)
        .await?
        .filter(|_| version >= 1 || row.version == 0)
        .ok_or_else(|| {
            Error::invalid(
                "dataset_version",
                format!("the dataset has versions 1 to {}", row.version),
            )
        })
}

pub async fn update_experiment(
    core: &Core,
    actor: &Actor,
    id: Uuid,
    update: ExperimentUpdate,
) -> Result<Experiment> {
    actor.require_write()?;
    let mut e = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    let before = e.clone();
    if let Some(name) = update.name {
        e.name = validate::name("name", &name)?;
    }
    if let Some(v) = update.description {
        e.description = v;
    }
    let named = match &update.dataset {
        Some(name) if update.dataset_id.is_some() => {
            return Err(Error::invalid(
                "dataset",
                format!("give either dataset_id or dataset ({name:?}), not both"),
            ));
        }
        Some(name) => Some(dataset_named(core, e.project_id, name).await?),
        None => update.dataset_id,
    };
    if named.is_some() || update.dataset_version.is_some() {
        let dataset = named.unwrap_or(e.items.dataset_id);
        let next = shared_version(core, e.project_id, dataset, update.dataset_version).await?;
        if next.dataset_id != e.items.dataset_id || next.version != e.items.version {
            if update.sample_data.is_some() {
                return Err(Error::invalid(
                    "sample_data",
                    "change the items or move to another dataset version, not both at once",
                ));
            }
            not_while_sweeping(core, id, "dataset_version").await?;
        }
        e.items = next;
    }
    if let Some(v) = update.pipeline_stages {
        if v != e.pipeline_stages {
            not_while_sweeping(core, id, "pipeline_stages").await?;
        }
        e.pipeline_stages = v;
    }
    if let Some(v) = update.parameter_space {
        e.parameter_space = v;
    }
    if let Some(v) = update.scoring_config {
        e.scoring_config = v;
    }
    if let Some(items) = update.sample_data {
        // Everything is checked with the new items before anything is written; then the items
        // (a new version), then the rest.
        super::datasets::editable(core, id, "sample_data").await?;
        if items.len() > MAX_INLINE_ITEMS {
            return Err(Error::invalid(
                "sample_data",
                format!("at most {MAX_INLINE_ITEMS} items inline; import larger sets as a file"),
            ));
        }
        super::datasets::check_items(&items, "sample_data")?;
        let mut prospective = e.clone();
        prospective.items.count = items.len() as i64;
        prospective.items.common_fields = common_inputs(&items)
            .unwrap_or_default()
            .into_iter()
            .collect();
        check_experiment(core, &prospective).await?;
        if e.name != before.name && store::name_taken(&core.db, e.project_id, &e.name, id).await? {
            return Err(Error::conflict("name", store::NAME_TAKEN));
        }
        e.items = super::datasets::replace(core, actor, &e, items, "sample_data").await?;
    }
    save(core, actor, &before, e).await
}

/// Checks and stores a changed experiment; when its scorers or references changed, the
/// scores of removed scorers go, the leaderboard is recomputed, and a job re-scores what
/// changed (new or changed scorers; every scorer when references changed).
async fn save(
    core: &Core,
    actor: &Actor,
    before: &Experiment,
    mut e: Experiment,
) -> Result<Experiment> {
    let checked = check_experiment(core, &e).await?;
    e.scoring_config = checked.config;
    // Items whose references change start their own re-scoring (`datasets`).
    let scoring_changed = before.scoring_config != e.scoring_config;
    let names: Vec<String> = checked.scorers.iter().map(|s| s.name.clone()).collect();
    store::update_scored(
        &core.db,
        &e,
        &checked.secrets,
        scoring_changed.then_some(names.as_slice()),
    )
    .await?;
    let saved = store::get(&core.db, e.id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    if scoring_changed {
        let (old, _) = scoring::parse_lenient(&before.scoring_config);
        let old: BTreeSet<(String, String)> = old
            .iter()
            .map(|c| (c.name.clone(), scoring::fingerprint(&c.spec)))
            .collect();
        let changed = checked
            .scorers
            .iter()
            .any(|c| !old.contains(&(c.name.clone(), scoring::fingerprint(&c.spec))));
        let mut rescoring = false;
        if !checked.scorers.is_empty() && changed {
            // Saved either way: a job that cannot start now is started by the next save or
            // `POST …/rescore`; the save itself is not undone.
            match scoring::jobs::start(core, &saved, None, false, actor.user_id()).await {
                Ok(_) => rescoring = true,
                Err(err) => {
                    tracing::warn!(experiment = %saved.id, error = %err, "could not start re-scoring after a save")
                }
            }
        }
        // A re-scoring job looks for a new leader when its scores are in; looking now would
        // recompute every summary from scores about to be replaced, while the job writes them.
        if !rescoring {
            core.leader_watch.notice(saved.id, None, "scoring_config");
        }
    }
    // Moved to other items (another version or dataset): references may differ under runs.
    let moved = before.items.dataset_id != saved.items.dataset_id
        || before.items.version != saved.items.version;
    if moved
        && !scoring_changed
        && !checked.scorers.is_empty()
        && let Err(err) = scoring::jobs::start(core, &saved, None, true, actor.user_id()).await
    {
        tracing::warn!(experiment = %saved.id, error = %err, "could not start re-scoring after the items changed");
    }
    Ok(saved)
}

pub async fn delete_experiment(core: &Core, actor: &Actor, id: Uuid) -> Result<()> {
    actor.require_write()?;
    if store::delete(&core.db, id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("experiment"))
    }
}

/// A sweep's runs refer to its dataset version's items and to the pipeline's stages: those
/// stay as they are while a sweep is running or paused.
pub(crate) async fn not_while_sweeping(core: &Core, id: Uuid, field: &str) -> Result<()> {
    match super::store::sweeps::active(&core.db, id).await? {
        Some(sweep) => Err(Error::conflict(
            field,
            format!(
                "sweep {} is {} on this experiment; stop it (or let it finish) before changing this",
                sweep.id, sweep.status
            ),
        )),
        None => Ok(()),
    }
}

/// Replaces (or extends) the items from CSV, JSON lines or a JSON array text (a new version);
/// see [`super::datasets::import`].
pub async fn import_samples(
    core: &Core,
    actor: &Actor,
    id: Uuid,
    import: SampleImport,
) -> Result<crate::types::ImportReport> {
    super::datasets::import(
        core,
        actor,
        id,
        super::datasets::Source::Text(import.content),
        super::datasets::ImportOptions {
            format: import.format,
            append: import.append,
            skip_invalid: false,
        },
    )
    .await
}

/// The input names every item of the experiment has (`None` when it has no items).
pub(crate) fn inputs_of(e: &Experiment) -> Option<BTreeSet<String>> {
    (e.items.count > 0).then(|| e.items.common_fields.iter().cloned().collect())
}

/// The input names every item has (`None` when there are no items).
pub(crate) fn common_inputs(items: &[SampleItem]) -> Option<BTreeSet<String>> {
    let mut iter = items.iter();
    let first: BTreeSet<String> = iter.next()?.input.keys().cloned().collect();
    Some(iter.fold(first, |acc, item| {
        acc.into_iter()
            .filter(|k| item.input.contains_key(k))
            .collect()
    }))
}

/// Every rule an experiment must satisfy before it is saved; returns its scoring config
/// checked and normalised.
pub async fn check_experiment(core: &Core, e: &Experiment) -> Result<scoring::check::Checked> {
    check_experiment_with(core, e, e.id).await
}

/// [`check_experiment`], keeping the webhook header values stored for `secrets_of`.
pub async fn check_experiment_with(
    core: &Core,
    e: &Experiment,
    secrets_of: Uuid,
) -> Result<scoring::check::Checked> {
    check_pipeline(core, e).await?;
    let inputs = inputs_of(e);
    scoring::check_scoring(core, &e.scoring_config, inputs.as_ref(), Some(secrets_of)).await
}

/// The rules on items, stages and the parameter space (everything but scoring).
pub async fn check_pipeline(core: &Core, e: &Experiment) -> Result<()> {
    validate::text("description", &e.description, DESCRIPTION_MAX)?;
    if e.pipeline_stages.is_empty() || e.pipeline_stages.len() > MAX_STAGES {
        return Err(Error::invalid(
            "pipeline_stages",
            format!("must have 1 to {MAX_STAGES} stages"),
        ));
    }
    let inputs = inputs_of(e);
    for (k, stage) in e.pipeline_stages.iter().enumerate() {
        check_stage(core, k, stage, inputs.as_ref()).await?;
    }
    check_space(
        core,
        &e.parameter_space,
        &e.pipeline_stages,
        inputs.as_ref(),
    )
    .await?;
    Ok(())
}

async fn check_stage(
    core: &Core,
    k: usize,
    stage: &Stage,
    inputs: Option<&BTreeSet<String>>,
) -> Result<()> {
    let at = |f: &str| format!("pipeline_stages[{k}].{f}");
    validate::name(&at("name"), &stage.name)?;
    check_model(
        core,
        stage.endpoint_id,
        &stage.model,
        &at("endpoint_id"),
        &at("model"),
    )
    .await?;
    for (field, template) in [("system", &stage.system), ("user", &stage.user)] {
        if template.len() > MAX_TEMPLATE {
            return Err(Error::invalid(
                at(field),
                format!("at most {MAX_TEMPLATE} bytes"),
            ));
        }
        templates::check(template, &at(field), k, inputs)?;
    }
    if stage.user.trim().is_empty() {
        return Err(Error::invalid(
            at("user"),
            "the user template must not be empty",
        ));
    }
    check_params(&stage.params, &at("params"))
}

async fn check_model(
    core: &Core,
    endpoint_id: Uuid,
    model: &str,
    endpoint_field: &str,
    model_field: &str,
) -> Result<()> {
    let endpoint = endpoints::get(&core.db, endpoint_id)
        .await?
        .ok_or_else(|| Error::invalid(endpoint_field, "no such endpoint"))?;
    if model.trim().is_empty() || model.len() > 200 {
        return Err(Error::invalid(model_field, "must be 1 to 200 characters"));
    }
    if endpoint.kind == EndpointKind::Simulated && !simulated::MODELS[..3].contains(&model) {
        return Err(Error::invalid(
            model_field,
            format!("unknown model {model:?} (simulated models: sim-large, sim-medium, sim-small)"),
        ));
    }
    Ok(())
}

/// Parameter ranges shared by stages, the parameter space and ad-hoc overrides.
pub fn check_params(p: &Params, field: &str) -> Result<()> {
    let bad =
        |name: &str, why: &str| Err(Error::invalid(format!("{field}.{name}"), why.to_owned()));
    if let Some(t) = p.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return bad("temperature", "must be between 0 and 2");
    }
    if let Some(t) = p.top_p
        && !(t > 0.0 && t <= 1.0)
    {
        return bad("top_p", "must be greater than 0 and at most 1");
    }
    if let Some(m) = p.max_tokens
        && !(1..=1_000_000).contains(&m)
    {
        return bad("max_tokens", "must be between 1 and 1000000");
    }
    if let Some(stop) = &p.stop
        && (stop.len() > 16 || stop.iter().any(|s| s.is_empty()))
    {
        return bad("stop", "at most 16 non-empty sequences");
    }
    for key in p.extra.keys() {
        if ["model", "messages", "stream", "system"].contains(&key.as_str()) {
            return bad(key, "is set by PromptLooper and cannot be overridden");
        }
    }
    Ok(())
}

/// Applies `name = value` to parameters: known names are typed and range-checked, anything
/// else goes to `extra`.
pub fn set_param(p: &mut Params, name: &str, value: &Value, field: &str) -> Result<()> {
    let wrong = |what: &str| Error::invalid(format!("{field}.{name}"), format!("must be {what}"));
    // Applied to a copy: a rejected value leaves `p` unchanged.
    let mut next = p.clone();
    match name {
        "temperature" => next.temperature = Some(value.as_f64().ok_or_else(|| wrong("a number"))?),
        "top_p" => next.top_p = Some(value.as_f64().ok_or_else(|| wrong("a number"))?),
        "max_tokens" => {
            next.max_tokens = Some(
                value
                    .as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| wrong("a positive integer"))?,
            )
        }
        "seed" => next.seed = Some(value.as_i64().ok_or_else(|| wrong("an integer"))?),
        "stop" => {
            next.stop = Some(
                serde_json::from_value(value.clone()).map_err(|_| wrong("a list of strings"))?,
            );
        }
        _ => {
            next.extra.insert(name.to_owned(), value.clone());
        }
    }
    check_params(&next, field)?;
    *p = next;
    Ok(())
}

async fn check_space(
    core: &Core,
    space: &ParameterSpace,
    stages: &[Stage],
    inputs: Option<&BTreeSet<String>>,
) -> Result<()> {
    if space.stages.len() > stages.len() {
        return Err(Error::invalid(
            "parameter_space.stages",
            "has more entries than the pipeline has stages",
        ));
    }
    for (k, s) in space.stages.iter().enumerate() {
        let at = |f: String| format!("parameter_space.stages[{k}].{f}");
        let mut names = BTreeSet::new();
        for (j, v) in s.prompts.iter().enumerate() {
            validate::name(&at(format!("prompts[{j}].name")), &v.name)?;
            if !names.insert(v.name.as_str()) {
                return Err(Error::invalid(
                    at(format!("prompts[{j}].name")),
                    "prompt variant names must be unique",
                ));
            }
            if v.system.is_none() && v.user.is_none() {
                return Err(Error::invalid(
                    at(format!("prompts[{j}]")),
                    "a variant must set system, user or both",
                ));
            }
            for (field, template) in [("system", &v.system), ("user", &v.user)] {
                if let Some(t) = template {
                    if t.len() > MAX_TEMPLATE {
                        return Err(Error::invalid(
                            at(format!("prompts[{j}].{field}")),
                            format!("at most {MAX_TEMPLATE} bytes"),
                        ));
                    }
                    templates::check(t, &at(format!("prompts[{j}].{field}")), k, inputs)?;
                }
            }
            if v.user.as_deref().is_some_and(|u| u.trim().is_empty()) {
                return Err(Error::invalid(
                    at(format!("prompts[{j}].user")),
                    "the user template must not be empty",
                ));
            }
        }
        for (j, m) in s.models.iter().enumerate() {
            let endpoint = m.endpoint_id.unwrap_or(stages[k].endpoint_id);
            check_model(
                core,
                endpoint,
                &m.model,
                &at(format!("models[{j}].endpoint_id")),
                &at(format!("models[{j}].model")),
            )
            .await?;
        }
        for (name, dim) in &s.params {
            let field = at(format!("params.{name}"));
            let base = at("params".to_owned());
            match dim {
                Dimension::Values(values) => {
                    if values.is_empty() || values.len() > 1000 {
                        return Err(Error::invalid(field, "must list 1 to 1000 values"));
                    }
                    for value in values {
                        set_param(&mut stages[k].params.clone(), name, value, &base)?;
                    }
                }
                Dimension::Range { min, max, step } => {
                    if !(min.is_finite() && max.is_finite() && min <= max) {
                        return Err(Error::invalid(field, "a range needs finite min <= max"));
                    }
                    if let Some(step) = step
                        && !(*step > 0.0 && (max - min) / step <= 10_000.0)
                    {
                        return Err(Error::invalid(
                            field,
                            "step must be positive and give at most 10000 values",
                        ));
                    }
                    for end in [min, max] {
                        set_param(
                            &mut stages[k].params.clone(),
                            name,
                            &serde_json::json!(end),
                            &field,
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_range_checked() {
        let mut p = Params::default();
        assert!(set_param(&mut p, "temperature", &serde_json::json!(0.3), "f").is_ok());
        assert_eq!(
            set_param(&mut p, "temperature", &serde_json::json!(3), "f")
                .unwrap_err()
                .field(),
            Some("f.temperature")
        );
        assert_eq!(p.temperature, Some(0.3), "a rejected value changes nothing");
        assert!(set_param(&mut p, "top_p", &serde_json::json!(0), "f").is_err());
        assert!(set_param(&mut p, "max_tokens", &serde_json::json!(-1), "f").is_err());
        assert!(set_param(&mut p, "presence_penalty", &serde_json::json!(0.5), "f").is_ok());
        assert!(set_param(&mut p, "messages", &serde_json::json!([]), "f").is_err());
    }
}
