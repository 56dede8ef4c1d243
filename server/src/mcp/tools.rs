//! The MCP tools. Each reads its arguments (errors name the field), calls the `engine::`
//! operation REST calls, and answers with structured content and a one-line summary.
//! Failures are tool errors (`isError`), never protocol errors, so an agent can read and act.

use std::sync::Arc;

use engine::types::{Endpoint, HumanNeeded, Leaderboard, LeaderboardEntry};
use engine::{Actor, Core};
use rmcp::handler::server::common::schema_for_input;
use rmcp::handler::server::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, JsonObject, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::McpCaller;
use super::params::*;
use crate::api::error::ApiError;

/// The tools, and who calls them over stdio (over HTTP each request carries its caller).
#[derive(Clone)]
pub struct Tools {
    core: Core,
    stdio: Option<Actor>,
    tool_router: ToolRouter<Tools>,
}

/// A tool's input schema, from its argument type.
fn input<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    schema_for_input::<T>()
        .unwrap_or_else(|e| panic!("input schema of {}: {e}", std::any::type_name::<T>()))
}

/// Reads a tool's arguments; a bad one is a tool error naming it (`sweep.strategy.samples`).
fn args<T: DeserializeOwned>(raw: JsonObject) -> Result<T, CallToolResult> {
    serde_path_to_error::deserialize(Value::Object(raw)).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        let message = e.into_inner().to_string();
        // serde names a missing field in its message, not its path.
        let field = field.or_else(|| {
            message
                .strip_prefix("missing field `")
                .and_then(|m| m.split('`').next())
                .map(str::to_owned)
        });
        refusal("invalid", field, message)
    })
}

/// A tool error an agent can act on: `{"error": {"code", "message", "field"?}}` and the same
/// in words.
fn refusal(code: &str, field: Option<String>, message: String) -> CallToolResult {
    let text = match &field {
        Some(f) => format!("{code}: {f}: {message}"),
        None => format!("{code}: {message}"),
    };
    let mut r = CallToolResult::structured_error(json!({
        "error": {"code": code, "message": message, "field": field}
    }));
    r.content = vec![ContentBlock::text(text)];
    r
}

/// An engine error as a tool error (the same codes and messages as REST; internal details
/// are logged, never sent).
fn failure(e: engine::Error) -> CallToolResult {
    let e = ApiError::from(e);
    refusal(e.code, e.field, e.message)
}

/// A tool's answer: `value` as structured content (an object) and `summary` as text.
fn answer(value: impl Serialize, summary: impl Into<String>) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => {
            let mut r = CallToolResult::structured(v);
            r.content = vec![ContentBlock::text(summary.into())];
            r
        }
        Err(e) => failure(engine::Error::Internal(format!(
            "serializing a tool answer: {e}"
        ))),
    }
}

fn score_text(score: Option<f64>) -> String {
    score.map_or_else(|| "no score yet".to_owned(), |s| format!("{s:.3}"))
}

fn entry_text(e: &LeaderboardEntry) -> String {
    format!("#{} {} — score {}", e.rank, e.label, score_text(e.score))
}

#[tool_router]
impl Tools {
    pub fn new(core: Core, stdio: Option<Actor>) -> Tools {
        Tools {
            core,
            stdio,
            tool_router: Self::tool_router(),
        }
    }

    /// Runs a tool: who calls, its arguments read as `T` (a bad one is a tool error naming
    /// it), then `body`; an `Err` from the body is an answer too (a tool error).
    async fn call<T, F, Fut>(
        &self,
        raw: JsonObject,
        ctx: &RequestContext<RoleServer>,
        body: F,
    ) -> CallToolResult
    where
        T: DeserializeOwned,
        F: FnOnce(Actor, T) -> Fut,
        Fut: std::future::Future<Output = Result<CallToolResult, CallToolResult>>,
    {
        let actor = match self.caller(ctx) {
            Ok(a) => a,
            Err(r) => return r,
        };
        match args::<T>(raw) {
            Ok(p) => body(actor, p).await.unwrap_or_else(|e| e),
            Err(r) => r,
        }
    }

    /// Who is calling: the stdio user, or the request's bearer credential.
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Actor, CallToolResult> {
        if let Some(a) = &self.stdio {
            return Ok(a.clone());
        }
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<McpCaller>())
            .map(|c| c.0.clone())
            .ok_or_else(|| {
                refusal(
                    "unauthenticated",
                    None,
                    "authentication required".to_owned(),
                )
            })
    }

    // ---- projects and experiments -------------------------------------------------------

    #[tool(
        description = "List projects (workspaces holding experiments), most recently updated first. Read-only. Next: list_experiments with a project_id, or create_project.",
        input_schema = input::<Page>(),
        annotations(read_only_hint = true)
    )]
    async fn list_projects(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: Page| async move {
            let projects = engine::projects::list_projects(&self.core, &actor, p.limit, p.offset)
                .await
                .map_err(failure)?;
            let summary = format!("{} project(s)", projects.len());
            Ok(answer(json!({ "projects": projects }), summary))
        })
        .await
    }

    #[tool(
        description = "Create a project: a named workspace for experiments. Free (no LLM calls). Returns the project with its id. Next: create_experiment with project_id.",
        input_schema = input::<engine::types::NewProject>()
    )]
    async fn create_project(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(
            raw,
            &ctx,
            |actor, new: engine::types::NewProject| async move {
                let project = engine::projects::create_project(&self.core, &actor, new)
                    .await
                    .map_err(failure)?;
                let summary = format!("created project {:?} ({})", project.name, project.id);
                Ok(answer(project, summary))
            },
        )
        .await
    }

    #[tool(
        description = "List experiments, newest first, optionally of one project. Read-only. Next: get_experiment_status or get_leaderboard with an experiment_id.",
        input_schema = input::<ListExperiments>(),
        annotations(read_only_hint = true)
    )]
    async fn list_experiments(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: ListExperiments| async move {
            let experiments = engine::experiments::list_experiments(
                &self.core,
                &actor,
                p.project_id,
                p.limit,
                p.offset,
            )
            .await
            .map_err(failure)?;
            let summary = format!("{} experiment(s)", experiments.len());
            Ok(answer(json!({ "experiments": experiments }), summary))
        })
        .await
    }

    #[tool(
        description = "Create an experiment in a project: sample items (inputs as variables, optional reference outputs), pipeline stages (prompt templates with {{variables}}, endpoint, model, parameters), a parameter space to sweep (prompt variants, models, parameter values or ranges) and scorers (e.g. {\"kind\": \"embedding_similarity\"} against the references, keywords, regex, json_schema, llm_judge; each with a weight). Free. Next: preview_sweep, then run_sweep.",
        input_schema = input::<engine::types::NewExperiment>()
    )]
    async fn create_experiment(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(
            raw,
            &ctx,
            |actor, new: engine::types::NewExperiment| async move {
                let e = engine::experiments::create_experiment(&self.core, &actor, new)
                    .await
                    .map_err(failure)?;
                let summary = format!(
                    "created experiment {:?} ({}) with {} stage(s)",
                    e.name,
                    e.id,
                    e.pipeline_stages.len()
                );
                Ok(answer(e, summary))
            },
        )
        .await
    }

    #[tool(
        description = "Add an LLM endpoint (give `endpoint`: name, kind openai|anthropic|ollama|simulated, base_url, api_key) or change one (give `id` and `changes`). The API key is stored encrypted and never returned. Free. Next: list_models to see what it serves.",
        input_schema = input::<ConfigureEndpoint>()
    )]
    async fn configure_endpoint(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: ConfigureEndpoint| async move {
            let endpoint: Endpoint = match (p.id, p.endpoint, p.changes) {
                (None, Some(new), None) => {
                    engine::endpoints::create_endpoint(&self.core, &actor, new).await
                }
                (Some(id), None, Some(changes)) => {
                    engine::endpoints::update_endpoint(&self.core, &actor, id, changes).await
                }
                (None, _, Some(_)) => {
                    return Err(refusal(
                        "invalid",
                        Some("id".into()),
                        "`changes` need the `id` of the endpoint to change".into(),
                    ));
                }
                (Some(_), Some(_), _) => {
                    return Err(refusal(
                        "invalid",
                        Some("endpoint".into()),
                        "give `endpoint` to add one, or `id` with `changes` to change one, not both"
                            .into(),
                    ));
                }
                (Some(_), None, None) => {
                    return Err(refusal(
                        "invalid",
                        Some("changes".into()),
                        "say what to change in `changes`".into(),
                    ));
                }
                (None, None, None) => {
                    return Err(refusal(
                        "invalid",
                        Some("endpoint".into()),
                        "give `endpoint` to add one, or `id` with `changes` to change one".into(),
                    ));
                }
            }
            .map_err(failure)?;
            let summary = format!("endpoint {:?} ({}) saved", endpoint.name, endpoint.id);
            Ok(answer(endpoint, summary))
        })
        .await
    }

    #[tool(
        description = "List the models each configured endpoint serves (asks each endpoint; the simulated one answers at once). Read-only. Use a model name in an experiment's stages or parameter space.",
        input_schema = input::<ListModels>(),
        annotations(read_only_hint = true)
    )]
    async fn list_models(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: ListModels| async move {
            let endpoints = match p.endpoint_id {
                Some(id) => vec![
                    engine::endpoints::get_endpoint(&self.core, &actor, id)
                        .await
                        .map_err(failure)?,
                ],
                None => engine::endpoints::list_endpoints(&self.core, &actor)
                    .await
                    .map_err(failure)?,
            };
            let mut out = Vec::with_capacity(endpoints.len());
            let mut models = 0;
            for ep in endpoints {
                let listed = engine::endpoints::list_models(&self.core, &actor, ep.id).await;
                let (list, error) = match listed {
                    Ok(t) => (t.models, t.error),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                };
                models += list.len();
                out.push(json!({
                    "endpoint_id": ep.id,
                    "endpoint": ep.name,
                    "kind": ep.kind,
                    "models": list,
                    "error": error,
                }));
            }
            let summary = format!("{models} model(s) on {} endpoint(s)", out.len());
            Ok(answer(json!({ "endpoints": out }), summary))
        })
        .await
    }

    // ---- running ---------------------------------------------------------------------------

    #[tool(
        description = "Run one configuration of an experiment over its items (or some of them) now and wait for the results. Costs one LLM call per stage per item per repeat (cached calls are free). Per stage you may pick a prompt variant, model, endpoint and parameters. Returns the runs with outputs and scores. Next: get_run_detail, or run_sweep to compare many configurations.",
        input_schema = input::<engine::types::NewRun>()
    )]
    async fn run_single(&self, raw: JsonObject, ctx: RequestContext<RoleServer>) -> CallToolResult {
        self.call(raw, &ctx, |actor, new: engine::types::NewRun| async move {
            let batch = engine::runs::run_configuration(&self.core, &actor, new)
                .await
                .map_err(failure)?;
            let summary = format!(
                "{} run(s) of {}: {} completed, {} from the cache, {} failed",
                batch.runs.len(),
                batch.config_key,
                batch.completed,
                batch.cached,
                batch.failed
            );
            Ok(answer(batch, summary))
        })
        .await
    }

    #[tool(
        description = "Say what a sweep would run and cost, without running anything: configurations, runs, LLM calls (and how many the cache already holds), estimated tokens and dollars. Free. Next: run_sweep with the same arguments (add a budget to cap spending).",
        input_schema = input::<SweepArgs>(),
        annotations(read_only_hint = true)
    )]
    async fn preview_sweep(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: SweepArgs| async move {
            let preview = engine::sweeps::preview(&self.core, &actor, p.experiment_id, p.sweep)
                .await
                .map_err(failure)?;
            let summary = preview_text(&preview);
            Ok(answer(preview, summary))
        })
        .await
    }

    #[tool(
        description = "Start a sweep over the experiment's parameter space (grid: every combination; random: N samples with a seed; guided: a model-based search that races each configuration across the items and stops at its budget, e.g. {\"strategy\": {\"kind\": \"guided\", \"seed\": 1}, \"budget\": {\"max_calls\": 500}}) and return at once with the sweep id and its preview; the runs go on in the background (durably: a restart resumes them). Spends what the preview says, up to the budget if you give one (then it pauses with budget.exhausted). With a progress token, progress notifications follow until the sweep ends (done/total, best score so far). Next: get_experiment_status or get_leaderboard; pause_sweep / stop_sweep / redirect_sweep to steer.",
        input_schema = input::<SweepArgs>()
    )]
    async fn run_sweep(&self, raw: JsonObject, ctx: RequestContext<RoleServer>) -> CallToolResult {
        let progress = ctx
            .meta
            .get_progress_token()
            .map(|token| (token, ctx.peer.clone()));
        self.call(raw, &ctx, |actor, p: SweepArgs| async move {
            actor.require_write().map_err(failure)?;
            let preview =
                engine::sweeps::preview(&self.core, &actor, p.experiment_id, p.sweep.clone())
                    .await
                    .map_err(failure)?;
            let sweep = engine::sweeps::start(&self.core, &actor, p.experiment_id, p.sweep)
                .await
                .map_err(failure)?;
            if let Some((token, peer)) = progress {
                super::progress::follow(self.core.clone(), actor.clone(), peer, token, &sweep);
            }
            let summary = format!("sweep {} started: {}", sweep.id, preview_text(&preview));
            Ok(answer(
                json!({ "sweep_id": sweep.id, "sweep": sweep, "preview": preview }),
                summary,
            ))
        })
        .await
    }

    #[tool(
        description = "Pause the experiment's running sweep: runs in flight finish, no new ones start. Free. Next: resume_sweep (optionally with a bigger budget) or stop_sweep.",
        input_schema = input::<ExperimentRef>()
    )]
    async fn pause_sweep(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: ExperimentRef| async move {
            let sweep = engine::sweeps::pause(&self.core, &actor, p.experiment_id)
                .await
                .map_err(failure)?;
            let summary = sweep_text(&sweep);
            Ok(answer(sweep, summary))
        })
        .await
    }

    #[tool(
        description = "Resume the experiment's paused sweep, optionally with a new budget (needed when it paused on budget.exhausted). Spends LLM calls again. Next: get_experiment_status.",
        input_schema = input::<ResumeArgs>()
    )]
    async fn resume_sweep(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: ResumeArgs| async move {
            let sweep = engine::sweeps::resume(&self.core, &actor, p.experiment_id, p.budget)
                .await
                .map_err(failure)?;
            let summary = sweep_text(&sweep);
            Ok(answer(sweep, summary))
        })
        .await
    }

    #[tool(
        description = "Stop the experiment's sweep for good: unstarted runs are dropped, finished ones stay on the leaderboard. Free. Next: get_leaderboard.",
        input_schema = input::<ExperimentRef>()
    )]
    async fn stop_sweep(&self, raw: JsonObject, ctx: RequestContext<RoleServer>) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: ExperimentRef| async move {
            let sweep = engine::sweeps::stop(&self.core, &actor, p.experiment_id)
                .await
                .map_err(failure)?;
            let summary = sweep_text(&sweep);
            Ok(answer(sweep, summary))
        })
        .await
    }

    #[tool(
        description = "Replace what remains of the running or paused sweep with a new parameter space (e.g. narrow temperature around the best so far); runs already done are kept and never repeated. Next: get_experiment_status.",
        input_schema = input::<RedirectArgs>()
    )]
    async fn redirect_sweep(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: RedirectArgs| async move {
            let sweep = engine::sweeps::redirect(&self.core, &actor, p.experiment_id, p.redirect)
                .await
                .map_err(failure)?;
            let summary = sweep_text(&sweep);
            Ok(answer(sweep, summary))
        })
        .await
    }

    #[tool(
        description = "Ask/tell for a running guided sweep: configurations you want tried next (before its own search; with strategy search \"agent\" they are all it tries). Each is raced across the items like any other, so a weak one costs only its first few items. Spends LLM calls when a round runs them. Next: get_experiment_status (guide.configurations shows each one's state and mean), get_leaderboard, then suggest more.",
        input_schema = input::<SuggestArgs>()
    )]
    async fn suggest_configurations(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: SuggestArgs| async move {
            let result = engine::sweeps::suggest(
                &self.core,
                &actor,
                p.experiment_id,
                engine::types::SuggestionRequest {
                    configurations: p.configurations,
                },
            )
            .await
            .map_err(failure)?;
            let summary = format!(
                "{} configuration(s) queued for the next round, {} skipped; {} waiting",
                result.accepted.len(),
                result.skipped.len(),
                result.waiting
            );
            Ok(answer(result, summary))
        })
        .await
    }

    #[tool(
        description = "Fork a new experiment from one run's configuration (with changes per stage and a new parameter space), keeping the items and scorers. Free. Next: preview_sweep on the new experiment.",
        input_schema = input::<ForkArgs>()
    )]
    async fn fork_experiment(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: ForkArgs| async move {
            let e = engine::sweeps::fork(&self.core, &actor, p.experiment_id, p.fork)
                .await
                .map_err(failure)?;
            let summary = format!("forked into experiment {:?} ({})", e.name, e.id);
            Ok(answer(e, summary))
        })
        .await
    }

    // ---- reading results -------------------------------------------------------------------

    #[tool(
        description = "Where an experiment stands: its latest sweep (status, done/total, failures, tokens, cost, ETA) and the best configuration so far. Read-only. Poll this while a sweep runs.",
        input_schema = input::<ExperimentRef>(),
        annotations(read_only_hint = true)
    )]
    async fn get_experiment_status(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: ExperimentRef| async move {
            let e = engine::experiments::get_experiment(&self.core, &actor, p.experiment_id)
                .await
                .map_err(failure)?;
            let sweep = match engine::sweeps::current_sweep(&self.core, &actor, e.id).await {
                Ok(s) => Some(s),
                Err(engine::Error::NotFound(_)) => None,
                Err(err) => return Err(failure(err)),
            };
            let best = engine::leaderboard::top(&self.core, &e)
                .await
                .map_err(failure)?;
            let mut summary = match &sweep {
                Some(s) => sweep_text(s),
                None => "no sweep yet".to_owned(),
            };
            if let Some(b) = &best {
                summary.push_str(&format!("; best: {}", entry_text(b)));
            }
            Ok(answer(
                json!({
                    "experiment": {"id": e.id, "name": e.name, "project_id": e.project_id},
                    "sweep": sweep,
                    "best": best,
                }),
                summary,
            ))
        })
        .await
    }

    #[tool(
        description = "The top configurations of an experiment ranked by weighted score (or a scorer, cost, latency, runs), each with its 95% interval, per-scorer means, runs, tokens, cost, latency and best_run_id; plus whether #1 really beats #2 (a paired test). Read-only. Next: export_best_config, get_run_detail with best_run_id, or compare_configs.",
        input_schema = input::<LeaderboardArgs>(),
        annotations(read_only_hint = true)
    )]
    async fn get_leaderboard(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: LeaderboardArgs| async move {
            let board: Leaderboard = engine::leaderboard::get_leaderboard(
                &self.core,
                &actor,
                p.experiment_id,
                engine::leaderboard::Query {
                    sort: p.sort.as_deref(),
                    limit: p.limit,
                    offset: p.offset,
                },
            )
            .await
            .map_err(failure)?;
            let mut summary = format!("{} configuration(s) ranked", board.total);
            for e in board.entries.iter().take(3) {
                summary.push_str(&format!("\n{}", entry_text(e)));
            }
            if let Some(c) = &board.comparison {
                summary.push_str(&format!("\n{}", c.verdict));
            }
            Ok(answer(board, summary))
        })
        .await
    }

    #[tool(
        description = "Everything about one run: each stage's rendered messages, response, parameters, tokens, latency, cost and cache flag; every score with the scorer's reasons; human ratings. Read-only.",
        input_schema = input::<RunRef>(),
        annotations(read_only_hint = true)
    )]
    async fn get_run_detail(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: RunRef| async move {
            let run = engine::runs::get_run(&self.core, &actor, p.run_id)
                .await
                .map_err(failure)?;
            let value = serde_json::to_value(&run).unwrap_or(Value::Null);
            let status = value["status"].as_str().unwrap_or("?").to_owned();
            let summary = format!("run {} {status}", p.run_id);
            Ok(answer(run, summary))
        })
        .await
    }

    #[tool(
        description = "Export the best configuration (or one by config_key) as json, yaml, env (KEY=value lines for an application's .env) or a markdown report. Endpoint keys are never included. Recorded in the export history. Read-only for the experiment.",
        input_schema = input::<ExportArgs>()
    )]
    async fn export_best_config(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: ExportArgs| async move {
            let format = match p.format {
                ExportFormat::Json => "best",
                ExportFormat::Yaml => "yaml",
                ExportFormat::Env => "env",
                ExportFormat::Report => "report",
            };
            let export = engine::exports::export(
                &self.core,
                &actor,
                p.experiment_id,
                format,
                p.config_key.as_deref(),
            )
            .await
            .map_err(failure)?;
            let mut r = answer(
                json!({
                    "export_id": export.id,
                    "filename": export.filename,
                    "content_type": export.content_type,
                    "content": export.body,
                }),
                String::new(),
            );
            r.content = vec![ContentBlock::text(export.body)];
            Ok(r)
        })
        .await
    }

    #[tool(
        description = "Compare two configurations of an experiment item by item: each one's summary, every scorer's mean with the difference, the paired test (is the difference real?), the settings that differ, and a page of items with both outputs diffed. Read-only.",
        input_schema = input::<CompareArgs>(),
        annotations(read_only_hint = true)
    )]
    async fn compare_configs(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: CompareArgs| async move {
            let c = engine::runs::compare_configs(
                &self.core,
                &actor,
                p.experiment_id,
                &p.a,
                &p.b,
                p.limit,
                p.offset,
            )
            .await
            .map_err(failure)?;
            let value = serde_json::to_value(&c).unwrap_or(Value::Null);
            let verdict = value["paired"]["verdict"]
                .as_str()
                .unwrap_or("no items scored by both")
                .to_owned();
            Ok(answer(c, verdict))
        })
        .await
    }

    #[tool(
        description = "The activity timeline: sweep started/paused/completed, runs failed, new_best_found, budget.exhausted, configurations approved, human_needed…, newest first, filtered by experiment and types; to poll, pass `after` (the last id seen) and get what came since, oldest first. Read-only.",
        input_schema = input::<EventsArgs>(),
        annotations(read_only_hint = true)
    )]
    async fn get_events(&self, raw: JsonObject, ctx: RequestContext<RoleServer>) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: EventsArgs| async move {
            let page = engine::events::list_events(
                &self.core,
                &actor,
                p.experiment_id,
                p.types.as_deref(),
                p.after,
                p.limit,
                p.offset,
            )
            .await
            .map_err(failure)?;
            let summary = format!("{} of {} event(s)", page.events.len(), page.total);
            Ok(answer(page, summary))
        })
        .await
    }

    // ---- people in the loop ----------------------------------------------------------------

    #[tool(
        description = "Rate a run's output as a person would (thumbs up/down or 1-5 stars, with a comment); it counts in the experiment's human_rating scorer and the leaderboard. Free.",
        input_schema = input::<HumanScoreArgs>()
    )]
    async fn add_human_score(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: HumanScoreArgs| async move {
            let r = engine::scoring::human::rate_run(&self.core, &actor, p.run_id, p.score)
                .await
                .map_err(failure)?;
            Ok(answer(r, format!("rated run {}", p.run_id)))
        })
        .await
    }

    #[tool(
        description = "Approve a configuration as good enough (by any of its runs, e.g. a leaderboard entry's best_run_id). Shown on the leaderboard and the project page. Free.",
        input_schema = input::<MarkArgs>()
    )]
    async fn approve_config(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.mark(raw, ctx, "approved").await
    }

    #[tool(
        description = "Reject a configuration (by any of its runs): it leaves the leaderboard's ranking and later sweeps skip nothing else. Free.",
        input_schema = input::<MarkArgs>()
    )]
    async fn reject_config(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.mark(raw, ctx, "rejected").await
    }

    #[tool(
        description = "Ask a person to look: raises a human_needed event (with your reason and context) on the experiment's timeline, live dashboard and webhooks. Use when a decision needs a human (e.g. scores disagree with ratings, budget choices). Free.",
        input_schema = input::<RequestHumanArgs>()
    )]
    async fn request_human(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: RequestHumanArgs| async move {
            let HumanNeeded { reason, context } = p.request;
            let event = engine::events::request_human(
                &self.core,
                &actor,
                p.experiment_id,
                HumanNeeded { reason, context },
            )
            .await
            .map_err(failure)?;
            let summary = format!("human_needed raised (event {})", event.id);
            Ok(answer(event, summary))
        })
        .await
    }
}

impl Tools {
    async fn mark(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
        mark: &str,
    ) -> CallToolResult {
        self.call(raw, &ctx, |actor, p: MarkArgs| async move {
            let m = engine::sweeps::mark(
                &self.core,
                &actor,
                p.run_id,
                mark,
                engine::types::MarkRequest { note: p.note },
            )
            .await
            .map_err(failure)?;
            let summary = format!("configuration {} {mark}", m.config_key);
            Ok(answer(m, summary))
        })
        .await
    }
}

fn preview_text(p: &engine::types::SweepPreview) -> String {
    let cost = p
        .estimated_cost
        .map_or_else(|| "unknown cost".to_owned(), |c| format!("≈ ${c:.4}"));
    format!(
        "{} configuration(s), {} run(s), {} LLM call(s) to make ({} cached), {cost}",
        p.configurations, p.runs, p.calls_to_make, p.cached_calls
    )
}

fn sweep_text(s: &engine::types::Sweep) -> String {
    let mut t = format!(
        "sweep {} {}: {}/{} runs done",
        s.id, s.status, s.progress.done, s.progress.total
    );
    if s.progress.failed > 0 {
        t.push_str(&format!(", {} failed", s.progress.failed));
    }
    if let Some(r) = &s.pause_reason {
        t.push_str(&format!(" (paused: {r})"));
    }
    t
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("promptlooper", engine::VERSION))
            .with_instructions(
                "PromptLooper runs prompt experiments: prompt × model × parameter sweeps over sample items, \
                 every response cached, outputs scored, configurations ranked with confidence intervals. \
                 Typical flow: create_project → configure_endpoint (or use the built-in simulated one) → \
                 create_experiment → preview_sweep → run_sweep → get_experiment_status / get_leaderboard → \
                 export_best_config. Steer with pause_sweep, resume_sweep, redirect_sweep, stop_sweep; ask a \
                 person with request_human.",
            )
    }
}
