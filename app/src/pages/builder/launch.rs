//! Preview and start a sweep of a saved experiment: strategy (grid, or random with samples and
//! a seed), items, repeats and a budget; the preview says what it would cost before anything
//! is spent, and Start opens the live view.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use uuid::Uuid;

use crate::api::{PreviewSweep, StartSweep};
use crate::components::editor::draft::{parse_f64, parse_u64};
use crate::components::editor::space::TextField;
use crate::components::editor::{FieldErrors, SaveError};
use crate::components::progress::{money, tokens};
use crate::types::{Budget, Strategy, SweepPreview, SweepRequest};

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
pub fn Launch(experiment_id: Uuid, dirty: ReadSignal<bool>, items: Signal<usize>) -> impl IntoView {
    let errors = FieldErrors::new();
    provide_context(errors);
    let strategy = RwSignal::new("grid".to_owned());
    let samples = RwSignal::new("20".to_owned());
    let seed = RwSignal::new(String::new());
    let which = RwSignal::new(String::new());
    let repeats = RwSignal::new("1".to_owned());
    let max_tokens = RwSignal::new(String::new());
    let max_cost = RwSignal::new(String::new());
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
        } else {
            Strategy::Grid
        };
        let items = parse_items(&which.get_untracked(), items.get_untracked())
            .map_err(|m| ("items".to_owned(), m))?
            .map(|list| list.into_iter().map(crate::types::ItemRef::Index).collect());
        let max_tokens = parse_u64(&max_tokens.get_untracked(), "budget.max_tokens")?;
        let max_cost = parse_f64(&max_cost.get_untracked(), "budget.max_cost")?;
        Ok(SweepRequest {
            strategy,
            repeats: parse_u64(&repeats.get_untracked(), "repeats")?.map(|r| r.min(1000) as u32),
            items,
            budget: (max_tokens.is_some() || max_cost.is_some()).then(|| Budget {
                max_tokens: max_tokens.map(|t| t.min(i64::MAX as u64) as i64),
                max_cost,
            }),
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
                    </select>
                </label>
                <Show when=move || strategy.get() == "random">
                    <TextField label="Configurations to draw" value=samples path="strategy.samples"/>
                    <TextField label="Seed (optional)" value=seed path="strategy.seed" placeholder="random"/>
                </Show>
            </div>
            <div class="row">
                {move || view! {
                    <TextField label=format!("Items (of {})", items.get()) value=which path="items" placeholder="all, or e.g. 1-5, 8"/>
                }}
                <TextField label="Repeats" value=repeats path="repeats"/>
                <TextField label="Budget: max tokens" value=max_tokens path="budget.max_tokens" placeholder="none"/>
                <TextField label="Budget: max cost ($)" value=max_cost path="budget.max_cost" placeholder="none"/>
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
    view! {
        <dl class="stats preview" data-testid="preview-result">
            {row("Configurations", p.configurations.to_string())}
            {row("Runs", p.runs.to_string())}
            {row("Calls", p.calls.to_string())}
            {row("Cached runs", p.cached_runs.to_string())}
            {row("Calls from the cache", p.cached_calls.to_string())}
            {row("Calls to make", p.calls_to_make.to_string())}
            {row("Est. tokens", format!("{} in, {} out", tokens(p.estimated_tokens_in), tokens(p.estimated_tokens_out)))}
            {row("Est. cost", cost)}
            {p.seed.map(|s| row("Seed", s.to_string()))}
        </dl>
    }
}
