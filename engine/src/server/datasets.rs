//! Items: an experiment's sample items live in a dataset version (its own dataset, or a
//! project's shared one). Every change makes a new version and moves the experiment to it;
//! items keep their ids, so runs of items a change did not touch keep their identity.

use std::collections::{BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::experiments::{self, MAX_ITEMS};
use super::samples::is_identifier;
use super::store::datasets::{self as store, Change, Filter};
use super::store::experiments as experiment_store;
use crate::types::{
    Experiment, Item, ItemPage, ItemUpdate, ItemsChanged, ItemsSummary, NewItems, SampleFormat,
    SampleItem,
};

/// Longest item id, tag or split.
pub const MAX_ID: usize = 200;
pub const MAX_TAGS: usize = 32;
/// Most bytes of one item's input (long documents are fine).
pub const MAX_ITEM_BYTES: usize = 1024 * 1024;
pub const PAGE_MAX: i64 = 1000;

/// `GET /api/v1/experiments/{id}/items`.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    pub limit: i64,
    pub offset: i64,
    pub tag: Option<String>,
    pub split: Option<String>,
}

pub async fn list_items(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    q: ItemQuery,
) -> Result<ItemPage> {
    let e = experiment(core, experiment_id).await?;
    page_of(core, &e.items, q).await
}

/// A page of a dataset version's items.
async fn page_of(core: &Core, s: &ItemsSummary, q: ItemQuery) -> Result<ItemPage> {
    crate::validate::page(q.limit, q.offset, PAGE_MAX)?;
    let (items, total) = store::page(
        &core.db,
        s.dataset_id,
        s.version,
        &Filter {
            tag: q.tag.as_deref(),
            split: q.split.as_deref(),
        },
        q.limit,
        q.offset,
    )
    .await?;
    Ok(ItemPage {
        items,
        total,
        version: s.version,
        limit: q.limit,
        offset: q.offset,
    })
}

/// One item of the experiment's version.
pub async fn get_item(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    item_id: &str,
) -> Result<Item> {
    let e = experiment(core, experiment_id).await?;
    one(core, &e.items, item_id).await
}

/// `POST …/items`: appends items (a new version).
pub async fn add_items(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    new: NewItems,
) -> Result<ItemsChanged> {
    actor.require_write()?;
    let e = editable(core, experiment_id, "items").await?;
    if new.items.is_empty() {
        return Err(Error::invalid("items", "must hold at least one item"));
    }
    check_items(&new.items, "items")?;
    append(core, actor, &e, new.items, "items").await
}

/// Appends checked items to the experiment's dataset (a new version).
pub(crate) async fn append(
    core: &Core,
    actor: &Actor,
    e: &Experiment,
    items: Vec<SampleItem>,
    field: &str,
) -> Result<ItemsChanged> {
    if e.items.count as usize + items.len() > MAX_ITEMS {
        return Err(Error::invalid(
            field,
            format!(
                "at most {MAX_ITEMS} items (the experiment has {})",
                e.items.count
            ),
        ));
    }
    let given: Vec<String> = items.iter().filter_map(|i| i.id.clone()).collect();
    let taken = store::by_ids(&core.db, e.items.dataset_id, e.items.version, &given).await?;
    if let Some(t) = taken.first() {
        let i = items
            .iter()
            .position(|i| i.id.as_deref() == Some(t.id.as_str()))
            .unwrap_or(0);
        return Err(Error::invalid(
            format!("{field}[{i}].id"),
            format!("an item with id {:?} already exists", t.id),
        ));
    }
    // Templates keep working: the input names every item has, after the change.
    let mut common: Option<BTreeSet<String>> =
        (e.items.count > 0).then(|| e.items.common_fields.iter().cloned().collect());
    for item in &items {
        let keys: BTreeSet<String> = item.input.keys().cloned().collect();
        common = Some(match common {
            None => keys,
            Some(c) => c.intersection(&keys).cloned().collect(),
        });
    }
    check_still_valid(core, e, common, field).await?;
    let first = store::max_position(&core.db, e.items.dataset_id).await? + 1;
    let written = assign(items, first);
    let summary = commit(core, e, false, &[], &written).await?;
    let _ = actor;
    Ok(ItemsChanged {
        items: written,
        summary,
    })
}

/// `PUT …/items/{item_id}`: changes one item (a new version).
pub async fn update_item(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    item_id: &str,
    update: ItemUpdate,
) -> Result<ItemsChanged> {
    actor.require_write()?;
    let e = editable(core, experiment_id, "item").await?;
    let old = one(core, &e.items, item_id).await?;
    let mut next = SampleItem {
        id: Some(old.id.clone()),
        input: old.input.clone(),
        reference: old.reference.clone(),
        tags: old.tags.clone(),
        split: old.split.clone(),
    };
    if let Some(input) = update.input {
        next.input = input;
    }
    if let Some(reference) = update.reference {
        next.reference = reference;
    }
    if let Some(tags) = update.tags {
        next.tags = tags;
    }
    if let Some(split) = update.split {
        next.split = split;
    }
    check_item(&next, "").map_err(|err| match err {
        Error::Invalid(f) => Error::invalid(f.field.trim_start_matches('.'), f.message),
        other => other,
    })?;
    let item = Item {
        id: old.id.clone(),
        position: old.position,
        input: next.input,
        reference: next.reference,
        tags: next.tags,
        split: next.split,
    };
    if item == old {
        return Ok(ItemsChanged {
            items: vec![item],
            summary: e.items.clone(),
        });
    }
    let keys: BTreeSet<String> = item.input.keys().cloned().collect();
    let common: BTreeSet<String> = if e.items.count <= 1 {
        keys
    } else {
        e.items
            .common_fields
            .iter()
            .filter(|f| keys.contains(*f))
            .cloned()
            .collect()
    };
    check_still_valid(core, &e, Some(common), "input").await?;
    let references_changed = item.input == old.input && item.reference != old.reference;
    let summary = commit(
        core,
        &e,
        false,
        std::slice::from_ref(&old.id),
        std::slice::from_ref(&item),
    )
    .await?;
    if references_changed {
        rescore(core, actor, experiment_id).await;
    }
    Ok(ItemsChanged {
        items: vec![item],
        summary,
    })
}

/// `DELETE …/items/{item_id}` (a new version without it).
pub async fn delete_item(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    item_id: &str,
) -> Result<ItemsSummary> {
    actor.require_write()?;
    let e = editable(core, experiment_id, "item").await?;
    let old = one(core, &e.items, item_id).await?;
    commit(core, &e, false, std::slice::from_ref(&old.id), &[]).await
}

/// Replaces every item of the experiment (a new version), with items checked by the caller
/// (`check_items`). Items without an id keep the id of a current item with the same input, so
/// their runs keep their identity. Streams like an import (memory does not grow with the
/// items already there).
pub(crate) async fn replace(
    core: &Core,
    actor: &Actor,
    e: &Experiment,
    items: Vec<SampleItem>,
    field: &str,
) -> Result<ItemsSummary> {
    if items.len() > MAX_ITEMS {
        return Err(Error::invalid(field, format!("at most {MAX_ITEMS} items")));
    }
    check_items(&items, field)?;
    if items.is_empty() {
        return commit(core, e, true, &[], &[]).await;
    }
    let report = import_into(
        core,
        actor,
        e,
        Source::Items(items),
        ImportOptions {
            format: SampleFormat::Jsonl,
            append: false,
            skip_invalid: false,
        },
    )
    .await
    .map_err(|err| match err {
        Error::BadLines { errors, .. } => Error::invalid(
            field,
            errors.first().map_or_else(String::new, |l| {
                format!("item {}: {}", l.line - 1, l.message)
            }),
        ),
        Error::Invalid(f) if f.field == "content" => Error::invalid(field, f.message),
        other => other,
    })?;
    Ok(report.items)
}

/// Fills a new experiment's own dataset (version 1).
pub(crate) async fn fill_new(
    core: &Core,
    e: &Experiment,
    items: Vec<SampleItem>,
) -> Result<ItemsSummary> {
    commit(core, e, false, &[], &assign(items, 0)).await
}

/// The items as a file, page by page: CSV (id, the input fields, reference, split, tags
/// joined by `;`), JSON lines (`{"id", "input", "reference", "tags", "split"}`) or a JSON array.
pub struct ItemExport {
    summary: ItemsSummary,
    format: SampleFormat,
    after: Option<i64>,
    started: bool,
    done: bool,
}

/// Items per chunk of an export.
const EXPORT_PAGE: i64 = 1000;

pub async fn export_items(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    format: SampleFormat,
) -> Result<ItemExport> {
    let e = experiment(core, experiment_id).await?;
    Ok(ItemExport {
        summary: e.items,
        format,
        after: None,
        started: false,
        done: false,
    })
}

impl ItemExport {
    /// The next chunk of the file (`None`: it is complete).
    pub async fn next_chunk(&mut self, core: &Core) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let s = &self.summary;
        let page = store::after(&core.db, s.dataset_id, s.version, self.after, EXPORT_PAGE).await?;
        self.after = page.last().map(|i| i.position);
        let last = (page.len() as i64) < EXPORT_PAGE;
        let mut out = Vec::new();
        match self.format {
            SampleFormat::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                if !self.started {
                    let mut header = vec!["id"];
                    header.extend(s.fields.iter().map(String::as_str));
                    header.extend(["reference", "split", "tags"]);
                    w.write_record(&header).map_err(internal)?;
                }
                for item in &page {
                    let mut row = vec![item.id.clone()];
                    row.extend(s.fields.iter().map(|f| match item.input.get(f) {
                        None | Some(serde_json::Value::Null) => String::new(),
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    }));
                    row.push(item.reference.clone().unwrap_or_default());
                    row.push(item.split.clone().unwrap_or_default());
                    row.push(item.tags.join(";"));
                    w.write_record(&row).map_err(internal)?;
                }
                out = w.into_inner().map_err(internal)?;
            }
            SampleFormat::Jsonl | SampleFormat::Json => {
                let array = self.format == SampleFormat::Json;
                if array && !self.started {
                    out.push(b'[');
                }
                for (k, item) in page.iter().enumerate() {
                    if array && (self.started || k > 0) {
                        out.push(b',');
                    }
                    let line = serde_json::json!({
                        "id": item.id, "input": item.input, "reference": item.reference,
                        "tags": item.tags, "split": item.split,
                    });
                    serde_json::to_writer(&mut out, &line).map_err(internal)?;
                    out.push(b'\n');
                }
                if array && last {
                    out.push(b']');
                }
            }
        }
        self.started = true;
        self.done = last;
        Ok(Some(out))
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// Rules for items as given; errors name `{field}[i].…`.
pub(crate) fn check_items(items: &[SampleItem], field: &str) -> Result<()> {
    let mut ids = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        check_item(item, &at)?;
        if let Some(id) = &item.id
            && !ids.insert(id.as_str())
        {
            return Err(Error::invalid(
                format!("{at}.id"),
                format!("id {id:?} is used by an earlier item"),
            ));
        }
    }
    Ok(())
}

fn check_item(item: &SampleItem, at: &str) -> Result<()> {
    if let Some(bad) = item.input.keys().find(|k| !is_identifier(k)) {
        return Err(Error::invalid(
            format!("{at}.input"),
            format!(
                "{bad:?} is not a valid variable name (letters, digits, _; not starting with a digit)"
            ),
        ));
    }
    let bytes: usize = item
        .input
        .values()
        .map(|v| match v {
            serde_json::Value::String(s) => s.len(),
            other => other.to_string().len(),
        })
        .sum();
    if bytes > MAX_ITEM_BYTES {
        return Err(Error::invalid(
            format!("{at}.input"),
            format!("at most {} KiB per item", MAX_ITEM_BYTES / 1024),
        ));
    }
    let text = |value: &str, name: &str| -> Result<()> {
        if value.trim().is_empty() || value.len() > MAX_ID || value.chars().any(char::is_control) {
            return Err(Error::invalid(
                format!("{at}.{name}"),
                format!("must be 1 to {MAX_ID} characters, without control characters"),
            ));
        }
        Ok(())
    };
    if let Some(id) = &item.id {
        text(id, "id")?;
    }
    if let Some(split) = &item.split {
        text(split, "split")?;
    }
    if item.tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            format!("{at}.tags"),
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    for tag in &item.tags {
        text(tag, "tags")?;
    }
    Ok(())
}

/// Ids for items given without one.
fn assign(items: Vec<SampleItem>, first: i64) -> Vec<Item> {
    items
        .into_iter()
        .enumerate()
        .map(|(k, i)| Item {
            id: i.id.unwrap_or_else(fresh_id),
            position: first + k as i64,
            input: i.input,
            reference: i.reference,
            tags: i.tags,
            split: i.split,
        })
        .collect()
}

fn fresh_id() -> String {
    Uuid::new_v4().simple().to_string()
}

fn input_key(input: &std::collections::BTreeMap<String, serde_json::Value>) -> String {
    serde_json::to_string(input).unwrap_or_default()
}

async fn experiment(core: &Core, id: Uuid) -> Result<Experiment> {
    experiment_store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("experiment"))
}

async fn one(core: &Core, items: &ItemsSummary, item_id: &str) -> Result<Item> {
    store::by_ids(
        &core.db,
        items.dataset_id,
        items.version,
        &[item_id.to_owned()],
    )
    .await?
    .pop()
    .ok_or(Error::NotFound("item"))
}

/// The experiment, if its items may change now: no sweep is running on it, and it uses its
/// dataset's newest version (changes build on the newest).
pub(crate) async fn editable(core: &Core, id: Uuid, field: &str) -> Result<Experiment> {
    let e = experiment(core, id).await?;
    experiments::not_while_sweeping(core, id, field).await?;
    if e.items.version != e.items.latest_version {
        return Err(Error::conflict(
            field,
            format!(
                "this experiment uses version {} of its dataset, which is now at version {}; \
                 move it to the newest version (dataset_version) before changing items",
                e.items.version, e.items.latest_version
            ),
        ));
    }
    Ok(e)
}

/// The experiment's stages, space and scorers still hold with `common` as the input names
/// every item has (`None`: no items). An error names the item field that would break them.
async fn check_still_valid(
    core: &Core,
    e: &Experiment,
    common: Option<BTreeSet<String>>,
    field: &str,
) -> Result<()> {
    let mut next = e.clone();
    next.items.count = i64::from(common.is_some());
    next.items.common_fields = common.unwrap_or_default().into_iter().collect();
    match experiments::check_experiment(core, &next).await {
        Ok(_) => Ok(()),
        Err(Error::Invalid(f)) => Err(Error::invalid(
            field,
            format!(
                "the experiment would no longer be valid: {}: {}",
                f.field, f.message
            ),
        )),
        Err(other) => Err(other),
    }
}

async fn commit(
    core: &Core,
    e: &Experiment,
    close_all: bool,
    close: &[String],
    insert: &[Item],
) -> Result<ItemsSummary> {
    let (version, stats) = store::commit(
        &core.db,
        &Change {
            dataset_id: e.items.dataset_id,
            base: e.items.latest_version,
            close_all,
            close,
            insert,
            pin: Some(e.id),
        },
    )
    .await?;
    Ok(ItemsSummary {
        dataset_id: e.items.dataset_id,
        dataset_name: e.items.dataset_name.clone(),
        version,
        latest_version: version,
        count: stats.count,
        fields: stats.fields,
        common_fields: stats.common_fields,
    })
}

/// References changed under existing runs: their scores are recomputed.
async fn rescore(core: &Core, actor: &Actor, experiment_id: Uuid) {
    let Ok(Some(e)) = experiment_store::get(&core.db, experiment_id).await else {
        return;
    };
    let (scorers, _) = super::scoring::parse_lenient(&e.scoring_config);
    if scorers.is_empty() {
        return;
    }
    if let Err(err) = super::scoring::jobs::start(core, &e, None, true, actor.user_id()).await {
        tracing::warn!(experiment = %e.id, error = %err, "could not start re-scoring after references changed");
    }
}

/// Where imported items come from. It is read twice (checked whole, then written), never held
/// whole in memory when it is a file.
pub enum Source {
    File(std::path::PathBuf),
    Text(String),
    /// Items already read (`sample_data` in a JSON body); item `i` counts as line `i + 1`.
    Items(Vec<SampleItem>),
}

impl Source {
    /// Hands each item (or why its line is not one) to `sink`, in order.
    fn read(
        &self,
        format: SampleFormat,
        sink: &mut dyn FnMut(usize, super::samples::Read),
    ) -> std::io::Result<()> {
        match self {
            Source::File(path) => super::samples::read_items(
                format,
                std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?),
                sink,
            ),
            Source::Text(text) => super::samples::read_items(format, text.as_bytes(), sink),
            Source::Items(items) => {
                for (i, item) in items.iter().enumerate() {
                    sink(i + 1, Ok(item.clone()));
                }
                Ok(())
            }
        }
    }
}

/// How to import.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    pub format: SampleFormat,
    /// Add to the items instead of replacing them.
    pub append: bool,
    /// Keep the good lines and list the bad ones, instead of refusing the file.
    pub skip_invalid: bool,
}

/// Items per batch handed from the reader to the writer.
const IMPORT_BATCH: usize = 500;

/// Checks one line read from an import: the item's own rules and a unique id (`ids`: the ids
/// seen so far, with their lines; `taken`: ids the dataset already has).
fn check_line(
    line: usize,
    read: super::samples::Read,
    ids: &mut HashMap<String, usize>,
    taken: &HashSet<String>,
) -> std::result::Result<SampleItem, String> {
    let item = read?;
    check_item(&item, "").map_err(|e| match e {
        Error::Invalid(f) => format!("{}: {}", f.field.trim_start_matches('.'), f.message),
        other => other.to_string(),
    })?;
    if let Some(id) = &item.id {
        if taken.contains(id) {
            return Err(format!("an item with id {id:?} already exists"));
        }
        if let Some(first) = ids.get(id) {
            return Err(format!("id {id:?} is used by line {first}"));
        }
        ids.insert(id.clone(), line);
    }
    Ok(item)
}

/// What the first reading of an import found.
#[derive(Default)]
struct Scan {
    good: usize,
    errors: Vec<crate::types::LineError>,
    error_count: usize,
    /// Input names every good item has (`None`: no good item).
    common: Option<BTreeSet<String>>,
    ids: HashMap<String, usize>,
}

fn scan(source: &Source, format: SampleFormat, taken: &HashSet<String>) -> Result<Scan> {
    let mut s = Scan::default();
    let mut ids = HashMap::new();
    source
        .read(
            format,
            &mut |line, read| match check_line(line, read, &mut ids, taken) {
                Ok(item) => {
                    s.good += 1;
                    let keys: BTreeSet<String> = item.input.keys().cloned().collect();
                    s.common = Some(match s.common.take() {
                        None => keys,
                        Some(c) => c.intersection(&keys).cloned().collect(),
                    });
                }
                Err(message) => {
                    s.error_count += 1;
                    if s.errors.len() < super::samples::ERRORS_SHOWN {
                        s.errors.push(crate::types::LineError { line, message });
                    }
                }
            },
        )
        .map_err(internal)?;
    s.ids = ids;
    Ok(s)
}

/// A short fingerprint of an item's input, for matching re-imported items to current ones.
fn input_digest(input: &std::collections::BTreeMap<String, serde_json::Value>) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(input_key(input).as_bytes()).into()
}

/// Imports items from CSV, JSON lines or a JSON array into the experiment's dataset (a new
/// version), streaming: the text is checked whole first (nothing is written if it is refused),
/// then written in batches in one transaction. Replacing keeps the ids of items whose input is
/// unchanged, so their runs keep their identity.
pub async fn import(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    source: Source,
    opts: ImportOptions,
) -> Result<crate::types::ImportReport> {
    actor.require_write()?;
    let e = editable(core, experiment_id, "content").await?;
    import_into(core, actor, &e, source, opts).await
}

/// [`import`] into `e`'s dataset, checking the items against `e` as given (its stages may be
/// about to change with them); the experiment moves to the new version.
async fn import_into(
    core: &Core,
    actor: &Actor,
    e: &Experiment,
    source: Source,
    opts: ImportOptions,
) -> Result<crate::types::ImportReport> {
    import_to(core, actor, &e.items, Some(e), source, opts).await
}

/// Imports into the newest version of a dataset (`items`: that version), checked against
/// `experiment` (which then moves to the new version) when there is one.
async fn import_to(
    core: &Core,
    actor: &Actor,
    items: &ItemsSummary,
    experiment: Option<&Experiment>,
    source: Source,
    opts: ImportOptions,
) -> Result<crate::types::ImportReport> {
    let source = std::sync::Arc::new(source);
    // Ids the dataset has now, when adding to it.
    let taken: HashSet<String> = if opts.append {
        store::ids(&core.db, items.dataset_id, items.version)
            .await?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    let taken = std::sync::Arc::new(taken);
    let found = {
        let (source, taken) = (source.clone(), taken.clone());
        tokio::task::spawn_blocking(move || scan(&source, opts.format, &taken))
            .await
            .map_err(internal)??
    };
    if found.error_count > 0 && !opts.skip_invalid {
        return Err(Error::BadLines {
            field: "content".to_owned(),
            errors: found.errors,
            count: found.error_count,
        });
    }
    if found.good == 0 {
        return Err(Error::invalid("content", "the file holds no items"));
    }
    let total = found.good + if opts.append { items.count as usize } else { 0 };
    if total > MAX_ITEMS {
        return Err(Error::invalid(
            "content",
            format!("at most {MAX_ITEMS} items (this would make {total})"),
        ));
    }
    let common = match (opts.append, items.count > 0) {
        (true, true) => {
            let old: BTreeSet<String> = items.common_fields.iter().cloned().collect();
            found
                .common
                .map(|c| c.intersection(&old).cloned().collect())
        }
        _ => found.common,
    };
    if let Some(e) = experiment {
        check_still_valid(core, e, common, "content").await?;
    }

    // Replacing: current items by input, so unchanged items keep their ids.
    type Current = HashMap<[u8; 32], Vec<(String, Option<String>)>>;
    let mut current: Current = HashMap::new();
    let mut by_id: HashMap<String, ([u8; 32], Option<String>)> = HashMap::new();
    if !opts.append {
        let mut after = None;
        loop {
            let page = store::after(&core.db, items.dataset_id, items.version, after, 1000).await?;
            after = page.last().map(|i| i.position);
            let done = page.len() < 1000;
            for item in page {
                let digest = input_digest(&item.input);
                if !found.ids.contains_key(&item.id) {
                    current
                        .entry(digest)
                        .or_default()
                        .push((item.id.clone(), item.reference.clone()));
                }
                by_id.insert(item.id, (digest, item.reference));
            }
            if done {
                break;
            }
        }
    }
    let first = if opts.append {
        store::max_position(&core.db, items.dataset_id).await? + 1
    } else {
        0
    };
    let references_changed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let writer = {
        let (source, taken, changed) = (source.clone(), taken.clone(), references_changed.clone());
        let format = opts.format;
        tokio::task::spawn_blocking(move || {
            let mut ids = HashMap::new();
            let mut batch = Vec::with_capacity(IMPORT_BATCH);
            let mut position = first;
            let mut current = current;
            let send = |batch: Vec<Item>| tx.blocking_send(Ok(batch)).is_ok();
            let mut open = true;
            let read = source.read(format, &mut |line, read| {
                if !open {
                    return;
                }
                let Ok(item) = check_line(line, read, &mut ids, &taken) else {
                    return;
                };
                let digest = input_digest(&item.input);
                let id = match &item.id {
                    Some(id) => {
                        if by_id
                            .get(id)
                            .is_some_and(|(d, r)| *d == digest && *r != item.reference)
                        {
                            changed.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        id.clone()
                    }
                    None => match current.get_mut(&digest).and_then(Vec::pop) {
                        Some((id, reference)) => {
                            if reference != item.reference {
                                changed.store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                            id
                        }
                        None => fresh_id(),
                    },
                };
                batch.push(Item {
                    id,
                    position,
                    input: item.input,
                    reference: item.reference,
                    tags: item.tags,
                    split: item.split,
                });
                position += 1;
                if batch.len() == IMPORT_BATCH {
                    open = send(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(IMPORT_BATCH),
                    ));
                }
            });
            match read {
                Ok(()) => {
                    if !batch.is_empty() {
                        send(batch);
                    }
                    send(Vec::new());
                }
                Err(err) => {
                    let _ = tx.blocking_send(Err(err.to_string()));
                }
            }
        })
    };
    let committed = store::commit_with(
        &core.db,
        &Change {
            dataset_id: items.dataset_id,
            base: items.latest_version,
            close_all: !opts.append,
            close: &[],
            insert: &[],
            pin: experiment.map(|e| e.id),
        },
        Some(rx),
    )
    .await;
    writer.await.map_err(internal)?;
    let (version, stats) = committed?;
    if let Some(e) = experiment
        && references_changed.load(std::sync::atomic::Ordering::Relaxed)
    {
        rescore(core, actor, e.id).await;
    }
    Ok(crate::types::ImportReport {
        imported: found.good as i64,
        skipped: found.error_count as i64,
        errors: found.errors,
        error_count: found.error_count as i64,
        items: ItemsSummary {
            dataset_id: items.dataset_id,
            dataset_name: items.dataset_name.clone(),
            version,
            latest_version: version,
            count: stats.count,
            fields: stats.fields,
            common_fields: stats.common_fields,
        },
    })
}

// Named datasets, shared in a project.

pub async fn list_datasets(
    core: &Core,
    _actor: &Actor,
    project_id: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<Vec<crate::types::Dataset>> {
    crate::validate::page(limit, offset, experiments::PAGE_MAX)?;
    store::list_named(&core.db, project_id, limit, offset).await
}

pub async fn get_dataset(core: &Core, _actor: &Actor, id: Uuid) -> Result<crate::types::Dataset> {
    store::get_named(&core.db, id)
        .await?
        .ok_or(Error::NotFound("dataset"))
}

/// `POST /api/v1/datasets`: a named dataset, from the items given (version 1), or from an
/// experiment's own items, which become the dataset (the experiment keeps its version).
pub async fn create_dataset(
    core: &Core,
    actor: &Actor,
    new: crate::types::NewDataset,
) -> Result<crate::types::Dataset> {
    actor.require_write()?;
    let name = crate::validate::name("name", &new.name)?;
    crate::validate::text(
        "description",
        &new.description,
        crate::validate::DESCRIPTION_MAX,
    )?;
    if super::store::projects::get(&core.db, new.project_id)
        .await?
        .is_none()
    {
        return Err(Error::invalid("project_id", "no such project"));
    }
    let id = match new.from_experiment {
        Some(experiment_id) => {
            if !new.sample_data.is_empty() {
                return Err(Error::invalid(
                    "sample_data",
                    "give either sample_data or from_experiment, not both",
                ));
            }
            let e = experiment_store::get(&core.db, experiment_id)
                .await?
                .filter(|e| e.project_id == new.project_id)
                .ok_or_else(|| {
                    Error::invalid("from_experiment", "no such experiment in this project")
                })?;
            if !store::name_private(&core.db, e.items.dataset_id, &name, &new.description).await? {
                return Err(Error::invalid(
                    "from_experiment",
                    "the experiment already uses a named dataset",
                ));
            }
            e.items.dataset_id
        }
        None => {
            if new.sample_data.len() > experiments::MAX_INLINE_ITEMS {
                return Err(Error::invalid(
                    "sample_data",
                    format!(
                        "at most {} items inline; import larger sets as a file",
                        experiments::MAX_INLINE_ITEMS
                    ),
                ));
            }
            check_items(&new.sample_data, "sample_data")?;
            let id = Uuid::new_v4();
            store::create_named(&core.db, id, new.project_id, &name, &new.description).await?;
            let items = assign(new.sample_data, 0);
            let created = store::commit(
                &core.db,
                &Change {
                    dataset_id: id,
                    base: 0,
                    close_all: false,
                    close: &[],
                    insert: &items,
                    pin: None,
                },
            )
            .await;
            if let Err(err) = created {
                let _ = store::delete(&core.db, id).await;
                return Err(err);
            }
            id
        }
    };
    get_dataset(core, actor, id).await
}

pub async fn update_dataset(
    core: &Core,
    actor: &Actor,
    id: Uuid,
    update: crate::types::DatasetUpdate,
) -> Result<crate::types::Dataset> {
    actor.require_write()?;
    let d = get_dataset(core, actor, id).await?;
    let name = match update.name {
        Some(n) => crate::validate::name("name", &n)?,
        None => d.name,
    };
    let description = update.description.unwrap_or(d.description);
    crate::validate::text(
        "description",
        &description,
        crate::validate::DESCRIPTION_MAX,
    )?;
    store::rename(&core.db, id, &name, &description).await?;
    get_dataset(core, actor, id).await
}

/// Deletes a named dataset with all its versions; refused while an experiment uses it.
pub async fn delete_dataset(core: &Core, actor: &Actor, id: Uuid) -> Result<()> {
    actor.require_write()?;
    let d = get_dataset(core, actor, id).await?;
    if d.experiments > 0 {
        return Err(Error::conflict(
            "dataset",
            format!(
                "{} experiment(s) use this dataset; move them to another dataset or delete them first",
                d.experiments
            ),
        ));
    }
    store::delete(&core.db, id).await?;
    Ok(())
}

pub async fn dataset_versions(
    core: &Core,
    actor: &Actor,
    id: Uuid,
) -> Result<Vec<crate::types::DatasetVersion>> {
    get_dataset(core, actor, id).await?;
    store::versions(&core.db, id).await
}

/// The summary of a named dataset's version (default the newest).
async fn dataset_summary(core: &Core, id: Uuid, version: Option<i64>) -> Result<ItemsSummary> {
    let d = store::get_named(&core.db, id)
        .await?
        .ok_or(Error::NotFound("dataset"))?;
    let version = version.unwrap_or(d.version);
    store::summary(&core.db, id, version)
        .await?
        .filter(|_| version >= 1 || d.version == 0)
        .ok_or_else(|| {
            Error::invalid(
                "version",
                format!("the dataset has versions 1 to {}", d.version),
            )
        })
}

/// A page of a named dataset's items, of one version (default the newest).
pub async fn dataset_items(
    core: &Core,
    _actor: &Actor,
    id: Uuid,
    version: Option<i64>,
    q: ItemQuery,
) -> Result<ItemPage> {
    let s = dataset_summary(core, id, version).await?;
    page_of(core, &s, q).await
}

/// Imports into a named dataset: a new version; experiments keep the versions they use until
/// they move (`dataset_version`).
pub async fn import_dataset(
    core: &Core,
    actor: &Actor,
    id: Uuid,
    source: Source,
    opts: ImportOptions,
) -> Result<crate::types::ImportReport> {
    actor.require_write()?;
    let s = dataset_summary(core, id, None).await?;
    import_to(core, actor, &s, None, source, opts).await
}

/// A named dataset's items as a file (one version, default the newest).
pub async fn export_dataset(
    core: &Core,
    _actor: &Actor,
    id: Uuid,
    version: Option<i64>,
    format: SampleFormat,
) -> Result<ItemExport> {
    Ok(ItemExport {
        summary: dataset_summary(core, id, version).await?,
        format,
        after: None,
        started: false,
        done: false,
    })
}
