//! Pieces of the run and compare pages: numbers, parameters, scores with their reasons, ratings.

use leptos::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::api::RateRun;
use crate::components::shell::can_write;
use crate::components::{ErrorNote, action_error};
use crate::types::{Me, Rating, RatingScale, Score};

/// A score or mean as the dashboard prints it (`–` when absent).
pub fn num(x: Option<f64>) -> String {
    x.map_or("–".to_owned(), |v| format!("{v:.3}"))
}

/// A signed difference (`+0.120`), `–` when absent.
pub fn delta(x: Option<f64>) -> String {
    x.map_or("–".to_owned(), |v| format!("{v:+.3}"))
}

/// A JSON value in words: strings bare, numbers trimmed, lists joined, objects compact.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{}", (f * 1e4).round() / 1e4),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            if items.is_empty() {
                "none".into()
            } else {
                items.iter().map(value_text).collect::<Vec<_>>().join(", ")
            }
        }
        other => other.to_string(),
    }
}

/// A stage's parameters in one line: `temperature 0.7 · max_tokens 256`.
pub fn params_text(params: &Value) -> String {
    match params {
        Value::Object(o) if !o.is_empty() => o
            .iter()
            .map(|(k, v)| format!("{k} {}", value_text(v)))
            .collect::<Vec<_>>()
            .join(" · "),
        _ => "default parameters".into(),
    }
}

/// Why a scorer gave what it gave: its metadata as a list of named facts.
pub fn reasons(metadata: &Value) -> impl IntoView + use<> {
    let facts: Vec<(String, String)> = match metadata {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.replace('_', " "), value_text(v)))
            .collect(),
        Value::Null => Vec::new(),
        other => vec![("detail".into(), value_text(other))],
    };
    (!facts.is_empty()).then(|| {
        view! {
            <dl class="reasons">
                {facts.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
            </dl>
        }
    })
}

/// Every score of a run: value, and the scorer's reasons or why it could not score.
#[component]
pub fn ScoresCard(scores: Vec<Score>) -> impl IntoView {
    view! {
        <section class="card" data-testid="scores">
            <h2>"Scores"</h2>
            {if scores.is_empty() {
                view! { <p class="empty">"No scores: the experiment has no scorers, or this run has not been scored."</p> }.into_any()
            } else {
                view! {
                    <div class="scroll" tabindex="0">
                    <table class="table scores">
                        <thead><tr><th scope="col">"Scorer"</th><th scope="col">"Score"</th><th scope="col">"Why"</th></tr></thead>
                        <tbody>
                            {scores.into_iter().map(|s| view! {
                                <tr data-testid="score-row" data-scorer=s.scorer.clone()>
                                    <th scope="row">{s.scorer.clone()}</th>
                                    <td><strong>{num(s.value)}</strong></td>
                                    <td>
                                        {s.error.clone().map(|e| view! { <p class="error">{e}</p> })}
                                        {reasons(&s.metadata)}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

/// The ratings people gave this run (yours marked), and a form to rate it.
#[component]
pub fn RatingsCard(
    run_id: Uuid,
    ratings: Vec<Rating>,
    humans: Vec<(String, RatingScale)>,
    rate: ServerAction<RateRun>,
) -> impl IntoView {
    let me = use_context::<Me>()
        .and_then(|m| m.user)
        .map(|u| u.id.to_string());
    let list = if ratings.is_empty() {
        view! { <p class="empty">"No ratings yet."</p> }.into_any()
    } else {
        view! {
            <ul class="ratings" data-testid="ratings">
                {ratings.into_iter().map(|r| {
                    let who = if me.as_deref() == Some(r.rater.as_str()) {
                        "you".to_owned()
                    } else {
                        r.rater_name.clone().unwrap_or_else(|| r.rater.clone())
                    };
                    let shown = match r.raw.as_str() {
                        "up" => "👍 good".to_owned(),
                        "down" => "👎 bad".to_owned(),
                        stars => format!("{stars} of 5 stars"),
                    };
                    view! {
                        <li>
                            <strong>{r.scorer.clone()}</strong>": "{shown}" — "{who}
                            <span class="muted">{format!(" · {}", r.updated_at.format("%Y-%m-%d %H:%M"))}</span>
                            {(!r.comment.is_empty()).then(|| view! { <blockquote>{r.comment.clone()}</blockquote> })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    let form =
        (can_write() && !humans.is_empty()).then(|| view! { <RateForm run_id humans rate/> });
    view! {
        <section class="card" data-testid="ratings-card">
            <h2>"Ratings"</h2>
            {list}
            {form}
        </section>
    }
}

#[component]
fn RateForm(
    run_id: Uuid,
    humans: Vec<(String, RatingScale)>,
    rate: ServerAction<RateRun>,
) -> impl IntoView {
    let scorer = RwSignal::new(humans[0].0.clone());
    let value = RwSignal::new(String::new());
    let comment = RwSignal::new(String::new());
    let error = action_error(rate);
    let scales = StoredValue::new(humans.clone());
    let scale = move || {
        scales.with_value(|h| {
            h.iter()
                .find(|(n, _)| *n == scorer.get())
                .map(|(_, s)| *s)
                .unwrap_or_default()
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let v = value.get_untracked();
        let (thumbs, stars) = match scale() {
            RatingScale::Thumbs => (Some(v), None),
            RatingScale::Stars => (None, v.parse::<i64>().ok()),
        };
        let comment = comment.get_untracked();
        rate.dispatch(RateRun {
            run_id,
            scorer: scorer.get_untracked(),
            thumbs,
            stars,
            comment: (!comment.trim().is_empty()).then_some(comment),
        });
    };
    view! {
        <form class="stack rate-form" on:submit=submit data-testid="rate-form">
            <div class="row">
                <label>"Scorer"
                    <select data-field="scorer" on:change=move |ev| { scorer.set(event_target_value(&ev)); value.set(String::new()); }>
                        {humans.into_iter().map(|(n, _)| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Rating"
                    <select data-field="rating" prop:value=move || value.get() on:change=move |ev| value.set(event_target_value(&ev))>
                        <option value="">"choose…"</option>
                        {move || match scale() {
                            RatingScale::Thumbs => view! {
                                <option value="up">"👍 good"</option>
                                <option value="down">"👎 bad"</option>
                            }.into_any(),
                            RatingScale::Stars => (1..=5).map(|n| view! { <option value=n.to_string()>{format!("{n} of 5 stars")}</option> }).collect_view().into_any(),
                        }}
                    </select>
                </label>
            </div>
            <label>"Comment (optional)"
                <textarea data-field="comment" rows="2" maxlength="2000" prop:value=move || comment.get()
                    on:input=move |ev| comment.set(event_target_value(&ev))></textarea>
            </label>
            <button type="submit" class="primary" disabled=move || rate.pending().get() || value.get().is_empty()>"Save rating"</button>
            <ErrorNote error/>
        </form>
    }
}

/// A word diff as text with its insertions and deletions marked (`<ins>`/`<del>`, which screen
/// readers announce), and a line counting them.
#[component]
pub fn DiffText(diff: crate::types::TextDiff) -> impl IntoView {
    use crate::types::DiffOp;
    let summary = format!(
        "{} word{} added, {} removed · {:.0} % alike",
        diff.added_words,
        if diff.added_words == 1 { "" } else { "s" },
        diff.removed_words,
        diff.similarity * 100.0
    );
    view! {
        <p class="meta diff-summary">{summary}</p>
        <div class="diff" data-testid="diff" tabindex="0">
            {diff.spans.into_iter().map(|s| match s.op {
                DiffOp::Same => view! { <span>{s.text}</span> }.into_any(),
                DiffOp::Added => view! { <ins>{s.text}</ins> }.into_any(),
                DiffOp::Removed => view! { <del>{s.text}</del> }.into_any(),
            }).collect_view()}
        </div>
    }
}

/// The settings two runs or configurations differ in: stage, setting, a and b.
#[component]
pub fn SettingsDiff(differences: Vec<crate::types::ConfigDelta>) -> impl IntoView {
    if differences.is_empty() {
        return view! { <p class="muted">"Same settings: the difference comes from sampling (or the item)."</p> }.into_any();
    }
    let text = |v: Option<Value>| v.as_ref().map_or("–".to_owned(), value_text);
    view! {
        <div class="scroll" tabindex="0">
        <table class="table" data-testid="settings-diff">
            <thead><tr><th scope="col">"Stage"</th><th scope="col">"Setting"</th><th scope="col">"A"</th><th scope="col">"B"</th></tr></thead>
            <tbody>
                {differences.into_iter().map(|d| view! {
                    <tr><td>{d.stage + 1}</td><th scope="row">{d.name.clone()}</th><td><del>{text(d.a)}</del></td><td><ins>{text(d.b)}</ins></td></tr>
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
    .into_any()
}

/// Scores side by side with b − a.
#[component]
pub fn ScoreDeltas(scores: Vec<crate::types::ScoreDelta>) -> impl IntoView {
    view! {
        <div class="scroll" tabindex="0">
        <table class="table" data-testid="score-deltas">
            <thead><tr><th scope="col">"Scorer"</th><th scope="col">"A"</th><th scope="col">"B"</th><th scope="col">"B − A"</th></tr></thead>
            <tbody>
                {scores.into_iter().map(|s| {
                    let class = match s.difference {
                        Some(d) if d > 0.0 => "up",
                        Some(d) if d < 0.0 => "down",
                        _ => "",
                    };
                    view! {
                        <tr><th scope="row">{s.scorer.clone()}</th><td>{num(s.a)}</td><td>{num(s.b)}</td><td class=class>{delta(s.difference)}</td></tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}
