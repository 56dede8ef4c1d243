//! Types for sweeps (planning, preview, steering, budgets) and the event timeline. Shared with
//! the dashboard, so wasm-safe.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[cfg(feature = "server")]
use utoipa::ToSchema;

use super::{ParameterSpace, RunConfig, StageChoice};

/// How a sweep chooses configurations. Tagged by `kind`, so new strategies (guided) slot in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Strategy {
    /// Every combination of the parameter space.
    Grid,
    /// `samples` configurations drawn from the space's ranges and choices; the same `seed`
    /// draws the same ones.
    Random {
        samples: u32,
        #[serde(default)]
        seed: Option<u64>,
    },
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Grid => "grid",
            Strategy::Random { .. } => "random",
        }
    }
}

/// Limits on what a sweep may spend on calls actually made (cache hits are free). When one is
/// reached the sweep pauses with `budget.exhausted`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Input + output tokens.
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Estimated cost in dollars.
    #[serde(default)]
    pub max_cost: Option<f64>,
}

/// `POST /api/v1/experiments/{id}/sweep` (and `/sweep/preview`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    pub strategy: Strategy,
    /// Samples of each configuration × item (1 to 100, default 1); repeats are distinct calls.
    #[serde(default)]
    pub repeats: Option<u32>,
    /// Which items, by id or 0-based place; default all.
    #[serde(default)]
    pub items: Option<Vec<super::ItemRef>>,
    #[serde(default)]
    pub budget: Option<Budget>,
    /// The space to sweep instead of the experiment's own.
    #[serde(default)]
    pub parameter_space: Option<ParameterSpace>,
}

/// A sweep: its plan, where it stands, and what it has spent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Sweep {
    pub id: Uuid,
    pub experiment_id: Uuid,
    pub request: SweepRequest,
    /// The parameter space planned (after any redirect).
    pub parameter_space: ParameterSpace,
    /// running, paused, completed or stopped.
    pub status: String,
    /// Why it is paused: `manual` or `budget`.
    pub pause_reason: Option<String>,
    pub progress: Progress,
    pub max_tokens: Option<i64>,
    pub max_cost: Option<f64>,
    /// Runs of this sweep executing right now (reads of one sweep fill it in; 0 elsewhere).
    #[serde(default)]
    pub in_flight: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where a sweep stands; every sweep event carries it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Progress {
    /// Runs ended (completed + cached + failed) of `total`.
    pub done: i64,
    pub total: i64,
    pub completed: i64,
    pub cached: i64,
    pub failed: i64,
    /// Runs dropped unstarted by stop or redirect.
    pub skipped: i64,
    /// Tokens and cost of calls actually made.
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost: f64,
    /// LLM calls made, and calls answered from the cache.
    pub calls: i64,
    pub cache_hits: i64,
    pub cache_hit_rate: Option<f64>,
    /// Estimated seconds left, from the pace so far.
    pub eta_seconds: Option<f64>,
}

/// What a sweep would do, before anything is spent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct SweepPreview {
    pub strategy: String,
    /// The seed a random sweep draws with: pass it to the sweep to run exactly this draw.
    pub seed: Option<u64>,
    pub configurations: i64,
    pub runs: i64,
    /// LLM calls the runs need (runs × stages).
    pub calls: i64,
    /// Runs answered entirely from the cache (they cost nothing).
    pub cached_runs: i64,
    /// Calls known to be in the cache (later stages of uncached runs are counted as calls).
    pub cached_calls: i64,
    pub calls_to_make: i64,
    pub estimated_tokens_in: i64,
    pub estimated_tokens_out: i64,
    /// Absent when a model has no known price (see `unpriced_models`).
    pub estimated_cost: Option<f64>,
    pub unpriced_models: Vec<String>,
}

/// `POST /api/v1/experiments/{id}/redirect`: replaces what remains of the running sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    pub parameter_space: ParameterSpace,
    /// A new strategy for the remainder; default the sweep's own.
    #[serde(default)]
    pub strategy: Option<Strategy>,
}

/// `POST /api/v1/experiments/{id}/fork`: a new experiment from one run's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    pub run_id: Uuid,
    /// Default: "<experiment> (fork)".
    #[serde(default)]
    pub name: Option<String>,
    /// Modifications per stage (variant, model, endpoint, parameters) on top of the run's.
    #[serde(default)]
    pub stages: Vec<StageChoice>,
    /// The new experiment's parameter space; default empty.
    #[serde(default)]
    pub parameter_space: Option<ParameterSpace>,
}

/// `POST /api/v1/runs/{id}/approve` and `/reject`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MarkRequest {
    #[serde(default)]
    pub note: Option<String>,
}

/// A configuration approved as good enough, or rejected from rankings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ConfigMark {
    pub experiment_id: Uuid,
    pub config_key: String,
    /// approved or rejected.
    pub mark: String,
    pub note: String,
    pub marked_by: Option<Uuid>,
    pub marked_at: DateTime<Utc>,
    pub config: Option<RunConfig>,
}

/// One entry of the activity timeline, and what the live streams send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Event {
    pub id: i64,
    /// e.g. experiment.started, run.completed, budget.exhausted.
    #[serde(rename = "type")]
    pub event_type: String,
    pub experiment_id: Option<Uuid>,
    pub sweep_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct EventPage {
    pub events: Vec<Event>,
    pub total: i64,
}

/// Every event type, for filters and documentation.
pub const EVENT_TYPES: &[&str] = &[
    "experiment.started",
    "experiment.paused",
    "experiment.resumed",
    "experiment.redirected",
    "experiment.stopped",
    "experiment.completed",
    "experiment.forked",
    "run.started",
    "run.completed",
    "run.cached",
    "run.failed",
    "stage.completed",
    "budget.exhausted",
    "configuration.approved",
    "configuration.rejected",
    "new_best_found",
    "scoring.started",
    "scoring.completed",
    "scoring.failed",
    "human_needed",
];

/// `POST /api/v1/experiments/{id}/human-needed` (and MCP's `request_human`): asks a person to
/// look at something.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HumanNeeded {
    /// What a person should look at and why (1 to 2,000 characters).
    pub reason: String,
    /// Anything that helps them (run ids, configurations, numbers); at most 64 KB as JSON.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(value_type = Option<Object>))]
    pub context: Option<Value>,
}
