//! Experiments and runs end to end over REST, on SQLite and PostgreSQL: a two-stage pipeline
//! against the local mock LLM, the response cache (verified by the mock's request count),
//! costs, validation at save time, sample import, and the API key never leaving the server.

mod common;

use common::mock::Mock;
use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::mock_llm::{MockConfig, Scripted};

const SENTINEL: &str = "sk-sentinel-4f3c2b1a0987654321";

struct Setup {
    admin: String,
    endpoint: String,
    experiment: String,
}

async fn setup(server: &TestServer, mock: &Mock) -> Setup {
    let admin = server.setup_admin().await;
    let (s, endpoint) = server
        .call(Method::POST, "/api/v1/endpoints", Some(&admin), Some(json!({
            "name": "mock", "kind": "openai", "base_url": mock.url, "api_key": SENTINEL, "timeout_ms": 5000
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{endpoint}");
    assert_eq!(
        (
            endpoint["has_api_key"].as_bool(),
            endpoint["api_key_hint"].as_str()
        ),
        (Some(true), Some("sk-…4321"))
    );
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let (_, project) = server
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&admin),
            Some(json!({"name": "p"})),
        )
        .await;
    let (s, experiment) = server
        .call(Method::POST, "/api/v1/experiments", Some(&admin), Some(json!({
            "project_id": project["id"],
            "name": "two stages",
            "sample_data": [
                {"input": {"text": "Ada Lovelace wrote in London in 1843."}, "reference": "Ada, Lovelace, London, 1843"},
                {"input": {"text": "Alan Turing worked at Cambridge in 1936."}, "reference": "Alan, Turing, Cambridge, 1936"},
                {"input": {"text": "Grace Hopper built COBOL at Remington."}, "reference": "Grace, Hopper, COBOL, Remington"}
            ],
            "pipeline_stages": [
                {"name": "extract", "endpoint_id": endpoint_id, "model": "sim-medium",
                 "system": "Extract entities.", "user": "Text follows.\n\n{{ input.text }}",
                 "params": {"temperature": 0.7, "max_tokens": 200}},
                {"name": "clean", "endpoint_id": endpoint_id, "model": "sim-large",
                 "system": "Return only a comma-separated list.", "user": "Clean this up.\n\n{{ stages[0].output }}",
                 "params": {"temperature": 0.2}}
            ],
            "parameter_space": {"stages": [{"prompts": [{"name": "terse", "system": "Return only the entities."}],
                                            "params": {"temperature": [0.2, 0.9]}}]}
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{experiment}");
    Setup {
        admin,
        endpoint: endpoint_id,
        experiment: experiment["id"].as_str().unwrap().to_owned(),
    }
}

/// A SQLite server with the fixture, against a mock that requires the sentinel key.
async fn start_with_mock(config: MockConfig) -> (TestServer, Mock, Setup) {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let mock = Mock::start(MockConfig {
        api_key: Some(SENTINEL.into()),
        ..config
    })
    .await;
    let s = setup(&server, &mock).await;
    (server, mock, s)
}

async fn run(server: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, "/api/v1/runs", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn a_two_stage_pipeline_runs_and_repeats_from_the_cache() {
    for server in TestServer::all().await {
        let mock = Mock::start(MockConfig {
            api_key: Some(SENTINEL.into()),
            ..MockConfig::default()
        })
        .await;
        let s = setup(&server, &mock).await;
        server
            .call(
                Method::PUT,
                "/api/v1/admin/pricing",
                Some(&s.admin),
                Some(json!([
                    {"model": "sim-medium", "input_per_million": 1.0, "output_per_million": 2.0}
                ])),
            )
            .await;
        // sim-large has a default price of 0; make it unknown to see cost disappear.
        server
            .call(
                Method::DELETE,
                "/api/v1/admin/pricing/sim-large",
                Some(&s.admin),
                None,
            )
            .await;

        let (status, batch) = run(&server, &s.admin, json!({"experiment_id": s.experiment})).await;
        assert_eq!(status, StatusCode::CREATED, "{batch}");
        assert_eq!(
            (
                batch["completed"].as_u64(),
                batch["cached"].as_u64(),
                batch["failed"].as_u64()
            ),
            (Some(3), Some(0), Some(0))
        );
        assert_eq!(mock.state.chat_requests(), 6, "3 items × 2 stages");
        assert!(
            batch["cost_estimate"].is_null(),
            "a stage without a price means no total cost: {batch}"
        );
        let first = &batch["runs"][0];
        assert_eq!(first["status"], "completed");
        assert_eq!(first["config"]["stages"][0]["model"], "sim-medium");
        assert_eq!(first["config_hash"].as_str().unwrap().len(), 64);

        // The detail shows both stages: rendered prompts, responses, tokens.
        let (_, detail) = server
            .get(
                &format!("/api/v1/runs/{}", first["id"].as_str().unwrap()),
                Some(&s.admin),
            )
            .await;
        let stages = detail["stages"].as_array().unwrap();
        assert_eq!(stages.len(), 2);
        assert!(
            stages[0]["prompt_sent"]
                .as_str()
                .unwrap()
                .contains("Ada Lovelace wrote in London"),
            "{detail}"
        );
        assert!(
            stages[1]["prompt_sent"]
                .as_str()
                .unwrap()
                .contains(stages[0]["response_raw"].as_str().unwrap())
        );
        assert_eq!(stages[0]["cached"], false);
        assert!(stages[0]["tokens_in"].as_i64().unwrap() > 0);
        assert!(stages[0]["cost_estimate"].as_f64().unwrap() > 0.0);
        assert!(stages[1]["cost_estimate"].is_null());
        // The dashboard's recent-runs query returns each run with its final output.
        let actor = engine::auth::authenticate_bearer(&server.state.core, &s.admin)
            .await
            .unwrap();
        let experiment_id: uuid::Uuid = s.experiment.parse().unwrap();
        let recent = engine::runs::list_run_summaries(
            &server.state.core,
            &actor,
            experiment_id,
            engine::runs::RunFilter::default(),
            "-created_at",
            30,
            0,
        )
        .await
        .unwrap();
        assert_eq!((recent.runs.len(), recent.total), (3, 3));
        let summary = recent
            .runs
            .iter()
            .find(|r| r.run.id.to_string() == first["id"].as_str().unwrap())
            .unwrap();
        assert_eq!(summary.run.status, "completed");
        assert_eq!(
            summary.output.as_deref(),
            stages[1]["response_raw"].as_str()
        );
        assert!(!summary.label.is_empty());
        // One configuration's runs, in item order.
        let key = summary.run.config_key.clone();
        let of_config = engine::runs::list_run_summaries(
            &server.state.core,
            &actor,
            experiment_id,
            engine::runs::RunFilter {
                config_key: Some(&key),
                status: Some("completed"),
                ..Default::default()
            },
            "item",
            30,
            0,
        )
        .await
        .unwrap();
        assert_eq!(of_config.total, 3);
        let items: Vec<i32> = of_config.runs.iter().map(|r| r.run.item_index).collect();
        assert_eq!(items, vec![0, 1, 2]);

        // The same configuration again: every call from the cache, none to the endpoint.
        let (_, again) = run(&server, &s.admin, json!({"experiment_id": s.experiment})).await;
        assert_eq!(
            (again["cached"].as_u64(), again["completed"].as_u64()),
            (Some(3), Some(0))
        );
        assert_eq!(mock.state.chat_requests(), 6);
        assert_eq!(again["config_key"], batch["config_key"]);

        // An identical configuration in another experiment shares the entries.
        let (_, original) = server
            .get(
                &format!("/api/v1/experiments/{}", s.experiment),
                Some(&s.admin),
            )
            .await;
        let mut copy = json!({});
        for field in ["project_id", "pipeline_stages", "parameter_space"] {
            copy[field] = original[field].clone();
        }
        let (_, items) = server
            .get(
                &format!("/api/v1/experiments/{}/items", s.experiment),
                Some(&s.admin),
            )
            .await;
        copy["sample_data"] = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| json!({"input": i["input"], "reference": i["reference"]}))
            .collect();
        copy["name"] = json!("copy");
        let (status, copy) = server
            .call(
                Method::POST,
                "/api/v1/experiments",
                Some(&s.admin),
                Some(copy),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{copy}");
        let (_, shared) = run(&server, &s.admin, json!({"experiment_id": copy["id"]})).await;
        assert_eq!(shared["cached"].as_u64(), Some(3), "{shared}");
        assert_eq!(mock.state.chat_requests(), 6);

        // A second repeat is a distinct sample: new calls for repeat 1 only.
        let (_, repeated) = run(
            &server,
            &s.admin,
            json!({"experiment_id": s.experiment, "repeats": 2, "items": [0]}),
        )
        .await;
        assert_eq!(
            (repeated["cached"].as_u64(), repeated["completed"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(mock.state.chat_requests(), 8);

        // A variant and a parameter change make a different configuration.
        let (_, variant) = run(
            &server,
            &s.admin,
            json!({"experiment_id": s.experiment, "items": [1],
            "stages": [{"variant": "terse", "params": {"temperature": 0.9}}]}),
        )
        .await;
        assert_eq!(variant["completed"].as_u64(), Some(1), "{variant}");
        assert_eq!(
            variant["runs"][0]["config"]["stages"][0]["variant"],
            "terse"
        );
        assert_ne!(variant["config_key"], batch["config_key"]);
        assert_eq!(
            mock.state.chat_requests(),
            10,
            "stage 2 gets a new input, so it is a new call too"
        );

        // Invalidate one run's cache: only its calls are made again.
        let (_, removed) = server
            .call(
                Method::DELETE,
                &format!("/api/v1/runs/{}/cache", first["id"].as_str().unwrap()),
                Some(&s.admin),
                None,
            )
            .await;
        assert_eq!(removed["removed"], 2);
        let (_, after) = run(&server, &s.admin, json!({"experiment_id": s.experiment})).await;
        assert_eq!(
            (after["cached"].as_u64(), after["completed"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(mock.state.chat_requests(), 12);

        // Listing: paginated, filtered, sorted.
        let (_, page) = server
            .get(
                &format!(
                    "/api/v1/experiments/{}/runs?limit=2&status=cached&sort=created_at",
                    s.experiment
                ),
                Some(&s.admin),
            )
            .await;
        assert_eq!(page["runs"].as_array().unwrap().len(), 2);
        assert_eq!(page["total"], 6);
        assert!(
            page["runs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] == "cached")
        );
        assert_error(
            &server
                .get(
                    &format!("/api/v1/experiments/{}/runs?status=done", s.experiment),
                    Some(&s.admin),
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("status"),
        );
        assert_error(
            &server
                .get(
                    &format!("/api/v1/experiments/{}/runs?sort=name", s.experiment),
                    Some(&s.admin),
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("sort"),
        );

        // Stats count cache hits and misses.
        let (_, stats) = server.get("/api/v1/admin/stats", Some(&s.admin)).await;
        assert_eq!(
            (stats["cache_hits"].as_i64(), stats["cache_misses"].as_i64()),
            (Some(18), Some(12)),
            "{stats}"
        );
        assert_eq!(stats["cache_hit_rate"], 0.6);

        // Experiment-wide and global invalidation.
        let (_, removed) = server
            .call(
                Method::DELETE,
                &format!("/api/v1/experiments/{}/cache", s.experiment),
                Some(&s.admin),
                None,
            )
            .await;
        assert_eq!(
            removed["removed"], 10,
            "12 entries were made, 2 of them deleted above"
        );
        let (_, cleared) = server
            .call(Method::DELETE, "/api/v1/admin/cache", Some(&s.admin), None)
            .await;
        assert_eq!(cleared["removed"], 0);
        server.stop().await;
    }
}

#[tokio::test]
async fn failures_are_recorded_clearly_and_never_cached() {
    let (server, mock, s) = start_with_mock(MockConfig::default()).await;
    mock.state.script([Scripted::status(401)]);
    let (_, batch) = run(
        &server,
        &s.admin,
        json!({"experiment_id": s.experiment, "items": [0]}),
    )
    .await;
    assert_eq!(batch["failed"], 1, "{batch}");
    let error = batch["runs"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("stage 0 (extract): authentication failed"),
        "{error}"
    );
    assert_eq!(mock.state.chat_requests(), 1, "auth errors are not retried");
    // Nothing was cached: the next run calls again and succeeds.
    let (_, retry) = run(
        &server,
        &s.admin,
        json!({"experiment_id": s.experiment, "items": [0]}),
    )
    .await;
    assert_eq!(retry["completed"], 1, "{retry}");
    assert_eq!(mock.state.chat_requests(), 3);
    server.stop().await;
}

#[tokio::test]
async fn experiments_are_validated_at_save_time() {
    let (server, mock, s) = start_with_mock(MockConfig::default()).await;
    let experiment_path = format!("/api/v1/experiments/{}", s.experiment);
    let put = |body: Value| server.call(Method::PUT, &experiment_path, Some(&s.admin), Some(body));
    let stage = |user: &str, extra: Value| {
        let mut st = json!({"name": "one", "endpoint_id": s.endpoint, "model": "m", "user": user});
        st.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        st
    };
    let cases = [
        (
            json!({"pipeline_stages": [stage("{{ input.txt }}", json!({}))]}),
            "pipeline_stages[0].user",
        ),
        (
            json!({"pipeline_stages": [stage("{% if %}", json!({}))]}),
            "pipeline_stages[0].user",
        ),
        (
            json!({"pipeline_stages": [stage("{{ input.text }}", json!({"system": "{{ stages[0].output }}"}))]}),
            "pipeline_stages[0].system",
        ),
        (
            json!({"pipeline_stages": [stage("{{ input.text }}", json!({"params": {"temperature": 7}}))]}),
            "pipeline_stages[0].params.temperature",
        ),
        (
            json!({"pipeline_stages": [stage("{{ input.text }}", json!({"endpoint_id": uuid::Uuid::new_v4()}))]}),
            "pipeline_stages[0].endpoint_id",
        ),
        (json!({"pipeline_stages": []}), "pipeline_stages"),
        (
            json!({"parameter_space": {"stages": [{"params": {"top_p": [0.5, 2]}}]}}),
            "parameter_space.stages[0].params.top_p",
        ),
        (
            json!({"parameter_space": {"stages": [{"prompts": [{"name": "x", "user": "{{ input.nope }}"}]}]}}),
            "parameter_space.stages[0].prompts[0].user",
        ),
        (
            json!({"sample_data": [{"input": {"other": "x"}}]}),
            "pipeline_stages[0].user",
        ),
    ];
    for (body, field) in cases {
        let got = put(body.clone()).await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    // A simulated endpoint knows its models.
    let (_, sim) = server
        .call(
            Method::POST,
            "/api/v1/endpoints",
            Some(&s.admin),
            Some(json!({"name": "sim", "kind": "simulated"})),
        )
        .await;
    let got = put(json!({"pipeline_stages": [{"name": "a", "endpoint_id": sim["id"], "model": "gpt-9", "user": "{{ input.text }}"}]})).await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("pipeline_stages[0].model"),
    );
    // Nothing changed.
    let (_, experiment) = server
        .get(
            &format!("/api/v1/experiments/{}", s.experiment),
            Some(&s.admin),
        )
        .await;
    assert_eq!(experiment["pipeline_stages"].as_array().unwrap().len(), 2);
    assert_eq!(experiment["items"]["count"].as_i64().unwrap() as usize, 3);
    // Bad run requests.
    for (body, field) in [
        (
            json!({"experiment_id": s.experiment, "stages": [{"variant": "nope"}]}),
            "stages[0].variant",
        ),
        (
            json!({"experiment_id": s.experiment, "items": [7]}),
            "items",
        ),
        (
            json!({"experiment_id": s.experiment, "repeats": 0}),
            "repeats",
        ),
        (
            json!({"experiment_id": s.experiment, "stages": [{"params": {"top_p": 0}}]}),
            "stages[0].params.top_p",
        ),
        (
            json!({"experiment_id": uuid::Uuid::new_v4()}),
            "experiment_id",
        ),
    ] {
        assert_error(
            &run(&server, &s.admin, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(field),
        );
    }
    assert_eq!(mock.state.chat_requests(), 0);
    server.stop().await;
}

#[tokio::test]
async fn sample_data_imports_from_csv_and_jsonl() {
    let (server, _mock, s) = start_with_mock(MockConfig::default()).await;
    let path = format!("/api/v1/experiments/{}/samples", s.experiment);
    let (st, e) = server.call(Method::POST, &path, Some(&s.admin), Some(json!({
        "format": "csv", "content": "text,reference\n\"Marie Curie, Paris\",\"Marie, Curie, Paris\"\nLinus in Helsinki,\"Linus, Helsinki\"\n"
    }))).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["items"]["count"].as_i64().unwrap() as usize, 2);
    let (_, page) = server
        .get(
            &format!("/api/v1/experiments/{}/items", s.experiment),
            Some(&s.admin),
        )
        .await;
    assert_eq!(page["items"][0]["input"]["text"], "Marie Curie, Paris");
    let (_, e) = server.call(Method::POST, &path, Some(&s.admin), Some(json!({
        "format": "jsonl", "append": true, "content": "{\"text\": \"Tim at CERN\", \"reference\": \"Tim, CERN\"}\n"
    }))).await;
    assert_eq!(e["items"]["count"].as_i64().unwrap() as usize, 3);
    let bad = server
        .call(
            Method::POST,
            &path,
            Some(&s.admin),
            Some(json!({"format": "jsonl", "content": "{\"text\": \"ok\"}\n{broken\n"})),
        )
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, Some("content"));
    assert!(
        bad.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
    let missing = server
        .call(
            Method::POST,
            &path,
            Some(&s.admin),
            Some(json!({"format": "csv", "content": "prompt\nhello\n"})),
        )
        .await;
    assert_error(&missing, StatusCode::UNPROCESSABLE_ENTITY, Some("content"));
    assert!(
        missing.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pipeline_stages[0].user"),
        "{}",
        missing.1
    );
    let (_, e) = server
        .get(
            &format!("/api/v1/experiments/{}", s.experiment),
            Some(&s.admin),
        )
        .await;
    assert_eq!(
        e["items"]["count"].as_i64().unwrap() as usize,
        3,
        "failed imports change nothing"
    );

    // Uploading the file itself: CSV replaces, NDJSON with ?append=true appends.
    let upload = |content_type: &'static str, body: &'static str, query: &'static str| {
        TestServer::client()
            .post(format!("{}{path}{query}", server.url))
            .bearer_auth(&s.admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = upload(
        "text/csv; charset=utf-8",
        "text,reference\nAda in London,\"Ada, London\"\n",
        "",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["items"]["count"].as_i64().unwrap() as usize, 1);
    let res = upload(
        "application/x-ndjson",
        "{\"text\": \"Alan at Cambridge\"}\n",
        "?append=true",
    )
    .await
    .unwrap();
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["items"]["count"].as_i64().unwrap() as usize, 2);
    let res = upload("text/csv", "text\nfine\ntoo,many\n", "")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = res.json().await.unwrap();
    assert!(
        e["error"]["message"].as_str().unwrap().contains("line 3"),
        "{e}"
    );
    let res = upload("application/pdf", "%PDF", "").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    server.stop().await;
}

/// The endpoint's API key goes in once and never comes out: not in any response, error,
/// listing or the OpenAPI document — only to the endpoint itself.
#[tokio::test]
async fn the_endpoint_key_never_appears_in_any_response() {
    let (server, mock, s) = start_with_mock(MockConfig::default()).await;
    let (_, batch) = run(&server, &s.admin, json!({"experiment_id": s.experiment})).await;
    mock.state.script([Scripted::Status {
        status: 401,
        retry_after: None,
        retry_after_ms: None,
        body: Some(format!("bad key {SENTINEL}")),
    }]);
    let (_, failed) = run(&server, &s.admin, json!({"experiment_id": s.experiment, "stages": [{"params": {"temperature": 0.1}}], "items": [0]})).await;
    let mut seen = format!("{batch}{failed}");
    for path in [
        "/api/v1/endpoints".to_owned(),
        format!("/api/v1/endpoints/{}", s.endpoint),
        "/api/v1/admin/stats".into(),
        "/api/v1/openapi.json".into(),
        format!("/api/v1/experiments/{}", s.experiment),
        format!("/api/v1/experiments/{}/runs?limit=100", s.experiment),
        format!("/api/v1/runs/{}", batch["runs"][0]["id"].as_str().unwrap()),
    ] {
        seen.push_str(&server.get(&path, Some(&s.admin)).await.1.to_string());
    }
    let (_, test) = server
        .call(
            Method::POST,
            &format!("/api/v1/endpoints/{}/test", s.endpoint),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(test["ok"], true, "{test}");
    seen.push_str(&test.to_string());
    assert!(
        !seen.contains(SENTINEL) && !seen.contains("4f3c2b1a0987"),
        "the key leaked"
    );
    // The stored key never follows the endpoint to another host.
    let moved = server
        .call(
            Method::PUT,
            &format!("/api/v1/endpoints/{}", s.endpoint),
            Some(&s.admin),
            Some(json!({"base_url": "http://attacker.example/v1"})),
        )
        .await;
    assert_error(&moved, StatusCode::UNPROCESSABLE_ENTITY, Some("api_key"));
    // Rotating or removing the key works without ever reading it back.
    let (_, e) = server
        .call(
            Method::PUT,
            &format!("/api/v1/endpoints/{}", s.endpoint),
            Some(&s.admin),
            Some(json!({"api_key": null})),
        )
        .await;
    assert_eq!(
        (e["has_api_key"].as_bool(), e["api_key_hint"].as_str()),
        (Some(false), None)
    );
    let (_, test) = server
        .call(
            Method::POST,
            &format!("/api/v1/endpoints/{}/test", s.endpoint),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(test["ok"], false);
    assert!(
        test["error"]
            .as_str()
            .unwrap()
            .contains("authentication failed")
    );
    // The stored form is ciphertext.
    let engine::Db::Sqlite(pool) = &server.state.core.db else {
        unreachable!()
    };
    let stored: Vec<(Option<String>,)> = sqlx::query_as("SELECT api_key_enc FROM llm_endpoints")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|(v,)| v.as_deref().is_none_or(|v| !v.contains(SENTINEL)))
    );
    server.stop().await;
}

/// First boot seeds a demo on the simulated endpoint that runs with no API key.
#[tokio::test]
async fn the_demo_project_runs_out_of_the_box() {
    for database in engine::testing::TestDatabase::all().await {
        let server = TestServer::start_with(database, &[]).await;
        let admin = server.setup_admin().await;
        let (_, projects) = server.get("/api/v1/projects", Some(&admin)).await;
        assert_eq!(projects[0]["name"], engine::demo::PROJECT_NAME);
        let (_, experiments) = server
            .get(
                &format!(
                    "/api/v1/experiments?project_id={}",
                    projects[0]["id"].as_str().unwrap()
                ),
                Some(&admin),
            )
            .await;
        let experiment = &experiments[0];
        assert_eq!(experiment["items"]["count"].as_i64().unwrap() as usize, 8);
        let (status, batch) = run(&server, &admin, json!({"experiment_id": experiment["id"],
            "stages": [{"variant": "terse", "model": "sim-large", "params": {"temperature": 0.2}}]})).await;
        assert_eq!(status, StatusCode::CREATED, "{batch}");
        assert_eq!(batch["completed"], 8, "{batch}");
        assert_eq!(batch["cost_estimate"], 0.0, "simulated models are free");
        // The demo's best configuration really recovers the references.
        let (_, detail) = server
            .get(
                &format!("/api/v1/runs/{}", batch["runs"][0]["id"].as_str().unwrap()),
                Some(&admin),
            )
            .await;
        let output = detail["stages"][1]["response_raw"].as_str().unwrap();
        assert!(
            output.contains("Lovelace") && output.contains("1843"),
            "{output}"
        );
        // Deleting the demo is allowed and it does not come back.
        let (s, _) = server
            .call(
                Method::DELETE,
                &format!("/api/v1/projects/{}", projects[0]["id"].as_str().unwrap()),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert!(!engine::demo::seed_once(&server.state.core).await.unwrap());
        server.stop().await;
    }
}

/// Identical calls made at the same time are paid for once: the others wait for the first
/// and read its answer from the cache.
#[tokio::test]
async fn identical_concurrent_calls_reach_the_provider_once() {
    let (server, mock, s) = start_with_mock(MockConfig {
        latency_ms: 150,
        ..MockConfig::default()
    })
    .await;
    let (_, batch) = run(
        &server,
        &s.admin,
        json!({"experiment_id": s.experiment, "items": [0, 0, 0]}),
    )
    .await;
    assert_eq!(batch["runs"].as_array().unwrap().len(), 3, "{batch}");
    assert_eq!(
        (batch["completed"].as_u64(), batch["cached"].as_u64()),
        (Some(1), Some(2)),
        "{batch}"
    );
    assert_eq!(
        mock.state.chat_requests(),
        2,
        "one call per stage, not three"
    );
    assert!(
        server.state.core.in_flight.is_empty(),
        "no lock is left behind"
    );
    server.stop().await;
}
