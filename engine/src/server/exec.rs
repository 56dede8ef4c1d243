//! Executing one run: stage by stage, rendering templates, answering from the response cache
//! when the identical call was made before, calling the provider (with retries) otherwise.
//! Execution writes nothing: it returns an [`Outcome`] that the recorder commits, together
//! with other runs' outcomes, in one transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use super::cache::{self, CallKey, InFlightGuard};
use super::core::Core;
use super::endpoints::Ready;
use super::error::Result;
use super::pricing::PriceBook;
use super::providers::retry::RetryPolicy;
use super::providers::{ChatRequest, Message, Role};
use super::store::cache::{self as cache_store, CachedResponse};
use super::store::endpoints::{self, EndpointRow};
use super::store::events::NewEvent;
use super::templates::{self, ItemInfo, RenderContext, StageOutput};
use crate::types::{Experiment, Item, ItemRef, Run, StageConfig};

/// What the runs of one experiment share while they execute.
pub struct Context {
    pub core: Core,
    pub experiment: Arc<Experiment>,
    pub prices: PriceBook,
    pub policy: RetryPolicy,
    /// Items of the experiment's dataset version loaded so far, by id (bounded: it is emptied
    /// when it grows past [`ITEM_CACHE_BYTES`]; runs hold on to the items they use).
    items: Mutex<ItemCache>,
    /// The experiment's scorers: every run that ends with an output is scored with them.
    pub scoring: super::scoring::Scoring,
    /// Endpoints by id, loaded on first use (`None`: it no longer exists).
    endpoints: Mutex<HashMap<Uuid, Option<(EndpointRow, Ready)>>>,
}

/// An item as runs use it: with its input as JSON (part of every cache key), converted once.
pub struct ContextItem {
    pub item: Item,
    pub input: Value,
}

impl ContextItem {
    pub fn new(item: Item) -> Arc<ContextItem> {
        let input = serde_json::to_value(&item.input).unwrap_or_default();
        Arc::new(ContextItem { item, input })
    }

    fn bytes(&self) -> usize {
        self.item
            .input
            .values()
            .map(|v| match v {
                Value::String(s) => s.len(),
                other => other.to_string().len(),
            })
            .sum::<usize>()
            * 2
            + 256
    }
}

/// Most bytes of items (counted roughly, twice their text) a context keeps loaded.
pub const ITEM_CACHE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Default)]
struct ItemCache {
    map: HashMap<String, Arc<ContextItem>>,
    bytes: usize,
}

impl Context {
    pub async fn new(core: &Core, experiment: Experiment) -> Result<Context> {
        Ok(Context {
            core: core.clone(),
            items: Mutex::default(),
            scoring: super::scoring::Scoring::build(core, &experiment).await,
            experiment: Arc::new(experiment),
            prices: PriceBook::load(core).await?,
            policy: RetryPolicy::default(),
            endpoints: Mutex::default(),
        })
    }

    /// The endpoint a stage calls, ready to use.
    pub async fn endpoint(&self, id: Uuid) -> Result<Option<(EndpointRow, Ready)>> {
        if let Some(known) = self
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(known.clone());
        }
        let loaded = match endpoints::get(&self.core.db, id).await? {
            Some(row) => {
                let ready = self.core.providers.get(&self.core, &row)?;
                Some((row, ready))
            }
            None => None,
        };
        self.endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, loaded.clone());
        Ok(loaded)
    }

    /// Keeps items loaded (the cache is emptied first when they would not fit).
    pub fn keep(&self, items: &[Arc<ContextItem>]) {
        let mut cache = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let adding: usize = items.iter().map(|i| i.bytes()).sum();
        if cache.bytes + adding > ITEM_CACHE_BYTES {
            cache.map.clear();
            cache.bytes = 0;
        }
        for item in items {
            if cache
                .map
                .insert(item.item.id.clone(), item.clone())
                .is_none()
            {
                cache.bytes += item.bytes();
            }
        }
    }

    /// The loaded item a run is for, if it is loaded.
    pub fn loaded(&self, run: &Run) -> Option<Arc<ContextItem>> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .get(&run.item_id)
            .cloned()
    }

    /// Loads the items of these runs that are not loaded yet, in one read.
    pub async fn load(&self, runs: &[&Run]) -> Result<()> {
        let missing: Vec<String> = {
            let cache = self.items.lock().unwrap_or_else(|e| e.into_inner());
            let mut ids: Vec<String> = runs
                .iter()
                .filter(|r| !cache.map.contains_key(&r.item_id))
                .map(|r| r.item_id.clone())
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        if missing.is_empty() {
            return Ok(());
        }
        let e = &self.experiment.items;
        let items =
            super::store::datasets::by_ids(&self.core.db, e.dataset_id, e.version, &missing)
                .await?;
        let items: Vec<Arc<ContextItem>> = items.into_iter().map(ContextItem::new).collect();
        self.keep(&items);
        Ok(())
    }

    /// The item a run is for, loaded if need be (`Err`: the run's failure message).
    pub async fn item(&self, run: &Run) -> Result<std::result::Result<Arc<ContextItem>, String>> {
        if let Some(item) = self.loaded(run) {
            return Ok(Ok(item));
        }
        self.load(&[run]).await?;
        Ok(self.loaded(run).ok_or_else(|| {
            format!(
                "item {:?} is not in version {} of the experiment's items (they changed)",
                run.item_id, self.experiment.items.version
            )
        }))
    }

    /// The items a request names (by id or 0-based place, checked; `once`: repeats dropped),
    /// in the order named. Reads the version page by page when places are named.
    pub async fn pick(&self, refs: &[ItemRef], once: bool) -> Result<Vec<Arc<ContextItem>>> {
        use super::error::Error;
        if refs.is_empty() {
            return Err(Error::invalid("items", "must name at least one item"));
        }
        let e = &self.experiment.items;
        let ids: Vec<String> = refs
            .iter()
            .filter_map(|r| match r {
                ItemRef::Id(id) => Some(id.clone()),
                ItemRef::Index(_) => None,
            })
            .collect();
        let found: HashMap<String, Arc<ContextItem>> =
            super::store::datasets::by_ids(&self.core.db, e.dataset_id, e.version, &ids)
                .await?
                .into_iter()
                .map(|i| (i.id.clone(), ContextItem::new(i)))
                .collect();
        let mut places: Vec<usize> = refs
            .iter()
            .filter_map(|r| match r {
                ItemRef::Index(i) => Some(*i),
                ItemRef::Id(_) => None,
            })
            .collect();
        places.sort_unstable();
        places.dedup();
        let mut at_place: HashMap<usize, Arc<ContextItem>> = HashMap::new();
        if let Some(&last) = places.last() {
            let (mut after, mut index) = (None, 0usize);
            'pages: loop {
                let page = super::store::datasets::after(
                    &self.core.db,
                    e.dataset_id,
                    e.version,
                    after,
                    1000,
                )
                .await?;
                let done = page.len() < 1000;
                after = page.last().map(|i| i.position);
                for item in page {
                    if places.binary_search(&index).is_ok() {
                        at_place.insert(index, ContextItem::new(item));
                    }
                    index += 1;
                    if index > last {
                        break 'pages;
                    }
                }
                if done {
                    break;
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let item = match r {
                ItemRef::Index(i) => at_place.get(i).cloned(),
                ItemRef::Id(id) => found.get(id).cloned(),
            }
            .ok_or_else(|| {
                Error::invalid(
                    "items",
                    match r {
                        ItemRef::Index(i) => {
                            format!("item {i} does not exist (the experiment has {})", e.count)
                        }
                        ItemRef::Id(id) => format!("no item has id {id:?}"),
                    },
                )
            })?;
            if !once || seen.insert(item.item.id.clone()) {
                out.push(item);
            }
        }
        Ok(out)
    }

    fn stage_name(&self, k: usize) -> &str {
        self.experiment
            .pipeline_stages
            .get(k)
            .map_or("?", |s| s.name.as_str())
    }
}

/// One stage's call, rendered and keyed.
pub struct PreparedCall {
    pub messages: Vec<Message>,
    pub key: String,
}

/// Renders stage `k` of a run's messages (given the earlier stages' outputs). `Err` is the
/// run's failure message.
pub fn render(
    ctx: &Context,
    env: &minijinja::Environment<'_>,
    run: &Run,
    item: &ContextItem,
    k: usize,
    outputs: &[StageOutput],
) -> std::result::Result<Vec<Message>, String> {
    let stage = &run.config.stages[k];
    let item = &item.item;
    let render_ctx = RenderContext {
        input: &item.input,
        stages: outputs,
        item: ItemInfo {
            index: run.item_index as usize,
            id: Some(item.id.as_str()),
        },
    };
    let stage_name = ctx.stage_name(k);
    let system = templates::render(env, &stage.system, &render_ctx)
        .map_err(|e| format!("stage {k} ({stage_name}): template error: {e}"))?;
    let user = templates::render(env, &stage.user, &render_ctx)
        .map_err(|e| format!("stage {k} ({stage_name}): template error: {e}"))?;
    Ok(messages(system, user))
}

/// Renders stage `k` of a run (given the earlier stages' outputs) and computes its cache key.
/// `Err` is the run's failure message.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    ctx: &Context,
    env: &minijinja::Environment<'_>,
    run: &Run,
    item: &ContextItem,
    k: usize,
    outputs: &[StageOutput],
    row: &EndpointRow,
) -> std::result::Result<PreparedCall, String> {
    let messages = render(ctx, env, run, item, k, outputs)?;
    let input = &item.input;
    let key = key_for(
        row,
        &run.config.stages[k],
        &messages,
        input,
        k,
        run.repeat_index as u32,
    );
    Ok(PreparedCall { messages, key })
}

pub fn messages(system: String, user: String) -> Vec<Message> {
    let mut messages = Vec::with_capacity(2);
    if !system.trim().is_empty() {
        messages.push(Message {
            role: Role::System,
            content: system,
        });
    }
    messages.push(Message {
        role: Role::User,
        content: user,
    });
    messages
}

pub fn key_for(
    row: &EndpointRow,
    stage: &StageConfig,
    messages: &[Message],
    input: &Value,
    k: usize,
    repeat: u32,
) -> String {
    cache::call_key(&CallKey {
        kind: row.kind,
        base_url: &row.base_url,
        model: &stage.model,
        messages,
        params: &stage.params,
        input,
        stage_index: k,
        repeat_index: repeat,
    })
}

/// A stage's result, owned, ready to store.
#[derive(Clone, Debug)]
pub struct StageRecord {
    pub stage_index: i32,
    pub prompt_sent: String,
    pub response_raw: String,
    pub model_used: String,
    pub parameters: Value,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub latency_ms: i64,
    pub cached: bool,
    pub finish_reason: Option<String>,
    pub usage_estimated: bool,
    pub cost_estimate: Option<f64>,
    pub cache_key: String,
}

impl StageRecord {
    /// The record of stage `k` answered by `answer` (fresh or from the cache).
    pub fn new(
        k: usize,
        stage: &StageConfig,
        messages: &[Message],
        answer: &CachedResponse,
        cached: bool,
        cost_estimate: Option<f64>,
        cache_key: String,
    ) -> StageRecord {
        StageRecord {
            stage_index: k as i32,
            prompt_sent: serde_json::to_string(messages).unwrap_or_default(),
            response_raw: answer.response.clone(),
            model_used: answer.model.clone(),
            parameters: serde_json::to_value(&stage.params).unwrap_or_default(),
            tokens_in: answer.tokens_in,
            tokens_out: answer.tokens_out,
            latency_ms: answer.latency_ms,
            cached,
            finish_reason: answer.finish_reason.clone(),
            usage_estimated: answer.usage_estimated,
            cost_estimate,
            cache_key,
        }
    }
}

/// How a run ended, not yet written.
pub struct Outcome {
    /// The run as it ended (status completed, cached or failed).
    pub run: Run,
    pub stages: Vec<StageRecord>,
    /// Fresh answers to store in the response cache.
    pub cache_puts: Vec<(String, CachedResponse)>,
    pub hits: i64,
    pub misses: i64,
    /// Spent on calls actually made.
    pub spent_tokens_in: i64,
    pub spent_tokens_out: i64,
    pub spent_cost: f64,
    /// Events beyond the run's own end event (stage completions).
    pub events: Vec<NewEvent>,
    /// Single-flight locks, released once the outcome is recorded (so a waiting identical
    /// call finds the answer in the cache).
    pub guards: Vec<InFlightGuard>,
    /// The run's scores, stored with it.
    pub scores: Vec<super::scoring::ScoreRow>,
}

impl Outcome {
    /// A run that ends failed without executing.
    pub fn failed(mut run: Run, error: String) -> Outcome {
        run.status = "failed".into();
        run.error = Some(error);
        run.completed_at = Some(Utc::now());
        Outcome {
            run,
            stages: Vec::new(),
            cache_puts: Vec::new(),
            hits: 0,
            misses: 0,
            spent_tokens_in: 0,
            spent_tokens_out: 0,
            spent_cost: 0.0,
            events: Vec::new(),
            guards: Vec::new(),
            scores: Vec::new(),
        }
    }
}

/// Executes one run to its end. Only a database failure while reading the cache is an `Err`.
pub async fn execute(ctx: &Context, run: Run) -> Result<Outcome> {
    execute_known(ctx, run, None).await
}

/// Like [`execute`]. `first_call_missed`: the first stage's call, already rendered, was just
/// looked up in the cache and missed; it is not rendered again, nor looked up again unless an
/// identical call ran meanwhile in this process.
pub async fn execute_known(
    ctx: &Context,
    mut run: Run,
    mut first_call_missed: Option<PreparedCall>,
) -> Result<Outcome> {
    let core = &ctx.core;
    let started = Instant::now();
    if run.started_at.is_none() {
        run.started_at = Some(Utc::now());
    }
    let item = match ctx.item(&run).await? {
        Ok(item) => item,
        Err(why) => return Ok(Outcome::failed(run, why)),
    };
    let env = templates::environment();
    let mut outputs: Vec<StageOutput> = Vec::new();
    let mut out = Outcome::failed(run.clone(), String::new());
    out.run.error = None;
    let mut cost = Some(0.0);
    let mut failure = None;
    let multi_stage = run.config.stages.len() > 1;

    for (k, stage) in run.config.stages.iter().enumerate() {
        let stage_name = ctx.stage_name(k).to_owned();
        let Some((row, ready)) = ctx.endpoint(stage.endpoint_id).await? else {
            failure = Some(format!(
                "stage {k} ({stage_name}): the endpoint no longer exists"
            ));
            break;
        };
        let known = if k == 0 {
            first_call_missed.take()
        } else {
            None
        };
        let known_miss = known.is_some();
        let prepared = match known {
            Some(call) => Ok(call),
            None => prepare(ctx, &env, &run, &item, k, &outputs, &row),
        };
        let call = match prepared {
            Ok(call) => call,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        // Single flight: a concurrent identical call waits here and then reads the cache.
        let guard = core.in_flight.lock_noting_wait(&call.key).await;
        let lookup = if known_miss && !guard.waited {
            None
        } else {
            cache_store::get(&core.db, &call.key).await?
        };
        let (answer, cached) = match lookup {
            Some(hit) => {
                out.hits += 1;
                super::telemetry::cache_lookup(true);
                (hit, true)
            }
            None => {
                out.misses += 1;
                super::telemetry::cache_lookup(false);
                let request = ChatRequest {
                    model: stage.model.clone(),
                    messages: call.messages.clone(),
                    params: stage.params.clone(),
                };
                match ready.call(&ctx.policy, &request).await? {
                    Ok(answer) => {
                        out.spent_tokens_in += answer.tokens_in;
                        out.spent_tokens_out += answer.tokens_out;
                        let spent = ctx
                            .prices
                            .cost(&stage.model, answer.tokens_in, answer.tokens_out)
                            .unwrap_or(0.0);
                        super::telemetry::llm_cost(&ready.name, &stage.model, spent);
                        out.spent_cost += spent;
                        // Errors are never cached; successes are, for every later identical call.
                        out.cache_puts.push((call.key.clone(), answer.clone()));
                        (answer, false)
                    }
                    Err(e) => {
                        failure = Some(format!("stage {k} ({stage_name}): {}", e.message));
                        break;
                    }
                }
            }
        };
        out.guards.push(guard);
        let stage_cost = ctx
            .prices
            .cost(&stage.model, answer.tokens_in, answer.tokens_out);
        cost = cost.zip(stage_cost).map(|(a, b)| a + b);
        out.run.tokens_in += answer.tokens_in;
        out.run.tokens_out += answer.tokens_out;
        if multi_stage {
            out.events.push(NewEvent {
                event_type: "stage.completed",
                experiment_id: Some(run.experiment_id),
                sweep_id: run.sweep_id,
                run_id: Some(run.id),
                payload: serde_json::json!({
                    "stage_index": k,
                    "stage": stage_name,
                    "cached": cached,
                    "tokens_in": answer.tokens_in,
                    "tokens_out": answer.tokens_out,
                    "latency_ms": answer.latency_ms,
                }),
            });
        }
        out.stages.push(StageRecord::new(
            k,
            stage,
            &call.messages,
            &answer,
            cached,
            stage_cost,
            call.key,
        ));
        outputs.push(StageOutput {
            name: stage_name,
            output: answer.response,
        });
    }

    out.run.completed_at = Some(Utc::now());
    out.run.duration_ms = Some(started.elapsed().as_millis() as i64);
    out.run.cost_estimate = cost;
    match failure {
        Some(error) => {
            tracing::warn!(run = %run.id, %error, "run failed");
            out.run.status = "failed".into();
            out.run.error = Some(error);
        }
        None => {
            out.run.status = if out.misses == 0 {
                "cached".into()
            } else {
                "completed".into()
            };
            score(ctx, &item, &mut out, &outputs).await;
        }
    }
    Ok(out)
}

/// Scores a run that ended with an output. Scorer calls (judges, embeddings) count towards
/// what the run's sweep spends, and their fresh answers are cached with the run.
async fn score(ctx: &Context, item: &ContextItem, out: &mut Outcome, outputs: &[StageOutput]) {
    if ctx.scoring.is_empty() {
        return;
    }
    let Some(last) = out.stages.last() else {
        return;
    };
    let item = &item.item;
    let no_ratings = HashMap::new();
    let subject = super::scoring::Subject {
        run: (&out.run).into(),
        input: &item.input,
        item_id: Some(item.id.as_str()),
        reference: item.reference.as_deref(),
        output: &last.response_raw,
        stages: outputs,
        output_tokens: last.tokens_out,
        output_tokens_estimated: last.usage_estimated,
        ratings: &no_ratings,
    };
    let (rows, usage) = ctx
        .scoring
        .score(&ctx.core, &ctx.prices, &subject, None)
        .await;
    out.scores = rows;
    out.spent_tokens_in += usage.tokens_in;
    out.spent_tokens_out += usage.tokens_out;
    out.spent_cost += usage.cost;
    out.cache_puts.extend(usage.cache_puts);
}
