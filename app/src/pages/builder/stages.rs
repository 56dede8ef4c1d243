//! The builder's pipeline: 1–20 stages, added, removed and reordered; each with its endpoint,
//! model, templates (listing the variables it may use), parameters, and what a sweep may vary.

use leptos::prelude::*;
use uuid::Uuid;

use super::default_model;
use crate::components::editor::FieldMsg;
use crate::components::editor::draft::{ParamsDraft, StageDraft};
use crate::components::editor::space::{
    AreaField, EndpointField, ModelField, SpaceEditor, TextField, index_of,
};
use crate::types::Endpoint;

const MAX_STAGES: usize = 20;

#[component]
pub fn StagesSection(
    stages: RwSignal<Vec<StageDraft>>,
    /// Input fields every item has.
    common: Memo<Vec<String>>,
    endpoints: Signal<Vec<Endpoint>>,
) -> impl IntoView {
    let add = move || {
        stages.update(|list| {
            if list.len() < MAX_STAGES {
                let (endpoint, model) = endpoints.with_untracked(|e| default_model(e));
                let last = list.last().map(|s| {
                    (
                        Uuid::parse_str(&s.endpoint_id.get_untracked()).ok(),
                        s.model.get_untracked(),
                    )
                });
                let (endpoint, model) = match last {
                    Some((Some(e), m)) => (Some(e), m),
                    _ => (endpoint, model.to_owned()),
                };
                list.push(StageDraft::blank(list.len(), endpoint, &model));
            }
        })
    };
    view! {
        <div data-field="pipeline_stages">
            <FieldMsg path=Signal::derive(|| "pipeline_stages".to_owned())/>
        </div>
        <For each=move || stages.get() key=|s| s.key let:s>
            <StageCard s stages common endpoints/>
        </For>
        <button type="button" class="small" on:click=move |_| add()
            disabled=move || stages.with(|l| l.len() >= MAX_STAGES)>
            {crate::components::icons::icon("plus")}" Add stage"
        </button>
    }
}

#[component]
fn StageCard(
    s: StageDraft,
    stages: RwSignal<Vec<StageDraft>>,
    common: Memo<Vec<String>>,
    endpoints: Signal<Vec<Endpoint>>,
) -> impl IntoView {
    let k = index_of(stages, s.key, |s| s.key);
    let count = Signal::derive(move || stages.with(Vec::len));
    let base = Signal::derive(move || format!("pipeline_stages[{}]", k.get()));
    let f = move |name: &'static str| Signal::derive(move || format!("{}.{name}", base.get()));
    let space_at = Signal::derive(move || format!("parameter_space.stages[{}]", k.get()));
    let shift = move |by: isize| {
        stages.update(|l| {
            let i = k.get_untracked();
            let j = i as isize + by;
            if j >= 0 && (j as usize) < l.len() {
                l.swap(i, j as usize);
            }
        })
    };
    let variables = move || {
        let k = k.get();
        let mut vars: Vec<String> = common
            .get()
            .into_iter()
            .map(|f| format!("{{{{ input.{f} }}}}"))
            .collect();
        vars.push("{{ item.index }}".into());
        vars.push("{{ item.id }}".into());
        for j in 0..k {
            vars.push(format!("{{{{ stages[{j}].output }}}}"));
        }
        vars.into_iter()
            .map(|v| view! { <code class="chip">{v}</code> })
            .collect_view()
    };
    view! {
        <fieldset class="entry stage" data-field=move || base.get() data-testid="stage">
            <legend>{move || format!("Stage {} — {}", k.get() + 1, s.name.get())}</legend>
            <div class="row end">
                {move || {
                    let i = k.get();
                    let n = count.get();
                    view! {
                        <button type="button" class="small" disabled={i == 0} on:click=move |_| shift(-1)
                            aria-label=format!("Move stage {} up", i + 1)>{crate::components::icons::icon("up")}" Up"</button>
                        <button type="button" class="small" disabled={i + 1 >= n} on:click=move |_| shift(1)
                            aria-label=format!("Move stage {} down", i + 1)>{crate::components::icons::icon("down")}" Down"</button>
                        <button type="button" class="small danger-outline" disabled={n <= 1}
                            on:click=move |_| stages.update(|l| l.retain(|x| x.key != s.key))
                            aria-label=format!("Remove stage {}", i + 1)>{crate::components::icons::icon("trash")}" Remove"</button>
                    }
                }}
            </div>
            <FieldMsg path=base/>
            <div class="row">
                <TextField label="Name" value=s.name path=f("name")/>
                <EndpointField label="Endpoint" value=s.endpoint_id path=f("endpoint_id") endpoints/>
                <ModelField label="Model" value=s.model path=f("model") endpoint=s.endpoint_id/>
            </div>
            <p class="vars"><span class="muted">"Variables this stage can use: "</span>{variables}</p>
            <AreaField label="System template" value=s.system path=f("system") rows=2/>
            <AreaField label="User template" value=s.user path=f("user") rows=4/>
            <ParamsFields p=s.params at=f("params")/>
            <details class="space-box" open=move || s.space.prompts.with(|p| !p.is_empty())
                || s.space.models.with(|m| !m.is_empty()) || s.space.params.with(|p| !p.is_empty())>
                <summary>"What a sweep may vary in this stage"</summary>
                <SpaceEditor space=s.space at=space_at endpoints stage_endpoint=s.endpoint_id/>
            </details>
        </fieldset>
    }
}

/// A stage's own inference parameters (empty: the provider's default).
#[component]
fn ParamsFields(p: ParamsDraft, at: Signal<String>) -> impl IntoView {
    let f = move |name: &'static str| Signal::derive(move || format!("{}.{name}", at.get()));
    view! {
        <div class="params" data-field=move || at.get()>
            <FieldMsg path=at/>
            <div class="row">
                <TextField label="Temperature" value=p.temperature path=f("temperature") placeholder="default"/>
                <TextField label="Top p" value=p.top_p path=f("top_p") placeholder="default"/>
                <TextField label="Max tokens" value=p.max_tokens path=f("max_tokens") placeholder="default"/>
                <TextField label="Seed" value=p.seed path=f("seed") placeholder="none"/>
            </div>
            <div class="row">
                <AreaField label="Stop sequences (one per line)" value=p.stop path=f("stop") rows=1/>
                <AreaField label="Other parameters (JSON object)" value=p.extra path=f("extra") rows=1 placeholder="{\"presence_penalty\": 0.5}"/>
            </div>
        </div>
    }
}
