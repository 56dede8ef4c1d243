//! `/api/v1/datasets`: named datasets shared in a project. Every change (an import) makes a
//! new version; experiments use a version (`dataset_id`, `dataset_version` on the experiment)
//! and move to another when told.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{
    Dataset, DatasetUpdate, DatasetVersion, ImportReport, ItemPage, NewDataset, SampleFormat,
};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::{ApiResult, ErrorBody};
use super::experiments::{ImportQuery, read_import};
use super::extract::{Authed, IdPath, JsonBody, QueryParams};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DatasetQuery {
    /// Only this project's datasets.
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

/// Named datasets, by name.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets", params(DatasetQuery),
    responses((status = 200, body = [Dataset]), (status = 400, body = ErrorBody)))]
pub async fn list_datasets(
    State(s): State<AppState>,
    Authed(a): Authed,
    QueryParams(q): QueryParams<DatasetQuery>,
) -> ApiResult<Json<Vec<Dataset>>> {
    Ok(Json(
        engine::datasets::list_datasets(&s.core, &a, q.project_id, q.limit, q.offset).await?,
    ))
}

/// Creates a named dataset from the items given (inline, up to 10,000; import larger sets into
/// it), or from an experiment's own items (`from_experiment`: they become this dataset).
#[utoipa::path(post, path = "/api/v1/datasets", tag = "datasets", request_body = NewDataset,
    responses((status = 201, body = Dataset), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_dataset(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(new): JsonBody<NewDataset>,
) -> ApiResult<(StatusCode, Json<Dataset>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::datasets::create_dataset(&s.core, &a, new).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/datasets/{id}", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 200, body = Dataset), (status = 404, body = ErrorBody)))]
pub async fn get_dataset(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Dataset>> {
    Ok(Json(engine::datasets::get_dataset(&s.core, &a, id).await?))
}

/// Renames a dataset or changes its description.
#[utoipa::path(put, path = "/api/v1/datasets/{id}", tag = "datasets", params(("id" = Uuid, Path)),
    request_body = DatasetUpdate,
    responses((status = 200, body = Dataset), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_dataset(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(u): JsonBody<DatasetUpdate>,
) -> ApiResult<Json<Dataset>> {
    Ok(Json(
        engine::datasets::update_dataset(&s.core, &a, id, u).await?,
    ))
}

/// Deletes a dataset with every version; refused (409) while an experiment uses it.
#[utoipa::path(delete, path = "/api/v1/datasets/{id}", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_dataset(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    engine::datasets::delete_dataset(&s.core, &a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The dataset's versions, newest first, with how many experiments use each.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/versions", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 200, body = [DatasetVersion]), (status = 404, body = ErrorBody)))]
pub async fn dataset_versions(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Vec<DatasetVersion>>> {
    Ok(Json(
        engine::datasets::dataset_versions(&s.core, &a, id).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DatasetItemQuery {
    /// Which version (default the newest): one the dataset has.
    #[param(nullable = false, minimum = 1)]
    pub version: Option<i64>,
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

/// A page of one version's items, in order.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/items", tag = "datasets",
    params(("id" = Uuid, Path), DatasetItemQuery),
    responses((status = 200, body = ItemPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn dataset_items(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<DatasetItemQuery>,
) -> ApiResult<Json<ItemPage>> {
    let query = engine::datasets::ItemQuery {
        limit: q.limit,
        offset: q.offset,
        tag: q.tag,
        split: q.split,
    };
    Ok(Json(
        engine::datasets::dataset_items(&s.core, &a, id, q.version, query).await?,
    ))
}

/// Imports items into the dataset: a new version (replacing its items, or `?append=true`),
/// as the experiment import does. Experiments keep the version they use until moved.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/samples", tag = "datasets",
    params(("id" = Uuid, Path), ImportQuery),
    request_body(content(
        (super::experiments::JsonImport = "application/json"),
        (String = "text/csv"),
        (String = "application/x-ndjson"),
    )),
    responses((status = 200, body = ImportReport), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn import_dataset(
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
        engine::datasets::import_dataset(&s.core, &a, id, source, opts).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DatasetExportQuery {
    /// csv (default), jsonl or json.
    #[param(nullable = false)]
    pub format: Option<SampleFormat>,
    /// Which version (default the newest): one the dataset has.
    #[param(nullable = false, minimum = 1)]
    pub version: Option<i64>,
}

/// One version's items as a file, streamed.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/items/export", tag = "datasets",
    params(("id" = Uuid, Path), DatasetExportQuery),
    responses((status = 200, description = "The items as CSV (the default), JSON lines or a JSON array, by `format`",
               content((String = "text/csv"), (String = "application/x-ndjson"), (Vec<Object> = "application/json"))),
              (status = 404, body = ErrorBody)))]
pub async fn export_dataset(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<DatasetExportQuery>,
) -> ApiResult<axum::response::Response> {
    let format = q.format.unwrap_or(SampleFormat::Csv);
    let export = engine::datasets::export_dataset(&s.core, &a, id, q.version, format).await?;
    Ok(super::experiments::stream_export(
        &s,
        export,
        format,
        &format!("dataset-{id}"),
    ))
}
