//! Scoring: turning a run's output into numbers a user can trust.
//!
//! A scorer is data first: a [`ScorerConfig`] in the experiment's `scoring_config` (a spec
//! tagged by `kind`, a name and a weight), checked when saved (`check`) and built into an
//! `Arc<dyn Scorer>` by one factory ([`Scoring::build`]). Runs are scored when they end (the
//! recorder stores the scores with the run), runs answered from the cache at planning and
//! historical runs by a background job (`jobs`). A score records the fingerprint of the
//! settings that produced it, so a changed scorer's old scores are recognised as outdated.

pub mod check;
mod custom;
mod embedding;
pub mod human;
pub mod jobs;
mod judge;
pub mod pairwise;
pub mod stats;
mod text;
pub mod trial;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use uuid::Uuid;

use super::core::Core;
use super::pricing::PriceBook;
use super::store::cache::CachedResponse;
use super::templates::StageOutput;
use crate::types::{Experiment, Run, RunConfig, ScorerConfig, ScorerSpec};

pub use check::check_scoring;

/// The most bytes of metadata one score keeps (longer metadata is cut, and says so).
const METADATA_MAX: usize = 16 * 1024;

/// A scorer's verdict on one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub value: Option<f64>,
    pub error: Option<String>,
    pub metadata: Value,
}

impl Verdict {
    /// A value in 0–1 (a value outside, or not finite, is an error: scorers must not guess).
    pub fn score(value: f64, metadata: Value) -> Verdict {
        if value.is_finite() && (-1e-9..=1.0 + 1e-9).contains(&value) {
            Verdict {
                value: Some(value.clamp(0.0, 1.0)),
                error: None,
                metadata,
            }
        } else {
            Verdict::fail(
                format!("the score {value} is not between 0 and 1"),
                metadata,
            )
        }
    }

    pub fn fail(error: impl Into<String>, metadata: Value) -> Verdict {
        let mut error: String = error.into();
        if error.len() > 2000 {
            let mut end = 2000;
            while !error.is_char_boundary(end) {
                end -= 1;
            }
            error.truncate(end);
            error.push('…');
        }
        Verdict {
            value: None,
            error: Some(error),
            metadata,
        }
    }
}

/// What a scorer spent on LLM calls (judges, embeddings), and the fresh answers to cache.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    pub calls: i64,
    pub cache_hits: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost: f64,
    pub cache_puts: Vec<(String, CachedResponse)>,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.calls += other.calls;
        self.cache_hits += other.cache_hits;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        self.cost += other.cost;
        self.cache_puts.extend(other.cache_puts);
    }
}

/// Which run is scored.
#[derive(Clone, Copy)]
pub struct RunRef<'a> {
    pub id: Uuid,
    pub experiment_id: Uuid,
    pub config_key: &'a str,
    pub config: &'a RunConfig,
    pub item_index: i32,
    pub repeat_index: i32,
}

impl<'a> From<&'a Run> for RunRef<'a> {
    fn from(r: &'a Run) -> Self {
        RunRef {
            id: r.id,
            experiment_id: r.experiment_id,
            config_key: &r.config_key,
            config: &r.config,
            item_index: r.item_index,
            repeat_index: r.repeat_index,
        }
    }
}

/// What scorers see of a run.
pub struct Subject<'a> {
    pub run: RunRef<'a>,
    pub input: &'a BTreeMap<String, Value>,
    pub item_id: Option<&'a str>,
    pub reference: Option<&'a str>,
    /// The final stage's output.
    pub output: &'a str,
    /// Every stage's output, in order.
    pub stages: &'a [StageOutput],
    /// The final stage's output tokens, and whether the provider reported them.
    pub output_tokens: i64,
    pub output_tokens_estimated: bool,
    /// Ratings given to this run, by scorer name (normalised values).
    pub ratings: &'a HashMap<String, Vec<f64>>,
}

impl Subject<'_> {
    /// The context every custom scorer receives.
    pub fn context(&self) -> Value {
        json!({
            "experiment_id": self.run.experiment_id,
            "run_id": self.run.id,
            "config_key": self.run.config_key,
            "config": self.run.config,
            "item_index": self.run.item_index,
            "item_id": self.item_id,
            "repeat_index": self.run.repeat_index,
            "stages": self.stages,
        })
    }
}

/// What a scorer needs besides the run: the engine (database, providers), prices, and the
/// memo that makes identical judge and embedding calls once per scoring pass.
pub struct Env<'a> {
    pub core: &'a Core,
    pub prices: &'a PriceBook,
    pub memo: &'a Memo,
}

/// Judge replies and embeddings computed in this pass, by cache key.
pub type Memo = Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Result<CachedResponse, String>>>>>;

#[async_trait::async_trait]
pub trait Scorer: Send + Sync {
    /// `None`: nothing to record for this run (e.g. nobody has rated it yet).
    async fn score(&self, env: &Env<'_>, subject: &Subject<'_>) -> Option<(Verdict, Usage)>;
}

/// One configured scorer, built.
pub struct Built {
    pub name: String,
    pub kind: &'static str,
    pub weight: f64,
    pub fingerprint: String,
    scorer: Arc<dyn Scorer>,
}

/// A score ready to store.
#[derive(Clone, Debug)]
pub struct ScoreRow {
    pub run_id: Uuid,
    pub scorer_name: String,
    pub experiment_id: Uuid,
    pub config_key: String,
    pub fingerprint: String,
    pub value: Option<f64>,
    pub error: Option<String>,
    pub metadata: Value,
}

/// An experiment's scorers, built once and shared by every run of a pass.
pub struct Scoring {
    pub scorers: Vec<Built>,
    /// Scorers that could not be built (a config saved by an older version, an endpoint
    /// deleted since): reported, never guessed around.
    pub problems: Vec<String>,
    memo: Memo,
}

impl std::fmt::Debug for Scoring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoring")
            .field(
                "scorers",
                &self.scorers.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("problems", &self.problems)
            .finish()
    }
}

/// The fingerprint of a scorer's settings (its spec; not its name or weight).
pub fn fingerprint(spec: &ScorerSpec) -> String {
    let value = serde_json::to_value(spec).unwrap_or_default();
    super::cache::sha256_hex(&super::cache::canonical_json(&value))[..16].to_owned()
}

/// Reads a stored scoring config without failing: entries that no longer parse are reported
/// as problems. (`check` refuses them when an experiment is saved.)
pub fn parse_lenient(config: &Value) -> (Vec<ScorerConfig>, Vec<String>) {
    let items = match config {
        Value::Array(items) => items.as_slice(),
        Value::Object(o) if o.is_empty() => &[],
        _ => {
            return (
                Vec::new(),
                vec!["scoring_config is not a list of scorers".into()],
            );
        }
    };
    let mut scorers = Vec::new();
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match serde_json::from_value::<ScorerConfig>(item.clone()) {
            Ok(s) => scorers.push(s),
            Err(e) => problems.push(format!("scoring_config[{i}]: {e}")),
        }
    }
    (scorers, problems)
}

/// Weighted mean of scorer values, over the scorers that have one (a scorer without a value
/// is left out and its weight with it). `None` when no weighted scorer has a value.
pub fn weighted(values: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut sum, mut weights) = (0.0, 0.0);
    for (weight, value) in values {
        if weight > 0.0 {
            sum += weight * value;
            weights += weight;
        }
    }
    (weights > 0.0).then(|| sum / weights)
}

impl Scoring {
    /// Scoring that scores nothing.
    pub fn none() -> Scoring {
        Scoring {
            scorers: Vec::new(),
            problems: Vec::new(),
            memo: Memo::default(),
        }
    }

    /// The one factory: builds every scorer of the experiment's config.
    pub async fn build(core: &Core, experiment: &Experiment) -> Scoring {
        let (configs, mut problems) = parse_lenient(&experiment.scoring_config);
        let mut scorers = Vec::new();
        for config in configs {
            match build_one(core, experiment.id, &config, None).await {
                Ok(scorer) => scorers.push(Built {
                    kind: config.spec.kind(),
                    fingerprint: fingerprint(&config.spec),
                    name: config.name,
                    weight: config.weight,
                    scorer,
                }),
                Err(e) => problems.push(format!("scorer {:?}: {e}", config.name)),
            }
        }
        if !problems.is_empty() {
            tracing::warn!(experiment = %experiment.id, ?problems, "some scorers cannot be used");
        }
        Scoring {
            scorers,
            problems,
            memo: Memo::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.scorers.is_empty()
    }

    /// Which scorers are current, by name: their fingerprint and weight.
    pub fn current(&self) -> HashMap<&str, (&str, f64)> {
        self.scorers
            .iter()
            .map(|s| (s.name.as_str(), (s.fingerprint.as_str(), s.weight)))
            .collect()
    }

    /// Scores a run with every scorer (or those `only` names), concurrently. Never fails: a
    /// scorer that cannot score says why in its row.
    pub async fn score(
        &self,
        core: &Core,
        prices: &PriceBook,
        subject: &Subject<'_>,
        only: Option<&(dyn Fn(&Built) -> bool + Sync)>,
    ) -> (Vec<ScoreRow>, Usage) {
        let env = Env {
            core,
            prices,
            memo: &self.memo,
        };
        let chosen: Vec<&Built> = self
            .scorers
            .iter()
            .filter(|b| only.is_none_or(|f| f(b)))
            .collect();
        let results =
            futures::future::join_all(chosen.iter().map(|b| b.scorer.score(&env, subject))).await;
        let mut rows = Vec::with_capacity(chosen.len());
        let mut usage = Usage::default();
        for (built, result) in chosen.into_iter().zip(results) {
            let Some((verdict, spent)) = result else {
                continue;
            };
            usage.add(spent);
            rows.push(ScoreRow {
                run_id: subject.run.id,
                scorer_name: built.name.clone(),
                experiment_id: subject.run.experiment_id,
                config_key: subject.run.config_key.to_owned(),
                fingerprint: built.fingerprint.clone(),
                value: verdict.value,
                error: verdict.error,
                metadata: cap_metadata(verdict.metadata),
            });
        }
        (rows, usage)
    }
}

/// Metadata within `METADATA_MAX` bytes.
fn cap_metadata(metadata: Value) -> Value {
    let text = metadata.to_string();
    if text.len() <= METADATA_MAX {
        return metadata;
    }
    let mut end = METADATA_MAX - 100;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    json!({"truncated": true, "bytes": text.len(), "start": &text[..end]})
}

/// Builds one scorer. A webhook's sealed header values come from `sealed` when given, else
/// from the experiment's stored ones.
async fn build_one(
    core: &Core,
    experiment_id: Uuid,
    config: &ScorerConfig,
    sealed: Option<Vec<(String, String)>>,
) -> Result<Arc<dyn Scorer>, String> {
    Ok(match &config.spec {
        ScorerSpec::EmbeddingSimilarity { endpoint_id, model } => {
            Arc::new(embedding::Embedding::new(core, *endpoint_id, model.as_deref()).await?)
        }
        ScorerSpec::LexicalSimilarity { metric } => Arc::new(text::Lexical { metric: *metric }),
        ScorerSpec::Length {
            unit,
            min,
            max,
            falloff,
        } => Arc::new(text::Length {
            unit: *unit,
            min: *min,
            max: *max,
            falloff: *falloff,
        }),
        spec @ ScorerSpec::Format { .. } => Arc::new(text::Format::new(spec)?),
        spec @ ScorerSpec::Keywords { .. } => Arc::new(text::Keywords::new(spec)?),
        ScorerSpec::HumanRating { .. } => Arc::new(human::Human {
            name: config.name.clone(),
        }),
        spec @ ScorerSpec::LlmJudge { .. } => Arc::new(judge::Judge::new(core, spec).await?),
        ScorerSpec::Rhai { script, timeout_ms } => {
            Arc::new(custom::RhaiScorer::new(script, *timeout_ms)?)
        }
        ScorerSpec::Webhook {
            url,
            timeout_ms,
            retries,
            ..
        } => {
            let sealed = match sealed {
                Some(s) => s,
                None => super::store::scores::scorer_secrets(&core.db, experiment_id, &config.name)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            let headers = sealed
                .into_iter()
                .map(|(name, sealed)| {
                    core.secrets
                        .open(&sealed)
                        .map(|v| (name, v))
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(custom::Webhook::new(
                core,
                url,
                headers,
                *timeout_ms,
                *retries,
            )?)
        }
        ScorerSpec::Python { code, timeout_ms } => {
            let allowed = super::store::settings::load(&core.db)
                .await
                .map_err(|e| e.to_string())?
                .allow_python_scorers;
            if !allowed {
                return Err(
                    "python scorers are turned off (an admin can allow them in settings)".into(),
                );
            }
            Arc::new(custom::Python::new(code, *timeout_ms))
        }
    })
}

/// Everything needed to score ended runs outside a sweep lane: the experiment's scoring and
/// prices (the re-scoring job and the scorer test use it).
pub struct Pass {
    pub scoring: Scoring,
    pub prices: PriceBook,
}

impl Pass {
    pub async fn new(core: &Core, experiment: &Experiment) -> super::error::Result<Pass> {
        Ok(Pass {
            scoring: Scoring::build(core, experiment).await,
            prices: PriceBook::load(core).await?,
        })
    }
}
