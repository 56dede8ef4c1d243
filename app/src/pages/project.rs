//! `/projects/:id`: one project — its description, markdown notes and experiments.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{UpdateProjectText, get_project};
use crate::components::shell::{AppShell, can_write};
use crate::components::{ErrorNote, action_error, error_view, id_param};
use crate::types::ProjectDetail;

type ProjectData = Resource<Result<Option<ProjectDetail>, crate::error::AppError>>;

#[component]
pub fn ProjectPage() -> impl IntoView {
    // Created outside every Suspense (the server and the browser number it alike).
    let id = id_param();
    let save = ServerAction::<UpdateProjectText>::new();
    let project: ProjectData = Resource::new(
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
                    <table tabindex="0" class="table">
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"Status"</th><th scope="col">"Runs"</th><th scope="col">"Updated"</th><th scope="col"><span class="sr-only">"Links"</span></th></tr></thead>
                        <tbody>
                            {experiments.into_iter().map(|e| view! {
                                <tr>
                                    <td><A href=format!("/experiments/{}", e.id)>{e.name}</A></td>
                                    <td><span class=format!("status {}", e.status)>{e.status.clone()}</span></td>
                                    <td>{e.run_count}</td>
                                    <td>{e.updated_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                    <td><A href=format!("/experiments/{}/live", e.id)>"live"</A></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
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
