//! Types for sweeps (planning, preview, steering, budgets) and the event timeline. Shared with
//! the dashboard, so wasm-safe.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[cfg(feature = "server")]
use utoipa::ToSchema;

use super::{ParameterSpace, RunConfig, StageChoice};

/// Where a guided sweep's search stands (stored with the sweep; every round updates it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct GuideState {
    /// Rounds planned so far.
    pub round: u32,
    /// `tpe`, `random` or `agent`.
    pub search: String,
    /// The seed its choices and item order derive from.
    #[cfg_attr(
        feature = "server",
        schema(format = "uint64", maximum = 18446744073709551615u64)
    )]
    pub seed: u64,
    /// Items raced over, and the rungs: how many items a configuration has at each stage of
    /// the race (the last is every item).
    pub items: u32,
    pub rungs: Vec<u32>,
    /// Every configuration tried, in the order tried.
    pub configurations: Vec<GuidedConfig>,
    /// The best configuration evaluated on every item so far.
    pub best: Option<GuideBest>,
    /// Rounds since `best` last improved.
    pub stale_rounds: u32,
    /// Why no new configurations are tried any more (racing the ones tried goes on).
    pub finishing: Option<String>,
    /// Why the sweep ended.
    pub stop_reason: Option<String>,
    /// Configurations an agent posted that no round has taken yet.
    pub suggestions: Vec<Vec<StageChoice>>,
    /// Prompt variants the proposer wrote.
    pub proposals: Vec<ProposedVariant>,
    /// Proposals that failed (the error is on the timeline).
    pub proposal_failures: u32,
    /// LLM calls, tokens and cost of the proposer (also counted in the sweep's progress).
    pub proposer_calls: i64,
}

/// A configuration a guided sweep tried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct GuidedConfig {
    pub config_key: String,
    pub choice: Vec<StageChoice>,
    /// `startup` (random, before the model has data), `tpe`, `random`, `agent`, `proposal`,
    /// `cache` (its first rung was already in the cache).
    pub origin: String,
    /// The round that first tried it.
    pub round: u32,
    /// Items it has been given.
    pub items: u32,
    /// `racing`, `pruned` (it cannot beat the leader) or `finished` (every item).
    pub state: String,
    /// Its weighted score over its items when last checked.
    pub mean: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct GuideBest {
    pub config_key: String,
    pub score: f64,
    pub round: u32,
}

/// A prompt variant an LLM proposed in a guided sweep, with where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ProposedVariant {
    pub name: String,
    pub stage: u32,
    pub system: Option<String>,
    pub user: Option<String>,
    /// The proposer's model, and the round that asked.
    pub model: String,
    pub round: u32,
    /// The configurations shown to it as best and as worst.
    pub from_best: Vec<String>,
    pub from_worst: Vec<String>,
    /// What it said it changed, if anything.
    pub rationale: Option<String>,
}

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
        #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 100000))]
        samples: u32,
        #[serde(default)]
        #[cfg_attr(
            feature = "server",
            schema(format = "uint64", maximum = 18446744073709551615u64)
        )]
        seed: Option<u64>,
    },
    /// Results so far choose what runs next: a Tree-structured Parzen Estimator proposes
    /// configurations (or an agent does, through `…/sweep/suggestions`), each is raced across
    /// the items (it earns more items only while it can still beat the leader), and an LLM may
    /// write new prompt variants. Runs in rounds sized to the run slots until a budget, the
    /// configuration limit, `patience` or a stop ends it. The same `seed` makes the same
    /// choices from the same results.
    Guided {
        #[serde(default)]
        #[cfg_attr(
            feature = "server",
            schema(format = "uint64", maximum = 18446744073709551615u64)
        )]
        seed: Option<u64>,
        /// Where new configurations come from (default `tpe`).
        #[serde(default)]
        search: Option<GuidedSearch>,
        /// Stop trying new configurations after this many (1 to 100,000).
        #[serde(default)]
        #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 100000))]
        max_configurations: Option<u32>,
        /// Stop trying new configurations after this many rounds without a better fully
        /// evaluated configuration (default 30; 1 to 1,000).
        #[serde(default)]
        #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 1000))]
        patience: Option<u32>,
        /// Runs started per round (default: this process's run slots; 1 to 1,000).
        #[serde(default)]
        #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 1000))]
        batch: Option<u32>,
        /// Items a new configuration is first tried on (default an eighth of the items, at
        /// least 2); the item count turns racing off.
        #[serde(default)]
        #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 100000))]
        first_items: Option<u32>,
        /// Each round of racing keeps the best 1/`reduction` of a rung (default 3; 2 to 10).
        #[serde(default)]
        #[cfg_attr(feature = "server", schema(minimum = 2, maximum = 10))]
        reduction: Option<u32>,
        /// An LLM that writes new prompt variants from the best and worst so far.
        #[serde(default)]
        proposer: Option<Proposer>,
    },
}

/// How a guided sweep finds new configurations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum GuidedSearch {
    /// Tree-structured Parzen Estimator (random for the first configurations).
    #[default]
    Tpe,
    /// Uniformly at random (still raced): the baseline TPE is measured against.
    Random,
    /// Only what an agent posts to `…/sweep/suggestions`; the sweep waits for more.
    Agent,
}

impl GuidedSearch {
    pub fn name(self) -> &'static str {
        match self {
            GuidedSearch::Tpe => "tpe",
            GuidedSearch::Random => "random",
            GuidedSearch::Agent => "agent",
        }
    }
}

/// The LLM that proposes prompt variants in a guided sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Proposer {
    pub endpoint_id: Uuid,
    #[cfg_attr(feature = "server", schema(value_type = super::schema::NotBlank))]
    pub model: String,
    /// The stage whose prompt it rewrites (default 0).
    #[serde(default)]
    pub stage: Option<u32>,
    /// Propose after every this many rounds (default 3; 1 to 100).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 100))]
    pub every: Option<u32>,
    /// Variants per proposal (default 2; 1 to 5).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 5))]
    pub count: Option<u32>,
    /// At most this many proposals in the sweep (default 5; 1 to 50).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 50))]
    pub max_proposals: Option<u32>,
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Grid => "grid",
            Strategy::Random { .. } => "random",
            Strategy::Guided { .. } => "guided",
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
    #[cfg_attr(feature = "server", schema(minimum = 1))]
    pub max_tokens: Option<i64>,
    /// Estimated cost in dollars.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(exclusive_minimum = 0))]
    pub max_cost: Option<f64>,
    /// LLM calls actually made (cache hits are free).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1))]
    pub max_calls: Option<i64>,
}

/// `POST /api/v1/experiments/{id}/sweep` (and `/sweep/preview`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    pub strategy: Strategy,
    /// Samples of each configuration × item (1 to 100, default 1); repeats are distinct calls.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 100))]
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
    #[serde(default)]
    pub max_calls: Option<i64>,
    /// A guided sweep's search state.
    #[serde(default)]
    pub guide: Option<GuideState>,
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
    #[cfg_attr(
        feature = "server",
        schema(format = "uint64", maximum = 18446744073709551615u64)
    )]
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
    /// True for a guided sweep: it decides as it goes, so `configurations`, `runs`, `calls`
    /// and the estimates are what it expects to spend (at most its budget), not a plan.
    #[serde(default)]
    pub estimate: bool,
    /// The calls budget a guided sweep stops at (`budget.max_calls`).
    #[serde(default)]
    pub budget_calls: Option<i64>,
    /// Configurations in the whole space (absent when a range is continuous).
    #[serde(default)]
    pub space_configurations: Option<i64>,
    /// What a guided sweep will do, in a sentence.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /api/v1/experiments/{id}/sweep/suggestions`: configurations an agent wants the
/// running guided sweep to try next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SuggestionRequest {
    /// 1 to 100 configurations, each as per-stage choices from the sweep's space.
    #[cfg_attr(feature = "server", schema(min_items = 1, max_items = 100))]
    pub configurations: Vec<SuggestedConfiguration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SuggestedConfiguration {
    /// Per-stage choices (variant, model, endpoint, parameters), index-aligned with stages.
    pub stages: Vec<StageChoice>,
}

/// What became of suggestions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct SuggestionResult {
    pub sweep_id: Uuid,
    /// Configuration keys queued for the next rounds.
    pub accepted: Vec<String>,
    pub skipped: Vec<SkippedSuggestion>,
    /// Suggestions waiting now.
    pub waiting: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct SkippedSuggestion {
    pub index: u32,
    pub config_key: String,
    pub reason: String,
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
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::Name>))]
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
    #[cfg_attr(feature = "server", schema(max_length = 2000))]
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
    "sweep.round",
    "configuration.promoted",
    "configuration.pruned",
    "prompt.proposed",
    "prompt.proposal_failed",
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
    #[cfg_attr(feature = "server", schema(value_type = super::schema::Reason))]
    pub reason: String,
    /// Anything that helps them (run ids, configurations, numbers); at most 64 KB as JSON.
    #[serde(default)]
    pub context: Option<Value>,
}
