//! Types for scoring: the scorer specs an experiment's `scoring_config` holds, stored scores
//! and human ratings, the leaderboard, re-scoring jobs and exports. Shared with the dashboard,
//! so wasm-safe.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[cfg(feature = "server")]
use utoipa::ToSchema;

use super::{Params, RunConfig};

/// One entry of an experiment's `scoring_config`: a scorer spec (tagged by `kind`), the name
/// its scores are stored under (default: the kind) and its weight in the weighted score.
/// On the wire it is one flat object: `{"kind": "keywords", "name": "…", "weight": 2, …}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScorerConfig {
    pub name: String,
    pub weight: f64,
    pub spec: ScorerSpec,
}

/// What a scorer checks. Every scorer returns a value in 0.0–1.0 and metadata explaining it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScorerSpec {
    /// Cosine similarity between the output's and the reference's embeddings, from an
    /// endpoint's embeddings API (the simulated endpoint's `sim-embed` is deterministic).
    EmbeddingSimilarity {
        endpoint_id: Option<Uuid>,
        /// Default: `sim-embed` on a simulated endpoint; required otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
    },
    /// Word overlap with the reference, no endpoint needed: token F1 or ROUGE-L.
    LexicalSimilarity {
        #[serde(default)]
        metric: LexicalMetric,
    },
    /// Length between `min` and `max` (inclusive); outside, the score falls linearly to 0 over
    /// `falloff` × the violated bound (0: a hard limit).
    Length {
        #[serde(default)]
        unit: LengthUnit,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u64>,
        #[serde(default = "default_falloff")]
        falloff: f64,
    },
    /// Structure: valid JSON, JSON matching a JSON Schema, a regex, or markdown structure.
    Format {
        format: FormatKind,
        /// `json_schema`: the schema (draft 4 to 2020-12).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<Value>,
        /// `regex`: the pattern (Rust regex syntax).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        /// `regex`: the whole output must match (default: found anywhere).
        #[serde(default, skip_serializing_if = "is_false")]
        full_match: bool,
        /// `json`, `json_schema`: accept JSON wrapped in a ```json code fence (default true).
        #[serde(default = "default_true")]
        allow_code_fence: bool,
        /// `markdown`: structure the output must have; the score is the share of
        /// requirements met.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_headings: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_list_items: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_code_blocks: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_tables: Option<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        required_headings: Vec<String>,
    },
    /// Required and forbidden terms.
    Keywords {
        #[serde(default)]
        required: Vec<String>,
        #[serde(default)]
        forbidden: Vec<String>,
        #[serde(default)]
        case_sensitive: bool,
        /// Match whole words only (default: substrings).
        #[serde(default)]
        whole_words: bool,
        /// `all`: 1 only when every required term appears; `any`: 1 when one does;
        /// `fraction` (default): the share that appear. A forbidden term makes an `all`/`any`
        /// score 0 and lowers a `fraction` score by its share of the forbidden terms.
        #[serde(default)]
        mode: KeywordMode,
    },
    /// Ratings people give through `POST /api/v1/runs/{id}/score`, normalised to 0–1 and
    /// averaged over raters.
    HumanRating {
        #[serde(default)]
        scale: RatingScale,
    },
    /// Another model grades the output with a rubric. The prompt is a template seeing
    /// `input`, `output`, `reference`, `stages`, `item`, `min` and `max`; the reply's score
    /// (between `min` and `max`) is parsed robustly and normalised. A reply without a
    /// readable score is reported as such, never scored 0. Judge calls are cached.
    LlmJudge {
        endpoint_id: Uuid,
        model: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system: Option<String>,
        #[serde(default = "default_judge_min")]
        min: f64,
        #[serde(default = "default_judge_max")]
        max: f64,
        /// Default: temperature 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        params: Option<Params>,
    },
    /// A Rhai script (sandboxed: no I/O, operation, time and size limits). It sees `input`,
    /// `output`, `reference` and `context`, and returns a number in 0–1 or
    /// `#{score: …, metadata: #{…}}`.
    Rhai {
        script: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// An HTTP endpoint: `POST {input, output, reference, context}` → `{score, metadata}`.
    /// Header values are write-only (stored encrypted, shown as `<hidden>`).
    Webhook {
        url: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retries: Option<u32>,
    },
    /// Python code defining `score(input, output, reference, context)`, run by `python3` in a
    /// subprocess with a timeout. Not sandboxed: only when an admin allows it in settings.
    Python {
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
}

/// Every scorer kind, for documentation and errors.
pub const SCORER_KINDS: &[&str] = &[
    "embedding_similarity",
    "lexical_similarity",
    "length",
    "format",
    "keywords",
    "human_rating",
    "llm_judge",
    "rhai",
    "webhook",
    "python",
];

/// What a webhook header value reads as once stored: the value itself is never shown again.
/// Sending it back unchanged keeps the stored value.
pub const HIDDEN: &str = "<hidden>";

fn default_falloff() -> f64 {
    0.5
}
fn default_true() -> bool {
    true
}
fn default_judge_min() -> f64 {
    1.0
}
fn default_judge_max() -> f64 {
    10.0
}
fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LexicalMetric {
    #[default]
    TokenF1,
    RougeL,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    #[default]
    Characters,
    Words,
    /// As the provider reported them for the final stage (estimated when it did not).
    Tokens,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatKind {
    Json,
    JsonSchema,
    Regex,
    Markdown,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordMode {
    All,
    Any,
    #[default]
    Fraction,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatingScale {
    /// Up = 1, down = 0.
    #[default]
    Thumbs,
    /// 1–5 stars, normalised as (stars − 1) / 4.
    Stars,
}

impl ScorerSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ScorerSpec::EmbeddingSimilarity { .. } => "embedding_similarity",
            ScorerSpec::LexicalSimilarity { .. } => "lexical_similarity",
            ScorerSpec::Length { .. } => "length",
            ScorerSpec::Format { .. } => "format",
            ScorerSpec::Keywords { .. } => "keywords",
            ScorerSpec::HumanRating { .. } => "human_rating",
            ScorerSpec::LlmJudge { .. } => "llm_judge",
            ScorerSpec::Rhai { .. } => "rhai",
            ScorerSpec::Webhook { .. } => "webhook",
            ScorerSpec::Python { .. } => "python",
        }
    }
}

impl Serialize for ScorerConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut object = match serde_json::to_value(&self.spec) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(serde::ser::Error::custom("a scorer spec is an object")),
            Err(e) => return Err(serde::ser::Error::custom(e)),
        };
        object.insert("name".into(), Value::String(self.name.clone()));
        object.insert("weight".into(), serde_json::json!(self.weight));
        object.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ScorerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let Value::Object(mut object) = Value::deserialize(d)? else {
            return Err(D::Error::custom("a scorer must be an object with a `kind`"));
        };
        let weight = match object.remove("weight") {
            None => 1.0,
            Some(w) => w
                .as_f64()
                .ok_or_else(|| D::Error::custom("weight must be a number"))?,
        };
        let name = match object.remove("name") {
            None => None,
            Some(Value::String(n)) => Some(n),
            Some(_) => return Err(D::Error::custom("name must be a string")),
        };
        let spec = ScorerSpec::deserialize(Value::Object(object)).map_err(D::Error::custom)?;
        Ok(ScorerConfig {
            name: name.unwrap_or_else(|| spec.kind().to_owned()),
            weight,
            spec,
        })
    }
}

/// A scorer as the leaderboard lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ScorerInfo {
    pub name: String,
    pub kind: String,
    pub weight: f64,
}

/// One scorer's verdict on one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Score {
    pub scorer: String,
    /// 0.0–1.0; absent when the scorer could not score this run (see `error`).
    pub value: Option<f64>,
    /// Why there is no value (no reference, an unreadable judge reply, a webhook down…).
    pub error: Option<String>,
    /// What the scorer found (terms matched, lengths, the judge's reply, tokens spent…).
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
}

/// A person's rating of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Rating {
    pub scorer: String,
    /// Who rated: a user id, `api_key:<id>` or `static_api_key`.
    pub rater: String,
    /// The rating as given: `up`, `down`, or stars `1`–`5`.
    pub raw: String,
    /// Normalised to 0–1.
    pub value: f64,
    pub comment: String,
    /// The rater's username, when the rater is a user.
    #[serde(default)]
    pub rater_name: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Thumb {
    Up,
    Down,
}

/// `POST /api/v1/runs/{id}/score`: a rating, by thumbs or stars (one of the two). Rating the
/// same run again replaces your earlier rating.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HumanScore {
    #[serde(default)]
    pub thumbs: Option<Thumb>,
    /// 1 to 5.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 5))]
    pub stars: Option<i64>,
    /// Which `human_rating` scorer (needed only when the experiment has several).
    #[serde(default)]
    pub scorer: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_length = 2000))]
    pub comment: Option<String>,
}

/// The answer to a rating: the run's score for that scorer, and every rating behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct RatingResult {
    pub score: Score,
    pub ratings: Vec<Rating>,
    /// False when no `human_rating` scorer of that name is configured: the rating is kept and
    /// counts once one is added.
    pub ranked: bool,
}

/// A run's scores and ratings, as `GET /api/v1/runs/{id}` shows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct RunScores {
    pub scores: Vec<Score>,
    /// The weighted score over the scorers that scored this run (absent without any).
    pub weighted: Option<f64>,
    pub ratings: Vec<Rating>,
}

/// One scorer's summary for one configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ScorerSummary {
    /// Mean over items (each item: the mean over its repeats); absent with no values.
    pub mean: Option<f64>,
    /// Samples (item × repeat) this scorer has a value for.
    pub n: i64,
    /// Samples it could not score (see each run's score `error`).
    pub errors: i64,
}

/// A configuration on the leaderboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct LeaderboardEntry {
    /// 1-based position in this ordering.
    pub rank: i64,
    pub config_key: String,
    pub config: Option<RunConfig>,
    /// A short description: variant, model and parameters per stage.
    pub label: String,
    /// The weighted score: per sample, the weighted mean of its scorers' values (weights of
    /// scorers without a value are left out); averaged per item over repeats, then over items.
    pub score: Option<f64>,
    /// Standard deviation of the per-sample weighted scores.
    pub std: Option<f64>,
    /// 95% confidence interval of `score`: percentile bootstrap over items (absent with fewer
    /// than 2 items).
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub scorers: BTreeMap<String, ScorerSummary>,
    /// Items with a weighted score.
    pub items: i64,
    /// Distinct (item, repeat) samples scored (a run re-served from the cache is the same
    /// sample, not a new one).
    pub samples: i64,
    /// Runs that ended (completed, cached, failed), and how many failed.
    pub runs: i64,
    pub failed: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    /// Total estimated cost; absent when a model has no known price.
    pub cost: Option<f64>,
    /// Mean latency per run: the sum of its stages' call latencies (as first measured, also
    /// for runs answered from the cache).
    pub latency_ms: Option<f64>,
    /// The run with the highest weighted score.
    pub best_run_id: Option<Uuid>,
    /// `approved` when marked good enough (rejected configurations are not listed).
    pub mark: Option<String>,
}

/// Whether #1 really beats #2: a paired comparison over the items both have scores for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct PairedComparison {
    pub first: String,
    pub second: String,
    /// What is compared: `score` or a scorer's name.
    pub metric: String,
    /// Items both configurations have a score for.
    pub items: i64,
    /// Mean of (first − second) over those items.
    pub mean_difference: f64,
    /// 95% paired bootstrap interval of the mean difference.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Two-sided p-value of a paired sign-flip permutation test (exact up to 16 items).
    pub p_value: Option<f64>,
    /// Items where first beat, tied and lost to second.
    pub wins: i64,
    pub ties: i64,
    pub losses: i64,
    /// p < 0.05 and the interval excludes 0.
    pub significant: bool,
    pub verdict: String,
}

/// `GET /api/v1/experiments/{id}/leaderboard`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Leaderboard {
    pub experiment_id: Uuid,
    pub scorers: Vec<ScorerInfo>,
    /// `score`, `scorer:<name>`, `cost`, `latency` or `runs`.
    pub sort: String,
    pub entries: Vec<LeaderboardEntry>,
    /// Configurations ranked (rejected ones excluded).
    pub total: i64,
    pub comparison: Option<PairedComparison>,
    /// A re-scoring job still working on this experiment, if any.
    pub scoring_job: Option<ScoringJob>,
}

/// `POST /api/v1/experiments/{id}/rescore`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RescoreRequest {
    /// Only these scorers (default: every configured one).
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(min_items = 1))]
    pub scorers: Option<Vec<String>>,
    /// Score again even where a score from the same scorer settings exists (default: only
    /// missing, outdated and failed scores).
    #[serde(default)]
    pub force: bool,
}

/// A background job that brings every ended run's scores up to date with the scoring config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ScoringJob {
    pub id: Uuid,
    pub experiment_id: Uuid,
    /// running, completed, failed or superseded (a newer job took over).
    pub status: String,
    pub scorers: Option<Vec<String>>,
    pub force: bool,
    /// Runs to look at, runs looked at, scores written, scores that could not be computed.
    pub total: i64,
    pub done: i64,
    pub scored: i64,
    pub errors: i64,
    /// LLM calls made by scorers (judges, embeddings) and calls answered from the cache.
    pub calls: i64,
    pub cache_hits: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/experiments/{id}/scorers/test`: a scorer config to try on one run (checked as
/// a save would; nothing is stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScorerTest {
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub scorer: Value,
    pub run_id: Uuid,
}

/// `POST /api/v1/experiments/{id}/compare`: a judge compares two configurations' outputs
/// item by item (A vs B, in a random order per item, so position bias cancels out).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PairwiseRequest {
    /// The configurations (their `config_key`s) to compare.
    pub first: String,
    pub second: String,
    pub endpoint_id: Uuid,
    #[cfg_attr(feature = "server", schema(value_type = super::schema::ModelName))]
    pub model: String,
    /// The judge's prompt template: it sees `input`, `reference`, `a`, `b` and `item`, and
    /// should ask for "Winner: A", "Winner: B" or "Winner: tie".
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub system: Option<String>,
    /// Default: temperature 0.
    #[serde(default)]
    pub params: Option<Params>,
    /// Changes which answer is shown first for each item (default 0: reproducible).
    #[serde(default)]
    #[cfg_attr(
        feature = "server",
        schema(format = "uint64", maximum = 18446744073709551615u64)
    )]
    pub seed: Option<u64>,
    /// Only these items (0-based); default every item both have.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(value_type = Option<Vec<super::schema::Index>>))]
    pub items: Option<Vec<usize>>,
}

/// The judge's verdict on one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct PairwiseItem {
    pub item_index: i32,
    /// `first`, `second` or `tie`; absent when the reply had no readable verdict.
    pub winner: Option<String>,
    /// Which configuration was shown as A.
    pub shown_as_a: String,
    pub error: Option<String>,
    pub reply: String,
    pub cached: bool,
}

/// How two configurations fared against each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct PairwiseResult {
    pub first: String,
    pub second: String,
    pub items: i64,
    pub first_wins: i64,
    pub second_wins: i64,
    pub ties: i64,
    /// Items whose reply had no readable verdict (reported, not counted).
    pub failures: i64,
    /// Share of decided items the first won, with a 95% Wilson interval.
    pub win_rate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Two-sided exact sign test over the decided items.
    pub p_value: Option<f64>,
    pub significant: bool,
    pub verdict: String,
    /// Judge calls made, and answered from the cache.
    pub calls: i64,
    pub cache_hits: i64,
    pub details: Vec<PairwiseItem>,
}

/// The export formats of `GET /api/v1/experiments/{id}/export/{format}`.
pub const EXPORT_FORMATS: &[&str] = &["best", "env", "yaml", "report"];

/// An export, as the export history lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ExportRecord {
    pub id: Uuid,
    /// Absent once the experiment was deleted (the project keeps its export history).
    pub experiment_id: Option<Uuid>,
    pub experiment_name: String,
    pub format: String,
    pub config_key: String,
    pub score: Option<f64>,
    pub exported_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scorers_are_flat_objects_with_defaults() {
        let s: ScorerConfig =
            serde_json::from_value(serde_json::json!({"kind": "keywords", "required": ["a"]}))
                .unwrap();
        assert_eq!(s.name, "keywords");
        assert_eq!(s.weight, 1.0);
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["kind"], "keywords");
        assert_eq!(back["weight"], 1.0);
        assert_eq!(back["mode"], "fraction");
        let again: ScorerConfig = serde_json::from_value(back).unwrap();
        assert_eq!(again, s);
        assert!(
            serde_json::from_value::<ScorerConfig>(serde_json::json!({"kind": "nope"})).is_err()
        );
        assert!(
            serde_json::from_value::<ScorerConfig>(
                serde_json::json!({"kind": "length", "maxx": 3})
            )
            .is_err(),
            "unknown fields are refused"
        );
    }
}
