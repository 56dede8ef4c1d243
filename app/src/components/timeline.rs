//! The activity timeline: events newest first, each in words, filterable by kind. Used by the
//! live view (one experiment) and the home page (every experiment).

use leptos::prelude::*;
use leptos_router::components::A;
use serde_json::Value;

use crate::types::Event;

/// Kinds of events a timeline can be narrowed to: (value, label, event types; empty: all).
pub const FILTERS: &[(&str, &str, &str)] = &[
    (
        "",
        "Key events",
        "run.completed,run.cached,run.failed,new_best_found,budget.exhausted,experiment.started,experiment.paused,experiment.resumed,experiment.redirected,experiment.stopped,experiment.completed,experiment.forked,configuration.approved,configuration.rejected,scoring.started,scoring.completed,scoring.failed,human_needed,configuration.pruned,prompt.proposed,prompt.proposal_failed",
    ),
    ("all", "Every event", ""),
    ("human", "Requests for a person", "human_needed"),
    (
        "runs",
        "Runs",
        "run.started,run.completed,run.cached,run.failed,stage.completed",
    ),
    ("best", "New bests", "new_best_found"),
    ("failures", "Failures", "run.failed,scoring.failed"),
    (
        "sweep",
        "Sweep steering",
        "experiment.started,experiment.paused,experiment.resumed,experiment.redirected,experiment.stopped,experiment.completed,experiment.forked",
    ),
    ("budget", "Budget stops", "budget.exhausted"),
    (
        "guided",
        "Guided search",
        "sweep.round,configuration.pruned,configuration.promoted,prompt.proposed,prompt.proposal_failed",
    ),
    (
        "scoring",
        "Scoring and marks",
        "scoring.started,scoring.completed,scoring.failed,configuration.approved,configuration.rejected",
    ),
];

/// The event types behind a filter value (empty: all).
pub fn filter_types(filter: &str) -> &'static str {
    FILTERS
        .iter()
        .find(|(v, _, _)| *v == filter)
        .map_or("", |(_, _, t)| t)
}

/// Whether an event passes a filter.
pub fn passes(e: &Event, filter: &str) -> bool {
    let types = filter_types(filter);
    types.is_empty() || types.split(',').any(|t| t == e.event_type)
}

/// How many events a timeline keeps.
pub const KEEP: usize = 300;

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn score(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_f64)
        .map_or("–".to_owned(), |s| format!("{s:.3}"))
}

/// An event in words.
pub fn describe(e: &Event) -> String {
    let p = &e.payload;
    let item = || {
        let item = p.get("item_index").and_then(Value::as_i64).unwrap_or(0) + 1;
        match p.get("repeat_index").and_then(Value::as_i64) {
            Some(r) if r > 0 => format!("item {item} (repeat {})", r + 1),
            _ => format!("item {item}"),
        }
    };
    let progress = || {
        p.get("progress")
            .map(|g| {
                format!(
                    " — {} of {} runs",
                    g.get("done").and_then(Value::as_i64).unwrap_or(0),
                    g.get("total").and_then(Value::as_i64).unwrap_or(0)
                )
            })
            .unwrap_or_default()
    };
    match e.event_type.as_str() {
        "run.started" => format!("Run started: {}", item()),
        "run.completed" => {
            let tokens = p.get("tokens_in").and_then(Value::as_i64).unwrap_or(0)
                + p.get("tokens_out").and_then(Value::as_i64).unwrap_or(0);
            format!("Run completed: {}, {tokens} tokens{}", item(), progress())
        }
        "run.cached" => format!("Run answered from the cache: {}{}", item(), progress()),
        "run.failed" => format!(
            "Run failed: {} — {}",
            item(),
            text(p, "error").unwrap_or_else(|| "no reason given".into())
        ),
        "stage.completed" => format!(
            "Stage {} completed: {}",
            p.get("stage_index").and_then(Value::as_i64).unwrap_or(0) + 1,
            item()
        ),
        "new_best_found" => format!(
            "New best: {} — score {} [{}–{}]",
            text(p, "label").unwrap_or_default(),
            score(p, "score"),
            score(p, "ci_low"),
            score(p, "ci_high")
        ),
        "budget.exhausted" => format!(
            "Budget reached: {} tokens, ${:.4} spent — the sweep is paused",
            p.get("token_count").and_then(Value::as_i64).unwrap_or(0),
            p.get("cost").and_then(Value::as_f64).unwrap_or(0.0)
        ),
        "experiment.started" if text(p, "strategy").as_deref() == Some("guided") => format!(
            "Guided sweep started: each configuration first tries {} of {} items (rungs {})",
            p.get("rungs")
                .and_then(|r| r.get(0))
                .and_then(Value::as_i64)
                .unwrap_or(0),
            p.get("items").and_then(Value::as_i64).unwrap_or(0),
            p.get("rungs")
                .and_then(Value::as_array)
                .map(|r| r
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(" → "))
                .unwrap_or_default()
        ),
        "experiment.started" => format!(
            "Sweep started ({}): {} configurations, {} runs, {} from the cache",
            text(p, "strategy").unwrap_or_default(),
            p.get("configurations").and_then(Value::as_i64).unwrap_or(0),
            p.get("runs").and_then(Value::as_i64).unwrap_or(0),
            p.get("cached_at_planning")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        ),
        "experiment.paused" => format!(
            "Sweep paused ({}){}",
            text(p, "reason").unwrap_or_else(|| "manual".into()),
            progress()
        ),
        "experiment.resumed" => format!("Sweep resumed{}", progress()),
        "experiment.redirected" => format!("Sweep redirected{}", progress()),
        "experiment.stopped" => format!("Sweep stopped{}", progress()),
        "experiment.completed" => match text(p, "reason") {
            Some(reason) => format!("Sweep completed: {reason}{}", progress()),
            None => format!("Sweep completed{}", progress()),
        },
        "configuration.pruned" => format!(
            "Pruned {}: {}",
            text(p, "label").unwrap_or_default(),
            text(p, "message").unwrap_or_default()
        ),
        "configuration.promoted" => format!(
            "Promoted {}: {}",
            text(p, "label").unwrap_or_default(),
            text(p, "message").unwrap_or_default()
        ),
        "sweep.round" | "prompt.proposed" | "prompt.proposal_failed" => {
            text(p, "message").unwrap_or_else(|| e.event_type.clone())
        }
        "experiment.forked" => {
            format!("Forked into “{}”", text(p, "fork_name").unwrap_or_default())
        }
        "human_needed" => {
            let by = text(p, "requested_by")
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            format!(
                "A person is needed{by}: {}",
                text(p, "reason").unwrap_or_default()
            )
        }
        "configuration.approved" => "Configuration approved".to_owned(),
        "configuration.rejected" => "Configuration rejected".to_owned(),
        "scoring.started" => format!(
            "Re-scoring {} runs",
            p.get("total").and_then(Value::as_i64).unwrap_or(0)
        ),
        "scoring.completed" => format!(
            "Re-scoring done: {} scores, {} errors",
            p.get("scored").and_then(Value::as_i64).unwrap_or(0),
            p.get("errors").and_then(Value::as_i64).unwrap_or(0)
        ),
        "scoring.failed" => format!(
            "Re-scoring failed: {}",
            text(p, "error").unwrap_or_default()
        ),
        other => other.to_owned(),
    }
}

/// The class that makes an event stand out: new bests, failures, budget stops.
fn tone(e: &Event) -> &'static str {
    match e.event_type.as_str() {
        "new_best_found" => "event best",
        "run.failed" | "scoring.failed" => "event bad",
        "budget.exhausted" | "human_needed" | "prompt.proposal_failed" => "event warn",
        "prompt.proposed" => "event best",
        t if t.starts_with("experiment.") => "event sweep",
        _ => "event",
    }
}

/// The filter picker.
#[component]
pub fn TimelineFilter(filter: RwSignal<String>) -> impl IntoView {
    view! {
        <label class="inline">"Show "
            <select aria-label="Show events of kind" data-testid="timeline-filter"
                on:change=move |ev| filter.set(event_target_value(&ev))>
                {FILTERS.iter().map(|(value, label, _)| view! {
                    <option value=*value selected=move || filter.get() == *value>{*label}</option>
                }).collect_view()}
            </select>
        </label>
    }
}

/// Events newest first. `names` turns an experiment id into a link (on the home page).
#[component]
pub fn Timeline(
    #[prop(into)] events: Signal<Vec<Event>>,
    filter: RwSignal<String>,
    #[prop(optional)] with_experiment: bool,
) -> impl IntoView {
    let shown = move || {
        let f = filter.get();
        events.with(|list| {
            list.iter()
                .filter(|e| passes(e, &f))
                .take(100)
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    view! {
        <ol class="timeline" data-testid="timeline" aria-live="off" aria-label="Events, newest first" tabindex="0">
            <For each=shown key=|e| e.id let:e>
                <li class=tone(&e) data-type=e.event_type.clone()>
                    <time datetime=e.created_at.to_rfc3339()>{e.created_at.format("%H:%M:%S").to_string()}</time>
                    <span class="what">{describe(&e)}</span>
                    {(with_experiment && e.experiment_id.is_some()).then(|| {
                        let id = e.experiment_id.unwrap_or_default();
                        view! { <A href=format!("/experiments/{id}/live") attr:class="small">"live view"</A> }
                    })}
                </li>
            </For>
        </ol>
        {move || events.with(|l| !l.iter().any(|e| passes(e, &filter.get()))).then(|| view! {
            <p class="empty small">"No events of this kind yet."</p>
        })}
    }
}

/// Merges events into a newest-first list: sorted by id, without duplicates, at most [`KEEP`].
pub fn merge(list: &mut Vec<Event>, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    list.extend(events);
    list.sort_unstable_by_key(|e| std::cmp::Reverse(e.id));
    list.dedup_by_key(|e| e.id);
    list.truncate(KEEP);
}

/// Keeps `feed` complete for the chosen kind: when the filter narrows, the newest events of
/// that kind are fetched too (older ones the live list may not hold). `experiment`: one
/// experiment's events, or every experiment's.
pub fn fetch_on_filter(
    filter: RwSignal<String>,
    experiment: Option<uuid::Uuid>,
    feed: RwSignal<Vec<Event>>,
) {
    Effect::new(move |_| {
        let types = filter_types(&filter.get());
        if !types.is_empty() {
            leptos::task::spawn_local(async move {
                if let Ok(page) = crate::api::list_events(experiment, types.to_owned(), 100).await {
                    feed.update(|f| merge(f, page.events));
                }
            });
        }
    });
}
