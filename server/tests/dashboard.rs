//! What the dashboard reads besides the engine's older operations, over REST on SQLite and
//! PostgreSQL: the overview (totals, sweeps running or paused with their progress and calls in
//! flight, new bests, recent experiments), reading pasted items with every bad line reported,
//! the models of an endpoint, one configuration's runs in item order, and the steering answers
//! carrying the runs in flight.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A simulated endpoint with latency, and an experiment of 6 items × 3 temperatures.
async fn fixture(server: &TestServer, admin: &str, latency_ms: u64) -> (String, String) {
    let (s, endpoint) = server
        .call(
            Method::POST,
            "/api/v1/endpoints",
            Some(admin),
            Some(json!({
                "name": "sim", "kind": "simulated", "options": {"latency_ms": latency_ms}
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{endpoint}");
    let (_, project) = server
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(admin),
            Some(json!({"name": "Dash"})),
        )
        .await;
    let items: Vec<Value> = (0..6)
        .map(|i| json!({"input": {"text": format!("Item {i}: Ada Lovelace in London")}, "reference": "Ada Lovelace London"}))
        .collect();
    let (s, experiment) = server
        .call(Method::POST, "/api/v1/experiments", Some(admin), Some(json!({
            "project_id": project["id"], "name": "Watched", "sample_data": items,
            "pipeline_stages": [{"name": "extract", "endpoint_id": endpoint["id"], "model": "sim-large",
                                 "user": "{{ input.text }}"}],
            "parameter_space": {"stages": [{"params": {"temperature": [0.1, 0.5, 0.9]}}]},
            "scoring_config": [{"kind": "lexical_similarity"}]
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{experiment}");
    (
        endpoint["id"].as_str().unwrap().to_owned(),
        experiment["id"].as_str().unwrap().to_owned(),
    )
}

async fn wait_for(
    server: &TestServer,
    admin: &str,
    path: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, body) = server.get(path, Some(admin)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        if ok(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting on {path}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_grid(server: &TestServer, admin: &str, experiment: &str) -> Value {
    let (s, sweep) = server
        .call(
            Method::POST,
            &format!("/api/v1/experiments/{experiment}/sweep"),
            Some(admin),
            Some(json!({"strategy": {"kind": "grid"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sweep}");
    sweep
}

async fn until_completed(server: &TestServer, admin: &str, experiment: &str) -> Value {
    let path = format!("/api/v1/experiments/{experiment}/sweep");
    wait_for(server, admin, &path, |s| s["status"] == "completed").await
}

#[tokio::test]
async fn overview_follows_sweeps_and_steering_reports_runs_in_flight() {
    for server in TestServer::all().await {
        let admin = server.setup_admin().await;
        let (s, empty) = server.get("/api/v1/overview", Some(&admin)).await;
        assert_eq!(s, StatusCode::OK, "{empty}");
        assert_eq!(empty["totals"]["runs"]["total"], 0);
        assert_eq!(empty["sweeps"], json!([]));
        assert_eq!(empty["totals"]["cache_hit_rate"], Value::Null);

        let (_, experiment) = fixture(&server, &admin, 400).await;
        let sweep = start_grid(&server, &admin, &experiment).await;

        // While it runs: the overview lists it with progress; calls are in flight.
        let overview = wait_for(&server, &admin, "/api/v1/overview", |o| {
            o["sweeps"][0]["sweep"]["in_flight"].as_i64().unwrap_or(0) > 0
        })
        .await;
        let active = &overview["sweeps"][0];
        assert_eq!(active["experiment_name"], "Watched");
        assert_eq!(active["project_name"], "Dash");
        assert_eq!(active["sweep"]["id"], sweep["id"]);
        assert_eq!(active["sweep"]["progress"]["total"], 18);
        assert!(
            active["sweep"].get("parameter_space").is_none(),
            "the overview carries no plans"
        );
        assert_eq!(overview["experiments"][0]["name"], "Watched");
        // The experiment's current sweep and the sweep itself show its calls in flight too.
        for path in [
            format!("/api/v1/experiments/{experiment}/sweep"),
            format!("/api/v1/sweeps/{}", sweep["id"].as_str().unwrap()),
        ] {
            let current = wait_for(&server, &admin, &path, |s| {
                s["in_flight"].as_i64().unwrap_or(0) > 0
            })
            .await;
            assert_eq!(current["id"], sweep["id"], "{path}");
        }

        // Pausing answers with the calls still in flight (they finish); then none remain.
        let (s, paused) = server
            .call(
                Method::POST,
                &format!("/api/v1/experiments/{experiment}/pause"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{paused}");
        assert_eq!(paused["status"], "paused");
        assert!(paused["in_flight"].as_i64().is_some());
        let settled = wait_for(
            &server,
            &admin,
            &format!("/api/v1/experiments/{experiment}/sweep"),
            |s| s["in_flight"] == 0,
        )
        .await;
        let (s, resumed) = server
            .call(
                Method::POST,
                &format!("/api/v1/experiments/{experiment}/resume"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{resumed}");
        assert!(resumed["progress"]["done"].as_i64() >= settled["progress"]["done"].as_i64());

        // Done: no sweep is active, the totals count every run, a new best was found.
        until_completed(&server, &admin, &experiment).await;
        let done = wait_for(&server, &admin, "/api/v1/overview", |o| {
            o["sweeps"] == json!([]) && !o["bests"].as_array().unwrap().is_empty()
        })
        .await;
        assert_eq!(done["totals"]["runs"]["total"], 18);
        assert_eq!(done["totals"]["runs"]["completed"], 18);
        assert!(done["totals"]["tokens_in"].as_i64().unwrap() > 0);
        assert_eq!(done["bests"][0]["type"], "new_best_found");
        assert_eq!(done["experiments"][0]["run_count"], 18);

        // Anonymous callers get nothing.
        let (s, _) = server.get("/api/v1/overview", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        server.stop().await;
    }
}

#[tokio::test]
async fn one_configurations_runs_and_an_endpoints_models() {
    for server in TestServer::all().await {
        let admin = server.setup_admin().await;
        let (endpoint, experiment) = fixture(&server, &admin, 0).await;
        start_grid(&server, &admin, &experiment).await;
        until_completed(&server, &admin, &experiment).await;
        let (_, all) = server
            .get(
                &format!("/api/v1/experiments/{experiment}/runs?limit=100"),
                Some(&admin),
            )
            .await;
        assert_eq!(all["total"], 18);
        let key = all["runs"][0]["config_key"].as_str().unwrap().to_owned();
        let (s, page) = server
            .get(
                &format!("/api/v1/experiments/{experiment}/runs?config_key={key}&sort=item"),
                Some(&admin),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 6);
        let items: Vec<i64> = page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["item_index"].as_i64().unwrap())
            .collect();
        assert_eq!(items, vec![0, 1, 2, 3, 4, 5]);
        assert!(
            page["runs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["config_key"] == key.as_str())
        );
        let bad = server
            .get(
                &format!("/api/v1/experiments/{experiment}/runs?config_key=nope"),
                Some(&admin),
            )
            .await;
        assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, Some("config_key"));

        // Any signed-in reader may list an endpoint's models (a member here).
        let member = server.user_token(&admin, "mia", "member").await;
        let (s, models) = server
            .get(
                &format!("/api/v1/endpoints/{endpoint}/models"),
                Some(&member),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{models}");
        assert_eq!(models["ok"], true);
        assert!(
            models["models"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == "sim-large")
        );
        let (s, _) = server
            .get(
                &format!("/api/v1/endpoints/{}/models", uuid::Uuid::new_v4()),
                Some(&member),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        server.stop().await;
    }
}

#[tokio::test]
async fn pasted_items_are_read_with_every_bad_line_reported() {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let admin = server.setup_admin().await;
    let parse = |body: Value| {
        let server = &server;
        let admin = admin.clone();
        async move {
            server
                .call(
                    Method::POST,
                    "/api/v1/samples/parse",
                    Some(&admin),
                    Some(body),
                )
                .await
        }
    };
    let (s, csv) =
        parse(json!({"content": "text,reference\nHi Ada,Ada\nbroken\nBye Bob,Bob\n1,2,3\n"})).await;
    assert_eq!(s, StatusCode::OK, "{csv}");
    assert_eq!(csv["format"], "csv");
    assert_eq!(csv["items"].as_array().unwrap().len(), 2);
    assert_eq!(csv["error_count"], 2);
    assert_eq!(
        csv["errors"][0],
        json!({"line": 3, "message": "expected 2 fields, found 1"})
    );
    assert_eq!(csv["errors"][1]["line"], 5);
    assert_eq!(csv["common_fields"], json!(["text"]));
    let (_, json_array) = parse(json!({"content": "[\n {\"q\": \"a\"},\n 7\n]"})).await;
    assert_eq!(json_array["format"], "json");
    assert_eq!(
        json_array["errors"],
        json!([{"line": 3, "message": "expected a JSON object"}])
    );
    let (_, lines) = parse(json!({"format": "jsonl", "content": "{\"q\": 1}\n{nope}\n"})).await;
    assert_eq!(lines["errors"][0]["line"], 2);
    // Bad requests name the field; anonymous callers are refused.
    let bad = parse(json!({"content": "x", "format": "xml"})).await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST, "{}", bad.1);
    let (s, _) = server
        .call(
            Method::POST,
            "/api/v1/samples/parse",
            None,
            Some(json!({"content": "a\n1"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The import refuses text with a bad line, naming it and counting the rest.
    let (_, endpoint) = server
        .call(
            Method::POST,
            "/api/v1/endpoints",
            Some(&admin),
            Some(json!({"name": "sim", "kind": "simulated"})),
        )
        .await;
    let (_, project) = server
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&admin),
            Some(json!({"name": "p"})),
        )
        .await;
    let (_, experiment) = server
        .call(Method::POST, "/api/v1/experiments", Some(&admin), Some(json!({
            "project_id": project["id"], "name": "e",
            "pipeline_stages": [{"name": "s", "endpoint_id": endpoint["id"], "model": "sim-large", "user": "hi"}]
        })))
        .await;
    let refused = server
        .call(
            Method::POST,
            &format!(
                "/api/v1/experiments/{}/samples",
                experiment["id"].as_str().unwrap()
            ),
            Some(&admin),
            Some(json!({"format": "json", "content": "[{\"q\": 1}, 2, 3]"})),
        )
        .await;
    assert_error(&refused, StatusCode::UNPROCESSABLE_ENTITY, Some("content"));
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("(and 1 more bad line)"),
        "{}",
        refused.1
    );
    server.stop().await;
}
