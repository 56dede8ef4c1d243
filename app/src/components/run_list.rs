//! An experiment's runs: filter by status, configuration and score range, sort by any scorer,
//! paged on the server. Rows open the run's page; two ticked rows open the compare page.

use leptos::prelude::*;
use leptos_router::components::A;
use uuid::Uuid;

use crate::api::{RateRun, config_choices, list_runs};
use crate::components::leaderboard::RateButtons;
use crate::components::runs::num;
use crate::components::{ErrorNote, action_error, client_resource, loaded};
use crate::types::{RatingScale, RunListQuery, RunSummary, RunSummaryPage};

/// Runs per page.
const PAGE: i64 = 25;
/// Characters of an output shown in the list (the run's page shows it whole).
const OUTPUT_CHARS: usize = 280;

#[component]
pub fn RunsList(
    experiment_id: Uuid,
    scorer_names: Vec<String>,
    /// Human-rating scorers, for the rate buttons (empty: no rating column).
    humans: Vec<(String, RatingScale)>,
    rate: ServerAction<RateRun>,
    /// Changes when runs or ratings change, so the list reloads.
    #[prop(into)]
    changed: Signal<usize>,
) -> impl IntoView {
    let status = RwSignal::new(String::new());
    let config = RwSignal::new(String::new());
    let score_by = RwSignal::new(String::new());
    let min = RwSignal::new(String::new());
    let max = RwSignal::new(String::new());
    let sort = RwSignal::new(String::new());
    let offset = RwSignal::new(0i64);
    let picked = RwSignal::new(Vec::<Uuid>::new());
    let local_error = RwSignal::new(None::<String>);
    let bound = move |s: RwSignal<String>, field: &str| -> Result<Option<f64>, String> {
        let t = s.get();
        if t.trim().is_empty() {
            return Ok(None);
        }
        t.trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| format!("{field}: must be a number from 0 to 1"))
    };
    let query = Memo::new(move |_| {
        let (lo, hi) = (bound(min, "min_score"), bound(max, "max_score"));
        match (lo, hi) {
            (Ok(min_score), Ok(max_score)) => Ok(RunListQuery {
                status: status.get(),
                config_key: config.get(),
                item_id: String::new(),
                score_by: score_by.get(),
                min_score,
                max_score,
                sort: sort.get(),
                limit: PAGE,
                offset: offset.get(),
            }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    });
    Effect::new(move |_| local_error.set(query.get().err()));
    let runs = client_resource(
        move || (changed.get(), query.get()),
        move |(_, q)| async move {
            match q {
                Ok(q) => list_runs(experiment_id, q).await,
                Err(_) => Ok(RunSummaryPage {
                    runs: Vec::new(),
                    total: 0,
                }),
            }
        },
    );
    let configs = client_resource(
        move || changed.get(),
        move |_| config_choices(experiment_id),
    );
    // Any change of filter starts again at the first page.
    let reset = move || offset.set(0);
    let compare = move || {
        let p = picked.get();
        (p.len() == 2)
            .then(|| format!("/experiments/{experiment_id}/compare?a={}&b={}", p[0], p[1]))
    };
    let rating = !humans.is_empty();
    let humans = StoredValue::new(humans);
    let rate_error = action_error(rate);
    // The score the range, the score sort and the Score column use.
    let which = move || {
        let s = score_by.get();
        if s.is_empty() {
            "weighted score".to_owned()
        } else {
            s
        }
    };
    view! {
        <section class="card" data-testid="runs-list">
            <div class="card-head"><h2>"Runs"</h2>
                {move || compare().map(|href| view! { <A href=href attr:class="button primary" attr:data-testid="compare-picked">"Compare the two ticked runs"</A> })}
            </div>
            <form class="filters" on:submit=|ev| ev.prevent_default() aria-label="Filter runs">
                <label>"Status"
                    <select data-field="status" on:change=move |ev| { status.set(event_target_value(&ev)); reset(); }>
                        <option value="">"any"</option>
                        {["completed", "cached", "failed", "running", "pending"].map(|s| view! { <option value=s>{s}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Configuration"
                    <select data-field="config_key" prop:value=move || config.get()
                        on:change=move |ev| { config.set(event_target_value(&ev)); reset(); }>
                        <option value="">"any"</option>
                        {move || configs.get().and_then(|r| r.ok()).unwrap_or_default().into_iter()
                            .map(|(k, l)| { let selected = k == config.get_untracked(); view! { <option value=k selected=selected>{l}</option> } }).collect_view()}
                    </select>
                </label>
                <label>"Score of"
                    <select data-field="score_by" on:change=move |ev| { score_by.set(event_target_value(&ev)); reset(); }>
                        <option value="">"weighted score"</option>
                        {scorer_names.iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"from"
                    <input type="number" min="0" max="1" step="0.05" data-field="min_score" class="narrow" data-read=""
                        prop:value=move || min.get() on:change=move |ev| { min.set(event_target_value(&ev)); reset(); }/>
                </label>
                <label>"to"
                    <input type="number" min="0" max="1" step="0.05" data-field="max_score" class="narrow" data-read=""
                        prop:value=move || max.get() on:change=move |ev| { max.set(event_target_value(&ev)); reset(); }/>
                </label>
                <label>"Sort"
                    <select data-field="sort" on:change=move |ev| { sort.set(event_target_value(&ev)); reset(); }>
                        <option value="">"newest first"</option>
                        <option value="created_at">"oldest first"</option>
                        <option value="item">"by item"</option>
                        <option value="-score">{move || format!("{}, best first", which())}</option>
                        <option value="score">{move || format!("{}, worst first", which())}</option>
                        <option value="-duration_ms">"slowest first"</option>
                        <option value="-tokens">"most tokens first"</option>
                        <option value="-cost">"most expensive first"</option>
                    </select>
                </label>
            </form>
            {move || local_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <ErrorNote error=rate_error/>
            {loaded(runs, move |page| {
                let (total, shown) = (page.total, page.runs.len() as i64);
                if page.runs.is_empty() && offset.get_untracked() > 0 {
                    return view! {
                        <p class="empty">"No runs on this page. "
                            <button type="button" on:click=move |_| offset.set(0)>"Back to the first page"</button>
                        </p>
                    }.into_any();
                }
                if page.runs.is_empty() {
                    let filtered = query.with_untracked(|q| q.as_ref().is_ok_and(|q| {
                        !(q.status.is_empty() && q.config_key.is_empty() && q.min_score.is_none() && q.max_score.is_none())
                    }));
                    let text = if filtered { "No runs match." } else { "No runs yet." };
                    return view! { <p class="empty">{text}</p> }.into_any();
                }
                let at = offset.get_untracked();
                view! {
                    <div class="scroll" tabindex="0">
                    <table class="table runs" data-testid="runs">
                        <thead><tr>
                            <th scope="col"><span class="sr-only">"Pick to compare"</span></th>
                            <th scope="col">"Item"</th><th scope="col">"Status"</th><th scope="col">"Configuration"</th>
                            <th scope="col">"Tokens"</th><th scope="col">"ms"</th><th scope="col">"Cost"</th><th scope="col">{which()}</th>
                            <th scope="col">"Output"</th>{rating.then(|| view! { <th scope="col">"Rate"</th> })}
                        </tr></thead>
                        <tbody>{page.runs.into_iter().map(|r| row(r, score_by.get_untracked(), picked, rating.then(|| humans.get_value()), rate)).collect_view()}</tbody>
                    </table>
                    </div>
                    <nav class="pager" aria-label="Run pages">
                        <button type="button" disabled=move || offset.get() == 0
                            on:click=move |_| offset.update(|o| *o = (*o - PAGE).max(0))>"← newer page"</button>
                        <span class="muted" data-testid="runs-range">{format!("runs {}–{} of {total}", at + 1, at + shown)}</span>
                        <button type="button" disabled=move || offset.get() + PAGE >= total
                            on:click=move |_| offset.update(|o| if *o + PAGE < total { *o += PAGE })>"next page →"</button>
                    </nav>
                }.into_any()
            })}
        </section>
    }
}

fn row(
    r: RunSummary,
    score_by: String,
    picked: RwSignal<Vec<Uuid>>,
    humans: Option<Vec<(String, RatingScale)>>,
    rate: ServerAction<RateRun>,
) -> impl IntoView {
    let id = r.run.id;
    let mut output = r.run.error.clone().or(r.output.clone()).unwrap_or_default();
    if output.chars().count() > OUTPUT_CHARS {
        output = output.chars().take(OUTPUT_CHARS).collect::<String>() + "…";
    }
    let rated = matches!(r.run.status.as_str(), "completed" | "cached");
    let score_title = r
        .scores
        .iter()
        .map(|(k, v)| format!("{k}: {v:.3}"))
        .collect::<Vec<_>>()
        .join(", ");
    let item = r.run.item_index + 1;
    let toggle = move |_| {
        picked.update(|p| {
            if let Some(at) = p.iter().position(|x| *x == id) {
                p.remove(at);
            } else {
                p.push(id);
                if p.len() > 2 {
                    p.remove(0);
                }
            }
        })
    };
    view! {
        <tr data-testid="run-row" data-run=id.to_string()>
            <td><input type="checkbox" data-read="" aria-label=format!("Pick the run of item {item} to compare")
                prop:checked=move || picked.with(|p| p.contains(&id)) on:change=toggle/></td>
            <td><A href=format!("/runs/{id}")>{format!("#{item}")}</A>{(r.run.repeat_index > 0).then(|| format!(" (#{})", r.run.repeat_index + 1))}</td>
            <td><span class=format!("status {}", r.run.status)>{r.run.status.clone()}</span></td>
            <td class="small">{r.label.clone()}</td>
            <td>{r.run.tokens_in + r.run.tokens_out}</td>
            <td>{r.run.duration_ms.map(|d| d.to_string()).unwrap_or_default()}</td>
            <td>{r.run.cost_estimate.map_or("–".to_owned(), |c| format!("${c:.4}"))}</td>
            <td title=score_title>{num(if score_by.is_empty() { r.weighted_score } else { r.scores.get(&score_by).copied() })}</td>
            <td class="output">{output}</td>
            {humans.map(|h| view! { <td>{rated.then(|| view! { <RateButtons run_id=id scorers=h rate/> })}</td> })}
        </tr>
    }
}
