//! Charts, drawn on the server as SVG with charts-rs (never compiled into the WASM): score by
//! a varied parameter, score against cost and latency with the Pareto frontier, the spread of
//! the top configurations' per-item scores, and progress over time. Every transport calls
//! [`list`], [`data`] and [`svg`] (or [`charts`] for several at once); the markdown report
//! embeds them ([`report_section`]).
//!
//! Numbers come from the leaderboard summaries (refreshed first, like the leaderboard) and SQL
//! aggregates, never from every run, so a chart of a 100,000-run experiment reads a few
//! thousand rows.

mod a11y;
mod data;
mod draw;
pub mod params;
mod progress;
mod report;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::leaderboard;
use super::store::experiments;
use super::store::leaderboard::{self as board_store, Light};
use crate::types::{
    Chart, ChartData, ChartInfo, ChartKind, ChartOptions, Experiment, ScorerSummary,
};

pub use draw::svg;
pub use report::report_section;

/// Configurations shown by the distribution chart: default and most.
pub const TOP_DEFAULT: i64 = 5;
pub const TOP_MAX: i64 = 20;

/// What every chart reads first: the experiment, the score asked for, and the ranked
/// configurations' summaries (rejected ones and those without runs left out).
pub(crate) struct Ctx<'a> {
    pub core: &'a Core,
    pub e: Experiment,
    pub scorer: Option<String>,
    pub light: Vec<Light>,
    scorers: HashMap<String, BTreeMap<String, ScorerSummary>>,
}

impl<'a> Ctx<'a> {
    async fn load(core: &'a Core, experiment_id: Uuid, scorer: Option<&str>) -> Result<Ctx<'a>> {
        let e = experiments::get(&core.db, experiment_id)
            .await?
            .ok_or(Error::NotFound("experiment"))?;
        let scorer = scorer.map(str::trim).filter(|s| !s.is_empty());
        if let Some(name) = scorer {
            let (configs, _) = super::scoring::parse_lenient(&e.scoring_config);
            if !configs.iter().any(|c| c.name == name) {
                let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::invalid(
                    "scorer",
                    format!(
                        "no scorer named {name:?} (the experiment has: {})",
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            }
        }
        leaderboard::refresh(core, &e).await?;
        let (light, scorers) = board_store::light(&core.db, e.id, scorer.is_some()).await?;
        Ok(Ctx {
            core,
            e,
            scorer: scorer.map(str::to_owned),
            light,
            scorers,
        })
    }

    /// The score of a configuration: its weighted score, or the chosen scorer's mean.
    pub fn metric(&self, l: &Light) -> Option<f64> {
        match &self.scorer {
            None => l.score,
            Some(name) => self
                .scorers
                .get(&l.config_key)
                .and_then(|s| s.get(name))
                .and_then(|s| s.mean),
        }
    }

    /// What the score axis is called.
    pub fn metric_name(&self) -> String {
        match &self.scorer {
            None => "Weighted score".to_owned(),
            Some(name) => format!("Score of {name}"),
        }
    }

    /// A blank chart of this kind (its series are filled by the builders).
    pub fn chart(&self, kind: ChartKind, title: String, x_label: &str) -> ChartData {
        ChartData {
            kind,
            experiment_id: self.e.id,
            title,
            x_label: x_label.to_owned(),
            y_label: self.metric_name(),
            y2_label: None,
            x_scale: crate::types::AxisScale::Numeric,
            series: Vec::new(),
            frontier: Vec::new(),
            param: None,
            scorer: self.scorer.clone(),
            description: String::new(),
        }
    }
}

fn check_top(top: Option<i64>) -> Result<usize> {
    match top {
        None => Ok(TOP_DEFAULT as usize),
        Some(n) if (1..=TOP_MAX).contains(&n) => Ok(n as usize),
        Some(_) => Err(Error::invalid(
            "top",
            format!("must be between 1 and {TOP_MAX}"),
        )),
    }
}

/// A chart kind from its name; anything else is invalid, naming `kind`.
pub fn parse_kind(text: &str) -> Result<ChartKind> {
    ChartKind::parse(text).ok_or_else(|| {
        let names: Vec<&str> = ChartKind::ALL.iter().map(|k| k.as_str()).collect();
        Error::invalid("kind", format!("must be one of {}", names.join(", ")))
    })
}

/// `GET …/charts`: the charts an experiment offers, whether each has something to draw, and
/// the parameters score-vs-param can be drawn over.
pub async fn list(core: &Core, _actor: &Actor, experiment_id: Uuid) -> Result<Vec<ChartInfo>> {
    let ctx = Ctx::load(core, experiment_id, None).await?;
    let scored: Vec<&Light> = ctx.light.iter().filter(|l| l.score.is_some()).collect();
    let keys: Vec<String> = scored.iter().map(|l| l.config_key.clone()).collect();
    let configs = board_store::configs(&core.db, experiment_id, &keys).await?;
    let params = params::varied(configs.values());
    let default_param = params::default(&params).map(|p| p.name.clone());
    // Runs ended (rejected configurations aside).
    let ran = ctx.light.iter().any(|l| l.runs > 0);
    Ok(ChartKind::ALL
        .into_iter()
        .map(|kind| {
            let available = match kind {
                ChartKind::ScoreVsParam => !params.is_empty(),
                ChartKind::ScoreVsCost => scored.iter().any(|l| l.cost.is_some()),
                ChartKind::ScoreVsLatency => scored.iter().any(|l| l.latency_ms.is_some()),
                ChartKind::Distribution => !scored.is_empty(),
                ChartKind::Progress => ran,
            };
            let is_param = kind == ChartKind::ScoreVsParam;
            ChartInfo {
                kind,
                title: kind.name().to_owned(),
                available,
                path: format!("/api/v1/experiments/{experiment_id}/charts/{kind}.svg"),
                params: if is_param { params.clone() } else { Vec::new() },
                default_param: if is_param {
                    default_param.clone()
                } else {
                    None
                },
            }
        })
        .collect())
}

/// `GET …/charts/{kind}.json`: what a chart shows. Bad options are invalid, naming `param`,
/// `scorer` or `top`; an experiment with nothing to draw gives an empty chart saying why.
pub async fn data(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    kind: ChartKind,
    options: &ChartOptions,
) -> Result<ChartData> {
    let top = check_top(options.top)?;
    let ctx = Ctx::load(core, experiment_id, options.scorer.as_deref()).await?;
    let param = options
        .param
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let t = std::time::Instant::now();
    let chart = match kind {
        ChartKind::ScoreVsParam => data::score_vs_param(&ctx, param).await?,
        ChartKind::ScoreVsCost | ChartKind::ScoreVsLatency => data::score_vs(&ctx, kind).await?,
        ChartKind::Distribution => data::distribution(&ctx, top).await?,
        ChartKind::Progress => progress::progress(&ctx).await?,
    };
    tracing::debug!(%kind, us = t.elapsed().as_micros() as u64, "chart data");
    Ok(chart)
}

/// Several charts with their SVGs (every kind when `kinds` is empty).
pub async fn charts(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    kinds: &[ChartKind],
    options: &ChartOptions,
) -> Result<Vec<Chart>> {
    // Each kind once, in the usual order, whatever was asked.
    let kinds: Vec<ChartKind> = ChartKind::ALL
        .iter()
        .copied()
        .filter(|k| kinds.is_empty() || kinds.contains(k))
        .collect();
    let mut out = Vec::new();
    for kind in kinds {
        let data = data(core, actor, experiment_id, kind, options).await?;
        out.push(Chart {
            svg: svg(&data),
            data,
        });
    }
    Ok(out)
}
