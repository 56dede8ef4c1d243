//! Migration 0005 (items move from `experiments.sample_data` into datasets), on SQLite and
//! PostgreSQL: an experiment stored the old way keeps its items (ids given are kept, others
//! assigned), its runs name their items, and a sweep afterwards is answered by the cache
//! entries made before the migration.

mod common;

use chrono::Utc;
use common::TestServer;
use engine::cache::{CallKey, call_key};
use engine::store::Db;
use engine::testing::TestDatabase;
use engine::types::{EndpointKind, Params};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const USER: &str = "Extract: {{ input.text }}";
const TEXTS: [&str; 3] = [
    "Ada Lovelace in London",
    "Grace Hopper in Arlington",
    "Alan Turing in Manchester",
];

/// What the old schema held: a project, a simulated endpoint, an experiment with three items
/// in `sample_data` (the first with an id), one run per item, and the cache entries of each
/// item's call.
async fn seed_before(db: &Db) -> Uuid {
    let (project, endpoint, experiment) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let now = Utc::now();
    let params = Params {
        temperature: Some(0.0),
        ..Params::default()
    };
    let stages = json!([{"name": "extract", "endpoint_id": endpoint, "model": "sim-medium",
                         "system": "", "user": USER, "params": {"temperature": 0.0}}]);
    let mut items: Vec<Value> = TEXTS
        .iter()
        .map(|t| json!({"input": {"text": t}, "reference": "x"}))
        .collect();
    items[0]["id"] = json!("first");
    let sample_data = Value::Array(items.clone());
    let config = json!({"stages": [{"endpoint_id": endpoint, "model": "sim-medium", "system": "",
                                    "user": USER, "params": {"temperature": 0.0}}]});
    let mut cache = Vec::new();
    for t in TEXTS {
        let input = json!({"text": t});
        let messages = engine::exec::messages(String::new(), format!("Extract: {t}"));
        let key = call_key(&CallKey {
            kind: EndpointKind::Simulated,
            base_url: "",
            model: "sim-medium",
            messages: &messages,
            params: &params,
            input: &input,
            stage_index: 0,
            repeat_index: 0,
        });
        cache.push(key);
    }
    macro_rules! seed {
        ($pool:expr, $json:expr) => {{
            let p = $pool;
            sqlx::query("INSERT INTO projects (id, name, created_at, updated_at) VALUES ($1, 'p', $2, $2)")
                .bind(project).bind(now).execute(p).await.unwrap();
            sqlx::query("INSERT INTO llm_endpoints (id, name, kind, created_at, updated_at) \
                         VALUES ($1, 'sim', 'simulated', $2, $2)")
                .bind(endpoint).bind(now).execute(p).await.unwrap();
            sqlx::query("INSERT INTO experiments (id, project_id, name, sample_data, pipeline_stages, \
                         created_at, updated_at) VALUES ($1, $2, 'old', $3, $4, $5, $5)")
                .bind(experiment).bind(project).bind($json(&sample_data)).bind($json(&stages)).bind(now)
                .execute(p).await.unwrap();
            for (i, key) in cache.iter().enumerate() {
                sqlx::query("INSERT INTO response_cache (config_hash, response, model, tokens_in, tokens_out, \
                             latency_ms, created_at) VALUES ($1, $2, 'sim-medium', 10, 5, 3, $3)")
                    .bind(key).bind(format!("cached answer {i}")).bind(now).execute(p).await.unwrap();
                sqlx::query("INSERT INTO runs (id, experiment_id, config_hash, config_key, config, status, \
                             item_index, created_at) VALUES ($1, $2, $3, 'k', $4, 'completed', $5, $6)")
                    .bind(Uuid::new_v4()).bind(experiment).bind(format!("hash-{i}")).bind($json(&config))
                    .bind(i as i32).bind(now).execute(p).await.unwrap();
            }
        }};
    }
    match db {
        Db::Sqlite(p) => seed!(p, |v: &Value| v.to_string()),
        Db::Postgres(p) => seed!(p, |v: &Value| sqlx::types::Json(v.clone())),
    }
    experiment
}

#[tokio::test]
async fn old_items_move_into_a_dataset_and_their_cache_entries_still_answer() {
    for database in TestDatabase::all().await {
        let db = Db::connect(&database.url).await.unwrap();
        db.migrate_until(4).await.unwrap();
        let experiment = seed_before(&db).await;
        db.close().await;

        let server = TestServer::start(database).await;
        let admin = server.setup_admin().await;
        let (s, e) = server
            .get(&format!("/api/v1/experiments/{experiment}"), Some(&admin))
            .await;
        assert_eq!(s, StatusCode::OK, "{e}");
        assert_eq!(
            (
                &e["items"]["count"],
                &e["items"]["fields"],
                &e["items"]["version"]
            ),
            (&json!(3), &json!(["text"]), &json!(1)),
            "{e}"
        );
        let (_, page) = server
            .get(
                &format!("/api/v1/experiments/{experiment}/items"),
                Some(&admin),
            )
            .await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 3, "{page}");
        assert_eq!(items[0]["id"], "first", "a given id is kept");
        assert_eq!(items[1]["input"]["text"], TEXTS[1]);
        assert_eq!(items[2]["reference"], "x");
        assert_eq!(items[1]["id"].as_str().unwrap().len(), 32, "{page}");
        let (_, runs) = server
            .get(
                &format!("/api/v1/experiments/{experiment}/runs?sort=item"),
                Some(&admin),
            )
            .await;
        let runs = runs["runs"].as_array().unwrap();
        for (run, item) in runs.iter().zip(items) {
            assert_eq!(run["item_id"], item["id"], "{run}");
        }

        // The same configuration over the same items: every call is a cache hit.
        let (s, sweep) = server
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/experiments/{experiment}/sweep"),
                Some(&admin),
                Some(json!({"strategy": {"kind": "grid"}})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sweep}");
        let p = &sweep["progress"];
        assert_eq!(
            (&p["total"], &p["cached"], &p["calls"]),
            (&json!(3), &json!(3), &json!(0)),
            "{sweep}"
        );
        server.stop().await;
    }
}
