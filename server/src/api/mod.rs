//! The REST API under `/api/v1`, plus `/health` and the OpenAPI document. Handlers are thin:
//! extract, call one engine operation, render. Routes and their OpenAPI entries are registered
//! together (utoipa-axum), so the document cannot miss a route.

pub mod admin;
pub mod auth;
pub mod charts;
pub mod datasets;
pub mod endpoints;
pub mod error;
mod errors_doc;
pub mod experiments;
pub mod extract;
pub mod health;
pub mod live;
pub mod metrics;
pub mod projects;
pub mod runs;
pub mod scoring;
pub mod sweeps;
pub mod upload;
pub mod webhooks;

use axum::Json;
use axum::extract::DefaultBodyLimit;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The largest request body the API accepts.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "PromptLooper API", description = "Experiments, runs, scoring and steering for LLM prompt tuning.",
         license(name = "AGPL-3.0-or-later")),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(error::ErrorBody)),
    tags(
        (name = "auth", description = "Setup, sign-in and the current principal"),
        (name = "admin", description = "Settings, stats, users and API keys (admins)"),
        (name = "projects", description = "Projects group experiments"),
        (name = "endpoints", description = "LLM endpoints (OpenAI-compatible, Anthropic, simulated)"),
        (name = "experiments", description = "Sample data, pipeline stages, parameter space"),
        (name = "runs", description = "Executing configurations, run results and the response cache"),
        (name = "sweeps", description = "Sweeps (grid, random), preview, steering, budgets"),
        (name = "scoring", description = "The leaderboard, human ratings, re-scoring and exports"),
        (name = "charts", description = "Charts drawn on the server (SVG) and their data"),
        (name = "events", description = "The activity timeline and live event streams"),
        (name = "webhooks", description = "Signed, durable event deliveries to other systems"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A JWT from /api/v1/auth/login, an API key (pl_…), or the static API_KEY",
                    ))
                    .build(),
            ),
        );
    }
}

/// All REST routes and the OpenAPI document describing them.
pub fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(auth::setup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::me))
        .routes(routes!(admin::get_settings, admin::update_settings))
        .routes(routes!(admin::stats))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::update_user, admin::delete_user))
        .routes(routes!(admin::list_api_keys, admin::create_api_key))
        .routes(routes!(admin::revoke_api_key))
        .routes(routes!(projects::list_projects, projects::create_project))
        .routes(routes!(
            projects::get_project,
            projects::update_project,
            projects::delete_project
        ))
        .routes(routes!(admin::list_prices, admin::set_prices))
        .routes(routes!(admin::delete_price))
        .routes(routes!(admin::cache_stats, admin::clear_cache))
        .routes(routes!(
            endpoints::list_endpoints,
            endpoints::create_endpoint
        ))
        .routes(routes!(
            endpoints::get_endpoint,
            endpoints::update_endpoint,
            endpoints::delete_endpoint
        ))
        .routes(routes!(endpoints::test_endpoint))
        .routes(routes!(endpoints::list_models))
        .routes(routes!(
            experiments::list_experiments,
            experiments::create_experiment
        ))
        .routes(routes!(
            experiments::get_experiment,
            experiments::update_experiment,
            experiments::delete_experiment
        ))
        .routes(routes!(experiments::import_samples))
        .routes(routes!(experiments::list_items, experiments::add_items))
        .routes(routes!(experiments::export_items))
        .routes(routes!(
            experiments::get_item,
            experiments::update_item,
            experiments::delete_item
        ))
        .routes(routes!(experiments::parse_samples))
        .routes(routes!(datasets::list_datasets, datasets::create_dataset))
        .routes(routes!(
            datasets::get_dataset,
            datasets::update_dataset,
            datasets::delete_dataset
        ))
        .routes(routes!(datasets::dataset_versions))
        .routes(routes!(datasets::dataset_items))
        .routes(routes!(datasets::import_dataset))
        .routes(routes!(datasets::export_dataset))
        .routes(routes!(experiments::list_runs))
        .routes(routes!(experiments::invalidate_cache))
        .routes(routes!(runs::create_runs))
        .routes(routes!(runs::compare_runs))
        .routes(routes!(runs::compare_configs))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::invalidate_cache))
        .routes(routes!(sweeps::start_sweep, sweeps::current_sweep))
        .routes(routes!(sweeps::preview_sweep))
        .routes(routes!(sweeps::suggest))
        .routes(routes!(sweeps::list_sweeps))
        .routes(routes!(sweeps::get_sweep))
        .routes(routes!(sweeps::pause))
        .routes(routes!(sweeps::resume))
        .routes(routes!(sweeps::stop))
        .routes(routes!(sweeps::redirect))
        .routes(routes!(sweeps::fork))
        .routes(routes!(sweeps::approve))
        .routes(routes!(sweeps::reject))
        .routes(routes!(sweeps::clear_mark))
        .routes(routes!(sweeps::list_marks))
        .routes(routes!(sweeps::experiment_events))
        .routes(routes!(sweeps::human_needed))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(sweeps::all_events))
        .routes(routes!(sweeps::overview))
        .routes(routes!(scoring::leaderboard))
        .routes(routes!(scoring::rate_run, scoring::withdraw_rating))
        .routes(routes!(scoring::rescore))
        .routes(routes!(scoring::list_scoring_jobs))
        .routes(routes!(scoring::get_scoring_job))
        .routes(routes!(scoring::export))
        .routes(routes!(scoring::experiment_exports))
        .routes(routes!(scoring::project_exports))
        .routes(routes!(scoring::get_export))
        .routes(routes!(scoring::compare))
        .routes(routes!(scoring::try_scorer))
        .routes(routes!(charts::list_charts))
        .routes(routes!(charts::get_chart))
        .routes(routes!(live::experiment_stream))
        .routes(routes!(live::global_stream))
        .routes(routes!(openapi_json))
        .split_for_parts();
    doc.info.version = engine::VERSION.to_owned();
    errors_doc::declare(&mut doc);
    close_variants(&mut doc, &["Strategy"]);
    (router.layer(DefaultBodyLimit::max(BODY_LIMIT)), doc)
}

/// Internally tagged enums with `deny_unknown_fields` refuse fields their variant does not
/// have, which utoipa does not say of the variants' objects: the document does.
fn close_variants(doc: &mut utoipa::openapi::OpenApi, names: &[&str]) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for name in names {
        if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(*name) {
            for item in &mut one_of.items {
                // serde takes any field beside the tag of a variant without fields.
                if let RefOr::T(Schema::Object(object)) = item
                    && object.properties.len() > 1
                {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "The OpenAPI 3 document for every REST route")))]
async fn openapi_json(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    Json(state.openapi.as_ref().clone())
}

/// Any `/api/…` path no route matches: a JSON 404, not the dashboard's HTML page.
pub async fn unknown_route(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        format!("no API route at {}", uri.path()),
    )
}

/// Routes that take files: their bodies may be up to `MAX_UPLOAD_MB` (they stream them).
fn is_upload(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && (path.starts_with("/api/v1/experiments/") || path.starts_with("/api/v1/datasets/"))
        && path.ends_with("/samples")
}

/// Caps request bodies: `upload_limit` bytes on upload routes, [`BODY_LIMIT`] elsewhere. A
/// declared length over the cap is refused at once; a body that grows past it fails as it is
/// read (413 either way).
pub async fn body_limit(
    axum::extract::State(upload_limit): axum::extract::State<u64>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let limit = if is_upload(req.method(), req.uri().path()) {
        usize::try_from(upload_limit).unwrap_or(usize::MAX)
    } else {
        BODY_LIMIT
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        if limit != BODY_LIMIT {
            return upload::too_large(upload_limit).into_response();
        }
        return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let req = req.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit)));
    next.run(req).await
}

/// Gives over-size `/api/…` requests (rejected by the global body limit before any extractor
/// runs) the API's JSON error shape.
pub async fn json_payload_too_large(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let is_api = req.uri().path().starts_with("/api/");
    let response = next.run(req).await;
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_api && response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return error::ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is too large (limit {} KiB)",
                BODY_LIMIT / 1024
            ),
        )
        .into_response();
    }
    response
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// The pattern the document gives `name` of `method path`.
    fn param_pattern(doc: &Value, method: &str, path: &str, name: &str) -> regex::Regex {
        let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
        let param = params.iter().find(|p| p["name"] == name).unwrap();
        regex::Regex::new(param["schema"]["pattern"].as_str().unwrap()).unwrap()
    }

    fn doc() -> Value {
        serde_json::to_value(super::router().1).unwrap()
    }

    /// The patterns written out in parameter attributes say what the checks behind them take.
    #[test]
    fn parameter_patterns_are_the_rules() {
        let doc = doc();
        let types = engine::types::EVENT_TYPES;
        let mut lists: Vec<String> = vec![
            String::new(),
            " ".into(),
            ",".into(),
            "x".into(),
            "run".into(),
            "run.failed.".into(),
            format!("{},nope", types[0]),
            format!(" {} ,\t{},, ", types[1], types[2]),
            format!("{}\u{3000}", types[3]),
            format!("{}\u{feff}", types[3]),
        ];
        lists.extend(types.iter().map(|t| (*t).to_owned()));
        for (method, path) in [
            ("get", "/api/v1/events"),
            ("get", "/api/v1/events/stream"),
            ("get", "/api/v1/experiments/{id}/events"),
            ("get", "/api/v1/experiments/{id}/events/stream"),
        ] {
            let re = param_pattern(&doc, method, path, "type");
            for list in &lists {
                let ok = engine::events::parse_types(Some(list)).is_ok();
                assert_eq!(re.is_match(list), ok, "{path} type={list:?}");
            }
        }

        let re = param_pattern(&doc, "get", "/api/v1/experiments/{id}/leaderboard", "sort");
        for sort in [
            "",
            " score ",
            "cost",
            "latency",
            "runs",
            "scorer:",
            "scorer:a b",
            "\tscorer:x\n",
            "scorer",
            "Score",
            "runs x",
            "-score",
            "score\u{feff}",
        ] {
            let t = sort.trim();
            let ok =
                ["", "score", "cost", "latency", "runs"].contains(&t) || t.starts_with("scorer:");
            assert_eq!(re.is_match(sort), ok, "sort={sort:?}");
        }

        let re = param_pattern(
            &doc,
            "get",
            "/api/v1/experiments/{id}/charts/{file}",
            "file",
        );
        let mut files = vec!["x.svg".to_owned(), "progress".into(), "progress.png".into()];
        for kind in engine::types::ChartKind::ALL {
            for ext in ["svg", "json", "svgx"] {
                files.push(format!("{kind}.{ext}"));
            }
            files.push(format!("{kind}.svg.json.x"));
        }
        for file in &files {
            let ok = file.rsplit_once('.').is_some_and(|(k, e)| {
                ["svg", "json"].contains(&e) && engine::charts::parse_kind(k).is_ok()
            });
            assert_eq!(re.is_match(file), ok, "file={file:?}");
        }

        let export = &doc["paths"]["/api/v1/experiments/{id}/export/{format}"]["get"]["parameters"];
        let format = export
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "format")
            .unwrap();
        let listed: Vec<&str> = format["schema"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(listed, engine::types::EXPORT_FORMATS);
    }

    /// Variants with fields are closed objects, as serde's `deny_unknown_fields` makes them.
    #[test]
    fn strategy_variants_with_fields_are_closed() {
        let doc = doc();
        for variant in doc["components"]["schemas"]["Strategy"]["oneOf"]
            .as_array()
            .unwrap()
        {
            let fields = variant["properties"].as_object().unwrap().len();
            let closed = variant["additionalProperties"] == Value::Bool(false);
            assert_eq!(closed, fields > 1, "{variant}");
        }
    }
}
