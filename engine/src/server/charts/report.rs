//! The charts section of the markdown report: every chart with something to draw, embedded as
//! an SVG data URI (so the report is self-contained and stays as it was when exported), each
//! followed by a compact table of its numbers.

use std::fmt::Write;

use base64::Engine as _;
use uuid::Uuid;

use super::{data, svg};
use crate::server::auth::Actor;
use crate::server::core::Core;
use crate::server::error::Result;
use crate::types::{ChartData, ChartKind, ChartOptions, ChartPoint};

/// score-vs-param charts in a report: one per varied parameter, up to this many.
const MAX_PARAMS: usize = 4;
/// Rows of a chart's table.
const MAX_ROWS: usize = 30;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn num(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |x| format!("{x:.3}"))
}

fn ci(p: &ChartPoint) -> String {
    match (p.low, p.high) {
        (Some(lo), Some(hi)) => format!("{lo:.3}–{hi:.3}"),
        _ => "–".to_owned(),
    }
}

fn x(p: &ChartPoint) -> String {
    match (&p.category, p.x) {
        (Some(c), _) => cell(c),
        (None, Some(x)) => format!("{x}"),
        _ => "–".to_owned(),
    }
}

/// The numbers of a chart as a markdown table.
pub fn table(data: &ChartData) -> String {
    let mut rows: Vec<String> = Vec::new();
    let head = match data.kind {
        ChartKind::ScoreVsParam => {
            for s in &data.series {
                for p in &s.points {
                    rows.push(format!(
                        "| {} | {} | {} | {} | {} |",
                        cell(&s.name),
                        x(p),
                        num(Some(p.y)),
                        ci(p),
                        p.n
                    ));
                }
            }
            format!(
                "| Models | {} | Mean | 95% CI | Scores |\n|---|---|---|---|---|",
                cell(&data.x_label)
            )
        }
        ChartKind::ScoreVsCost | ChartKind::ScoreVsLatency => {
            let cost = data.kind == ChartKind::ScoreVsCost;
            let front = data.series.get(1).map_or(&[][..], |s| &s.points[..]);
            for p in front {
                let at = p.x.unwrap_or(0.0);
                rows.push(format!(
                    "| {} | {} | {} |",
                    cell(p.label.as_deref().unwrap_or("?")),
                    if cost {
                        super::data::dollars(at)
                    } else {
                        format!("{at:.0} ms")
                    },
                    num(Some(p.y))
                ));
            }
            format!(
                "Pareto frontier:\n\n| Configuration | {} | Score |\n|---|---|---|",
                if cost { "Cost per run" } else { "Latency" }
            )
        }
        ChartKind::Distribution => {
            for p in data.series.iter().flat_map(|s| s.points.iter()) {
                let s = p.spread.as_ref();
                rows.push(format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    x(p),
                    cell(p.label.as_deref().unwrap_or("?")),
                    num(Some(p.y)),
                    num(s.map(|s| s.min)),
                    num(s.map(|s| s.q1)),
                    num(s.map(|s| s.median)),
                    num(s.map(|s| s.q3)),
                    num(s.map(|s| s.max)),
                    p.n
                ));
            }
            "| Rank | Configuration | Mean | Min | Q1 | Median | Q3 | Max | Items |\n|---|---|---|---|---|---|---|---|---|".to_owned()
        }
        ChartKind::Progress => {
            let runs = data.series.first().map_or(&[][..], |s| &s.points[..]);
            let best = data.series.get(1).map_or(&[][..], |s| &s.points[..]);
            // About a dozen rows, always the last.
            let step = runs.len().div_ceil(12).max(1);
            for (i, p) in runs.iter().enumerate() {
                if i % step != 0 && i + 1 != runs.len() {
                    continue;
                }
                let b = best.iter().find(|b| b.x == p.x).map(|b| b.y);
                rows.push(format!(
                    "| {:.1} | {} | {} |",
                    p.x.unwrap_or(0.0),
                    p.y,
                    num(b)
                ));
            }
            format!(
                "| Minutes | Completed runs | {} |\n|---|---|---|",
                cell(data.y2_label.as_deref().unwrap_or("Best score"))
            )
        }
    };
    let mut out = head;
    let more = rows.len().saturating_sub(MAX_ROWS);
    for r in rows.into_iter().take(MAX_ROWS) {
        out.push('\n');
        out.push_str(&r);
    }
    if more > 0 {
        let _ = write!(out, "\n\n…and {more} more rows.");
    }
    out.push_str("\n\n");
    out
}

/// One chart in markdown: the SVG as a data URI, what it shows, its table.
pub fn embed(data: &ChartData) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(svg(data));
    let alt = data.title.replace(['[', ']', '\n'], " ");
    format!(
        "### {}\n\n![{alt}](data:image/svg+xml;base64,{b64})\n\n{}\n\n{}",
        data.title.replace('\n', " "),
        data.description,
        table(data)
    )
}

/// The report's "Charts" section.
pub async fn report_section(core: &Core, actor: &Actor, experiment_id: Uuid) -> Result<String> {
    let mut out = String::from("## Charts\n\n");
    let mut any = false;
    for info in super::list(core, actor, experiment_id).await? {
        if !info.available {
            continue;
        }
        let params: Vec<Option<String>> = if info.kind == ChartKind::ScoreVsParam {
            info.params
                .iter()
                .take(MAX_PARAMS)
                .map(|p| Some(p.name.clone()))
                .collect()
        } else {
            vec![None]
        };
        for param in params {
            let options = ChartOptions {
                param,
                ..ChartOptions::default()
            };
            let chart = data(core, actor, experiment_id, info.kind, &options).await?;
            if !chart.is_empty() {
                any = true;
                out.push_str(&embed(&chart));
            }
        }
    }
    if !any {
        out.push_str("No chart has anything to show yet.\n\n");
    }
    Ok(out)
}
