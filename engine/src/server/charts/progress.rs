//! The progress chart: completed runs over time and the best score.

use chrono::{DateTime, TimeZone, Utc};

use super::Ctx;
use super::data::{f3, series};
use crate::server::error::Result;
use crate::server::store::charts::{self as store, BUCKETS};
use crate::types::{AxisScale, ChartData, ChartKind, ChartPoint, ChartSeries};

fn at(seconds: f64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt((seconds * 1000.0).round() as i64)
        .single()
}

/// Completed (and cached) runs over time, in up to 60 buckets, and the best score: the
/// leader's score when it took the lead (`new_best_found` events), and the current leader's
/// at the end.
pub async fn progress(ctx: &Ctx<'_>) -> Result<ChartData> {
    let mut chart = ctx.chart(
        ChartKind::Progress,
        "Progress".to_owned(),
        "Minutes since the first run ended",
    );
    chart.x_scale = AxisScale::Time;
    chart.y_label = "Completed runs".to_owned();
    chart.y2_label = Some(format!("Best {}", ctx.metric_name().to_lowercase()));
    let Some(b) = store::completed_buckets(&ctx.core.db, ctx.e.id).await? else {
        chart.description = "No data yet: no run has completed.".to_owned();
        return Ok(chart);
    };
    let span = b.last - b.first;
    let buckets = if span > 0.0 { BUCKETS } else { 1 };
    let width = span / buckets as f64;
    let bests: Vec<(f64, f64)> = store::bests(&ctx.core.db, ctx.e.id)
        .await?
        .into_iter()
        .filter_map(|(t, payload)| {
            let score = match &ctx.scorer {
                None => payload.get("score"),
                Some(name) => payload.get("scores").and_then(|s| s.get(name)),
            };
            Some((t.timestamp_millis() as f64 / 1000.0, score?.as_f64()?))
        })
        .collect();
    let now_best = ctx
        .light
        .iter()
        .filter_map(|l| ctx.metric(l))
        .max_by(f64::total_cmp);
    let mut counts = b.counts.iter().peekable();
    let (mut done, mut runs, mut best) = (0i64, Vec::new(), Vec::new());
    for i in 0..buckets {
        let end = if i + 1 == buckets {
            b.last
        } else {
            b.first + width * (i + 1) as f64
        };
        while let Some((_, n)) = counts.next_if(|(k, _)| *k <= i) {
            done += n;
        }
        let last = i + 1 == buckets;
        let point = |y: f64| ChartPoint {
            x: Some((end - b.first) / 60.0),
            y,
            n: done,
            time: at(end),
            ..ChartPoint::default()
        };
        runs.push(point(done as f64));
        let leader = bests
            .iter()
            .rev()
            .find(|(t, _)| last || *t <= end)
            .map(|(_, s)| *s);
        if let Some(score) = if last { now_best.or(leader) } else { leader } {
            best.push(point(score));
        }
    }
    let minutes = span / 60.0;
    chart.description = format!(
        "{done} runs completed over {}{}.",
        if minutes >= 1.0 {
            format!("{minutes:.1} minutes")
        } else if span >= 1.0 {
            format!("{span:.0} seconds")
        } else {
            "less than a second".to_owned()
        },
        match best.last() {
            Some(p) => format!(
                "; best {} now {}",
                ctx.metric_name().to_lowercase(),
                f3(p.y)
            ),
            None => String::new(),
        }
    );
    chart.series = vec![
        series("Completed runs", runs),
        ChartSeries {
            axis: 1,
            ..series(format!("Best {}", ctx.metric_name().to_lowercase()), best)
        },
    ];
    Ok(chart)
}
