//! Human ratings: thumbs or stars through `POST /api/v1/runs/{id}/score`, one per rater and
//! scorer (rating again replaces it), normalised to 0–1 and averaged into the run's score.

use serde_json::json;
use uuid::Uuid;

use super::{Env, ScoreRow, Scorer, Subject, Usage, Verdict, fingerprint, parse_lenient};
use crate::server::auth::{Actor, AuthVia};
use crate::server::core::Core;
use crate::server::error::{Error, Result};
use crate::server::store::scores::{self as store, NewRating};
use crate::server::store::{experiments, runs};
use crate::types::{HumanScore, RatingResult, RatingScale, ScorerSpec, Thumb};
use crate::validate;

/// The scorer name ratings go to when the experiment has no `human_rating` scorer.
pub const DEFAULT_NAME: &str = "human_rating";
/// The fingerprint of ratings kept for a scorer that is not configured.
const UNCONFIGURED: &str = "unconfigured";

/// Scores a run with the mean of its ratings (none yet: nothing to record).
pub(super) struct Human {
    pub name: String,
}

#[async_trait::async_trait]
impl Scorer for Human {
    async fn score(&self, _env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        let values = s.ratings.get(&self.name).filter(|v| !v.is_empty())?;
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        Some((
            Verdict::score(mean, json!({"ratings": values.len()})),
            Usage::default(),
        ))
    }
}

/// The score row for a run from its ratings.
pub(crate) fn score_row(r: &NewRating<'_>, fingerprint: &str, values: &[f64]) -> ScoreRow {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    ScoreRow {
        run_id: r.run_id,
        scorer_name: r.scorer_name.to_owned(),
        experiment_id: r.experiment_id,
        config_key: r.config_key.to_owned(),
        fingerprint: fingerprint.to_owned(),
        value: Some(mean.clamp(0.0, 1.0)),
        error: None,
        metadata: json!({"ratings": values.len()}),
    }
}

/// Who is rating: one rating per rater.
fn rater(actor: &Actor) -> String {
    match (&actor.user, &actor.via) {
        (Some(u), _) => u.id.to_string(),
        (None, AuthVia::ApiKey(id)) => format!("api_key:{id}"),
        (None, AuthVia::StaticApiKey) => "static_api_key".to_owned(),
        (None, via) => via.as_str().to_owned(),
    }
}

/// Resolves which human scorer a rating is for: (name, scale, fingerprint, configured).
async fn target_scorer(
    core: &Core,
    experiment_id: Uuid,
    asked: Option<&str>,
) -> Result<(String, Option<RatingScale>, String, bool)> {
    let e = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    let (configs, _) = parse_lenient(&e.scoring_config);
    let humans: Vec<(String, RatingScale, String)> = configs
        .iter()
        .filter_map(|c| match &c.spec {
            ScorerSpec::HumanRating { scale } => {
                Some((c.name.clone(), *scale, fingerprint(&c.spec)))
            }
            _ => None,
        })
        .collect();
    let names = || {
        humans
            .iter()
            .map(|(n, _, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (asked, humans.as_slice()) {
        (Some(name), _) => match humans.iter().find(|(n, _, _)| n == name) {
            Some((n, scale, fp)) => Ok((n.clone(), Some(*scale), fp.clone(), true)),
            None if humans.is_empty() && name == DEFAULT_NAME => {
                Ok((name.to_owned(), None, UNCONFIGURED.to_owned(), false))
            }
            None => Err(Error::invalid(
                "scorer",
                if humans.is_empty() {
                    format!("the experiment has no human_rating scorer named {name:?}")
                } else {
                    format!(
                        "no human_rating scorer named {name:?} (the experiment has: {})",
                        names()
                    )
                },
            )),
        },
        (None, []) => Ok((
            DEFAULT_NAME.to_owned(),
            None,
            UNCONFIGURED.to_owned(),
            false,
        )),
        (None, [(n, scale, fp)]) => Ok((n.clone(), Some(*scale), fp.clone(), true)),
        (None, _) => Err(Error::invalid(
            "scorer",
            format!(
                "the experiment has several human_rating scorers ({}); name one",
                names()
            ),
        )),
    }
}

/// `POST /api/v1/runs/{id}/score`: rates a run (thumbs or 1–5 stars). Rating it again replaces
/// your rating; the run's score is the mean over raters.
pub async fn rate_run(
    core: &Core,
    actor: &Actor,
    run_id: Uuid,
    rating: HumanScore,
) -> Result<RatingResult> {
    actor.require_write()?;
    let (raw, value) = match (rating.thumbs, rating.stars) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("stars", "give thumbs or stars, not both"));
        }
        (None, None) => {
            return Err(Error::invalid(
                "thumbs",
                "give thumbs (\"up\" or \"down\") or stars (1 to 5)",
            ));
        }
        (Some(Thumb::Up), None) => ("up".to_owned(), 1.0),
        (Some(Thumb::Down), None) => ("down".to_owned(), 0.0),
        (None, Some(s)) if (1..=5).contains(&s) => (s.to_string(), (s - 1) as f64 / 4.0),
        (None, Some(_)) => return Err(Error::invalid("stars", "must be between 1 and 5")),
    };
    let comment = rating.comment.unwrap_or_default();
    validate::text("comment", &comment, 2000)?;
    let run = runs::get(&core.db, run_id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    if !matches!(run.status.as_str(), "completed" | "cached") {
        return Err(Error::conflict(
            "run",
            format!(
                "the run is {}: only runs with an output can be rated",
                run.status
            ),
        ));
    }
    let (name, scale, fp, ranked) =
        target_scorer(core, run.experiment_id, rating.scorer.as_deref()).await?;
    match (scale, rating.stars.is_some()) {
        (Some(RatingScale::Thumbs), true) => {
            return Err(Error::invalid(
                "stars",
                format!("scorer {name:?} rates with thumbs (up or down)"),
            ));
        }
        (Some(RatingScale::Stars), false) => {
            return Err(Error::invalid(
                "thumbs",
                format!("scorer {name:?} rates with stars (1 to 5)"),
            ));
        }
        _ => {}
    }
    let rater = rater(actor);
    let new = NewRating {
        raw: &raw,
        value,
        comment: &comment,
        ..rating_of(&run, &name, &rater)
    };
    store::put_rating(&core.db, &new, false, &fp).await?;
    core.leader_watch.notice(run.experiment_id, None, "rating");
    result(core, run_id, &name, ranked).await
}

/// `DELETE /api/v1/runs/{id}/score`: withdraws your rating of a run.
pub async fn withdraw_rating(
    core: &Core,
    actor: &Actor,
    run_id: Uuid,
    scorer: Option<&str>,
) -> Result<()> {
    actor.require_write()?;
    let run = runs::get(&core.db, run_id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    let (name, _, fp, _) = target_scorer(core, run.experiment_id, scorer).await?;
    let rater = rater(actor);
    let mine = store::ratings_for_run(&core.db, run_id)
        .await?
        .into_iter()
        .any(|r| r.scorer == name && r.rater == rater);
    if !mine {
        return Err(Error::NotFound("rating"));
    }
    store::put_rating(&core.db, &rating_of(&run, &name, &rater), true, &fp).await?;
    core.leader_watch.notice(run.experiment_id, None, "rating");
    Ok(())
}

/// A rating of `run` by `rater` for `scorer` (value and words filled in by the caller).
fn rating_of<'a>(run: &'a crate::types::Run, scorer: &'a str, rater: &'a str) -> NewRating<'a> {
    NewRating {
        run_id: run.id,
        experiment_id: run.experiment_id,
        config_key: &run.config_key,
        config: serde_json::to_string(&run.config).unwrap_or_default(),
        scorer_name: scorer,
        rater,
        raw: "",
        value: 0.0,
        comment: "",
    }
}

async fn result(core: &Core, run_id: Uuid, name: &str, ranked: bool) -> Result<RatingResult> {
    let ratings: Vec<_> = store::ratings_for_run(&core.db, run_id)
        .await?
        .into_iter()
        .filter(|r| r.scorer == name)
        .collect();
    let score = store::for_run(&core.db, run_id)
        .await?
        .into_iter()
        .find(|s| s.scorer_name == name)
        .map(|s| s.to_score())
        .ok_or_else(|| Error::Internal("the rating's score was not written".into()))?;
    Ok(RatingResult {
        score,
        ratings,
        ranked,
    })
}
