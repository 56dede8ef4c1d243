//! `/experiments/:id`: an experiment's pipeline and sample data, a form to run one
//! configuration (prompt variant, model, temperature per stage), its leaderboard, its charts
//! and its runs (filtered, sorted, paged; with their scores and ratings to give).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{RateRun, RunExperiment, get_experiment, list_items};
use crate::components::charts::ChartsCard;
use crate::components::icons::icon;
use crate::components::leaderboard::{LeaderboardCard, human_scorers, scorers};
use crate::components::run_list::RunsList;
use crate::components::shell::{AppShell, can_write};
use crate::components::{ErrorNote, action_error, error_view, id_param};
use crate::types::{Experiment, ItemPage, NewRun, RunBatch, StageChoice};

/// Items shown on the experiment page (the rest are counted).
const SAMPLES_SHOWN: i64 = 20;

#[component]
pub fn ExperimentPage() -> impl IntoView {
    // The page's data is created here, outside every Suspense (see `load_in_browser`).
    let id = id_param();
    let experiment = crate::components::page_resource(id, |id| async move {
        match id {
            Some(id) => {
                let e = get_experiment(id).await?;
                let items = list_items(id, SAMPLES_SHOWN, 0, None, None).await?;
                Ok(Some((e, items)))
            }
            None => Ok(None),
        }
    });
    view! {
        <AppShell>
            <ExperimentView experiment/>
        </AppShell>
    }
}

#[component]
fn ExperimentView(
    experiment: crate::components::PageResource<Option<(Experiment, ItemPage)>>,
) -> impl IntoView {
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match experiment.await {
                    Ok(Some((e, items))) => view! { <Detail experiment=e items/> }.into_any(),
                    Ok(None) => view! { <p class="error">"No such experiment."</p> }.into_any(),
                    Err(e) => error_view(e),
                }
            })}
        </Transition>
    }
}

#[component]
fn Detail(experiment: Experiment, items: ItemPage) -> impl IntoView {
    let run = ServerAction::<RunExperiment>::new();
    let rate = ServerAction::<RateRun>::new();
    let changed = Signal::derive(move || run.version().get() + rate.version().get());
    let humans = human_scorers(&experiment.scoring_config);
    let rating = can_write() && !humans.is_empty();
    let scorer_names: Vec<String> = scorers(&experiment.scoring_config)
        .into_iter()
        .map(|s| s.name)
        .collect();
    let title = format!("{} · PromptLooper", experiment.name);
    let project_href = format!("/projects/{}", experiment.project_id);
    view! {
        <Title text=title/>
        <p class="crumbs"><A href="/projects">"Projects"</A>" / "<A href=project_href>"Project"</A>" / "</p>
        <div class="page-head">
            <h1>{experiment.name.clone()}</h1>
            <div class="head-badges">
                <span class=format!("status {}", experiment.status)>{experiment.status.clone()}</span>
                <A href=format!("/experiments/{}/live", experiment.id) attr:class="button">{icon("live")}" Live view"</A>
                {can_write().then(|| view! {
                    <A href=format!("/experiments/{}/edit", experiment.id) attr:class="button">{icon("edit")}" Edit"</A>
                    <A href=format!("/experiments/{}/edit#launch", experiment.id) attr:class="button primary">{icon("play")}" Sweep…"</A>
                })}
            </div>
        </div>
        <p class="muted">{experiment.description.clone()}</p>
        {can_write().then(|| view! { <RunForm experiment=experiment.clone() run/> })}
        <LeaderboardCard experiment_id=experiment.id scorer_names=scorer_names.clone() changed/>
        <ChartsCard experiment_id=experiment.id changed/>
        <RunsList experiment_id=experiment.id scorer_names=scorer_names.clone() humans=if rating { humans } else { Vec::new() } rate changed/>
        <Pipeline experiment=experiment.clone()/>
        <Samples experiment items/>
    }
}

/// Per-stage choices and a Run button. Empty choices keep the stage's own settings.
#[component]
fn RunForm(experiment: Experiment, run: ServerAction<RunExperiment>) -> impl IntoView {
    let stages = experiment.pipeline_stages.len();
    let variant: Vec<RwSignal<String>> =
        (0..stages).map(|_| RwSignal::new(String::new())).collect();
    let model: Vec<RwSignal<String>> = (0..stages).map(|_| RwSignal::new(String::new())).collect();
    let temperature: Vec<RwSignal<String>> =
        (0..stages).map(|_| RwSignal::new(String::new())).collect();
    let repeats = RwSignal::new("1".to_owned());
    let local_error = RwSignal::new(None::<String>);
    let error = action_error(run);
    let id = experiment.id;
    let (v, m, t) = (variant.clone(), model.clone(), temperature.clone());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        local_error.set(None);
        let mut choices = Vec::with_capacity(stages);
        for k in 0..stages {
            let mut choice = StageChoice::default();
            let variant = v[k].get_untracked();
            let model = m[k].get_untracked();
            let temp = t[k].get_untracked();
            choice.variant = (!variant.is_empty()).then_some(variant);
            choice.model = (!model.is_empty()).then_some(model);
            if !temp.trim().is_empty() {
                match temp.trim().parse::<f64>() {
                    Ok(value) => {
                        choice.params =
                            Some([("temperature".to_owned(), serde_json::json!(value))].into())
                    }
                    Err(_) => {
                        local_error.set(Some(format!(
                            "stage {}: temperature must be a number",
                            k + 1
                        )));
                        return;
                    }
                }
            }
            choices.push(choice);
        }
        let repeats = repeats.get_untracked().trim().parse::<u32>().ok();
        run.dispatch(RunExperiment {
            run: NewRun {
                experiment_id: id,
                stages: choices,
                items: None,
                repeats,
            },
        });
    };
    let items = experiment.items.count as usize;
    let rows = experiment
        .pipeline_stages
        .iter()
        .enumerate()
        .map(|(k, stage)| {
            let space = experiment.parameter_space.stages.get(k).cloned().unwrap_or_default();
            let (variant, model, temperature) = (variant[k], model[k], temperature[k]);
            let default_temp = stage.params.temperature.map(|t| t.to_string()).unwrap_or_else(|| "default".into());
            view! {
                <div class="stage-choice">
                    <strong>{format!("{}. {}", k + 1, stage.name)}</strong>
                    <label>"Prompt"
                        <select aria-label=format!("Prompt for stage {}", k + 1) on:change=move |ev| variant.set(event_target_value(&ev))>
                            <option value="">"stage default"</option>
                            {space.prompts.iter().map(|p| view! { <option value=p.name.clone()>{p.name.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>"Model"
                        <select aria-label=format!("Model for stage {}", k + 1) on:change=move |ev| model.set(event_target_value(&ev))>
                            <option value="">{format!("{} (default)", stage.model)}</option>
                            {space.models.iter().map(|m| view! { <option value=m.model.clone()>{m.model.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>"Temperature"
                        <input type="number" step="0.05" min="0" max="2" placeholder=default_temp
                            aria-label=format!("Temperature for stage {}", k + 1)
                            prop:value=move || temperature.get() on:input=move |ev| temperature.set(event_target_value(&ev))/>
                    </label>
                </div>
            }
        })
        .collect_view();
    let summary = move || {
        run.value().get().and_then(|r| r.ok()).map(|b: RunBatch| {
            let cost = b
                .cost_estimate
                .map_or("no cost estimate".to_owned(), |c| format!("${c:.4}"));
            format!(
                "{} completed, {} cached, {} failed · {} tokens in, {} out · {cost}",
                b.completed, b.cached, b.failed, b.tokens_in, b.tokens_out
            )
        })
    };
    view! {
        <section class="card">
            <h2>"Run a configuration"</h2>
            <form class="stack run-form" on:submit=submit data-testid="run-form">
                {rows}
                <label class="inline">"Repeats"
                    <input type="number" min="1" max="100" aria-label="Repeats" prop:value=move || repeats.get()
                        on:input=move |ev| repeats.set(event_target_value(&ev))/>
                </label>
                <button type="submit" class="primary" disabled=move || run.pending().get()>
                    {move || if run.pending().get() { "Running…".to_owned() } else { format!("Run over {items} items") }}
                </button>
                {move || summary().map(|s| view! { <p class="ok" data-testid="run-summary">{s}</p> })}
                {move || local_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <ErrorNote error/>
            </form>
        </section>
    }
}

#[component]
fn Pipeline(experiment: Experiment) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Pipeline"</h2>
            {experiment.pipeline_stages.into_iter().enumerate().map(|(k, s)| view! {
                <div class="stage">
                    <h3>{format!("{}. {} — {}", k + 1, s.name, s.model)}</h3>
                    {(!s.system.is_empty()).then(|| view! { <p class="label">"System"</p><pre>{s.system.clone()}</pre> })}
                    <p class="label">"User"</p>
                    <pre>{s.user.clone()}</pre>
                </div>
            }).collect_view()}
        </section>
    }
}

#[component]
fn Samples(experiment: Experiment, items: ItemPage) -> impl IntoView {
    let total = experiment.items.count as usize;
    let version = match &experiment.items.dataset_name {
        Some(name) => format!("dataset “{name}”, version {}", experiment.items.version),
        None => format!("version {}", experiment.items.version),
    };
    view! {
        <section class="card">
            <h2>{format!("Sample data ({total} items)")}</h2>
            <p class="muted">{version}</p>
            <table tabindex="0" class="table">
                <thead><tr><th>"#"</th><th>"Input"</th><th>"Reference"</th></tr></thead>
                <tbody>
                    {items.items.into_iter().enumerate().map(|(i, item)| {
                        let input = item.input.iter().map(|(k, v)| match v {
                            serde_json::Value::String(s) => format!("{k}: {s}"),
                            other => format!("{k}: {other}"),
                        }).collect::<Vec<_>>().join("\n");
                        view! {
                            <tr><td>{i + 1}</td><td class="output">{input}</td><td class="output">{item.reference.unwrap_or_default()}</td></tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {(total > SAMPLES_SHOWN as usize).then(|| view! { <p class="muted">{format!("… and {} more", total - SAMPLES_SHOWN as usize)}</p> })}
        </section>
    }
}
