//! A sweep's progress: the bar "X of Y runs" and its numbers (tokens, cost, cache hit rate,
//! time left, calls in flight). Also how progress from events is folded into a sweep.

use leptos::prelude::*;

use crate::types::{Event, Progress, Sweep};

pub fn money(cost: f64) -> String {
    if cost == 0.0 {
        "$0".to_owned()
    } else if cost < 0.01 {
        format!("${cost:.4}")
    } else {
        format!("${cost:.2}")
    }
}

pub fn percent(rate: Option<f64>) -> String {
    rate.map_or("–".to_owned(), |r| format!("{:.0}%", r * 100.0))
}

pub fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "–".to_owned(),
        Some(s) if s < 1.0 => "< 1 s".to_owned(),
        Some(s) if s < 90.0 => format!("{s:.0} s"),
        Some(s) if s < 5400.0 => format!("{:.0} min", s / 60.0),
        Some(s) => format!("{:.1} h", s / 3600.0),
    }
}

pub fn tokens(n: i64) -> String {
    match n {
        n if n >= 10_000_000 => format!("{:.1} M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.1} k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Folds the events of a batch into the sweep they belong to. Returns whether the sweep's
/// status changed, a new sweep started or a guided sweep planned a round (the page then
/// re-reads it).
pub fn apply(sweep: &mut Option<Sweep>, events: &[Event]) -> bool {
    let mut reread = false;
    for e in events {
        let Some(s) = sweep.as_mut() else {
            reread |= e.event_type == "experiment.started";
            continue;
        };
        if e.sweep_id != Some(s.id) {
            reread |= e.event_type == "experiment.started";
            continue;
        }
        match e.event_type.as_str() {
            // A guided sweep's round changed its search state: read it again.
            "sweep.round" => reread = true,
            "run.started" => s.in_flight += 1,
            "run.completed" | "run.failed" | "run.cached" => s.in_flight = (s.in_flight - 1).max(0),
            _ => {}
        }
        if let Some(p) = e
            .payload
            .get("progress")
            .and_then(|p| serde_json::from_value::<Progress>(p.clone()).ok())
            // Events can be older than what was read: never go backwards.
            && p.done >= s.progress.done
            && p.skipped >= s.progress.skipped
        {
            s.progress = p;
        }
        if let Some(status) = e.payload.get("status").and_then(|v| v.as_str())
            && e.event_type.starts_with("experiment.")
            && status != s.status
        {
            s.status = status.to_owned();
            if e.event_type == "experiment.paused" {
                s.pause_reason = e
                    .payload
                    .get("reason")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
            }
            reread = true;
        }
    }
    reread
}

/// The bar alone, with "X of Y runs".
#[component]
pub fn ProgressBar(#[prop(into)] progress: Signal<Progress>) -> impl IntoView {
    let label = move || {
        progress.with(|p| {
            let mut s = format!("{} of {} runs", p.done, p.total);
            if p.skipped > 0 {
                s.push_str(&format!(" ({} skipped)", p.skipped));
            }
            s
        })
    };
    let width = move || {
        progress.with(|p| {
            let pct = if p.total > 0 {
                p.done as f64 * 100.0 / p.total as f64
            } else {
                0.0
            };
            format!("width: {pct:.1}%")
        })
    };
    view! {
        <div class="progress">
            <div class="bar" role="progressbar" aria-label="Runs done"
                aria-valuemin="0" aria-valuemax=move || progress.with(|p| p.total)
                aria-valuenow=move || progress.with(|p| p.done)>
                <div class="fill" style=width></div>
            </div>
            <span class="count" data-testid="progress-count">{label}</span>
        </div>
    }
}

/// The bar and every number a person watching a sweep wants.
#[component]
pub fn ProgressPanel(#[prop(into)] sweep: Signal<Option<Sweep>>) -> impl IntoView {
    let p = Signal::derive(move || {
        sweep.with(|s| s.as_ref().map(|s| s.progress.clone()).unwrap_or_default())
    });
    let stat = |label: &'static str, value: Signal<String>, testid: &'static str| {
        view! { <div><dt>{label}</dt><dd data-testid=testid>{value}</dd></div> }
    };
    let num = move |f: fn(&Sweep) -> String| {
        Signal::derive(move || sweep.with(|s| s.as_ref().map_or("–".to_owned(), f)))
    };
    view! {
        <ProgressBar progress=p/>
        <dl class="stats">
            {stat("Completed", num(|s| s.progress.completed.to_string()), "stat-completed")}
            {stat("From cache", num(|s| s.progress.cached.to_string()), "stat-cached")}
            {stat("Failed", num(|s| s.progress.failed.to_string()), "stat-failed")}
            {stat("Tokens", num(|s| tokens(s.progress.tokens_in + s.progress.tokens_out)), "stat-tokens")}
            {stat("Cost", num(|s| money(s.progress.cost)), "stat-cost")}
            {stat("Cache hit rate", num(|s| percent(s.progress.cache_hit_rate)), "stat-hit-rate")}
            {stat("Time left", num(|s| if s.status == "running" { duration(s.progress.eta_seconds) } else { "–".to_owned() }), "stat-eta")}
            {stat("Calls in flight", num(|s| s.in_flight.to_string()), "stat-in-flight")}
        </dl>
    }
}
