//! Sweeps end to end over REST, on SQLite and PostgreSQL, against the local mock LLM: grid and
//! random planning, preview, the cache at planning time, steering (pause, resume, stop,
//! redirect, fork, approve, reject), budgets, a failing endpoint, the event timeline and the
//! live streams (SSE and WebSocket).

mod common;

use std::time::{Duration, Instant};

use common::mock::Mock;
use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::mock_llm::MockConfig;

struct Fixture {
    admin: String,
    endpoint: String,
    experiment: String,
}

/// An experiment of 4 items, one stage on the mock, with 2 prompt variants × 3 temperatures.
async fn fixture(server: &TestServer, mock: &Mock, timeout_ms: u64) -> Fixture {
    let admin = server.setup_admin().await;
    let (s, endpoint) = server
        .call(
            Method::POST,
            "/api/v1/endpoints",
            Some(&admin),
            Some(json!({
                "name": "mock", "kind": "openai", "base_url": mock.url, "timeout_ms": timeout_ms
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{endpoint}");
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    let (_, project) = server
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&admin),
            Some(json!({"name": "p"})),
        )
        .await;
    let items: Vec<Value> = (0..4)
        .map(|i| json!({"input": {"text": format!("Item {i}: Ada Lovelace in London")}, "reference": "Ada, London"}))
        .collect();
    let (s, experiment) = server
        .call(Method::POST, "/api/v1/experiments", Some(&admin), Some(json!({
            "project_id": project["id"], "name": "sweepable", "sample_data": items,
            "pipeline_stages": [{"name": "extract", "endpoint_id": endpoint, "model": "sim-medium",
                                 "system": "Extract entities.", "user": "{{ input.text }}",
                                 "params": {"temperature": 0.5}}],
            "parameter_space": {"stages": [{
                "prompts": [{"name": "terse", "system": "Only the entities."},
                            {"name": "polite", "system": "Please list the entities."}],
                "params": {"temperature": [0.1, 0.5, 0.9]}}]}
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{experiment}");
    Fixture {
        admin,
        endpoint,
        experiment: experiment["id"].as_str().unwrap().to_owned(),
    }
}

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, path, Some(token), Some(body))
        .await
}

/// Polls the experiment's current sweep until `done` says so (or panics after 60 s).
async fn wait_sweep(
    server: &TestServer,
    f: &Fixture,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, sweep) = server
            .get(
                &format!("/api/v1/experiments/{}/sweep", f.experiment),
                Some(&f.admin),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{sweep}");
        if done(&sweep) {
            return sweep;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {sweep}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn runs(server: &TestServer, f: &Fixture) -> Vec<Value> {
    let (_, page) = server
        .get(
            &format!("/api/v1/experiments/{}/runs?limit=1000", f.experiment),
            Some(&f.admin),
        )
        .await;
    page["runs"].as_array().unwrap().clone()
}

async fn events(server: &TestServer, f: &Fixture, query: &str) -> Vec<Value> {
    let (s, page) = server
        .get(
            &format!(
                "/api/v1/experiments/{}/events?limit=1000{query}",
                f.experiment
            ),
            Some(&f.admin),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["events"].as_array().unwrap().clone()
}

fn count(events: &[Value], t: &str) -> usize {
    events.iter().filter(|e| e["type"] == t).count()
}

#[tokio::test]
async fn a_grid_sweep_runs_every_configuration_once_and_reruns_from_the_cache() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,sqlx=warn")
        .with_test_writer()
        .try_init();
    for server in TestServer::all().await {
        let mock = Mock::start(MockConfig::default()).await;
        let f = fixture(&server, &mock, 5000).await;
        let sweep_path = format!("/api/v1/experiments/{}/sweep", f.experiment);
        let grid = json!({"strategy": {"kind": "grid"}});

        let (s, preview) = post(
            &server,
            &f.admin,
            &format!("{sweep_path}/preview"),
            grid.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{preview}");
        assert_eq!(
            (
                &preview["configurations"],
                &preview["runs"],
                &preview["calls"],
                &preview["cached_runs"],
                &preview["calls_to_make"]
            ),
            (&json!(6), &json!(24), &json!(24), &json!(0), &json!(24)),
            "{preview}"
        );
        assert!(
            preview["estimated_tokens_in"].as_i64().unwrap() > 0,
            "{preview}"
        );
        assert_eq!(mock.state.chat_requests(), 0, "a preview calls nothing");

        let (s, sweep) = post(&server, &f.admin, &sweep_path, grid.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{sweep}");
        assert_eq!(sweep["progress"]["total"], 24, "{sweep}");
        let done = wait_sweep(&server, &f, "completion", |s| s["status"] == "completed").await;
        let p = &done["progress"];
        assert_eq!(
            (
                &p["done"],
                &p["completed"],
                &p["cached"],
                &p["failed"],
                &p["calls"]
            ),
            (&json!(24), &json!(24), &json!(0), &json!(0), &json!(24)),
            "{done}"
        );
        assert!(
            p["tokens_in"].as_i64().unwrap() > 0 && done["finished_at"].is_string(),
            "{done}"
        );
        assert_eq!(mock.state.chat_requests(), 24, "one call per run");
        let all = runs(&server, &f).await;
        assert_eq!(all.len(), 24);
        assert!(
            all.iter()
                .all(|r| r["status"] == "completed" && r["sweep_id"] == sweep["id"]),
            "{all:?}"
        );
        let (_, experiment) = server
            .get(
                &format!("/api/v1/experiments/{}", f.experiment),
                Some(&f.admin),
            )
            .await;
        assert_eq!(experiment["status"], "completed");

        let timeline = events(&server, &f, "").await;
        assert_eq!(count(&timeline, "experiment.started"), 1);
        assert_eq!(count(&timeline, "run.started"), 24);
        assert_eq!(count(&timeline, "run.completed"), 24);
        assert_eq!(count(&timeline, "experiment.completed"), 1);
        assert_eq!(timeline[0]["type"], "experiment.completed", "newest first");
        let last_run = timeline
            .iter()
            .find(|e| e["type"] == "run.completed")
            .unwrap();
        assert_eq!(last_run["payload"]["progress"]["total"], 24, "{last_run}");
        let only_failed = events(&server, &f, "&type=run.failed,experiment.completed").await;
        assert_eq!(only_failed.len(), 1, "{only_failed:?}");
        let bad = server
            .get(
                &format!(
                    "/api/v1/experiments/{}/events?type=run.exploded",
                    f.experiment
                ),
                Some(&f.admin),
            )
            .await;
        assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, Some("type"));
        let after = timeline[5]["id"].as_i64().unwrap();
        let newer = events(&server, &f, &format!("&after={after}")).await;
        assert_eq!(newer.len(), 5, "after= gives what came later, oldest first");
        assert!(newer[0]["id"].as_i64().unwrap() > after);
        let (_, global) = server
            .get("/api/v1/events?type=experiment.started", Some(&f.admin))
            .await;
        assert_eq!(global["total"], 1, "{global}");

        // The same sweep again: every run answers from the cache at planning, no call is made.
        let (_, preview) = post(
            &server,
            &f.admin,
            &format!("{sweep_path}/preview"),
            grid.clone(),
        )
        .await;
        assert_eq!(
            (
                &preview["cached_runs"],
                &preview["calls_to_make"],
                &preview["estimated_tokens_in"]
            ),
            (&json!(24), &json!(0), &json!(0)),
            "{preview}"
        );
        let (s, again) = post(&server, &f.admin, &sweep_path, grid.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{again}");
        assert_eq!(again["status"], "completed", "{again}");
        assert_eq!(
            (&again["progress"]["cached"], &again["progress"]["calls"]),
            (&json!(24), &json!(0)),
            "{again}"
        );
        assert_eq!(mock.state.chat_requests(), 24, "a re-run costs nothing");
        let (_, page) = server
            .get(
                &format!(
                    "/api/v1/experiments/{}/runs?status=cached&limit=1",
                    f.experiment
                ),
                Some(&f.admin),
            )
            .await;
        assert_eq!(page["total"], 24);
        let (_, cached_run) = server
            .get(
                &format!("/api/v1/runs/{}", page["runs"][0]["id"].as_str().unwrap()),
                Some(&f.admin),
            )
            .await;
        assert_eq!(cached_run["stages"][0]["cached"], true, "{cached_run}");

        // A seeded random sweep is reproducible: the same seed draws the same configurations.
        let random =
            json!({"strategy": {"kind": "random", "samples": 3, "seed": 7}, "items": [0, 1]});
        let (s, first) = post(&server, &f.admin, &sweep_path, random.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{first}");
        wait_sweep(&server, &f, "random completion", |s| {
            s["status"] == "completed"
        })
        .await;
        let (_, second) = post(&server, &f.admin, &sweep_path, random).await;
        assert_eq!(
            second["status"], "completed",
            "same seed, all cached: {second}"
        );
        assert_eq!(second["progress"]["total"], first["progress"]["total"]);
        assert_eq!(second["progress"]["cached"], second["progress"]["total"]);
        let (_, list) = server
            .get(
                &format!("/api/v1/experiments/{}/sweeps", f.experiment),
                Some(&f.admin),
            )
            .await;
        assert_eq!(list["total"], 4, "{list}");
        server.stop().await;
    }
}
