//! The tools' arguments. Their JSON Schemas are generated (schemars) from these types and the
//! engine types they carry, which are the same types REST accepts.

use engine::types::{
    Budget, EndpointUpdate, ForkRequest, HumanNeeded, HumanScore, NewEndpoint, Redirect,
    SweepRequest,
};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

fn default_limit() -> i64 {
    50
}

fn default_top() -> i64 {
    10
}

fn default_pairs() -> i64 {
    20
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// How many to return (1 to 500, default 50).
    #[serde(default = "default_limit")]
    pub limit: i64,
    /// How many to skip (default 0).
    #[serde(default)]
    pub offset: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListExperiments {
    /// Only this project's experiments.
    #[serde(default)]
    pub project_id: Option<Uuid>,
    /// How many to return (1 to 500, default 50).
    #[serde(default = "default_limit")]
    pub limit: i64,
    #[serde(default)]
    pub offset: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentRef {
    /// The experiment's id (from `create_experiment` or `list_experiments`).
    pub experiment_id: Uuid,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRef {
    /// The run's id (a leaderboard entry's `best_run_id`, or from `run_single`).
    pub run_id: Uuid,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigureEndpoint {
    /// The endpoint to change; leave out to add a new one.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// A new endpoint (when `id` is absent). `kind: "simulated"` needs no URL or key.
    #[serde(default)]
    pub endpoint: Option<NewEndpoint>,
    /// Changes to the endpoint `id`; absent fields are kept, `api_key: null` removes the key.
    #[serde(default)]
    pub changes: Option<EndpointUpdate>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListModels {
    /// Only this endpoint (default: every configured endpoint).
    #[serde(default)]
    pub endpoint_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepArgs {
    pub experiment_id: Uuid,
    /// The strategy (`{"kind": "grid"}`, `{"kind": "random", "samples": N, "seed": S}` or
    /// `{"kind": "guided", "seed": S, …}` with a budget such as `{"max_calls": N}`), repeats,
    /// items, budget and optionally a parameter space to sweep instead of the experiment's own.
    pub sweep: SweepRequest,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeArgs {
    pub experiment_id: Uuid,
    /// A new budget (for a sweep paused by `budget.exhausted`); default the sweep's own.
    #[serde(default)]
    pub budget: Option<Budget>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestArgs {
    pub experiment_id: Uuid,
    /// 1 to 100 configurations for the running guided sweep to try next, each as per-stage
    /// choices from its space: `{"stages": [{"variant": "v2", "model": "m", "params": {"temperature": 0.3}}]}`.
    pub configurations: Vec<engine::types::SuggestedConfiguration>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedirectArgs {
    pub experiment_id: Uuid,
    /// The parameter space (and optionally strategy) for what remains of the sweep.
    pub redirect: Redirect,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkArgs {
    /// The experiment the run belongs to.
    pub experiment_id: Uuid,
    /// The run to start from, and what to change.
    pub fork: ForkRequest,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardArgs {
    pub experiment_id: Uuid,
    /// `score` (default), `scorer:<name>`, `cost`, `latency` or `runs`.
    #[serde(default)]
    pub sort: Option<String>,
    /// How many configurations (1 to 500, default 10).
    #[serde(default = "default_top")]
    pub limit: i64,
    #[serde(default)]
    pub offset: i64,
}

/// Export formats an agent can ask for.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// The configuration as JSON (stages, model, parameters, endpoint without secrets).
    #[default]
    Json,
    /// The same as YAML.
    Yaml,
    /// `KEY=value` lines to drop into an application's `.env`.
    Env,
    /// A markdown report (leaderboard, charts, statistics).
    Report,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportArgs {
    pub experiment_id: Uuid,
    /// `json` (default), `yaml`, `env` or `report`.
    #[serde(default)]
    pub format: ExportFormat,
    /// A configuration's key (from the leaderboard); default the best one.
    #[serde(default)]
    pub config_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkArgs {
    /// Any run of the configuration (a leaderboard entry's `best_run_id`).
    pub run_id: Uuid,
    /// Why (shown beside the mark).
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HumanScoreArgs {
    pub run_id: Uuid,
    /// `thumbs` (`up`/`down`) or `stars` (1 to 5), and an optional comment.
    pub score: HumanScore,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareArgs {
    pub experiment_id: Uuid,
    /// One configuration's key (from the leaderboard).
    pub a: String,
    /// The other configuration's key.
    pub b: String,
    /// Items shown side by side (1 to 200, default 20).
    #[serde(default = "default_pairs")]
    pub limit: i64,
    #[serde(default)]
    pub offset: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsArgs {
    /// One experiment's events (default: all).
    #[serde(default)]
    pub experiment_id: Option<Uuid>,
    /// Comma-separated event types, e.g. `new_best_found,budget.exhausted`.
    #[serde(default)]
    pub types: Option<String>,
    /// Only events with an id above this (poll with the last id you saw).
    #[serde(default)]
    pub after: Option<i64>,
    /// How many (1 to 1,000, default 50).
    #[serde(default = "default_limit")]
    pub limit: i64,
    #[serde(default)]
    pub offset: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestHumanArgs {
    pub experiment_id: Uuid,
    /// What a person should look at and why.
    pub request: HumanNeeded,
}
