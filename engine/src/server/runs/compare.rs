//! Two runs, or two configurations item by item, side by side.

use serde_json::{Value, json};
use uuid::Uuid;

use super::super::auth::Actor;
use super::super::core::Core;
use super::super::error::{Error, Result};
use super::super::leaderboard;
use super::super::store::experiments;
use super::super::store::leaderboard as board_store;
use super::super::store::runs as store;
use super::{RunFilter, get_run, list_runs, with_scores};
use crate::types::{
    ConfigComparison, ConfigDelta, ItemPair, PairedRun, RunComparison, RunConfig, RunDetail,
    ScoreDelta,
};
use crate::validate;

/// The settings two configurations differ in, stage by stage: model, endpoint, prompt variant
/// and each parameter.
pub fn config_deltas(a: &RunConfig, b: &RunConfig) -> Vec<ConfigDelta> {
    let mut differences = Vec::new();
    let stages = a.stages.len().max(b.stages.len());
    for k in 0..stages {
        let as_map = |c: &RunConfig| -> std::collections::BTreeMap<String, Value> {
            let Some(s) = c.stages.get(k) else {
                return Default::default();
            };
            let mut m = match serde_json::to_value(&s.params) {
                Ok(Value::Object(o)) => o.into_iter().collect(),
                _ => std::collections::BTreeMap::new(),
            };
            m.insert("model".into(), json!(s.model));
            m.insert("endpoint_id".into(), json!(s.endpoint_id));
            if let Some(v) = &s.variant {
                m.insert("variant".into(), json!(v));
            }
            m
        };
        let (x, y) = (as_map(a), as_map(b));
        let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            if x.get(key) != y.get(key) {
                differences.push(ConfigDelta {
                    stage: k,
                    name: key.clone(),
                    a: x.get(key).cloned(),
                    b: y.get(key).cloned(),
                });
            }
        }
    }
    differences
}

fn rounded(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// The most item pairs one page of a configuration comparison shows.
pub const PAIRS_MAX: i64 = 100;

/// `GET /api/v1/experiments/{id}/configs/compare?a=…&b=…`: two configurations of one
/// experiment (their `config_key`s) side by side: their summaries, the settings that differ,
/// each scorer's mean with the difference, the paired test over the items both scored (a − b),
/// and a page of items in order with both runs' outputs diffed word by word.
pub async fn compare_configs(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    a: &str,
    b: &str,
    limit: i64,
    offset: i64,
) -> Result<ConfigComparison> {
    validate::page(limit, offset, PAIRS_MAX)?;
    let e = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    for (field, key) in [("a", a), ("b", b)] {
        if key.len() != 64 || !key.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                field,
                "must be a configuration's key (64 hex digits)",
            ));
        }
    }
    if a == b {
        return Err(Error::invalid("b", "must be another configuration than a"));
    }
    leaderboard::refresh(core, &e).await?;
    let keys = [a.to_owned(), b.to_owned()];
    let mut full = board_store::full(&core.db, e.id, &keys).await?;
    let mut take = |field: &'static str, key: &str| {
        let at = full
            .iter()
            .position(|f| f.config_key == key)
            .ok_or_else(|| {
                Error::invalid(field, "the experiment has no runs of this configuration")
            })?;
        Ok::<_, Error>(leaderboard::entry(0, full.swap_remove(at), None, &e))
    };
    let (first, second) = (take("a", a)?, take("b", b)?);
    let differences = match (&first.config, &second.config) {
        (Some(x), Some(y)) => config_deltas(x, y),
        _ => Vec::new(),
    };
    let mut names: Vec<&String> = first.scorers.keys().chain(second.scorers.keys()).collect();
    names.sort_unstable();
    names.dedup();
    let mut scores: Vec<ScoreDelta> = vec![ScoreDelta {
        scorer: "weighted score".into(),
        a: first.score,
        b: second.score,
        difference: first.score.zip(second.score).map(|(x, y)| rounded(y - x)),
    }];
    scores.extend(names.into_iter().map(|n| {
        let x = first.scorers.get(n).and_then(|s| s.mean);
        let y = second.scorers.get(n).and_then(|s| s.mean);
        ScoreDelta {
            scorer: n.clone(),
            a: x,
            b: y,
            difference: x.zip(y).map(|(x, y)| rounded(y - x)),
        }
    }));
    let items = board_store::item_scores(&core.db, e.id, &keys).await?;
    let paired = match (items.get(a), items.get(b)) {
        (Some(x), Some(y)) => {
            let d: Vec<f64> =
                x.w.iter()
                    .filter_map(|(i, v)| y.w.get(i).map(|w| v - w))
                    .collect();
            Some(leaderboard::paired_comparison_named(
                a,
                b,
                "score",
                &d,
                ("A", "B"),
            ))
        }
        _ => None,
    };
    // A page of A's runs in item order, each paired with B's run of the same item and repeat.
    let by_a = RunFilter {
        config_key: Some(a),
        ..Default::default()
    };
    let (runs_a, total) = list_runs(core, actor, e.id, by_a, "item", limit, offset).await?;
    let mut runs_b = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &runs_a {
        if seen.insert(r.item_id.clone()) {
            runs_b.extend(store::of_item(&core.db, e.id, b, &r.item_id).await?);
        }
    }
    let ids: Vec<Uuid> = runs_a.iter().chain(&runs_b).map(|r| r.id).collect();
    let mut outputs = store::outputs_of(&core.db, &ids).await?;
    let scored_a = with_scores(core, e.id, runs_a).await?;
    let mut scored_b = with_scores(core, e.id, runs_b).await?;
    let mut brief = |s: crate::types::ScoredRun| PairedRun {
        output: s.run.error.clone().or_else(|| outputs.remove(&s.run.id)),
        run_id: s.run.id,
        status: s.run.status,
        weighted_score: s.weighted_score,
        scores: s.scores,
    };
    let pairs = scored_a
        .into_iter()
        .map(|x| {
            let partner = scored_b
                .iter()
                .position(|y| {
                    y.run.item_id == x.run.item_id && y.run.repeat_index == x.run.repeat_index
                })
                .map(|at| scored_b.swap_remove(at));
            let (item_id, item_index, repeat_index) =
                (x.run.item_id.clone(), x.run.item_index, x.run.repeat_index);
            let first = brief(x);
            let second = partner.map(&mut brief);
            ItemPair {
                item_id,
                item_index,
                repeat_index,
                a: first,
                b: second,
                output: None,
            }
        })
        .collect::<Vec<_>>();
    // The word diffs run on a blocking thread, within a time budget for the whole page.
    let texts: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|p| {
            p.b.as_ref().map(|y| {
                (
                    p.a.output.clone().unwrap_or_default(),
                    y.output.clone().unwrap_or_default(),
                )
            })
        })
        .collect();
    let mut diffs = crate::server::diff::words_all(texts, DIFF_BUDGET)
        .await
        .into_iter();
    let mut pairs = pairs;
    for p in pairs.iter_mut().filter(|p| p.b.is_some()) {
        p.output = diffs.next();
    }
    Ok(ConfigComparison {
        experiment_id: e.id,
        a: first,
        b: second,
        differences,
        scores,
        paired,
        items: pairs,
        total,
        limit,
        offset,
    })
}

/// Time for a comparison's word diffs in all (the rest are diffed line by line).
const DIFF_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /api/v1/runs/compare?a=…&b=…`: two runs of one experiment side by side.
pub async fn compare_runs(
    core: &Core,
    actor: &Actor,
    a: Uuid,
    b: Uuid,
) -> Result<crate::types::RunComparison> {
    let first = get_run(core, actor, a).await.map_err(|e| match e {
        Error::NotFound(_) => Error::invalid("a", "no such run"),
        other => other,
    })?;
    let second = get_run(core, actor, b).await.map_err(|e| match e {
        Error::NotFound(_) => Error::invalid("b", "no such run"),
        other => other,
    })?;
    if first.run.experiment_id != second.run.experiment_id {
        return Err(Error::invalid(
            "b",
            "the two runs belong to different experiments",
        ));
    }
    let last = |d: &RunDetail| {
        d.stages
            .iter()
            .max_by_key(|s| s.stage_index)
            .map(|s| s.response_raw.clone())
            .unwrap_or_default()
    };
    let mut texts = vec![(last(&first), last(&second))];
    texts.extend(first.stages.iter().filter_map(|s| {
        second
            .stages
            .iter()
            .find(|t| t.stage_index == s.stage_index)
            .map(|t| (s.prompt_sent.clone(), t.prompt_sent.clone()))
    }));
    let mut diffs = crate::server::diff::words_all(texts, DIFF_BUDGET).await;
    let output = diffs.remove(0);
    let prompts = diffs;
    let mut names: Vec<&str> = first
        .scores
        .iter()
        .chain(&second.scores)
        .map(|s| s.scorer.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let value = |d: &RunDetail, name: &str| {
        d.scores
            .iter()
            .find(|s| s.scorer == name)
            .and_then(|s| s.value)
    };
    let scores = names
        .into_iter()
        .map(|name| {
            let (x, y) = (value(&first, name), value(&second, name));
            ScoreDelta {
                scorer: name.to_owned(),
                a: x,
                b: y,
                difference: x.zip(y).map(|(x, y)| ((y - x) * 1e9).round() / 1e9),
            }
        })
        .collect();
    let differences = config_deltas(&first.run.config, &second.run.config);
    Ok(RunComparison {
        a: first,
        b: second,
        output,
        prompts,
        scores,
        differences,
    })
}
