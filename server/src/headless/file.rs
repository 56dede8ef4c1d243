//! The experiment file `promptlooper run` reads: YAML naming endpoints, sample data, stages,
//! the parameter space, scorers and the strategy. Every error names the file, the line and
//! the field (`experiment.yaml:14: stages[0].model: …`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use engine::types::{
    Budget, Dimension, EndpointKind, Params, PromptVariant, SampleFormat, Strategy,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The file as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// The project the experiment goes in (found by name, created when missing).
    #[serde(default = "default_project")]
    pub project: String,
    /// The experiment's name; each run adds the time, so names never clash.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Endpoints by the name stages and scorers use.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, EndpointSpec>,
    pub data: DataSpec,
    pub stages: Vec<StageSpec>,
    /// Scorer objects as in an experiment's `scoring_config`, with `endpoint: <name>` in
    /// place of `endpoint_id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scorers: Vec<Value>,
    /// `grid` (default), or `{kind: random, samples: 20, seed: 7}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// The best weighted score must reach this (0 to 1), unless `--fail-under` says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_under: Option<f64>,
    /// What `--out` receives: any of best, env, yaml, report (default all four).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exports: Option<Vec<String>>,
}

fn default_project() -> String {
    "CLI".to_owned()
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    pub kind: EndpointKind,
    /// `${VAR}` and `${VAR:-default}` are read from the environment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_url: String,
    /// The environment variable holding the API key (the key itself never goes in the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<i64>,
    /// Requests per minute, across every process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<i64>,
    /// Tokens per minute, across every process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Items inline: `{input: {…}, reference: …}` or flat objects (`reference`, `id`, `tags`,
    /// `split` are special; every other key is an input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    /// A CSV, JSONL or JSON file, relative to the experiment file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A shared dataset of the project, by name (and version, default the newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_version: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub endpoint: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "params_empty")]
    pub params: Params,
    /// What the sweep varies in this stage.
    #[serde(default, skip_serializing_if = "VarySpec::is_empty")]
    pub vary: VarySpec,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VarySpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<PromptVariant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Dimension>,
}

impl VarySpec {
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty() && self.models.is_empty() && self.params.is_empty()
    }
}

fn params_empty(p: &Params) -> bool {
    *p == Params::default()
}

/// `gpt-4o-mini`, or `{endpoint: other, model: gpt-4o}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ModelSpec {
    Name(String),
    On {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        model: String,
    },
}

/// A mistake in the file, placed.
#[derive(Debug)]
pub struct FileError {
    pub file: String,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Where the sample data comes from, resolved.
#[derive(Clone, Debug)]
pub enum Data {
    Items(Vec<Value>),
    File { path: PathBuf, format: SampleFormat },
    Dataset { name: String, version: Option<i64> },
}

/// A file read and checked, with what is needed to place later errors.
pub struct Loaded {
    pub spec: ExperimentFile,
    pub data: Data,
    pub strategy: Strategy,
    /// The endpoint a guided strategy's proposer names (`proposer: {endpoint: name, …}`).
    pub proposer_endpoint: Option<String>,
    /// Endpoint name → API key read from its variable.
    pub keys: HashMap<String, String>,
    locator: Locator,
    file: String,
}

impl Loaded {
    /// An error about `field` (a path in the file: `stages[0].model`), placed at its line or
    /// its nearest parent's.
    pub fn error(&self, field: &str, message: impl Into<String>) -> FileError {
        FileError {
            file: self.file.clone(),
            line: self.locator.line_of(field),
            field: (!field.is_empty()).then(|| field.to_owned()),
            message: message.into(),
        }
    }

    /// An engine validation error, its field translated to the file's names.
    pub fn engine_error(&self, field: Option<&str>, message: &str) -> FileError {
        let field = field.map(translate).unwrap_or_default();
        self.error(&field, strip_field(message))
    }
}

/// A message without the field name it may start with (`scoring_config[1].kind: …`): the
/// error shows the field, in the file's terms, already.
pub fn strip_field(message: &str) -> &str {
    match message.split_once(": ") {
        Some((head, rest))
            if !head.is_empty()
                && !head.contains(char::is_whitespace)
                && head
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_.[]".contains(c)) =>
        {
            rest
        }
        _ => message,
    }
}

/// The engine's field names → the file's (`pipeline_stages[0].endpoint_id` → `stages[0].endpoint`).
pub fn translate(field: &str) -> String {
    let mut f = field.to_owned();
    for (from, to) in [
        ("pipeline_stages", "stages"),
        ("scoring_config", "scorers"),
        ("sample_data", "data.items"),
        ("project_id", "project"),
        ("dataset_version", "data.dataset_version"),
        ("dataset", "data.dataset"),
        ("items", "data"),
    ] {
        if f == from || f.starts_with(&format!("{from}[")) || f.starts_with(&format!("{from}.")) {
            f = format!("{to}{}", &f[from.len()..]);
            break;
        }
    }
    if let Some(rest) = f.strip_prefix("parameter_space.stages[")
        && let Some((index, tail)) = rest.split_once(']')
    {
        f = format!("stages[{index}].vary{tail}");
    }
    f.replace(".endpoint_id", ".endpoint")
}

/// Reads and checks `path`: YAML syntax, the fields and their types, the data source, the
/// endpoints stages and scorers name, and the API key variables.
pub fn load(path: &Path) -> Result<Loaded, FileError> {
    let file = path.display().to_string();
    let fail = |line: Option<usize>, field: Option<String>, message: String| FileError {
        file: file.clone(),
        line,
        field,
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(None, None, format!("cannot read the file ({e})")))?;
    let locator = Locator::new(&text).map_err(|(line, message)| fail(Some(line), None, message))?;
    let de = serde_norway::Deserializer::from_str(&text);
    let spec: ExperimentFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let line = locator
            .exact(&path)
            .or_else(|| inner.location().map(|l| l.line()))
            .or_else(|| locator.line_of(&path));
        let message = inner.to_string();
        // serde_norway appends " at line N column M"; the line is shown in front already.
        let message = match message.find(" at line ") {
            Some(at) => message[..at].to_owned(),
            None => message,
        };
        let message = strip_field(&message).to_owned();
        fail(line, (path != ".").then_some(path), message)
    })?;
    let mut loaded = Loaded {
        data: Data::Items(Vec::new()),
        strategy: Strategy::Grid,
        proposer_endpoint: None,
        keys: HashMap::new(),
        locator,
        file,
        spec,
    };
    loaded.data = data(&loaded, path)?;
    (loaded.strategy, loaded.proposer_endpoint) = strategy(&loaded)?;
    check_names(&loaded)?;
    for (name, ep) in &loaded.spec.endpoints {
        let Some(var) = &ep.api_key_env else { continue };
        match std::env::var(var) {
            Ok(key) if !key.is_empty() => {
                loaded.keys.insert(name.clone(), key);
            }
            _ => {
                return Err(loaded.error(
                    &format!("endpoints.{name}.api_key_env"),
                    format!("the environment variable {var} is not set"),
                ));
            }
        }
    }
    let mut resolved = Vec::new();
    for (name, ep) in &loaded.spec.endpoints {
        let url = interpolate(&ep.base_url)
            .map_err(|m| loaded.error(&format!("endpoints.{name}.base_url"), m))?;
        resolved.push((name.clone(), url));
    }
    for (name, url) in resolved {
        if let Some(ep) = loaded.spec.endpoints.get_mut(&name) {
            ep.base_url = url;
        }
    }
    if let Some(t) = loaded.spec.fail_under
        && !(0.0..=1.0).contains(&t)
    {
        return Err(loaded.error("fail_under", "must be between 0 and 1"));
    }
    if let Some(list) = &loaded.spec.exports {
        for (i, format) in list.iter().enumerate() {
            if !engine::types::EXPORT_FORMATS.contains(&format.as_str()) {
                return Err(loaded.error(
                    &format!("exports[{i}]"),
                    format!(
                        "unknown export {format:?} (one of {})",
                        engine::types::EXPORT_FORMATS.join(", ")
                    ),
                ));
            }
        }
    }
    if loaded.spec.stages.is_empty() {
        return Err(loaded.error("stages", "at least one stage is needed"));
    }
    Ok(loaded)
}

fn data(l: &Loaded, path: &Path) -> Result<Data, FileError> {
    let d = &l.spec.data;
    let given = [d.items.is_some(), d.file.is_some(), d.dataset.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(l.error(
            "data",
            "give exactly one of items (inline), file (a CSV/JSONL/JSON path) or dataset (a project dataset's name)",
        ));
    }
    if d.dataset_version.is_some() && d.dataset.is_none() {
        return Err(l.error("data.dataset_version", "only with data.dataset"));
    }
    if let Some(items) = &d.items {
        if items.is_empty() {
            return Err(l.error("data.items", "no items"));
        }
        return Ok(Data::Items(items.clone()));
    }
    if let Some(name) = &d.dataset {
        return Ok(Data::Dataset {
            name: name.clone(),
            version: d.dataset_version,
        });
    }
    let file = d.file.as_deref().unwrap_or_default();
    let full = path.parent().unwrap_or(Path::new(".")).join(file);
    let ext = full
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let format = match ext.as_str() {
        "csv" => SampleFormat::Csv,
        "jsonl" | "ndjson" => SampleFormat::Jsonl,
        "json" => SampleFormat::Json,
        _ => {
            return Err(l.error(
                "data.file",
                format!("{file}: the name must end in .csv, .jsonl, .ndjson or .json"),
            ));
        }
    };
    if !full.is_file() {
        return Err(l.error("data.file", format!("{} does not exist", full.display())));
    }
    Ok(Data::File { path: full, format })
}

/// The strategy, and the endpoint its proposer names (the file names endpoints; the
/// engine takes ids, filled in once the endpoints exist).
fn strategy(l: &Loaded) -> Result<(Strategy, Option<String>), FileError> {
    match &l.spec.strategy {
        None => Ok((Strategy::Grid, None)),
        Some(Value::String(s)) if s == "grid" => Ok((Strategy::Grid, None)),
        Some(Value::String(s)) if s == "guided" => Ok((
            serde_json::from_value(serde_json::json!({"kind": "guided"})).expect("a guided strategy"),
            None,
        )),
        Some(Value::String(s)) => Err(l.error(
            "strategy",
            format!(
                "unknown strategy {s:?}: grid, guided, {{kind: random, samples: N, seed: S}} or {{kind: guided, seed: S, …}}"
            ),
        )),
        Some(v) => {
            let mut v = v.clone();
            let mut proposer = None;
            if let Some(p) = v.get_mut("proposer").and_then(Value::as_object_mut) {
                if p.contains_key("endpoint_id") {
                    return Err(l.error(
                        "strategy.proposer.endpoint_id",
                        "name the endpoint instead: endpoint: <name>",
                    ));
                }
                match p.remove("endpoint") {
                    Some(Value::String(name)) => {
                        proposer = Some(name);
                        p.insert("endpoint_id".into(), Value::String(uuid::Uuid::nil().to_string()));
                    }
                    _ => {
                        return Err(l.error(
                            "strategy.proposer.endpoint",
                            "must name an endpoint: endpoint: <name>",
                        ));
                    }
                }
            }
            parse_strategy(l, v).map(|s| (s, proposer))
        }
    }
}

fn parse_strategy(l: &Loaded, v: Value) -> Result<Strategy, FileError> {
    serde_path_to_error::deserialize::<_, Strategy>(v).map_err(|e| {
        let at = e.path().to_string();
        let field = if at == "." {
            "strategy".to_owned()
        } else {
            format!("strategy.{at}")
        };
        l.error(&field, e.into_inner().to_string())
    })
}

/// Every endpoint a stage, a model choice or a scorer names is in `endpoints:` (or, checked
/// later against the database, an endpoint that already exists there).
fn check_names(l: &Loaded) -> Result<(), FileError> {
    for (i, s) in l.spec.stages.iter().enumerate() {
        if s.endpoint.trim().is_empty() {
            return Err(l.error(&format!("stages[{i}].endpoint"), "must name an endpoint"));
        }
    }
    for (i, s) in l.spec.scorers.iter().enumerate() {
        if !s.is_object() {
            return Err(l.error(
                &format!("scorers[{i}]"),
                "must be a scorer object such as {kind: keywords, required: [...]}",
            ));
        }
        if s.get("endpoint_id").is_some() {
            return Err(l.error(
                &format!("scorers[{i}].endpoint_id"),
                "name the endpoint instead: endpoint: <name>",
            ));
        }
    }
    Ok(())
}

/// `${VAR}` and `${VAR:-default}` replaced from the environment; an unset `${VAR}` is an error.
pub fn interpolate(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            return Err("an unclosed ${ in the value".into());
        };
        let inner = &after[..end];
        let (var, default) = match inner.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (inner, None),
        };
        match (std::env::var(var).ok().filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(format!("the environment variable {var} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where each node of a YAML document starts: `stages[0].vary.params.temperature` → line.
/// Built from the parser's events, so it holds for any YAML (block or flow style).
pub struct Locator {
    lines: HashMap<String, usize>,
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

struct Walk {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Walk {
    fn path(&self) -> String {
        let mut p = String::new();
        for f in &self.stack {
            match f {
                Frame::Map { key: Some(k) } => {
                    if !p.is_empty() {
                        p.push('.');
                    }
                    p.push_str(k);
                }
                Frame::Map { key: None } => {}
                Frame::Seq { next } => p.push_str(&format!("[{next}]")),
            }
        }
        p
    }

    fn node(&mut self, line: usize) {
        let p = self.path();
        self.lines.entry(p).or_insert(line);
    }

    fn done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key }) => *key = None,
            Some(Frame::Seq { next }) => *next += 1,
            None => {}
        }
    }
}

impl yaml_rust2::parser::MarkedEventReceiver for Walk {
    fn on_event(&mut self, ev: yaml_rust2::Event, mark: yaml_rust2::scanner::Marker) {
        use yaml_rust2::Event;
        let line = mark.line();
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { key }) = self.stack.last_mut()
                    && key.is_none()
                {
                    *key = Some(value);
                    self.node(line);
                    return;
                }
                self.node(line);
                self.done();
            }
            Event::Alias(_) => {
                self.node(line);
                self.done();
            }
            Event::SequenceStart(..) => {
                self.node(line);
                self.stack.push(Frame::Seq { next: 0 });
            }
            Event::MappingStart(..) => {
                self.node(line);
                self.stack.push(Frame::Map { key: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
                self.done();
            }
            _ => {}
        }
    }
}

impl Locator {
    /// Parses `text`; a syntax error comes back as (line, message).
    pub fn new(text: &str) -> Result<Locator, (usize, String)> {
        let mut walk = Walk {
            stack: Vec::new(),
            lines: HashMap::new(),
        };
        let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
        parser
            .load(&mut walk, false)
            .map_err(|e| (e.marker().line(), format!("not valid YAML: {}", e.info())))?;
        Ok(Locator { lines: walk.lines })
    }

    pub fn exact(&self, path: &str) -> Option<usize> {
        self.lines.get(path).copied()
    }

    /// The line of `path`, or of its nearest ancestor present in the file.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path.to_owned();
        loop {
            if let Some(l) = self.lines.get(&p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locator_places_block_and_flow_nodes() {
        let text = "name: x\nstages:\n  - endpoint: sim\n    model: m\n    vary:\n      params: {temperature: [0.1, 0.5]}\n  - endpoint: b\nscorers: [{kind: length}]\n";
        let l = Locator::new(text).unwrap();
        assert_eq!(l.exact("name"), Some(1));
        assert_eq!(l.exact("stages[0].model"), Some(4));
        assert_eq!(l.exact("stages[0].vary.params.temperature"), Some(6));
        assert_eq!(l.exact("stages[1].endpoint"), Some(7));
        assert_eq!(l.line_of("scorers[0].max"), Some(8));
        assert_eq!(l.line_of("stages[1].user"), Some(7));
        let err = Locator::new("a: [1, 2\nb: 3\n").err().unwrap();
        assert!(err.0 >= 1, "{err:?}");
    }

    #[test]
    fn engine_fields_become_file_fields() {
        assert_eq!(
            translate("pipeline_stages[1].endpoint_id"),
            "stages[1].endpoint"
        );
        assert_eq!(
            translate("parameter_space.stages[0].params.top_p"),
            "stages[0].vary.params.top_p"
        );
        assert_eq!(translate("scoring_config[2].weight"), "scorers[2].weight");
        assert_eq!(translate("dataset"), "data.dataset");
        assert_eq!(translate("strategy.samples"), "strategy.samples");
    }

    #[test]
    fn variables_are_interpolated() {
        // SAFETY-free: PATH is always set in tests.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(interpolate("a${PATH}b").unwrap(), format!("a{path}b"));
        assert_eq!(
            interpolate("${PL_SURELY_UNSET_VAR:-http://x/v1}").unwrap(),
            "http://x/v1"
        );
        assert!(interpolate("${PL_SURELY_UNSET_VAR}").is_err());
    }
}
