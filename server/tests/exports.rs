//! Exports (best as JSON, .env, YAML, the markdown report) and their history; a webhook scorer
//! against a local server (retries, write-only headers); Python scorers behind the admin's
//! switch; and no secret in any response, export, event or log.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::sentinels::{ENDPOINT_KEY, HEADER_SECRET};

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, path, Some(token), Some(body))
        .await
}

async fn text(server: &TestServer, token: &str, path: &str) -> (StatusCode, String, String) {
    let res = TestServer::client()
        .get(format!("{}{path}", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

/// A scoring webhook: fails the first `fail_first` calls with 500, then answers
/// `{"score": 0.8}` to callers that send the right header.
struct Hook {
    url: String,
    calls: Arc<AtomicU64>,
}

async fn hook(fail_first: u64) -> Hook {
    use axum::extract::State;
    use axum::http::HeaderMap;
    let calls = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/score",
            axum::routing::post(
                |State((calls, fail)): State<(Arc<AtomicU64>, u64)>,
                 headers: HeaderMap,
                 axum::Json(body): axum::Json<Value>| async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    if n < fail {
                        return (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(json!({"oops": true})),
                        );
                    }
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some(&format!("Bearer {HEADER_SECRET}"))
                    {
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            axum::Json(json!({"error": "who are you"})),
                        );
                    }
                    let output = body["output"].as_str().unwrap_or_default();
                    assert!(
                        body["context"]["run_id"].is_string() && body["input"]["text"].is_string()
                    );
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({"score": 0.8, "metadata": {"chars": output.len()}})),
                    )
                },
            ),
        )
        .route(
            "/broken",
            axum::routing::post(
                |State((calls, _)): State<(Arc<AtomicU64>, u64)>| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    (axum::http::StatusCode::BAD_REQUEST, "no")
                },
            ),
        )
        .with_state((calls.clone(), fail_first));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hook { url, calls }
}

struct Setup {
    admin: String,
    experiment: String,
    project: String,
}

async fn setup(server: &TestServer, scoring: Value) -> Setup {
    let admin = server.setup_admin().await;
    let (s, endpoint) = post(
        server,
        &admin,
        "/api/v1/endpoints",
        json!({"name": "sim", "kind": "simulated"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, project) = post(server, &admin, "/api/v1/projects", json!({"name": "p"})).await;
    let items: Vec<Value> = ["Ada Lovelace met Charles Babbage in London in 1833.", "Grace Hopper built COBOL at Remington Rand."]
        .iter()
        .map(|t| json!({"input": {"text": t}, "reference": engine::providers::simulated::ideal_answer(t).join(", ")}))
        .collect();
    let (s, e) = post(server, &admin, "/api/v1/experiments", json!({
        "project_id": project["id"], "name": "Export me: extraction", "sample_data": items,
        "pipeline_stages": [
            {"name": "extract", "endpoint_id": endpoint["id"], "model": "sim-medium",
             "system": "You extract \"entities\".\nBe brief.", "user": "Extract.\n\n{{ input.text }}", "params": {"temperature": 0.5, "max_tokens": 200}},
            {"name": "clean up", "endpoint_id": endpoint["id"], "model": "sim-large",
             "system": "Return only a comma-separated list.", "user": "Tidy:\n\n{{ stages[0].output }}", "params": {"temperature": 0.2}}],
        "parameter_space": {"stages": [{"models": [{"model": "sim-large"}, {"model": "sim-small"}]}]},
        "scoring_config": scoring,
    })).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    Setup {
        admin,
        experiment: e["id"].as_str().unwrap().to_owned(),
        project: project["id"].as_str().unwrap().to_owned(),
    }
}

async fn sweep(server: &TestServer, f: &Setup) {
    let (s, sweep) = post(
        server,
        &f.admin,
        &format!("/api/v1/experiments/{}/sweep", f.experiment),
        json!({"strategy": {"kind": "grid"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sweep}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, now) = server
            .get(
                &format!("/api/v1/sweeps/{}", sweep["id"].as_str().unwrap()),
                Some(&f.admin),
            )
            .await;
        if now["status"] == "completed" {
            return;
        }
        assert!(Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn exports_carry_the_best_configuration_and_are_recorded() {
    for server in TestServer::all().await {
        let f = setup(
            &server,
            json!([{"kind": "lexical_similarity", "name": "f1"}]),
        )
        .await;
        let base = format!("/api/v1/experiments/{}", f.experiment);
        let (s, _, body) = text(&server, &f.admin, &format!("{base}/export/best")).await;
        assert_eq!(
            s,
            StatusCode::CONFLICT,
            "nothing to export before any run: {body}"
        );
        sweep(&server, &f).await;
        let (_, board) = server
            .get(&format!("{base}/leaderboard"), Some(&f.admin))
            .await;
        let best = board["entries"][0].clone();
        let best_model = best["config"]["stages"][0]["model"]
            .as_str()
            .unwrap()
            .to_owned();

        let (s, kind, body) = text(&server, &f.admin, &format!("{base}/export/best")).await;
        assert_eq!((s, kind.as_str()), (StatusCode::OK, "application/json"));
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["config_key"], best["config_key"]);
        assert_eq!(
            json["score"].as_f64().map(|v| (v * 1e4).round()),
            best["score"].as_f64().map(|v| (v * 1e4).round())
        );
        assert_eq!(json["stages"].as_array().unwrap().len(), 2);
        assert_eq!(json["stages"][0]["model"], best_model);
        assert_eq!(json["stages"][0]["parameters"]["max_tokens"], 200);
        assert_eq!(
            json["stages"][1]["system_prompt"],
            "Return only a comma-separated list."
        );
        assert_eq!(json["experiment"], "Export me: extraction");

        let (s, _, env) = text(&server, &f.admin, &format!("{base}/export/env")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            env.contains(&format!("LLM_EXTRACT_MODEL={best_model}")),
            "{env}"
        );
        assert!(env.contains("LLM_CLEAN_UP_TEMPERATURE=0.2"), "{env}");
        assert!(
            env.contains("LLM_EXTRACT_SYSTEM_PROMPT=\"You extract \\\"entities\\\".\\nBe brief.\""),
            "{env}"
        );
        assert!(
            env.lines().last().unwrap().starts_with("# Score: "),
            "{env}"
        );

        let (s, kind, yaml) = text(&server, &f.admin, &format!("{base}/export/yaml")).await;
        assert_eq!((s, kind.as_str()), (StatusCode::OK, "application/yaml"));
        let parsed: Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(parsed["stages"][0]["model"], best_model.as_str());
        assert_eq!(
            parsed["stages"][0]["system_prompt"],
            "You extract \"entities\".\nBe brief."
        );
        assert!(parsed["metadata"]["score"].is_number(), "{yaml}");

        let (s, kind, report) = text(&server, &f.admin, &format!("{base}/export/report")).await;
        assert_eq!(
            (s, kind.as_str()),
            (StatusCode::OK, "text/markdown; charset=utf-8")
        );
        for part in [
            "# Export me: extraction",
            "## Summary",
            "## Best configuration",
            "95% CI",
            "## Leaderboard",
            "## Parameter effects",
            "| sim-large |",
            "## Charts",
            "### Weighted score by model\n\n![Weighted score by model](data:image/svg+xml;base64,",
            "### Weighted score vs cost",
            "| Rank | Configuration | Mean | Min | Q1 | Median | Q3 | Max | Items |",
            "## Cost and tokens",
            "## The winning prompts",
            "Tidy:\n\n{{ stages[0].output }}",
            "f1 (lexical_similarity, weight 1)",
        ] {
            assert!(report.contains(part), "the report has {part:?}:\n{report}");
        }

        // Another configuration on request; bad requests.
        let other = board["entries"][1]["config_key"].as_str().unwrap();
        let (_, _, body) = text(
            &server,
            &f.admin,
            &format!("{base}/export/best?config_key={other}"),
        )
        .await;
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["config_key"],
            other
        );
        assert_error(
            &server
                .get(&format!("{base}/export/pdf"), Some(&f.admin))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("format"),
        );
        assert_error(
            &server
                .get(
                    &format!("{base}/export/best?config_key=nope"),
                    Some(&f.admin),
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("config_key"),
        );

        // Approving a configuration makes it the one exported.
        let (_, runs) = server
            .get(&format!("{base}/runs?limit=100"), Some(&f.admin))
            .await;
        let run_of_other = runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["config_key"] == other)
            .unwrap();
        let (s, _) = post(
            &server,
            &f.admin,
            &format!(
                "/api/v1/runs/{}/approve",
                run_of_other["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (_, _, body) = text(&server, &f.admin, &format!("{base}/export/best")).await;
        let approved: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (
                approved["config_key"].as_str(),
                approved["approved"].as_bool()
            ),
            (Some(other), Some(true))
        );

        // A guest may read an export; only members' and admins' exports are recorded.
        let guest = server.user_token(&f.admin, "gus", "guest").await;
        let (s, _, body) = text(&server, &guest, &format!("{base}/export/env")).await;
        assert_eq!(s, StatusCode::OK, "{body}");

        // The history: every export, newest first, each retrievable as it was.
        let (_, history) = server.get(&format!("{base}/exports"), Some(&f.admin)).await;
        assert_eq!(history["total"], 6, "{history}");
        let formats: Vec<&str> = history["exports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["format"].as_str().unwrap())
            .collect();
        assert_eq!(formats, ["best", "best", "report", "yaml", "env", "best"]);
        let (_, _, again) = text(
            &server,
            &f.admin,
            &format!(
                "/api/v1/exports/{}",
                history["exports"][3]["id"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(again, yaml);
        let (_, by_project) = server
            .get(
                &format!("/api/v1/projects/{}/exports", f.project),
                Some(&f.admin),
            )
            .await;
        assert_eq!(by_project["total"], 6);
        // The project keeps its history when the experiment goes.
        let (s, _) = server
            .call(Method::DELETE, &base, Some(&f.admin), None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, by_project) = server
            .get(
                &format!("/api/v1/projects/{}/exports", f.project),
                Some(&f.admin),
            )
            .await;
        assert_eq!(
            (
                by_project["total"].as_i64(),
                by_project["exports"][0]["experiment_id"].clone()
            ),
            (Some(6), Value::Null)
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn webhook_scorers_retry_keep_their_headers_secret_and_never_fail_a_run() {
    // Log lines are searched for the sentinels by the test server itself (`common::sentinels`).
    for server in TestServer::all().await {
        let good = hook(1).await;
        let broken = hook(0).await;
        let f = setup(&server, json!([
            {"kind": "webhook", "name": "remote", "url": format!("{}/score", good.url), "headers": {"Authorization": format!("Bearer {HEADER_SECRET}")}, "retries": 2},
            {"kind": "webhook", "name": "down", "url": format!("{}/broken", broken.url), "timeout_ms": 2000},
        ])).await;
        // The receivers are on this machine: webhook scorers reach private addresses only
        // when an admin allows it.
        let (s, _) = server
            .call(
                reqwest::Method::PUT,
                "/api/v1/admin/settings",
                Some(&f.admin),
                Some(json!({"allow_private_webhook_targets": true})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let base = format!("/api/v1/experiments/{}", f.experiment);
        // An endpoint with a key, so exports have one to leak if they could.
        let (s, _) = post(&server, &f.admin, "/api/v1/endpoints", json!({"name": "keyed", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": ENDPOINT_KEY})).await;
        assert_eq!(s, StatusCode::CREATED);

        let (_, e) = server.get(&base, Some(&f.admin)).await;
        assert_eq!(
            e["scoring_config"][0]["headers"]["Authorization"], "<hidden>",
            "{e}"
        );
        let save = |url: Option<String>| {
            let mut config = e["scoring_config"].clone();
            if let Some(url) = url {
                config[0]["url"] = json!(url);
            }
            let (server, base, admin) = (&server, &base, &f.admin);
            async move {
                server
                    .call(
                        Method::PUT,
                        base,
                        Some(admin),
                        Some(json!({"scoring_config": config})),
                    )
                    .await
            }
        };
        // Saving the experiment back as read keeps the stored header value.
        let (s, saved) = save(None).await;
        assert_eq!(s, StatusCode::OK, "{saved}");
        // A kept value never goes to another host: moving the webhook needs the value again.
        let (s, err) = save(Some(format!("{}/score", broken.url))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert!(
            err.to_string()
                .contains("scoring_config[0].headers.Authorization"),
            "{err}"
        );
        // The same host, another path: kept.
        let (s, saved) = save(Some(format!("{}/score?v=2", good.url))).await;
        assert_eq!(s, StatusCode::OK, "{saved}");
        let (s, saved) = save(None).await;
        assert_eq!(s, StatusCode::OK, "{saved}");

        sweep(&server, &f).await;
        let (_, runs) = server
            .get(&format!("{base}/runs?limit=100"), Some(&f.admin))
            .await;
        for run in runs["runs"].as_array().unwrap() {
            assert_eq!(
                run["status"], "completed",
                "a failing scorer never fails a run: {run}"
            );
            let (_, detail) = server
                .get(
                    &format!("/api/v1/runs/{}", run["id"].as_str().unwrap()),
                    Some(&f.admin),
                )
                .await;
            let scores = detail["scores"].as_array().unwrap();
            let remote = scores.iter().find(|s| s["scorer"] == "remote").unwrap();
            assert_eq!(remote["value"], 0.8, "{remote}");
            assert!(
                remote["metadata"]["metadata"]["chars"].is_number(),
                "{remote}"
            );
            let down = scores.iter().find(|s| s["scorer"] == "down").unwrap();
            assert!(
                down["value"].is_null() && down["error"].as_str().unwrap().contains("HTTP 400"),
                "{down}"
            );
        }
        assert!(
            good.calls.load(Ordering::SeqCst) >= 5,
            "one retry after the first 500"
        );
        assert_eq!(
            broken.calls.load(Ordering::SeqCst),
            4,
            "a 400 is not retried"
        );

        // A forced re-score still authenticates (the header survived the save).
        let (s, _) = post(
            &server,
            &f.admin,
            &format!("{base}/rescore"),
            json!({"force": true, "scorers": ["remote"]}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, jobs) = server
                .get(&format!("{base}/scoring-jobs"), Some(&f.admin))
                .await;
            if jobs["jobs"][0]["status"] == "completed" {
                assert_eq!(jobs["jobs"][0]["errors"], 0, "{jobs}");
                break;
            }
            assert!(Instant::now() < deadline, "{jobs}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }

        // No secret anywhere a user or operator can look.
        let mut seen = String::new();
        for path in [
            base.clone(),
            format!("{base}/leaderboard"),
            format!("{base}/events?limit=1000"),
            "/api/v1/endpoints".into(),
            format!("{base}/runs?limit=100"),
        ] {
            seen.push_str(&server.get(&path, Some(&f.admin)).await.1.to_string());
        }
        for format in ["best", "env", "yaml", "report"] {
            let (s, _, body) = text(&server, &f.admin, &format!("{base}/export/{format}")).await;
            assert_eq!(s, StatusCode::OK, "{body}");
            seen.push_str(&body);
        }
        let stored: Vec<(String,)> = match &server.state.core.db {
            engine::Db::Sqlite(p) => sqlx::query_as("SELECT scoring_config FROM experiments")
                .fetch_all(p)
                .await
                .unwrap(),
            engine::Db::Postgres(p) => {
                sqlx::query_as("SELECT scoring_config::text FROM experiments")
                    .fetch_all(p)
                    .await
                    .unwrap()
            }
        };
        seen.push_str(&format!("{stored:?}"));
        for secret in [HEADER_SECRET, ENDPOINT_KEY] {
            assert!(!seen.contains(secret), "{secret} leaked");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn python_scorers_need_an_admin_to_allow_them() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("python3 not installed; skipping");
        return;
    }
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let code = "def score(input, output, reference, context):\n    return {'score': 1.0 if 'Ada' in output else 0.0, 'metadata': {'n': len(output)}}\n";
    let scoring = json!([{"kind": "python", "name": "py", "code": code}]);
    let f = setup(&server, json!([])).await;
    let base = format!("/api/v1/experiments/{}", f.experiment);
    let got = server
        .call(
            Method::PUT,
            &base,
            Some(&f.admin),
            Some(json!({"scoring_config": scoring})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("scoring_config[0].kind"),
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unsandboxed"),
        "{}",
        got.1
    );
    let (s, _) = server
        .call(
            Method::PUT,
            "/api/v1/admin/settings",
            Some(&f.admin),
            Some(json!({"allow_python_scorers": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let bad = json!([{"kind": "python", "code": "def score(:\n"}]);
    assert_error(
        &server
            .call(
                Method::PUT,
                &base,
                Some(&f.admin),
                Some(json!({"scoring_config": bad})),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("scoring_config[0].code"),
    );
    let (s, _) = server
        .call(
            Method::PUT,
            &base,
            Some(&f.admin),
            Some(json!({"scoring_config": scoring})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, batch) = post(
        &server,
        &f.admin,
        "/api/v1/runs",
        json!({"experiment_id": f.experiment, "items": [0],
        "stages": [{"model": "sim-large", "params": {"temperature": 0.2}}]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{batch}");
    let (_, detail) = server
        .get(
            &format!("/api/v1/runs/{}", batch["runs"][0]["id"].as_str().unwrap()),
            Some(&f.admin),
        )
        .await;
    let py = &detail["scores"][0];
    assert!(
        py["value"].is_number() && py["metadata"]["metadata"]["n"].is_number(),
        "{detail}"
    );
    server.stop().await;
}
