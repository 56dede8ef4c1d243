//! The builder's sample data: paste CSV, JSON lines or a JSON array (or pick a file), read it
//! on the server, see every bad line next to its text and a table of the items, then use them.

use leptos::prelude::*;

use crate::api::ParseSamples;
use crate::components::editor::FieldMsg;
use crate::components::error_view;
use crate::types::{ParsedSamples, SampleFormat, SampleItem};

/// The most items the preview table shows.
const SHOWN: usize = 20;
/// The largest file read in the browser (requests are capped at 2 MiB).
const MAX_FILE: f64 = 1_900_000.0;

#[component]
pub fn DataSection(items: RwSignal<Vec<SampleItem>>) -> impl IntoView {
    let content = RwSignal::new(String::new());
    let format = RwSignal::new(String::new());
    let file_error = RwSignal::new(None::<String>);
    let parse = ServerAction::<ParseSamples>::new();
    let read = move || {
        let format = match format.get_untracked().as_str() {
            "csv" => Some(SampleFormat::Csv),
            "jsonl" => Some(SampleFormat::Jsonl),
            "json" => Some(SampleFormat::Json),
            _ => None,
        };
        parse.dispatch(ParseSamples {
            format,
            content: content.get_untracked(),
        });
    };
    let on_file = move |ev: leptos::ev::Event| {
        file_error.set(None);
        read_file(ev, content, format, file_error, read);
    };
    let result = move || {
        parse.value().get().map(|r| match r {
            Ok(parsed) => parsed_view(parsed, content, items).into_any(),
            Err(e) => error_view(e),
        })
    };
    view! {
        <div data-field="sample_data">
            <FieldMsg path=Signal::derive(|| "sample_data".to_owned())/>
            <CurrentItems items/>
        </div>
        <details class="import" open=move || items.with(Vec::is_empty)>
            <summary>"Import items"</summary>
            <p class="hint">"CSV with a header row (a "<code>"reference"</code>" column is the expected output), JSON lines ("
                <code>"{\"text\": \"…\", \"reference\": \"…\"}"</code>" per line), or a JSON array of such objects."</p>
            <label class="field wide"><span>"Paste items"</span>
                <textarea rows="6" bind:value=content spellcheck="false" data-testid="paste-items"
                    placeholder="text,reference\nThe cat sat on the mat.,A cat sat."></textarea>
            </label>
            <div class="row">
                <label class="field"><span>"Format"</span>
                    <select on:change=move |ev| format.set(event_target_value(&ev))>
                        <option value="" selected=move || format.get().is_empty()>"detect"</option>
                        <option value="csv" selected=move || format.get() == "csv">"CSV"</option>
                        <option value="jsonl" selected=move || format.get() == "jsonl">"JSON lines"</option>
                        <option value="json" selected=move || format.get() == "json">"JSON array"</option>
                    </select>
                </label>
                <label class="field"><span>"…or upload a file"</span>
                    <input type="file" accept=".csv,.jsonl,.ndjson,.json,text/csv,application/json" on:change=on_file
                        data-testid="upload-items"/>
                </label>
                <button type="button" class="small" on:click=move |_| read()
                    disabled=move || parse.pending().get() || content.with(|c| c.trim().is_empty())>
                    {move || if parse.pending().get() { "Reading…" } else { "Read items" }}
                </button>
            </div>
            {move || file_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {result}
        </details>
    }
}

/// The items the experiment has now.
#[component]
fn CurrentItems(items: RwSignal<Vec<SampleItem>>) -> impl IntoView {
    move || {
        items.with(|list| {
            if list.is_empty() {
                return view! {
                    <p class="empty small" data-testid="item-count">"No items yet: import some below. Templates can use their fields as "<code>"{{ input.<field> }}"</code>"."</p>
                }
                .into_any();
            }
            let total = list.len();
            view! {
                <p data-testid="item-count"><strong>{format!("{total} items")}</strong>
                    " " <button type="button" class="small link" on:click=move |_| items.set(Vec::new())>"Remove all"</button></p>
                {item_table(list)}
            }
            .into_any()
        })
    }
}

fn item_table(list: &[SampleItem]) -> impl IntoView + use<> {
    let mut fields: Vec<String> = Vec::new();
    for item in list.iter().take(SHOWN) {
        for k in item.input.keys() {
            if !fields.contains(k) {
                fields.push(k.clone());
            }
        }
    }
    let has_reference = list.iter().any(|i| i.reference.is_some());
    let head = fields
        .iter()
        .map(|f| view! { <th scope="col">{f.clone()}</th> })
        .collect_view();
    let rows = list
        .iter()
        .take(SHOWN)
        .enumerate()
        .map(|(i, item)| {
            let cells = fields
                .iter()
                .map(|f| {
                    let v = item.input.get(f).map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                    view! { <td class="output">{clip(&v.unwrap_or_default())}</td> }
                })
                .collect_view();
            let reference = has_reference
                .then(|| view! { <td class="output">{clip(item.reference.as_deref().unwrap_or(""))}</td> });
            view! { <tr><td>{i + 1}</td>{cells}{reference}</tr> }
        })
        .collect_view();
    let more = list.len().saturating_sub(SHOWN);
    view! {
        <div class="scroll" tabindex="0">
            <table class="table items" data-testid="items-table">
                <thead><tr><th scope="col">"#"</th>{head}{has_reference.then(|| view! { <th scope="col">"reference"</th> })}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        {(more > 0).then(|| view! { <p class="muted">{format!("… and {more} more")}</p> })}
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// What the server read: every bad line against its text, a preview, and buttons to use the
/// good items.
fn parsed_view(
    parsed: ParsedSamples,
    content: RwSignal<String>,
    items: RwSignal<Vec<SampleItem>>,
) -> impl IntoView {
    let lines: Vec<String> = content.with_untracked(|c| {
        parsed
            .errors
            .iter()
            .map(|e| clip(c.lines().nth(e.line.saturating_sub(1)).unwrap_or("")))
            .collect()
    });
    let n = parsed.items.len();
    let bad = parsed.error_count;
    let errors = (!parsed.errors.is_empty()).then(|| {
        let rows = parsed
            .errors
            .iter()
            .zip(lines)
            .map(|(e, text)| view! {
                <tr><td>{e.line}</td><td class="error">{e.message.clone()}</td><td><code>{text}</code></td></tr>
            })
            .collect_view();
        let more = bad - parsed.errors.len();
        view! {
            <p class="error" role="alert" data-testid="import-errors">
                {format!("{bad} line(s) could not be read{}:", if more > 0 { format!(" (the first {} shown)", parsed.errors.len()) } else { String::new() })}
            </p>
            <div class="scroll" tabindex="0">
                <table class="table line-errors">
                    <thead><tr><th scope="col">"Line"</th><th scope="col">"Problem"</th><th scope="col">"Text"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
    });
    let kept = StoredValue::new(parsed.items.clone());
    let use_items = move |append: bool| {
        let new = kept.get_value();
        items.update(|list| {
            if !append {
                list.clear();
            }
            list.extend(new);
        });
    };
    let summary = format!(
        "Read as {}: {n} item(s){}.",
        match parsed.format {
            SampleFormat::Csv => "CSV",
            SampleFormat::Jsonl => "JSON lines",
            SampleFormat::Json => "a JSON array",
        },
        if parsed.common_fields.is_empty() {
            String::new()
        } else {
            format!(
                ", fields every item has: {}",
                parsed.common_fields.join(", ")
            )
        }
    );
    view! {
        {errors}
        <p role="status" data-testid="import-summary">{summary}</p>
        {(n > 0).then(|| view! {
            {item_table(&parsed.items)}
            <div class="row">
                <button type="button" class="primary small" on:click=move |_| use_items(false)>
                    {if bad > 0 { format!("Use the {n} good items (replace)") } else { format!("Use these {n} items (replace)") }}
                </button>
                <button type="button" class="small" on:click=move |_| use_items(true)>{format!("Append {n}")}</button>
            </div>
        })}
    }
}

/// Reads the chosen file into `content` (format from its extension), then reads the items.
fn read_file(
    ev: leptos::ev::Event,
    content: RwSignal<String>,
    format: RwSignal<String>,
    error: RwSignal<Option<String>>,
    then: impl Fn() + Copy + 'static,
) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        if file.size() > MAX_FILE {
            error.set(Some(format!(
                "{} is {:.1} MB; files up to 1.9 MB can be read here.",
                file.name(),
                file.size() / 1e6
            )));
            return;
        }
        let name = file.name().to_ascii_lowercase();
        let guessed = if name.ends_with(".csv") {
            "csv"
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            "jsonl"
        } else if name.ends_with(".json") {
            "json"
        } else {
            ""
        };
        let Ok(reader) = web_sys::FileReader::new() else {
            return;
        };
        let done = {
            let reader = reader.clone();
            Closure::once_into_js(
                move || match reader.result().ok().and_then(|r| r.as_string()) {
                    Some(text) => {
                        content.set(text);
                        format.set(guessed.to_owned());
                        then();
                    }
                    None => error.set(Some("the file could not be read as text".into())),
                },
            )
        };
        reader.set_onload(Some(done.unchecked_ref()));
        if reader.read_as_text(&file).is_err() {
            error.set(Some("the file could not be read".into()));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, content, format, error, then, MAX_FILE);
}
