//! `promptlooper import promptfoo promptfooconfig.yaml`: a promptfoo config as an experiment
//! file. Prompts become prompt variants, providers become models and parameters on endpoints,
//! tests' vars become items, and assertions become scorers where one maps; everything else is
//! listed as not mapped (on standard error and at the top of the file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::file::{DataSpec, EndpointSpec, ExperimentFile, ModelSpec, StageSpec, VarySpec};

mod assertions;
mod cases;
mod prompts;
mod providers;

use self::assertions::assertions;
use self::cases::{expand, read_tests};
use self::prompts::read_prompts;
use self::providers::{parameters, read_providers};

/// The converted file and what could not be carried over.
pub struct Converted {
    pub file: ExperimentFile,
    pub unmapped: Vec<String>,
    pub notes: Vec<String>,
}

/// Runs the command; returns the exit code (2: the config cannot be read or has no prompts or
/// providers).
pub fn command(config: &Path, output: Option<&Path>) -> i32 {
    let converted = match convert(config) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("promptlooper: {}: {message}", config.display());
            return super::EXIT_BAD_FILE;
        }
    };
    let text = render(config, &converted);
    match output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("promptlooper: cannot write {} ({e})", path.display());
                return super::EXIT_FAILED;
            }
        }
        None => print!("{text}"),
    }
    let f = &converted.file;
    let prompts = f.stages[0].vary.prompts.len().max(1);
    let models = f.stages[0].vary.models.len().max(1);
    eprintln!(
        "imported {}: {} item(s), {prompts} prompt(s), {models} model(s), {} scorer(s){}",
        config.display(),
        f.data.items.as_ref().map_or(0, Vec::len),
        f.scorers.len(),
        output.map_or(String::new(), |p| format!(" → {}", p.display()))
    );
    for n in &converted.notes {
        eprintln!("note: {n}");
    }
    for u in &converted.unmapped {
        eprintln!("not mapped: {u}");
    }
    0
}

/// The experiment file's text, with the import's notes and omissions as comments on top.
pub fn render(config: &Path, c: &Converted) -> String {
    let mut text = format!(
        "# Imported from {} by `promptlooper import promptfoo`.\n# Run it with: promptlooper run <this file> [--fail-under 0.8] [--out results]\n",
        config.display()
    );
    for n in &c.notes {
        text.push_str(&format!("# Note: {}\n", n.replace('\n', " ")));
    }
    if !c.unmapped.is_empty() {
        text.push_str("# Not mapped (no PromptLooper equivalent; see README \"CLI for CI\"):\n");
        for u in &c.unmapped {
            text.push_str(&format!("#   - {}\n", u.replace('\n', " ")));
        }
    }
    text.push_str(&serde_norway::to_string(&c.file).unwrap_or_default());
    text
}

pub(super) struct Ctx {
    pub(super) dir: PathBuf,
    pub(super) unmapped: Vec<String>,
    pub(super) notes: Vec<String>,
}

impl Ctx {
    pub(super) fn read(&self, reference: &str) -> Result<String, String> {
        let rel = reference.trim_start_matches("file://");
        let path = self.dir.join(rel);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {} ({e})", path.display()))
    }
}

/// Converts the promptfoo config at `path`.
pub fn convert(path: &Path) -> Result<Converted, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it ({e})"))?;
    let config: Value =
        serde_norway::from_str(&text).map_err(|e| format!("not valid YAML: {e}"))?;
    let Some(config) = config.as_object() else {
        return Err("a promptfoo config is a mapping (prompts, providers, tests)".into());
    };
    let mut ctx = Ctx {
        dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        unmapped: Vec::new(),
        notes: Vec::new(),
    };
    for key in config.keys() {
        if !matches!(
            key.as_str(),
            "description"
                | "prompts"
                | "providers"
                | "targets"
                | "tests"
                | "defaultTest"
                | "scenarios"
                | "outputPath"
                | "sharing"
                | "evaluateOptions"
                | "env"
                | "$schema"
        ) {
            ctx.unmapped.push(format!("top-level `{key}`"));
        }
    }
    for key in ["scenarios", "env"] {
        if config.contains_key(key) {
            ctx.unmapped.push(format!("top-level `{key}`"));
        }
    }

    // Tests first: their vars name the template variables.
    let default_test = config.get("defaultTest").cloned().unwrap_or(Value::Null);
    let tests = read_tests(&mut ctx, config.get("tests"))?;
    let tests = expand(&default_test, tests);
    let vars: BTreeSet<String> = tests.iter().flat_map(|t| t.vars.keys().cloned()).collect();

    let prompts = read_prompts(&mut ctx, config.get("prompts"), &vars)?;
    if prompts.is_empty() {
        return Err("no prompts to import".into());
    }
    let providers = config
        .get("providers")
        .or_else(|| config.get("targets"))
        .ok_or("no providers to import")?;
    let models = read_providers(&mut ctx, providers)?;
    if models.is_empty() {
        return Err("none of the providers maps to an endpoint".into());
    }

    let (scorers, items, endpoint_needs) = assertions(&mut ctx, &default_test, &tests, &models);
    let mut endpoints: BTreeMap<String, EndpointSpec> = BTreeMap::new();
    for m in &models {
        endpoints
            .entry(m.endpoint.clone())
            .or_insert_with(|| m.spec.clone());
    }
    if let Some((name, spec)) = endpoint_needs {
        endpoints.entry(name).or_insert(spec);
    }

    let first = &models[0];
    let mut vary = VarySpec::default();
    if prompts.len() > 1 {
        vary.prompts = prompts.clone();
    }
    if models.len() > 1 {
        vary.models = models
            .iter()
            .map(|m| {
                if m.endpoint == first.endpoint {
                    ModelSpec::Name(m.model.clone())
                } else {
                    ModelSpec::On {
                        endpoint: Some(m.endpoint.clone()),
                        model: m.model.clone(),
                    }
                }
            })
            .collect();
    }
    let (params, varied) = parameters(&mut ctx, &models);
    vary.params = varied;
    let stage = StageSpec {
        name: Some("prompt".into()),
        endpoint: first.endpoint.clone(),
        model: first.model.clone(),
        system: prompts[0].system.clone().unwrap_or_default(),
        user: prompts[0].user.clone().unwrap_or_default(),
        params,
        vary,
    };
    let description = config
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = if description.is_empty() {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "promptfoo import".into())
    } else {
        description.chars().take(80).collect()
    };
    if items.is_empty() {
        return Err("no tests to import (the experiment needs at least one item)".into());
    }
    Ok(Converted {
        file: ExperimentFile {
            project: "promptfoo".into(),
            name,
            description,
            endpoints,
            data: DataSpec {
                items: Some(items),
                ..DataSpec::default()
            },
            stages: vec![stage],
            scorers,
            strategy: None,
            repeats: None,
            budget: None,
            fail_under: None,
            exports: None,
        },
        unmapped: ctx.unmapped,
        notes: ctx.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::cases::{Test, expand, expected};
    use super::prompts::jinja;
    use super::providers::provider;
    use super::*;
    use engine::types::EndpointKind;
    use serde_json::json;

    #[test]
    fn nunjucks_variables_become_inputs() {
        let vars: BTreeSet<String> = ["topic", "n"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            jinja(
                "Write {{n}} lines on {{ topic | upper }} {% if topic %}x{% endif %} {{ other }} {{ 'topic' }}",
                &vars
            ),
            "Write {{input.n}} lines on {{ input.topic | upper }} {% if input.topic %}x{% endif %} {{ other }} {{ 'topic' }}"
        );
    }

    #[test]
    fn providers_map_to_endpoints() {
        let (family, kind, _, key, model) = provider("openai:chat:gpt-4o-mini").unwrap();
        assert_eq!(
            (family.as_str(), kind, key.as_deref(), model.as_str()),
            (
                "openai",
                EndpointKind::Openai,
                Some("OPENAI_API_KEY"),
                "gpt-4o-mini"
            )
        );
        let (_, kind, _, _, model) =
            provider("anthropic:messages:claude-3-5-haiku-latest").unwrap();
        assert_eq!(
            (kind, model.as_str()),
            (EndpointKind::Anthropic, "claude-3-5-haiku-latest")
        );
        assert!(provider("python:provider.py").is_none());
        assert!(provider("openai:embedding:text-embedding-3-small").is_none());
    }

    #[test]
    fn csv_expectations_are_assertions() {
        assert_eq!(
            expected("contains: Paris"),
            json!({"type": "contains", "value": "Paris"})
        );
        assert_eq!(expected("grade: is polite")["type"], "llm-rubric");
        assert_eq!(
            expected("similar(0.8): hello"),
            json!({"type": "similar", "value": "hello", "threshold": 0.8})
        );
        assert_eq!(
            expected("Paris"),
            json!({"type": "equals", "value": "Paris"})
        );
        assert_eq!(expected("is-json")["type"], "is-json");
    }

    #[test]
    fn array_vars_expand() {
        let t = Test {
            vars: serde_json::from_value(json!({"a": [1, 2], "b": ["x", "y"]})).unwrap(),
            asserts: vec![],
        };
        assert_eq!(expand(&Value::Null, vec![t]).len(), 4);
    }
}
