//! The admin page's price table (edit, add, remove; runs are re-priced) and response cache
//! (statistics; forget everything or one experiment's entries).

use leptos::prelude::*;

use crate::api::{
    ClearCache, RemovePrice, SavePrice, experiment_choices, get_cache_stats, list_prices,
};
use crate::components::{ConfirmButton, ErrorNote, action_error, client_resource, loaded};
use crate::types::ModelPrice;

/// A price field's text as a number of dollars per million tokens, or the field's error.
fn dollars(text: &str, field: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{field}: must be a number of dollars, 0 or more"))
}

#[component]
pub fn PricesCard() -> impl IntoView {
    let save = ServerAction::<SavePrice>::new();
    let remove = ServerAction::<RemovePrice>::new();
    let prices = client_resource(
        move || (save.version().get(), remove.version().get()),
        |_| list_prices(),
    );
    let save_error = action_error(save);
    let remove_error = action_error(remove);
    let local = RwSignal::new(None::<String>);
    let submit = move |model: String, input: String, output: String| {
        local.set(None);
        match (
            dollars(&input, "input_per_million"),
            dollars(&output, "output_per_million"),
        ) {
            (Ok(i), Ok(o)) => {
                save.dispatch(SavePrice {
                    model,
                    input_per_million: i,
                    output_per_million: o,
                });
            }
            (Err(e), _) | (_, Err(e)) => local.set(Some(e)),
        }
    };
    let (new_model, new_in, new_out) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    view! {
        <section class="card" data-testid="prices">
            <h2>"Model prices"</h2>
            <p class="muted">"USD per million tokens. Cost estimates use the exact model name, else the longest priced name it extends with a dash (gpt-4o-2024-08-06 → gpt-4o). Changing a price re-prices every run on that model."</p>
            {loaded(prices, move |list: Vec<ModelPrice>| view! {
                <div class="scroll" tabindex="0">
                <table class="table prices">
                    <thead><tr><th scope="col">"Model"</th><th scope="col">"Input $/M"</th><th scope="col">"Output $/M"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|p| {
                            let input = RwSignal::new(p.input_per_million.to_string());
                            let output = RwSignal::new(p.output_per_million.to_string());
                            let (model, m2, m3) = (p.model.clone(), p.model.clone(), p.model.clone());
                            let question = format!("Remove the price of {}? Its runs then show no cost.", p.model);
                            view! {
                                <tr data-model=p.model.clone()>
                                    <th scope="row">{p.model.clone()}</th>
                                    <td><input type="number" min="0" step="any" class="narrow" aria-label=format!("Input price of {model}")
                                        prop:value=move || input.get() on:input=move |ev| input.set(event_target_value(&ev))/></td>
                                    <td><input type="number" min="0" step="any" class="narrow" aria-label=format!("Output price of {model}")
                                        prop:value=move || output.get() on:input=move |ev| output.set(event_target_value(&ev))/></td>
                                    <td><span class="row-actions">
                                        <button type="button" class="small" on:click=move |_| submit(m2.clone(), input.get_untracked(), output.get_untracked())>"Save"</button>
                                        <ConfirmButton label="Remove" question on_confirm=move || { remove.dispatch(RemovePrice { model: m3.clone() }); }/>
                                    </span></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                </div>
            })}
            <form class="inline-form" data-testid="price-form" on:submit=move |ev| {
                ev.prevent_default();
                submit(new_model.get_untracked(), new_in.get_untracked(), new_out.get_untracked());
            }>
                <input data-field="model" placeholder="model, e.g. gpt-4o" required maxlength="200" aria-label="Model"
                    prop:value=move || new_model.get() on:input=move |ev| new_model.set(event_target_value(&ev))/>
                <input type="number" min="0" step="any" class="narrow" data-field="input_per_million" placeholder="in $/M" aria-label="Input price per million tokens"
                    prop:value=move || new_in.get() on:input=move |ev| new_in.set(event_target_value(&ev))/>
                <input type="number" min="0" step="any" class="narrow" data-field="output_per_million" placeholder="out $/M" aria-label="Output price per million tokens"
                    prop:value=move || new_out.get() on:input=move |ev| new_out.set(event_target_value(&ev))/>
                <button type="submit" class="primary">"Add price"</button>
            </form>
            {move || local.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <ErrorNote error=save_error/>
            <ErrorNote error=remove_error/>
        </section>
    }
}

#[component]
pub fn CacheCard() -> impl IntoView {
    let clear = ServerAction::<ClearCache>::new();
    let stats = client_resource(move || clear.version().get(), |_| get_cache_stats());
    let experiments = client_resource(|| (), |_| experiment_choices());
    let chosen = RwSignal::new(String::new());
    let error = action_error(clear);
    let cleared = move || {
        clear.value().get().and_then(|r| r.ok()).map(|n| {
            view! { <p class="ok" role="status">{format!("{n} cache entr{} forgotten.", if n == 1 { "y" } else { "ies" })}</p> }
        })
    };
    view! {
        <section class="card" data-testid="cache">
            <h2>"Response cache"</h2>
            {loaded(stats, |s| {
                let size = if s.bytes >= 1 << 20 { format!("{:.1} MB", s.bytes as f64 / 1048576.0) } else { format!("{:.1} KB", s.bytes as f64 / 1024.0) };
                let cells = [
                    ("Entries", s.entries.to_string()),
                    ("Responses held", size),
                    ("Tokens held", s.tokens.to_string()),
                    ("Hits / misses", format!("{} / {}", s.hits, s.misses)),
                    ("Hit rate", s.hit_rate.map_or("–".to_owned(), |r| format!("{:.1} %", r * 100.0))),
                    ("Oldest entry", s.oldest.map_or("–".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string())),
                ];
                view! {
                    <dl class="stats" data-testid="cache-stats">
                        {cells.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
                    </dl>
                    {(!s.by_model.is_empty()).then(|| view! {
                        <p class="meta">"By model: "{s.by_model.iter().map(|m| format!("{} {}", m.model, m.entries)).collect::<Vec<_>>().join(" · ")}</p>
                    })}
                }
            })}
            <div class="row">
                <label>"Experiment"
                    <select data-field="experiment_id" on:change=move |ev| chosen.set(event_target_value(&ev))>
                        <option value="">"choose…"</option>
                        {move || experiments.get().and_then(|r| r.ok()).unwrap_or_default().into_iter()
                            .map(|(id, name)| view! { <option value=id.to_string()>{name}</option> }).collect_view()}
                    </select>
                </label>
                <button type="button" disabled=move || chosen.get().is_empty() on:click=move |_| {
                    if let Ok(id) = uuid::Uuid::parse_str(&chosen.get_untracked()) {
                        clear.dispatch(ClearCache { experiment_id: Some(id) });
                    }
                }>"Forget this experiment's entries"</button>
                <ConfirmButton label="Forget every entry" question="Forget every cached response? Every next call goes to its provider."
                    on_confirm=move || { clear.dispatch(ClearCache { experiment_id: None }); }/>
            </div>
            {cleared}
            <ErrorNote error/>
        </section>
    }
}
