//! The experiment builder: `/projects/:id/experiments/new` creates an experiment,
//! `/experiments/:id/edit` edits one. Sample data, stages (with what each may vary), scorers,
//! then preview and start a sweep. The form holds everything until a save succeeds: a refused
//! save keeps every change and shows its error at the control it names.

mod data;
mod launch;
mod stages;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;
use uuid::Uuid;

use crate::api::{CreateExperiment, UpdateExperiment, get_experiment, list_endpoints, list_items};
use crate::components::editor::draft::{Bad, StageDraft, Text, space_of};
use crate::components::editor::scorers::{ScorerDraft, ScorersEditor};
use crate::components::editor::space::{TextField, param_names};
use crate::components::editor::{FieldErrors, SaveError};
use crate::components::error_view;
use crate::components::shell::{AppShell, can_write};
use crate::types::{
    Endpoint, EndpointKind, Experiment, ExperimentUpdate, Item, NewExperiment, SampleItem,
};

type Start =
    crate::components::PageResource<(Option<Uuid>, Vec<Endpoint>, Option<(Experiment, Vec<Item>)>)>;

/// Stored items the builder shows (the rest are counted).
pub const ITEMS_SHOWN: i64 = 20;

#[component]
pub fn NewExperimentPage() -> impl IntoView {
    let data = start(true);
    view! {
        <Title text="New experiment · PromptLooper"/>
        <AppShell><Load creating=true data/></AppShell>
    }
}

#[component]
pub fn EditExperimentPage() -> impl IntoView {
    let data = start(false);
    view! {
        <Title text="Edit experiment · PromptLooper"/>
        <AppShell><Load creating=false data/></AppShell>
    }
}

/// What the builder starts from: the endpoints, and the experiment when editing. Created in the
/// page, outside every Suspense (the server and the browser number it alike).
fn start(creating: bool) -> Start {
    let id = crate::components::id_param();
    crate::components::page_resource(id, move |id| async move {
        let endpoints = list_endpoints().await?;
        let existing = match (creating, id) {
            (false, Some(id)) => {
                let e = get_experiment(id).await?;
                let page = list_items(id, ITEMS_SHOWN, 0, None, None).await?;
                Some((e, page.items))
            }
            _ => None,
        };
        Ok((id, endpoints, existing))
    })
}

#[component]
fn Load(creating: bool, data: Start) -> impl IntoView {
    if !can_write() {
        return view! {
            <h1>"Experiment builder"</h1>
            <p class="empty">"Guests can read experiments but not create or change them."</p>
        }
        .into_any();
    }
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok((Some(project_id), endpoints, None)) if creating => {
                        view! { <Builder project_id endpoints existing=None/> }.into_any()
                    }
                    Ok((_, endpoints, Some((e, preview)))) => {
                        view! { <Builder project_id=e.project_id endpoints existing=Some(e) preview/> }.into_any()
                    }
                    Ok(_) => view! { <p class="error">"No such project or experiment."</p> }.into_any(),
                    Err(e) => error_view(e),
                }
            })}
        </Transition>
    }
    .into_any()
}

/// Everything the form holds.
#[derive(Clone, Copy)]
struct Draft {
    name: Text,
    description: Text,
    /// A new experiment's items (an existing one's are stored apart, imported as they come).
    items: RwSignal<Vec<SampleItem>>,
    stages: RwSignal<Vec<StageDraft>>,
    scorers: RwSignal<Vec<ScorerDraft>>,
}

impl Draft {
    fn new(existing: Option<&Experiment>, endpoints: &[Endpoint]) -> Draft {
        match existing {
            Some(e) => Draft {
                name: RwSignal::new(e.name.clone()),
                description: RwSignal::new(e.description.clone()),
                items: RwSignal::new(Vec::new()),
                stages: RwSignal::new(
                    e.pipeline_stages
                        .iter()
                        .enumerate()
                        .map(|(k, s)| StageDraft::new(s, e.parameter_space.stages.get(k)))
                        .collect(),
                ),
                scorers: RwSignal::new(
                    e.scoring_config
                        .as_array()
                        .map(|l| l.iter().map(ScorerDraft::from_json).collect())
                        .unwrap_or_default(),
                ),
            },
            None => {
                let (endpoint, model) = default_model(endpoints);
                Draft {
                    name: RwSignal::new(String::new()),
                    description: RwSignal::new(String::new()),
                    items: RwSignal::new(Vec::new()),
                    stages: RwSignal::new(vec![StageDraft::blank(0, endpoint, model)]),
                    scorers: RwSignal::new(Vec::new()),
                }
            }
        }
    }

    fn stages(&self) -> Result<Vec<crate::types::Stage>, Bad> {
        self.stages
            .get_untracked()
            .iter()
            .enumerate()
            .map(|(k, s)| s.to_stage(k))
            .collect()
    }

    fn scoring(&self) -> Result<serde_json::Value, Bad> {
        let list = self
            .scorers
            .get_untracked()
            .iter()
            .enumerate()
            .map(|(i, s)| s.to_json(&format!("scoring_config[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(serde_json::Value::Array(list))
    }

    fn to_new(self, project_id: Uuid) -> Result<NewExperiment, Bad> {
        Ok(NewExperiment {
            project_id,
            name: self.name.get_untracked().trim().to_owned(),
            description: self.description.get_untracked(),
            sample_data: self.items.get_untracked(),
            dataset_id: None,
            dataset: None,
            dataset_version: None,
            pipeline_stages: self.stages()?,
            parameter_space: space_of(&self.stages.get_untracked())?,
            scoring_config: self.scoring()?,
        })
    }

    fn to_update(self) -> Result<ExperimentUpdate, Bad> {
        Ok(ExperimentUpdate {
            name: Some(self.name.get_untracked().trim().to_owned()),
            description: Some(self.description.get_untracked()),
            // Stored items change by import, not with the form.
            sample_data: None,
            dataset_id: None,
            dataset: None,
            dataset_version: None,
            pipeline_stages: Some(self.stages()?),
            parameter_space: Some(space_of(&self.stages.get_untracked())?),
            scoring_config: Some(self.scoring()?),
        })
    }
}

/// The endpoint and model a new stage starts with: a simulated endpoint's mid model, else
/// the first endpoint with no model chosen yet.
pub fn default_model(endpoints: &[Endpoint]) -> (Option<Uuid>, &'static str) {
    match endpoints.iter().find(|e| e.kind == EndpointKind::Simulated) {
        Some(e) => (Some(e.id), "sim-medium"),
        None => (endpoints.first().map(|e| e.id), ""),
    }
}

#[component]
fn Builder(
    project_id: Uuid,
    endpoints: Vec<Endpoint>,
    existing: Option<Experiment>,
    /// An existing experiment's first stored items.
    #[prop(optional)]
    preview: Vec<Item>,
) -> impl IntoView {
    let errors = FieldErrors::new();
    provide_context(errors);
    let draft = Draft::new(existing.as_ref(), &endpoints);
    let stored = existing.as_ref().map(|e| data::Stored {
        experiment_id: e.id,
        summary: RwSignal::new(e.items.clone()),
        preview: RwSignal::new(preview),
    });
    let endpoints = Signal::stored(endpoints);
    let saved_id = existing.as_ref().map(|e| e.id);
    let dirty = RwSignal::new(false);
    let create = ServerAction::<CreateExperiment>::new();
    let update = ServerAction::<UpdateExperiment>::new();
    let saved_note = RwSignal::new(false);
    let save = move |_| {
        errors.clear();
        saved_note.set(false);
        let result = match saved_id {
            Some(id) => draft.to_update().map(|update_body| {
                update.dispatch(UpdateExperiment {
                    id,
                    update: update_body,
                });
            }),
            None => draft.to_new(project_id).map(|new| {
                create.dispatch(CreateExperiment { new });
            }),
        };
        if let Err((field, message)) = result {
            errors.show_field(&field, &message);
        }
    };
    let navigate = use_navigate();
    Effect::new(move |_| match create.value().get() {
        Some(Ok(e)) => {
            dirty.set(false);
            navigate(&format!("/experiments/{}/edit", e.id), Default::default());
        }
        Some(Err(e)) => errors.show(&e),
        None => {}
    });
    Effect::new(move |_| match update.value().get() {
        Some(Ok(_)) => {
            dirty.set(false);
            saved_note.set(true);
        }
        Some(Err(e)) => errors.show(&e),
        None => {}
    });
    warn_before_leaving(dirty);
    let pending = move || create.pending().get() || update.pending().get();
    let title = existing.as_ref().map_or("New experiment".to_owned(), |e| {
        format!("Edit “{}”", e.name)
    });
    let crumbs = match existing.clone() {
        Some(e) => view! {
            <p class="crumbs"><A href=format!("/projects/{}", e.project_id)>"Project"</A>" / "
                <A href=format!("/experiments/{}", e.id)>{e.name}</A>" / "</p>
        }
        .into_any(),
        None => view! { <p class="crumbs"><A href=format!("/projects/{project_id}")>"Project"</A>" / "</p> }.into_any(),
    };
    let has_endpoints = !endpoints.with_untracked(Vec::is_empty);
    let common = Memo::new(move |_| {
        if let Some(stored) = stored {
            return stored.summary.with(|s| s.common_fields.clone());
        }
        draft.items.with(|items| {
            let mut iter = items.iter();
            let Some(first) = iter.next() else {
                return Vec::new();
            };
            let mut keys: Vec<String> = first.input.keys().cloned().collect();
            for item in iter {
                keys.retain(|k| item.input.contains_key(k));
            }
            keys
        })
    });
    view! {
        {crumbs}
        <h1>{title}</h1>
        {(!has_endpoints).then(|| view! {
            <p class="error" role="alert">"There are no LLM endpoints yet. An admin adds them on the "<A href="/admin">"Admin"</A>" page."</p>
        })}
        <form class="builder" on:submit=move |ev| { ev.prevent_default(); save(()); }
            on:input=move |_| dirty.set(true) on:change=move |_| dirty.set(true)>
            <section class="card">
                <h2>"1. About"</h2>
                <div class="row">
                    <TextField label="Name" value=draft.name path="name"/>
                    <TextField label="Description" value=draft.description path="description"/>
                </div>
            </section>
            <section class="card">
                <h2>"2. Sample data"</h2>
                <data::DataSection items=draft.items stored/>
            </section>
            <section class="card">
                <h2>"3. Pipeline"</h2>
                <stages::StagesSection stages=draft.stages common endpoints/>
            </section>
            <section class="card">
                <h2>"4. Scorers"</h2>
                <ScorersEditor scorers=draft.scorers endpoints experiment_id=saved_id/>
            </section>
            <div class="save-bar">
                <button type="submit" class="primary" disabled=pending data-testid="save">
                    {move || if pending() { "Saving…" } else if saved_id.is_some() { "Save changes" } else { "Create experiment" }}
                </button>
                <span class="muted" role="status">{move || {
                    if dirty.get() { "Unsaved changes" } else if saved_note.get() { "Saved" } else { "" }
                }}</span>
                <SaveError errors/>
            </div>
        </form>
        {param_names()}
        {saved_id.map(|id| view! {
            <section class="card" id="launch">
                <h2>"5. Preview and start a sweep"</h2>
                <launch::Launch experiment_id=id dirty=dirty.read_only() endpoints
                    items=Signal::derive(move || match stored {
                        Some(s) => s.summary.with(|s| s.count as usize),
                        None => draft.items.with(Vec::len),
                    })/>
            </section>
        })}
    }
}

/// Asks before leaving the page with unsaved changes.
fn warn_before_leaving(dirty: RwSignal<bool>) {
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener_untyped("beforeunload", move |ev| {
            if dirty.get_untracked() {
                ev.prevent_default();
            }
        });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = dirty;
}
