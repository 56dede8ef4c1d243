//! Run listings: filters, sorts and pages, with each run's current scores.

use uuid::Uuid;

use super::super::auth::Actor;
use super::super::core::Core;
use super::super::error::{Error, Result};
use super::super::scoring;
use super::super::store::run_list::{self, Listing, RunSort, ScoreExpr};
use super::super::store::runs as store;
use super::super::store::{experiments, scores as score_store};
use super::PAGE_MAX;
use crate::types::{Run, RunSummary, RunSummaryPage, ScoredRun};
use crate::validate;

/// The experiment's scorers now: name → (fingerprint, weight).
pub(crate) async fn current_scorers(
    core: &Core,
    experiment_id: Uuid,
) -> Result<std::collections::HashMap<String, (String, f64)>> {
    let Some(e) = experiments::get(&core.db, experiment_id).await? else {
        return Ok(Default::default());
    };
    let (configs, _) = scoring::parse_lenient(&e.scoring_config);
    Ok(configs
        .into_iter()
        .map(|c| (c.name, (scoring::fingerprint(&c.spec), c.weight)))
        .collect())
}

/// Runs with their current scores (one query for all of them).
pub async fn with_scores(
    core: &Core,
    experiment_id: Uuid,
    runs: Vec<Run>,
) -> Result<Vec<ScoredRun>> {
    let current = current_scorers(core, experiment_id).await?;
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let mut briefs = score_store::brief_for_runs(&core.db, &ids).await?;
    Ok(runs
        .into_iter()
        .map(|run| {
            let scores: std::collections::BTreeMap<String, f64> = briefs
                .remove(&run.id)
                .unwrap_or_default()
                .into_iter()
                .filter(|(n, fp, _, _)| current.get(n).is_some_and(|(f, _)| f == fp))
                .filter_map(|(n, _, v, _)| v.map(|v| (n, v)))
                .collect();
            let weighted_score = scoring::weighted(
                scores
                    .iter()
                    .map(|(n, v)| (current.get(n).map_or(0.0, |(_, w)| *w), *v)),
            );
            ScoredRun {
                run,
                scores,
                weighted_score,
            }
        })
        .collect())
}

/// Which of an experiment's runs a listing shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunFilter<'a> {
    /// pending, running, completed, failed or cached.
    pub status: Option<&'a str>,
    /// One configuration's runs.
    pub config_key: Option<&'a str>,
    /// One item's runs (every configuration's).
    pub item_id: Option<&'a str>,
    /// Runs whose score is at least / at most this (unscored runs are left out).
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// The score the range and the `score` sorts use: a scorer's name, or `None` for the
    /// weighted score.
    pub score_by: Option<&'a str>,
}

/// The sorts a listing accepts, as named in errors.
const SORTS: &str = "created_at, -created_at, duration_ms, -duration_ms, -tokens, -cost, item, score, -score, score:<scorer>, -score:<scorer>";

/// A page of an experiment's runs, and the total matching. `sort` is one of [`SORTS`]:
/// `-score` ranks by the weighted score, `-score:<name>` by one scorer (unscored runs last).
pub async fn list_runs(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    filter: RunFilter<'_>,
    sort: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Run>, i64)> {
    if experiments::get(&core.db, experiment_id).await?.is_none() {
        return Err(Error::NotFound("experiment"));
    }
    if let Some(s) = filter.status
        && !["pending", "running", "completed", "failed", "cached"].contains(&s)
    {
        return Err(Error::invalid(
            "status",
            "must be pending, running, completed, failed or cached",
        ));
    }
    if let Some(k) = filter.config_key
        && (k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Error::invalid(
            "config_key",
            "must be a configuration's key (64 hex digits)",
        ));
    }
    if filter
        .item_id
        .is_some_and(|i| i.is_empty() || i.len() > 200)
    {
        return Err(Error::invalid(
            "item_id",
            "must be an item's id (1–200 characters)",
        ));
    }
    for (field, bound) in [
        ("min_score", filter.min_score),
        ("max_score", filter.max_score),
    ] {
        if bound.is_some_and(|b| !(0.0..=1.0).contains(&b)) {
            return Err(Error::invalid(field, "must be a number from 0 to 1"));
        }
    }
    if let (Some(lo), Some(hi)) = (filter.min_score, filter.max_score)
        && lo > hi
    {
        return Err(Error::invalid("max_score", "must not be below min_score"));
    }
    let (sort, sort_scorer) = match sort {
        "-created_at" | "" => (RunSort::CreatedDesc, None),
        "created_at" => (RunSort::CreatedAsc, None),
        "-duration_ms" => (RunSort::DurationDesc, None),
        "duration_ms" => (RunSort::DurationAsc, None),
        "-tokens" => (RunSort::TokensDesc, None),
        "-cost" => (RunSort::CostDesc, None),
        "item" => (RunSort::Item, None),
        "-score" => (RunSort::ScoreDesc, None),
        "score" => (RunSort::ScoreAsc, None),
        other => match (other.strip_prefix("-score:"), other.strip_prefix("score:")) {
            (Some(name), _) => (RunSort::ScoreDesc, Some(name)),
            (_, Some(name)) => (RunSort::ScoreAsc, Some(name)),
            _ => return Err(Error::invalid("sort", format!("must be one of {SORTS}"))),
        },
    };
    if sort_scorer.is_some() && filter.score_by.is_some() && sort_scorer != filter.score_by {
        return Err(Error::invalid(
            "score_by",
            "must name the scorer the sort uses (or be left out)",
        ));
    }
    validate::page(limit, offset, PAGE_MAX)?;
    let current = current_scorers(core, experiment_id).await?;
    let score = match sort_scorer.or(filter.score_by) {
        Some(name) => {
            let field = if sort_scorer.is_some() {
                "sort"
            } else {
                "score_by"
            };
            let (fp, _) = current.get(name).ok_or_else(|| {
                Error::invalid(
                    field,
                    format!("the experiment has no scorer named “{name}”"),
                )
            })?;
            ScoreExpr::Scorer(name.to_owned(), fp.clone())
        }
        None => {
            let mut all: Vec<(String, String, f64)> = current
                .into_iter()
                .map(|(name, (fp, w))| (name, fp, w))
                .collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            ScoreExpr::Weighted(all)
        }
    };
    let listing = Listing {
        status: filter.status,
        config_key: filter.config_key,
        item_id: filter.item_id,
        score: Some(score),
        min_score: filter.min_score,
        max_score: filter.max_score,
        sort,
    };
    run_list::list(&core.db, experiment_id, &listing, limit, offset).await
}

/// A page of runs as the dashboard lists them: each with its configuration's label, current
/// scores and final output.
pub async fn list_run_summaries(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    filter: RunFilter<'_>,
    sort: &str,
    limit: i64,
    offset: i64,
) -> Result<RunSummaryPage> {
    let (runs, total) = list_runs(core, actor, experiment_id, filter, sort, limit, offset).await?;
    let Some(e) = experiments::get(&core.db, experiment_id).await? else {
        return Err(Error::NotFound("experiment"));
    };
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let mut outputs = store::outputs_of(&core.db, &ids).await?;
    let runs = with_scores(core, experiment_id, runs)
        .await?
        .into_iter()
        .map(|s| RunSummary {
            label: super::super::leaderboard::label(&s.run.config, &e),
            output: outputs.remove(&s.run.id),
            scores: s.scores,
            weighted_score: s.weighted_score,
            run: s.run,
        })
        .collect();
    Ok(RunSummaryPage { runs, total })
}
