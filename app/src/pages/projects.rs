//! `/projects`: list, create, rename and delete projects.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{CreateProject, DeleteProject, RenameProject, list_projects};
use crate::components::shell::{AppShell, can_write};
use crate::components::{ErrorNote, action_error, error_view, reset_on_success};
use crate::types::Project;

type ProjectList = crate::components::PageResource<Vec<Project>>;

#[component]
pub fn ProjectsPage() -> impl IntoView {
    // Created outside every Suspense (the server and the browser number it alike).
    let create = ServerAction::<CreateProject>::new();
    let rename = ServerAction::<RenameProject>::new();
    let delete = ServerAction::<DeleteProject>::new();
    let projects: ProjectList = crate::components::page_resource(
        move || {
            (
                create.version().get(),
                rename.version().get(),
                delete.version().get(),
            )
        },
        |_| list_projects(),
    );
    view! {
        <Title text="Projects · PromptLooper"/>
        <AppShell>
            <Projects projects create rename delete/>
        </AppShell>
    }
}

#[component]
fn Projects(
    projects: ProjectList,
    create: ServerAction<CreateProject>,
    rename: ServerAction<RenameProject>,
    delete: ServerAction<DeleteProject>,
) -> impl IntoView {
    let create_error = action_error(create);
    let form = NodeRef::new();
    reset_on_success(create, form);
    let row_error = Signal::derive(move || {
        action_error(rename)
            .get()
            .or_else(|| action_error(delete).get())
    });
    let writable = can_write();

    view! {
        <div class="page-head">
            <h1>"Projects"</h1>
        </div>
        {writable.then(|| view! {
            <ActionForm action=create node_ref=form attr:class="card inline-form" attr:data-testid="create-project">
                <input name="name" placeholder="New project name" required maxlength="200" aria-label="Project name"/>
                <input name="description" placeholder="Description (optional)" maxlength="10000" aria-label="Description"/>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create project"</button>
                <ErrorNote error=create_error/>
            </ActionForm>
        })}
        <ErrorNote error=row_error/>
        <Transition fallback=|| view! { <p class="loading">"Loading projects…"</p> }>
            {move || Suspend::new(async move {
                match projects.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No projects yet. Create one to group your experiments."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="project-list" data-testid="project-list">
                            {list.into_iter().map(|p| view! { <ProjectRow project=p rename delete writable/> }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(e) => error_view(e),
                }
            })}
        </Transition>
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    View,
    Renaming,
    ConfirmingDelete,
}

#[component]
fn ProjectRow(
    project: Project,
    rename: ServerAction<RenameProject>,
    delete: ServerAction<DeleteProject>,
    writable: bool,
) -> impl IntoView {
    let mode = RwSignal::new(Mode::View);
    let new_name = RwSignal::new(project.name.clone());
    let id = project.id;
    let name = project.name.clone();
    let href = format!("/projects/{id}");
    let experiments = match project.experiment_count {
        1 => "1 experiment".to_owned(),
        n => format!("{n} experiments"),
    };
    let updated = project.updated_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let confirm_text =
        format!("Delete “{name}” with all its experiments and runs? This cannot be undone.");

    let row_name = name.clone();
    view! {
        <li class="project-row" data-project=row_name>
            <div class="project-main">
                {move || match mode.get() {
                    Mode::Renaming => view! {
                        <form class="inline-form" on:submit=move |ev| {
                            ev.prevent_default();
                            rename.dispatch(RenameProject { id, name: new_name.get_untracked() });
                            mode.set(Mode::View);
                        }>
                            <input aria-label="New name" maxlength="200" required
                                prop:value=move || new_name.get()
                                on:input=move |ev| new_name.set(event_target_value(&ev))/>
                            <button type="submit" class="primary">"Save"</button>
                            <button type="button" on:click=move |_| mode.set(Mode::View)>"Cancel"</button>
                        </form>
                    }.into_any(),
                    _ => {
                        let (href, name) = (href.clone(), name.clone());
                        view! { <A href=href attr:class="project-name">{name}</A> }.into_any()
                    }
                }}
                <p class="muted">{project.description.clone()}</p>
                <p class="meta">{experiments.clone()}" · updated "{updated.clone()}</p>
            </div>
            {writable.then(|| view! {
                <div class="row-actions">
                    {move || match mode.get() {
                        Mode::ConfirmingDelete => view! {
                            <div class="confirm" role="alertdialog">
                                <span>{confirm_text.clone()}</span>
                                <button class="danger" on:click=move |_| {
                                    delete.dispatch(DeleteProject { id });
                                    mode.set(Mode::View);
                                }>"Delete"</button>
                                <button on:click=move |_| mode.set(Mode::View)>"Cancel"</button>
                            </div>
                        }.into_any(),
                        Mode::Renaming => ().into_any(),
                        Mode::View => view! {
                            <button on:click=move |_| mode.set(Mode::Renaming)>"Rename"</button>
                            <button class="danger-outline" on:click=move |_| mode.set(Mode::ConfirmingDelete)>"Delete"</button>
                        }.into_any(),
                    }}
                </div>
            })}
        </li>
    }
}
