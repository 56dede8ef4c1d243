//! promptfoo providers → endpoints, models and parameters.

use std::collections::{BTreeMap, BTreeSet};

use engine::types::{Dimension, EndpointKind, Params};
use serde_json::{Map, Value, json};

use super::Ctx;
use crate::headless::file::EndpointSpec;

/// One provider as a model on an endpoint, with its parameters.
#[derive(Clone, Debug)]
pub(super) struct Model {
    pub(super) endpoint: String,
    pub(super) spec: EndpointSpec,
    pub(super) model: String,
    pub(super) params: Map<String, Value>,
}

pub(super) fn read_providers(ctx: &mut Ctx, providers: &Value) -> Result<Vec<Model>, String> {
    let list: Vec<(String, Map<String, Value>)> = match providers {
        Value::String(s) => vec![(s.clone(), Map::new())],
        Value::Array(list) => list
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some((s.clone(), Map::new())),
                Value::Object(o) => match o.get("id").and_then(Value::as_str) {
                    Some(id) => Some((
                        id.to_owned(),
                        o.get("config")
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default(),
                    )),
                    // The older `{ "openai:gpt-4o": { config: … } }` form.
                    None if o.len() == 1 => o.iter().next().map(|(id, v)| {
                        (
                            id.clone(),
                            v.get("config")
                                .and_then(Value::as_object)
                                .cloned()
                                .unwrap_or_default(),
                        )
                    }),
                    None => {
                        ctx.unmapped.push(format!("provider {p}"));
                        None
                    }
                },
                other => {
                    ctx.unmapped.push(format!("provider {other}"));
                    None
                }
            })
            .collect(),
        other => return Err(format!("providers must be a list (got {other})")),
    };
    let mut out: Vec<Model> = Vec::new();
    let mut endpoint_names: BTreeMap<(String, String), String> = BTreeMap::new();
    for (id, mut config) in list {
        let Some((family, kind, url, key_env, model)) = provider(&id) else {
            ctx.unmapped.push(format!(
                "provider {id} (no PromptLooper endpoint speaks it; OpenAI-compatible and Anthropic APIs do)"
            ));
            continue;
        };
        let url = config
            .remove("apiBaseUrl")
            .or_else(|| {
                config
                    .remove("apiHost")
                    .map(|h| json!(format!("https://{}/v1", h.as_str().unwrap_or_default())))
            })
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or(url);
        let key_env = config
            .remove("apiKeyEnvar")
            .and_then(|v| v.as_str().map(str::to_owned))
            .or(key_env);
        if config.remove("apiKey").is_some() {
            ctx.notes.push(format!(
                "provider {id}: its apiKey is not copied; the file reads the key from the environment variable {}",
                key_env.as_deref().unwrap_or("named by api_key_env")
            ));
        }
        for k in [
            "headers",
            "organization",
            "functions",
            "tools",
            "passthrough",
        ] {
            if config.remove(k).is_some() {
                ctx.unmapped.push(format!("provider {id}: config `{k}`"));
            }
        }
        let name = endpoint_names
            .entry((family.clone(), url.clone()))
            .or_insert_with_key(|(family, _)| {
                let taken = out
                    .iter()
                    .filter(|m| m.endpoint.starts_with(family.as_str()))
                    .count();
                if taken == 0 {
                    family.clone()
                } else {
                    format!("{family}-{}", taken + 1)
                }
            })
            .clone();
        out.push(Model {
            endpoint: name,
            spec: EndpointSpec {
                kind,
                base_url: url,
                api_key_env: key_env,
                options: None,
                max_concurrency: None,
                rpm: None,
                tpm: None,
                timeout_ms: None,
            },
            model,
            params: config,
        });
    }
    Ok(out)
}

/// `openai:chat:gpt-4o-mini` → (family, kind, base URL, key variable, model).
pub(super) fn provider(id: &str) -> Option<(String, EndpointKind, String, Option<String>, String)> {
    let (family, rest) = id.split_once(':')?;
    let model = |r: &str| {
        for p in ["chat:", "messages:", "completion:"] {
            if let Some(m) = r.strip_prefix(p) {
                return m.to_owned();
            }
        }
        r.to_owned()
    };
    let openai = |url: &str, var: Option<&str>| {
        Some((
            family.to_owned(),
            EndpointKind::Openai,
            url.to_owned(),
            var.map(str::to_owned),
            model(rest),
        ))
    };
    if rest.starts_with("embedding") || rest.starts_with("embeddings") {
        return None;
    }
    match family {
        "openai" => openai(
            "${OPENAI_BASE_URL:-https://api.openai.com/v1}",
            Some("OPENAI_API_KEY"),
        ),
        "anthropic" => Some((
            "anthropic".into(),
            EndpointKind::Anthropic,
            "${ANTHROPIC_BASE_URL:-https://api.anthropic.com}".into(),
            Some("ANTHROPIC_API_KEY".into()),
            model(rest),
        )),
        "ollama" => openai("${OLLAMA_BASE_URL:-http://localhost:11434}/v1", None),
        "openrouter" => openai("https://openrouter.ai/api/v1", Some("OPENROUTER_API_KEY")),
        "groq" => openai("https://api.groq.com/openai/v1", Some("GROQ_API_KEY")),
        "mistral" => openai("https://api.mistral.ai/v1", Some("MISTRAL_API_KEY")),
        "deepseek" => openai("https://api.deepseek.com/v1", Some("DEEPSEEK_API_KEY")),
        "togetherai" => openai("https://api.together.xyz/v1", Some("TOGETHER_API_KEY")),
        "fireworks" => openai(
            "https://api.fireworks.ai/inference/v1",
            Some("FIREWORKS_API_KEY"),
        ),
        "perplexity" => openai("https://api.perplexity.ai", Some("PERPLEXITY_API_KEY")),
        "vllm" | "localai" => openai("${OPENAI_BASE_URL:-http://localhost:8000/v1}", None),
        _ => None,
    }
}

/// The parameters every provider shares go on the stage; those that differ become a swept
/// dimension with each value (the grid then crosses them with every model).
pub(super) fn parameters(ctx: &mut Ctx, models: &[Model]) -> (Params, BTreeMap<String, Dimension>) {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for m in models {
        keys.extend(m.params.keys().cloned());
    }
    let mut fixed = Map::new();
    let mut varied = BTreeMap::new();
    for k in keys {
        let mut values: Vec<Value> = Vec::new();
        let mut missing = false;
        for m in models {
            match m.params.get(&k) {
                Some(v) if !values.contains(v) => values.push(v.clone()),
                Some(_) => {}
                None => missing = true,
            }
        }
        if values.len() == 1 {
            if missing {
                ctx.notes.push(format!(
                    "`{k}` is set by some providers only: the stage sets it for every model"
                ));
            }
            fixed.insert(k, values.remove(0));
        } else {
            if missing {
                ctx.notes.push(format!(
                    "`{k}` is set by some providers only: the models without it are tried with those values too"
                ));
            }
            ctx.notes.push(format!(
                "providers differ in `{k}`: the grid tries every model with each value ({})",
                values
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            varied.insert(k, Dimension::Values(values));
        }
    }
    let mut params = Params::default();
    for (k, v) in fixed {
        match k.as_str() {
            "temperature" => params.temperature = v.as_f64(),
            "top_p" => params.top_p = v.as_f64(),
            "max_tokens" => params.max_tokens = v.as_u64().map(|n| n as u32),
            "seed" => params.seed = v.as_i64(),
            "stop" => {
                params.stop = v.as_array().map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
            }
            _ => {
                params.extra.insert(k, v);
            }
        }
    }
    (params, varied)
}
