//! `/`: what is happening across every project — totals (runs, tokens, cost, cache hit rate),
//! sweeps running or paused with their progress, the latest new bests, recent experiments and
//! the live activity feed (filterable). Visitors who are not signed in go to setup or login.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{get_overview, list_events};
use crate::components::error_view;
use crate::components::progress::{ProgressBar, duration, money, percent, tokens};
use crate::components::shell::AppShell;
use crate::components::stream::{LinkBadge, live_events, throttle};
use crate::components::timeline::{Timeline, TimelineFilter, merge};
use crate::types::{Event, Overview, Progress};

type Snapshot = crate::components::PageResource<(Overview, Vec<Event>)>;

#[component]
pub fn Home() -> impl IntoView {
    // Created outside every Suspense, so the server and the browser number it alike. The feed's
    // newest id is read first: the stream replays whatever follows it.
    let snapshot: Snapshot = crate::components::page_resource(
        || (),
        |_| async move {
            let events = list_events(None, String::new(), 60).await?.events;
            let overview = get_overview().await?;
            Ok((overview, events))
        },
    );
    view! {
        <Title text="Home · PromptLooper"/>
        <AppShell>
            <HomeView snapshot/>
        </AppShell>
    }
}

#[component]
fn HomeView(snapshot: Snapshot) -> impl IntoView {
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match snapshot.await {
                    Ok((overview, events)) => view! { <Dashboard overview events/> }.into_any(),
                    Err(e) => error_view(e),
                }
            })}
        </Transition>
    }
}

#[component]
fn Dashboard(overview: Overview, events: Vec<Event>) -> impl IntoView {
    let after = events.first().map_or(0, |e| e.id);
    let overview = RwSignal::new(overview);
    let feed = RwSignal::new(events);
    let filter = RwSignal::new(String::new());
    let reread = throttle(1500.0, move || {
        spawn_local(async move {
            if let Ok(o) = get_overview().await {
                overview.set(o);
            }
        })
    });
    let on_batch = {
        let reread = reread.clone();
        move |batch: Vec<Event>| {
            feed.update(|f| merge(f, batch.clone()));
            overview.update(|o| {
                for e in &batch {
                    let Some(p) = e
                        .payload
                        .get("progress")
                        .and_then(|p| serde_json::from_value::<Progress>(p.clone()).ok())
                    else {
                        continue;
                    };
                    if let Some(a) = o.sweeps.iter_mut().find(|a| Some(a.sweep.id) == e.sweep_id)
                        && p.done >= a.sweep.progress.done
                    {
                        a.sweep.progress = p;
                    }
                }
            });
            // Totals, sweeps that start or end, and new bests come from a fresh read.
            reread();
        }
    };
    let on_resync = {
        let reread = reread.clone();
        move || {
            reread();
            spawn_local(async move {
                if let Ok(page) = list_events(None, String::new(), 60).await {
                    feed.update(|f| merge(f, page.events));
                }
            });
        }
    };
    let link = live_events(
        || "/api/v1/events/stream".to_owned(),
        move || Some(after),
        on_batch,
        on_resync,
    );
    crate::components::timeline::fetch_on_filter(filter, None, feed);
    view! {
        <div class="page-head">
            <h1>"Overview"</h1>
            <LinkBadge link/>
        </div>
        <section class="card">
            <h2>"Totals"</h2>
            <Totals overview/>
        </section>
        <div class="live-grid">
            <div>
                <section class="card" data-testid="active-sweeps">
                    <h2>"Sweeps running or paused"</h2>
                    <ActiveSweeps overview/>
                </section>
                <section class="card" data-testid="recent-bests">
                    <h2>"New bests"</h2>
                    <Bests overview/>
                </section>
                <section class="card" data-testid="recent-experiments">
                    <h2>"Recent experiments"</h2>
                    <Recent overview/>
                </section>
            </div>
            <section class="card timeline-card">
                <div class="card-head">
                    <h2>"Activity"</h2>
                    <TimelineFilter filter/>
                </div>
                <Timeline events=feed filter with_experiment=true/>
            </section>
        </div>
    }
}

#[component]
fn Totals(overview: RwSignal<Overview>) -> impl IntoView {
    let stat = move |label: &'static str, f: fn(&Overview) -> String| {
        view! { <div><dt>{label}</dt><dd>{move || overview.with(f)}</dd></div> }
    };
    view! {
        <dl class="stats" data-testid="totals">
            {stat("Runs", |o| o.totals.runs.total.to_string())}
            {stat("Completed", |o| o.totals.runs.completed.to_string())}
            {stat("From cache", |o| o.totals.runs.cached.to_string())}
            {stat("Failed", |o| o.totals.runs.failed.to_string())}
            {stat("Tokens", |o| tokens(o.totals.tokens_in + o.totals.tokens_out))}
            {stat("Cost", |o| money(o.totals.cost))}
            {stat("Cache hit rate", |o| percent(o.totals.cache_hit_rate))}
            {stat("Experiments", |o| o.totals.experiments.to_string())}
        </dl>
    }
}

#[component]
fn ActiveSweeps(overview: RwSignal<Overview>) -> impl IntoView {
    let ids = move || overview.with(|o| o.sweeps.iter().map(|a| a.sweep.id).collect::<Vec<_>>());
    view! {
        <Show when=move || overview.with(|o| !o.sweeps.is_empty())
            fallback=|| view! { <p class="empty small">"No sweep is running. Start one from an experiment's builder."</p> }>
            <ul class="sweeps">
                <For each=ids key=|id| *id let:sweep_id>
                    {
                        let entry = move || overview.with(|o| o.sweeps.iter().find(|a| a.sweep.id == sweep_id).cloned());
                        let progress = Signal::derive(move || entry().map(|a| a.sweep.progress).unwrap_or_default());
                        let Some(first) = entry() else { return ().into_any() };
                        let href = format!("/experiments/{}/live", first.sweep.experiment_id);
                        view! {
                            <li class="sweep-row">
                                <div class="sweep-head">
                                    <A href=href>{first.experiment_name.clone()}</A>
                                    <span class="muted small">{first.project_name.clone()}</span>
                                    <span class=move || format!("status {}", entry().map(|a| a.sweep.status).unwrap_or_default())>
                                        {move || entry().map(|a| a.sweep.status).unwrap_or_default()}</span>
                                </div>
                                <ProgressBar progress/>
                                <p class="meta">{move || entry().map(|a| format!("{} · {} tokens · time left {}",
                                    money(a.sweep.progress.cost),
                                    tokens(a.sweep.progress.tokens_in + a.sweep.progress.tokens_out),
                                    duration(a.sweep.progress.eta_seconds))).unwrap_or_default()}</p>
                            </li>
                        }.into_any()
                    }
                </For>
            </ul>
        </Show>
    }
}

#[component]
fn Bests(overview: RwSignal<Overview>) -> impl IntoView {
    move || {
        overview.with(|o| {
            if o.bests.is_empty() {
                return view! { <p class="empty small">"No new best yet: they appear as sweeps find better configurations."</p> }.into_any();
            }
            let names: std::collections::HashMap<uuid::Uuid, String> =
                o.experiments.iter().map(|e| (e.id, e.name.clone())).collect();
            let items = o.bests
                .clone()
                .into_iter()
                .map(|e| {
                    let id = e.experiment_id.unwrap_or_default();
                    let name = names.get(&id).cloned().unwrap_or_else(|| "experiment".into());
                    let label = e.payload.get("label").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                    let score = e.payload.get("score").and_then(|v| v.as_f64()).map_or("–".into(), |s| format!("{s:.3}"));
                    view! {
                        <li><strong>{score}</strong>" "<span class="small">{label}</span>" — "
                            <A href=format!("/experiments/{id}/live")>{name}</A>
                            <span class="muted small">" "{e.created_at.format("%Y-%m-%d %H:%M").to_string()}</span></li>
                    }
                })
                .collect_view();
            view! { <ul class="bests">{items}</ul> }.into_any()
        })
    }
}

#[component]
fn Recent(overview: RwSignal<Overview>) -> impl IntoView {
    move || {
        overview.with(|o| {
            if o.experiments.is_empty() {
                return view! {
                    <p class="empty small">"No experiments yet. "<A href="/projects">"Open a project"</A>" and build one."</p>
                }.into_any();
            }
            let rows = o
                .experiments
                .clone()
                .into_iter()
                .map(|e| view! {
                    <tr>
                        <td><A href=format!("/experiments/{}", e.id)>{e.name}</A></td>
                        <td class="small">{e.project_name}</td>
                        <td><span class=format!("status {}", e.status)>{e.status.clone()}</span></td>
                        <td>{e.run_count}</td>
                        <td><A href=format!("/experiments/{}/live", e.id)>"live"</A></td>
                    </tr>
                })
                .collect_view();
            view! {
                <table tabindex="0" class="table">
                    <thead><tr><th scope="col">"Experiment"</th><th scope="col">"Project"</th><th scope="col">"Status"</th><th scope="col">"Runs"</th><th scope="col"><span class="sr-only">"Links"</span></th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            }
            .into_any()
        })
    }
}
