//! The dimensions a configuration takes values on (prompt variant, model and each inference
//! parameter, per stage), and which of them vary among an experiment's configurations.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::types::{ChartParam, RunConfig};

/// The value of a dimension a configuration does not set.
pub const NOT_SET: &str = "(not set)";
/// The prompt variant of a stage that uses its own templates.
pub const OWN_PROMPT: &str = "(stage's own)";

fn prefix(stage: usize) -> String {
    if stage == 0 {
        String::new()
    } else {
        format!("stage {} ", stage + 1)
    }
}

/// A configuration's value on each dimension it sets, in display order: per stage the prompt
/// variant, the model, then temperature, top_p, max_tokens, seed, stop and other parameters.
pub fn dimensions(config: &RunConfig) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (k, s) in config.stages.iter().enumerate() {
        let p = prefix(k);
        let variant = s.variant.clone().unwrap_or_else(|| OWN_PROMPT.to_owned());
        out.push((format!("{p}prompt"), Value::String(variant)));
        out.push((format!("{p}model"), Value::String(s.model.clone())));
        let params = &s.params;
        let known = [
            ("temperature", params.temperature.map(Value::from)),
            ("top_p", params.top_p.map(Value::from)),
            ("max_tokens", params.max_tokens.map(Value::from)),
            ("seed", params.seed.map(Value::from)),
            ("stop", params.stop.as_ref().map(|s| Value::from(s.clone()))),
        ];
        for (name, value) in known {
            if let Some(v) = value {
                out.push((format!("{p}{name}"), v));
            }
        }
        for (name, v) in &params.extra {
            out.push((format!("{p}{name}"), v.clone()));
        }
    }
    out
}

/// The value of one dimension (`Null` when the configuration does not set it).
pub fn value_of(config: &RunConfig, name: &str) -> Value {
    dimensions(config)
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(Value::Null, |(_, v)| v)
}

/// A value as a category name.
pub fn category(value: &Value) -> String {
    match value {
        Value::Null => NOT_SET.to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a dimension is a stage's model.
pub fn is_model(name: &str) -> bool {
    name == "model" || (name.starts_with("stage ") && name.ends_with(" model"))
}

/// The models of a configuration, stage by stage.
pub fn models(config: &RunConfig) -> String {
    config
        .stages
        .iter()
        .map(|s| s.model.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The dimensions with more than one value among `configs`, in display order. A dimension
/// some configurations do not set has the value "(not set)" there (and is not numeric).
pub fn varied<'a>(configs: impl IntoIterator<Item = &'a RunConfig>) -> Vec<ChartParam> {
    struct Seen {
        values: BTreeSet<String>,
        numeric: bool,
        count: usize,
    }
    let mut order: Vec<String> = Vec::new();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut total = 0;
    for config in configs {
        total += 1;
        for (name, value) in dimensions(config) {
            let s = seen.entry(name.clone()).or_insert_with(|| {
                order.push(name);
                Seen {
                    values: BTreeSet::new(),
                    numeric: true,
                    count: 0,
                }
            });
            s.numeric &= value.is_number();
            s.count += 1;
            s.values.insert(category(&value));
        }
    }
    order
        .into_iter()
        .filter_map(|name| {
            let s = &seen[&name];
            let values = s.values.len() + usize::from(s.count < total);
            (values > 1).then_some(ChartParam {
                numeric: s.numeric && s.count == total,
                values: values as i64,
                name,
            })
        })
        .collect()
}

/// The parameter drawn when none is asked for: the first numeric one, else the first.
pub fn default(params: &[ChartParam]) -> Option<&ChartParam> {
    params.iter().find(|p| p.numeric).or_else(|| params.first())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Params, StageConfig};

    fn config(variant: Option<&str>, model: &str, temperature: Option<f64>) -> RunConfig {
        RunConfig {
            stages: vec![
                StageConfig {
                    endpoint_id: uuid::Uuid::nil(),
                    model: model.into(),
                    variant: variant.map(Into::into),
                    system: String::new(),
                    user: String::new(),
                    params: Params {
                        temperature,
                        ..Params::default()
                    },
                },
                StageConfig {
                    endpoint_id: uuid::Uuid::nil(),
                    model: "m2".into(),
                    variant: None,
                    system: String::new(),
                    user: String::new(),
                    params: Params {
                        temperature: temperature.map(|t| t / 2.0),
                        max_tokens: Some(100),
                        ..Params::default()
                    },
                },
            ],
        }
    }

    #[test]
    fn varied_dimensions_are_named_by_stage_and_typed() {
        let configs = [
            config(Some("a"), "m", Some(0.1)),
            config(Some("b"), "m", Some(0.5)),
            config(None, "m", Some(0.9)),
        ];
        let params = varied(&configs);
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["prompt", "temperature", "stage 2 temperature"]);
        assert!(!params[0].numeric && params[1].numeric && params[2].numeric);
        assert_eq!(params[0].values, 3);
        assert_eq!(default(&params).unwrap().name, "temperature");
        assert_eq!(value_of(&configs[2], "prompt"), Value::from(OWN_PROMPT));
        assert_eq!(
            value_of(&configs[1], "stage 2 temperature"),
            Value::from(0.25)
        );
        assert!(is_model("stage 2 model") && is_model("model") && !is_model("submodel"));
        assert_eq!(models(&configs[0]), "m → m2");
        // Set in some configurations only: a category with "(not set)".
        let partly = [config(None, "m", Some(0.1)), config(None, "m", None)];
        let p = varied(&partly);
        assert_eq!(p[0].name, "temperature");
        assert!(!p[0].numeric && p[0].values == 2);
        assert_eq!(category(&value_of(&partly[1], "temperature")), NOT_SET);
    }
}
