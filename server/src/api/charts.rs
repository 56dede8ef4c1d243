//! Charts drawn on the server: the listing, and each chart as SVG or as its data.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use engine::types::{ChartData, ChartInfo, ChartOptions};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authed, IdAndSegment, IdPath, QueryParams};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChartQuery {
    /// score-vs-param: the varied parameter on the x axis (default: the first numeric one),
    /// e.g. `temperature`, `stage 2 temperature`, `prompt`, `model`: one the experiment varies.
    #[serde(default)]
    pub param: Option<String>,
    /// Plot this scorer's mean instead of the weighted score: one of the experiment's scorers.
    #[serde(default)]
    pub scorer: Option<String>,
    /// distribution: how many top configurations, 1 to 20 (default 5).
    #[serde(default)]
    #[param(minimum = 1, maximum = 20)]
    pub top: Option<i64>,
}

/// The charts an experiment offers: whether each has data, its SVG path, and the varied
/// parameters score-vs-param can be drawn over.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/charts", tag = "charts",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<ChartInfo>), (status = 404, body = ErrorBody)))]
pub async fn list_charts(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Vec<ChartInfo>>> {
    Ok(Json(engine::charts::list(&s.core, &a, id).await?))
}

/// A chart: `{kind}.svg` (an accessible SVG: title, description, axis names) or `{kind}.json`
/// (its data). Kinds: `score-vs-param`, `score-vs-cost`, `score-vs-latency`, `distribution`,
/// `progress`. An experiment without data gives a chart that says so.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/charts/{file}", tag = "charts",
    params(("id" = uuid::Uuid, Path),
           ("file" = String, Path, description = "`{kind}.svg` or `{kind}.json`, e.g. `score-vs-cost.svg`",
            pattern = "^(?:score-vs-param|score-vs-cost|score-vs-latency|distribution|progress)\\.(?:svg|json)$"),
           ChartQuery),
    responses((status = 200, description = "The chart as SVG, or its data as JSON",
               content((ChartData = "application/json"), (String = "image/svg+xml"))),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_chart(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdAndSegment(id, file): IdAndSegment,
    QueryParams(q): QueryParams<ChartQuery>,
) -> ApiResult<Response> {
    let Some((kind, ext @ ("svg" | "json"))) = file.rsplit_once('.') else {
        return Err(ApiError::unprocessable(
            "file",
            "must be {kind}.svg or {kind}.json",
        ));
    };
    // The path segment is the field at fault, whatever the engine calls it.
    let kind = engine::charts::parse_kind(kind).map_err(|e| match e {
        engine::Error::Invalid(f) => ApiError::unprocessable("file", f.message),
        other => ApiError::from(other),
    })?;
    let options = ChartOptions {
        param: q.param,
        scorer: q.scorer,
        top: q.top,
    };
    let data = engine::charts::data(&s.core, &a, id, kind, &options).await?;
    Ok(if ext == "svg" {
        (
            [(header::CONTENT_TYPE, "image/svg+xml")],
            engine::charts::svg(&data),
        )
            .into_response()
    } else {
        Json(data).into_response()
    })
}
