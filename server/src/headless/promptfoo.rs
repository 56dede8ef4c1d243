//! `promptlooper import promptfoo promptfooconfig.yaml`: a promptfoo config as an experiment
//! file. Prompts become prompt variants, providers become models and parameters on endpoints,
//! tests' vars become items, and assertions become scorers where one maps; everything else is
//! listed as not mapped (on standard error and at the top of the file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use engine::types::{Dimension, EndpointKind, Params, PromptVariant};
use serde_json::{Map, Value, json};

use super::file::{DataSpec, EndpointSpec, ExperimentFile, ModelSpec, StageSpec, VarySpec};

/// The converted file and what could not be carried over.
pub struct Converted {
    pub file: ExperimentFile,
    pub unmapped: Vec<String>,
    pub notes: Vec<String>,
}

/// Runs the command; returns the exit code (2: the config cannot be read or has no prompts or
/// providers).
pub fn command(config: &Path, output: Option<&Path>) -> i32 {
    let out_dir = output
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let converted = match convert(config, &out_dir) {
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

struct Ctx {
    dir: PathBuf,
    unmapped: Vec<String>,
    notes: Vec<String>,
}

impl Ctx {
    fn read(&self, reference: &str) -> Result<String, String> {
        let rel = reference.trim_start_matches("file://");
        let path = self.dir.join(rel);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {} ({e})", path.display()))
    }
}

/// Converts the promptfoo config at `path`. `out_dir` is where the experiment file goes (paths
/// it names are made relative to it).
pub fn convert(path: &Path, _out_dir: &Path) -> Result<Converted, String> {
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

/// One test case: its vars and its own assertions.
#[derive(Clone, Debug)]
struct Test {
    vars: Map<String, Value>,
    asserts: Vec<Value>,
}

fn read_tests(ctx: &mut Ctx, tests: Option<&Value>) -> Result<Vec<Test>, String> {
    let mut out = Vec::new();
    let list = match tests {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(list)) => list.clone(),
        Some(other) => vec![other.clone()],
    };
    for t in list {
        match t {
            Value::String(s) if s.starts_with("file://") => {
                out.extend(tests_file(ctx, &s)?);
            }
            Value::Object(o) => {
                let mut vars = match o.get("vars") {
                    Some(Value::Object(v)) => v.clone(),
                    Some(Value::String(s)) if s.starts_with("file://") => {
                        match serde_norway::from_str::<Value>(&ctx.read(s)?) {
                            Ok(Value::Object(v)) => v,
                            _ => {
                                ctx.unmapped.push(format!("vars file {s} (not a mapping)"));
                                Map::new()
                            }
                        }
                    }
                    _ => Map::new(),
                };
                load_var_files(ctx, &mut vars);
                for key in o.keys() {
                    if !matches!(
                        key.as_str(),
                        "vars" | "assert" | "description" | "metadata" | "threshold"
                    ) {
                        ctx.unmapped.push(format!("test field `{key}`"));
                    }
                }
                if o.contains_key("threshold") {
                    ctx.unmapped
                        .push("a test's `threshold` (use --fail-under for the whole run)".into());
                }
                out.push(Test {
                    vars,
                    asserts: o
                        .get("assert")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                });
            }
            other => ctx.unmapped.push(format!("test {other}")),
        }
    }
    Ok(out)
}

/// A var given as `file://…` is the file's text (as promptfoo reads it).
fn load_var_files(ctx: &mut Ctx, vars: &mut Map<String, Value>) {
    for (name, v) in vars.iter_mut() {
        if let Value::String(s) = v
            && s.starts_with("file://")
        {
            let lower = s.to_ascii_lowercase();
            if [".js", ".py", ".ts"].iter().any(|e| is_code(&lower, e)) {
                ctx.unmapped.push(format!("var `{name}` computed by {s}"));
                continue;
            }
            match ctx.read(s) {
                Ok(text) => *v = Value::String(text),
                Err(e) => ctx.unmapped.push(format!("var `{name}`: {e}")),
            }
        }
    }
}

/// `file://x.py` or `file://x.py:function`: code promptfoo runs, which has no equivalent.
fn is_code(reference: &str, extension: &str) -> bool {
    reference.ends_with(extension) || reference.contains(&format!("{extension}:"))
}

/// Tests from a CSV (`__expected…` columns are assertions), YAML or JSON(L) file.
fn tests_file(ctx: &mut Ctx, reference: &str) -> Result<Vec<Test>, String> {
    let text = ctx.read(reference)?;
    let lower = reference.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| format!("{reference}: {e}"))?
            .clone();
        let mut out = Vec::new();
        for row in reader.records() {
            let row = row.map_err(|e| format!("{reference}: {e}"))?;
            let mut vars = Map::new();
            let mut asserts = Vec::new();
            for (h, cell) in headers.iter().zip(row.iter()) {
                if h.starts_with("__expected") {
                    if !cell.is_empty() {
                        asserts.push(expected(cell));
                    }
                } else if h.starts_with("__") {
                    // __description, __metadata…: nothing to carry over.
                } else {
                    vars.insert(h.to_owned(), Value::String(cell.to_owned()));
                }
            }
            out.push(Test { vars, asserts });
        }
        return Ok(out);
    }
    let value: Value = if lower.ends_with(".jsonl") {
        Value::Array(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{reference}: {e}"))?,
        )
    } else {
        serde_norway::from_str(&text).map_err(|e| format!("{reference}: {e}"))?
    };
    read_tests(ctx, Some(&value))
}

/// A CSV `__expected` cell as an assertion (`contains: x`, `grade: x`, `similar(0.8): x`, or a
/// plain value meaning equals).
fn expected(cell: &str) -> Value {
    let known = [
        "contains-any",
        "contains-all",
        "icontains-any",
        "icontains-all",
        "not-contains",
        "not-icontains",
        "icontains",
        "contains",
        "starts-with",
        "regex",
        "not-regex",
        "equals",
        "is-json",
        "contains-json",
        "javascript",
        "python",
        "fn",
        "grade",
        "llm-rubric",
        "similar",
        "rouge-n",
        "levenshtein",
        "eval",
    ];
    for k in known {
        if let Some(rest) = cell.strip_prefix(k) {
            let (threshold, rest) = match rest.strip_prefix('(') {
                Some(r) => match r.split_once(')') {
                    Some((t, r)) => (t.parse::<f64>().ok(), r),
                    None => (None, rest),
                },
                None => (None, rest),
            };
            let Some(value) = rest.strip_prefix(':').or(rest.is_empty().then_some("")) else {
                continue;
            };
            let kind = match k {
                "grade" => "llm-rubric",
                "fn" | "eval" => "javascript",
                other => other,
            };
            let value = value.trim();
            let value = if kind.ends_with("-any") || kind.ends_with("-all") {
                json!(value.split(',').map(str::trim).collect::<Vec<_>>())
            } else {
                json!(value)
            };
            let mut a = json!({"type": kind, "value": value});
            if let Some(t) = threshold {
                a["threshold"] = json!(t);
            }
            return a;
        }
    }
    json!({"type": "equals", "value": cell})
}

/// defaultTest's vars under each test's, and every combination of array-valued vars (promptfoo
/// runs a test once per combination).
fn expand(default_test: &Value, tests: Vec<Test>) -> Vec<Test> {
    let defaults = default_test
        .get("vars")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    let tests = if tests.is_empty() && !defaults.is_empty() {
        vec![Test {
            vars: Map::new(),
            asserts: Vec::new(),
        }]
    } else {
        tests
    };
    for t in tests {
        let mut vars = defaults.clone();
        vars.extend(t.vars);
        let mut combos: Vec<Map<String, Value>> = vec![Map::new()];
        for (k, v) in vars {
            let values = match v {
                Value::Array(list) if !list.is_empty() => list,
                other => vec![other],
            };
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    let k = &k;
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert(k.clone(), v.clone());
                        c
                    })
                })
                .collect();
        }
        for vars in combos {
            out.push(Test {
                vars,
                asserts: t.asserts.clone(),
            });
        }
    }
    out
}

fn read_prompts(
    ctx: &mut Ctx,
    prompts: Option<&Value>,
    vars: &BTreeSet<String>,
) -> Result<Vec<PromptVariant>, String> {
    let mut raw: Vec<(Option<String>, String)> = Vec::new();
    match prompts {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => raw.push((None, s.clone())),
        Some(Value::Array(list)) => {
            for p in list {
                match p {
                    Value::String(s) => raw.push((None, s.clone())),
                    Value::Object(o) => {
                        let label = o
                            .get("label")
                            .or_else(|| o.get("id"))
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        match o.get("raw").or_else(|| o.get("id")).and_then(Value::as_str) {
                            Some(text) => raw.push((label, text.to_owned())),
                            None => ctx.unmapped.push(format!("prompt {p}")),
                        }
                    }
                    other => ctx.unmapped.push(format!("prompt {other}")),
                }
            }
        }
        Some(Value::Object(map)) => {
            for (k, v) in map {
                raw.push((v.as_str().map(str::to_owned), k.clone()));
            }
        }
        Some(other) => ctx.unmapped.push(format!("prompts {other}")),
    }
    let mut out = Vec::new();
    for (label, text) in raw {
        let mut bodies: Vec<(Option<String>, String)> = Vec::new();
        if let Some(reference) = text.strip_prefix("file://") {
            let lower = reference.to_ascii_lowercase();
            if [".js", ".py", ".ts", ".mjs", ".cjs"]
                .iter()
                .any(|e| is_code(&lower, e))
                || reference.contains('*')
            {
                ctx.unmapped
                    .push(format!("prompt {text} (functions and globs)"));
                continue;
            }
            let content = ctx.read(&text)?;
            if lower.ends_with(".json") || lower.ends_with(".yaml") || lower.ends_with(".yml") {
                bodies.push((
                    label.clone().or_else(|| Some(reference.to_owned())),
                    content,
                ));
            } else {
                // promptfoo splits a text file into prompts at lines of `---`.
                let parts: Vec<&str> = content.split("\n---\n").collect();
                let many = parts.len() > 1;
                for (i, part) in parts.into_iter().enumerate() {
                    let name = match (&label, many) {
                        (Some(l), true) => Some(format!("{l} {}", i + 1)),
                        (Some(l), false) => Some(l.clone()),
                        (None, true) => Some(format!("{reference} {}", i + 1)),
                        (None, false) => Some(reference.to_owned()),
                    };
                    bodies.push((name, part.trim().to_owned()));
                }
            }
        } else {
            bodies.push((label, text));
        }
        for (name, body) in bodies {
            let name = name.unwrap_or_else(|| format!("prompt {}", out.len() + 1));
            match chat(&body) {
                Some(Ok((system, user))) => out.push(PromptVariant {
                    name,
                    system: (!system.is_empty()).then(|| jinja(&system, vars)),
                    user: Some(jinja(&user, vars)),
                }),
                Some(Err(why)) => ctx.unmapped.push(format!("prompt {name:?}: {why}")),
                None => out.push(PromptVariant {
                    name,
                    system: None,
                    user: Some(jinja(&body, vars)),
                }),
            }
        }
    }
    // Names must be unique among variants.
    let mut seen = BTreeSet::new();
    for p in &mut out {
        let mut name = p.name.clone();
        let mut n = 2;
        while !seen.insert(name.clone()) {
            name = format!("{} ({n})", p.name);
            n += 1;
        }
        p.name = name;
    }
    Ok(out)
}

/// A chat-format prompt (a JSON/YAML list of `{role, content}`) as (system, user); `None` when
/// the text is not one.
fn chat(body: &str) -> Option<Result<(String, String), String>> {
    let trimmed = body.trim_start();
    if !trimmed.starts_with('[') && !trimmed.starts_with("- ") {
        return None;
    }
    let Ok(Value::Array(messages)) = serde_norway::from_str::<Value>(body) else {
        return None;
    };
    if !messages.iter().all(|m| m.get("role").is_some()) {
        return None;
    }
    let mut system = Vec::new();
    let mut user = Vec::new();
    for m in &messages {
        let content = m["content"].as_str().unwrap_or_default().to_owned();
        match m["role"].as_str() {
            Some("system") => system.push(content),
            Some("user") => user.push(content),
            Some(role) => {
                return Some(Err(format!(
                    "a chat prompt with a `{role}` message (a stage has one system and one user message)"
                )));
            }
            None => return Some(Err("a message without a role".into())),
        }
    }
    if user.len() != 1 {
        return Some(Err(format!(
            "a chat prompt with {} user messages (a stage has one)",
            user.len()
        )));
    }
    Some(Ok((system.join("\n\n"), user.remove(0))))
}

/// promptfoo's `{{ var }}` (Nunjucks) → our `{{ input.var }}` (Jinja): every variable name
/// inside `{{ … }}` and `{% … %}` that a test defines gets the `input.` prefix.
pub fn jinja(template: &str, vars: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    loop {
        let next = ["{{", "{%"]
            .iter()
            .filter_map(|o| rest.find(o).map(|at| (at, *o)))
            .min();
        let Some((at, open)) = next else {
            out.push_str(rest);
            return out;
        };
        let close = if open == "{{" { "}}" } else { "%}" };
        out.push_str(&rest[..at + 2]);
        let body_start = at + 2;
        let Some(len) = rest[body_start..].find(close) else {
            out.push_str(&rest[body_start..]);
            return out;
        };
        out.push_str(&prefix_vars(&rest[body_start..body_start + len], vars));
        out.push_str(close);
        rest = &rest[body_start + len + 2..];
    }
}

fn prefix_vars(expr: &str, vars: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(expr.len() + 8);
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            out.push(c);
            i += 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let after_dot = start > 0 && chars[start - 1] == '.';
            if !after_dot && vars.contains(&word) {
                out.push_str("input.");
            }
            out.push_str(&word);
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// One provider as a model on an endpoint, with its parameters.
#[derive(Clone, Debug)]
struct Model {
    endpoint: String,
    spec: EndpointSpec,
    model: String,
    params: Map<String, Value>,
}

fn read_providers(ctx: &mut Ctx, providers: &Value) -> Result<Vec<Model>, String> {
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
                timeout_ms: None,
            },
            model,
            params: config,
        });
    }
    Ok(out)
}

/// `openai:chat:gpt-4o-mini` → (family, kind, base URL, key variable, model).
fn provider(id: &str) -> Option<(String, EndpointKind, String, Option<String>, String)> {
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
fn parameters(ctx: &mut Ctx, models: &[Model]) -> (Params, BTreeMap<String, Dimension>) {
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

/// Per-item checks a Rhai scorer evaluates (promptfoo's string assertions).
const ITEM_CHECKS: &[&str] = &[
    "contains",
    "icontains",
    "not-contains",
    "not-icontains",
    "equals",
    "not-equals",
    "starts-with",
    "contains-any",
    "contains-all",
    "icontains-any",
    "icontains-all",
];

/// The Rhai scorer for per-item checks: the share of an item's checks the output passes (an
/// item with none passes, as a promptfoo test without assertions does).
const CHECKS_SCRIPT: &str = r#"let checks = if "_checks" in input { input._checks } else { [] };
if checks.len() == 0 { return #{score: 1.0, metadata: #{note: "no checks for this item"}}; }
let low = output.to_lower();
let passed = 0;
let failed = [];
for c in checks {
    let t = c["type"];
    let v = c["value"];
    let ok = switch t {
        "contains" => output.contains(v),
        "icontains" => low.contains(v.to_lower()),
        "not-contains" => !output.contains(v),
        "not-icontains" => !low.contains(v.to_lower()),
        "equals" => output == v,
        "not-equals" => output != v,
        "starts-with" => output.starts_with(v),
        "contains-any" => v.some(|x| output.contains(x)),
        "contains-all" => v.all(|x| output.contains(x)),
        "icontains-any" => v.some(|x| low.contains(x.to_lower())),
        "icontains-all" => v.all(|x| low.contains(x.to_lower())),
        _ => false
    };
    if ok { passed += 1; } else { failed.push(`${t} ${v}`); }
}
#{score: passed.to_float() / checks.len().to_float(), metadata: #{passed: passed, checks: checks.len(), failed: failed}}"#;

/// Assertions → scorers and items. Returns the scorers, the items (vars, `_checks`,
/// `_rubric`, reference) and an endpoint a scorer needs that no provider gave.
fn assertions(
    ctx: &mut Ctx,
    default_test: &Value,
    tests: &[Test],
    models: &[Model],
) -> (Vec<Value>, Vec<Value>, Option<(String, EndpointSpec)>) {
    let global: Vec<Value> = default_test
        .get("assert")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut scorers: Vec<Value> = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut add = |scorers: &mut Vec<Value>, base: &str, mut s: Value, weight: Option<f64>| {
        let mut name = base.to_owned();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        s["name"] = json!(name);
        if let Some(w) = weight {
            s["weight"] = json!(w);
        }
        scorers.push(s);
    };
    let mut global_checks: Vec<Value> = Vec::new();
    let mut global_rubric: Option<String> = None;
    let mut global_reference: Option<String> = None;
    let mut need_judge = false;
    let mut need_embed = false;
    let mut unmapped: BTreeMap<String, usize> = BTreeMap::new();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for a in &global {
        let t = a["type"].as_str().unwrap_or_default();
        let v = &a["value"];
        let weight = a["weight"].as_f64();
        match t {
            "contains" | "icontains" | "not-contains" | "not-icontains" => {
                let key = if t.starts_with("not-") {
                    "forbidden"
                } else {
                    "required"
                };
                add(
                    &mut scorers,
                    t,
                    json!({"kind": "keywords", key: [text(v)], "case_sensitive": !t.contains("icontains"), "mode": "all"}),
                    weight,
                );
            }
            "contains-any" | "contains-all" | "icontains-any" | "icontains-all" => {
                let terms: Vec<String> = match v {
                    Value::Array(list) => list.iter().map(text).collect(),
                    other => text(other)
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .collect(),
                };
                add(
                    &mut scorers,
                    t,
                    json!({"kind": "keywords", "required": terms, "case_sensitive": !t.starts_with('i'),
                           "mode": if t.ends_with("-any") { "any" } else { "all" }}),
                    weight,
                );
            }
            "regex" => add(
                &mut scorers,
                "regex",
                json!({"kind": "format", "format": "regex", "pattern": text(v)}),
                weight,
            ),
            "is-json" | "contains-json" => {
                let s = if v.is_object() {
                    json!({"kind": "format", "format": "json_schema", "schema": v})
                } else {
                    json!({"kind": "format", "format": "json"})
                };
                add(&mut scorers, "json", s, weight);
            }
            "equals" | "not-equals" | "starts-with" => {
                global_checks.push(json!({"type": t, "value": text(v)}))
            }
            "llm-rubric" => {
                global_rubric = Some(text(v));
                need_judge = true;
            }
            "similar" => {
                global_reference = Some(text(v));
                need_embed = true;
            }
            other => *unmapped.entry(other.to_owned()).or_default() += 1,
        }
    }
    // Per-test assertions.
    let mut items = Vec::new();
    let mut any_checks = !global_checks.is_empty();
    let mut any_rubric = false;
    let mut any_json = false;
    let mut any_regex: Option<String> = None;
    let mut regex_differs = false;
    let mut lexical = false;
    for t in tests {
        let mut checks = global_checks.clone();
        let mut rubrics: Vec<String> = Vec::new();
        let mut reference: Option<String> = global_reference.clone();
        for a in &t.asserts {
            let kind = a["type"].as_str().unwrap_or_default();
            let v = &a["value"];
            if ITEM_CHECKS.contains(&kind) {
                checks.push(json!({"type": kind, "value": if v.is_array() { v.clone() } else { json!(text(v)) }}));
                any_checks = true;
                continue;
            }
            match kind {
                "llm-rubric" => {
                    rubrics.push(text(v));
                    any_rubric = true;
                }
                "similar" | "rouge-n" | "levenshtein" => {
                    if reference.is_none() {
                        reference = Some(text(v));
                    }
                    if kind == "similar" {
                        need_embed = true;
                    } else {
                        lexical = true;
                    }
                }
                "is-json" | "contains-json" => any_json = true,
                "regex" => {
                    let p = text(v);
                    match &any_regex {
                        Some(prev) if *prev != p => regex_differs = true,
                        _ => any_regex = Some(p),
                    }
                }
                other => *unmapped.entry(other.to_owned()).or_default() += 1,
            }
        }
        let mut item = Map::new();
        item.insert("input".into(), Value::Object(t.vars.clone()));
        if let Some(r) = reference {
            item.insert("reference".into(), json!(r));
        }
        if !checks.is_empty() {
            item["input"]["_checks"] = Value::Array(checks);
        }
        if !rubrics.is_empty() {
            item["input"]["_rubric"] = json!(rubrics.join("\n"));
        }
        items.push(Value::Object(item));
    }
    if any_checks {
        for item in &mut items {
            if item["input"].get("_checks").is_none() {
                item["input"]["_checks"] = json!([]);
            }
        }
        add(
            &mut scorers,
            "checks",
            json!({"kind": "rhai", "script": CHECKS_SCRIPT}),
            None,
        );
        ctx.notes.push(
            "string assertions (contains, equals, starts-with…) are checked per item by the `checks` Rhai scorer from each item's `_checks`".into(),
        );
    }
    if any_json {
        add(
            &mut scorers,
            "json",
            json!({"kind": "format", "format": "json"}),
            None,
        );
        if tests.iter().any(|t| {
            !t.asserts
                .iter()
                .any(|a| matches!(a["type"].as_str(), Some("is-json" | "contains-json")))
        }) {
            ctx.notes
                .push("is-json applies to every item (some tests did not ask for it)".into());
        }
    }
    if let Some(p) = any_regex {
        if regex_differs {
            *unmapped
                .entry("regex (a different pattern per test)".into())
                .or_default() += 1;
        } else {
            add(
                &mut scorers,
                "regex",
                json!({"kind": "format", "format": "regex", "pattern": p}),
                None,
            );
        }
    }
    if lexical {
        add(
            &mut scorers,
            "rouge",
            json!({"kind": "lexical_similarity", "metric": "rouge_l"}),
            None,
        );
        ctx.notes.push("rouge-n and levenshtein become lexical_similarity (ROUGE-L) against the item's reference; thresholds are not used (scores are continuous)".into());
    }
    let mut extra_endpoint = None;
    let openai = models
        .iter()
        .find(|m| m.spec.kind == EndpointKind::Openai && m.endpoint == "openai");
    if need_judge || any_rubric {
        if any_rubric {
            for item in &mut items {
                if item["input"].get("_rubric").is_none() {
                    item["input"]["_rubric"] = json!("");
                }
            }
        }
        let rubric = match (&global_rubric, any_rubric) {
            (Some(g), true) => format!("{g}\n{{{{ input._rubric }}}}"),
            (Some(g), false) => g.clone(),
            (None, _) => "{% if input._rubric %}{{ input._rubric }}{% else %}(This item has no rubric: judge whether the output does what the request asked.){% endif %}".into(),
        };
        let prompt = format!(
            "You grade an AI assistant's output against a rubric.\n\nRubric:\n{rubric}\n\nOutput:\n{{{{ output }}}}\n\nReply with a score from {{{{ min }}}} (fails the rubric) to {{{{ max }}}} (fully meets it), as `Score: N`."
        );
        let (endpoint, model) = match openai {
            Some(m) => (m.endpoint.clone(), "gpt-4o".to_owned()),
            None => (models[0].endpoint.clone(), models[0].model.clone()),
        };
        ctx.notes.push(format!(
            "llm-rubric is graded by {model} on {endpoint} (promptfoo's default grader is an OpenAI model); change the llm_rubric scorer's endpoint/model to pick another"
        ));
        add(
            &mut scorers,
            "llm_rubric",
            json!({"kind": "llm_judge", "endpoint": endpoint, "model": model, "prompt": prompt, "min": 0, "max": 10}),
            None,
        );
    }
    if need_embed {
        let endpoint = match openai {
            Some(m) => m.endpoint.clone(),
            None => {
                let spec = EndpointSpec {
                    kind: EndpointKind::Openai,
                    base_url: "${OPENAI_BASE_URL:-https://api.openai.com/v1}".into(),
                    api_key_env: Some("OPENAI_API_KEY".into()),
                    options: None,
                    max_concurrency: None,
                    timeout_ms: None,
                };
                extra_endpoint = Some(("openai".to_owned(), spec));
                "openai".to_owned()
            }
        };
        add(
            &mut scorers,
            "similar",
            json!({"kind": "embedding_similarity", "endpoint": endpoint, "model": "text-embedding-3-large"}),
            None,
        );
        ctx.notes.push("similar becomes embedding_similarity (text-embedding-3-large, as promptfoo's default) against the item's reference; its threshold is not used (scores are continuous)".into());
    }
    for (kind, count) in unmapped {
        ctx.unmapped.push(format!("assertion `{kind}` ({count}×)"));
    }
    (scorers, items, extra_endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

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
