//! `/api/v1/experiments`: experiments, sample import, their runs and cache.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{
    Experiment, ExperimentUpdate, ImportReport, Item, ItemPage, ItemUpdate, ItemsChanged,
    ItemsSummary, NewExperiment, NewItems, ParsedSamples, SampleFormat, SampleImport, SampleParse,
    ScoredRun,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authed, IdPath, JsonBody, QueryParams, parse_json};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExperimentQuery {
    /// Only this project's experiments.
    #[param(nullable = false)]
    pub project_id: Option<Uuid>,
    /// How many to return (1 to 500, default 100).
    #[serde(default = "super::extract::default_limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: i64,
    /// How many to skip (0 to 1,000,000,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: i64,
}

#[utoipa::path(get, path = "/api/v1/experiments", tag = "experiments", params(ExperimentQuery),
    responses((status = 200, body = [Experiment]), (status = 400, body = ErrorBody)))]
pub async fn list_experiments(
    State(s): State<AppState>,
    Authed(a): Authed,
    QueryParams(q): QueryParams<ExperimentQuery>,
) -> ApiResult<Json<Vec<Experiment>>> {
    Ok(Json(
        engine::experiments::list_experiments(&s.core, &a, q.project_id, q.limit, q.offset).await?,
    ))
}

/// Creates an experiment. Templates, endpoints, models and parameters are validated now;
/// errors name the stage and field (e.g. `pipeline_stages[1].user`).
#[utoipa::path(post, path = "/api/v1/experiments", tag = "experiments", request_body = NewExperiment,
    responses((status = 201, body = Experiment), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_experiment(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(e): JsonBody<NewExperiment>,
) -> ApiResult<(StatusCode, Json<Experiment>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::experiments::create_experiment(&s.core, &a, e).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/experiments/{id}", tag = "experiments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody)))]
pub async fn get_experiment(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Experiment>> {
    Ok(Json(
        engine::experiments::get_experiment(&s.core, &a, id).await?,
    ))
}

/// Changes an experiment; absent fields are kept and the result is validated as a whole.
#[utoipa::path(put, path = "/api/v1/experiments/{id}", tag = "experiments", params(("id" = Uuid, Path)),
    request_body = ExperimentUpdate,
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_experiment(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(u): JsonBody<ExperimentUpdate>,
) -> ApiResult<Json<Experiment>> {
    Ok(Json(
        engine::experiments::update_experiment(&s.core, &a, id, u).await?,
    ))
}

/// Deletes an experiment with its runs.
#[utoipa::path(delete, path = "/api/v1/experiments/{id}", tag = "experiments", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_experiment(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    engine::experiments::delete_experiment(&s.core, &a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// For uploaded files: add to the current items instead of replacing them.
    #[serde(default)]
    pub append: bool,
    /// Keep the good lines and list the bad ones, instead of refusing the file.
    #[serde(default)]
    pub skip_invalid: bool,
}

/// Imports sample items, replacing them (or appending): a new version of the experiment's
/// dataset. Upload the file itself as `text/csv`, `application/x-ndjson` or a JSON array as
/// `application/json` (`curl --data-binary @items.csv`), up to `MAX_UPLOAD_MB`, streamed; or
/// send JSON `{"format": "csv"|"jsonl"|"json", "content": "…", "append": false}` (2 MiB). The
/// text is checked whole before anything is written: bad lines are a 422 listing the first
/// 100 (`error.lines`) with their count, unless `?skip_invalid=true`.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/samples", tag = "items",
    params(("id" = Uuid, Path), ImportQuery),
    request_body(content(
        (JsonImport = "application/json"),
        (String = "text/csv"),
        (String = "application/x-ndjson"),
    )),
    responses((status = 200, body = ImportReport), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import_samples(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<ImportQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Json<ImportReport>> {
    // Refused before a byte is stored: guests may not import.
    a.require_write()?;
    let (source, opts, _upload) = read_import(&s, &headers, body, &q).await?;
    Ok(Json(
        engine::datasets::import(&s.core, &a, id, source, opts).await?,
    ))
}

/// What an import takes as `application/json`: the `{format, content, append}` wrapper (at most
/// 2 MiB), or the items themselves as a JSON array of objects (each `{"input": {…},
/// "reference": …}` or a flat object), streamed like the other files.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only documents the body; `read_import` reads it.
pub enum JsonImport {
    Wrapper(SampleImport),
    Items(Vec<std::collections::BTreeMap<String, serde_json::Value>>),
}

/// An import's text and options from an upload request: a file (`text/csv`,
/// `application/x-ndjson`, a JSON array as `application/json`) spooled to disk up to
/// `MAX_UPLOAD_MB`, or the 2 MiB JSON wrapper. The upload is kept until the import is done.
pub async fn read_import(
    s: &AppState,
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    q: &ImportQuery,
) -> ApiResult<(
    engine::datasets::Source,
    engine::datasets::ImportOptions,
    super::upload::Upload,
)> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let file_format = match content_type.as_str() {
        "text/csv" => Some(SampleFormat::Csv),
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            Some(SampleFormat::Jsonl)
        }
        "application/json" => None,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send text/csv, application/x-ndjson or application/json",
            ));
        }
    };
    let limit = s.config.max_upload_mb.saturating_mul(1024 * 1024);
    let upload = super::upload::spool(&s.config.data_dir, body, limit).await?;
    let file = |format| {
        (
            engine::datasets::Source::File(upload.path().to_owned()),
            engine::datasets::ImportOptions {
                format,
                append: q.append,
                skip_invalid: q.skip_invalid,
            },
        )
    };
    let (source, opts) = match file_format {
        Some(format) => file(format),
        // JSON: a JSON array of items, or the `{format, content}` wrapper (2 MiB).
        None if upload.starts_with(b'[')? => file(SampleFormat::Json),
        None => {
            if upload.len() > super::BODY_LIMIT as u64 {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "a JSON body is at most 2 MiB; upload large files as text/csv, \
                     application/x-ndjson or a JSON array",
                ));
            }
            let wrapper = parse_json::<SampleImport>(&upload.read()?)?;
            (
                engine::datasets::Source::Text(wrapper.content),
                engine::datasets::ImportOptions {
                    format: wrapper.format,
                    append: wrapper.append || q.append,
                    skip_invalid: q.skip_invalid,
                },
            )
        }
    };
    Ok((source, opts, upload))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only runs with this status.
    #[param(nullable = false, value_type = Option<RunStatus>, inline)]
    pub status: Option<String>,
    /// Only this configuration's runs (its `config_key`: 64 hex digits).
    #[param(nullable = false, pattern = "^[0-9A-Fa-f]{64}$")]
    pub config_key: Option<String>,
    /// Only this item's runs (its id: 1 to 200 bytes).
    #[param(nullable = false, min_length = 1, max_length = 200)]
    pub item_id: Option<String>,
    /// Runs whose score is at least this (0 to 1; unscored runs are left out).
    #[param(nullable = false, minimum = 0, maximum = 1)]
    pub min_score: Option<f64>,
    /// Runs whose score is at most this (0 to 1, not below `min_score`).
    #[param(nullable = false, minimum = 0, maximum = 1)]
    pub max_score: Option<f64>,
    /// The scorer `min_score`/`max_score` use (default: the weighted score): one of the
    /// experiment's scorers.
    #[param(nullable = false)]
    pub score_by: Option<String>,
    /// created_at, -created_at (default), duration_ms, -duration_ms, -tokens, -cost, item,
    /// score, -score (the weighted score), score:<scorer>, -score:<scorer> (one of the
    /// experiment's scorers).
    #[serde(default)]
    #[param(
        pattern = "^(?:|-?created_at|-?duration_ms|-tokens|-cost|item|-?score|-?score:[\\s\\S]*)$"
    )]
    pub sort: String,
    /// How many to return (1 to 1000, default 100).
    #[serde(default = "super::extract::default_limit")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: i64,
    /// How many to skip (0 to 1,000,000,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: i64,
}

/// A run's status.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only documents the values `RunQuery::status` takes.
pub enum RunStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cached,
}

#[derive(Serialize, ToSchema)]
pub struct RunPage {
    /// Each run with its current scores and weighted score.
    pub runs: Vec<ScoredRun>,
    /// All runs matching the filter.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[utoipa::path(get, path = "/api/v1/experiments/{id}/runs", tag = "runs", params(("id" = Uuid, Path), RunQuery),
    responses((status = 200, body = RunPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_runs(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<RunQuery>,
) -> ApiResult<Json<RunPage>> {
    let (runs, total) = engine::runs::list_runs(
        &s.core,
        &a,
        id,
        engine::runs::RunFilter {
            status: q.status.as_deref(),
            config_key: q.config_key.as_deref(),
            item_id: q.item_id.as_deref(),
            min_score: q.min_score,
            max_score: q.max_score,
            score_by: q.score_by.as_deref(),
        },
        &q.sort,
        q.limit,
        q.offset,
    )
    .await?;
    let runs = engine::runs::with_scores(&s.core, id, runs).await?;
    Ok(Json(RunPage {
        runs,
        total,
        limit: q.limit,
        offset: q.offset,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    /// How many cache entries were removed.
    pub removed: u64,
}

/// Forgets every cached response the experiment's runs used.
#[utoipa::path(delete, path = "/api/v1/experiments/{id}/cache", tag = "runs", params(("id" = Uuid, Path)),
    responses((status = 200, body = Removed), (status = 404, body = ErrorBody)))]
pub async fn invalidate_cache(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Removed>> {
    Ok(Json(Removed {
        removed: engine::runs::invalidate_experiment_cache(&s.core, &a, id).await?,
    }))
}

/// Reads text as sample items without storing anything: CSV, JSON lines or a JSON array
/// (`format` detected when absent). Every bad line is reported with its line number (the
/// first 100, with the total), and the good lines are returned as items.
#[utoipa::path(post, path = "/api/v1/samples/parse", tag = "experiments", request_body = SampleParse,
    responses((status = 200, body = ParsedSamples), (status = 401, body = ErrorBody)))]
pub async fn parse_samples(
    Authed(_a): Authed,
    JsonBody(p): JsonBody<SampleParse>,
) -> ApiResult<Json<ParsedSamples>> {
    Ok(Json(engine::samples::parse_samples(p.format, &p.content)))
}

/// An experiment id and an item id from the path; a bad experiment id is a 400 naming it.
pub struct ItemPath(pub Uuid, pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ItemPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((id, item_id)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(Some("id".into()), e.body_text()))?;
        let id = Uuid::parse_str(&id).map_err(|_| {
            ApiError::bad_request(Some("id".into()), format!("id: {id:?} is not a UUID"))
        })?;
        Ok(ItemPath(id, item_id))
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ItemQuery {
    /// How many to return (1 to 1000, default 100).
    #[serde(default = "super::extract::default_limit")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: i64,
    /// How many to skip (0 to 1,000,000,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: i64,
    /// Only items with this tag.
    #[param(nullable = false)]
    pub tag: Option<String>,
    /// Only items in this split (e.g. `test`).
    #[param(nullable = false)]
    pub split: Option<String>,
}

/// A page of the experiment's items, in order, from the dataset version it uses.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/items", tag = "items", params(("id" = Uuid, Path), ItemQuery),
    responses((status = 200, body = ItemPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_items(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<ItemQuery>,
) -> ApiResult<Json<ItemPage>> {
    let q = engine::datasets::ItemQuery {
        limit: q.limit,
        offset: q.offset,
        tag: q.tag,
        split: q.split,
    };
    Ok(Json(
        engine::datasets::list_items(&s.core, &a, id, q).await?,
    ))
}

/// Appends items (a new version of the experiment's dataset). Items keep the `id` they are
/// given (unique), or get one.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/items", tag = "items", params(("id" = Uuid, Path)),
    request_body = NewItems,
    responses((status = 201, body = ItemsChanged), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn add_items(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(new): JsonBody<NewItems>,
) -> ApiResult<(StatusCode, Json<ItemsChanged>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::datasets::add_items(&s.core, &a, id, new).await?),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// csv (default), jsonl or json.
    #[serde(default)]
    #[param(nullable = false)]
    pub format: Option<SampleFormat>,
}

/// The items as a file: CSV (id, the fields, reference, split, tags), JSON lines or JSON.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/items/export", tag = "items",
    params(("id" = Uuid, Path), ExportQuery),
    responses((status = 200, description = "The items as CSV (the default), JSON lines or a JSON array, by `format`",
               content((String = "text/csv"), (String = "application/x-ndjson"), (Vec<Object> = "application/json"))),
              (status = 404, body = ErrorBody)))]
pub async fn export_items(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<ExportQuery>,
) -> ApiResult<axum::response::Response> {
    let format = q.format.unwrap_or(SampleFormat::Csv);
    let export = engine::datasets::export_items(&s.core, &a, id, format).await?;
    Ok(stream_export(&s, export, format, &format!("items-{id}")))
}

/// An items export as a download, streamed a page at a time (memory does not grow with the
/// items). The stream is fused: a compressing layer polls it again after its end.
pub fn stream_export(
    s: &AppState,
    export: engine::datasets::ItemExport,
    format: SampleFormat,
    name: &str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let chunks = futures::stream::unfold(Some((export, s.core.clone())), |state| async move {
        let (mut export, core) = state?;
        match export.next_chunk(&core).await {
            Ok(Some(chunk)) => Some((Ok(axum::body::Bytes::from(chunk)), Some((export, core)))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "an items export broke off");
                Some((Err(std::io::Error::other("the export broke off")), None))
            }
        }
    });
    let (mime, ext) = match format {
        SampleFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        SampleFormat::Jsonl => ("application/x-ndjson", "jsonl"),
        SampleFormat::Json => ("application/json", "json"),
    };
    (
        [
            (axum::http::header::CONTENT_TYPE, mime.to_owned()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{ext}\""),
            ),
        ],
        axum::body::Body::from_stream(futures::StreamExt::fuse(chunks)),
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/experiments/{id}/items/{item_id}", tag = "items",
    params(("id" = Uuid, Path), ("item_id" = String, Path)),
    responses((status = 200, body = Item), (status = 404, body = ErrorBody)))]
pub async fn get_item(
    State(s): State<AppState>,
    Authed(a): Authed,
    ItemPath(id, item_id): ItemPath,
) -> ApiResult<Json<Item>> {
    Ok(Json(
        engine::datasets::get_item(&s.core, &a, id, &item_id).await?,
    ))
}

/// Changes one item (a new version); absent fields are kept. Runs of other items keep their
/// identity; this item's next sweep runs it again if its input changed.
#[utoipa::path(put, path = "/api/v1/experiments/{id}/items/{item_id}", tag = "items",
    params(("id" = Uuid, Path), ("item_id" = String, Path)), request_body = ItemUpdate,
    responses((status = 200, body = ItemsChanged), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_item(
    State(s): State<AppState>,
    Authed(a): Authed,
    ItemPath(id, item_id): ItemPath,
    JsonBody(u): JsonBody<ItemUpdate>,
) -> ApiResult<Json<ItemsChanged>> {
    Ok(Json(
        engine::datasets::update_item(&s.core, &a, id, &item_id, u).await?,
    ))
}

/// Removes one item (a new version without it; earlier versions keep it).
#[utoipa::path(delete, path = "/api/v1/experiments/{id}/items/{item_id}", tag = "items",
    params(("id" = Uuid, Path), ("item_id" = String, Path)),
    responses((status = 200, body = ItemsSummary), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_item(
    State(s): State<AppState>,
    Authed(a): Authed,
    ItemPath(id, item_id): ItemPath,
) -> ApiResult<Json<ItemsSummary>> {
    Ok(Json(
        engine::datasets::delete_item(&s.core, &a, id, &item_id).await?,
    ))
}
