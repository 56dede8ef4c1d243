//! Trying a scorer before saving it: `POST /api/v1/experiments/{id}/scorers/test` checks a
//! scorer config as a save would, scores one run with it and returns the verdict — nothing is
//! stored but the cache entries of the calls it made (those were paid for).

use std::collections::HashMap;

use uuid::Uuid;

use super::{Subject, build_one, check_scoring};
use crate::server::auth::Actor;
use crate::server::core::Core;
use crate::server::error::{Error, Result};
use crate::server::pricing::PriceBook;
use crate::server::store::{experiments, runs, scores, scoring_jobs};
use crate::types::{Score, ScorerTest};

pub async fn try_scorer(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    test: ScorerTest,
) -> Result<Score> {
    actor.require_write()?;
    let e = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    let run = runs::get(&core.db, test.run_id)
        .await?
        .filter(|r| r.experiment_id == experiment_id)
        .ok_or_else(|| Error::invalid("run_id", "no such run in this experiment"))?;
    if !matches!(run.status.as_str(), "completed" | "cached") {
        return Err(Error::invalid(
            "run_id",
            format!("the run is {}: it has no output to score", run.status),
        ));
    }
    let inputs = crate::server::experiments::inputs_of(&e);
    let checked = check_scoring(
        core,
        &serde_json::Value::Array(vec![test.scorer]),
        inputs.as_ref(),
        Some(experiment_id),
    )
    .await
    .map_err(|err| match err {
        Error::Invalid(f) => Error::invalid(
            f.field.replacen("scoring_config[0]", "scorer", 1),
            f.message,
        ),
        other => other,
    })?;
    let config = checked
        .scorers
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("scorer", "give one scorer"))?;
    let sealed: Vec<(String, String)> = checked
        .secrets
        .into_iter()
        .map(|(_, header, sealed)| (header, sealed))
        .collect();
    let scorer = build_one(core, experiment_id, &config, Some(sealed))
        .await
        .map_err(|why| Error::invalid("scorer", why))?;
    let stages = scoring_jobs::stage_outputs(&core.db, &[run.id])
        .await?
        .remove(&run.id)
        .unwrap_or_default();
    let Some((_, output, tokens, estimated)) = stages.last().cloned() else {
        return Err(Error::invalid("run_id", "the run has no stage output"));
    };
    let named = super::jobs::named_stages(&e, &stages);
    let ratings: HashMap<String, Vec<f64>> = scores::ratings_for_runs(&core.db, &[run.id])
        .await?
        .remove(&run.id)
        .unwrap_or_default();
    let item = crate::server::store::datasets::by_ids(
        &core.db,
        e.items.dataset_id,
        e.items.version,
        std::slice::from_ref(&run.item_id),
    )
    .await?
    .pop()
    .ok_or_else(|| Error::invalid("run_id", "the run's sample item no longer exists"))?;
    let subject = Subject {
        run: (&run).into(),
        input: &item.input,
        item_id: Some(item.id.as_str()),
        reference: item.reference.as_deref(),
        output: &output,
        stages: &named,
        output_tokens: tokens,
        output_tokens_estimated: estimated,
        ratings: &ratings,
    };
    let prices = PriceBook::load(core).await?;
    let memo = super::Memo::default();
    let env = super::Env {
        core,
        prices: &prices,
        memo: &memo,
    };
    let Some((verdict, usage)) = scorer.score(&env, &subject).await else {
        return Err(Error::invalid(
            "scorer",
            "the scorer has nothing to say about this run (a human_rating scorer and no ratings yet)",
        ));
    };
    for (key, answer) in &usage.cache_puts {
        crate::server::store::cache::put(&core.db, key, answer).await?;
    }
    Ok(Score {
        scorer: config.name,
        value: verdict.value,
        error: verdict.error,
        metadata: super::cap_metadata(verdict.metadata),
        created_at: chrono::Utc::now(),
    })
}
