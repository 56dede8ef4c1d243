//! What the experiment forms hold while a person edits: text in signals, one struct per list
//! entry (with a stable key), converted to the engine's types on save. Conversion checks only
//! what text cannot express (a number that is not a number); every other rule is the
//! engine's, whose errors name the same field paths.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use super::next_key;
use crate::types::{Dimension, ModelChoice, Params, PromptVariant, Stage, StageSpace};

pub type Text = RwSignal<String>;

/// A field that could not be read: (field path, message).
pub type Bad = (String, String);

fn text(s: impl Into<String>) -> Text {
    RwSignal::new(s.into())
}

fn opt_num<T: ToString>(v: Option<T>) -> Text {
    text(v.map(|v| v.to_string()).unwrap_or_default())
}

/// A number typed in a field; `None` when empty.
pub fn parse_f64(s: &str, field: &str) -> Result<Option<f64>, Bad> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Some)
        .ok_or_else(|| (field.to_owned(), "must be a number".to_owned()))
}

pub fn parse_u64(s: &str, field: &str) -> Result<Option<u64>, Bad> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u64>()
        .map(Some)
        .map_err(|_| (field.to_owned(), "must be a whole number".to_owned()))
}

/// A value typed in a list: a JSON literal when it reads as one (numbers, true, "quoted"),
/// else the text itself.
pub fn literal(s: &str) -> Value {
    let s = s.trim();
    serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

/// Comma-separated values, e.g. `0.1, 0.5, 0.9`.
pub fn parse_values(s: &str) -> Vec<Value> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(literal)
        .collect()
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Inference parameters as typed.
#[derive(Clone, Copy)]
pub struct ParamsDraft {
    pub temperature: Text,
    pub top_p: Text,
    pub max_tokens: Text,
    pub seed: Text,
    /// One stop sequence per line.
    pub stop: Text,
    /// Any other parameters, as a JSON object.
    pub extra: Text,
}

impl ParamsDraft {
    pub fn from_params(p: &Params) -> Self {
        ParamsDraft {
            temperature: opt_num(p.temperature),
            top_p: opt_num(p.top_p),
            max_tokens: opt_num(p.max_tokens),
            seed: opt_num(p.seed),
            stop: text(p.stop.as_ref().map(|s| s.join("\n")).unwrap_or_default()),
            extra: text(if p.extra.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&p.extra).unwrap_or_default()
            }),
        }
    }

    pub fn to_params(&self, at: &str) -> Result<Params, Bad> {
        let f = |name: &str| format!("{at}.{name}");
        let extra = self.extra.get_untracked();
        let extra: BTreeMap<String, Value> = if extra.trim().is_empty() {
            BTreeMap::new()
        } else {
            serde_json::from_str(&extra).map_err(|_| {
                (
                    at.to_owned(),
                    "other parameters must be a JSON object, e.g. {\"presence_penalty\": 0.5}"
                        .to_owned(),
                )
            })?
        };
        let stop: Vec<String> = self
            .stop
            .get_untracked()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Params {
            temperature: parse_f64(&self.temperature.get_untracked(), &f("temperature"))?,
            top_p: parse_f64(&self.top_p.get_untracked(), &f("top_p"))?,
            max_tokens: parse_u64(&self.max_tokens.get_untracked(), &f("max_tokens"))?
                .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            seed: parse_u64(&self.seed.get_untracked(), &f("seed"))?.map(|v| v as i64),
            stop: (!stop.is_empty()).then_some(stop),
            extra,
        })
    }
}

/// A prompt variant as typed (empty templates keep the stage's).
#[derive(Clone, Copy)]
pub struct VariantDraft {
    pub key: u64,
    pub name: Text,
    pub system: Text,
    pub user: Text,
}

impl VariantDraft {
    pub fn new(v: &PromptVariant) -> Self {
        VariantDraft {
            key: next_key(),
            name: text(v.name.clone()),
            system: text(v.system.clone().unwrap_or_default()),
            user: text(v.user.clone().unwrap_or_default()),
        }
    }
}

/// A model alternative (empty endpoint: the stage's).
#[derive(Clone, Copy)]
pub struct ModelDraft {
    pub key: u64,
    pub endpoint_id: Text,
    pub model: Text,
}

/// One swept parameter: listed values (grid) or a range (random draws; with a step, a grid).
#[derive(Clone, Copy)]
pub struct DimDraft {
    pub key: u64,
    pub name: Text,
    /// `values` or `range`.
    pub mode: Text,
    pub values: Text,
    pub min: Text,
    pub max: Text,
    pub step: Text,
}

impl DimDraft {
    pub fn new(name: &str, d: &Dimension) -> Self {
        let (mode, values, min, max, step) = match d {
            Dimension::Values(v) => (
                "values",
                v.iter().map(show_value).collect::<Vec<_>>().join(", "),
                String::new(),
                String::new(),
                String::new(),
            ),
            Dimension::Range { min, max, step } => (
                "range",
                String::new(),
                min.to_string(),
                max.to_string(),
                step.map(|s| s.to_string()).unwrap_or_default(),
            ),
        };
        DimDraft {
            key: next_key(),
            name: text(name),
            mode: text(mode),
            values: text(values),
            min: text(min),
            max: text(max),
            step: text(step),
        }
    }
}

/// What a sweep may vary in one stage.
#[derive(Clone, Copy)]
pub struct SpaceDraft {
    pub prompts: RwSignal<Vec<VariantDraft>>,
    pub models: RwSignal<Vec<ModelDraft>>,
    pub params: RwSignal<Vec<DimDraft>>,
}

impl SpaceDraft {
    pub fn new(s: &StageSpace) -> Self {
        SpaceDraft {
            prompts: RwSignal::new(s.prompts.iter().map(VariantDraft::new).collect()),
            models: RwSignal::new(
                s.models
                    .iter()
                    .map(|m| ModelDraft {
                        key: next_key(),
                        endpoint_id: text(m.endpoint_id.map(|u| u.to_string()).unwrap_or_default()),
                        model: text(m.model.clone()),
                    })
                    .collect(),
            ),
            params: RwSignal::new(s.params.iter().map(|(n, d)| DimDraft::new(n, d)).collect()),
        }
    }

    /// `at`: the stage's path in the parameter space, e.g. `parameter_space.stages[1]`.
    pub fn to_space(&self, at: &str) -> Result<StageSpace, Bad> {
        let opt = |s: String| (!s.is_empty()).then_some(s);
        let prompts = self
            .prompts
            .get_untracked()
            .iter()
            .map(|v| PromptVariant {
                name: v.name.get_untracked().trim().to_owned(),
                system: opt(v.system.get_untracked()),
                user: opt(v.user.get_untracked()),
            })
            .collect();
        let mut models = Vec::new();
        for (j, m) in self.models.get_untracked().iter().enumerate() {
            let endpoint = m.endpoint_id.get_untracked();
            let endpoint_id = if endpoint.is_empty() {
                None
            } else {
                Some(Uuid::parse_str(&endpoint).map_err(|_| {
                    (
                        format!("{at}.models[{j}].endpoint_id"),
                        "choose an endpoint".to_owned(),
                    )
                })?)
            };
            models.push(ModelChoice {
                endpoint_id,
                model: m.model.get_untracked().trim().to_owned(),
            });
        }
        let mut params = BTreeMap::new();
        for d in self.params.get_untracked() {
            let name = d.name.get_untracked().trim().to_owned();
            let field = format!("{at}.params.{name}");
            if name.is_empty() {
                return Err((
                    format!("{at}.params"),
                    "every swept parameter needs a name".into(),
                ));
            }
            let dim = if d.mode.get_untracked() == "range" {
                let need = |s: Text, what: &str| {
                    parse_f64(&s.get_untracked(), &field)?
                        .ok_or_else(|| (field.clone(), format!("a range needs a {what}")))
                };
                Dimension::Range {
                    min: need(d.min, "minimum")?,
                    max: need(d.max, "maximum")?,
                    step: parse_f64(&d.step.get_untracked(), &field)?,
                }
            } else {
                Dimension::Values(parse_values(&d.values.get_untracked()))
            };
            if params.insert(name.clone(), dim).is_some() {
                return Err((field, format!("{name} is swept twice")));
            }
        }
        Ok(StageSpace {
            prompts,
            models,
            params,
        })
    }
}

/// A pipeline stage as typed, with the part of the parameter space that belongs to it.
#[derive(Clone, Copy)]
pub struct StageDraft {
    pub key: u64,
    pub name: Text,
    pub endpoint_id: Text,
    pub model: Text,
    pub system: Text,
    pub user: Text,
    pub params: ParamsDraft,
    pub space: SpaceDraft,
}

impl StageDraft {
    pub fn new(stage: &Stage, space: Option<&StageSpace>) -> Self {
        StageDraft {
            key: next_key(),
            name: text(stage.name.clone()),
            endpoint_id: text(stage.endpoint_id.to_string()),
            model: text(stage.model.clone()),
            system: text(stage.system.clone()),
            user: text(stage.user.clone()),
            params: ParamsDraft::from_params(&stage.params),
            space: SpaceDraft::new(&space.cloned().unwrap_or_default()),
        }
    }

    /// A new stage on `endpoint` (the first one offered), reading the previous stage's output
    /// when there is one.
    pub fn blank(k: usize, endpoint: Option<Uuid>, model: &str) -> Self {
        let user = if k == 0 {
            "{{ input.text }}".to_owned()
        } else {
            format!("{{{{ stages[{}].output }}}}", k - 1)
        };
        let stage = Stage {
            name: format!("stage {}", k + 1),
            endpoint_id: endpoint.unwrap_or_default(),
            model: model.to_owned(),
            system: String::new(),
            user,
            params: Params::default(),
        };
        let mut d = StageDraft::new(&stage, None);
        if endpoint.is_none() {
            d.endpoint_id = text("");
        }
        d
    }

    pub fn to_stage(&self, k: usize) -> Result<Stage, Bad> {
        let at = format!("pipeline_stages[{k}]");
        let endpoint_id = Uuid::parse_str(&self.endpoint_id.get_untracked())
            .map_err(|_| (format!("{at}.endpoint_id"), "choose an endpoint".to_owned()))?;
        Ok(Stage {
            name: self.name.get_untracked().trim().to_owned(),
            endpoint_id,
            model: self.model.get_untracked().trim().to_owned(),
            system: self.system.get_untracked(),
            user: self.user.get_untracked(),
            params: self.params.to_params(&format!("{at}.params"))?,
        })
    }
}

/// The parameter space of every stage, trimming trailing stages that vary nothing.
pub fn space_of(stages: &[StageDraft]) -> Result<crate::types::ParameterSpace, Bad> {
    let mut out = Vec::with_capacity(stages.len());
    for (k, s) in stages.iter().enumerate() {
        out.push(s.space.to_space(&format!("parameter_space.stages[{k}]"))?);
    }
    while out.last().is_some_and(|s| s == &StageSpace::default()) {
        out.pop();
    }
    Ok(crate::types::ParameterSpace { stages: out })
}
