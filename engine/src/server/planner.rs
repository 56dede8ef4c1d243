//! Sweep planning: expanding an experiment's parameter space into configurations, as a full
//! grid or as a seeded (reproducible) random sample. A configuration is a list of per-stage
//! choices (prompt variant, model, parameter values) that `runs::resolve_config` turns into
//! exactly what is sent.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::error::{Error, Result};
use crate::types::{Dimension, Experiment, StageChoice};

/// The most configurations one sweep may plan (runs are this × items × repeats).
pub const MAX_CONFIGURATIONS: usize = 100_000;

/// One stage's axes: each is a list of alternatives.
struct Axes {
    variants: Vec<Option<String>>,
    models: Vec<Option<(Option<uuid::Uuid>, String)>>,
    params: Vec<(String, Vec<Value>)>,
}

/// Parameters that only take whole numbers.
fn integral(name: &str) -> bool {
    matches!(name, "max_tokens" | "seed" | "top_k" | "n")
}

/// The values a grid takes along one dimension.
fn grid_values(stage: usize, name: &str, dim: &Dimension) -> Result<Vec<Value>> {
    match dim {
        Dimension::Values(values) => Ok(values.clone()),
        Dimension::Range { min, max, step } => {
            let Some(step) = step else {
                return Err(Error::invalid(
                    format!("parameter_space.stages[{stage}].params.{name}"),
                    "a grid needs a step for ranges (or list the values)",
                ));
            };
            let count = ((max - min) / step + 1e-9).floor() as usize + 1;
            Ok((0..count)
                .map(|i| {
                    let v = min + step * i as f64;
                    // Round away float noise (0.1 + 0.2 …) to 10 decimals.
                    let v = (v * 1e10).round() / 1e10;
                    if integral(name) {
                        json!(v.round() as i64)
                    } else {
                        json!(v)
                    }
                })
                .collect())
        }
    }
}

fn axes(e: &Experiment, for_grid: bool) -> Result<Vec<Axes>> {
    let mut all = Vec::with_capacity(e.pipeline_stages.len());
    for k in 0..e.pipeline_stages.len() {
        let space = e.parameter_space.stages.get(k);
        let variants = match space.map(|s| &s.prompts) {
            Some(p) if !p.is_empty() => p.iter().map(|v| Some(v.name.clone())).collect(),
            _ => vec![None],
        };
        let models = match space.map(|s| &s.models) {
            Some(m) if !m.is_empty() => m
                .iter()
                .map(|m| Some((m.endpoint_id, m.model.clone())))
                .collect(),
            _ => vec![None],
        };
        let mut params = Vec::new();
        for (name, dim) in space.map(|s| &s.params).into_iter().flatten() {
            let values = if for_grid {
                grid_values(k, name, dim)?
            } else {
                // Random sampling keeps ranges continuous; see `sample`.
                match dim {
                    Dimension::Values(v) => v.clone(),
                    Dimension::Range { .. } => Vec::new(),
                }
            };
            params.push((name.clone(), values));
        }
        all.push(Axes {
            variants,
            models,
            params,
        });
    }
    Ok(all)
}

fn choice(
    variant: &Option<String>,
    model: &Option<(Option<uuid::Uuid>, String)>,
    params: BTreeMap<String, Value>,
) -> StageChoice {
    StageChoice {
        variant: variant.clone(),
        model: model.as_ref().map(|(_, m)| m.clone()),
        endpoint_id: model.as_ref().and_then(|(e, _)| *e),
        params: (!params.is_empty()).then_some(params),
    }
}

/// How many configurations a grid over the experiment has (without building them).
pub fn grid_size(e: &Experiment) -> Result<usize> {
    let mut total: usize = 1;
    for a in axes(e, true)? {
        let stage = a.params.iter().fold(
            a.variants.len().saturating_mul(a.models.len()),
            |n, (_, v)| n.saturating_mul(v.len().max(1)),
        );
        total = total.saturating_mul(stage);
    }
    Ok(total)
}

/// Every combination of every stage's alternatives.
pub fn grid(e: &Experiment) -> Result<Vec<Vec<StageChoice>>> {
    let size = grid_size(e)?;
    if size > MAX_CONFIGURATIONS {
        return Err(Error::invalid(
            "parameter_space",
            format!(
                "the grid has {size} configurations; at most {MAX_CONFIGURATIONS} per sweep (sample randomly instead)"
            ),
        ));
    }
    let mut configs: Vec<Vec<StageChoice>> = vec![Vec::new()];
    for a in axes(e, true)? {
        let mut stage_choices = Vec::new();
        for variant in &a.variants {
            for model in &a.models {
                let mut combos: Vec<BTreeMap<String, Value>> = vec![BTreeMap::new()];
                for (name, values) in &a.params {
                    combos = combos
                        .into_iter()
                        .flat_map(|base| {
                            values.iter().map(move |v| {
                                let mut next = base.clone();
                                next.insert(name.clone(), v.clone());
                                next
                            })
                        })
                        .collect();
                }
                stage_choices.extend(combos.into_iter().map(|p| choice(variant, model, p)));
            }
        }
        configs = configs
            .into_iter()
            .flat_map(|prefix| {
                stage_choices.iter().map(move |c| {
                    let mut next = prefix.clone();
                    next.push(c.clone());
                    next
                })
            })
            .collect();
    }
    Ok(configs)
}

/// `samples` configurations drawn independently and uniformly: one alternative per axis,
/// ranges sampled continuously (snapped to `step` when given). The same seed gives the same
/// configurations. Duplicates are kept (they are cached, so they cost nothing twice).
pub fn sample(e: &Experiment, samples: usize, seed: u64) -> Result<Vec<Vec<StageChoice>>> {
    if samples == 0 || samples > MAX_CONFIGURATIONS {
        return Err(Error::invalid(
            "samples",
            format!("must be between 1 and {MAX_CONFIGURATIONS}"),
        ));
    }
    let stage_axes = axes(e, false)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut configs = Vec::with_capacity(samples);
    for _ in 0..samples {
        let mut config = Vec::with_capacity(stage_axes.len());
        for (k, a) in stage_axes.iter().enumerate() {
            let variant = &a.variants[rng.random_range(0..a.variants.len())];
            let model = &a.models[rng.random_range(0..a.models.len())];
            let mut params = BTreeMap::new();
            for (name, values) in &a.params {
                let value = if values.is_empty() {
                    let Some(Dimension::Range { min, max, step }) = e
                        .parameter_space
                        .stages
                        .get(k)
                        .and_then(|s| s.params.get(name))
                    else {
                        continue;
                    };
                    let mut v = if min == max {
                        *min
                    } else {
                        rng.random_range(*min..=*max)
                    };
                    if let Some(step) = step {
                        v = (min + ((v - min) / step).round() * step).min(*max);
                    }
                    let v = (v * 1e10).round() / 1e10;
                    if integral(name) {
                        json!(v.round() as i64)
                    } else {
                        json!(v)
                    }
                } else {
                    values[rng.random_range(0..values.len())].clone()
                };
                params.insert(name.clone(), value);
            }
            config.push(choice(variant, model, params));
        }
        configs.push(config);
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ModelChoice, ParameterSpace, Params, PromptVariant, Stage, StageSpace};
    use chrono::Utc;
    use uuid::Uuid;

    fn experiment(space: ParameterSpace, stages: usize) -> Experiment {
        let stage = |i: usize| Stage {
            name: format!("s{i}"),
            endpoint_id: Uuid::nil(),
            model: "m".into(),
            system: String::new(),
            user: "u".into(),
            params: Params::default(),
        };
        Experiment {
            id: Uuid::nil(),
            project_id: Uuid::nil(),
            name: "e".into(),
            description: String::new(),
            items: Default::default(),
            pipeline_stages: (0..stages).map(stage).collect(),
            parameter_space: space,
            scoring_config: json!([]),
            status: "draft".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn space() -> ParameterSpace {
        ParameterSpace {
            stages: vec![
                StageSpace {
                    prompts: ["a", "b", "c"]
                        .iter()
                        .map(|n| PromptVariant {
                            name: (*n).into(),
                            system: Some("s".into()),
                            user: None,
                        })
                        .collect(),
                    models: ["x", "y"]
                        .iter()
                        .map(|m| ModelChoice {
                            endpoint_id: None,
                            model: (*m).into(),
                        })
                        .collect(),
                    params: [(
                        "temperature".to_owned(),
                        Dimension::Range {
                            min: 0.1,
                            max: 0.9,
                            step: Some(0.2),
                        },
                    )]
                    .into(),
                },
                StageSpace {
                    prompts: Vec::new(),
                    models: Vec::new(),
                    params: [(
                        "max_tokens".to_owned(),
                        Dimension::Values(vec![json!(100), json!(200)]),
                    )]
                    .into(),
                },
            ],
        }
    }

    #[test]
    fn the_grid_is_every_combination() {
        let e = experiment(space(), 2);
        assert_eq!(grid_size(&e).unwrap(), 3 * 2 * 5 * 2);
        let configs = grid(&e).unwrap();
        assert_eq!(configs.len(), 60);
        let temps: std::collections::BTreeSet<String> = configs
            .iter()
            .map(|c| c[0].params.as_ref().unwrap()["temperature"].to_string())
            .collect();
        assert_eq!(
            temps.into_iter().collect::<Vec<_>>(),
            ["0.1", "0.3", "0.5", "0.7", "0.9"]
        );
        assert!(
            configs
                .iter()
                .all(|c| c[1].variant.is_none() && c[1].model.is_none())
        );
        let mut seen = std::collections::HashSet::new();
        assert!(
            configs
                .iter()
                .all(|c| seen.insert(serde_json::to_string(c).unwrap())),
            "no duplicates"
        );
    }

    #[test]
    fn an_empty_space_is_one_configuration_and_ranges_need_steps_in_a_grid() {
        assert_eq!(
            grid(&experiment(ParameterSpace::default(), 2))
                .unwrap()
                .len(),
            1
        );
        let mut s = space();
        s.stages[0].params.insert(
            "top_p".into(),
            Dimension::Range {
                min: 0.5,
                max: 1.0,
                step: None,
            },
        );
        let e = experiment(s, 2);
        assert_eq!(
            grid(&e).unwrap_err().field(),
            Some("parameter_space.stages[0].params.top_p")
        );
        assert_eq!(
            sample(&e, 10, 1).unwrap().len(),
            10,
            "random sampling takes continuous ranges"
        );
    }

    #[test]
    fn random_samples_are_reproducible_and_in_range() {
        let e = experiment(space(), 2);
        let a = sample(&e, 50, 42).unwrap();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&sample(&e, 50, 42).unwrap()).unwrap()
        );
        assert_ne!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&sample(&e, 50, 43).unwrap()).unwrap()
        );
        for c in &a {
            let t = c[0].params.as_ref().unwrap()["temperature"]
                .as_f64()
                .unwrap();
            assert!((0.1..=0.9).contains(&t));
            let on_step = ((t - 0.1) / 0.2).round() * 0.2 + 0.1;
            assert!((t - on_step).abs() < 1e-9, "{t} is on the 0.2 step");
            assert!(
                [json!(100), json!(200)].contains(&c[1].params.as_ref().unwrap()["max_tokens"])
            );
        }
        assert!(sample(&e, 0, 1).is_err());
    }

    #[test]
    fn huge_grids_are_refused() {
        let mut s = space();
        s.stages[0].params.insert(
            "seed".into(),
            Dimension::Range {
                min: 0.0,
                max: 9999.0,
                step: Some(1.0),
            },
        );
        let e = experiment(s, 2);
        assert_eq!(grid_size(&e).unwrap(), 600_000);
        assert_eq!(grid(&e).unwrap_err().field(), Some("parameter_space"));
    }
}
