//! Cache and run benchmarks (`cargo bench -p engine --bench runs`): the cost of computing a
//! cache key, of looking one up (hit and miss), and of executing a 10-item × 2-stage
//! configuration against the simulated provider at 0 ms latency, cold (every call made) and
//! warm (every call from the cache). SQLite always; PostgreSQL too when TEST_DATABASE_URL is
//! set. Prints a markdown table.

use std::time::{Duration, Instant};

use engine::cache::{CallKey, call_key};
use engine::providers::{Message, Role};
use engine::store::cache::{self as cache_store, CachedResponse};
use engine::testing::TestDatabase;
use engine::types::{
    EndpointKind, NewEndpoint, NewExperiment, NewProject, NewRun, Params, SampleItem, Stage,
    StageChoice,
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

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn messages(i: usize) -> Vec<Message> {
    vec![
        Message {
            role: Role::System,
            content: "You extract named entities: people, places, organisations and numbers. "
                .repeat(3),
        },
        Message {
            role: Role::User,
            content: format!(
                "Extract the entities from this text.\n\nAda Lovelace wrote notes on the Analytical Engine in London in {i}. {}",
                "Filler text. ".repeat(20)
            ),
        },
    ]
}

fn bench_keys(rows: &mut Vec<(String, String)>) {
    let params = Params {
        temperature: Some(0.3),
        max_tokens: Some(256),
        ..Params::default()
    };
    let input =
        json!({"text": "Ada Lovelace wrote notes on the Analytical Engine in London in 1843."});
    let msgs = messages(1843);
    let n = 50_000;
    let started = Instant::now();
    for i in 0..n {
        let key = call_key(&CallKey {
            kind: EndpointKind::Openai,
            base_url: "http://localhost:9100/v1",
            model: "sim-large",
            messages: &msgs,
            params: &params,
            input: &input,
            stage_index: i % 2,
            repeat_index: 0,
        });
        std::hint::black_box(key);
    }
    let per = started.elapsed() / n as u32;
    rows.push((
        "cache key (SHA-256 of canonical JSON, ~1.2 KB of messages)".into(),
        format!("{:.1} µs", per.as_secs_f64() * 1e6),
    ));
}

async fn bench_lookups(database: &TestDatabase, rows: &mut Vec<(String, String)>) {
    let db = database.connect().await;
    let label = database.kind.as_str();
    let entries = 10_000;
    let answer = CachedResponse {
        response: "Ada, Lovelace, Analytical, Engine, London, 1843".into(),
        model: "sim-large".into(),
        tokens_in: 120,
        tokens_out: 14,
        latency_ms: 300,
        finish_reason: Some("stop".into()),
        usage_estimated: false,
    };
    for i in 0..entries {
        cache_store::put(&db, &format!("{i:064}"), &answer)
            .await
            .unwrap();
    }
    let n = 5_000;
    let started = Instant::now();
    for i in 0..n {
        let hit = cache_store::get(&db, &format!("{:064}", (i * 7919) % entries))
            .await
            .unwrap();
        assert!(hit.is_some());
    }
    let hit = started.elapsed() / n as u32;
    let started = Instant::now();
    for i in 0..n {
        assert!(
            cache_store::get(&db, &format!("miss{i:060}"))
                .await
                .unwrap()
                .is_none()
        );
    }
    let miss = started.elapsed() / n as u32;
    rows.push((
        format!("cache lookup, hit ({label}, 10,000 entries)"),
        format!("{:.0} µs", hit.as_secs_f64() * 1e6),
    ));
    rows.push((
        format!("cache lookup, miss ({label})"),
        format!("{:.0} µs", miss.as_secs_f64() * 1e6),
    ));
    db.close().await;
}

async fn bench_runs(database: &TestDatabase, rows: &mut Vec<(String, String)>) {
    let db = database.connect().await;
    let label = database.kind.as_str();
    let core = Core::with_limits(db, Secrets::new(b"bench", None, b"bench"), 16);
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
    let stage = |name: &str, user: &str| Stage {
        name: name.into(),
        endpoint_id: endpoint.id,
        model: "sim-large".into(),
        system: "Return only a comma-separated list.".into(),
        user: user.into(),
        params: Params {
            temperature: Some(0.2),
            ..Params::default()
        },
    };
    let experiment = engine::experiments::create_experiment(
        &core,
        &actor,
        NewExperiment {
            project_id: project.id,
            name: "bench".into(),
            description: String::new(),
            sample_data: (0..10)
                .map(|i| SampleItem {
                    id: None,
                    input: [(
                        "text".to_owned(),
                        json!(format!(
                            "Ada Lovelace met Charles Babbage in London in {}.",
                            1830 + i
                        )),
                    )]
                    .into(),
                    reference: None,
                    ..SampleItem::default()
                })
                .collect(),
            dataset_id: None,
            dataset: None,
            dataset_version: None,
            pipeline_stages: vec![
                stage("extract", "Extract.\n\n{{ input.text }}"),
                stage("clean", "Clean.\n\n{{ stages[0].output }}"),
            ],
            parameter_space: Default::default(),
            scoring_config: json!([]),
        },
    )
    .await
    .unwrap();
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for round in 0..15 {
        let new = NewRun {
            experiment_id: experiment.id,
            stages: vec![StageChoice {
                params: Some([("seed".to_owned(), json!(round))].into()),
                ..StageChoice::default()
            }],
            items: None,
            repeats: None,
        };
        let started = Instant::now();
        let batch = engine::runs::run_configuration(&core, &actor, new.clone())
            .await
            .unwrap();
        cold.push(started.elapsed());
        assert_eq!(batch.completed, 10);
        let started = Instant::now();
        let batch = engine::runs::run_configuration(&core, &actor, new)
            .await
            .unwrap();
        warm.push(started.elapsed());
        assert_eq!(batch.cached, 10);
    }
    rows.push((
        format!("10 items × 2 stages, simulated 0 ms, all calls made ({label}, median of 15)"),
        format!("{:.1} ms", median(cold).as_secs_f64() * 1e3),
    ));
    rows.push((
        format!("10 items × 2 stages, all from cache ({label}, median of 15)"),
        format!("{:.1} ms", median(warm).as_secs_f64() * 1e3),
    ));
    core.db.close().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    bench_keys(&mut rows);
    rt.block_on(async {
        for database in TestDatabase::all().await {
            bench_lookups(&database, &mut rows).await;
            bench_runs(&database, &mut rows).await;
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
