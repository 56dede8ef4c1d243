//! Types for the dashboard's overview and run listings. Shared with the dashboard, so
//! wasm-safe.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "server")]
use utoipa::ToSchema;

use super::{Event, Progress, Run, RunCounts, Sweep};

/// `GET /api/v1/overview`: what is happening across every project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Overview {
    pub totals: Totals,
    /// Sweeps running or paused, newest first.
    pub sweeps: Vec<ActiveSweep>,
    /// The latest `new_best_found` events, newest first.
    pub bests: Vec<Event>,
    /// The experiments saved or run most recently.
    pub experiments: Vec<RecentExperiment>,
}

/// Totals over every run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Totals {
    pub runs: RunCounts,
    pub tokens_in: i64,
    pub tokens_out: i64,
    /// Estimated cost of runs whose models have a price.
    pub cost: f64,
    /// LLM calls answered from the cache, and calls that went to a provider.
    pub cache_hits: i64,
    pub cache_misses: i64,
    pub cache_hit_rate: Option<f64>,
    pub projects: i64,
    pub experiments: i64,
}

/// A sweep that is running or paused, with where it belongs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ActiveSweep {
    pub sweep: SweepState,
    pub experiment_name: String,
    pub project_id: Uuid,
    pub project_name: String,
}

/// Where a sweep stands, without its plan (`GET /api/v1/sweeps/{id}` has the whole sweep).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct SweepState {
    pub id: Uuid,
    pub experiment_id: Uuid,
    /// running or paused.
    pub status: String,
    pub pause_reason: Option<String>,
    pub progress: Progress,
    /// Runs executing right now.
    pub in_flight: i64,
}

impl From<Sweep> for SweepState {
    fn from(s: Sweep) -> Self {
        SweepState {
            id: s.id,
            experiment_id: s.experiment_id,
            status: s.status,
            pause_reason: s.pause_reason,
            progress: s.progress,
            in_flight: s.in_flight,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct RecentExperiment {
    pub id: Uuid,
    pub name: String,
    /// draft, running, paused or completed.
    pub status: String,
    pub run_count: i64,
    pub project_id: Uuid,
    pub project_name: String,
    pub updated_at: DateTime<Utc>,
}

/// A run as dashboard listings show it: how it went, its scores, and its final output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct RunSummary {
    pub run: Run,
    /// A short description of the configuration: variant, model and parameters per stage.
    pub label: String,
    /// Scorer → value (scorers that could not score the run are absent).
    pub scores: BTreeMap<String, f64>,
    pub weighted_score: Option<f64>,
    /// The last stage's response (absent until the run has one).
    pub output: Option<String>,
}

/// A page of runs and how many match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct RunSummaryPage {
    pub runs: Vec<RunSummary>,
    pub total: i64,
}

/// What a span of a diff is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DiffOp {
    /// In both texts.
    Same,
    /// Only in the second text.
    Added,
    /// Only in the first text.
    Removed,
}

/// A run of text that is the same in both texts, or only in one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct DiffSpan {
    pub op: DiffOp,
    pub text: String,
}

/// A word-level diff of two texts: spans in reading order (removed text before the text that
/// replaces it), how many words each side changed, and how alike the texts are (0 to 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct TextDiff {
    pub spans: Vec<DiffSpan>,
    pub added_words: usize,
    pub removed_words: usize,
    pub similarity: f64,
}

/// Two runs side by side: both whole, their final outputs and prompts diffed word by word, the
/// scores with their difference and the parameters that differ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct RunComparison {
    pub a: super::RunDetail,
    pub b: super::RunDetail,
    /// The last stage's outputs (a before, b after).
    pub output: TextDiff,
    /// Each stage both runs have: its rendered prompt.
    pub prompts: Vec<TextDiff>,
    /// Every scorer either run has, by name.
    pub scores: Vec<ScoreDelta>,
    /// Parameters (and models, prompt variants) that differ, per stage.
    pub differences: Vec<ConfigDelta>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct ScoreDelta {
    pub scorer: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// b − a, when both scored.
    pub difference: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct ConfigDelta {
    pub stage: usize,
    /// `model`, `variant`, `endpoint_id` or a parameter's name.
    pub name: String,
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub a: Option<serde_json::Value>,
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub b: Option<serde_json::Value>,
}

/// `GET /api/v1/experiments/{id}/configs/compare`: two configurations side by side, item by item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct ConfigComparison {
    pub experiment_id: Uuid,
    /// Each configuration's leaderboard summary (rank 0: not ranked here).
    pub a: super::LeaderboardEntry,
    pub b: super::LeaderboardEntry,
    /// Settings that differ, per stage.
    pub differences: Vec<ConfigDelta>,
    /// The weighted score, then each scorer: means and b − a.
    pub scores: Vec<ScoreDelta>,
    /// The paired test on the weighted score over the items both scored (a − b).
    pub paired: Option<super::PairedComparison>,
    /// A page of a's runs in item order, each with b's run of the same item and repeat.
    pub items: Vec<ItemPair>,
    /// a's runs in all (the pages' total).
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// One item's runs under two configurations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct ItemPair {
    pub item_id: String,
    pub item_index: i32,
    pub repeat_index: i32,
    pub a: PairedRun,
    /// Absent when b has no run of this item yet.
    pub b: Option<PairedRun>,
    /// a's output against b's, word by word (when both exist).
    pub output: Option<TextDiff>,
}

/// A run as a comparison shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct PairedRun {
    pub run_id: Uuid,
    pub status: String,
    /// The final output, or the error of a failed run.
    pub output: Option<String>,
    pub weighted_score: Option<f64>,
    pub scores: BTreeMap<String, f64>,
}

/// Which runs a dashboard run list asks for (REST: the query of `GET …/runs`). Empty strings
/// mean "any"; `sort` as REST's (`-created_at` when empty, `item`, `-score`, `-score:<scorer>`…).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunListQuery {
    pub status: String,
    pub config_key: String,
    pub item_id: String,
    /// The scorer the score range uses (empty: the weighted score).
    pub score_by: String,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    pub sort: String,
    pub limit: i64,
    pub offset: i64,
}

/// `GET /api/v1/admin/cache`: what the response cache holds and how well it serves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct CacheStats {
    pub entries: i64,
    /// The cached responses' text, in bytes.
    pub bytes: i64,
    /// LLM calls answered from the cache, and calls that went to a provider.
    pub hits: i64,
    pub misses: i64,
    pub hit_rate: Option<f64>,
    /// Tokens the cached entries hold (what a hit saves calling again).
    pub tokens: i64,
    pub oldest: Option<DateTime<Utc>>,
    pub newest: Option<DateTime<Utc>>,
    /// Entries per model, most first.
    pub by_model: Vec<ModelEntries>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, schemars::JsonSchema))]
pub struct ModelEntries {
    pub model: String,
    pub entries: i64,
}
