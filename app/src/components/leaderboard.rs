//! The experiment page's leaderboard (configurations ranked by weighted score, with
//! intervals, the #1 vs #2 verdict, approve and reject, exports) and the rating buttons of
//! runs.

use leptos::prelude::*;
use uuid::Uuid;

use crate::api::{MarkConfiguration, RateRun, get_leaderboard};
use crate::components::shell::can_write;
use crate::components::{ErrorNote, action_error, error_view};
use crate::types::{Leaderboard, LeaderboardEntry, RatingScale, ScorerConfig, ScorerSpec};

fn num(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |x| format!("{x:.3}"))
}

/// The scorers of a scoring config that parse (the server checked them when saved).
pub fn scorers(config: &serde_json::Value) -> Vec<ScorerConfig> {
    config
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| serde_json::from_value(v.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The human_rating scorers people can rate with, and how.
pub fn human_scorers(config: &serde_json::Value) -> Vec<(String, RatingScale)> {
    scorers(config)
        .into_iter()
        .filter_map(|s| match s.spec {
            ScorerSpec::HumanRating { scale } => Some((s.name, scale)),
            _ => None,
        })
        .collect()
}

#[component]
pub fn LeaderboardCard(
    experiment_id: Uuid,
    /// Scorer names, for ranking by one of them.
    scorer_names: Vec<String>,
    /// Changes when runs or ratings change, so the leaderboard reloads.
    #[prop(into)]
    changed: Signal<usize>,
) -> impl IntoView {
    let sort = RwSignal::new(String::new());
    let mark = ServerAction::<MarkConfiguration>::new();
    let board = Resource::new(
        move || (changed.get(), mark.version().get(), sort.get()),
        move |(_, _, sort)| get_leaderboard(experiment_id, sort),
    );
    let error = action_error(mark);
    let export = |format: &str| format!("/api/v1/experiments/{experiment_id}/export/{format}");
    view! {
        <section class="card" data-testid="leaderboard">
            <div class="card-head">
                <h2>"Leaderboard"</h2>
                <label class="inline">"Rank by "
                    <select aria-label="Rank by" on:change=move |ev| sort.set(event_target_value(&ev))>
                        <option value="">"weighted score"</option>
                        {scorer_names.into_iter().map(|n| view! {
                            <option value=format!("scorer:{n}")>{n.clone()}</option>
                        }).collect_view()}
                        <option value="cost">"cost (lowest)"</option>
                        <option value="latency">"latency (lowest)"</option>
                        <option value="runs">"runs"</option>
                    </select>
                </label>
            </div>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match board.await {
                        Ok(b) => ranking(b, mark),
                        Err(e) => error_view(e),
                    }
                })}
            </Transition>
            <ErrorNote error/>
            <p class="exports">"Export the best configuration: "
                <a href=export("best") target="_blank" rel="noopener">"JSON"</a>" · "
                <a href=export("env") target="_blank" rel="noopener">".env"</a>" · "
                <a href=export("yaml") target="_blank" rel="noopener">"YAML"</a>" · "
                <a href=export("report") target="_blank" rel="noopener">"report (markdown)"</a>
            </p>
        </section>
    }
}

fn ranking(b: Leaderboard, mark: ServerAction<MarkConfiguration>) -> AnyView {
    if b.scorers.is_empty() {
        return view! {
            <p class="empty">"No scorers yet: add some to the experiment's scoring_config to rank its configurations."</p>
        }
        .into_any();
    }
    if b.entries.is_empty() {
        return view! { <p class="empty">"No scored runs yet."</p> }.into_any();
    }
    let names: Vec<String> = b.scorers.iter().map(|s| s.name.clone()).collect();
    let job = b.scoring_job.clone().map(|j| {
        view! {
            <p class="muted" data-testid="scoring-job">
                {format!("Re-scoring in the background: {} of {} runs.", j.done, j.total)}
            </p>
        }
    });
    let comparison = b.comparison.clone().map(|c| {
        let class = if c.significant {
            "verdict significant"
        } else {
            "verdict"
        };
        view! { <p class=class data-testid="comparison">{c.verdict}</p> }
    });
    let head = names
        .iter()
        .map(|n| view! { <th>{n.clone()}</th> })
        .collect_view();
    let rows = b
        .entries
        .into_iter()
        .map(|e| row(e, &names, mark))
        .collect_view();
    view! {
        {job}
        <table class="table leaderboard">
            <thead><tr>
                <th>"#"</th><th>"Configuration"</th><th>"Score (95% CI)"</th>{head}
                <th>"Samples"</th><th>"Runs"</th><th>"Cost"</th><th>"Latency"</th><th></th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
        {comparison}
        <p class="meta">{format!("{} configurations ranked; rejected ones are left out.", b.total)}</p>
    }
    .into_any()
}

fn row(
    e: LeaderboardEntry,
    names: &[String],
    mark: ServerAction<MarkConfiguration>,
) -> impl IntoView {
    let ci = match (e.ci_low, e.ci_high) {
        (Some(lo), Some(hi)) => format!(" [{lo:.3}–{hi:.3}]"),
        _ => String::new(),
    };
    let cells = names
        .iter()
        .map(|n| {
            let mean = e.scorers.get(n).and_then(|s| s.mean);
            view! { <td>{num(mean)}</td> }
        })
        .collect_view();
    let runs = if e.failed > 0 {
        format!("{} ({} failed)", e.runs, e.failed)
    } else {
        e.runs.to_string()
    };
    let best = e.best_run_id;
    let actions = (can_write() && best.is_some()).then(|| {
        let run_id = best.unwrap_or_default();
        view! {
            <button class="small" on:click=move |_| { mark.dispatch(MarkConfiguration { run_id, mark: "approved".into() }); }>"Approve"</button>
            <button class="small danger-outline" on:click=move |_| { mark.dispatch(MarkConfiguration { run_id, mark: "rejected".into() }); }>"Reject"</button>
        }
    });
    view! {
        <tr data-testid="leaderboard-row">
            <td>{e.rank}</td>
            <td class="small" title=e.config_key.clone()>
                {e.label.clone()}
                {(e.mark.as_deref() == Some("approved")).then(|| view! { " " <span class="status completed">"approved"</span> })}
            </td>
            <td><strong>{num(e.score)}</strong><span class="small">{ci}</span></td>
            {cells}
            <td>{e.samples}</td>
            <td>{runs}</td>
            <td>{e.cost.map_or("–".to_owned(), |c| format!("${c:.4}"))}</td>
            <td>{e.latency_ms.map_or("–".to_owned(), |l| format!("{l:.0} ms"))}</td>
            <td class="row-actions">{actions}</td>
        </tr>
    }
}

/// Rating controls for one run: thumbs or stars per human_rating scorer.
#[component]
pub fn RateButtons(
    run_id: Uuid,
    scorers: Vec<(String, RatingScale)>,
    rate: ServerAction<RateRun>,
) -> impl IntoView {
    scorers
        .into_iter()
        .map(|(name, scale)| {
            let label = name.clone();
            match scale {
                RatingScale::Thumbs => {
                    let (up, down) = (name.clone(), name);
                    view! {
                        <span class="rate">
                            <button class="small" title=format!("{label}: good") aria-label="Thumbs up"
                                on:click=move |_| { rate.dispatch(RateRun { run_id, scorer: up.clone(), thumbs: Some("up".into()), stars: None }); }>"👍"</button>
                            <button class="small" title=format!("{label}: bad") aria-label="Thumbs down"
                                on:click=move |_| { rate.dispatch(RateRun { run_id, scorer: down.clone(), thumbs: Some("down".into()), stars: None }); }>"👎"</button>
                        </span>
                    }
                    .into_any()
                }
                RatingScale::Stars => view! {
                    <select class="small" aria-label=format!("Stars for {label}") on:change=move |ev| {
                        if let Ok(stars) = event_target_value(&ev).parse::<i64>() {
                            rate.dispatch(RateRun { run_id, scorer: name.clone(), thumbs: None, stars: Some(stars) });
                        }
                    }>
                        <option value="">"★"</option>
                        {(1..=5).map(|n| view! { <option value=n.to_string()>{"★".repeat(n)}</option> }).collect_view()}
                    </select>
                }
                .into_any(),
            }
        })
        .collect_view()
}
