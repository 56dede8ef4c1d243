//! The markdown report: the experiment in brief, the leaderboard with intervals, whether #1
//! really beats #2, parameter effects, charts (embedded SVGs with their numbers), cost and
//! token totals, and the winning prompts in full.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Subject;
use crate::server::auth::Actor;
use crate::server::core::Core;
use crate::server::error::Result;
use crate::server::leaderboard::{self, Query};
use crate::server::store::exports::run_totals;
use crate::server::store::leaderboard as board_store;
use crate::server::store::sweeps;
use crate::types::{LeaderboardEntry, RunConfig};

/// Rows of the leaderboard table.
const TOP: i64 = 20;

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".to_owned(), |x| format!("{x:.digits$}"))
}

fn cost(v: Option<f64>) -> String {
    v.map_or("unknown".to_owned(), |c| format!("${c:.4}"))
}

/// Markdown table cells must not break the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A fenced block longer than any run of backticks inside.
fn fenced(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{text}\n{fence}\n")
}

fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The value a configuration takes on one dimension of the space (e.g. stage 0's model).
fn dimensions(config: &RunConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, s) in config.stages.iter().enumerate() {
        out.push((
            format!("{k}|prompt variant"),
            s.variant.clone().unwrap_or_else(|| "(stage's own)".into()),
        ));
        out.push((format!("{k}|model"), s.model.clone()));
        if let Ok(serde_json::Value::Object(p)) = serde_json::to_value(&s.params) {
            for (name, value) in p {
                if name == "extra" {
                    if let Some(extra) = value.as_object() {
                        for (n, v) in extra {
                            out.push((format!("{k}|{n}"), v.to_string()));
                        }
                    }
                } else {
                    out.push((format!("{k}|{name}"), value.to_string()));
                }
            }
        }
    }
    out
}

pub(super) async fn markdown(core: &Core, s: &Subject) -> Result<String> {
    let e = &s.experiment;
    let system = Actor {
        user: None,
        role: crate::types::Role::Guest,
        via: crate::server::auth::AuthVia::Guest,
    };
    let board = leaderboard::get_leaderboard(
        core,
        &system,
        e.id,
        Query {
            sort: None,
            limit: TOP,
            offset: 0,
        },
    )
    .await?;
    let totals = run_totals(&core.db, e.id).await?;
    let (_, sweep_count) = sweeps::list(&core.db, e.id, 1, 0).await?;
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", e.name);
    let _ = writeln!(
        out,
        "Project **{}** · exported {} · PromptLooper {}\n",
        s.project_name,
        s.exported_at.format("%Y-%m-%d %H:%M UTC"),
        crate::VERSION
    );
    if !e.description.trim().is_empty() {
        let _ = writeln!(out, "{}\n", e.description.trim());
    }

    let _ = writeln!(out, "## Summary\n\n| | |\n|---|---|");
    let _ = writeln!(out, "| Sample items | {} |", e.items.count);
    let stage_names: Vec<&str> = e
        .pipeline_stages
        .iter()
        .map(|st| st.name.as_str())
        .collect();
    let _ = writeln!(
        out,
        "| Pipeline | {} stage(s): {} |",
        stage_names.len(),
        cell(&stage_names.join(" → "))
    );
    let scorers = if board.scorers.is_empty() {
        "none".to_owned()
    } else {
        board
            .scorers
            .iter()
            .map(|sc| format!("{} ({}, weight {})", sc.name, sc.kind, sc.weight))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "| Scorers | {} |", cell(&scorers));
    let _ = writeln!(out, "| Configurations ranked | {} |", board.total);
    let runs: i64 = totals.iter().map(|t| t.1).sum();
    let by_status = totals
        .iter()
        .map(|t| format!("{} {}", t.0, thousands(t.1)))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(out, "| Runs | {} ({by_status}) |", thousands(runs));
    let _ = writeln!(out, "| Sweeps | {sweep_count} |");
    let (tin, tout): (i64, i64) = totals.iter().fold((0, 0), |(a, b), t| (a + t.2, b + t.3));
    let _ = writeln!(
        out,
        "| Tokens | {} in · {} out |",
        thousands(tin),
        thousands(tout)
    );
    let priced = totals
        .iter()
        .all(|t| t.5 == t.1 || t.0 == "pending" || t.0 == "failed");
    let spent: f64 = totals.iter().map(|t| t.4).sum();
    let _ = writeln!(
        out,
        "| Estimated cost | {}{} |\n",
        format_args!("${spent:.4}"),
        if priced {
            ""
        } else {
            " (some models have no known price)"
        }
    );

    let b = &s.best;
    let _ = writeln!(out, "## Best configuration\n");
    let _ = writeln!(
        out,
        "**{}** — score **{}** (95% CI {}–{}), over {} item(s) and {} sample(s){}.\n",
        cell(&b.label),
        num(b.score, 3),
        num(b.ci_low, 3),
        num(b.ci_high, 3),
        b.items,
        b.samples,
        if b.mark.as_deref() == Some("approved") {
            "; approved"
        } else {
            ""
        }
    );
    if let Some(c) = &board.comparison {
        let _ = writeln!(out, "{}\n", c.verdict);
    }
    if !b.scorers.is_empty() {
        let _ = writeln!(
            out,
            "| Scorer | Mean | Scored | Could not score |\n|---|---|---|---|"
        );
        for (name, sc) in &b.scorers {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(name),
                num(sc.mean, 3),
                sc.n,
                sc.errors
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## Leaderboard\n");
    if board.entries.is_empty() {
        let _ = writeln!(out, "No configuration has a score yet.\n");
    } else {
        let _ = writeln!(
            out,
            "| # | Configuration | Score | 95% CI | Std | Runs (failed) | Tokens in / out | Cost | Latency |\n|---|---|---|---|---|---|---|---|---|"
        );
        for en in &board.entries {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {}–{} | {} | {} ({}) | {} / {} | {} | {} |",
                en.rank,
                cell(&en.label),
                num(en.score, 3),
                num(en.ci_low, 3),
                num(en.ci_high, 3),
                num(en.std, 3),
                en.runs,
                en.failed,
                thousands(en.tokens_in),
                thousands(en.tokens_out),
                cost(en.cost),
                en.latency_ms
                    .map_or("–".to_owned(), |l| format!("{l:.0} ms")),
            );
        }
        if board.total > TOP {
            let _ = writeln!(out, "\n…and {} more configurations.", board.total - TOP);
        }
        let _ = writeln!(out);
    }

    let _ = write!(out, "{}", effects(core, s).await?);
    let charts = crate::server::charts::report_section(core, &system, e.id).await?;
    out.push_str(&charts);

    let _ = writeln!(out, "## Cost and tokens of the best configuration\n");
    let _ = writeln!(
        out,
        "{} runs, {} tokens in and {} out, cost {}; mean latency {}.\n",
        b.runs,
        thousands(b.tokens_in),
        thousands(b.tokens_out),
        cost(b.cost),
        b.latency_ms
            .map_or("–".to_owned(), |l| format!("{l:.0} ms")),
    );

    let _ = writeln!(out, "## The winning prompts\n");
    for (k, st) in s.stages.iter().enumerate() {
        let mut params: Vec<String> = Vec::new();
        if let Ok(serde_json::Value::Object(p)) = serde_json::to_value(&st.config.params) {
            params = p.iter().map(|(n, v)| format!("{n} {v}")).collect();
        }
        let _ = writeln!(
            out,
            "### Stage {}: {}\n\nModel `{}`{}{}{}.\n",
            k + 1,
            st.name,
            st.config.model,
            st.endpoint_name
                .as_deref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default(),
            st.config
                .variant
                .as_deref()
                .map(|v| format!(", prompt variant `{v}`"))
                .unwrap_or_default(),
            if params.is_empty() {
                String::new()
            } else {
                format!(", {}", params.join(", "))
            },
        );
        if !st.config.system.is_empty() {
            let _ = writeln!(out, "System prompt:\n\n{}", fenced(&st.config.system));
        }
        let _ = writeln!(out, "User prompt:\n\n{}", fenced(&st.config.user));
    }
    Ok(out)
}

/// Parameter effects: for every dimension with more than one value among the ranked
/// configurations, the mean score of the configurations with each value.
async fn effects(core: &Core, s: &Subject) -> Result<String> {
    let e = &s.experiment;
    let (light, _) = board_store::light(&core.db, e.id, false).await?;
    let keys: Vec<String> = light
        .iter()
        .filter(|l| l.score.is_some())
        .map(|l| l.config_key.clone())
        .collect();
    let mut entries: Vec<LeaderboardEntry> = Vec::new();
    for chunk in keys.chunks(500) {
        for f in board_store::full(&core.db, e.id, chunk).await? {
            entries.push(leaderboard::entry(0, f, None, e));
        }
    }
    // dimension → value → scores
    let mut table: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for en in &entries {
        let (Some(config), Some(score)) = (&en.config, en.score) else {
            continue;
        };
        for (dim, value) in dimensions(config) {
            table
                .entry(dim)
                .or_default()
                .entry(value)
                .or_default()
                .push(score);
        }
    }
    let mut out = String::from("## Parameter effects\n\n");
    let mut any = false;
    for (dim, values) in &table {
        if values.len() < 2 {
            continue;
        }
        any = true;
        let (stage, what) = dim.split_once('|').unwrap_or(("0", dim));
        let k: usize = stage.parse().unwrap_or(0);
        let stage_name = e.pipeline_stages.get(k).map_or("?", |st| st.name.as_str());
        let _ = writeln!(
            out,
            "### Stage {} ({}): {}\n\n| Value | Configurations | Mean score | Best score |\n|---|---|---|---|",
            k + 1,
            cell(stage_name),
            what
        );
        let mut rows: Vec<(&String, &Vec<f64>)> = values.iter().collect();
        rows.sort_by(|a, b| {
            let m = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
            m(b.1).total_cmp(&m(a.1))
        });
        for (value, scores) in rows {
            let mean = scores.iter().sum::<f64>() / scores.len() as f64;
            let best = scores.iter().copied().fold(f64::MIN, f64::max);
            let _ = writeln!(
                out,
                "| {} | {} | {mean:.3} | {best:.3} |",
                cell(value),
                scores.len()
            );
        }
        let _ = writeln!(out);
    }
    if !any {
        out.push_str(
            "Every ranked configuration shares the same settings; there is nothing to compare.\n\n",
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(fenced("a ``` b"), "````text\na ``` b\n````\n");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
