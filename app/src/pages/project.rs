//! `/projects/:id`: one project — its experiments (status, sweep progress, best score, runs),
//! the approved configurations, the export history, and its description and markdown notes.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{UpdateProjectText, get_project};
use crate::components::shell::{AppShell, can_write};
use crate::components::{ErrorNote, action_error, error_view, id_param};
use crate::types::ProjectDetail;

type ProjectData = crate::components::PageResource<Option<ProjectDetail>>;

#[component]
pub fn ProjectPage() -> impl IntoView {
    // Created outside every Suspense (the server and the browser number it alike).
    let id = id_param();
    let save = ServerAction::<UpdateProjectText>::new();
    let project: ProjectData = crate::components::page_resource(
        move || (id(), save.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_project(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <AppShell>
            <ProjectView project save/>
        </AppShell>
    }
}

#[component]
fn ProjectView(project: ProjectData, save: ServerAction<UpdateProjectText>) -> impl IntoView {
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match project.await {
                    Ok(Some(detail)) => view! { <Detail detail save/> }.into_any(),
                    Ok(None) => view! { <p class="error">"No such project."</p> }.into_any(),
                    Err(e) => error_view(e),
                }
            })}
        </Transition>
    }
}

#[component]
fn Detail(detail: ProjectDetail, save: ServerAction<UpdateProjectText>) -> impl IntoView {
    let ProjectDetail {
        project,
        experiments,
        approved,
        exports,
        export_total,
    } = detail;
    let writable = can_write();
    let error = action_error(save);
    let title = format!("{} · PromptLooper", project.name);
    view! {
        <Title text=title/>
        <p class="crumbs"><A href="/projects">"Projects"</A>" / "</p>
        <h1>{project.name.clone()}</h1>
        <section class="card">
            <div class="card-head">
                <h2>"Experiments"</h2>
                {writable.then(|| view! {
                    <A href=format!("/projects/{}/experiments/new", project.id) attr:class="button primary">"New experiment"</A>
                })}
            </div>
            {if experiments.is_empty() {
                view! { <p class="empty">"This project has no experiments yet."</p> }.into_any()
            } else {
                view! {
                    <div class="scroll" tabindex="0">
                    <table class="table" data-testid="experiments">
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"Status"</th><th scope="col">"Progress"</th><th scope="col">"Best score"</th><th scope="col">"Runs"</th><th scope="col">"Updated"</th><th scope="col"><span class="sr-only">"Links"</span></th></tr></thead>
                        <tbody>
                            {experiments.into_iter().map(|e| {
                                let progress = e.progress.as_ref().map(|p| {
                                    let pct = if p.total > 0 { p.done as f64 / p.total as f64 * 100.0 } else { 100.0 };
                                    view! {
                                        <span class="mini-progress" title=format!("{} of {} runs", p.done, p.total)>
                                            <progress max="100" value=format!("{pct:.0}") aria-label=format!("{} sweep progress", e.name)></progress>
                                            {format!(" {} / {}", p.done, p.total)}
                                        </span>
                                        <span class="small">{e.sweep_status.clone().map(|s| format!(" ({s})"))}</span>
                                    }
                                });
                                view! {
                                    <tr data-testid="experiment-row">
                                        <td><A href=format!("/experiments/{}", e.id)>{e.name.clone()}</A></td>
                                        <td><span class=format!("status {}", e.status)>{e.status.clone()}</span></td>
                                        <td>{progress.map(|p| p.into_any()).unwrap_or_else(|| "no sweep yet".into_any())}</td>
                                        <td title=e.best_label.clone().unwrap_or_default()>{crate::components::runs::num(e.best_score)}</td>
                                        <td>{e.run_count}</td>
                                        <td>{e.updated_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                        <td><A href=format!("/experiments/{}/live", e.id)>"live"</A></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                }.into_any()
            }}
        </section>
        <Approved approved/>
        <Exports exports total=export_total/>
        <section class="card">
            <h2>"Description and notes"</h2>
            {if writable {
                view! {
                    <ActionForm action=save attr:class="stack">
                        <input type="hidden" name="id" value=project.id.to_string()/>
                        <label>"Description"
                            <input name="description" maxlength="10000" value=project.description.clone()/>
                        </label>
                        <label>"Notes (markdown)"
                            <textarea name="notes" rows="10">{project.notes.clone()}</textarea>
                        </label>
                        <button type="submit" class="primary" disabled=move || save.pending().get()>"Save"</button>
                        <ErrorNote error/>
                    </ActionForm>
                }.into_any()
            } else {
                view! {
                    <p>{project.description.clone()}</p>
                    <pre class="notes">{project.notes.clone()}</pre>
                }.into_any()
            }}
        </section>
    }
}

/// The configurations approved in this project's experiments.
#[component]
fn Approved(approved: Vec<crate::types::ApprovedConfig>) -> impl IntoView {
    view! {
        <section class="card" data-testid="approved">
            <h2>"Approved configurations"</h2>
            {if approved.is_empty() {
                view! { <p class="empty">"None yet: approve a configuration from a leaderboard or a run."</p> }.into_any()
            } else {
                view! {
                    <ul class="approved">
                        {approved.into_iter().map(|a| view! {
                            <li>
                                <A href=format!("/experiments/{}", a.experiment_id)>{a.experiment_name.clone()}</A>": "
                                <span class="small">{a.label.clone()}</span>
                                {format!(" · score {}", crate::components::runs::num(a.score))}
                                <span class="muted">{format!(" · approved {}", a.marked_at.format("%Y-%m-%d %H:%M"))}</span>
                                {(!a.note.is_empty()).then(|| view! { <blockquote>{a.note.clone()}</blockquote> })}
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}

/// The project's export history: each export readable exactly as it was.
#[component]
fn Exports(exports: Vec<crate::types::ExportRecord>, total: i64) -> impl IntoView {
    let more = total - exports.len() as i64;
    view! {
        <section class="card" data-testid="exports">
            <h2>"Export history"</h2>
            {if exports.is_empty() {
                view! { <p class="empty">"Nothing exported yet."</p> }.into_any()
            } else {
                view! {
                    <div class="scroll" tabindex="0">
                    <table class="table">
                        <thead><tr><th scope="col">"When"</th><th scope="col">"Experiment"</th><th scope="col">"Format"</th><th scope="col">"Score"</th><th scope="col"><span class="sr-only">"Open"</span></th></tr></thead>
                        <tbody>
                            {exports.into_iter().map(|x| view! {
                                <tr>
                                    <td>{x.created_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                    <td>{x.experiment_name.clone()}</td>
                                    <td>{x.format.clone()}</td>
                                    <td>{crate::components::runs::num(x.score)}</td>
                                    <td><a href=format!("/api/v1/exports/{}", x.id) target="_blank" rel="noopener">"open as exported"</a></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                    {(more > 0).then(|| view! { <p class="muted">{format!("… and {more} older exports")}</p> })}
                }.into_any()
            }}
        </section>
    }
}
