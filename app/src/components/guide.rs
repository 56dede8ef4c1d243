//! A guided sweep's search, as the live view shows it: the race (rungs, configurations tried,
//! racing, pruned, finished), the best so far, why it stops, and the prompt variants the
//! proposer wrote with where they came from.

use leptos::prelude::*;

use crate::types::{GuideState, GuidedConfig, StageChoice, Sweep};

/// "only · sim-large · temperature 0.3" for per-stage choices.
pub fn choice_label(choice: &[StageChoice]) -> String {
    let stage = |c: &StageChoice| {
        let mut parts: Vec<String> = Vec::new();
        if let Some(v) = &c.variant {
            parts.push(v.clone());
        }
        if let Some(m) = &c.model {
            parts.push(m.clone());
        }
        for (k, v) in c.params.iter().flatten() {
            parts.push(format!("{k} {v}"));
        }
        if parts.is_empty() {
            "as the stage is".to_owned()
        } else {
            parts.join(" · ")
        }
    };
    match choice {
        [one] => stage(one),
        many => many
            .iter()
            .enumerate()
            .map(|(k, c)| format!("{}: {}", k + 1, stage(c)))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

fn count(g: &GuideState, state: &str) -> usize {
    g.configurations.iter().filter(|c| c.state == state).count()
}

/// The configurations worth showing first: finished and racing by mean, then pruned.
fn ranked(g: &GuideState) -> Vec<GuidedConfig> {
    let mut list = g.configurations.clone();
    list.sort_by(|a, b| {
        let rank = |c: &GuidedConfig| match c.state.as_str() {
            "finished" => 0,
            "racing" => 1,
            _ => 2,
        };
        rank(a)
            .cmp(&rank(b))
            .then(b.mean.unwrap_or(-1.0).total_cmp(&a.mean.unwrap_or(-1.0)))
    });
    list
}

fn row(c: GuidedConfig, of: u32) -> impl IntoView {
    let best = c.state == "finished";
    view! {
        <tr class=if c.state == "pruned" { "pruned" } else { "" }>
            <td>{choice_label(&c.choice)}</td>
            <td>{c.origin}</td>
            <td class="num">{format!("{}/{of}", c.items)}</td>
            <td><span class=format!("tag {}", c.state)>{c.state.clone()}</span></td>
            <td class="num">{c.mean.map_or("–".to_owned(), |m| format!("{m:.3}"))}{best.then_some("")}</td>
        </tr>
    }
}

/// The guided search card (nothing for grid and random sweeps).
#[component]
pub fn GuideCard(#[prop(into)] sweep: Signal<Option<Sweep>>) -> impl IntoView {
    let guide = move || {
        sweep.with(|s| {
            s.as_ref()
                .and_then(|s| s.guide.clone().map(|g| (g, s.clone())))
        })
    };
    move || {
        guide().map(|(g, s)| {
            let stat = |label: &'static str, value: String, testid: &'static str| {
                view! { <div><dt>{label}</dt><dd data-testid=testid>{value}</dd></div> }
            };
            let calls = match s.max_calls {
                Some(m) => format!("{} of {m}", s.progress.calls),
                None => s.progress.calls.to_string(),
            };
            let best = g
                .best
                .as_ref()
                .map_or("none on every item yet".to_owned(), |b| format!("{:.3} (round {})", b.score, b.round));
            let rungs = g.rungs.iter().map(u32::to_string).collect::<Vec<_>>().join(" → ");
            let ending = g.stop_reason.clone().map(|r| format!("Ended: {r}.")).or_else(|| {
                g.finishing
                    .clone()
                    .map(|r| format!("No new configurations ({r}); finishing the race."))
            });
            let list = ranked(&g);
            let (top, rest): (Vec<_>, Vec<_>) = list.into_iter().enumerate().partition(|(i, _)| *i < 8);
            let of = g.items;
            let waiting = (!g.suggestions.is_empty())
                .then(|| format!("{} suggestion(s) from an agent wait for the next round.", g.suggestions.len()));
            view! {
                <section class="card guide" data-testid="guide">
                    <div class="card-head">
                        <h2>"Guided search"</h2>
                        <span class="muted small">{format!("{} · round {} · seed {}", g.search, g.round, g.seed)}</span>
                    </div>
                    <dl class="stats">
                        {stat("Configurations tried", g.configurations.len().to_string(), "guide-tried")}
                        {stat("Racing", count(&g, "racing").to_string(), "guide-racing")}
                        {stat("Pruned", count(&g, "pruned").to_string(), "guide-pruned")}
                        {stat("On every item", count(&g, "finished").to_string(), "guide-finished")}
                        {stat("Best on every item", best, "guide-best")}
                        {stat("LLM calls", calls, "guide-calls")}
                    </dl>
                    <p class="small">"Items per rung: "{rungs}". A configuration earns the next rung only while it ranks in the best share of its rung and can still beat the leader."</p>
                    {ending.map(|e| view! { <p class="small" data-testid="guide-ending">{e}</p> })}
                    {waiting.map(|w| view! { <p class="small">{w}</p> })}
                    <div class="table-scroll">
                        <table class="guide-table">
                            <caption class="sr-only">"Configurations the search tried"</caption>
                            <thead><tr><th scope="col">"Configuration"</th><th scope="col">"From"</th><th scope="col">"Items"</th><th scope="col">"State"</th><th scope="col">"Mean"</th></tr></thead>
                            <tbody>{top.into_iter().map(|(_, c)| row(c, of)).collect_view()}</tbody>
                        </table>
                    </div>
                    {(!rest.is_empty()).then(|| view! {
                        <details>
                            <summary>{format!("{} more", rest.len())}</summary>
                            <div class="table-scroll">
                                <table class="guide-table">
                                    <caption class="sr-only">"More configurations the search tried"</caption>
                                    <thead><tr><th scope="col">"Configuration"</th><th scope="col">"From"</th><th scope="col">"Items"</th><th scope="col">"State"</th><th scope="col">"Mean"</th></tr></thead>
                                    <tbody>{rest.into_iter().map(|(_, c)| row(c, of)).collect_view()}</tbody>
                                </table>
                            </div>
                        </details>
                    })}
                    {(!g.proposals.is_empty() || g.proposal_failures > 0).then(|| view! {
                        <h3>"Proposed prompts"</h3>
                        {(g.proposal_failures > 0).then(|| view! {
                            <p class="small warn">{format!("{} proposal(s) failed; see the activity.", g.proposal_failures)}</p>
                        })}
                        <ul class="proposals" data-testid="guide-proposals">
                            {g.proposals.iter().map(|p| view! {
                                <li>
                                    <strong>{p.name.clone()}</strong>
                                    {format!(" — by {} in round {}, from the best {} and worst {} so far", p.model, p.round, p.from_best.len(), p.from_worst.len())}
                                    {p.rationale.clone().map(|r| view! { <p class="small">{r}</p> })}
                                    <details>
                                        <summary>"Prompt"</summary>
                                        {p.system.clone().map(|t| view! { <pre class="prompt">{t}</pre> })}
                                        {p.user.clone().map(|t| view! { <pre class="prompt">{t}</pre> })}
                                    </details>
                                </li>
                            }).collect_view()}
                        </ul>
                    })}
                </section>
            }
        })
    }
}
