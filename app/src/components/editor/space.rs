//! Editing what a sweep may vary in one stage — prompt variants, models, parameter values or
//! ranges — and the model picker fed by an endpoint's model list. The builder shows one per
//! stage; the live view's redirect uses the same editor for what remains of a sweep.

use leptos::prelude::*;
use uuid::Uuid;

use super::FieldMsg;
use super::draft::{DimDraft, ModelDraft, SpaceDraft, Text, VariantDraft};
use super::next_key;
use crate::api::list_models;
use crate::components::icons::icon;
use crate::types::Endpoint;

/// The position of the entry with `key` in a keyed list, reactively.
pub fn index_of<T: Send + Sync + 'static>(
    list: RwSignal<Vec<T>>,
    key: u64,
    key_of: fn(&T) -> u64,
) -> Signal<usize> {
    Signal::derive(move || list.with(|l| l.iter().position(|x| key_of(x) == key).unwrap_or(0)))
}

/// A text input bound to `value`, carrying its field path.
#[component]
pub fn TextField(
    #[prop(into)] label: String,
    value: Text,
    #[prop(into)] path: Signal<String>,
    #[prop(optional, into)] placeholder: String,
    #[prop(optional, into)] kind: Option<String>,
) -> impl IntoView {
    let invalid = super::invalid(path);
    view! {
        <label class="field">
            <span>{label}</span>
            <input type=kind.unwrap_or_else(|| "text".into()) bind:value=value placeholder=placeholder
                data-field=move || path.get() aria-invalid=invalid/>
            <FieldMsg path/>
        </label>
    }
}

/// A template (or other long text) bound to `value`.
#[component]
pub fn AreaField(
    #[prop(into)] label: String,
    value: Text,
    #[prop(into)] path: Signal<String>,
    #[prop(optional, into)] placeholder: String,
    #[prop(default = 3)] rows: u32,
) -> impl IntoView {
    let invalid = super::invalid(path);
    view! {
        <label class="field wide">
            <span>{label}</span>
            <textarea rows=rows bind:value=value placeholder=placeholder spellcheck="false"
                data-field=move || path.get() aria-invalid=invalid></textarea>
            <FieldMsg path/>
        </label>
    }
}

/// An endpoint picker. `none_label`: what an empty choice means (absent: a choice is needed).
#[component]
pub fn EndpointField(
    #[prop(into)] label: String,
    value: Text,
    #[prop(into)] path: Signal<String>,
    #[prop(into)] endpoints: Signal<Vec<Endpoint>>,
    #[prop(optional, into)] none_label: Option<String>,
) -> impl IntoView {
    let invalid = super::invalid(path);
    let empty = none_label.unwrap_or_else(|| "choose…".into());
    view! {
        <label class="field">
            <span>{label}</span>
            <select data-field=move || path.get() aria-invalid=invalid
                on:change=move |ev| value.set(event_target_value(&ev))>
                <option value="" selected=move || value.get().is_empty()>{empty}</option>
                {move || endpoints.get().into_iter().map(|e| {
                    let id = e.id.to_string();
                    let selected = id.clone();
                    view! {
                        <option value=id selected=move || value.with(|v| *v == selected)>
                            {format!("{} ({})", e.name, e.kind.as_str())}
                        </option>
                    }
                }).collect_view()}
            </select>
            <FieldMsg path/>
        </label>
    }
}

/// A model name, with the models `endpoint` offers as suggestions (any name may be typed).
#[component]
pub fn ModelField(
    #[prop(into)] label: String,
    value: Text,
    #[prop(into)] path: Signal<String>,
    /// The endpoint whose models to suggest (a UUID, or empty).
    #[prop(into)]
    endpoint: Signal<String>,
) -> impl IntoView {
    let list_id = format!("models-{}", next_key());
    // Suggestions only: loaded in the browser, never part of the server's page.
    let models = crate::components::load_in_browser(
        move || Uuid::parse_str(&endpoint.get()).ok(),
        |id| async move {
            match id {
                Some(id) => list_models(id).await.ok(),
                None => None,
            }
        },
    );
    let invalid = super::invalid(path);
    let note = move || {
        models
            .get()
            .and_then(|t| t.error)
            .map(|e| view! { <small class="muted">{format!("Could not list models ({e}); type a name.")}</small> })
    };
    view! {
        <label class="field">
            <span>{label}</span>
            <input type="text" list=list_id.clone() bind:value=value autocomplete="off"
                data-field=move || path.get() aria-invalid=invalid/>
            <datalist id=list_id>
                {move || models.get().map(|t| t.models.into_iter().map(|m| view! {
                    <option value=m.clone()></option>
                }).collect_view())}
            </datalist>
            {note}
            <FieldMsg path/>
        </label>
    }
}

/// A small button with an icon and a text label for screen readers and people.
pub fn small_button(
    label: &'static str,
    glyph: &'static str,
    title: String,
    on_click: impl Fn() + 'static,
) -> impl IntoView {
    view! {
        <button type="button" class="small" title=title on:click=move |_| on_click()>
            {icon(glyph)}<span class="label-text">{label}</span>
        </button>
    }
}

/// What a sweep may vary in one stage. `at`: its path, e.g. `parameter_space.stages[0]`;
/// `stage_endpoint`: the stage's own endpoint (models default to it).
#[component]
pub fn SpaceEditor(
    space: SpaceDraft,
    #[prop(into)] at: Signal<String>,
    #[prop(into)] endpoints: Signal<Vec<Endpoint>>,
    #[prop(into)] stage_endpoint: Signal<String>,
) -> impl IntoView {
    let SpaceDraft {
        prompts,
        models,
        params,
    } = space;
    let add_variant = move || {
        prompts.update(|p| {
            let n = p.len() + 1;
            p.push(VariantDraft::new(&crate::types::PromptVariant {
                name: format!("variant {n}"),
                system: None,
                user: None,
            }));
        })
    };
    let add_model = move || {
        models.update(|m| {
            m.push(ModelDraft {
                key: next_key(),
                endpoint_id: RwSignal::new(String::new()),
                model: RwSignal::new(String::new()),
            })
        })
    };
    let add_param = move || {
        params.update(|p| {
            p.push(DimDraft::new(
                if p.is_empty() { "temperature" } else { "" },
                &crate::types::Dimension::Values(Vec::new()),
            ))
        })
    };
    view! {
        <div class="space" data-field=move || at.get()>
            <FieldMsg path=at/>
            <h4>"Prompt variants"</h4>
            <p class="hint">"Each variant replaces the stage's system and/or user template; empty keeps the stage's."</p>
            <For each=move || prompts.get() key=|v| v.key let:v>
                {
                    let j = index_of(prompts, v.key, |v| v.key);
                    let base = Signal::derive(move || format!("{}.prompts[{}]", at.get(), j.get()));
                    let f = move |name: &'static str| Signal::derive(move || format!("{}.{name}", base.get()));
                    view! {
                        <fieldset class="entry" data-field=move || base.get()>
                            <legend>{move || format!("Variant {}", j.get() + 1)}</legend>
                            <FieldMsg path=base/>
                            <TextField label="Name" value=v.name path=f("name")/>
                            <AreaField label="System template" value=v.system path=f("system") placeholder="(the stage's)"/>
                            <AreaField label="User template" value=v.user path=f("user") placeholder="(the stage's)"/>
                            {small_button("Remove", "trash", "Remove this variant".into(), move || prompts.update(|p| p.retain(|x| x.key != v.key)))}
                        </fieldset>
                    }
                }
            </For>
            {small_button("Add prompt variant", "plus", "Add a prompt variant".into(), add_variant)}
            <h4>"Models"</h4>
            <For each=move || models.get() key=|m| m.key let:m>
                {
                    let j = index_of(models, m.key, |m| m.key);
                    let base = Signal::derive(move || format!("{}.models[{}]", at.get(), j.get()));
                    let f = move |name: &'static str| Signal::derive(move || format!("{}.{name}", base.get()));
                    let endpoint = Signal::derive(move || {
                        let own = m.endpoint_id.get();
                        if own.is_empty() { stage_endpoint.get() } else { own }
                    });
                    view! {
                        <div class="entry row" data-field=move || base.get()>
                            <EndpointField label="Endpoint" value=m.endpoint_id path=f("endpoint_id") endpoints none_label="the stage's"/>
                            <ModelField label="Model" value=m.model path=f("model") endpoint/>
                            {small_button("Remove", "trash", "Remove this model".into(), move || models.update(|l| l.retain(|x| x.key != m.key)))}
                        </div>
                    }
                }
            </For>
            {small_button("Add model", "plus", "Add a model".into(), add_model)}
            <h4>"Parameters"</h4>
            <p class="hint">"Values are listed with commas (a grid tries each); a range is drawn from at random (with a step, a grid)."</p>
            <div data-field=move || format!("{}.params", at.get())>
                <FieldMsg path=Signal::derive(move || format!("{}.params", at.get()))/>
            </div>
            <For each=move || params.get() key=|d| d.key let:d>
                {
                    let path = Signal::derive(move || format!("{}.params.{}", at.get(), d.name.get().trim()));
                    let invalid = super::invalid(path);
                    view! {
                        <div class="entry row param">
                            <label class="field"><span>"Parameter"</span>
                                <input type="text" bind:value=d.name list="param-names"/>
                            </label>
                            <label class="field"><span>"Sweep"</span>
                                <select on:change=move |ev| d.mode.set(event_target_value(&ev))>
                                    <option value="values" selected=move || d.mode.get() != "range">"values"</option>
                                    <option value="range" selected=move || d.mode.get() == "range">"range"</option>
                                </select>
                            </label>
                            <Show when=move || d.mode.get() == "range"
                                fallback=move || view! {
                                    <label class="field grow"><span>"Values"</span>
                                        <input type="text" bind:value=d.values placeholder="0.1, 0.5, 0.9"
                                            data-field=move || path.get() aria-invalid=invalid/>
                                    </label>
                                }>
                                <label class="field"><span>"Min"</span>
                                    <input type="text" inputmode="decimal" bind:value=d.min data-field=move || path.get() aria-invalid=invalid/></label>
                                <label class="field"><span>"Max"</span>
                                    <input type="text" inputmode="decimal" bind:value=d.max/></label>
                                <label class="field"><span>"Step (optional)"</span>
                                    <input type="text" inputmode="decimal" bind:value=d.step/></label>
                            </Show>
                            {small_button("Remove", "trash", "Remove this parameter".into(), move || params.update(|l| l.retain(|x| x.key != d.key)))}
                            <FieldMsg path/>
                        </div>
                    }
                }
            </For>
            {small_button("Add parameter", "plus", "Add a parameter to sweep".into(), add_param)}
        </div>
    }
}

/// Suggestions for parameter names (rendered once per page: `list="param-names"`).
pub fn param_names() -> impl IntoView {
    view! {
        <datalist id="param-names">
            <option value="temperature"></option><option value="top_p"></option>
            <option value="max_tokens"></option><option value="seed"></option>
            <option value="presence_penalty"></option><option value="frequency_penalty"></option>
        </datalist>
    }
}
