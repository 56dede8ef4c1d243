//! Types for LLM endpoints, experiments (sample data, pipeline stages, parameter space) and
//! runs. Shared with the dashboard, so wasm-safe.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[cfg(feature = "server")]
use utoipa::ToSchema;

/// The API an endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, OpenWebUI, LM Studio, OpenRouter…).
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// The built-in simulated provider: no network, deterministic, free.
    Simulated,
}

impl EndpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Openai => "openai",
            EndpointKind::Anthropic => "anthropic",
            EndpointKind::Simulated => "simulated",
        }
    }
}

impl TryFrom<String> for EndpointKind {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "openai" => Ok(EndpointKind::Openai),
            "anthropic" => Ok(EndpointKind::Anthropic),
            "simulated" => Ok(EndpointKind::Simulated),
            other => Err(format!("unknown endpoint kind {other:?}")),
        }
    }
}

/// An LLM endpoint as every response shows it: the API key is write-only; only a masked hint
/// such as `sk-…abcd` is ever returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Endpoint {
    pub id: Uuid,
    pub name: String,
    pub kind: EndpointKind,
    pub base_url: String,
    pub has_api_key: bool,
    pub api_key_hint: Option<String>,
    /// Kind-specific options (for `simulated`: latency, failure injection).
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub options: Value,
    /// At most this many calls to this endpoint at once, across every process (none: only the
    /// global limit).
    pub max_concurrency: Option<i64>,
    /// At most this many requests per minute, across every process (none: unlimited until the
    /// provider answers 429).
    pub rpm: Option<i64>,
    /// At most this many tokens (input and output) per minute, across every process.
    pub tpm: Option<i64>,
    /// Per-call timeout in milliseconds.
    pub timeout_ms: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    #[cfg_attr(feature = "server", schema(value_type = super::schema::Name))]
    pub name: String,
    pub kind: EndpointKind,
    /// Base URL, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`. Not used by
    /// `simulated`.
    #[serde(default)]
    pub base_url: String,
    /// Write-only: stored encrypted, never returned.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::Secret>))]
    pub api_key: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(value_type = Option<Object>))]
    pub options: Option<Value>,
    /// At most this many calls at once, across every process (1–1024).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 1024))]
    pub max_concurrency: Option<i64>,
    /// Requests per minute, across every process (1–1,000,000).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 1000000))]
    pub rpm: Option<i64>,
    /// Tokens per minute, across every process (100–1,000,000,000).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 100, maximum = 1000000000))]
    pub tpm: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 100, maximum = 600000))]
    pub timeout_ms: Option<i64>,
}

/// Changes to an endpoint; absent fields are kept, `api_key: null` removes the key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EndpointUpdate {
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::Name>))]
    pub name: Option<String>,
    pub base_url: Option<String>,
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::Secret>))]
    pub api_key: Option<Option<String>>,
    #[cfg_attr(feature = "server", schema(value_type = Option<Object>))]
    pub options: Option<Value>,
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "server", schema(value_type = Option<i64>, minimum = 1, maximum = 1024))]
    pub max_concurrency: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "server", schema(value_type = Option<i64>, minimum = 1, maximum = 1000000))]
    pub rpm: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "server", schema(value_type = Option<i64>, minimum = 100, maximum = 1000000000))]
    pub tpm: Option<Option<i64>>,
    #[cfg_attr(feature = "server", schema(minimum = 100, maximum = 600000))]
    pub timeout_ms: Option<i64>,
}

/// The answer of `POST /api/v1/endpoints/{id}/test`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct EndpointTest {
    pub ok: bool,
    pub latency_ms: f64,
    pub models: Vec<String>,
    pub error: Option<String>,
}

/// One sample as given: named input variables and, optionally, the reference output, an id
/// (kept as the item's id; one is assigned when absent), tags and a split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SampleItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::ItemText>))]
    pub id: Option<String>,
    #[cfg_attr(feature = "server", schema(value_type = super::schema::ItemInput))]
    pub input: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "server", schema(value_type = Vec<super::schema::ItemText>, max_items = 32))]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::ItemText>))]
    pub split: Option<String>,
}

/// Inference parameters. Absent ones are not sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "server", schema(minimum = 0, maximum = 2))]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "server", schema(exclusive_minimum = 0, maximum = 1))]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 1000000))]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "server", schema(value_type = Option<Vec<super::schema::NonEmpty>>, max_items = 16))]
    pub stop: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Any other provider parameter, passed through as given (e.g. `presence_penalty`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "server", schema(value_type = super::schema::ExtraParams))]
    pub extra: BTreeMap<String, Value>,
}

/// One stage of a pipeline: templates (Jinja2 syntax), where to send them, and how.
/// Templates see `input.<var>` and earlier stages' outputs as `stages[k].output`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Stage {
    #[cfg_attr(feature = "server", schema(value_type = super::schema::Name))]
    pub name: String,
    pub endpoint_id: Uuid,
    #[cfg_attr(feature = "server", schema(value_type = super::schema::ModelName))]
    pub model: String,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_length = 100000))]
    pub system: String,
    #[cfg_attr(feature = "server", schema(value_type = super::schema::UserTemplate))]
    pub user: String,
    #[serde(default)]
    pub params: Params,
}

/// What a sweep may vary in one stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StageSpace {
    /// Alternative prompts; each replaces the stage's system and/or user template.
    #[serde(default)]
    pub prompts: Vec<PromptVariant>,
    /// Alternative models (on the stage's endpoint unless one is named).
    #[serde(default)]
    pub models: Vec<ModelChoice>,
    /// Parameter name → values (grid) or a range (random).
    #[serde(default)]
    pub params: BTreeMap<String, Dimension>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PromptVariant {
    #[cfg_attr(feature = "server", schema(value_type = super::schema::Name))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "server", schema(max_length = 100000))]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::UserTemplate>))]
    pub user: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelChoice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<Uuid>,
    #[cfg_attr(feature = "server", schema(value_type = super::schema::ModelName))]
    pub model: String,
}

/// A dimension of the parameter space: explicit values, or a numeric range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Dimension {
    /// The values to try, e.g. `[0.1, 0.3, 0.5]` (a grid tries each).
    Values(Vec<Value>),
    /// A range: a grid steps through it by `step`; a random sweep draws from it.
    Range {
        min: f64,
        max: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<f64>,
    },
}

/// The parameter space, stage by stage (index-aligned with the pipeline's stages).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ParameterSpace {
    #[serde(default)]
    pub stages: Vec<StageSpace>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Experiment {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub description: String,
    /// How many items, of which fields, in which dataset version (`GET …/items` reads them).
    pub items: super::ItemsSummary,
    pub pipeline_stages: Vec<Stage>,
    pub parameter_space: ParameterSpace,
    /// The scorers, each `{kind, name, weight, …}` (see the scorer kinds), in order.
    #[cfg_attr(feature = "server", schema(value_type = super::schema::ScoringConfig))]
    pub scoring_config: Value,
    /// draft, running, paused or completed.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewExperiment {
    pub project_id: Uuid,
    #[cfg_attr(feature = "server", schema(value_type = super::schema::Name))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_length = 10000))]
    pub description: String,
    /// The experiment's own items (or import them later, or name a shared dataset instead).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_items = 10000))]
    pub sample_data: Vec<SampleItem>,
    /// Use this shared dataset of the project instead of items of its own.
    #[serde(default)]
    pub dataset_id: Option<Uuid>,
    /// …or the shared dataset of the project with this name.
    #[serde(default)]
    pub dataset: Option<String>,
    /// Which version of it (default: the newest).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1))]
    pub dataset_version: Option<i64>,
    #[cfg_attr(feature = "server", schema(min_items = 1, max_items = 20))]
    pub pipeline_stages: Vec<Stage>,
    #[serde(default)]
    pub parameter_space: ParameterSpace,
    /// The scorers, each `{kind, name, weight, …}` (see the scorer kinds); none by default.
    #[serde(default = "empty_array")]
    #[cfg_attr(feature = "server", schema(value_type = super::schema::ScoringConfig))]
    pub scoring_config: Value,
}

fn empty_array() -> Value {
    Value::Array(Vec::new())
}

/// Changes to an experiment; absent fields are kept. The result is validated as a whole.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ExperimentUpdate {
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::Name>))]
    pub name: Option<String>,
    #[cfg_attr(feature = "server", schema(max_length = 10000))]
    pub description: Option<String>,
    /// Replaces every item (a new version of the experiment's dataset).
    #[cfg_attr(feature = "server", schema(max_items = 10000))]
    pub sample_data: Option<Vec<SampleItem>>,
    /// Use this shared dataset (at `dataset_version`, default its newest).
    pub dataset_id: Option<Uuid>,
    /// …or the shared dataset of the project with this name.
    pub dataset: Option<String>,
    /// Move to this version of the dataset in use.
    #[cfg_attr(feature = "server", schema(minimum = 1))]
    pub dataset_version: Option<i64>,
    #[cfg_attr(feature = "server", schema(min_items = 1, max_items = 20))]
    pub pipeline_stages: Option<Vec<Stage>>,
    pub parameter_space: Option<ParameterSpace>,
    /// Replaces the scorers (a list, as `NewExperiment` takes it).
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::ScoringConfig>))]
    pub scoring_config: Option<Value>,
}

/// Sample data to import: CSV (header row names the variables; a `reference` column, if any,
/// is the reference output), JSONL (one `{"input": {…}, "reference": "…"}` or flat object per
/// line) or a JSON array of such objects.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SampleImport {
    pub format: SampleFormat,
    pub content: String,
    /// Replace the current items (default) or append to them.
    #[serde(default)]
    pub append: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    Csv,
    Jsonl,
    Json,
}

impl SampleFormat {
    /// Guesses the format of pasted or uploaded text: a JSON array, JSON lines, else CSV.
    pub fn detect(content: &str) -> SampleFormat {
        match content.trim_start().chars().next() {
            Some('[') => SampleFormat::Json,
            Some('{') => SampleFormat::Jsonl,
            _ => SampleFormat::Csv,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SampleFormat::Csv => "csv",
            SampleFormat::Jsonl => "jsonl",
            SampleFormat::Json => "json",
        }
    }
}

/// `POST /api/v1/samples/parse`: text to read as sample items without storing anything.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SampleParse {
    /// Default: detected from the content.
    #[serde(default)]
    pub format: Option<SampleFormat>,
    pub content: String,
}

/// A line of imported text that could not be read as an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct LineError {
    /// 1-based line of the text.
    pub line: usize,
    pub message: String,
}

/// What a text reads as: the items of its good lines, and every bad line (the first
/// `errors.len()` of `error_count`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ParsedSamples {
    pub format: SampleFormat,
    pub items: Vec<SampleItem>,
    /// Input names in the order they first appear.
    pub fields: Vec<String>,
    /// Input names every item has: what templates may use as `input.<name>`.
    pub common_fields: Vec<String>,
    pub errors: Vec<LineError>,
    pub error_count: usize,
}

/// One stage of a resolved configuration: exactly what is sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct StageConfig {
    pub endpoint_id: Uuid,
    pub model: String,
    /// The prompt variant used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub system: String,
    pub user: String,
    pub params: Params,
}

/// A complete configuration: one entry per pipeline stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct RunConfig {
    pub stages: Vec<StageConfig>,
}

/// Choices for one stage of an ad-hoc run; absent fields keep the stage's defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StageChoice {
    /// A prompt variant from the parameter space, by name.
    pub variant: Option<String>,
    pub model: Option<String>,
    pub endpoint_id: Option<Uuid>,
    /// Parameter overrides, e.g. `{"temperature": 0.3}`.
    #[cfg_attr(feature = "server", schema(value_type = Option<Object>))]
    pub params: Option<BTreeMap<String, Value>>,
}

/// `POST /api/v1/runs`: execute one configuration over the experiment's sample items.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    pub experiment_id: Uuid,
    /// Per-stage choices, index-aligned with the stages (fewer entries: the rest default).
    #[serde(default)]
    pub stages: Vec<StageChoice>,
    /// Which items, by id or 0-based place; default all.
    #[serde(default)]
    pub items: Option<Vec<super::ItemRef>>,
    /// How many samples of each item (1 to 100); repeats are distinct cache entries.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 100))]
    pub repeats: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Run {
    pub id: Uuid,
    pub experiment_id: Uuid,
    /// The sweep that planned this run (none for ad-hoc runs).
    #[serde(default)]
    pub sweep_id: Option<Uuid>,
    /// SHA-256 of the configuration, the item and the repeat index.
    pub config_hash: String,
    /// SHA-256 of the configuration alone: every run of one configuration shares it.
    pub config_key: String,
    pub config: RunConfig,
    /// The item's id.
    #[serde(default)]
    pub item_id: String,
    /// The item's position (its place in the dataset; stable, gaps after deletions).
    pub item_index: i32,
    /// The dataset version the run was planned on.
    #[serde(default)]
    pub item_version: i64,
    pub repeat_index: i32,
    /// pending, running, completed, failed or cached.
    pub status: String,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    /// Absent when a model's price is unknown.
    pub cost_estimate: Option<f64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct StageResult {
    pub stage_index: i32,
    /// The rendered messages, as sent.
    pub prompt_sent: String,
    pub response_raw: String,
    pub model_used: String,
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub parameters: Value,
    pub tokens_in: i64,
    pub tokens_out: i64,
    /// True when the provider reported no usage and the counts are estimates.
    pub usage_estimated: bool,
    pub latency_ms: i64,
    pub cached: bool,
    pub finish_reason: Option<String>,
    pub cost_estimate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    pub stages: Vec<StageResult>,
    /// Every scorer's verdict (current scorers only), and the ratings people gave.
    #[serde(default)]
    pub scores: Vec<super::Score>,
    /// The weighted score over the scorers that scored this run.
    #[serde(default)]
    pub weighted_score: Option<f64>,
    #[serde(default)]
    pub ratings: Vec<super::Rating>,
}

/// A run as listings show it: with its current scores and weighted score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ScoredRun {
    #[serde(flatten)]
    pub run: Run,
    /// Scorer → value (scorers that could not score the run are absent).
    #[serde(default)]
    pub scores: BTreeMap<String, f64>,
    #[serde(default)]
    pub weighted_score: Option<f64>,
}

/// The result of an ad-hoc run over several items.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct RunBatch {
    pub config_key: String,
    pub runs: Vec<Run>,
    pub completed: usize,
    pub cached: usize,
    pub failed: usize,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_estimate: Option<f64>,
}

/// A model's price per million tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    #[cfg_attr(feature = "server", schema(value_type = super::schema::ModelName))]
    pub model: String,
    #[cfg_attr(feature = "server", schema(minimum = 0, maximum = 1000000))]
    pub input_per_million: f64,
    #[cfg_attr(feature = "server", schema(minimum = 0, maximum = 1000000))]
    pub output_per_million: f64,
}
