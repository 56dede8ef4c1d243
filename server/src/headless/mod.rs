//! `promptlooper run experiment.yaml`: an experiment run headless for CI, and
//! `promptlooper import promptfoo`: a promptfoo config turned into such a file.
//!
//! The command is one more transport over the engine: it reads the file, makes the project,
//! endpoints and experiment, starts a sweep, watches it, prints the leaderboard and writes the
//! exports — in this process on an embedded database, or on a server over REST (`--server`).
//! Exit codes: 0 the best score reaches `--fail-under`, 1 below it (or nothing scored), 2 a
//! mistake in the file (line and field named), 3 the run could not be done, 130 interrupted.

pub mod backend;
pub mod file;
pub mod output;
pub mod promptfoo;
mod setup;

use std::path::PathBuf;
use std::time::Duration;

use engine::types::{Leaderboard, Sweep, SweepRequest};
use serde_json::{Value, json};
use uuid::Uuid;

use self::backend::{Backend, Failure};
use self::file::{Data, FileError, Loaded};
use crate::config::{Config, RunArgs};

/// Why a run ended early.
pub(crate) enum Stop {
    File(FileError),
    Other(String),
    Interrupted,
}

pub const EXIT_BELOW: i32 = 1;
pub const EXIT_BAD_FILE: i32 = 2;
pub const EXIT_FAILED: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

/// Runs `promptlooper run`; returns the exit code.
pub async fn run(args: RunArgs, config: Config) -> i32 {
    let loaded = match file::load(&args.file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("promptlooper: {e}");
            return EXIT_BAD_FILE;
        }
    };
    if let Some(t) = args.fail_under
        && !(0.0..=1.0).contains(&t)
    {
        eprintln!("promptlooper: --fail-under must be between 0 and 1");
        return EXIT_BAD_FILE;
    }
    let backend = match connect(&args, config).await {
        Ok(b) => b,
        Err(message) => {
            eprintln!("promptlooper: {message}");
            return EXIT_FAILED;
        }
    };
    let outcome = execute(&backend, &loaded, &args).await;
    backend.close().await;
    match outcome {
        Ok(code) => code,
        Err(Stop::File(e)) => {
            eprintln!("promptlooper: {e}");
            EXIT_BAD_FILE
        }
        Err(Stop::Other(message)) => {
            eprintln!("promptlooper: {message}");
            EXIT_FAILED
        }
        Err(Stop::Interrupted) => EXIT_INTERRUPTED,
    }
}

/// The server named by `--server`, or this process on `DATABASE_URL` / `DATA_DIR` (a
/// temporary folder unless one was given).
async fn connect(args: &RunArgs, mut config: Config) -> Result<Backend, String> {
    if let Some(url) = &args.server {
        let key = std::env::var("PROMPTLOOPER_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or("--server needs an API key in PROMPTLOOPER_API_KEY")?;
        let parsed =
            url::Url::parse(url).map_err(|e| format!("--server is not a valid URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("--server must be an http:// or https:// URL".into());
        }
        return Backend::remote(url, key).map_err(|f| f.message);
    }
    let temp = if config.database_url.is_none() && !config.data_dir_given {
        let dir = tempfile::Builder::new()
            .prefix("promptlooper-run-")
            .tempdir()
            .map_err(|e| format!("cannot make a temporary data folder ({e})"))?;
        config.data_dir = dir.path().to_owned();
        Some(dir)
    } else {
        None
    };
    config.seed_demo = false;
    config.mcp_enabled = false;
    let state = crate::prepare(config).await.map_err(|e| e.to_string())?;
    Ok(Backend::local(state, temp))
}

async fn execute(backend: &Backend, l: &Loaded, args: &RunArgs) -> Result<i32, Stop> {
    let spec = &l.spec;
    let other = |f: Failure| Stop::Other(f.message);
    backend.hello().await.map_err(other)?;
    let project_id = backend
        .project(&spec.project)
        .await
        .map_err(|f| placed(l, f, "project"))?;
    let ids = setup::endpoints(backend, l).await?;
    let new = setup::experiment(l, project_id, &ids)?;
    let experiment = setup::create(backend, l, new).await?;
    let started = async {
        if !matches!(l.data, Data::Dataset { .. }) {
            backend
                .import(experiment.id, &l.data)
                .await
                .map_err(|f| import_failure(l, f))?;
        }
        let mut strategy = l.strategy.clone();
        if let (
            Some(name),
            engine::types::Strategy::Guided {
                proposer: Some(p), ..
            },
        ) = (&l.proposer_endpoint, &mut strategy)
        {
            p.endpoint_id = setup::lookup(l, &ids, name, "strategy.proposer.endpoint")?;
        }
        let request = SweepRequest {
            strategy,
            repeats: spec.repeats,
            items: None,
            budget: spec.budget.clone(),
            parameter_space: None,
        };
        backend
            .start(experiment.id, &request)
            .await
            .map_err(|f| placed(l, f, ""))
    }
    .await;
    let sweep = match started {
        Ok(sweep) => sweep,
        Err(stop) => {
            // Nothing ran: leave no half-made experiment behind.
            let _ = backend.delete_experiment(experiment.id).await;
            return Err(stop);
        }
    };
    if !args.json {
        eprintln!(
            "{}: {} runs ({} sweep) in project {:?}",
            experiment.name,
            sweep.progress.total,
            l.strategy.name(),
            spec.project
        );
    }
    let sweep = watch(backend, &experiment.id, sweep).await?;
    let board = backend
        .leaderboard(experiment.id, args.top.clamp(1, 500) as i64)
        .await
        .map_err(other)?;
    let mut exports = Vec::new();
    if let Some(dir) = &args.out {
        exports = write_exports(backend, l, experiment.id, dir, &board).await?;
    }
    let threshold = args.fail_under.or(spec.fail_under);
    let best = board.entries.first().and_then(|e| e.score);
    let passed = match (threshold, best) {
        (_, None) => false,
        (Some(t), Some(b)) => b >= t,
        (None, Some(_)) => true,
    };
    if args.json {
        let out = json!({
            "experiment": {"id": experiment.id, "name": experiment.name, "project": spec.project},
            "url": backend.page_url(experiment.id),
            "sweep": sweep,
            "leaderboard": board,
            "best": board.entries.first(),
            "fail_under": threshold,
            "passed": passed,
            "exports": exports,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        summary(&sweep, &board, backend.page_url(experiment.id), &exports);
        match (threshold, best) {
            (_, None) => println!(
                "FAIL: no configuration has a score{}",
                if board.scorers.is_empty() {
                    " (the file has no scorers)"
                } else {
                    " (see the failed runs)"
                }
            ),
            (Some(t), Some(b)) if b >= t => println!("PASS: best score {b:.3} ≥ {t}"),
            (Some(t), Some(b)) => println!("FAIL: best score {b:.3} < {t}"),
            (None, Some(b)) => println!("best score {b:.3} (no --fail-under given)"),
        }
    }
    Ok(if passed { 0 } else { EXIT_BELOW })
}

/// A failure placed in the file when it names a field (or `default` when it does not).
pub(super) fn placed(l: &Loaded, f: Failure, default: &str) -> Stop {
    if !f.bad_input {
        return Stop::Other(f.message);
    }
    match f.field.as_deref() {
        Some(field) => Stop::File(l.engine_error(Some(field), &f.message)),
        None => Stop::File(l.error(default, f.message)),
    }
}

fn import_failure(l: &Loaded, f: Failure) -> Stop {
    if !f.bad_input {
        return Stop::Other(f.message);
    }
    // Items the stages or scorers cannot use: the fault is placed where they are.
    if let Some((_, rest)) = f.message.split_once("would no longer be valid: ")
        && let Some((field, message)) = rest.split_once(": ")
    {
        return Stop::File(l.engine_error(Some(field), message));
    }
    match &l.data {
        Data::Items(_) => {
            // Inline items are imported as JSON Lines: its "line N" is item N.
            let index = f
                .message
                .strip_prefix("line ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.trim().parse::<usize>().ok());
            match index {
                Some(n) if n >= 1 => {
                    let rest = f.message.split_once(": ").map_or("", |(_, r)| r);
                    Stop::File(l.error(&format!("data.items[{}]", n - 1), rest))
                }
                _ => Stop::File(l.error("data.items", f.message)),
            }
        }
        Data::File { path, .. } => {
            Stop::File(l.error("data.file", format!("{}: {}", path.display(), f.message)))
        }
        Data::Dataset { .. } => Stop::File(l.error("data.dataset", f.message)),
    }
}

/// Follows the sweep until it ends, showing progress; Ctrl-C pauses it (resumable later).
async fn watch(backend: &Backend, experiment: &Uuid, mut sweep: Sweep) -> Result<Sweep, Stop> {
    let mut view = output::ProgressView::new();
    let poll = match backend {
        Backend::Local(_) => Duration::from_millis(200),
        Backend::Remote(_) => Duration::from_millis(500),
    };
    let mut best = None;
    let mut best_read = std::time::Instant::now() - Duration::from_secs(10);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let ended = sweep.status != "running";
        if (ended || best_read.elapsed() >= Duration::from_secs(1)) && sweep.progress.done > 0 {
            best_read = std::time::Instant::now();
            if let Ok(board) = backend.leaderboard(*experiment, 1).await {
                best = board.entries.first().and_then(|e| e.score);
            }
        }
        view.update(&sweep.progress, best);
        if ended {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = &mut interrupted => {
                view.finish();
                eprintln!("interrupted: pausing the sweep (finished runs are kept)");
                let _ = backend.pause(*experiment).await;
                return Err(Stop::Interrupted);
            }
        }
        sweep = backend
            .sweep(sweep.id)
            .await
            .map_err(|f| Stop::Other(f.message))?;
    }
    view.finish();
    // Runs the cache answered at planning are scored by a background job: the leaderboard is
    // final once it is done.
    let mut said = false;
    loop {
        let board = backend
            .leaderboard(*experiment, 1)
            .await
            .map_err(|f| Stop::Other(f.message))?;
        let Some(job) = board.scoring_job.filter(|j| j.status == "running") else {
            break;
        };
        if !said {
            eprintln!(
                "scoring the runs the cache answered ({} of {})",
                job.done, job.total
            );
            said = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = &mut interrupted => {
                eprintln!("interrupted while scoring: the scores are finished in the background");
                return Err(Stop::Interrupted);
            }
        }
    }
    match (sweep.status.as_str(), sweep.pause_reason.as_deref()) {
        ("paused", Some("budget")) => eprintln!(
            "the budget ran out after {} of {} runs: the leaderboard covers those",
            sweep.progress.done, sweep.progress.total
        ),
        ("paused", _) => eprintln!("the sweep was paused (by someone else) before it finished"),
        ("stopped", _) => eprintln!("the sweep was stopped before it finished"),
        _ => {}
    }
    Ok(sweep)
}

/// Writes the exports the file lists (default all) to `dir`; returns what was written.
async fn write_exports(
    backend: &Backend,
    l: &Loaded,
    experiment: Uuid,
    dir: &PathBuf,
    board: &Leaderboard,
) -> Result<Vec<Value>, Stop> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Stop::Other(format!("cannot create {} ({e})", dir.display())))?;
    let mut written = Vec::new();
    let leaderboard = dir.join("leaderboard.json");
    std::fs::write(
        &leaderboard,
        serde_json::to_vec_pretty(board).unwrap_or_default(),
    )
    .map_err(|e| Stop::Other(format!("cannot write {} ({e})", leaderboard.display())))?;
    written.push(json!({"format": "leaderboard", "path": leaderboard}));
    if board.entries.first().and_then(|e| e.score).is_none() {
        return Ok(written);
    }
    let formats: Vec<String> = l.spec.exports.clone().unwrap_or_else(|| {
        engine::types::EXPORT_FORMATS
            .iter()
            .map(|f| (*f).to_owned())
            .collect()
    });
    for format in formats {
        let (name, body) = backend
            .export(experiment, &format)
            .await
            .map_err(|f| Stop::Other(f.message))?;
        // Stable names, so CI steps and artifacts can rely on them.
        let extension = std::path::Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "txt".into());
        let path = dir.join(match format.as_str() {
            "report" => "report.md".to_owned(),
            _ => format!("best.{extension}"),
        });
        std::fs::write(&path, body)
            .map_err(|e| Stop::Other(format!("cannot write {} ({e})", path.display())))?;
        written.push(json!({"format": format, "path": path}));
    }
    Ok(written)
}

fn summary(sweep: &Sweep, board: &Leaderboard, url: Option<String>, exports: &[Value]) {
    let p = &sweep.progress;
    println!(
        "{} runs: {} completed, {} from the cache, {} failed · {} LLM calls, {} tokens, ${:.4}",
        p.done,
        p.completed,
        p.cached,
        p.failed,
        p.calls,
        p.tokens_in + p.tokens_out,
        p.cost
    );
    println!();
    print!("{}", output::table(board));
    if board.total > board.entries.len() as i64 {
        println!(
            "… {} more configurations",
            board.total - board.entries.len() as i64
        );
    }
    if let Some(c) = &board.comparison {
        println!("{}", c.verdict);
    }
    if let Some(url) = url {
        println!("open {url}");
    }
    for e in exports {
        if let Some(path) = e["path"].as_str() {
            println!("wrote {path}");
        }
    }
}
