//! The builder's sample data. A new experiment: paste CSV, JSON lines or a JSON array (or pick
//! a file), read it on the server, see every bad line next to its text and a table of the
//! items, then use them. An existing one: its stored items (count, fields, version, the first
//! rows), and imports of any size, uploaded with a progress bar straight into a new version.

use leptos::prelude::*;
use uuid::Uuid;

use crate::api::ParseSamples;
use crate::components::editor::FieldMsg;
use crate::components::error_view;
use crate::types::{Item, ItemsSummary, LineError, ParsedSamples, SampleFormat, SampleItem};

/// An existing experiment's stored items: what they are and their first rows.
#[derive(Clone, Copy)]
pub struct Stored {
    pub experiment_id: Uuid,
    pub summary: RwSignal<ItemsSummary>,
    pub preview: RwSignal<Vec<Item>>,
}

/// The most items the preview table shows.
const SHOWN: usize = 20;
/// The largest file read in the browser (requests are capped at 2 MiB).
const MAX_FILE: f64 = 1_900_000.0;

#[component]
pub fn DataSection(items: RwSignal<Vec<SampleItem>>, stored: Option<Stored>) -> impl IntoView {
    match stored {
        Some(stored) => view! { <StoredItems stored/> }.into_any(),
        None => view! { <DraftItems items/> }.into_any(),
    }
}

/// A new experiment's items, held by the form until it is created.
#[component]
fn DraftItems(items: RwSignal<Vec<SampleItem>>) -> impl IntoView {
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
                <label class="field"><span>"…or read a file (up to 1.9 MB; larger files upload once the experiment is created)"</span>
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
                "{} is {:.1} MB; files up to 1.9 MB can be read here. Create the experiment, then upload it (any size).",
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

/// What the stored items are, their first rows, and imports into them.
#[component]
fn StoredItems(stored: Stored) -> impl IntoView {
    let Stored {
        experiment_id,
        summary,
        preview,
    } = stored;
    let head = move || {
        summary.with(|s| {
            let version = match &s.dataset_name {
                Some(name) => format!("dataset “{name}”, version {}", s.version),
                None => format!("version {}", s.version),
            };
            let behind = (s.version < s.latest_version).then(|| {
                format!(
                    " The dataset is at version {}: move to it on the experiment page's API (dataset_version) to import here.",
                    s.latest_version
                )
            });
            view! {
                <p data-testid="item-count"><strong>{format!("{} items", s.count)}</strong>
                    {format!(" · {version}")}
                    {(!s.fields.is_empty()).then(|| format!(" · fields: {}", s.fields.join(", ")))}
                    {behind}</p>
            }
        })
    };
    let rows = move || {
        let shown: Vec<SampleItem> = preview.with(|p| p.iter().map(as_sample).collect());
        let total = summary.with(|s| s.count as usize);
        (!shown.is_empty()).then(|| {
            let more = total.saturating_sub(shown.len());
            view! {
                {item_table(&shown)}
                {(more > 0).then(|| view! { <p class="muted">{format!("… and {more} more")}</p> })}
            }
        })
    };
    let export = format!("/api/v1/experiments/{experiment_id}/items/export?format=csv");
    view! {
        <div data-field="sample_data">
            <FieldMsg path=Signal::derive(|| "sample_data".to_owned())/>
            {head}
            {rows}
            <p><a href=export download="" class="small">"Download all items (CSV)"</a></p>
        </div>
        <Importer stored/>
    }
}

fn as_sample(i: &Item) -> SampleItem {
    SampleItem {
        id: Some(i.id.clone()),
        input: i.input.clone(),
        reference: i.reference.clone(),
        tags: i.tags.clone(),
        split: i.split.clone(),
    }
}

/// Where an upload stands.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Upload {
    Idle,
    /// Bytes sent of the total.
    Sending(f64, f64),
    /// All sent; the server checks and stores the items.
    Saving(f64),
    Done(String, Vec<LineError>, usize),
    Failed(String, Vec<LineError>, usize),
}

/// Imports into the stored items: a file of any size (up to the server's MAX_UPLOAD_MB) or
/// pasted text, replacing or appending, optionally skipping bad lines.
#[component]
fn Importer(stored: Stored) -> impl IntoView {
    let append = RwSignal::new(false);
    let skip_invalid = RwSignal::new(false);
    let pasted = RwSignal::new(String::new());
    let state = RwSignal::new(Upload::Idle);
    let busy = move || matches!(state.get(), Upload::Sending(..) | Upload::Saving(_));
    let url = move || {
        format!(
            "/api/v1/experiments/{}/samples?append={}&skip_invalid={}",
            stored.experiment_id,
            append.get_untracked(),
            skip_invalid.get_untracked()
        )
    };
    let on_file = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let input = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok());
            let Some(input) = input else { return };
            let Some(file) = input.files().and_then(|f| f.get(0)) else {
                return;
            };
            let name = file.name().to_ascii_lowercase();
            let content_type = if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
                "application/x-ndjson"
            } else if name.ends_with(".json") {
                "application/json"
            } else {
                "text/csv"
            };
            send(url(), Body::File(file), content_type, state, stored);
            input.set_value("");
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, url);
    };
    let on_paste = move |_| {
        let text = pasted.get_untracked();
        let content_type = match SampleFormat::detect(&text) {
            SampleFormat::Csv => "text/csv",
            SampleFormat::Jsonl => "application/x-ndjson",
            SampleFormat::Json => "application/json",
        };
        #[cfg(feature = "hydrate")]
        send(url(), Body::Text(text), content_type, state, stored);
        #[cfg(not(feature = "hydrate"))]
        let _ = (text, content_type);
    };
    view! {
        // Imports save themselves: they do not mark the form as changed.
        <details class="import" data-testid="importer"
            on:input=|ev| ev.stop_propagation() on:change=|ev| ev.stop_propagation()>
            <summary>"Import items"</summary>
            <p class="hint">"CSV with a header row (a "<code>"reference"</code>" column is the expected output; "
                <code>"id"</code>", "<code>"split"</code>" and "<code>"tags"</code>" columns are kept too), JSON lines, or a JSON array. "
                "Files of any size are streamed in; the file is checked whole before anything is saved, and each import makes a new version."</p>
            <div class="row">
                <label class="field"><span>"Mode"</span>
                    <select on:change=move |ev| append.set(event_target_value(&ev) == "append") data-testid="import-mode">
                        <option value="replace" selected=move || !append.get()>"Replace the items"</option>
                        <option value="append" selected=move || append.get()>"Append to them"</option>
                    </select>
                </label>
                <label class="check"><input type="checkbox" prop:checked=skip_invalid
                    on:change=move |ev| skip_invalid.set(event_target_checked(&ev)) data-testid="skip-invalid"/>
                    " Skip bad lines (import the good ones)"</label>
            </div>
            <label class="field wide"><span>"Upload a file"</span>
                <input type="file" accept=".csv,.jsonl,.ndjson,.json,text/csv,application/json" on:change=on_file
                    disabled=busy data-testid="upload-file"/>
            </label>
            <label class="field wide"><span>"…or paste items"</span>
                <textarea rows="4" bind:value=pasted spellcheck="false" data-testid="paste-import"></textarea>
            </label>
            <button type="button" class="small" on:click=on_paste
                disabled=move || busy() || pasted.with(|p| p.trim().is_empty())>"Import pasted items"</button>
            <UploadState state/>
        </details>
    }
}

#[component]
fn UploadState(state: RwSignal<Upload>) -> impl IntoView {
    let mb = |b: f64| format!("{:.1} MB", b / 1e6);
    move || {
        match state.get() {
        Upload::Idle => ().into_any(),
        Upload::Sending(sent, total) => {
            let pct = if total > 0.0 { (sent / total * 100.0).round() } else { 0.0 };
            view! {
                <div class="upload" role="status">
                    <progress max="100" value=pct data-testid="upload-progress" aria-label="Upload progress"></progress>
                    <span>{format!("Uploading… {pct}% ({} of {})", mb(sent), mb(total))}</span>
                </div>
            }
            .into_any()
        }
        Upload::Saving(total) => view! {
            <div class="upload" role="status">
                <progress max="100" value="100" data-testid="upload-progress" aria-label="Upload progress"></progress>
                <span>{format!("Uploaded {}; checking and saving the items…", mb(total))}</span>
            </div>
        }
        .into_any(),
        Upload::Done(message, lines, count) => view! {
            <p class="ok" role="status" data-testid="import-result">{message}</p>
            {line_errors(lines, count)}
        }
        .into_any(),
        Upload::Failed(message, lines, count) => view! {
            <p class="error" role="alert" data-testid="import-failed">{message}</p>
            {line_errors(lines, count)}
        }
        .into_any(),
    }
    }
}

fn line_errors(lines: Vec<LineError>, count: usize) -> Option<impl IntoView> {
    (!lines.is_empty()).then(|| {
        let shown = lines.len();
        let rows = lines
            .into_iter()
            .map(|e| view! { <tr><td>{e.line}</td><td class="error">{e.message}</td></tr> })
            .collect_view();
        view! {
            <p class="muted">{if count > shown { format!("{count} bad lines (the first {shown}):") } else { format!("{count} bad line(s):") }}</p>
            <div class="scroll" tabindex="0">
                <table class="table line-errors" data-testid="import-line-errors">
                    <thead><tr><th scope="col">"Line"</th><th scope="col">"Problem"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
    })
}

#[cfg(feature = "hydrate")]
enum Body {
    File(web_sys::File),
    Text(String),
}

/// Sends an import with XMLHttpRequest (fetch reports no upload progress), showing its
/// progress; on success the stored items' summary and first rows are read again.
#[cfg(feature = "hydrate")]
fn send(url: String, body: Body, content_type: &str, state: RwSignal<Upload>, stored: Stored) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let fail = move |why: &str| state.set(Upload::Failed(why.to_owned(), Vec::new(), 0));
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
        return fail("this browser cannot upload files");
    };
    if xhr.open_with_async("POST", &url, true).is_err()
        || xhr
            .set_request_header("Content-Type", content_type)
            .is_err()
    {
        return fail("the upload could not start");
    }
    let total = match &body {
        Body::File(f) => f.size(),
        Body::Text(t) => t.len() as f64,
    };
    state.set(Upload::Sending(0.0, total));
    if let Ok(upload) = xhr.upload() {
        let progress =
            Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
                let sent = e.loaded();
                if sent >= total {
                    state.set(Upload::Saving(total));
                } else {
                    state.set(Upload::Sending(sent, total));
                }
            });
        upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
        progress.forget();
    }
    let done = {
        let xhr = xhr.clone();
        Closure::once_into_js(move || {
            let status = xhr.status().unwrap_or(0);
            let text = xhr.response_text().ok().flatten().unwrap_or_default();
            finish(status, &text, state, stored);
        })
    };
    xhr.set_onload(Some(done.unchecked_ref()));
    let broke = Closure::once_into_js(move || {
        state.set(Upload::Failed(
            "the upload broke off (the connection closed)".into(),
            Vec::new(),
            0,
        ))
    });
    xhr.set_onerror(Some(broke.unchecked_ref()));
    let sent = match body {
        Body::File(f) => xhr.send_with_opt_blob(Some(&f)),
        Body::Text(t) => xhr.send_with_opt_str(Some(&t)),
    };
    if sent.is_err() {
        fail("the upload could not be sent");
    }
}

#[cfg(feature = "hydrate")]
fn finish(status: u16, text: &str, state: RwSignal<Upload>, stored: Stored) {
    if (200..300).contains(&status) {
        let Ok(report) = serde_json::from_str::<crate::types::ImportReport>(text) else {
            return state.set(Upload::Failed(
                "the server's answer could not be read".into(),
                Vec::new(),
                0,
            ));
        };
        let skipped = if report.skipped > 0 {
            format!(" ({} bad lines skipped)", report.skipped)
        } else {
            String::new()
        };
        state.set(Upload::Done(
            format!(
                "Imported {} items{skipped}: {} items now, version {}.",
                report.imported, report.items.count, report.items.version
            ),
            report.errors,
            report.error_count as usize,
        ));
        stored.summary.set(report.items);
        leptos::task::spawn_local(async move {
            if let Ok(page) =
                crate::api::list_items(stored.experiment_id, super::ITEMS_SHOWN, 0, None, None)
                    .await
            {
                stored.preview.set(page.items);
            }
        });
        return;
    }
    let body: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let error = &body["error"];
    let message = error["message"].as_str().map_or_else(
        || format!("the import failed (HTTP {status})"),
        str::to_owned,
    );
    let lines: Vec<LineError> = serde_json::from_value(error["lines"].clone()).unwrap_or_default();
    let count = error["error_count"].as_u64().unwrap_or(0) as usize;
    state.set(Upload::Failed(message, lines, count));
}
