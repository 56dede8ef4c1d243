//! `/runs/:id`: one run whole. Each stage's rendered messages, response, parameters, tokens
//! (marked when estimated), latency, cost and cache flag; every score with the scorer's reasons;
//! the ratings people gave (and a form to rate); and what to do next: compare it with the same
//! item's run in another configuration, fork from it, approve or reject its configuration,
//! forget its cache entries.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{
    ForgetRunCache, MarkConfiguration, RateRun, RunPage as RunData, get_run_page, list_runs,
};
use crate::components::icons::icon;
use crate::components::leaderboard::human_scorers;
use crate::components::runs::{RatingsCard, ScoresCard, num, params_text};
use crate::components::shell::{AppShell, can_write};
use crate::components::steering::{ForkForm, ForkFrom};
use crate::components::{ConfirmButton, ErrorNote, action_error, error_view, id_param, loaded};
use crate::types::{RunListQuery, RunSummary, StageResult};

type PageData = crate::components::PageResource<Option<RunData>>;

#[component]
pub fn RunPage() -> impl IntoView {
    // Created outside every Suspense (the server and the browser number it alike).
    let id = id_param();
    let rate = ServerAction::<RateRun>::new();
    let mark = ServerAction::<MarkConfiguration>::new();
    let page: PageData = crate::components::page_resource(
        move || (id(), rate.version().get(), mark.version().get()),
        |(id, _, _)| async move {
            match id {
                Some(id) => get_run_page(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <AppShell>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(Some(data)) => view! { <Detail data rate mark/> }.into_any(),
                        Ok(None) => view! { <p class="error">"No such run."</p> }.into_any(),
                        Err(e) => error_view(e),
                    }
                })}
            </Transition>
        </AppShell>
    }
}

#[component]
fn Detail(
    data: RunData,
    rate: ServerAction<RateRun>,
    mark: ServerAction<MarkConfiguration>,
) -> impl IntoView {
    let RunData {
        detail,
        experiment,
        label,
    } = data;
    let run = detail.run.clone();
    let item = run.item_index + 1;
    let repeat = (run.repeat_index > 0).then(|| format!(", repeat {}", run.repeat_index + 1));
    let title = format!("Run of item {item} · {} · PromptLooper", experiment.name);
    let humans = human_scorers(&experiment.scoring_config);
    let cached = !detail.stages.is_empty() && detail.stages.iter().all(|s| s.cached);
    let output = detail
        .stages
        .iter()
        .max_by_key(|s| s.stage_index)
        .map(|s| s.response_raw.clone());
    // The fork form (shared with the live view) opens from a run summary.
    let summary = RunSummary {
        run: run.clone(),
        label: label.clone(),
        output,
        scores: detail
            .scores
            .iter()
            .filter_map(|s| s.value.map(|v| (s.scorer.clone(), v)))
            .collect(),
        weighted_score: detail.weighted_score,
    };
    let fork = ForkFrom(RwSignal::new(None));
    provide_context(fork);
    let experiment_value = StoredValue::new(experiment.clone());
    let facts = [
        ("Configuration", label.clone()),
        (
            "Item",
            format!(
                "#{item} (id {}){}",
                run.item_id,
                repeat.clone().unwrap_or_default()
            ),
        ),
        ("Status", run.status.clone()),
        ("Weighted score", num(detail.weighted_score)),
        (
            "Tokens",
            format!("{} in, {} out", run.tokens_in, run.tokens_out),
        ),
        (
            "Duration",
            run.duration_ms.map_or("–".into(), |d| format!("{d} ms")),
        ),
        (
            "Cost",
            run.cost_estimate
                .map_or("unknown price".into(), |c| format!("${c:.5}")),
        ),
        (
            "Started",
            run.started_at.map_or("–".into(), |t| {
                t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            }),
        ),
        ("Dataset version", run.item_version.to_string()),
    ];
    let exp_href = format!("/experiments/{}", experiment.id);
    let (exp_name, project_href) = (
        experiment.name.clone(),
        format!("/projects/{}", experiment.project_id),
    );
    view! {
        <Title text=title/>
        <p class="crumbs">
            <A href="/projects">"Projects"</A>" / "
            <A href=project_href>"Project"</A>" / "
            <A href=exp_href>{exp_name}</A>" / "
        </p>
        <div class="page-head">
            <h1>{format!("Run of item {item}")}{repeat}</h1>
            <div class="head-badges">
                <span class=format!("status {}", run.status)>{run.status.clone()}</span>
                {cached.then(|| view! { <span class="status cached">"from cache"</span> })}
            </div>
        </div>
        <section class="card" data-testid="run-facts">
            <dl class="facts">
                {facts.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
            </dl>
            {run.error.clone().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {can_write().then(|| view! { <Actions run_id=run.id summary=summary.clone() mark fork/> })}
        </section>
        {move || fork.0.get().map(|run| view! { <section class="card"><ForkForm experiment=experiment_value run from=fork.0/></section> })}
        <section class="card" data-testid="stages">
            <h2>"Stages"</h2>
            {detail.stages.clone().into_iter().map(|s| stage_view(s, &experiment)).collect_view()}
            {detail.stages.is_empty().then(|| view! { <p class="empty">"This run has no stage results yet."</p> })}
        </section>
        <ScoresCard scores=detail.scores.clone()/>
        <RatingsCard run_id=run.id ratings=detail.ratings.clone() humans rate/>
        <SameItem run=run.clone()/>
    }
}

/// Compare, fork, approve or reject, forget the cache.
#[component]
fn Actions(
    run_id: uuid::Uuid,
    summary: RunSummary,
    mark: ServerAction<MarkConfiguration>,
    fork: ForkFrom,
) -> impl IntoView {
    let forget = ServerAction::<ForgetRunCache>::new();
    let mark_error = action_error(mark);
    let forget_error = action_error(forget);
    let forgotten = move || {
        forget.value().get().and_then(|r| r.ok()).map(|n| {
            view! { <p class="ok" role="status">{format!("{n} cache entr{} forgotten: the next identical call goes to the provider.", if n == 1 { "y" } else { "ies" })}</p> }
        })
    };
    let marked = move || {
        mark.value().get().and_then(|r| r.ok()).map(|_| {
            view! { <p class="ok" role="status">"Saved: the configuration's mark is on the leaderboard."</p> }
        })
    };
    let can_fork = matches!(summary.run.status.as_str(), "completed" | "cached");
    view! {
        <div class="row actions" data-testid="run-actions">
            {can_fork.then(|| view! {
                <button type="button" on:click=move |_| fork.0.set(Some(summary.clone()))>{icon("fork")}" Fork from this run…"</button>
            })}
            <button type="button" on:click=move |_| { mark.dispatch(MarkConfiguration { run_id, mark: "approved".into() }); }>{icon("check")}" Approve configuration"</button>
            <button type="button" class="danger-outline" on:click=move |_| { mark.dispatch(MarkConfiguration { run_id, mark: "rejected".into() }); }>{icon("x")}" Reject configuration"</button>
            <ConfirmButton label="Forget cache entries" question="Forget the cached responses this run used?"
                on_confirm=move || { forget.dispatch(ForgetRunCache { run_id }); }/>
        </div>
        {marked}
        {forgotten}
        <ErrorNote error=mark_error/>
        <ErrorNote error=forget_error/>
    }
}

fn stage_view(s: StageResult, experiment: &crate::types::Experiment) -> impl IntoView {
    let name = experiment
        .pipeline_stages
        .get(s.stage_index as usize)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let tokens = if s.usage_estimated {
        view! { <span title="estimated: the provider reported no usage">{format!("≈{} in, ≈{} out (estimated)", s.tokens_in, s.tokens_out)}</span> }.into_any()
    } else {
        format!("{} in, {} out", s.tokens_in, s.tokens_out).into_any()
    };
    view! {
        <article class="stage-result" data-testid="stage">
            <h3>{format!("{}. {name} — {}", s.stage_index + 1, s.model_used)}
                {s.cached.then(|| view! { " " <span class="status cached">"cached"</span> })}</h3>
            <p class="meta">
                {params_text(&s.parameters)}" · "{tokens}" · "{format!("{} ms", s.latency_ms)}" · "
                {s.cost_estimate.map_or("unknown price".to_owned(), |c| format!("${c:.5}"))}
                {s.finish_reason.clone().map(|f| format!(" · finished: {f}"))}
            </p>
            <p class="label">"Messages sent"</p>
            {messages(&s.prompt_sent)}
            <p class="label">"Response"</p>
            <pre class="response">{s.response_raw.clone()}</pre>
        </article>
    }
}

/// The rendered messages as sent, one block per role (the raw text when it is not a list of
/// chat messages).
fn messages(sent: &str) -> AnyView {
    let parsed: Option<Vec<(String, String)>> =
        serde_json::from_str::<Vec<serde_json::Value>>(sent)
            .ok()
            .and_then(|list| {
                list.iter()
                    .map(|m| {
                        Some((
                            m.get("role")?.as_str()?.to_owned(),
                            match m.get("content")? {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            },
                        ))
                    })
                    .collect()
            });
    match parsed {
        Some(list) => view! {
            <div class="messages">
                {list.into_iter().map(|(role, content)| view! {
                    <div class="message"><span class="role">{role}</span><pre class="prompt">{content}</pre></div>
                }).collect_view()}
            </div>
        }
        .into_any(),
        None => view! { <pre class="prompt">{sent.to_owned()}</pre> }.into_any(),
    }
}

/// The same item's runs in the experiment's other configurations, best first, to compare with.
#[component]
fn SameItem(run: crate::types::Run) -> impl IntoView {
    let (experiment_id, item_id, this) = (run.experiment_id, run.item_id.clone(), run.id);
    let others = crate::components::client_resource(
        || (),
        move |_| {
            list_runs(
                experiment_id,
                RunListQuery {
                    item_id: item_id.clone(),
                    sort: "-score".into(),
                    limit: 20,
                    ..Default::default()
                },
            )
        },
    );
    view! {
        <section class="card" data-testid="same-item">
            <h2>"This item in other configurations"</h2>
            {loaded(others, move |page| {
                let rows: Vec<_> = page.runs.into_iter().filter(|r| r.run.id != this).collect();
                if rows.is_empty() {
                    return view! { <p class="empty">"No other run of this item yet."</p> }.into_any();
                }
                view! {
                    <div class="scroll" tabindex="0">
                    <table class="table">
                        <thead><tr><th scope="col">"Configuration"</th><th scope="col">"Status"</th><th scope="col">"Score"</th><th scope="col"><span class="sr-only">"Links"</span></th></tr></thead>
                        <tbody>
                            {rows.into_iter().map(|r| view! {
                                <tr>
                                    <td class="small">{r.label.clone()}</td>
                                    <td><span class=format!("status {}", r.run.status)>{r.run.status.clone()}</span></td>
                                    <td>{num(r.weighted_score)}</td>
                                    <td><span class="row-actions">
                                        <A href=format!("/runs/{}", r.run.id)>"open"</A>" · "
                                        <A href=format!("/experiments/{experiment_id}/compare?a={this}&b={}", r.run.id)>"compare"</A>
                                    </span></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                }.into_any()
            })}
        </section>
    }
}
