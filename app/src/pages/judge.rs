//! The pairwise judge on the compare page: an LLM reads both configurations' outputs item by
//! item and names the better one; shown as a win rate with its interval and every verdict.

use leptos::prelude::*;
use uuid::Uuid;

use crate::api::JudgePair;
use crate::components::{ErrorNote, action_error, endpoints_signal};
use crate::types::{PairwiseRequest, PairwiseResult};

#[component]
pub fn JudgeCard(experiment_id: Uuid, first: String, second: String) -> impl IntoView {
    let endpoints = endpoints_signal();
    let endpoint = RwSignal::new(String::new());
    let model = RwSignal::new(String::new());
    let judge = ServerAction::<JudgePair>::new();
    let error = action_error(judge);
    let local = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        local.set(None);
        let chosen = endpoint.get_untracked();
        let id = if chosen.is_empty() {
            endpoints.get_untracked().first().map(|e| e.id)
        } else {
            Uuid::parse_str(&chosen).ok()
        };
        let Some(endpoint_id) = id else {
            return local.set(Some(
                "endpoint_id: add an LLM endpoint first (Admin page)".into(),
            ));
        };
        let model = model.get_untracked().trim().to_owned();
        if model.is_empty() {
            return local.set(Some("model: name the judge's model".into()));
        }
        judge.dispatch(JudgePair {
            experiment_id,
            request: PairwiseRequest {
                first: first.clone(),
                second: second.clone(),
                endpoint_id,
                model,
                prompt: None,
                system: None,
                params: None,
                seed: None,
                items: None,
            },
        });
    };
    view! {
        <section class="card" data-testid="judge">
            <h2>"Pairwise judge"</h2>
            <p class="muted">"An LLM reads A's and B's outputs for each item (in random order) and names the better one. Its calls are cached."</p>
            <form class="row judge-form" on:submit=submit>
                <label>"Endpoint"
                    <select data-field="endpoint_id" on:change=move |ev| endpoint.set(event_target_value(&ev))>
                        {move || endpoints.get().into_iter().map(|e| view! { <option value=e.id.to_string()>{e.name.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Judge model"
                    <input data-field="model" placeholder="e.g. gpt-4o-mini" prop:value=move || model.get()
                        on:input=move |ev| model.set(event_target_value(&ev))/>
                </label>
                <button type="submit" class="primary" disabled=move || judge.pending().get()>
                    {move || if judge.pending().get() { "Judging…" } else { "Run the judge" }}
                </button>
            </form>
            {move || local.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <ErrorNote error/>
            {move || judge.value().get().and_then(|r| r.ok()).map(result_view)}
        </section>
    }
}

fn result_view(r: PairwiseResult) -> impl IntoView {
    let rate = match (r.win_rate, r.ci_low, r.ci_high) {
        (Some(w), Some(lo), Some(hi)) => format!(
            "A wins {:.0} % of decided items (95 % interval {:.0}–{:.0} %)",
            w * 100.0,
            lo * 100.0,
            hi * 100.0
        ),
        _ => "No decided items".to_owned(),
    };
    let counts = format!(
        "A won {}, B won {}, tied {}, unreadable {} · {} judge calls ({} from the cache){}",
        r.first_wins,
        r.second_wins,
        r.ties,
        r.failures,
        r.calls,
        r.cache_hits,
        r.p_value
            .map(|p| format!(" · sign test p = {p:.3}"))
            .unwrap_or_default()
    );
    let class = if r.significant {
        "verdict significant"
    } else {
        "verdict"
    };
    view! {
        <div data-testid="judge-result">
            <p class="judge-rate"><strong>{rate}</strong></p>
            <p class="meta">{counts}</p>
            <p class=class>{r.verdict.clone()}</p>
            <details>
                <summary>{format!("Each verdict ({})", r.details.len())}</summary>
                <div class="scroll" tabindex="0">
                <table class="table">
                    <thead><tr><th scope="col">"Item"</th><th scope="col">"Winner"</th><th scope="col">"Shown first"</th><th scope="col">"Judge's reply"</th></tr></thead>
                    <tbody>
                        {r.details.into_iter().map(|d| {
                            let winner = match d.winner.as_deref() {
                                Some("first") => "A".to_owned(),
                                Some("second") => "B".to_owned(),
                                Some("tie") => "tie".to_owned(),
                                _ => d.error.clone().unwrap_or_else(|| "unreadable".into()),
                            };
                            let shown = if d.shown_as_a == r.first { "A" } else { "B" };
                            view! {
                                <tr data-testid="verdict">
                                    <td>{d.item_index + 1}</td>
                                    <td>{winner}{d.cached.then_some(" (cached)")}</td>
                                    <td>{shown}</td>
                                    <td class="output">{d.reply.clone()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                </div>
            </details>
        </div>
    }
}
