//! The leaderboard: configurations ranked by weighted score, with spread, a bootstrap
//! confidence interval over items, cost and latency, and a paired test of #1 against #2.
//!
//! Each configuration's standing is a stored summary (`leaderboard_entries`). Writers bump
//! its version when a run, score or rating of it changes; a read first recomputes the stale
//! summaries (only those), so an experiment with 100,000 runs answers from a few thousand
//! rows. A *sample* is one (item, repeat) of a configuration: runs the cache re-served for the
//! same sample count once.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::json;
use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::scoring::stats::{self, BOOTSTRAP, Rng};
use super::scoring::{parse_lenient, weighted};
use super::store::experiments;
use super::store::leaderboard::{self as store, ItemScores, RunFact, ScoreFact, Summary};
use crate::types::{
    Experiment, Leaderboard, LeaderboardEntry, PairedComparison, RunConfig, ScorerInfo,
};
use crate::validate;

pub const PAGE_MAX: i64 = 500;
/// Stale entries recomputed per round trip.
const REFRESH_CHUNK: usize = 200;

/// Current scorers: name → (fingerprint, weight).
pub type Current = HashMap<String, (String, f64)>;

fn current(e: &Experiment) -> (Current, Vec<ScorerInfo>) {
    let (configs, _) = parse_lenient(&e.scoring_config);
    let info = configs
        .iter()
        .map(|c| ScorerInfo {
            name: c.name.clone(),
            kind: c.spec.kind().to_owned(),
            weight: c.weight,
        })
        .collect();
    let current = configs
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                (super::scoring::fingerprint(&c.spec), c.weight),
            )
        })
        .collect();
    (current, info)
}

/// Recomputes one configuration's summary from its ended runs and their current scores.
pub fn summarise(
    config_key: &str,
    version: i64,
    runs: &[&RunFact],
    scores: &HashMap<Uuid, Vec<&ScoreFact>>,
    current: &Current,
) -> Summary {
    // Per run: current scorer values (None: the scorer failed on it).
    let run_values = |id: Uuid| -> Vec<(&str, Option<f64>)> {
        scores
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|s| {
                current
                    .get(&s.scorer_name)
                    .is_some_and(|(fp, _)| *fp == s.fingerprint)
            })
            .map(|s| (s.scorer_name.as_str(), s.value))
            .collect()
    };
    let weight = |name: &str| current.get(name).map_or(0.0, |(_, w)| *w);
    let mut s = Summary {
        config_key: config_key.to_owned(),
        version,
        ..Summary::default()
    };
    let mut best: Option<(f64, Uuid)> = None;
    let mut cost = Some(0.0);
    let mut latencies = Vec::new();
    // Samples by config_hash: (item, per-scorer values over its runs, failures per scorer).
    type Sample<'a> = (i64, BTreeMap<&'a str, Vec<f64>>, BTreeMap<&'a str, usize>);
    let mut samples: BTreeMap<&str, Sample<'_>> = BTreeMap::new();
    for r in runs {
        s.runs += 1;
        s.tokens_in += r.tokens_in;
        s.tokens_out += r.tokens_out;
        match (r.cost_estimate, r.status.as_str()) {
            (Some(c), _) => cost = cost.map(|t| t + c),
            (None, "failed") => {}
            (None, _) => cost = None,
        }
        if r.status == "failed" {
            s.failed += 1;
            continue;
        }
        if let Some(l) = r.latency_ms {
            latencies.push(l as f64);
        }
        let values = run_values(r.id);
        let run_weighted = weighted(values.iter().filter_map(|(n, v)| v.map(|v| (weight(n), v))));
        if let Some(w) = run_weighted
            && best.is_none_or(|(b, _)| w > b)
        {
            best = Some((w, r.id));
        }
        let sample = samples.entry(r.config_hash.as_str()).or_insert_with(|| {
            (
                store::item_key(&r.item_id),
                BTreeMap::new(),
                BTreeMap::new(),
            )
        });
        for (name, value) in values {
            match value {
                Some(v) => sample.1.entry(name).or_default().push(v),
                None => *sample.2.entry(name).or_default() += 1,
            }
        }
    }
    s.cost = cost.map(|c| (c * 1e9).round() / 1e9);
    s.latency_ms = stats::mean(&latencies);
    s.best_run_id = best.map(|(_, id)| id);

    let mut sample_scores = Vec::new();
    let mut by_item: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    let mut by_scorer_item: BTreeMap<&str, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for (item, values, failures) in samples.values() {
        let means: Vec<(&str, f64)> = values
            .iter()
            .filter_map(|(n, v)| stats::mean(v).map(|m| (*n, m)))
            .collect();
        for (name, m) in &means {
            by_scorer_item
                .entry(name)
                .or_default()
                .entry(*item)
                .or_default()
                .push(*m);
            s.scorers.entry((*name).to_owned()).or_default().n += 1;
        }
        for (name, n) in failures {
            if !values.contains_key(name) && *n > 0 {
                s.scorers.entry((*name).to_owned()).or_default().errors += 1;
            }
        }
        if let Some(w) = weighted(means.iter().map(|(n, m)| (weight(n), *m))) {
            sample_scores.push(w);
            by_item.entry(*item).or_default().push(w);
        }
    }
    for (name, items) in &by_scorer_item {
        let item_means: BTreeMap<i64, f64> = items
            .iter()
            .filter_map(|(i, v)| stats::mean(v).map(|m| (*i, m)))
            .collect();
        let values: Vec<f64> = item_means.values().copied().collect();
        if let Some(entry) = s.scorers.get_mut(*name) {
            entry.mean = stats::mean(&values);
        }
        s.item_scores.s.insert((*name).to_owned(), item_means);
    }
    s.item_scores.w = by_item
        .iter()
        .filter_map(|(i, v)| stats::mean(v).map(|m| (*i, m)))
        .collect();
    let item_means: Vec<f64> = s.item_scores.w.values().copied().collect();
    // Stored rounded (to 1e-7, far below any difference a paired test can see): the per-item
    // data stays small.
    let round = |m: &mut std::collections::BTreeMap<i64, f64>| {
        m.values_mut().for_each(|v| *v = (*v * 1e7).round() / 1e7)
    };
    round(&mut s.item_scores.w);
    s.item_scores.s.values_mut().for_each(round);
    s.items = item_means.len() as i64;
    s.samples = sample_scores.len() as i64;
    s.score = stats::mean(&item_means);
    s.std = stats::std_dev(&sample_scores);
    if let Some((lo, hi)) =
        stats::bootstrap_ci(&item_means, BOOTSTRAP, &mut Rng::seeded(config_key))
    {
        s.ci_low = Some(lo);
        s.ci_high = Some(hi);
    }
    s
}

/// Recomputes the experiment's stale summaries.
///
/// A read never shows a summary older than the writes committed before it began: entries
/// another transaction held (PostgreSQL skips those rather than wait on a writer) are
/// recomputed once more after the first pass, this time waiting for the holder.
pub async fn refresh(core: &Core, e: &Experiment) -> Result<()> {
    let t = std::time::Instant::now();
    let stale = store::stale(&core.db, e.id).await?;
    if stale.is_empty() {
        return Ok(());
    }
    let looked = t.elapsed();
    // The scorers as they are now, read after which entries are stale: a save in between
    // bumps its entries again, so nothing is marked current with the older scorers.
    let Some(fresh) = experiments::get(&core.db, e.id).await? else {
        return Ok(());
    };
    let (current, _) = current(&fresh);
    let mut took = recompute(core, e.id, &stale, &current, store::Locked::Skip).await?;
    let behind = store::behind(&core.db, e.id, &stale).await?;
    if !behind.is_empty() {
        let again = recompute(core, e.id, &behind, &current, store::Locked::Wait).await?;
        took.0 += again.0;
        took.1 += again.1;
        took.2 += again.2;
    }
    tracing::debug!(
        stale = stale.len(),
        behind = behind.len(),
        stale_us = looked.as_micros() as u64,
        read_us = took.0.as_micros() as u64,
        compute_us = took.1.as_micros() as u64,
        write_us = took.2.as_micros() as u64,
        total_us = t.elapsed().as_micros() as u64,
        "refreshed leaderboard entries"
    );
    Ok(())
}

/// Recomputes and writes the given entries (key, version); returns the time spent reading,
/// computing and writing.
async fn recompute(
    core: &Core,
    experiment_id: Uuid,
    entries: &[(String, i64)],
    current: &Current,
    locked: store::Locked,
) -> Result<(
    std::time::Duration,
    std::time::Duration,
    std::time::Duration,
)> {
    let mut read = std::time::Duration::ZERO;
    let mut computed = std::time::Duration::ZERO;
    let mut written = std::time::Duration::ZERO;
    for chunk in entries.chunks(REFRESH_CHUNK) {
        let keys: Vec<String> = chunk.iter().map(|(k, _)| k.clone()).collect();
        let r = std::time::Instant::now();
        let runs = store::runs(&core.db, experiment_id, &keys).await?;
        let scores = store::scores(&core.db, experiment_id, &keys).await?;
        read += r.elapsed();
        let c = std::time::Instant::now();
        let mut by_key: HashMap<&str, Vec<&RunFact>> = HashMap::new();
        for r in &runs {
            by_key.entry(r.config_key.as_str()).or_default().push(r);
        }
        let mut by_run: HashMap<Uuid, Vec<&ScoreFact>> = HashMap::new();
        for s in &scores {
            by_run.entry(s.run_id).or_default().push(s);
        }
        let summaries: Vec<Summary> = chunk
            .iter()
            .map(|(key, version)| {
                let runs = by_key
                    .get(key.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                summarise(key, *version, runs, &by_run, current)
            })
            .collect();
        computed += c.elapsed();
        let w = std::time::Instant::now();
        store::write(&core.db, experiment_id, &summaries, locked).await?;
        written += w.elapsed();
    }
    Ok((read, computed, written))
}

/// [`refresh`] by experiment id.
pub async fn refresh_experiment(core: &Core, experiment_id: Uuid) -> Result<()> {
    match experiments::get(&core.db, experiment_id).await? {
        Some(e) => refresh(core, &e).await,
        None => Ok(()),
    }
}

/// How the leaderboard is ordered.
#[derive(Clone, Debug, PartialEq)]
enum Sort {
    Score,
    Scorer(String),
    Cost,
    Latency,
    Runs,
}

impl Sort {
    fn parse(text: Option<&str>, scorers: &[ScorerInfo]) -> Result<Sort> {
        Ok(match text.map(str::trim).unwrap_or("score") {
            "" | "score" => Sort::Score,
            "cost" => Sort::Cost,
            "latency" => Sort::Latency,
            "runs" => Sort::Runs,
            other => match other.strip_prefix("scorer:") {
                Some(name) if scorers.iter().any(|s| s.name == name) => {
                    Sort::Scorer(name.to_owned())
                }
                Some(name) => {
                    return Err(Error::invalid(
                        "sort",
                        format!(
                            "no scorer named {name:?} (the experiment has: {})",
                            scorers
                                .iter()
                                .map(|s| s.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                None => {
                    return Err(Error::invalid(
                        "sort",
                        "must be score, scorer:<name>, cost, latency or runs",
                    ));
                }
            },
        })
    }

    fn name(&self) -> String {
        match self {
            Sort::Score => "score".into(),
            Sort::Scorer(n) => format!("scorer:{n}"),
            Sort::Cost => "cost".into(),
            Sort::Latency => "latency".into(),
            Sort::Runs => "runs".into(),
        }
    }
}

/// Descending with `None` last.
fn desc(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

fn asc(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        _ => desc(a, b),
    }
}

/// The ranked keys (with their metric value), best first.
async fn ranking(
    core: &Core,
    e: &Experiment,
    sort: &Sort,
) -> Result<(Vec<(String, Option<f64>)>, HashMap<String, Option<String>>)> {
    let (mut rows, scorers) = store::light(&core.db, e.id, matches!(sort, Sort::Scorer(_))).await?;
    let metric = |l: &store::Light| match sort {
        Sort::Scorer(name) => scorers
            .get(&l.config_key)
            .and_then(|s| s.get(name))
            .and_then(|s| s.mean),
        Sort::Cost => l.cost,
        Sort::Latency => l.latency_ms,
        Sort::Runs => Some(l.runs as f64),
        Sort::Score => l.score,
    };
    rows.sort_by(|a, b| {
        let primary = match sort {
            Sort::Cost | Sort::Latency => asc(metric(a), metric(b)),
            _ => desc(metric(a), metric(b)),
        };
        primary
            .then_with(|| desc(a.score, b.score))
            .then_with(|| b.samples.cmp(&a.samples))
            .then_with(|| a.config_key.cmp(&b.config_key))
    });
    let marks = rows
        .iter()
        .map(|l| (l.config_key.clone(), l.mark.clone()))
        .collect();
    Ok((
        rows.iter()
            .map(|l| (l.config_key.clone(), metric(l)))
            .collect(),
        marks,
    ))
}

/// A short description of a configuration: per stage, variant, model and parameters.
pub fn label(config: &RunConfig, e: &Experiment) -> String {
    let multi = config.stages.len() > 1;
    config
        .stages
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let mut parts = Vec::new();
            if let Some(v) = &s.variant {
                parts.push(v.clone());
            }
            parts.push(s.model.clone());
            let p = serde_json::to_value(&s.params).unwrap_or_default();
            if let Some(map) = p.as_object() {
                for (name, value) in map {
                    if name == "extra" {
                        if let Some(extra) = value.as_object() {
                            parts.extend(extra.iter().map(|(n, v)| format!("{n}={v}")));
                        }
                    } else {
                        parts.push(format!("{name}={value}"));
                    }
                }
            }
            let text = parts.join(" · ");
            if multi {
                let name = e.pipeline_stages.get(k).map_or("?", |s| s.name.as_str());
                format!("{name}: {text}")
            } else {
                text
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

pub struct Query<'a> {
    pub sort: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
}

/// `GET /api/v1/experiments/{id}/leaderboard`.
pub async fn get_leaderboard(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    q: Query<'_>,
) -> Result<Leaderboard> {
    validate::page(q.limit, q.offset, PAGE_MAX)?;
    let e = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    let (_, scorers) = current(&e);
    let sort = Sort::parse(q.sort, &scorers)?;
    let t = std::time::Instant::now();
    refresh(core, &e).await?;
    let refreshed = t.elapsed();
    let (ranked, marks) = ranking(core, &e, &sort).await?;
    let ranked_at = t.elapsed();
    let page: Vec<String> = ranked
        .iter()
        .skip(q.offset as usize)
        .take(q.limit as usize)
        .map(|(k, _)| k.clone())
        .collect();
    let mut full: HashMap<String, store::Full> = store::full(&core.db, e.id, &page)
        .await?
        .into_iter()
        .map(|f| (f.config_key.clone(), f))
        .collect();
    let entries = page
        .iter()
        .enumerate()
        .filter_map(|(i, key)| {
            let f = full.remove(key)?;
            Some(entry(
                q.offset + i as i64 + 1,
                f,
                marks.get(key).cloned().flatten(),
                &e,
            ))
        })
        .collect();
    let paged = t.elapsed();
    let comparison = match &sort {
        Sort::Score | Sort::Scorer(_) => compare(core, &e, &sort, &ranked).await?,
        _ => None,
    };
    tracing::debug!(
        refresh_us = refreshed.as_micros() as u64,
        rank_us = (ranked_at - refreshed).as_micros() as u64,
        page_us = (paged - ranked_at).as_micros() as u64,
        compare_us = (t.elapsed() - paged).as_micros() as u64,
        "leaderboard"
    );
    Ok(Leaderboard {
        experiment_id,
        scorers,
        sort: sort.name(),
        entries,
        total: ranked.len() as i64,
        comparison,
        scoring_job: super::scoring::jobs::running(core, experiment_id).await?,
    })
}

/// A stored entry as the leaderboard shows it.
pub fn entry(rank: i64, f: store::Full, mark: Option<String>, e: &Experiment) -> LeaderboardEntry {
    LeaderboardEntry {
        rank,
        label: label(&f.config.0, e),
        config_key: f.config_key,
        config: Some(f.config.0),
        score: f.score,
        std: f.std,
        ci_low: f.ci_low,
        ci_high: f.ci_high,
        scorers: f.scorers.0,
        items: f.items,
        samples: f.samples,
        runs: f.runs,
        failed: f.failed,
        tokens_in: f.tokens_in,
        tokens_out: f.tokens_out,
        cost: f.cost,
        latency_ms: f.latency_ms,
        best_run_id: f.best_run_id,
        mark,
    }
}

/// The best configuration by weighted score (rejected ones excluded), fresh.
pub async fn top(core: &Core, e: &Experiment) -> Result<Option<LeaderboardEntry>> {
    refresh(core, e).await?;
    let (ranked, marks) = ranking(core, e, &Sort::Score).await?;
    let Some((key, Some(_))) = ranked.first() else {
        return Ok(None);
    };
    Ok(store::full(&core.db, e.id, std::slice::from_ref(key))
        .await?
        .pop()
        .map(|f| entry(1, f, marks.get(key).cloned().flatten(), e)))
}

/// The paired test of #1 against #2 on the items both have scores for.
async fn compare(
    core: &Core,
    e: &Experiment,
    sort: &Sort,
    ranked: &[(String, Option<f64>)],
) -> Result<Option<PairedComparison>> {
    let [(first, Some(_)), (second, Some(_)), ..] = ranked else {
        return Ok(None);
    };
    let keys = [first.clone(), second.clone()];
    let items = store::item_scores(&core.db, e.id, &keys).await?;
    let pick = |s: &ItemScores| match sort {
        Sort::Scorer(name) => s.s.get(name).cloned().unwrap_or_default(),
        _ => s.w.clone(),
    };
    let (a, b) = match (items.get(first), items.get(second)) {
        (Some(a), Some(b)) => (pick(a), pick(b)),
        _ => return Ok(None),
    };
    let d: Vec<f64> = a
        .iter()
        .filter_map(|(i, x)| b.get(i).map(|y| x - y))
        .collect();
    let metric = match sort {
        Sort::Scorer(n) => n.clone(),
        _ => "score".to_owned(),
    };
    Ok(Some(paired_comparison(first, second, &metric, &d)))
}

/// Numbers and a verdict in words for differences `d` (first − second per shared item).
pub fn paired_comparison(first: &str, second: &str, metric: &str, d: &[f64]) -> PairedComparison {
    paired_comparison_named(first, second, metric, d, ("#1", "#2"))
}

/// [`paired_comparison`] with the verdict naming the two as `names` (e.g. "A" and "B").
pub fn paired_comparison_named(
    first: &str,
    second: &str,
    metric: &str,
    d: &[f64],
    names: (&str, &str),
) -> PairedComparison {
    let (one, two) = names;
    let p = stats::paired(d, &mut Rng::seeded(&format!("{first}{second}")));
    let significant = d.len() >= 2
        && p.p_value.is_some_and(|p| p < 0.05)
        && p.ci.is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0);
    let ci =
        p.ci.map(|(lo, hi)| format!("95% CI {lo:+.3} to {hi:+.3}, "))
            .unwrap_or_default();
    let pv = p.p_value.map(|v| format!("p = {v:.3}")).unwrap_or_default();
    let verdict = if d.len() < 2 {
        format!(
            "Too few shared items to compare {one} and {two} ({} item{}); score more items.",
            d.len(),
            if d.len() == 1 { "" } else { "s" }
        )
    } else if significant {
        let (better, worse) = if p.mean >= 0.0 {
            (one, two)
        } else {
            (two, one)
        };
        format!(
            "{better} is really better than {worse}: {:+.3} on average ({one} − {two}) over {} shared items ({ci}{pv}; {one} won {}, tied {}, lost {}).",
            p.mean, p.n, p.wins, p.ties, p.losses
        )
    } else {
        format!(
            "{one} and {two} cannot be told apart on these {} items: {:+.3} on average ({ci}{pv}); more items or repeats would tell.",
            p.n, p.mean
        )
    };
    PairedComparison {
        first: first.to_owned(),
        second: second.to_owned(),
        metric: metric.to_owned(),
        items: p.n as i64,
        mean_difference: p.mean,
        ci_low: p.ci.map(|c| c.0),
        ci_high: p.ci.map(|c| c.1),
        p_value: p.p_value,
        wins: p.wins as i64,
        ties: p.ties as i64,
        losses: p.losses as i64,
        significant,
        verdict,
    }
}

/// A change of leader to look into, from a writer (recorder, rating, re-scoring, mark).
#[derive(Clone, Debug)]
pub struct Notice {
    pub experiment_id: Uuid,
    pub sweep_id: Option<Uuid>,
    pub cause: &'static str,
}

/// Collects notices; the watcher task (see `jobs`) turns real changes of leader into
/// `new_best_found` events. Cheap and never blocking: when nobody watches, notices drop.
#[derive(Debug)]
pub struct LeaderWatch {
    tx: tokio::sync::mpsc::Sender<Notice>,
    rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Notice>>>,
}

impl Default for LeaderWatch {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        LeaderWatch {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
        }
    }
}

/// Checks at most this often (each check recomputes what changed since the last one: during
/// a fast sweep that is most configurations, so not too often).
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl LeaderWatch {
    pub fn notice(&self, experiment_id: Uuid, sweep_id: Option<Uuid>, cause: &'static str) {
        let _ = self.tx.try_send(Notice {
            experiment_id,
            sweep_id,
            cause,
        });
    }

    /// Runs the watcher until `stopped` (once per process).
    pub async fn run(core: Core, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let Some(mut rx) = core
            .leader_watch
            .rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let mut notices = Vec::new();
        loop {
            tokio::select! {
                n = rx.recv_many(&mut notices, 1024) => if n == 0 { return },
                _ = stopped.wait_for(|s| *s) => return,
            }
            let mut seen = HashSet::new();
            let mut batch: Vec<Notice> = Vec::new();
            for n in notices.drain(..).rev() {
                if seen.insert(n.experiment_id) {
                    batch.push(n);
                }
            }
            for n in batch {
                if let Err(e) = check_leader(&core, &n).await {
                    tracing::warn!(experiment = %n.experiment_id, error = %e, "could not check the leader");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(WATCH_EVERY) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Emits `new_best_found` when the experiment's leader is not the one recorded.
pub async fn check_leader(core: &Core, n: &Notice) -> Result<()> {
    let Some(e) = experiments::get(&core.db, n.experiment_id).await? else {
        return Ok(());
    };
    // Without scorers nothing leads (and nothing is worth recomputing now).
    let leader = if parse_lenient(&e.scoring_config).0.is_empty() {
        None
    } else {
        top(core, &e).await?
    };
    let (changed, previous) = store::set_leader(
        &core.db,
        e.id,
        leader.as_ref().map(|l| l.config_key.as_str()),
    )
    .await?;
    let Some(leader) = leader.filter(|_| changed) else {
        return Ok(());
    };
    let scores: BTreeMap<&String, Option<f64>> =
        leader.scorers.iter().map(|(k, v)| (k, v.mean)).collect();
    super::events::emit_logged(
        core,
        vec![super::store::events::NewEvent {
            event_type: "new_best_found",
            experiment_id: Some(e.id),
            sweep_id: n.sweep_id,
            run_id: leader.best_run_id,
            payload: json!({
                "config_key": leader.config_key,
                "label": leader.label,
                "score": leader.score,
                "ci_low": leader.ci_low,
                "ci_high": leader.ci_high,
                "scores": scores,
                "samples": leader.samples,
                "config": leader.config,
                "previous": previous,
                "cause": n.cause,
            }),
        }],
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u128, key: &str, hash: &str, item: i32, status: &str) -> RunFact {
        RunFact {
            id: Uuid::from_u128(id),
            config_key: key.into(),
            config_hash: hash.into(),
            item_id: format!("item-{item}"),
            item_index: item,
            status: status.into(),
            tokens_in: 10,
            tokens_out: 5,
            cost_estimate: Some(0.001),
            latency_ms: Some(100),
        }
    }

    fn score(id: u128, name: &str, value: Option<f64>) -> ScoreFact {
        ScoreFact {
            run_id: Uuid::from_u128(id),
            scorer_name: name.into(),
            fingerprint: "fp".into(),
            value,
        }
    }

    #[test]
    fn summaries_weight_scorers_count_samples_once_and_skip_missing_values() {
        let current: Current = [
            ("a".to_owned(), ("fp".to_owned(), 3.0)),
            ("b".to_owned(), ("fp".to_owned(), 1.0)),
        ]
        .into();
        let runs = [
            run(1, "k", "h1", 0, "completed"),
            // The same sample re-served from the cache: counts once.
            run(2, "k", "h1", 0, "cached"),
            run(3, "k", "h2", 1, "completed"),
            run(4, "k", "h3", 2, "failed"),
        ];
        let scores = [
            score(1, "a", Some(1.0)),
            score(1, "b", Some(0.0)),
            score(2, "a", Some(1.0)),
            score(2, "b", Some(0.0)),
            // b could not score run 3: a alone decides it.
            score(3, "a", Some(0.5)),
            score(3, "b", None),
            ScoreFact {
                fingerprint: "old".into(),
                ..score(3, "a", Some(0.0))
            },
        ];
        let mut by_run: HashMap<Uuid, Vec<&ScoreFact>> = HashMap::new();
        for s in &scores[..6] {
            by_run.entry(s.run_id).or_default().push(s);
        }
        let refs: Vec<&RunFact> = runs.iter().collect();
        let s = summarise("k", 7, &refs, &by_run, &current);
        assert_eq!((s.runs, s.failed, s.samples, s.items), (4, 1, 2, 2));
        // Item 0: (3·1 + 1·0) / 4 = 0.75; item 1: 0.5 (b missing).
        assert_eq!(
            s.item_scores.w,
            [
                (store::item_key("item-0"), 0.75),
                (store::item_key("item-1"), 0.5)
            ]
            .into()
        );
        assert!((s.score.unwrap() - 0.625).abs() < 1e-12);
        assert_eq!(s.scorers["a"].mean, Some(0.75));
        assert_eq!((s.scorers["b"].n, s.scorers["b"].errors), (1, 1));
        assert_eq!(s.best_run_id, Some(Uuid::from_u128(1)));
        assert_eq!(s.tokens_in, 40);
        assert!(s.ci_low.unwrap() <= 0.625 && s.ci_high.unwrap() >= 0.625);
        assert_eq!(s.version, 7);
    }

    #[test]
    fn a_verdict_in_words() {
        let clear: Vec<f64> = (0..20).map(|i| 0.1 + (i % 4) as f64 * 0.01).collect();
        let c = paired_comparison("a", "b", "score", &clear);
        assert!(
            c.significant && c.verdict.starts_with("#1 is really better"),
            "{c:?}"
        );
        let c = paired_comparison("a", "b", "score", &[0.1, -0.1, 0.05, -0.05]);
        assert!(
            !c.significant && c.verdict.contains("cannot be told apart"),
            "{c:?}"
        );
        let c = paired_comparison("a", "b", "score", &[0.3]);
        assert!(!c.significant && c.verdict.starts_with("Too few"), "{c:?}");
    }
}
