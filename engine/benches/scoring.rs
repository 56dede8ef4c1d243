//! Scoring benchmarks (`cargo bench -p engine --bench scoring`): an experiment of 100,000 runs
//! (1,000 configurations × 100 items) scored by 3 scorers, swept on the simulated provider at
//! 0 ms. Measures the leaderboard (engine call, no HTTP): cold (every summary recomputed),
//! warm, and live (5 configurations changed before each read, as during a sweep), p50 and p95;
//! each chart (`engine::charts`: data and SVG), p50 and p95; and re-scoring the 100,000 runs
//! after a cheap scorer is added. SQLite always; PostgreSQL too when TEST_DATABASE_URL is set
//! (`PL_BENCH_ONLY=sqlite|postgres` picks one).
//! `PL_BENCH_ITEMS` shrinks it (default 100). Prints a markdown table.

use std::time::{Duration, Instant};

use engine::testing::TestDatabase;
use engine::types::{
    Dimension, EndpointKind, ExperimentUpdate, NewEndpoint, NewExperiment, NewProject,
    ParameterSpace, Params, SampleItem, Stage, StageSpace, Strategy, SweepRequest,
};
use engine::{Actor, AuthVia, Core, Secrets};
use serde_json::json;

fn admin() -> Actor {
    Actor {
        user: None,
        role: engine::types::Role::Admin,
        via: AuthVia::StaticApiKey,
    }
}

fn quantile(mut xs: Vec<Duration>, q: f64) -> Duration {
    xs.sort();
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

async fn bench(database: &TestDatabase, rows: &mut Vec<(String, String)>) {
    let items: usize = std::env::var("PL_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let db = database.connect().await;
    let label = database.kind.as_str();
    let mut core = Core::with_limits(db, Secrets::new(b"bench", None, b"bench"), 32);
    core.max_tokens_per_sweep = None;
    let background = engine::jobs::start(&core, "serve", 4).await.unwrap();
    let actor = admin();
    let endpoint = engine::endpoints::create_endpoint(
        &core,
        &actor,
        NewEndpoint {
            name: "sim".into(),
            kind: EndpointKind::Simulated,
            base_url: String::new(),
            api_key: None,
            options: None,
            max_concurrency: None,
            rpm: None,
            tpm: None,
            timeout_ms: None,
        },
    )
    .await
    .unwrap();
    let project = engine::projects::create_project(
        &core,
        &actor,
        NewProject {
            name: "bench".into(),
            description: String::new(),
            notes: String::new(),
        },
    )
    .await
    .unwrap();
    let values = |xs: &[f64]| Dimension::Values(xs.iter().map(|x| json!(x)).collect());
    let seeds = Dimension::Values((0..10).map(|s| json!(s)).collect());
    let experiment = engine::experiments::create_experiment(
        &core,
        &actor,
        NewExperiment {
            project_id: project.id,
            name: "bench".into(),
            description: String::new(),
            sample_data: (0..items)
                .map(|i| SampleItem {
                    id: None,
                    input: [(
                        "text".to_owned(),
                        json!(format!(
                            "Ada Lovelace met Charles Babbage in London in {}.",
                            1800 + i
                        )),
                    )]
                    .into(),
                    reference: Some(format!(
                        "Ada, Lovelace, Charles, Babbage, London, {}",
                        1800 + i
                    )),
                    ..SampleItem::default()
                })
                .collect(),
            dataset_id: None,
            dataset: None,
            dataset_version: None,
            pipeline_stages: vec![Stage {
                name: "extract".into(),
                endpoint_id: endpoint.id,
                model: "sim-large".into(),
                system: "Return only a comma-separated list.".into(),
                user: "Extract.\n\n{{ input.text }}".into(),
                params: Params::default(),
            }],
            parameter_space: ParameterSpace {
                stages: vec![StageSpace {
                    prompts: Vec::new(),
                    models: Vec::new(),
                    params: [
                        (
                            "temperature".to_owned(),
                            values(&[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
                        ),
                        (
                            "top_p".to_owned(),
                            values(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
                        ),
                        ("seed".to_owned(), seeds),
                    ]
                    .into(),
                }],
            },
            scoring_config: json!([
                {"kind": "lexical_similarity", "name": "f1", "weight": 2},
                {"kind": "length", "name": "short", "unit": "words", "max": 8},
                {"kind": "keywords", "name": "names", "required": ["Ada", "London"]},
            ]),
        },
    )
    .await
    .unwrap();
    // A price, so runs have a cost (the cost chart needs one).
    engine::pricing::set_prices(
        &core,
        &actor,
        vec![engine::types::ModelPrice {
            model: "sim-large".into(),
            input_per_million: 3.0,
            output_per_million: 15.0,
        }],
    )
    .await
    .unwrap();
    let started = Instant::now();
    let sweep = engine::sweeps::start(
        &core,
        &actor,
        experiment.id,
        SweepRequest {
            strategy: Strategy::Grid,
            repeats: None,
            items: None,
            budget: None,
            parameter_space: None,
        },
    )
    .await
    .unwrap();
    loop {
        let s = engine::sweeps::get_sweep(&core, &actor, sweep.id)
            .await
            .unwrap();
        if s.status == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let runs = sweep.progress.total;
    rows.push((
        format!("seeding: {runs}-run sweep, scored by 3 scorers as it runs ({label})"),
        format!(
            "{:.1} s ({:.0} runs/s)",
            started.elapsed().as_secs_f64(),
            runs as f64 / started.elapsed().as_secs_f64()
        ),
    ));
    let query = || engine::leaderboard::Query {
        sort: None,
        limit: 50,
        offset: 0,
    };
    let read = || async {
        let t = Instant::now();
        let board = engine::leaderboard::get_leaderboard(&core, &actor, experiment.id, query())
            .await
            .unwrap();
        assert_eq!(board.entries.len(), 50.min(board.total as usize));
        t.elapsed()
    };
    // Cold: every summary recomputed.
    let mut cold = Vec::new();
    for _ in 0..3 {
        engine::store::leaderboard::bump_all(&core.db, experiment.id)
            .await
            .unwrap();
        cold.push(read().await);
    }
    let mut warm = Vec::new();
    for _ in 0..200 {
        warm.push(read().await);
    }
    // Live: a few configurations changed since the last read.
    let keys: Vec<String> = engine::leaderboard::get_leaderboard(
        &core,
        &actor,
        experiment.id,
        engine::leaderboard::Query {
            sort: None,
            limit: 500,
            offset: 0,
        },
    )
    .await
    .unwrap()
    .entries
    .into_iter()
    .map(|e| e.config_key)
    .collect();
    let mut live = Vec::new();
    for i in 0..100 {
        let bump = &keys[(i * 5) % keys.len()..((i * 5) % keys.len() + 5).min(keys.len())];
        match &core.db {
            engine::Db::Sqlite(p) => {
                for k in bump {
                    sqlx::query("UPDATE leaderboard_entries SET version = version + 1 WHERE experiment_id = $1 AND config_key = $2")
                        .bind(experiment.id).bind(k).execute(p).await.unwrap();
                }
            }
            engine::Db::Postgres(p) => {
                for k in bump {
                    sqlx::query("UPDATE leaderboard_entries SET version = version + 1 WHERE experiment_id = $1 AND config_key = $2")
                        .bind(experiment.id).bind(k).execute(p).await.unwrap();
                }
            }
        }
        live.push(read().await);
    }
    let by_scorer = {
        let mut xs = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            engine::leaderboard::get_leaderboard(
                &core,
                &actor,
                experiment.id,
                engine::leaderboard::Query {
                    sort: Some("scorer:f1"),
                    limit: 50,
                    offset: 0,
                },
            )
            .await
            .unwrap();
            xs.push(t.elapsed());
        }
        xs
    };
    rows.push((format!("leaderboard, {runs} runs × 3 scorers, cold: every summary recomputed ({label}, median of 3)"), ms(quantile(cold, 0.5))));
    rows.push((
        format!("leaderboard, warm ({label}, p50 / p95 of 200)"),
        format!(
            "{} / {}",
            ms(quantile(warm.clone(), 0.5)),
            ms(quantile(warm, 0.95))
        ),
    ));
    rows.push((format!("leaderboard, live: 5 configurations changed before each read ({label}, p50 / p95 of 100)"), format!("{} / {}", ms(quantile(live.clone(), 0.5)), ms(quantile(live, 0.95)))));
    rows.push((
        format!("leaderboard sorted by one scorer ({label}, p50 / p95 of 50)"),
        format!(
            "{} / {}",
            ms(quantile(by_scorer.clone(), 0.5)),
            ms(quantile(by_scorer, 0.95))
        ),
    ));

    // Charts (engine calls, no HTTP): each chart's data and SVG, summaries fresh.
    for kind in engine::types::ChartKind::ALL {
        let mut xs = Vec::new();
        let mut bytes = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let data =
                engine::charts::data(&core, &actor, experiment.id, kind, &Default::default())
                    .await
                    .unwrap();
            let svg = engine::charts::svg(&data);
            xs.push(t.elapsed());
            assert!(!data.is_empty(), "{kind}: {}", data.description);
            bytes = svg.len();
        }
        rows.push((
            format!(
                "chart {kind}: data + SVG ({label}, p50 / p95 of 20; SVG {} kB)",
                bytes / 1024
            ),
            format!(
                "{} / {}",
                ms(quantile(xs.clone(), 0.5)),
                ms(quantile(xs, 0.95))
            ),
        ));
    }

    // Re-scoring every run after a cheap scorer is added: right after the sweep (PostgreSQL's
    // autovacuum is still busy with it), then, on PostgreSQL, once the tables are vacuumed.
    rescore(
        &core,
        &actor,
        experiment.id,
        "year",
        "\\d{4}",
        "right after the sweep",
        label,
        rows,
    )
    .await;
    if let engine::Db::Postgres(p) = &core.db {
        sqlx::query("VACUUM ANALYZE").execute(p).await.unwrap();
        rescore(
            &core,
            &actor,
            experiment.id,
            "ada",
            "Ada",
            "after VACUUM ANALYZE",
            label,
            rows,
        )
        .await;
    }
    background.shutdown().await;
    core.db.close().await;
}

/// Adds a regex scorer and times the re-scoring job it starts.
#[allow(clippy::too_many_arguments)]
async fn rescore(
    core: &Core,
    actor: &Actor,
    experiment_id: uuid::Uuid,
    name: &str,
    pattern: &str,
    when: &str,
    label: &str,
    rows: &mut Vec<(String, String)>,
) {
    let experiment = engine::experiments::get_experiment(core, actor, experiment_id)
        .await
        .unwrap();
    let mut config = experiment.scoring_config.clone();
    config
        .as_array_mut()
        .unwrap()
        .push(json!({"kind": "format", "name": name, "format": "regex", "pattern": pattern}));
    let started = Instant::now();
    engine::experiments::update_experiment(
        core,
        actor,
        experiment_id,
        ExperimentUpdate {
            scoring_config: Some(config),
            ..ExperimentUpdate::default()
        },
    )
    .await
    .unwrap();
    let job = loop {
        let (jobs, _) = engine::scoring::jobs::list_jobs(core, actor, experiment_id, 1, 0)
            .await
            .unwrap();
        if jobs.first().is_some_and(|j| j.status != "running") {
            break jobs[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job.status, "completed");
    rows.push((
        format!(
            "re-scoring {} runs after adding a regex scorer, {when} ({label}; {} scores written, {} LLM calls)",
            job.done, job.scored, job.calls
        ),
        format!("{:.2} s", started.elapsed().as_secs_f64()),
    ));
}

fn main() {
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber_init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        let only = std::env::var("PL_BENCH_ONLY").ok();
        for database in TestDatabase::all().await {
            if only.as_deref().is_none_or(|o| o == database.kind.as_str()) {
                bench(&database, &mut rows).await;
            }
        }
    });
    println!("| measure | value |\n| --- | --- |");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
    println!(
        "\nmachine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}

fn tracing_subscriber_init() {
    use tracing_subscriber::EnvFilter;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_default_env())
        .try_init();
}
