//! The parameter space as a search sees it: one dimension per stage's variant, model and
//! parameter. A point is one number per dimension (a categorical option's index, or a
//! numeric value), and maps to and from the per-stage choices sweeps plan with.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::server::error::{Error, Result};
use crate::types::{Dimension, Experiment, RunConfig, StageChoice};

#[derive(Clone, Debug, PartialEq)]
pub enum What {
    Variant,
    Model,
    Param(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// One of `n` options (their values are in `Dim::options`).
    Categorical(usize),
    /// A number in `[lo, hi]`: on a grid of listed values, on a step, or continuous.
    Numeric {
        lo: f64,
        hi: f64,
        grid: Option<Vec<f64>>,
        step: Option<f64>,
        integral: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Dim {
    pub stage: usize,
    pub what: What,
    pub kind: Kind,
    /// Categorical options as choices take them (variant names; models as
    /// `[endpoint_id, model]`; parameter values).
    pub options: Vec<Value>,
    /// For variants: each one's (system, user) as it renders, so a configuration that used
    /// the same text under no variant name is placed too.
    pub texts: Vec<(String, String)>,
}

pub type Point = Vec<f64>;

#[derive(Clone, Debug)]
pub struct Space {
    pub dims: Vec<Dim>,
    /// Per stage, what a single-option axis fixes (a lone variant, model or value), as grids
    /// plan it.
    fixed: Vec<StageChoice>,
}

/// Parameters that only take whole numbers (as the grid planner rounds them).
fn integral(name: &str) -> bool {
    matches!(name, "max_tokens" | "seed" | "top_k" | "n")
}

impl Space {
    pub fn new(e: &Experiment) -> Result<Space> {
        let mut dims = Vec::new();
        let mut fixed = vec![StageChoice::default(); e.pipeline_stages.len()];
        for (k, (stage, pinned)) in e.pipeline_stages.iter().zip(fixed.iter_mut()).enumerate() {
            let Some(s) = e.parameter_space.stages.get(k) else {
                continue;
            };
            if let [only] = s.prompts.as_slice() {
                pinned.variant = Some(only.name.clone());
            }
            if let [only] = s.models.as_slice() {
                pinned.model = Some(only.model.clone());
                pinned.endpoint_id = only.endpoint_id;
            }
            if s.prompts.len() > 1 {
                dims.push(Dim {
                    stage: k,
                    what: What::Variant,
                    kind: Kind::Categorical(s.prompts.len()),
                    options: s.prompts.iter().map(|p| json!(p.name)).collect(),
                    texts: s
                        .prompts
                        .iter()
                        .map(|p| {
                            (
                                p.system.clone().unwrap_or_else(|| stage.system.clone()),
                                p.user.clone().unwrap_or_else(|| stage.user.clone()),
                            )
                        })
                        .collect(),
                });
            }
            if s.models.len() > 1 {
                dims.push(Dim {
                    stage: k,
                    what: What::Model,
                    kind: Kind::Categorical(s.models.len()),
                    options: s
                        .models
                        .iter()
                        .map(|m| json!([m.endpoint_id, m.model]))
                        .collect(),
                    texts: Vec::new(),
                });
            }
            for (name, dim) in &s.params {
                let field = || format!("parameter_space.stages[{k}].params.{name}");
                let kind = match dim {
                    Dimension::Values(values) if values.is_empty() => {
                        return Err(Error::invalid(field(), "needs at least one value"));
                    }
                    Dimension::Values(values) if values.len() == 1 => {
                        pinned
                            .params
                            .get_or_insert_with(BTreeMap::new)
                            .insert(name.clone(), values[0].clone());
                        continue;
                    }
                    Dimension::Values(values) => match values
                        .iter()
                        .map(Value::as_f64)
                        .collect::<Option<Vec<f64>>>()
                    {
                        Some(mut nums) => {
                            nums.sort_by(f64::total_cmp);
                            nums.dedup();
                            Kind::Numeric {
                                lo: nums[0],
                                hi: nums[nums.len() - 1],
                                grid: Some(nums),
                                step: None,
                                integral: integral(name),
                            }
                        }
                        None => Kind::Categorical(values.len()),
                    },
                    Dimension::Range { min, max, step } => {
                        if !(min.is_finite() && max.is_finite() && min <= max) {
                            return Err(Error::invalid(field(), "min must not exceed max"));
                        }
                        if min == max {
                            let v = if integral(name) {
                                json!(min.round() as i64)
                            } else {
                                json!(min)
                            };
                            pinned
                                .params
                                .get_or_insert_with(BTreeMap::new)
                                .insert(name.clone(), v);
                            continue;
                        }
                        Kind::Numeric {
                            lo: *min,
                            hi: *max,
                            grid: None,
                            step: step.filter(|s| *s > 0.0),
                            integral: integral(name),
                        }
                    }
                };
                // Categorical options, or a numeric grid's values as written (so a point plans
                // the very configuration a grid plans, and shares its cache).
                let options = match (&kind, dim) {
                    (Kind::Categorical(_), Dimension::Values(v)) => v.clone(),
                    (Kind::Numeric { grid: Some(g), .. }, Dimension::Values(v)) => g
                        .iter()
                        .filter_map(|x| v.iter().find(|o| o.as_f64() == Some(*x)).cloned())
                        .collect(),
                    _ => Vec::new(),
                };
                dims.push(Dim {
                    stage: k,
                    what: What::Param(name.clone()),
                    kind,
                    options,
                    texts: Vec::new(),
                });
            }
        }
        Ok(Space { dims, fixed })
    }

    /// How many distinct points there are (`None`: a continuous range).
    pub fn size(&self) -> Option<u64> {
        let mut n: u64 = 1;
        for d in &self.dims {
            let k = match &d.kind {
                Kind::Categorical(k) => *k as u64,
                Kind::Numeric { grid: Some(g), .. } => g.len() as u64,
                Kind::Numeric {
                    lo,
                    hi,
                    step: Some(s),
                    integral,
                    ..
                } => {
                    let steps = ((hi - lo) / s + 1e-9).floor() as u64 + 1;
                    if *integral {
                        steps.min((hi - lo).floor() as u64 + 1)
                    } else {
                        steps
                    }
                }
                Kind::Numeric {
                    integral: true,
                    lo,
                    hi,
                    ..
                } => (hi.floor() - lo.ceil()) as u64 + 1,
                Kind::Numeric { .. } => return None,
            };
            n = n.saturating_mul(k.max(1));
        }
        Some(n)
    }

    /// Every point of a finite space, if it has at most `limit` (else `None`).
    pub fn all_points(&self, limit: u64) -> Option<Vec<Point>> {
        if self.size()? > limit {
            return None;
        }
        let mut axes: Vec<Vec<f64>> = Vec::with_capacity(self.dims.len());
        for (d, dim) in self.dims.iter().enumerate() {
            let values: Vec<f64> = match &dim.kind {
                Kind::Categorical(n) => (0..*n).map(|i| i as f64).collect(),
                Kind::Numeric { grid: Some(g), .. } => g.clone(),
                Kind::Numeric {
                    lo,
                    hi,
                    step,
                    integral,
                    ..
                } => {
                    let step =
                        step.unwrap_or(1.0)
                            .max(if *integral { 1.0 } else { f64::MIN_POSITIVE });
                    let count = ((hi - lo) / step + 1e-9).floor() as usize + 1;
                    let mut v: Vec<f64> = (0..count)
                        .map(|i| self.snap(d, lo + step * i as f64))
                        .collect();
                    v.dedup();
                    v
                }
            };
            axes.push(values);
        }
        let mut points: Vec<Point> = vec![Vec::new()];
        for values in axes {
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut next = p.clone();
                        next.push(*v);
                        next
                    })
                })
                .collect();
        }
        Some(points)
    }

    /// Puts a value where the dimension can take it (on its grid or step, in range).
    pub fn snap(&self, d: usize, x: f64) -> f64 {
        match &self.dims[d].kind {
            Kind::Categorical(n) => x.round().clamp(0.0, (*n - 1) as f64),
            Kind::Numeric {
                lo,
                hi,
                grid,
                step,
                integral,
            } => {
                let mut v = x.clamp(*lo, *hi);
                if let Some(g) = grid {
                    v = *g
                        .iter()
                        .min_by(|a, b| (*a - v).abs().total_cmp(&(*b - v).abs()))
                        .unwrap_or(&v);
                } else if let Some(s) = step {
                    v = (lo + ((v - lo) / s).round() * s).min(*hi);
                }
                if *integral {
                    v = v.round().clamp(lo.ceil(), hi.floor());
                }
                (v * 1e10).round() / 1e10
            }
        }
    }

    /// The per-stage choices a point stands for.
    pub fn choice(&self, point: &[f64]) -> Vec<StageChoice> {
        let mut stages = self.fixed.clone();
        for (d, dim) in self.dims.iter().enumerate() {
            let x = self.snap(d, point[d]);
            let c = &mut stages[dim.stage];
            match (&dim.what, &dim.kind) {
                (What::Variant, _) => {
                    c.variant = dim.options[x as usize].as_str().map(str::to_owned)
                }
                (What::Model, _) => {
                    let m = &dim.options[x as usize];
                    c.endpoint_id = m[0].as_str().and_then(|s| s.parse().ok());
                    c.model = m[1].as_str().map(str::to_owned);
                }
                (What::Param(name), Kind::Categorical(_)) => {
                    c.params
                        .get_or_insert_with(BTreeMap::new)
                        .insert(name.clone(), dim.options[x as usize].clone());
                }
                (What::Param(name), Kind::Numeric { integral, grid, .. }) => {
                    let listed = grid.as_ref().and_then(|g| g.iter().position(|v| *v == x));
                    let v = match listed.and_then(|i| dim.options.get(i)) {
                        Some(v) => v.clone(),
                        None if *integral => json!(x as i64),
                        None => json!(x),
                    };
                    c.params
                        .get_or_insert_with(BTreeMap::new)
                        .insert(name.clone(), v);
                }
            }
        }
        stages
    }

    /// The point a resolved configuration sits at, if it is in this space (warm starts
    /// from runs of earlier sweeps).
    pub fn locate(&self, config: &RunConfig) -> Option<Point> {
        let mut point = Vec::with_capacity(self.dims.len());
        for dim in &self.dims {
            let stage = config.stages.get(dim.stage)?;
            let x = match &dim.what {
                What::Variant => match stage.variant.as_deref() {
                    Some(name) => dim.options.iter().position(|o| o.as_str() == Some(name))? as f64,
                    None => dim
                        .texts
                        .iter()
                        .position(|(sys, user)| *sys == stage.system && *user == stage.user)?
                        as f64,
                },
                What::Model => dim.options.iter().position(|o| {
                    o[1].as_str() == Some(stage.model.as_str())
                        && o[0]
                            .as_str()
                            .is_none_or(|id| id == stage.endpoint_id.to_string())
                })? as f64,
                What::Param(name) => {
                    let params = serde_json::to_value(&stage.params).ok()?;
                    let v = params.get(name)?;
                    match &dim.kind {
                        Kind::Categorical(_) => dim.options.iter().position(|o| o == v)? as f64,
                        Kind::Numeric { lo, hi, .. } => {
                            let x = v.as_f64()?;
                            if x < *lo - 1e-9 || x > *hi + 1e-9 {
                                return None;
                            }
                            x
                        }
                    }
                }
            };
            point.push(x);
        }
        Some(point)
    }

    /// A dimension's value scaled to [0, 1] (numeric ones; categorical ones are indices).
    pub fn unit(&self, d: usize, x: f64) -> f64 {
        match &self.dims[d].kind {
            Kind::Numeric { lo, hi, .. } if hi > lo => (x - lo) / (hi - lo),
            _ => x,
        }
    }

    /// A value in [0, 1] back on the dimension's own scale.
    pub fn scaled(&self, d: usize, u: f64) -> f64 {
        match &self.dims[d].kind {
            Kind::Numeric { lo, hi, .. } => lo + u * (hi - lo),
            _ => u,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::planner;
    use crate::server::runs::{config_key, resolve_config};
    use crate::types::{ModelChoice, PromptVariant, StageSpace};

    fn experiment() -> Experiment {
        super::super::test_experiment(StageSpace {
            prompts: ["a", "b", "c"]
                .iter()
                .map(|n| PromptVariant {
                    name: (*n).into(),
                    system: Some(format!("say {n}")),
                    user: None,
                })
                .collect(),
            models: vec![ModelChoice {
                endpoint_id: None,
                model: "only-model".into(),
            }],
            params: [
                (
                    "temperature".to_owned(),
                    Dimension::Values(vec![json!(0), json!(0.5), json!(1)]),
                ),
                (
                    "max_tokens".to_owned(),
                    Dimension::Range {
                        min: 10.0,
                        max: 50.0,
                        step: Some(20.0),
                    },
                ),
                (
                    "stop".to_owned(),
                    Dimension::Values(vec![json!(["x"]), json!(["y"])]),
                ),
            ]
            .into(),
        })
    }

    #[test]
    fn every_point_is_a_grid_configuration_and_locates_back() {
        let e = experiment();
        let space = Space::new(&e).unwrap();
        assert_eq!(space.size(), Some(3 * 3 * 3 * 2));
        assert_eq!(
            space.size().unwrap() as usize,
            planner::grid_size(&e).unwrap()
        );
        let grid: std::collections::HashSet<String> = planner::grid(&e)
            .unwrap()
            .iter()
            .map(|c| config_key(&resolve_config(&e, c).unwrap()))
            .collect();
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(3);
        for _ in 0..200 {
            let p = super::super::tpe::random_point(&space, &mut rng);
            let config = resolve_config(&e, &space.choice(&p)).unwrap();
            assert!(
                grid.contains(&config_key(&config)),
                "{p:?} plans what the grid plans"
            );
            assert_eq!(
                config.stages[0].model, "only-model",
                "a lone model is fixed"
            );
            let back = space.locate(&config).unwrap();
            assert_eq!(
                config_key(&resolve_config(&e, &space.choice(&back)).unwrap()),
                config_key(&config)
            );
        }
    }

    #[test]
    fn values_snap_to_their_grid_or_step() {
        let space = Space::new(&experiment()).unwrap();
        let d = |name: &str| {
            space
                .dims
                .iter()
                .position(|d| d.what == What::Param(name.into()))
                .unwrap()
        };
        assert_eq!(space.snap(d("temperature"), 0.3), 0.5);
        assert_eq!(space.snap(d("max_tokens"), 37.0), 30.0);
        assert_eq!(space.snap(d("max_tokens"), 99.0), 50.0);
        assert_eq!(space.snap(d("stop"), 7.0), 1.0);
    }

    use rand::rngs::StdRng;
}
