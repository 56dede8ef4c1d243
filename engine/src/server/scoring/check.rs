//! Checking a scoring config when an experiment is saved: every scorer must parse, compile
//! (regexes, JSON Schemas, Rhai scripts, judge templates, Python code) and name things that
//! exist. A bad scorer is a 422 naming it: `scoring_config[2].pattern`, "scorer \"dates\": …".

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;
use uuid::Uuid;

use super::custom::{
    PYTHON_TIMEOUT_MAX_MS, SCRIPT_TIMEOUT_MAX_MS, WEBHOOK_RETRIES_MAX, WEBHOOK_TIMEOUT_MAX_MS,
    check_python, compile_rhai,
};
use super::embedding::model_for;
use super::text::{compile_regex, compile_schema};
use crate::server::core::Core;
use crate::server::error::{Error, Result};
use crate::server::providers::simulated;
use crate::server::store::{endpoints, experiments, scores, settings};
use crate::types::{EndpointKind, FormatKind, HIDDEN, SCORER_KINDS, ScorerConfig, ScorerSpec};
use crate::validate;

/// Most scorers per experiment, and most bytes of one script or program.
pub const MAX_SCORERS: usize = 32;
pub const MAX_CODE: usize = 100_000;
const MAX_TERMS: usize = 500;
const MAX_HEADERS: usize = 20;
/// Weights are relative; beyond this one scorer would drown the rest in rounding.
const MAX_WEIGHT: f64 = 1_000_000.0;

/// A checked scoring config: normalised (defaults filled in, webhook header values hidden)
/// and the webhook header values to store, sealed: (scorer, header, sealed).
#[derive(Debug)]
pub struct Checked {
    pub scorers: Vec<ScorerConfig>,
    pub config: Value,
    pub secrets: Vec<(String, String, String)>,
}

struct At<'a> {
    index: usize,
    name: &'a str,
}

impl At<'_> {
    fn err(&self, field: &str, message: impl std::fmt::Display) -> Error {
        let field = if field.is_empty() {
            format!("scoring_config[{}]", self.index)
        } else {
            format!("scoring_config[{}].{field}", self.index)
        };
        Error::invalid(field, format!("scorer {:?}: {message}", self.name))
    }
}

/// Checks `config` (the experiment's `scoring_config`). `inputs`: the input names every sample
/// item has (for judge templates). `secrets_of`: the experiment whose stored header values a
/// `<hidden>` value keeps.
pub async fn check_scoring(
    core: &Core,
    config: &Value,
    inputs: Option<&BTreeSet<String>>,
    secrets_of: Option<Uuid>,
) -> Result<Checked> {
    let items: &[Value] = match config {
        Value::Array(items) => items,
        Value::Object(o) if o.is_empty() => &[],
        _ => {
            return Err(Error::invalid(
                "scoring_config",
                "must be a list of scorers, e.g. [{\"kind\": \"keywords\", \"required\": [\"…\"]}]",
            ));
        }
    };
    if items.len() > MAX_SCORERS {
        return Err(Error::invalid(
            "scoring_config",
            format!("at most {MAX_SCORERS} scorers"),
        ));
    }
    let stored: HashMap<(String, String), String> = match secrets_of {
        Some(id) => scores::all_scorer_secrets(&core.db, id)
            .await?
            .into_iter()
            .map(|(s, h, v)| ((s, h), v))
            .collect(),
        None => HashMap::new(),
    };
    // Where each stored webhook posts: a kept (`<hidden>`) header value goes only where it
    // went before, never to a new origin someone typed beside it.
    let stored_urls: HashMap<String, String> = match secrets_of {
        Some(id) if !stored.is_empty() => {
            let stored_config = experiments::get(&core.db, id)
                .await?
                .map(|e| e.scoring_config)
                .unwrap_or_default();
            super::parse_lenient(&stored_config)
                .0
                .into_iter()
                .filter_map(|s| match s.spec {
                    ScorerSpec::Webhook { url, .. } => Some((s.name, url)),
                    _ => None,
                })
                .collect()
        }
        _ => HashMap::new(),
    };
    let mut scorers = Vec::with_capacity(items.len());
    let mut normalised = Vec::with_capacity(items.len());
    let mut secrets = Vec::new();
    let mut names = HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let scorer = parse_one(index, item)?;
        let at = At {
            index,
            name: &scorer.name,
        };
        if !names.insert(scorer.name.clone()) {
            return Err(at.err(
                "name",
                "another scorer has this name; give each scorer a distinct name",
            ));
        }
        check_spec(core, &at, &scorer.spec, inputs).await?;
        let mut shown = serde_json::to_value(&scorer).unwrap_or_default();
        if let ScorerSpec::Webhook { headers, url, .. } = &scorer.spec {
            for (header, value) in headers {
                let sealed = if value == HIDDEN {
                    let before = stored_urls.get(&scorer.name).map(|u| origin(u));
                    if before.is_some() && before != Some(origin(url)) {
                        return Err(at.err(
                            &format!("headers.{header}"),
                            "the webhook's address moved to another host; enter the value again",
                        ));
                    }
                    stored
                        .get(&(scorer.name.clone(), header.clone()))
                        .cloned()
                        .ok_or_else(|| {
                            at.err(
                                &format!("headers.{header}"),
                                "has no stored value to keep; enter the value",
                            )
                        })?
                } else {
                    core.secrets.seal(value)?
                };
                secrets.push((scorer.name.clone(), header.clone(), sealed));
                shown["headers"][header] = Value::String(HIDDEN.to_owned());
            }
        }
        normalised.push(shown);
        scorers.push(scorer);
    }
    if !scorers.is_empty() && scorers.iter().all(|s| s.weight == 0.0) {
        let all: Vec<&str> = scorers.iter().map(|s| s.name.as_str()).collect();
        return Err(Error::invalid(
            "scoring_config",
            format!(
                "every scorer's weight is 0 ({}); give at least one a positive weight",
                all.join(", ")
            ),
        ));
    }
    Ok(Checked {
        scorers,
        config: Value::Array(normalised),
        secrets,
    })
}

/// Scheme, host and port of a URL (the whole text when it does not parse).
fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.to_owned(),
    }
}

/// Parses one entry, naming the field at fault.
fn parse_one(index: usize, item: &Value) -> Result<ScorerConfig> {
    let Value::Object(object) = item else {
        return Err(Error::invalid(
            format!("scoring_config[{index}]"),
            "a scorer must be an object with a kind",
        ));
    };
    let name = match object.get("name") {
        None => None,
        Some(Value::String(n)) => {
            Some(validate::name(&format!("scoring_config[{index}].name"), n)?)
        }
        Some(_) => {
            return Err(Error::invalid(
                format!("scoring_config[{index}].name"),
                "must be a string",
            ));
        }
    };
    let kind = match object.get("kind") {
        Some(Value::String(k)) => k.clone(),
        _ => {
            return Err(Error::invalid(
                format!("scoring_config[{index}].kind"),
                format!(
                    "every scorer needs a kind (one of {})",
                    SCORER_KINDS.join(", ")
                ),
            ));
        }
    };
    let name = name.unwrap_or_else(|| kind.clone());
    let at = At { index, name: &name };
    if !SCORER_KINDS.contains(&kind.as_str()) {
        return Err(at.err(
            "kind",
            format!("unknown kind {kind:?} (known: {})", SCORER_KINDS.join(", ")),
        ));
    }
    let weight = match object.get("weight") {
        None => 1.0,
        Some(w) => match w.as_f64() {
            Some(w) if w.is_finite() && (0.0..=MAX_WEIGHT).contains(&w) => w,
            _ => {
                return Err(at.err("weight", format!("must be a number from 0 to {MAX_WEIGHT}")));
            }
        },
    };
    let mut rest = object.clone();
    rest.remove("name");
    rest.remove("weight");
    let spec: ScorerSpec =
        serde_path_to_error::deserialize(Value::Object(rest.clone())).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            // serde names an unknown or missing field in its message rather than the path.
            let field = if path != "." {
                path
            } else if let Some(f) = (message.starts_with("unknown field")
                || message.starts_with("missing field"))
            .then(|| message.split('`').nth(1))
            .flatten()
            {
                f.to_owned()
            } else {
                culprit(&rest).unwrap_or_default()
            };
            at.err(&field, message)
        })?;
    Ok(ScorerConfig { name, weight, spec })
}

/// A tagged enum's type errors do not say which field is wrong: it is the one whose removal
/// changes the error (to success, or to that field missing).
fn culprit(object: &serde_json::Map<String, Value>) -> Option<String> {
    object.keys().filter(|k| *k != "kind").find_map(|key| {
        let mut without = object.clone();
        without.remove(key);
        match serde_json::from_value::<ScorerSpec>(Value::Object(without)) {
            Ok(_) => Some(key.clone()),
            Err(e) if e.to_string() == format!("missing field `{key}`") => Some(key.clone()),
            Err(_) => None,
        }
    })
}

async fn endpoint_kind(core: &Core, at: &At<'_>, id: Uuid) -> Result<EndpointKind> {
    Ok(endpoints::get(&core.db, id)
        .await?
        .ok_or_else(|| at.err("endpoint_id", "no such endpoint"))?
        .kind)
}

fn check_timeout(at: &At<'_>, timeout: Option<u64>, max: u64) -> Result<()> {
    match timeout {
        Some(t) if !(1..=max).contains(&t) => {
            Err(at.err("timeout_ms", format!("must be between 1 and {max}")))
        }
        _ => Ok(()),
    }
}

async fn check_spec(
    core: &Core,
    at: &At<'_>,
    spec: &ScorerSpec,
    inputs: Option<&BTreeSet<String>>,
) -> Result<()> {
    match spec {
        ScorerSpec::EmbeddingSimilarity { endpoint_id, model } => {
            let Some(id) = endpoint_id else {
                return Err(at.err(
                    "endpoint_id",
                    "needs an endpoint with an embeddings API; without one, use \
                     {\"kind\": \"lexical_similarity\"} (token F1 or ROUGE-L) instead",
                ));
            };
            let kind = endpoint_kind(core, at, *id).await?;
            model_for(kind, model.as_deref()).map_err(|e| at.err("model", e))?;
        }
        ScorerSpec::LexicalSimilarity { .. } | ScorerSpec::HumanRating { .. } => {}
        ScorerSpec::Length {
            min, max, falloff, ..
        } => {
            if min.is_none() && max.is_none() {
                return Err(at.err("max", "set min, max or both"));
            }
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err(at.err("min", "must not be greater than max"));
            }
            if !(falloff.is_finite() && (0.0..=100.0).contains(falloff)) {
                return Err(at.err("falloff", "must be between 0 and 100"));
            }
        }
        ScorerSpec::Format {
            format,
            schema,
            pattern,
            full_match,
            min_headings,
            min_list_items,
            min_code_blocks,
            min_tables,
            required_headings,
            ..
        } => {
            let markdown = min_headings.is_some()
                || min_list_items.is_some()
                || min_code_blocks.is_some()
                || min_tables.is_some()
                || !required_headings.is_empty();
            let only = |field: &str, applies: &str| {
                at.err(field, format!("applies only to format {applies}"))
            };
            if schema.is_some() && *format != FormatKind::JsonSchema {
                return Err(only("schema", "json_schema"));
            }
            if (pattern.is_some() || *full_match) && *format != FormatKind::Regex {
                return Err(only("pattern", "regex"));
            }
            if markdown && *format != FormatKind::Markdown {
                return Err(only("min_headings", "markdown"));
            }
            match format {
                FormatKind::JsonSchema => {
                    let schema = schema
                        .as_ref()
                        .ok_or_else(|| at.err("schema", "json_schema needs a schema"))?;
                    compile_schema(schema).map_err(|e| at.err("schema", e))?;
                }
                FormatKind::Regex => {
                    let pattern = pattern
                        .as_deref()
                        .ok_or_else(|| at.err("pattern", "regex needs a pattern"))?;
                    compile_regex(pattern, *full_match).map_err(|e| at.err("pattern", e))?;
                }
                FormatKind::Markdown if !markdown => {
                    return Err(at.err(
                        "min_headings",
                        "markdown needs a requirement: min_headings, min_list_items, \
                         min_code_blocks, min_tables or required_headings",
                    ));
                }
                FormatKind::Markdown | FormatKind::Json => {}
            }
        }
        ScorerSpec::Keywords {
            required,
            forbidden,
            ..
        } => {
            if required.is_empty() && forbidden.is_empty() {
                return Err(at.err("required", "list required terms, forbidden terms or both"));
            }
            for (field, terms) in [("required", required), ("forbidden", forbidden)] {
                if terms.len() > MAX_TERMS {
                    return Err(at.err(field, format!("at most {MAX_TERMS} terms")));
                }
                if let Some(i) = terms
                    .iter()
                    .position(|t| t.trim().is_empty() || t.len() > 200)
                {
                    return Err(at.err(
                        &format!("{field}[{i}]"),
                        "terms must be 1 to 200 characters",
                    ));
                }
            }
        }
        ScorerSpec::LlmJudge {
            endpoint_id,
            model,
            prompt,
            system,
            min,
            max,
            params,
        } => {
            let kind = endpoint_kind(core, at, *endpoint_id).await?;
            if model.trim().is_empty() || model.len() > 200 {
                return Err(at.err("model", "must be 1 to 200 characters"));
            }
            if kind == EndpointKind::Simulated && !simulated::MODELS[..3].contains(&model.as_str())
            {
                return Err(at.err(
                    "model",
                    format!("unknown model {model:?} (simulated models: sim-large, sim-medium, sim-small)"),
                ));
            }
            if !(min.is_finite() && max.is_finite() && min < max) {
                return Err(at.err("max", "the scale needs finite min < max"));
            }
            for (field, template) in [("prompt", prompt), ("system", system)] {
                if let Some(t) = template {
                    check_judge_template(at, field, t, inputs)?;
                }
            }
            if let Some(p) = params {
                crate::server::experiments::check_params(
                    p,
                    &format!("scoring_config[{}].params", at.index),
                )?;
            }
        }
        ScorerSpec::Rhai { script, timeout_ms } => {
            if script.len() > MAX_CODE {
                return Err(at.err("script", format!("at most {MAX_CODE} bytes")));
            }
            compile_rhai(script).map_err(|e| at.err("script", e))?;
            check_timeout(at, *timeout_ms, SCRIPT_TIMEOUT_MAX_MS)?;
        }
        ScorerSpec::Webhook {
            url,
            headers,
            timeout_ms,
            retries,
        } => {
            let parsed = url::Url::parse(url)
                .map_err(|e| at.err("url", format!("must be an http(s) URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(at.err("url", "must be an http(s) URL"));
            }
            if parsed.password().is_some() || !parsed.username().is_empty() {
                return Err(at.err(
                    "url",
                    "must not contain credentials; send them in headers (stored encrypted)",
                ));
            }
            if headers.len() > MAX_HEADERS {
                return Err(at.err("headers", format!("at most {MAX_HEADERS} headers")));
            }
            for (name, value) in headers {
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(at.err(&format!("headers.{name}"), "is not a valid header name"));
                }
                if value != HIDDEN && reqwest::header::HeaderValue::from_str(value).is_err() {
                    return Err(at.err(&format!("headers.{name}"), "is not a valid header value"));
                }
            }
            check_timeout(at, *timeout_ms, WEBHOOK_TIMEOUT_MAX_MS)?;
            if retries.is_some_and(|r| r > WEBHOOK_RETRIES_MAX) {
                return Err(at.err("retries", format!("at most {WEBHOOK_RETRIES_MAX}")));
            }
        }
        ScorerSpec::Python { code, timeout_ms } => {
            if !settings::load(&core.db).await?.allow_python_scorers {
                return Err(at.err(
                    "kind",
                    "python scorers are turned off: they run unsandboxed, so an admin must allow \
                     them in settings (allow_python_scorers)",
                ));
            }
            if code.len() > MAX_CODE {
                return Err(at.err("code", format!("at most {MAX_CODE} bytes")));
            }
            check_python(code).await.map_err(|e| at.err("code", e))?;
            check_timeout(at, *timeout_ms, PYTHON_TIMEOUT_MAX_MS)?;
        }
    }
    Ok(())
}

/// A judge template may use input, output, reference, stages, item, min and max.
fn check_judge_template(
    at: &At<'_>,
    field: &str,
    template: &str,
    inputs: Option<&BTreeSet<String>>,
) -> Result<()> {
    if template.len() > MAX_CODE {
        return Err(at.err(field, format!("at most {MAX_CODE} bytes")));
    }
    let env = crate::server::templates::environment();
    let compiled = env
        .template_from_str(template)
        .map_err(|e| at.err(field, format!("template syntax error: {e}")))?;
    for var in compiled.undeclared_variables(true) {
        let mut parts = var.splitn(2, '.');
        let root = parts.next().unwrap_or_default();
        match root {
            "input" => {
                if let (Some(name), Some(inputs)) = (parts.next(), inputs) {
                    let name = name.split('.').next().unwrap_or(name);
                    if !inputs.contains(name) {
                        return Err(at.err(
                            field,
                            format!(
                                "undefined variable input.{name} (sample items have: {})",
                                inputs
                                    .iter()
                                    .map(String::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
            "output" | "reference" | "stages" | "item" | "min" | "max" | "loop" | "range"
            | "namespace" | "dict" | "debug" => {}
            other => {
                return Err(at.err(
                    field,
                    format!(
                        "undefined variable {other} (a judge sees input, output, reference, stages, item, min and max)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ScorerConfig> {
        parse_one(1, &v)
    }

    #[test]
    fn entries_are_parsed_with_the_field_and_scorer_named() {
        let e = parse(json!({"kind": "nope"})).unwrap_err();
        assert_eq!(e.field(), Some("scoring_config[1].kind"));
        assert!(e.to_string().contains("unknown kind"), "{e}");
        let e = parse(json!({"name": "len", "kind": "length", "maxx": 3})).unwrap_err();
        assert_eq!(e.field(), Some("scoring_config[1].maxx"), "{e}");
        assert!(
            e.to_string().contains(": scorer \"len\": unknown field"),
            "{e}"
        );
        let e = parse(json!({"kind": "length", "max": "ten"})).unwrap_err();
        assert_eq!(e.field(), Some("scoring_config[1].max"), "{e}");
        let e = parse(json!({"kind": "keywords", "weight": -1})).unwrap_err();
        assert_eq!(e.field(), Some("scoring_config[1].weight"));
        let e =
            parse(json!({"kind": "llm_judge", "endpoint_id": "nope", "model": "m"})).unwrap_err();
        assert_eq!(e.field(), Some("scoring_config[1].endpoint_id"), "{e}");
        let e = parse(json!({"kind": "llm_judge", "model": "m"})).unwrap_err();
        assert_eq!(e.field(), Some("scoring_config[1].endpoint_id"), "{e}");
        let e = parse(json!({"weight": 1})).unwrap_err();
        assert_eq!(e.field(), Some("scoring_config[1].kind"));
        let ok = parse(json!({"kind": "lexical_similarity", "metric": "rouge_l", "weight": 0.5}))
            .unwrap();
        assert_eq!((ok.name.as_str(), ok.weight), ("lexical_similarity", 0.5));
    }

    #[test]
    fn judge_templates_see_only_known_variables() {
        let at = At {
            index: 0,
            name: "judge",
        };
        let have: BTreeSet<String> = ["text".to_owned()].into();
        assert!(
            check_judge_template(
                &at,
                "prompt",
                "{{ input.text }} {{ output }} {{ reference }} {{ max }}",
                Some(&have)
            )
            .is_ok()
        );
        assert!(check_judge_template(&at, "prompt", "{{ input.txt }}", Some(&have)).is_err());
        assert!(check_judge_template(&at, "prompt", "{{ secret }}", Some(&have)).is_err());
        assert!(check_judge_template(&at, "prompt", "{% if %}", Some(&have)).is_err());
        assert!(
            check_judge_template(
                &at,
                "prompt",
                super::super::judge::DEFAULT_PROMPT,
                Some(&have)
            )
            .is_ok()
        );
    }
}
