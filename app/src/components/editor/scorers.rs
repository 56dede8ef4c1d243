//! Editing an experiment's scorers: every kind with its own fields and a weight, described by
//! a table rather than a form per kind, and "try it on a run" before saving.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::draft::{Bad, Text, literal};
use super::space::{AreaField, EndpointField, TextField, index_of, small_button};
use super::{FieldErrors, FieldMsg, next_key};
use crate::api::{TryScorer, list_runs};
use crate::types::{Endpoint, SCORER_KINDS, ScorerTest};

/// How a scorer setting is typed.
#[derive(Clone, Copy, PartialEq)]
pub enum Input {
    Text,
    Area,
    Number,
    Check(bool),
    Choice(&'static [&'static str]),
    /// One entry per line.
    Lines,
    Json,
    Endpoint,
    /// `Name: value` per line (values write-only once saved).
    Headers,
}

pub struct Setting {
    pub key: &'static str,
    pub label: &'static str,
    pub input: Input,
    /// Shown only when another setting has one of these values.
    pub when: Option<(&'static str, &'static [&'static str])>,
}

const fn s(key: &'static str, label: &'static str, input: Input) -> Setting {
    Setting {
        key,
        label,
        input,
        when: None,
    }
}

const fn only(
    key: &'static str,
    label: &'static str,
    input: Input,
    on: &'static str,
    values: &'static [&'static str],
) -> Setting {
    Setting {
        key,
        label,
        input,
        when: Some((on, values)),
    }
}

/// The settings of each scorer kind.
pub fn settings(kind: &str) -> &'static [Setting] {
    use Input::*;
    const MD: &[&str] = &["markdown"];
    const EMBEDDING: &[Setting] = &[
        s("endpoint_id", "Embedding endpoint", Endpoint),
        s(
            "model",
            "Model (default: sim-embed on a simulated endpoint)",
            Text,
        ),
    ];
    const LEXICAL: &[Setting] = &[s("metric", "Metric", Choice(&["token_f1", "rouge_l"]))];
    const LENGTH: &[Setting] = &[
        s("unit", "Unit", Choice(&["characters", "words", "tokens"])),
        s("min", "Minimum", Number),
        s("max", "Maximum", Number),
        s("falloff", "Falloff (× the bound; 0 = hard limit)", Number),
    ];
    const FORMAT: &[Setting] = &[
        s(
            "format",
            "Format",
            Choice(&["json", "json_schema", "regex", "markdown"]),
        ),
        only("schema", "JSON Schema", Json, "format", &["json_schema"]),
        only("pattern", "Regex pattern", Text, "format", &["regex"]),
        only(
            "full_match",
            "The whole output must match",
            Check(false),
            "format",
            &["regex"],
        ),
        only(
            "allow_code_fence",
            "Accept JSON in a ```json fence",
            Check(true),
            "format",
            &["json", "json_schema"],
        ),
        only("min_headings", "At least N headings", Number, "format", MD),
        only(
            "min_list_items",
            "At least N list items",
            Number,
            "format",
            MD,
        ),
        only(
            "min_code_blocks",
            "At least N code blocks",
            Number,
            "format",
            MD,
        ),
        only("min_tables", "At least N tables", Number, "format", MD),
        only(
            "required_headings",
            "Required headings (one per line)",
            Lines,
            "format",
            MD,
        ),
    ];
    const KEYWORDS: &[Setting] = &[
        s("required", "Required terms (one per line)", Lines),
        s("forbidden", "Forbidden terms (one per line)", Lines),
        s("mode", "Score", Choice(&["fraction", "all", "any"])),
        s("case_sensitive", "Case-sensitive", Check(false)),
        s("whole_words", "Whole words only", Check(false)),
    ];
    const HUMAN: &[Setting] = &[s("scale", "Scale", Choice(&["thumbs", "stars"]))];
    const JUDGE: &[Setting] = &[
        s("endpoint_id", "Judge endpoint", Endpoint),
        s("model", "Judge model", Text),
        s(
            "prompt",
            "Rubric template (sees input, output, reference, min, max)",
            Area,
        ),
        s("system", "System template", Area),
        s("min", "Scale minimum (default 1)", Number),
        s("max", "Scale maximum (default 10)", Number),
        s(
            "params",
            "Parameters (JSON, default {\"temperature\": 0})",
            Json,
        ),
    ];
    const RHAI: &[Setting] = &[
        s(
            "script",
            "Rhai script (sees input, output, reference, context)",
            Area,
        ),
        s("timeout_ms", "Timeout (ms)", Number),
    ];
    const WEBHOOK: &[Setting] = &[
        s("url", "URL", Text),
        s(
            "headers",
            "Headers (Name: value per line; stored encrypted)",
            Headers,
        ),
        s("timeout_ms", "Timeout (ms)", Number),
        s("retries", "Retries", Number),
    ];
    const PYTHON: &[Setting] = &[
        s(
            "code",
            "Python code defining score(input, output, reference, context)",
            Area,
        ),
        s("timeout_ms", "Timeout (ms)", Number),
    ];
    match kind {
        "embedding_similarity" => EMBEDDING,
        "lexical_similarity" => LEXICAL,
        "length" => LENGTH,
        "format" => FORMAT,
        "keywords" => KEYWORDS,
        "human_rating" => HUMAN,
        "llm_judge" => JUDGE,
        "rhai" => RHAI,
        "webhook" => WEBHOOK,
        "python" => PYTHON,
        _ => &[],
    }
}

/// A scorer as typed: its kind, name, weight and settings (text by key).
#[derive(Clone, Copy)]
pub struct ScorerDraft {
    pub key: u64,
    pub kind: Text,
    pub name: Text,
    pub weight: Text,
    pub values: RwSignal<BTreeMap<String, String>>,
}

impl ScorerDraft {
    pub fn blank(kind: &str) -> Self {
        ScorerDraft {
            key: next_key(),
            kind: RwSignal::new(kind.to_owned()),
            name: RwSignal::new(String::new()),
            weight: RwSignal::new("1".to_owned()),
            values: RwSignal::new(BTreeMap::new()),
        }
    }

    /// From a saved scorer (a flat object with `kind`, `name`, `weight` and settings).
    pub fn from_json(v: &Value) -> Self {
        let d = ScorerDraft::blank(v.get("kind").and_then(Value::as_str).unwrap_or("keywords"));
        let mut values = BTreeMap::new();
        if let Value::Object(o) = v {
            for (k, v) in o {
                let shown = match (k.as_str(), v) {
                    ("kind", _) => continue,
                    ("name", Value::String(n)) => {
                        d.name.set(n.clone());
                        continue;
                    }
                    ("weight", w) => {
                        d.weight.set(w.to_string());
                        continue;
                    }
                    (_, Value::String(s)) => s.clone(),
                    ("headers", Value::Object(h)) => h
                        .iter()
                        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    (_, Value::Array(a)) if a.iter().all(Value::is_string) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    (_, Value::Bool(b)) => b.to_string(),
                    (_, Value::Number(n)) => n.to_string(),
                    (_, other) => serde_json::to_string_pretty(other).unwrap_or_default(),
                };
                values.insert(k.clone(), shown);
            }
        }
        d.values.set(values);
        d
    }

    /// The scorer as the engine reads it. `at`: its path (`scoring_config[2]`).
    pub fn to_json(&self, at: &str) -> Result<Value, Bad> {
        let kind = self.kind.get_untracked();
        let values = self.values.get_untracked();
        let mut o = Map::new();
        o.insert("kind".into(), Value::String(kind.clone()));
        let name = self.name.get_untracked();
        if !name.trim().is_empty() {
            o.insert("name".into(), Value::String(name.trim().to_owned()));
        }
        let weight = self.weight.get_untracked();
        if !weight.trim().is_empty() {
            let w = super::draft::parse_f64(&weight, &format!("{at}.weight"))?;
            o.insert("weight".into(), serde_json::json!(w));
        }
        for setting in settings(&kind) {
            if !shown(setting, &values) {
                continue;
            }
            let field = format!("{at}.{}", setting.key);
            let raw = values.get(setting.key).cloned().unwrap_or_default();
            let value = match setting.input {
                Input::Check(default) => Some(Value::Bool(match raw.as_str() {
                    "" => default,
                    v => v == "true",
                })),
                _ if raw.trim().is_empty() => None,
                Input::Text | Input::Area | Input::Choice(_) | Input::Endpoint => {
                    Some(Value::String(raw))
                }
                Input::Number => match literal(&raw) {
                    n @ Value::Number(_) => Some(n),
                    _ => return Err((field, "must be a number".into())),
                },
                Input::Lines => Some(Value::Array(
                    raw.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(|l| Value::String(l.to_owned()))
                        .collect(),
                )),
                Input::Json => Some(
                    serde_json::from_str(&raw)
                        .map_err(|e| (field.clone(), format!("must be valid JSON ({e})")))?,
                ),
                Input::Headers => {
                    let mut h = Map::new();
                    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
                        let (k, v) = line.split_once(':').ok_or_else(|| {
                            (field.clone(), format!("{line:?}: write Name: value"))
                        })?;
                        h.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
                    }
                    Some(Value::Object(h))
                }
            };
            if let Some(v) = value {
                o.insert(setting.key.into(), v);
            }
        }
        Ok(Value::Object(o))
    }
}

fn shown(setting: &Setting, values: &BTreeMap<String, String>) -> bool {
    match setting.when {
        None => true,
        Some((on, allowed)) => {
            let v = values.get(on).map(String::as_str).unwrap_or("");
            // A choice left empty reads as its first option.
            let v = if v.is_empty() {
                settings_choice_default(on)
            } else {
                v
            };
            allowed.contains(&v)
        }
    }
}

fn settings_choice_default(key: &str) -> &'static str {
    match key {
        "format" => "json",
        _ => "",
    }
}

/// Every scorer of the experiment, each with its settings, and a way to try one on a run.
/// `experiment_id`: set once the experiment is saved (trying needs its runs).
#[component]
pub fn ScorersEditor(
    scorers: RwSignal<Vec<ScorerDraft>>,
    #[prop(into)] endpoints: Signal<Vec<Endpoint>>,
    experiment_id: Option<Uuid>,
) -> impl IntoView {
    let add = RwSignal::new("keywords".to_owned());
    view! {
        <div data-field="scoring_config">
            <FieldMsg path=Signal::derive(|| "scoring_config".to_owned())/>
        </div>
        <For each=move || scorers.get() key=|s| s.key let:d>
            <ScorerCard d scorers endpoints experiment_id/>
        </For>
        {move || scorers.with(Vec::is_empty).then(|| view! {
            <p class="empty small">"No scorers: runs are recorded but not ranked. Add one to rank configurations."</p>
        })}
        <div class="row">
            <label class="field"><span>"Kind"</span>
                <select aria-label="Kind of scorer to add" on:change=move |ev| add.set(event_target_value(&ev))>
                    {SCORER_KINDS.iter().map(|k| view! { <option value=*k selected=*k == "keywords">{*k}</option> }).collect_view()}
                </select>
            </label>
            {small_button("Add scorer", "plus", "Add a scorer".into(), move || {
                scorers.update(|l| l.push(ScorerDraft::blank(&add.get_untracked())))
            })}
        </div>
    }
}

#[component]
fn ScorerCard(
    d: ScorerDraft,
    scorers: RwSignal<Vec<ScorerDraft>>,
    endpoints: Signal<Vec<Endpoint>>,
    experiment_id: Option<Uuid>,
) -> impl IntoView {
    let j = index_of(scorers, d.key, |s| s.key);
    let base = Signal::derive(move || format!("scoring_config[{}]", j.get()));
    let f = move |name: &'static str| Signal::derive(move || format!("{}.{name}", base.get()));
    // Which settings show changes only with the kind or a choice they depend on: typing in
    // a field does not redraw the others.
    let visible = Memo::new(move |_| {
        let kind = d.kind.get();
        let shown: Vec<usize> = d.values.with(|values| {
            settings(&kind)
                .iter()
                .enumerate()
                .filter(|(_, s)| shown(s, values))
                .map(|(i, _)| i)
                .collect()
        });
        (kind, shown)
    });
    let fields = move || {
        let (kind, shown) = visible.get();
        let all = settings(&kind);
        shown
            .into_iter()
            .map(|i| setting_field(&all[i], d.values, f(all[i].key), endpoints))
            .collect_view()
    };
    view! {
        <fieldset class="entry scorer" data-field=move || base.get()>
            <legend>{move || format!("Scorer {} — {}", j.get() + 1, d.kind.get())}</legend>
            <FieldMsg path=base/>
            <div class="row">
                <label class="field"><span>"Kind"</span>
                    <select data-field=move || format!("{}.kind", base.get())
                        on:change=move |ev| d.kind.set(event_target_value(&ev))>
                        {SCORER_KINDS.iter().map(|k| view! {
                            <option value=*k selected=move || d.kind.get() == *k>{*k}</option>
                        }).collect_view()}
                    </select>
                </label>
                <TextField label="Name" value=d.name path=f("name") placeholder="(the kind)"/>
                <TextField label="Weight" value=d.weight path=f("weight")/>
            </div>
            <div class="settings">{fields}</div>
            <div class="row">
                {small_button("Remove", "trash", "Remove this scorer".into(), move || scorers.update(|l| l.retain(|x| x.key != d.key)))}
            </div>
            {experiment_id.map(|id| view! { <TryScorer experiment_id=id d base/> })}
        </fieldset>
    }
}

fn setting_field(
    setting: &'static Setting,
    values: RwSignal<BTreeMap<String, String>>,
    path: Signal<String>,
    endpoints: Signal<Vec<Endpoint>>,
) -> AnyView {
    let key = setting.key;
    // Each setting gets a signal of its own, written back into the map.
    let value = RwSignal::new(values.with_untracked(|m| m.get(key).cloned().unwrap_or_default()));
    Effect::new(move |_| {
        let v = value.get();
        if values.with_untracked(|m| m.get(key) != Some(&v)) {
            values.update(|m| {
                m.insert(key.to_owned(), v);
            });
        }
    });
    match setting.input {
        Input::Text => view! { <TextField label=setting.label value path/> }.into_any(),
        Input::Number => view! { <TextField label=setting.label value path kind="text"/> }.into_any(),
        Input::Area | Input::Lines | Input::Json | Input::Headers => {
            view! { <AreaField label=setting.label value path rows=4/> }.into_any()
        }
        Input::Endpoint => view! { <EndpointField label=setting.label value path endpoints/> }.into_any(),
        Input::Check(default) => {
            let checked = move || match value.get().as_str() {
                "" => default,
                v => v == "true",
            };
            view! {
                <label class="field check">
                    <input type="checkbox" prop:checked=checked data-field=move || path.get()
                        on:change=move |ev| value.set(event_target_checked(&ev).to_string())/>
                    <span>{setting.label}</span>
                    <FieldMsg path/>
                </label>
            }
            .into_any()
        }
        Input::Choice(options) => view! {
            <label class="field"><span>{setting.label}</span>
                <select data-field=move || path.get() on:change=move |ev| value.set(event_target_value(&ev))>
                    {options.iter().enumerate().map(|(i, o)| view! {
                        <option value=*o selected=move || { let v = value.get(); v == *o || (v.is_empty() && i == 0) }>{*o}</option>
                    }).collect_view()}
                </select>
                <FieldMsg path/>
            </label>
        }
        .into_any(),
    }
}

/// Scores one of the experiment's runs with the scorer as it is now typed.
#[component]
fn TryScorer(experiment_id: Uuid, d: ScorerDraft, base: Signal<String>) -> impl IntoView {
    let runs = crate::components::load_in_browser(
        || (),
        move |_| async move {
            list_runs(
                experiment_id,
                crate::types::RunListQuery {
                    status: "completed".into(),
                    limit: 50,
                    ..Default::default()
                },
            )
            .await
            .ok()
        },
    );
    let run = RwSignal::new(String::new());
    let trial = ServerAction::<TryScorer>::new();
    let local = FieldErrors::new();
    let errors = use_context::<FieldErrors>();
    let go = move |_| {
        let at = base.get_untracked();
        let scorer = match d.to_json(&at) {
            Ok(v) => v,
            Err((field, message)) => {
                if let Some(e) = errors {
                    e.show_field(&field, &message);
                }
                return;
            }
        };
        let Ok(run_id) = Uuid::parse_str(&run.get_untracked()) else {
            local.show_field("", "choose a run to try the scorer on");
            return;
        };
        local.clear();
        trial.dispatch(TryScorer {
            experiment_id,
            test: ScorerTest { scorer, run_id },
        });
    };
    // A refusal names `scorer.<field>`: shown at this scorer's field.
    Effect::new(move |_| {
        if let Some(Err(e)) = trial.value().get() {
            match (&e, errors) {
                (crate::error::AppError::Field { field, message }, Some(errors)) => {
                    let field = field.replacen("scorer", &base.get_untracked(), 1);
                    errors.show_field(&field, message);
                }
                _ => local.show(&e),
            }
        }
    });
    let result = move || {
        trial.value().get().and_then(Result::ok).map(|score| {
            let value = score
                .value
                .map_or("no score".to_owned(), |v| format!("{v:.3}"));
            let meta = serde_json::to_string_pretty(&score.metadata).unwrap_or_default();
            view! {
                <div class="trial" data-testid="trial-result" role="status">
                    <p><strong>"Score: "{value}</strong>
                        {score.error.map(|e| view! { <span class="error">" — "{e}</span> })}</p>
                    <pre class="meta-json">{meta}</pre>
                </div>
            }
        })
    };
    view! {
        <div class="try row">
            <label class="field grow"><span>"Try it on a run"</span>
                <select on:change=move |ev| run.set(event_target_value(&ev))>
                    <option value="">"choose a completed run…"</option>
                    {move || runs.get().map(|page| page.runs.into_iter().map(|r| {
                        let text = format!("item {} · {} · {}", r.run.item_index + 1, r.label,
                            r.weighted_score.map_or("unscored".into(), |s| format!("{s:.3}")));
                        view! { <option value=r.run.id.to_string()>{text}</option> }
                    }).collect_view())}
                </select>
            </label>
            <button type="button" class="small" on:click=go disabled=move || trial.pending().get()>
                {move || if trial.pending().get() { "Trying…" } else { "Try scorer" }}
            </button>
        </div>
        {move || local.summary().map(|(_, t)| view! { <p class="error" role="alert">{t}</p> })}
        {result}
    }
}
