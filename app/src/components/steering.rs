//! Steering a sweep from the live view: pause, resume (optionally with a larger budget), stop,
//! redirect what remains (in the builder's parameter-space editor), and fork a new experiment
//! from a run. Buttons follow the sweep's state; refusals (a 409) are shown beside them.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::api::{ForkRun, RedirectSweep, ResumeSweep, SteerSweep};
use crate::components::editor::draft::{SpaceDraft, parse_f64, parse_u64};
use crate::components::editor::space::{SpaceEditor, TextField, param_names};
use crate::components::editor::{FieldErrors, SaveError};
use crate::components::icons::icon;
use crate::types::{
    Budget, Experiment, ForkRequest, ParameterSpace, Redirect, RunSummary, StageChoice, StageSpace,
    Strategy, Sweep,
};

/// The run a fork starts from, chosen in the leaderboard (provided by the live view).
#[derive(Clone, Copy)]
pub struct ForkFrom(pub RwSignal<Option<RunSummary>>);

#[component]
pub fn Steering(
    experiment: StoredValue<Experiment>,
    sweep: RwSignal<Option<Sweep>>,
) -> impl IntoView {
    let id = experiment.with_value(|e| e.id);
    let steer = ServerAction::<SteerSweep>::new();
    let resume = ServerAction::<ResumeSweep>::new();
    let errors = FieldErrors::new();
    let budget_tokens = RwSignal::new(String::new());
    let budget_cost = RwSignal::new(String::new());
    let budget_calls = RwSignal::new(String::new());
    let redirecting = RwSignal::new(None::<Vec<SpaceDraft>>);
    for action_value in [steer.value(), resume.value()] {
        Effect::new(move |_| match action_value.get() {
            Some(Ok(s)) => {
                errors.clear();
                sweep.set(Some(s));
            }
            Some(Err(e)) => errors.show(&e),
            None => {}
        });
    }
    let state = move || sweep.with(|s| s.as_ref().map(|s| s.status.clone()).unwrap_or_default());
    let busy = move || steer.pending().get() || resume.pending().get();
    let do_resume = move |_| {
        errors.clear();
        let budget = (|| -> Result<Option<Budget>, (String, String)> {
            let t = parse_u64(&budget_tokens.get_untracked(), "budget.max_tokens")?;
            let c = parse_f64(&budget_cost.get_untracked(), "budget.max_cost")?;
            let n = parse_u64(&budget_calls.get_untracked(), "budget.max_calls")?;
            Ok((t.is_some() || c.is_some() || n.is_some()).then(|| Budget {
                max_tokens: t.map(|t| t.min(i64::MAX as u64) as i64),
                max_cost: c,
                max_calls: n.map(|n| n.min(i64::MAX as u64) as i64),
            }))
        })();
        match budget {
            Ok(budget) => {
                resume.dispatch(ResumeSweep {
                    experiment_id: id,
                    budget,
                });
            }
            Err((f, m)) => errors.show_field(&f, &m),
        }
    };
    let open_redirect = move |_| {
        let current = sweep.with_untracked(|s| s.as_ref().map(|s| s.parameter_space.clone()));
        let stages = experiment.with_value(|e| e.pipeline_stages.len());
        let space = current.unwrap_or_default();
        redirecting.set(Some(
            (0..stages)
                .map(|k| SpaceDraft::new(&space.stages.get(k).cloned().unwrap_or_default()))
                .collect(),
        ));
    };
    provide_context(errors);
    view! {
        <section class="card steering" data-testid="steering">
            <h2>"Steering"</h2>
            <div class="row">
                {move || match state().as_str() {
                    "running" => view! {
                        <button type="button" on:click=move |_| { errors.clear(); steer.dispatch(SteerSweep { experiment_id: id, action: "pause".into() }); }
                            disabled=busy data-testid="pause">{icon("pause")}" Pause"</button>
                    }.into_any(),
                    "paused" => view! {
                        <TextField label="New budget: max tokens" value=budget_tokens path="budget.max_tokens" placeholder="unchanged"/>
                        <TextField label="New budget: max cost ($)" value=budget_cost path="budget.max_cost" placeholder="unchanged"/>
                        <TextField label="New budget: max LLM calls" value=budget_calls path="budget.max_calls" placeholder="unchanged"/>
                        <button type="button" class="primary" on:click=do_resume disabled=busy data-testid="resume">{icon("play")}" Resume"</button>
                    }.into_any(),
                    _ => view! {
                        <p class="muted">"No sweep is running. "
                            <A href=format!("/experiments/{id}/edit#launch")>"Preview and start a sweep"</A>"."</p>
                    }.into_any(),
                }}
                <Show when=move || matches!(state().as_str(), "running" | "paused")>
                    <button type="button" on:click=open_redirect disabled=busy data-testid="redirect">{icon("redirect")}" Redirect…"</button>
                    <crate::components::ConfirmButton label="Stop" question="Stop the sweep? Runs not yet started are dropped."
                        on_confirm=move || { errors.clear(); steer.dispatch(SteerSweep { experiment_id: id, action: "stop".into() }); }/>
                </Show>
            </div>
            <SaveError errors prefix="Refused"/>
            {move || redirecting.get().map(|drafts| view! { <RedirectForm experiment drafts redirecting sweep/> })}
            <ForkDialog experiment/>
        </section>
    }
}

/// Replaces what remains of the sweep: a parameter space per stage and, optionally, a new
/// strategy.
#[component]
fn RedirectForm(
    experiment: StoredValue<Experiment>,
    drafts: Vec<SpaceDraft>,
    redirecting: RwSignal<Option<Vec<SpaceDraft>>>,
    sweep: RwSignal<Option<Sweep>>,
) -> impl IntoView {
    let id = experiment.with_value(|e| e.id);
    let errors = FieldErrors::new();
    provide_context(errors);
    let action = ServerAction::<RedirectSweep>::new();
    let strategy = RwSignal::new(String::new());
    let samples = RwSignal::new("10".to_owned());
    let endpoints = crate::components::endpoints_signal();
    let drafts = StoredValue::new(drafts);
    let submit = move |_| {
        errors.clear();
        let built = (|| -> Result<Redirect, (String, String)> {
            let mut stages: Vec<StageSpace> = Vec::new();
            for (k, d) in drafts.get_value().iter().enumerate() {
                stages.push(d.to_space(&format!("parameter_space.stages[{k}]"))?);
            }
            while stages.last().is_some_and(|s| s == &StageSpace::default()) {
                stages.pop();
            }
            let strategy = match strategy.get_untracked().as_str() {
                "grid" => Some(Strategy::Grid),
                "random" => Some(Strategy::Random {
                    samples: parse_u64(&samples.get_untracked(), "strategy.samples")?
                        .unwrap_or(10)
                        .min(u32::MAX as u64) as u32,
                    seed: None,
                }),
                _ => None,
            };
            Ok(Redirect {
                parameter_space: ParameterSpace { stages },
                strategy,
            })
        })();
        match built {
            Ok(redirect) => {
                action.dispatch(RedirectSweep {
                    experiment_id: id,
                    redirect,
                });
            }
            Err((f, m)) => errors.show_field(&f, &m),
        }
    };
    Effect::new(move |_| match action.value().get() {
        Some(Ok(s)) => {
            sweep.set(Some(s));
            redirecting.set(None);
        }
        Some(Err(e)) => errors.show(&e),
        None => {}
    });
    let stages = experiment.with_value(|e| e.pipeline_stages.clone());
    view! {
        <form class="redirect" data-testid="redirect-form" on:submit=move |ev| { ev.prevent_default(); submit(()); }>
            <h3>"Redirect what remains"</h3>
            <p class="hint">"Runs already started or finished are kept; the rest of the sweep is planned again from this space (configurations already run are not run again)."</p>
            {drafts.get_value().into_iter().zip(stages).enumerate().map(|(k, (d, stage))| {
                let endpoint = stage.endpoint_id.to_string();
                view! {
                    <fieldset class="entry">
                        <legend>{format!("Stage {} — {}", k + 1, stage.name)}</legend>
                        <SpaceEditor space=d at=format!("parameter_space.stages[{k}]") endpoints
                            stage_endpoint=Signal::stored(endpoint)/>
                    </fieldset>
                }
            }).collect_view()}
            {param_names()}
            <div class="row">
                <label class="field"><span>"Strategy for the rest"</span>
                    <select data-field="strategy" on:change=move |ev| strategy.set(event_target_value(&ev))>
                        <option value="">"the sweep's own"</option>
                        <option value="grid">"grid"</option>
                        <option value="random">"random"</option>
                    </select>
                </label>
                <Show when=move || strategy.get() == "random">
                    <TextField label="Configurations to draw" value=samples path="strategy.samples"/>
                </Show>
            </div>
            <div class="row">
                <button type="submit" class="primary" disabled=move || action.pending().get() data-testid="redirect-submit">"Redirect the sweep"</button>
                <button type="button" on:click=move |_| redirecting.set(None)>"Cancel"</button>
            </div>
            <SaveError errors/>
        </form>
    }
}

/// Forks a new experiment from the run chosen in the leaderboard, with changes per stage.
#[component]
fn ForkDialog(experiment: StoredValue<Experiment>) -> impl IntoView {
    let Some(ForkFrom(from)) = use_context::<ForkFrom>() else {
        return ().into_any();
    };
    view! {
        {move || from.get().map(|run| view! { <ForkForm experiment run from/> })}
    }
    .into_any()
}

/// One stage's changes in a fork: (the run's model, variant, model, temperature).
type StageChanges = (String, RwSignal<String>, RwSignal<String>, RwSignal<String>);

#[component]
pub fn ForkForm(
    experiment: StoredValue<Experiment>,
    run: RunSummary,
    from: RwSignal<Option<RunSummary>>,
) -> impl IntoView {
    let errors = FieldErrors::new();
    provide_context(errors);
    let (id, name, space) =
        experiment.with_value(|e| (e.id, e.name.clone(), e.parameter_space.clone()));
    let fork_name = RwSignal::new(format!(
        "{} (fork)",
        name.chars().take(80).collect::<String>()
    ));
    let stages: Vec<StageChanges> = run
        .run
        .config
        .stages
        .iter()
        .map(|s| {
            (
                s.model.clone(),
                RwSignal::new(String::new()),
                RwSignal::new(String::new()),
                RwSignal::new(String::new()),
            )
        })
        .collect();
    let action = ServerAction::<ForkRun>::new();
    let run_id = run.run.id;
    let choices = stages.clone();
    let submit = move |_| {
        errors.clear();
        let mut out = Vec::new();
        for (k, (_, variant, model, temperature)) in choices.iter().enumerate() {
            let mut c = StageChoice::default();
            let v = variant.get_untracked();
            let m = model.get_untracked();
            c.variant = (!v.is_empty()).then_some(v);
            c.model = (!m.trim().is_empty()).then(|| m.trim().to_owned());
            match parse_f64(
                &temperature.get_untracked(),
                &format!("stages[{k}].params.temperature"),
            ) {
                Ok(Some(t)) => {
                    c.params = Some([("temperature".to_owned(), serde_json::json!(t))].into())
                }
                Ok(None) => {}
                Err((f, m)) => return errors.show_field(&f, &m),
            }
            out.push(c);
        }
        action.dispatch(ForkRun {
            experiment_id: id,
            fork: ForkRequest {
                run_id,
                name: Some(fork_name.get_untracked()),
                stages: out,
                parameter_space: None,
            },
        });
    };
    let navigate = use_navigate();
    Effect::new(move |_| match action.value().get() {
        Some(Ok(e)) => {
            from.set(None);
            navigate(&format!("/experiments/{}", e.id), Default::default());
        }
        Some(Err(e)) => errors.show(&e),
        None => {}
    });
    view! {
        <form class="fork" data-testid="fork-form" on:submit=move |ev| { ev.prevent_default(); submit(()); }>
            <h3>{icon("fork")}" Fork from run of item "{run.run.item_index + 1}</h3>
            <p class="muted">{run.label.clone()}</p>
            <TextField label="New experiment's name" value=fork_name path="name"/>
            {stages.into_iter().enumerate().map(|(k, (model_was, variant, model, temperature))| {
                let variants: Vec<String> = space.stages.get(k).map(|s| s.prompts.iter().map(|p| p.name.clone()).collect()).unwrap_or_default();
                view! {
                    <fieldset class="entry row">
                        <legend>{format!("Stage {} changes", k + 1)}</legend>
                        {(!variants.is_empty()).then(|| view! {
                            <label class="field"><span>"Prompt variant"</span>
                                <select data-field=format!("stages[{k}].variant") on:change=move |ev| variant.set(event_target_value(&ev))>
                                    <option value="">"the run's"</option>
                                    {variants.into_iter().map(|v| view! { <option value=v.clone()>{v.clone()}</option> }).collect_view()}
                                </select>
                            </label>
                        })}
                        <TextField label="Model" value=model path=format!("stages[{k}].model") placeholder=model_was/>
                        <TextField label="Temperature" value=temperature path=format!("stages[{k}].params.temperature") placeholder="the run's"/>
                    </fieldset>
                }
            }).collect_view()}
            <div class="row">
                <button type="submit" class="primary" disabled=move || action.pending().get() data-testid="fork-submit">"Create the fork"</button>
                <button type="button" on:click=move |_| from.set(None)>"Cancel"</button>
            </div>
            <SaveError errors/>
        </form>
    }
}
