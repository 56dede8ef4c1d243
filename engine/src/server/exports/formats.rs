//! The best configuration as JSON, a `.env` snippet and YAML (the spec's formats). A
//! single-stage pipeline gets the spec's flat fields; every export also lists the stages.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Subject;
use crate::server::error::{Error, Result};

/// A stage's parameters as name → value (extra provider parameters included).
fn parameters(p: &crate::types::Params) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(v) = p.temperature {
        out.insert("temperature".into(), json!(v));
    }
    if let Some(v) = p.top_p {
        out.insert("top_p".into(), json!(v));
    }
    if let Some(v) = p.max_tokens {
        out.insert("max_tokens".into(), json!(v));
    }
    if let Some(v) = &p.stop {
        out.insert("stop".into(), json!(v));
    }
    if let Some(v) = p.seed {
        out.insert("seed".into(), json!(v));
    }
    for (k, v) in &p.extra {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn scores(s: &Subject) -> Map<String, Value> {
    s.best
        .scorers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.mean.map(round))))
        .collect()
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The best configuration as JSON.
pub(super) fn json(s: &Subject) -> String {
    let mut top = Map::new();
    if let [only] = s.stages.as_slice() {
        top.insert("model".into(), json!(only.config.model));
        top.insert("endpoint".into(), json!(only.endpoint));
        for (k, v) in parameters(&only.config.params) {
            top.insert(k, v);
        }
        top.insert("system_prompt".into(), json!(only.config.system));
        top.insert("user_prompt".into(), json!(only.config.user));
    }
    top.insert("score".into(), json!(s.best.score.map(round)));
    top.insert(
        "ci95".into(),
        json!(
            s.best
                .ci_low
                .zip(s.best.ci_high)
                .map(|(a, b)| [round(a), round(b)])
        ),
    );
    top.insert("scores".into(), Value::Object(scores(s)));
    top.insert("experiment".into(), json!(s.experiment.name));
    top.insert("experiment_id".into(), json!(s.experiment.id));
    top.insert("config_key".into(), json!(s.best.config_key));
    top.insert(
        "approved".into(),
        json!(s.best.mark.as_deref() == Some("approved")),
    );
    top.insert("samples".into(), json!(s.best.samples));
    top.insert(
        "stages".into(),
        Value::Array(
            s.stages
                .iter()
                .map(|st| {
                    json!({
                        "name": st.name,
                        "provider": st.provider,
                        "endpoint": st.endpoint,
                        "endpoint_name": st.endpoint_name,
                        "model": st.config.model,
                        "variant": st.config.variant,
                        "parameters": parameters(&st.config.params),
                        "system_prompt": st.config.system,
                        "user_prompt": st.config.user,
                    })
                })
                .collect(),
        ),
    );
    top.insert("exported_at".into(), json!(s.exported_at));
    serde_json::to_string_pretty(&Value::Object(top)).unwrap_or_default() + "\n"
}

/// A value as a `.env` value: bare when safe, else double-quoted with escapes.
fn env_value(v: &str) -> String {
    let safe = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+,".contains(c));
    if safe {
        return v.to_owned();
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '$' => out.push_str("\\$"),
            '`' => out.push_str("\\`"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A stage name as part of a variable name: `clean up` → `CLEAN_UP`.
fn env_name(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

/// The best configuration as a `.env` snippet.
pub(super) fn env(s: &Subject) -> String {
    let mut lines = Vec::new();
    let multi = s.stages.len() > 1;
    let mut used = std::collections::HashSet::new();
    for (k, st) in s.stages.iter().enumerate() {
        let prefix = if multi {
            let mut name = env_name(&st.name);
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                name = format!("STAGE{}", k + 1);
            }
            if !used.insert(name.clone()) {
                name = format!("{name}_{}", k + 1);
            }
            format!("LLM_{name}_")
        } else {
            "LLM_".to_owned()
        };
        if multi {
            lines.push(format!("# Stage {}: {}", k + 1, st.name));
        }
        lines.push(format!("{prefix}MODEL={}", env_value(&st.config.model)));
        if let Some(url) = &st.endpoint {
            lines.push(format!("{prefix}API_URL={}", env_value(url)));
        }
        if let Some(p) = &st.provider {
            lines.push(format!("{prefix}PROVIDER={}", env_value(p)));
        }
        for (name, value) in parameters(&st.config.params) {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            lines.push(format!("{prefix}{}={}", env_name(&name), env_value(&text)));
        }
        if !st.config.system.is_empty() {
            lines.push(format!(
                "{prefix}SYSTEM_PROMPT={}",
                env_value(&st.config.system)
            ));
        }
        lines.push(format!(
            "{prefix}USER_PROMPT={}",
            env_value(&st.config.user)
        ));
    }
    let ci = s
        .best
        .ci_low
        .zip(s.best.ci_high)
        .map(|(a, b)| format!(" (95% CI {a:.3}–{b:.3})"))
        .unwrap_or_default();
    lines.push(format!(
        "# Score: {}{ci} | Experiment: {} | Exported: {}",
        s.best.score.map_or("–".to_owned(), |v| format!("{v:.3}")),
        s.experiment.name.replace('\n', " "),
        s.exported_at.format("%Y-%m-%dT%H:%M:%SZ"),
    ));
    lines.join("\n") + "\n"
}

#[derive(Serialize)]
struct YamlStage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    parameters: Map<String, Value>,
    system_prompt: &'a str,
    user_prompt: &'a str,
}

#[derive(Serialize)]
struct YamlDoc<'a> {
    #[serde(flatten)]
    single: Option<YamlStage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stages: Vec<YamlStage<'a>>,
    metadata: Map<String, Value>,
}

fn stage(st: &super::StageOut, named: bool) -> YamlStage<'_> {
    YamlStage {
        name: named.then_some(st.name.as_str()),
        model: &st.config.model,
        endpoint: st.endpoint.as_deref(),
        provider: st.provider.as_deref(),
        variant: st.config.variant.as_deref(),
        parameters: parameters(&st.config.params),
        system_prompt: &st.config.system,
        user_prompt: &st.config.user,
    }
}

/// The best configuration as YAML (prompts as block literals).
pub(super) fn yaml(s: &Subject) -> Result<String> {
    let mut metadata = Map::new();
    metadata.insert("score".into(), json!(s.best.score.map(round)));
    if let (Some(a), Some(b)) = (s.best.ci_low, s.best.ci_high) {
        metadata.insert("ci95".into(), json!([round(a), round(b)]));
    }
    metadata.insert("scores".into(), Value::Object(scores(s)));
    metadata.insert("experiment".into(), json!(s.experiment.name));
    metadata.insert("config_key".into(), json!(s.best.config_key));
    metadata.insert(
        "exported_at".into(),
        json!(s.exported_at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
    );
    let doc = match s.stages.as_slice() {
        [only] => YamlDoc {
            single: Some(stage(only, false)),
            stages: Vec::new(),
            metadata,
        },
        many => YamlDoc {
            single: None,
            stages: many.iter().map(|st| stage(st, true)).collect(),
            metadata,
        },
    };
    serde_norway::to_string(&doc).map_err(|e| Error::Internal(format!("YAML export: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_quoted_when_needed() {
        assert_eq!(env_value("gpt-4o"), "gpt-4o");
        assert_eq!(env_value("http://x:8000/v1"), "http://x:8000/v1");
        assert_eq!(env_value("a b"), "\"a b\"");
        assert_eq!(
            env_value("line1\nsay \"hi\" $HOME"),
            "\"line1\\nsay \\\"hi\\\" \\$HOME\""
        );
        assert_eq!(env_value(""), "\"\"");
        assert_eq!(env_name("clean up"), "CLEAN_UP");
        assert_eq!(env_name("max_tokens"), "MAX_TOKENS");
    }
}
