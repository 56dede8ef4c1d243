//! What each chart shows, computed from the leaderboard summaries and SQL aggregates.

use std::collections::{BTreeMap, HashSet};

use super::params::{self, NOT_SET};
use super::{Ctx, stats};
use crate::server::error::{Error, Result};
use crate::server::leaderboard;
use crate::server::store::charts as store;
use crate::server::store::leaderboard as board_store;
use crate::types::{AxisScale, ChartData, ChartKind, ChartPoint, ChartSeries};

pub(super) fn series(name: impl Into<String>, points: Vec<ChartPoint>) -> ChartSeries {
    ChartSeries {
        name: name.into(),
        axis: 0,
        points,
    }
}

pub(super) fn f3(v: f64) -> String {
    format!("{v:.3}")
}

/// Dollars with three significant digits however small ($0.0000312, $0.000545, $0.01).
pub fn dollars(v: f64) -> String {
    let decimals = if v > 0.0 {
        (2 - v.log10().floor() as i64).clamp(2, 12) as usize
    } else {
        2
    };
    format!("${v:.decimals$}")
}

/// Mean score per value of one varied parameter, per model (one series per combination of
/// models; one series when the parameter is a model). Each item of each configuration with
/// that value is one observation (its mean over repeats); the interval is a 95% t-interval
/// over them (quick enough for 100,000 runs, unlike a bootstrap; it treats the items of
/// different configurations as independent).
pub async fn score_vs_param(ctx: &Ctx<'_>, param: Option<&str>) -> Result<ChartData> {
    let scored: HashSet<&str> = ctx
        .light
        .iter()
        .filter(|l| ctx.metric(l).is_some())
        .map(|l| l.config_key.as_str())
        .collect();
    let rows: Vec<store::ItemValues> =
        store::item_values(&ctx.core.db, ctx.e.id, None, ctx.scorer.as_deref(), true)
            .await?
            .into_iter()
            .filter(|r| scored.contains(r.config_key.as_str()) && r.config.is_some())
            .collect();
    let varied = params::varied(rows.iter().filter_map(|r| r.config.as_ref()));
    let chosen = match param {
        Some(name) => Some(varied.iter().find(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = varied.iter().map(|p| p.name.as_str()).collect();
            Error::invalid(
                "param",
                format!(
                    "no varied parameter named {name:?} (varied: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })?),
        None => params::default(&varied),
    };
    let mut chart = ctx.chart(
        ChartKind::ScoreVsParam,
        format!("{} by parameter", ctx.metric_name()),
        "Parameter",
    );
    let Some(p) = chosen else {
        chart.description = if rows.is_empty() {
            "No data yet: no configuration has a score.".to_owned()
        } else {
            "No data yet: every configuration has the same settings, so no parameter varies."
                .to_owned()
        };
        return Ok(chart);
    };
    chart.title = format!("{} by {}", ctx.metric_name(), p.name);
    chart.x_label = p.name.clone();
    chart.param = Some(p.name.clone());
    chart.x_scale = if p.numeric {
        AxisScale::Numeric
    } else {
        AxisScale::Category
    };
    let per_model = !params::is_model(&p.name)
        && rows
            .iter()
            .filter_map(|r| r.config.as_ref().map(params::models))
            .collect::<HashSet<_>>()
            .len()
            > 1;
    // series → value → (number, configurations, observations)
    type Group = (Option<f64>, usize, Vec<f64>);
    let mut groups: BTreeMap<String, BTreeMap<String, Group>> = BTreeMap::new();
    for r in &rows {
        let Some(config) = &r.config else { continue };
        let value = params::value_of(config, &p.name);
        // One series per model (a single one when no model varies, or the model is on x).
        let name = if params::is_model(&p.name) {
            "All configurations".to_owned()
        } else {
            params::models(config)
        };
        let g = groups
            .entry(name)
            .or_default()
            .entry(params::category(&value))
            .or_insert_with(|| (value.as_f64(), 0, Vec::new()));
        g.1 += 1;
        g.2.extend_from_slice(&r.values);
    }
    // The highest point: its series, its value of the parameter, the point.
    let mut best: Option<(String, String, ChartPoint)> = None;
    for (name, values) in groups {
        let mut points = Vec::new();
        for (cat, (x, configs, obs)) in values {
            let Some((mean, ci)) = stats::t_interval(&obs) else {
                continue;
            };
            let point = ChartPoint {
                x: if p.numeric { x } else { None },
                category: (!p.numeric).then(|| cat.clone()),
                y: mean,
                low: ci.map(|c| c.0),
                high: ci.map(|c| c.1),
                n: obs.len() as i64,
                label: Some(format!(
                    "{configs} configuration{}",
                    if configs == 1 { "" } else { "s" }
                )),
                ..ChartPoint::default()
            };
            if best.as_ref().is_none_or(|b| mean > b.2.y) {
                best = Some((name.clone(), cat.clone(), point.clone()));
            }
            points.push(point);
        }
        if p.numeric {
            points.sort_by(|a, b| a.x.unwrap_or(0.0).total_cmp(&b.x.unwrap_or(0.0)));
        } else {
            // "(not set)" and "(stage's own)" first, then by name.
            points.sort_by_key(|pt| {
                let c = pt.category.clone().unwrap_or_default();
                (!c.starts_with('('), c)
            });
        }
        chart.series.push(series(name, points));
    }
    let configs = rows.len();
    chart.description = format!(
        "Mean {} for each value of {} over {configs} configuration{}{}, with 95% t-intervals over their per-item scores.",
        ctx.metric_name().to_lowercase(),
        p.name,
        if configs == 1 { "" } else { "s" },
        if per_model {
            ", one line per model"
        } else {
            ""
        },
    );
    if let Some((name, cat, point)) = best {
        let ci = match (point.low, point.high) {
            (Some(lo), Some(hi)) => format!(", 95% CI {}–{}", f3(lo), f3(hi)),
            _ => String::new(),
        };
        let cat = if cat == NOT_SET {
            "not set".into()
        } else {
            cat
        };
        chart.description.push_str(&format!(
            " Highest: {name} at {} = {cat}: {}{ci} ({} per-item scores).",
            p.name,
            f3(point.y),
            point.n
        ));
    }
    Ok(chart)
}

/// One point per configuration: x = mean cost per run ($) or mean latency (ms), y = score;
/// the Pareto frontier (no configuration scores higher for less) is its own series.
pub async fn score_vs(ctx: &Ctx<'_>, kind: ChartKind) -> Result<ChartData> {
    let cost = kind == ChartKind::ScoreVsCost;
    let (title, x_label, unit) = if cost {
        ("vs cost", "Mean cost per run ($)", "cost")
    } else {
        ("vs latency", "Mean latency per run (ms)", "latency")
    };
    let mut chart = ctx.chart(kind, format!("{} {title}", ctx.metric_name()), x_label);
    let mut missing = 0;
    let mut pts: Vec<(&str, f64, f64, i64)> = Vec::new();
    for l in &ctx.light {
        let Some(y) = ctx.metric(l) else { continue };
        let x = if cost {
            l.cost.filter(|_| l.runs > 0).map(|c| c / l.runs as f64)
        } else {
            l.latency_ms
        };
        match x {
            Some(x) => pts.push((&l.config_key, x, y, l.samples)),
            None => missing += 1,
        }
    }
    if pts.is_empty() {
        chart.description = if missing > 0 {
            format!("No data yet: no configuration with a score has a known {unit}.")
        } else {
            "No data yet: no configuration has a score.".to_owned()
        };
        return Ok(chart);
    }
    let keys: Vec<String> = pts.iter().map(|p| p.0.to_owned()).collect();
    let configs = board_store::configs(&ctx.core.db, ctx.e.id, &keys).await?;
    let frontier = stats::pareto(&pts.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>());
    let on: HashSet<usize> = frontier.iter().copied().collect();
    let point = |i: usize| {
        let (key, x, y, n) = pts[i];
        ChartPoint {
            x: Some(x),
            y,
            n,
            config_key: Some(key.to_owned()),
            label: configs.get(key).map(|c| leaderboard::label(c, &ctx.e)),
            ..ChartPoint::default()
        }
    };
    let others = (0..pts.len())
        .filter(|i| !on.contains(i))
        .map(point)
        .collect();
    let front: Vec<ChartPoint> = frontier.iter().map(|&i| point(i)).collect();
    chart.frontier = front.iter().filter_map(|p| p.config_key.clone()).collect();
    let shown = |p: &ChartPoint| {
        let x = if cost {
            format!("{} per run", dollars(p.x.unwrap_or(0.0)))
        } else {
            format!("{:.0} ms", p.x.unwrap_or(0.0))
        };
        format!(
            "{} ({x}, score {})",
            p.label.as_deref().unwrap_or("?"),
            f3(p.y)
        )
    };
    let ends = match front.as_slice() {
        [one] => format!(": {}", shown(one)),
        [first, .., last] => format!(": from {} to {}", shown(first), shown(last)),
        [] => String::new(),
    };
    chart.description = format!(
        "{} configurations by mean {unit} per run and {}; {} on the Pareto frontier (nothing scores higher for less){ends}.{}",
        pts.len(),
        ctx.metric_name().to_lowercase(),
        front.len(),
        if missing > 0 {
            format!(" {missing} configurations without a known {unit} are left out.")
        } else {
            String::new()
        }
    );
    chart.series = vec![
        series("Other configurations", others),
        series("Pareto frontier", front),
    ];
    Ok(chart)
}

/// The spread of per-item scores of the `top` best configurations (ranked as the
/// leaderboard ranks them): min, quartiles, median and max, and the mean as `y`.
pub async fn distribution(ctx: &Ctx<'_>, top: usize) -> Result<ChartData> {
    // As the leaderboard ranks: the score, then the weighted score, samples and key.
    let mut ranked: Vec<(&str, f64, f64, i64)> = ctx
        .light
        .iter()
        .filter_map(|l| {
            let m = ctx.metric(l)?;
            Some((
                l.config_key.as_str(),
                m,
                l.score.unwrap_or(f64::MIN),
                l.samples,
            ))
        })
        .collect();
    ranked.sort_by(|a, b| {
        (b.1.total_cmp(&a.1))
            .then(b.2.total_cmp(&a.2))
            .then(b.3.cmp(&a.3))
            .then(a.0.cmp(b.0))
    });
    ranked.truncate(top);
    let mut chart = ctx.chart(
        ChartKind::Distribution,
        format!(
            "Per-item {} of the top {top}",
            ctx.metric_name().to_lowercase()
        ),
        "Configuration (rank)",
    );
    chart.x_scale = AxisScale::Category;
    if ranked.is_empty() {
        chart.description = "No data yet: no configuration has a score.".to_owned();
        return Ok(chart);
    }
    let keys: Vec<String> = ranked.iter().map(|r| r.0.to_owned()).collect();
    let rows = store::item_values(
        &ctx.core.db,
        ctx.e.id,
        Some(&keys),
        ctx.scorer.as_deref(),
        true,
    )
    .await?;
    let mut points = Vec::new();
    for (rank, (key, ..)) in ranked.iter().enumerate() {
        let Some(r) = rows.iter().find(|r| r.config_key == *key) else {
            continue;
        };
        let Some(spread) = stats::spread(&r.values) else {
            continue;
        };
        points.push(ChartPoint {
            category: Some(format!("#{}", rank + 1)),
            y: r.values.iter().sum::<f64>() / r.values.len() as f64,
            n: r.values.len() as i64,
            config_key: Some(key.to_string()),
            label: r.config.as_ref().map(|c| leaderboard::label(c, &ctx.e)),
            spread: Some(spread),
            ..ChartPoint::default()
        });
    }
    chart.description = match points.first() {
        Some(p) => {
            let s = p.spread.as_ref().expect("set above");
            format!(
                "Box plots of the per-item scores (each item: its mean over repeats) of the {} best configurations. #1, {}: median {}, middle half {}–{}, range {}–{} over {} items.",
                points.len(),
                p.label.as_deref().unwrap_or("?"),
                f3(s.median),
                f3(s.q1),
                f3(s.q3),
                f3(s.min),
                f3(s.max),
                p.n
            )
        }
        None => "No data yet: no configuration has per-item scores.".to_owned(),
    };
    chart.series = vec![series("Per-item scores", points)];
    Ok(chart)
}
