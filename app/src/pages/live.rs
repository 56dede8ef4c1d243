//! `/experiments/:id/live`: watch a sweep and steer it. Progress, the live leaderboard (rows
//! expand to their runs), the activity timeline, and the steering controls (pause, resume
//! with a larger budget, stop, redirect, fork from a run, approve and reject). Everything
//! updates from the experiment's event stream without a reload.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{current_sweep, get_experiment, list_events};
use crate::components::charts::ProgressChart;
use crate::components::guide::GuideCard;
use crate::components::leaderboard::{LeaderboardCard, scorers};
use crate::components::progress::{ProgressPanel, apply};
use crate::components::shell::{AppShell, can_write};
use crate::components::steering::Steering;
use crate::components::stream::{LinkBadge, live_events, throttle};
use crate::components::timeline::{Timeline, TimelineFilter};
use crate::components::{error_view, id_param};
use crate::types::{Event, Experiment, Sweep};

/// The leaderboard is read again at most this often while events arrive.
const BOARD_EVERY_MS: f64 = 1000.0;
/// The progress chart is drawn again at most this often.
const CHART_EVERY_MS: f64 = 5000.0;

type Snapshot = crate::components::PageResource<Option<(Experiment, Vec<Event>, Option<Sweep>)>>;

#[component]
pub fn LivePage() -> impl IntoView {
    // Created outside every Suspense (the server and the browser number it alike). The event id
    // is read before the sweep, so the stream replays anything in between.
    let id = id_param();
    let snapshot: Snapshot = crate::components::page_resource(id, |id| async move {
        let Some(id) = id else { return Ok(None) };
        let experiment = get_experiment(id).await?;
        let events = list_events(Some(id), String::new(), 100).await?.events;
        let sweep = current_sweep(id).await?;
        Ok(Some((experiment, events, sweep)))
    });
    view! {
        <AppShell>
            <LiveView snapshot/>
        </AppShell>
    }
}

#[component]
fn LiveView(snapshot: Snapshot) -> impl IntoView {
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading the live view…"</p> }>
            {move || Suspend::new(async move {
                match snapshot.await {
                    Ok(Some((experiment, events, sweep))) => view! { <Live experiment events sweep/> }.into_any(),
                    Ok(None) => view! { <p class="error">"No such experiment."</p> }.into_any(),
                    Err(e) => error_view(e),
                }
            })}
        </Transition>
    }
}

/// Whether an event can change the leaderboard.
fn moves_board(e: &Event) -> bool {
    matches!(
        e.event_type.as_str(),
        "run.completed"
            | "run.cached"
            | "run.failed"
            | "new_best_found"
            | "scoring.completed"
            | "configuration.approved"
            | "configuration.rejected"
            | "experiment.completed"
            | "experiment.started"
    )
}

#[component]
fn Live(experiment: Experiment, events: Vec<Event>, sweep: Option<Sweep>) -> impl IntoView {
    let id = experiment.id;
    let after = events.first().map_or(0, |e| e.id);
    let sweep = RwSignal::new(sweep);
    let timeline = RwSignal::new(events);
    let filter = RwSignal::new(String::new());
    let board = RwSignal::new(0usize);
    let bump_board = throttle(BOARD_EVERY_MS, move || board.update(|n| *n += 1));
    let chart = RwSignal::new(0usize);
    let bump_chart = throttle(CHART_EVERY_MS, move || chart.update(|n| *n += 1));
    let reread = move || {
        spawn_local(async move {
            if let Ok(s) = current_sweep(id).await {
                sweep.set(s);
            }
        })
    };
    // Calls in flight are counted from events between reads; a read (at most once a second,
    // and once after the last batch) brings the count back to what the database holds.
    let settle = throttle(BOARD_EVERY_MS, reread);
    let on_batch = {
        let bump_board = bump_board.clone();
        move |batch: Vec<Event>| {
            timeline.update(|t| crate::components::timeline::merge(t, batch.clone()));
            let mut again = false;
            sweep.update(|s| again = apply(s, &batch));
            if again {
                reread();
            } else if batch.iter().any(|e| e.event_type.starts_with("run.")) {
                settle();
            }
            if batch.iter().any(moves_board) {
                bump_board();
                bump_chart();
            }
        }
    };
    let on_resync = move || {
        reread();
        board.update(|n| *n += 1);
        spawn_local(async move {
            if let Ok(page) = list_events(Some(id), String::new(), 100).await {
                timeline.update(|t| crate::components::timeline::merge(t, page.events));
            }
        });
    };
    let link = live_events(
        move || format!("/api/v1/experiments/{id}/events/stream"),
        move || Some(after),
        on_batch,
        on_resync,
    );
    crate::components::timeline::fetch_on_filter(filter, Some(id), timeline);
    let scorer_names: Vec<String> = scorers(&experiment.scoring_config)
        .into_iter()
        .map(|s| s.name)
        .collect();
    let title = format!("{} — live · PromptLooper", experiment.name);
    let changed = Signal::derive(move || board.get());
    let writable = can_write();
    let status = move || {
        sweep.with(|s| match s {
            Some(s) => {
                let reason = s
                    .pause_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                format!("{}{reason}", s.status)
            }
            None => "no sweep yet".to_owned(),
        })
    };
    let experiment = StoredValue::new(experiment);
    if writable {
        provide_context(crate::components::steering::ForkFrom(RwSignal::new(None)));
    }
    view! {
        <Title text=title/>
        <p class="crumbs">
            <A href=format!("/projects/{}", experiment.with_value(|e| e.project_id))>"Project"</A>" / "
            <A href=format!("/experiments/{id}")>{experiment.with_value(|e| e.name.clone())}</A>" / "
        </p>
        <div class="page-head">
            <h1>{experiment.with_value(|e| e.name.clone())}" — live"</h1>
            <div class="head-badges">
                <span class=move || format!("status {}", sweep.with(|s| s.as_ref().map_or(String::new(), |s| s.status.clone())))
                    data-testid="sweep-status">{status}</span>
                <LinkBadge link/>
            </div>
        </div>
        <div class="live-grid">
            <div>
                <section class="card" data-testid="progress">
                    <h2>"Progress"</h2>
                    <Show when=move || sweep.with(Option::is_some)
                        fallback=move || view! {
                            <p class="empty">"No sweep has run on this experiment yet. "
                                {writable.then(|| view! { <A href=format!("/experiments/{id}/edit#launch")>"Preview and start one"</A> })}
                            </p>
                        }>
                        <ProgressPanel sweep/>
                    </Show>
                </section>
                {writable.then(|| view! { <Steering experiment sweep/> })}
            </div>
            <section class="card timeline-card">
                <div class="card-head">
                    <h2>"Activity"</h2>
                    <TimelineFilter filter/>
                </div>
                <Timeline events=timeline filter/>
            </section>
        </div>
        <GuideCard sweep/>
        <ProgressChart experiment_id=id changed=Signal::derive(move || chart.get())/>
        <LeaderboardCard experiment_id=id scorer_names changed expandable=true/>
    }
}
