//! Preview and start a sweep of a saved experiment: strategy (grid; random with samples and
//! a seed; guided with its search, limits, racing and an optional prompt proposer), items,
//! repeats and a budget; the preview says what it would cost before anything is spent (for a
//! guided sweep, an estimate within its budget), and Start opens the live view.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use uuid::Uuid;

use crate::api::{PreviewSweep, StartSweep};
use crate::components::editor::draft::{parse_f64, parse_u64};
use crate::components::editor::space::TextField;
use crate::components::editor::{FieldErrors, SaveError};
use crate::components::progress::{money, tokens};
use crate::types::{
    Budget, Endpoint, GuidedSearch, Proposer, Strategy, SweepPreview, SweepRequest,
};

/// "1-3, 7" (1-based, as people count) → 0-based item indexes.
pub fn parse_items(text: &str, count: usize) -> Result<Option<Vec<usize>>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) else {
            return Err(format!("{part:?}: write item numbers like 1-5, 8"));
        };
        if a == 0 || b < a || b > count {
            return Err(format!("{part:?}: items are numbered 1 to {count}"));
        }
        out.extend((a - 1)..b);
    }
    Ok(Some(out))
}

#[component]
pub fn Launch(
    experiment_id: Uuid,
    dirty: ReadSignal<bool>,
    items: Signal<usize>,
    endpoints: Signal<Vec<Endpoint>>,
) -> impl IntoView {
    let errors = FieldErrors::new();
    provide_context(errors);
    let strategy = RwSignal::new("grid".to_owned());
    let samples = RwSignal::new("20".to_owned());
    let seed = RwSignal::new(String::new());
    let which = RwSignal::new(String::new());
    let repeats = RwSignal::new("1".to_owned());
    let max_tokens = RwSignal::new(String::new());
    let max_cost = RwSignal::new(String::new());
    let max_calls = RwSignal::new(String::new());
    let search = RwSignal::new("tpe".to_owned());
    let max_configs = RwSignal::new(String::new());
    let patience = RwSignal::new(String::new());
    let first_items = RwSignal::new(String::new());
    let proposer_endpoint = RwSignal::new(String::new());
    let proposer_model = RwSignal::new(String::new());
    let preview = ServerAction::<PreviewSweep>::new();
    let start = ServerAction::<StartSweep>::new();
    let request = move || -> Result<SweepRequest, (String, String)> {
        let strategy = if strategy.get_untracked() == "random" {
            Strategy::Random {
                samples: parse_u64(&samples.get_untracked(), "strategy.samples")?
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                    .ok_or_else(|| {
                        (
                            "strategy.samples".to_owned(),
                            "how many configurations to draw".to_owned(),
                        )
                    })?,
                seed: parse_u64(&seed.get_untracked(), "strategy.seed")?,
            }
        } else if strategy.get_untracked() == "guided" {
            let small = |text: &str, field: &str| -> Result<Option<u32>, (String, String)> {
                Ok(parse_u64(text, field)?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
            };
            let proposer = match (
                proposer_endpoint.get_untracked(),
                proposer_model.get_untracked().trim(),
            ) {
                (e, _) if e.is_empty() => None,
                (_, "") => {
                    return Err((
                        "strategy.proposer.model".to_owned(),
                        "which model writes the prompts".to_owned(),
                    ));
                }
                (e, m) => Some(Proposer {
                    endpoint_id: e.parse().map_err(|_| {
                        (
                            "strategy.proposer.endpoint_id".to_owned(),
                            "pick an endpoint".to_owned(),
                        )
                    })?,
                    model: m.to_owned(),
                    stage: None,
                    every: None,
                    count: None,
                    max_proposals: None,
                }),
            };
            Strategy::Guided {
                seed: parse_u64(&seed.get_untracked(), "strategy.seed")?,
                search: Some(match search.get_untracked().as_str() {
                    "random" => GuidedSearch::Random,
                    "agent" => GuidedSearch::Agent,
                    _ => GuidedSearch::Tpe,
                }),
                max_configurations: small(
                    &max_configs.get_untracked(),
                    "strategy.max_configurations",
                )?,
                patience: small(&patience.get_untracked(), "strategy.patience")?,
                batch: None,
                first_items: small(&first_items.get_untracked(), "strategy.first_items")?,
                reduction: None,
                proposer,
            }
        } else {
            Strategy::Grid
        };
        let items = parse_items(&which.get_untracked(), items.get_untracked())
            .map_err(|m| ("items".to_owned(), m))?
            .map(|list| list.into_iter().map(crate::types::ItemRef::Index).collect());
        let max_tokens = parse_u64(&max_tokens.get_untracked(), "budget.max_tokens")?;
        let max_cost = parse_f64(&max_cost.get_untracked(), "budget.max_cost")?;
        let max_calls = parse_u64(&max_calls.get_untracked(), "budget.max_calls")?;
        Ok(SweepRequest {
            strategy,
            repeats: parse_u64(&repeats.get_untracked(), "repeats")?.map(|r| r.min(1000) as u32),
            items,
            budget: (max_tokens.is_some() || max_cost.is_some() || max_calls.is_some()).then(
                || Budget {
                    max_tokens: max_tokens.map(|t| t.min(i64::MAX as u64) as i64),
                    max_cost,
                    max_calls: max_calls.map(|t| t.min(i64::MAX as u64) as i64),
                },
            ),
            parameter_space: None,
        })
    };
    let go = move |starting: bool| {
        errors.clear();
        match request() {
            Ok(request) if starting => {
                start.dispatch(StartSweep {
                    experiment_id,
                    request,
                });
            }
            Ok(request) => {
                preview.dispatch(PreviewSweep {
                    experiment_id,
                    request,
                });
            }
            Err((f, m)) => errors.show_field(&f, &m),
        }
    };
    Effect::new(move |_| {
        if let Some(Err(e)) = preview.value().get() {
            errors.show(&e);
        }
    });
    let navigate = use_navigate();
    Effect::new(move |_| match start.value().get() {
        Some(Ok(_)) => navigate(
            &format!("/experiments/{experiment_id}/live"),
            Default::default(),
        ),
        Some(Err(e)) => errors.show(&e),
        None => {}
    });
    let busy = move || preview.pending().get() || start.pending().get();
    view! {
        <div class="launch">
            <div class="row">
                <label class="field"><span>"Strategy"</span>
                    <select data-field="strategy" on:change=move |ev| strategy.set(event_target_value(&ev))>
                        <option value="grid" selected=move || strategy.get() == "grid">"grid: every combination"</option>
                        <option value="random" selected=move || strategy.get() == "random">"random: a sample of them"</option>
                        <option value="guided" selected=move || strategy.get() == "guided">"guided: results choose what runs next"</option>
                    </select>
                </label>
                <Show when=move || strategy.get() == "random">
                    <TextField label="Configurations to draw" value=samples path="strategy.samples"/>
                </Show>
                <Show when=move || strategy.get() != "grid">
                    <TextField label="Seed (optional)" value=seed path="strategy.seed" placeholder="random"/>
                </Show>
            </div>
            <Show when=move || strategy.get() == "guided">
                <p class="small muted">"A guided sweep tries configurations a model of the results so far suggests, first on a few items; one earns more items only while it can still beat the leader. Give it a budget of LLM calls."</p>
                <div class="row">
                    <label class="field"><span>"Search"</span>
                        <select data-field="strategy.search" on:change=move |ev| search.set(event_target_value(&ev))>
                            <option value="tpe" selected=move || search.get() == "tpe">"model-based (TPE)"</option>
                            <option value="random" selected=move || search.get() == "random">"random, raced"</option>
                            <option value="agent" selected=move || search.get() == "agent">"an agent's suggestions only"</option>
                        </select>
                    </label>
                    <TextField label="Max configurations" value=max_configs path="strategy.max_configurations" placeholder="no limit"/>
                    <TextField label="Patience (rounds)" value=patience path="strategy.patience" placeholder="30"/>
                    <TextField label="First items" value=first_items path="strategy.first_items" placeholder="an eighth"/>
                </div>
                <div class="row">
                    <label class="field"><span>"Prompt proposer"</span>
                        <select data-field="strategy.proposer.endpoint_id" on:change=move |ev| proposer_endpoint.set(event_target_value(&ev))>
                            <option value="" selected=move || proposer_endpoint.get().is_empty()>"none"</option>
                            {move || endpoints.get().into_iter().map(|e| {
                                let id = e.id.to_string();
                                let selected = id.clone();
                                view! { <option value=id selected=move || proposer_endpoint.get() == selected>{e.name}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <TextField label="Proposer model" value=proposer_model path="strategy.proposer.model" placeholder="e.g. sim-large"/>
                </div>
            </Show>
            <div class="row">
                {move || view! {
                    <TextField label=format!("Items (of {})", items.get()) value=which path="items" placeholder="all, or e.g. 1-5, 8"/>
                }}
                <TextField label="Repeats" value=repeats path="repeats"/>
                <TextField label="Budget: max tokens" value=max_tokens path="budget.max_tokens" placeholder="none"/>
                <TextField label="Budget: max cost ($)" value=max_cost path="budget.max_cost" placeholder="none"/>
                <TextField label="Budget: max LLM calls" value=max_calls path="budget.max_calls" placeholder="none"/>
            </div>
            <div class="row">
                <button type="button" class="small" on:click=move |_| go(false) disabled=move || busy() || dirty.get()
                    data-testid="preview">"Preview"</button>
                <button type="button" class="primary" on:click=move |_| go(true) disabled=move || busy() || dirty.get()
                    data-testid="start">{crate::components::icons::icon("play")}" Start sweep"</button>
                {move || dirty.get().then(|| view! { <span class="muted">"Save your changes first."</span> })}
            </div>
            <SaveError errors prefix="Refused"/>
            {move || preview.value().get().and_then(Result::ok).map(preview_view)}
        </div>
    }
}

fn preview_view(p: SweepPreview) -> impl IntoView {
    let cost = match p.estimated_cost {
        Some(c) => money(c),
        None => format!("unknown (no price for {})", p.unpriced_models.join(", ")),
    };
    let row =
        |label: &'static str, value: String| view! { <div><dt>{label}</dt><dd>{value}</dd></div> };
    let about = if p.estimate { "About " } else { "" };
    view! {
        {p.note.clone().map(|n| view! { <p class="small" data-testid="preview-note">{n}</p> })}
        <dl class="stats preview" data-testid="preview-result">
            {p.space_configurations.map(|n| row("Configurations in the space", n.to_string()))}
            {p.budget_calls.map(|n| row("Budget: LLM calls", n.to_string()))}
            {row(if p.estimate { "Configurations (estimate)" } else { "Configurations" }, format!("{about}{}", p.configurations))}
            {row(if p.estimate { "Runs (at most, estimate)" } else { "Runs" }, p.runs.to_string())}
            {row(if p.estimate { "Calls (at most, estimate)" } else { "Calls" }, p.calls.to_string())}
            {(!p.estimate).then(|| view! {
                {row("Cached runs", p.cached_runs.to_string())}
                {row("Calls from the cache", p.cached_calls.to_string())}
                {row("Calls to make", p.calls_to_make.to_string())}
            })}
            {row("Est. tokens", format!("{} in, {} out", tokens(p.estimated_tokens_in), tokens(p.estimated_tokens_out)))}
            {row("Est. cost", cost)}
            {p.seed.map(|s| row("Seed", s.to_string()))}
        </dl>
    }
}
