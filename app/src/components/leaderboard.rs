//! The experiment page's leaderboard (configurations ranked by weighted score, with
//! intervals, the #1 vs #2 verdict, approve and reject, exports) and the rating buttons of
//! runs.

use leptos::prelude::*;
use leptos_router::components::A;
use uuid::Uuid;

use crate::api::{MarkConfiguration, RateRun, get_leaderboard, list_runs};
use crate::components::icons::icon;
use crate::components::shell::can_write;
use crate::components::steering::ForkFrom;
use crate::components::{ErrorNote, action_error, client_resource, error_view, loaded};
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
    /// Rows open to show their runs.
    #[prop(optional)]
    expandable: bool,
) -> impl IntoView {
    let sort = RwSignal::new(String::new());
    let open = RwSignal::new(None::<String>);
    let mark = ServerAction::<MarkConfiguration>::new();
    // Loaded in the browser (the board changes as runs end; the server's page need not have it).
    let board = client_resource(
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
            {loaded(board, move |b| ranking(b, mark, Expand { open, changed, experiment_id, enabled: expandable }))}
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

/// How rows open to their runs.
#[derive(Clone, Copy)]
struct Expand {
    open: RwSignal<Option<String>>,
    changed: Signal<usize>,
    experiment_id: Uuid,
    enabled: bool,
}

fn ranking(b: Leaderboard, mark: ServerAction<MarkConfiguration>, expand: Expand) -> AnyView {
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
    let leader = b.entries.first().map(|e| e.config_key.clone());
    let rows = b
        .entries
        .into_iter()
        .map(|e| row(e, &names, mark, expand, leader.as_deref()))
        .collect_view();
    view! {
        {job}
        <div class="scroll" tabindex="0">
        <table class="table leaderboard">
            <thead><tr>
                <th>"#"</th><th>"Configuration"</th><th>"Score (95% CI)"</th>{head}
                <th>"Samples"</th><th>"Runs"</th><th>"Cost"</th><th>"Latency"</th><th></th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
        </div>
        {comparison}
        <p class="meta">{format!("{} configurations ranked; rejected ones are left out.", b.total)}</p>
    }
    .into_any()
}

fn row(
    e: LeaderboardEntry,
    names: &[String],
    mark: ServerAction<MarkConfiguration>,
    expand: Expand,
    leader: Option<&str>,
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
    let links = {
        let open = best.map(|id| view! { <A href=format!("/runs/{id}") attr:aria-label=format!("Best run of {}", e.label)>"best run"</A> });
        let versus = leader.filter(|l| *l != e.config_key).map(|l| {
            let href = format!("/experiments/{}/compare?a={l}&b={}", expand.experiment_id, e.config_key);
            view! { <A href=href attr:aria-label=format!("vs #1: compare {} with the leader", e.label)>"vs #1"</A> }
        });
        view! { {open}{versus} }
    };
    let actions = (can_write() && best.is_some()).then(|| {
        let run_id = best.unwrap_or_default();
        view! {
            <button class="small" on:click=move |_| { mark.dispatch(MarkConfiguration { run_id, mark: "approved".into() }); }>"Approve"</button>
            <button class="small danger-outline" on:click=move |_| { mark.dispatch(MarkConfiguration { run_id, mark: "rejected".into() }); }>"Reject"</button>
        }
    });
    let key = e.config_key.clone();
    let is_open = {
        let key = key.clone();
        move || expand.open.with(|o| o.as_deref() == Some(key.as_str()))
    };
    let toggle = {
        let key = key.clone();
        move |_| {
            expand.open.update(|o| {
                *o = if o.as_deref() == Some(key.as_str()) {
                    None
                } else {
                    Some(key.clone())
                }
            })
        }
    };
    let columns = names.len() + 9;
    let label = e.label.clone();
    let opener = expand.enabled.then(|| {
        let (a, b) = (is_open.clone(), is_open.clone());
        view! {
            <button type="button" class="small link expander" on:click=toggle
                aria-expanded=move || a().to_string() aria-label=format!("Runs of {label}")>
                {move || if b() { icon("collapse").into_any() } else { icon("expand").into_any() }}
            </button>
        }
    });
    let details = expand.enabled.then(|| {
        let key = key.clone();
        move || {
            is_open().then(|| {
                let key = key.clone();
                view! {
                    <tr class="runs-row"><td colspan=columns>
                        <ConfigRuns experiment_id=expand.experiment_id config_key=key changed=expand.changed/>
                    </td></tr>
                }
            })
        }
    });
    view! {
        <tr data-testid="leaderboard-row" data-config=key.clone()>
            <td>{opener}{e.rank}</td>
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
            <td class="row-actions">{links}{actions}</td>
        </tr>
        {details}
    }
}

/// One configuration's runs in item order: status, score and output; a writer can fork a new
/// experiment from any of them.
#[component]
fn ConfigRuns(experiment_id: Uuid, config_key: String, changed: Signal<usize>) -> impl IntoView {
    let key = config_key.clone();
    // Opened in the browser only: not part of the server's page.
    let runs = LocalResource::new(move || {
        changed.track();
        list_runs(
            experiment_id,
            crate::types::RunListQuery {
                config_key: key.clone(),
                sort: "item".into(),
                limit: 100,
                ..Default::default()
            },
        )
    });
    let fork = use_context::<ForkFrom>().filter(|_| can_write());
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading runs…"</p> }>
            {move || Suspend::new(async move {
                match runs.await {
                    Ok(page) if page.runs.is_empty() => view! { <p class="empty small">"No runs yet."</p> }.into_any(),
                    Ok(page) => {
                        let more = page.total - page.runs.len() as i64;
                        view! {
                            <table tabindex="0" class="table config-runs" data-testid="config-runs">
                                <thead><tr><th scope="col">"Item"</th><th scope="col">"Status"</th><th scope="col">"Score"</th><th scope="col">"Output"</th>
                                    {fork.map(|_| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}</tr></thead>
                                <tbody>
                                    {page.runs.into_iter().map(|r| {
                                        let text = r.run.error.clone().or(r.output.clone()).unwrap_or_default();
                                        let can_fork = matches!(r.run.status.as_str(), "completed" | "cached");
                                        let item = r.run.item_index + 1;
                                        let repeat = (r.run.repeat_index > 0).then(|| format!(" (#{})", r.run.repeat_index + 1));
                                        let score = r.weighted_score.map_or("–".to_owned(), |w| format!("{w:.3}"));
                                        let status = r.run.status.clone();
                                        let href = format!("/runs/{}", r.run.id);
                                        let action = fork.map(|ForkFrom(from)| {
                                            let r = r.clone();
                                            view! { <td>{can_fork.then(|| view! {
                                                <button type="button" class="small" on:click=move |_| from.set(Some(r.clone()))
                                                    aria-label=format!("Fork from the run of item {item}")>{icon("fork")}" Fork…"</button>
                                            })}</td> }
                                        });
                                        view! {
                                            <tr>
                                                <td><A href=href>{format!("#{item}")}</A>{repeat}</td>
                                                <td><span class=format!("status {status}")>{status.clone()}</span></td>
                                                <td>{score}</td>
                                                <td class="output">{text}</td>
                                                {action}
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            {(more > 0).then(|| view! { <p class="muted">{format!("… and {more} more runs")}</p> })}
                        }.into_any()
                    }
                    Err(e) => error_view(e),
                }
            })}
        </Transition>
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
                                on:click=move |_| { rate.dispatch(RateRun { run_id, scorer: up.clone(), thumbs: Some("up".into()), stars: None, comment: None }); }>{icon("thumbs-up")}</button>
                            <button class="small" title=format!("{label}: bad") aria-label="Thumbs down"
                                on:click=move |_| { rate.dispatch(RateRun { run_id, scorer: down.clone(), thumbs: Some("down".into()), stars: None, comment: None }); }>{icon("thumbs-down")}</button>
                        </span>
                    }
                    .into_any()
                }
                RatingScale::Stars => view! {
                    <select class="small" aria-label=format!("Stars for {label}") on:change=move |ev| {
                        if let Ok(stars) = event_target_value(&ev).parse::<i64>() {
                            rate.dispatch(RateRun { run_id, scorer: name.clone(), thumbs: None, stars: Some(stars), comment: None });
                        }
                    }>
                        <option value="">"stars…"</option>
                        {(1..=5).map(|n| view! { <option value=n.to_string()>{if n == 1 { "1 star".to_owned() } else { format!("{n} stars") }}</option> }).collect_view()}
                    </select>
                }
                .into_any(),
            }
        })
        .collect_view()
}
