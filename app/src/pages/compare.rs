//! `/experiments/:id/compare?a=…&b=…`: two runs (run ids), or two configurations (config keys)
//! item by item. Outputs diffed word by word, the settings that differ, the scores side by
//! side; for configurations also the paired test and the pairwise judge. Without `a` and `b`
//! it offers the leaderboard's configurations to pick from.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{compare_configs, compare_runs, get_experiment, get_leaderboard};
use crate::components::runs::{DiffText, ScoreDeltas, SettingsDiff, num};
use crate::components::shell::{AppShell, can_write};
use crate::components::{error_view, id_param};
use crate::pages::judge::JudgeCard;
use crate::types::{ConfigComparison, Experiment, ItemPair, Leaderboard, RunComparison};

/// Item pairs per page.
const PAIRS: i64 = 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Compared {
    Runs(Box<RunComparison>),
    Configs(Box<ConfigComparison>),
    /// Nothing (or not two of a kind) chosen yet: the leaderboard to pick from.
    Pick(Box<Leaderboard>),
}

type Data = crate::components::PageResource<Option<(Experiment, Compared)>>;

fn is_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[component]
pub fn ComparePage() -> impl IntoView {
    // Created outside every Suspense (the server and the browser number it alike).
    let id = id_param();
    let query = use_query_map();
    let param = move |k: &str| query.read().get(k).unwrap_or_default();
    let offset = move || {
        param("offset")
            .parse::<i64>()
            .unwrap_or(0)
            .clamp(0, 1_000_000_000)
    };
    let data: Data = crate::components::page_resource(
        move || (id(), param("a"), param("b"), offset()),
        |(id, a, b, offset)| async move {
            let Some(id) = id else { return Ok(None) };
            let experiment = get_experiment(id).await?;
            let compared = match (Uuid::parse_str(&a), Uuid::parse_str(&b)) {
                (Ok(a), Ok(b)) => {
                    let c = compare_runs(a, b).await?;
                    if c.a.run.experiment_id != id {
                        return Err(crate::error::AppError::Field {
                            field: "a".into(),
                            message: "the runs belong to another experiment".into(),
                        });
                    }
                    Compared::Runs(Box::new(c))
                }
                _ if is_key(&a) && is_key(&b) => {
                    Compared::Configs(Box::new(compare_configs(id, a, b, PAIRS, offset).await?))
                }
                _ => Compared::Pick(Box::new(get_leaderboard(id, String::new()).await?)),
            };
            Ok(Some((experiment, compared)))
        },
    );
    view! {
        <AppShell>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(Some((e, c))) => view! { <Compare experiment=e compared=c/> }.into_any(),
                        Ok(None) => view! { <p class="error">"No such experiment."</p> }.into_any(),
                        Err(e) => error_view(e),
                    }
                })}
            </Transition>
        </AppShell>
    }
}

#[component]
fn Compare(experiment: Experiment, compared: Compared) -> impl IntoView {
    let title = format!("Compare · {} · PromptLooper", experiment.name);
    let body = match compared {
        Compared::Runs(c) => runs_view(*c, experiment.id).into_any(),
        Compared::Configs(c) => view! { <Configs c=*c experiment=experiment.clone()/> }.into_any(),
        Compared::Pick(board) => {
            view! { <Pick board=*board experiment_id=experiment.id/> }.into_any()
        }
    };
    view! {
        <Title text=title/>
        <p class="crumbs">
            <A href="/projects">"Projects"</A>" / "
            <A href=format!("/projects/{}", experiment.project_id)>"Project"</A>" / "
            <A href=format!("/experiments/{}", experiment.id)>{experiment.name.clone()}</A>" / "
        </p>
        {body}
    }
}

fn runs_view(c: RunComparison, experiment_id: Uuid) -> impl IntoView {
    let side = |label: &'static str, d: &crate::types::RunDetail| {
        let r = &d.run;
        view! {
            <div class="side">
                <h3>{label}" · "<A href=format!("/runs/{}", r.id)>{format!("run of item {}", r.item_index + 1)}</A></h3>
                <p class="meta">
                    <span class=format!("status {}", r.status)>{r.status.clone()}</span>
                    {format!(" · score {} · {} tokens · {} · {}", num(d.weighted_score), r.tokens_in + r.tokens_out,
                        r.duration_ms.map_or("–".into(), |ms| format!("{ms} ms")),
                        r.cost_estimate.map_or("unknown price".into(), |c| format!("${c:.5}")))}
                </p>
            </div>
        }
    };
    let same_item = c.a.run.item_id == c.b.run.item_id;
    view! {
        <h1>"Compare two runs"</h1>
        <section class="card sides">{side("A", &c.a)}{side("B", &c.b)}</section>
        {(!same_item).then(|| view! { <p class="muted">"The two runs are of different items: their inputs differ too."</p> })}
        <section class="card">
            <h2>"Output: A → B"</h2>
            <DiffText diff=c.output/>
        </section>
        <section class="card">
            <h2>"Scores"</h2>
            <ScoreDeltas scores=c.scores/>
        </section>
        <section class="card">
            <h2>"Settings that differ"</h2>
            <SettingsDiff differences=c.differences/>
        </section>
        <section class="card">
            <h2>"Prompts sent"</h2>
            {c.prompts.into_iter().enumerate().map(|(k, d)| view! {
                <details>
                    <summary>{format!("Stage {}: {} words added, {} removed", k + 1, d.added_words, d.removed_words)}</summary>
                    <DiffText diff=d/>
                </details>
            }).collect_view()}
        </section>
        <p><A href=format!("/experiments/{experiment_id}/compare")>"Compare other configurations…"</A></p>
    }
}

#[component]
fn Configs(c: ConfigComparison, experiment: Experiment) -> impl IntoView {
    let side = |label: &'static str, e: &crate::types::LeaderboardEntry| {
        let ci = match (e.ci_low, e.ci_high) {
            (Some(lo), Some(hi)) => format!(" [{lo:.3}–{hi:.3}]"),
            _ => String::new(),
        };
        view! {
            <div class="side">
                <h3>{label}</h3>
                <p class="small">{e.label.clone()}</p>
                <p class="meta">{format!("score {}{ci} · {} samples · {} runs · {} · {}", num(e.score), e.samples, e.runs,
                    e.cost.map_or("–".into(), |c| format!("${c:.5} in all")), e.latency_ms.map_or("–".into(), |l| format!("{l:.0} ms")))}</p>
            </div>
        }
    };
    let verdict = c.paired.clone().map(|p| {
        let class = if p.significant {
            "verdict significant"
        } else {
            "verdict"
        };
        view! { <p class=class data-testid="paired">{p.verdict}</p> }
    });
    let (key_a, key_b) = (c.a.config_key.clone(), c.b.config_key.clone());
    let pages = pager(experiment.id, &key_a, &key_b, c.offset, c.total);
    view! {
        <h1>"Compare two configurations"</h1>
        <section class="card sides">{side("A", &c.a)}{side("B", &c.b)}</section>
        <section class="card">
            <h2>"Scores"</h2>
            <ScoreDeltas scores=c.scores.clone()/>
            {verdict}
        </section>
        <section class="card">
            <h2>"Settings that differ"</h2>
            <SettingsDiff differences=c.differences.clone()/>
        </section>
        {can_write().then(|| view! { <JudgeCard experiment_id=experiment.id first=key_a.clone() second=key_b.clone()/> })}
        <section class="card" data-testid="item-pairs">
            <h2>{format!("Item by item ({} of A's runs)", c.total)}</h2>
            {c.items.into_iter().map(pair_view).collect_view()}
            {pages}
        </section>
    }
}

fn pair_view(p: ItemPair) -> impl IntoView {
    let repeat = (p.repeat_index > 0).then(|| format!(", repeat {}", p.repeat_index + 1));
    let score_b =
        p.b.as_ref()
            .map(|b| num(b.weighted_score))
            .unwrap_or_else(|| "no run".into());
    view! {
        <article class="pair" data-testid="pair">
            <h3>{format!("Item {}", p.item_index + 1)}{repeat}
                <span class="meta">{format!(" · A {} → B {}", num(p.a.weighted_score), score_b)}</span></h3>
            <p class="meta">
                <A href=format!("/runs/{}", p.a.run_id)>"run A"</A>
                {p.b.as_ref().map(|b| view! { " · " <A href=format!("/runs/{}", b.run_id)>"run B"</A> })}
            </p>
            {match p.output {
                Some(d) => view! { <DiffText diff=d/> }.into_any(),
                None => view! { <pre class="response">{p.a.output.clone().unwrap_or_default()}</pre> }.into_any(),
            }}
        </article>
    }
}

fn pager(experiment_id: Uuid, a: &str, b: &str, offset: i64, total: i64) -> impl IntoView + use<> {
    let href = move |o: i64| format!("/experiments/{experiment_id}/compare?a={a}&b={b}&offset={o}");
    let prev = (offset > 0).then(|| href((offset - PAIRS).max(0)));
    let next = (offset + PAIRS < total).then(|| href(offset + PAIRS));
    view! {
        <nav class="pager" aria-label="Item pages">
            {prev.map(|h| view! { <A href=h>"← previous items"</A> })}
            <span class="muted">{format!(" items {}–{} of {} ", (offset + 1).min(total), (offset + PAIRS).min(total), total)}</span>
            {next.map(|h| view! { <A href=h>"next items →"</A> })}
        </nav>
    }
}

/// Two pickers over the leaderboard's configurations.
#[component]
fn Pick(board: Leaderboard, experiment_id: Uuid) -> impl IntoView {
    let options: Vec<(String, String)> = board
        .entries
        .iter()
        .map(|e| {
            (
                e.config_key.clone(),
                format!("#{} {} ({})", e.rank, e.label, num(e.score)),
            )
        })
        .collect();
    let a = RwSignal::new(options.first().map(|o| o.0.clone()).unwrap_or_default());
    let b = RwSignal::new(options.get(1).map(|o| o.0.clone()).unwrap_or_default());
    let navigate = use_navigate();
    let go = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        navigate(
            &format!(
                "/experiments/{experiment_id}/compare?a={}&b={}",
                a.get_untracked(),
                b.get_untracked()
            ),
            Default::default(),
        );
    };
    let select = |label: &'static str, value: RwSignal<String>, options: Vec<(String, String)>| {
        view! {
            <label>{label}
                <select prop:value=move || value.get() on:change=move |ev| value.set(event_target_value(&ev))>
                    {options.into_iter().map(|(k, l)| view! { <option value=k>{l}</option> }).collect_view()}
                </select>
            </label>
        }
    };
    view! {
        <h1>"Compare two configurations"</h1>
        <section class="card">
            {if options.len() < 2 {
                view! { <p class="empty">"There are not two scored configurations to compare yet."</p> }.into_any()
            } else {
                view! {
                    <form class="stack" on:submit=go data-testid="pick-configs">
                        {select("A", a, options.clone())}
                        {select("B", b, options.clone())}
                        <button type="submit" class="primary" disabled=move || a.get() == b.get()>"Compare"</button>
                    </form>
                }.into_any()
            }}
        </section>
    }
}
