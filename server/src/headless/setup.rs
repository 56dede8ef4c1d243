//! What `promptlooper run` makes from the file before the sweep: the endpoints (created, or
//! brought in line with the file) and the experiment, with every name resolved to an id.

use std::collections::HashMap;

use engine::types::{Endpoint, ModelChoice, NewExperiment, ParameterSpace, Stage, StageSpace};
use serde_json::{Value, json};
use uuid::Uuid;

use super::backend::Backend;
use super::file::{Data, Loaded, ModelSpec};
use super::{Stop, placed};

/// Makes every endpoint the file describes (or updates the one of that name); returns the ids
/// of those and of existing endpoints the file names without describing.
pub(super) async fn endpoints(
    backend: &Backend,
    l: &Loaded,
) -> Result<HashMap<String, Uuid>, Stop> {
    let existing: Vec<Endpoint> = backend
        .endpoints()
        .await
        .map_err(|f| Stop::Other(f.message))?;
    let mut ids = HashMap::new();
    for (name, spec) in &l.spec.endpoints {
        let found = existing.iter().find(|e| &e.name == name);
        let id = backend
            .ensure_endpoint(found, name, spec, l.keys.get(name).cloned())
            .await
            .map_err(|f| {
                let field = f
                    .field
                    .as_deref()
                    .map(|x| format!("endpoints.{name}.{}", x.trim_start_matches('.')))
                    .unwrap_or_else(|| format!("endpoints.{name}"));
                if f.bad_input {
                    Stop::File(l.error(&field, f.message))
                } else {
                    Stop::Other(f.message)
                }
            })?;
        ids.insert(name.clone(), id);
    }
    for e in existing {
        ids.entry(e.name).or_insert(e.id);
    }
    Ok(ids)
}

pub(super) fn lookup(
    l: &Loaded,
    ids: &HashMap<String, Uuid>,
    name: &str,
    field: &str,
) -> Result<Uuid, Stop> {
    ids.get(name).copied().ok_or_else(|| {
        let mut known: Vec<&str> = ids.keys().map(String::as_str).collect();
        known.sort();
        Stop::File(l.error(
            field,
            format!(
                "no endpoint named {name:?}: describe it under endpoints: ({})",
                if known.is_empty() {
                    "none exist yet".to_owned()
                } else {
                    format!("known: {}", known.join(", "))
                }
            ),
        ))
    })
}

/// The experiment the file describes, with endpoint names resolved to ids.
pub(super) fn experiment(
    l: &Loaded,
    project_id: Uuid,
    ids: &HashMap<String, Uuid>,
) -> Result<NewExperiment, Stop> {
    let spec = &l.spec;
    let mut stages = Vec::new();
    let mut space = ParameterSpace::default();
    for (i, s) in spec.stages.iter().enumerate() {
        let endpoint_id = lookup(l, ids, &s.endpoint, &format!("stages[{i}].endpoint"))?;
        stages.push(Stage {
            name: s.name.clone().unwrap_or_else(|| format!("stage {}", i + 1)),
            endpoint_id,
            model: s.model.clone(),
            system: s.system.clone(),
            user: s.user.clone(),
            params: s.params.clone(),
        });
        let mut models = Vec::new();
        for (j, m) in s.vary.models.iter().enumerate() {
            models.push(match m {
                ModelSpec::Name(model) => ModelChoice {
                    endpoint_id: None,
                    model: model.clone(),
                },
                ModelSpec::On { endpoint, model } => ModelChoice {
                    endpoint_id: match endpoint {
                        Some(name) => Some(lookup(
                            l,
                            ids,
                            name,
                            &format!("stages[{i}].vary.models[{j}].endpoint"),
                        )?),
                        None => None,
                    },
                    model: model.clone(),
                },
            });
        }
        space.stages.push(StageSpace {
            prompts: s.vary.prompts.clone(),
            models,
            params: s.vary.params.clone(),
        });
    }
    if space
        .stages
        .iter()
        .all(|s| s.prompts.is_empty() && s.models.is_empty() && s.params.is_empty())
    {
        space.stages.clear();
    }
    let mut scorers = Vec::new();
    for (i, s) in spec.scorers.iter().enumerate() {
        let mut s = s.clone();
        if let Some(obj) = s.as_object_mut()
            && let Some(name) = obj.remove("endpoint")
        {
            let Some(name) = name.as_str() else {
                return Err(Stop::File(l.error(
                    &format!("scorers[{i}].endpoint"),
                    "must be an endpoint's name",
                )));
            };
            let id = lookup(l, ids, name, &format!("scorers[{i}].endpoint"))?;
            obj.insert("endpoint_id".into(), json!(id));
        }
        scorers.push(s);
    }
    let (dataset, dataset_version) = match &l.data {
        Data::Dataset { name, version } => (Some(name.clone()), *version),
        _ => (None, None),
    };
    Ok(NewExperiment {
        project_id,
        name: spec.name.clone(),
        description: spec.description.clone(),
        sample_data: Vec::new(),
        dataset_id: None,
        dataset,
        dataset_version,
        pipeline_stages: stages,
        parameter_space: space,
        scoring_config: Value::Array(scorers),
    })
}

/// Creates the experiment as "<name> <time>", so each run of a file is its own experiment
/// (the cache still answers what earlier runs asked).
pub(super) async fn create(
    backend: &Backend,
    l: &Loaded,
    mut new: NewExperiment,
) -> Result<engine::types::Experiment, Stop> {
    let base = format!(
        "{} {}",
        new.name,
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S")
    );
    for attempt in 1..=20 {
        new.name = if attempt == 1 {
            base.clone()
        } else {
            format!("{base} ({attempt})")
        };
        match backend.create_experiment(&new).await {
            Ok(e) => return Ok(e),
            Err(f) if f.bad_input && f.field.as_deref() == Some("name") && attempt < 20 => {
                continue;
            }
            Err(f) => return Err(placed(l, f, "")),
        }
    }
    Err(Stop::Other("could not find a free experiment name".into()))
}
