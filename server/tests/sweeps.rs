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
    // Generous: a flaky endpoint's 429s slow its sweep down (the pace learns from them).
    let deadline = Instant::now() + Duration::from_secs(180);
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
        // Run ids are time-ordered (UUIDv7) in planning order: by id, each configuration's runs
        // follow its items (index pages keyed by run id then fill in order).
        let mut by_id = all.clone();
        by_id.sort_by_key(|r| r["id"].as_str().unwrap().to_owned());
        let mut last: std::collections::HashMap<String, i64> = Default::default();
        for r in &by_id {
            assert_eq!(&r["id"].as_str().unwrap()[14..15], "7", "a UUIDv7: {r}");
            let item = r["item_index"].as_i64().unwrap();
            let prev = last.insert(r["config_key"].as_str().unwrap().to_owned(), item);
            assert!(prev.is_none_or(|p| p < item), "planning order: {by_id:?}");
        }
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
        // Ranges are sampled continuously (snapped to the step), within bounds.
        let ranged = json!({"strategy": {"kind": "random", "samples": 5, "seed": 11}, "items": [2],
            "parameter_space": {"stages": [{"params": {"temperature": {"min": 0.2, "max": 0.6, "step": 0.05}}}]}});
        let (s, preview) = post(
            &server,
            &f.admin,
            &format!("{sweep_path}/preview"),
            ranged.clone(),
        )
        .await;
        assert_eq!(
            (s, &preview["seed"], &preview["runs"]),
            (StatusCode::OK, &json!(11), &json!(5)),
            "{preview}"
        );
        let (s, third) = post(&server, &f.admin, &sweep_path, ranged).await;
        assert_eq!(s, StatusCode::CREATED, "{third}");
        wait_sweep(&server, &f, "ranged completion", |s| {
            s["status"] == "completed"
        })
        .await;
        let ranged_runs: Vec<Value> = runs(&server, &f)
            .await
            .into_iter()
            .filter(|r| r["sweep_id"] == third["id"])
            .collect();
        assert_eq!(
            ranged_runs.len() as i64,
            third["progress"]["total"].as_i64().unwrap()
        );
        for r in &ranged_runs {
            let t = r["config"]["stages"][0]["params"]["temperature"]
                .as_f64()
                .unwrap();
            assert!(
                (0.2..=0.6).contains(&t)
                    && ((t - 0.2) / 0.05 - ((t - 0.2) / 0.05).round()).abs() < 1e-6,
                "{t}"
            );
        }
        let (_, list) = server
            .get(
                &format!("/api/v1/experiments/{}/sweeps", f.experiment),
                Some(&f.admin),
            )
            .await;
        assert_eq!(list["total"], 5, "{list}");
        // The periodic clean-up of finished lane jobs runs on this backend.
        engine::jobs::clean_up(&server.state.core.db).await.unwrap();
        let (_, health) = server.get("/health", None).await;
        assert!(
            health["queue"]["lanes"]["Done"].as_i64().unwrap() >= 1,
            "{health}"
        );
        server.stop().await;
    }
}

/// A sweep that runs long enough to steer: the mock answers after `latency_ms`, and the
/// server runs 2 at a time.
async fn slow_server(
    database: engine::testing::TestDatabase,
    latency_ms: u64,
    extra: &[&str],
) -> (TestServer, Mock, Fixture) {
    let mut args = vec!["--seed-demo", "false", "--max-concurrent-runs", "2"];
    args.extend_from_slice(extra);
    let server = TestServer::start_with(database, &args).await;
    let mock = Mock::start(MockConfig {
        latency_ms,
        ..MockConfig::default()
    })
    .await;
    let f = fixture(&server, &mock, 5000).await;
    (server, mock, f)
}

fn progress(sweep: &Value, key: &str) -> i64 {
    sweep["progress"][key].as_i64().unwrap()
}

#[tokio::test]
async fn bad_sweep_requests_name_the_field_and_change_nothing() {
    let (server, mock, f) = slow_server(engine::testing::TestDatabase::sqlite(), 300, &[]).await;
    let path = format!("/api/v1/experiments/{}/sweep", f.experiment);
    for (body, field) in [
        (json!({"strategy": {"kind": "guided"}}), "strategy"),
        (json!({"strategy": {"kind": "random"}}), "strategy"),
        (
            json!({"strategy": {"kind": "random", "samples": 0}}),
            "strategy.samples",
        ),
        (
            json!({"strategy": {"kind": "grid"}, "repeats": 0}),
            "repeats",
        ),
        (
            json!({"strategy": {"kind": "grid"}, "repeats": 101}),
            "repeats",
        ),
        (json!({"strategy": {"kind": "grid"}, "items": [9]}), "items"),
        (json!({"strategy": {"kind": "grid"}, "items": []}), "items"),
        (
            json!({"strategy": {"kind": "grid"}, "budget": {"max_tokens": 0}}),
            "budget.max_tokens",
        ),
        (
            json!({"strategy": {"kind": "grid"}, "budget": {"max_cost": -1.0}}),
            "budget.max_cost",
        ),
        (
            json!({"strategy": {"kind": "grid"}, "budget": {"max_dollars": 1}}),
            "budget",
        ),
        (
            json!({"strategy": {"kind": "grid"}, "parameter_space": {"stages": [{"params": {"temperature": {"min": 0.1, "max": 0.9}}}]}}),
            "parameter_space",
        ),
        (
            json!({"strategy": {"kind": "grid"}, "parameter_space": {"stages": [{"prompts": [{"name": "x", "user": "{{ input.nope }}"}]}]}}),
            "parameter_space",
        ),
        (
            json!({"strategy": {"kind": "grid"}, "surprise": true}),
            "surprise",
        ),
    ] {
        for suffix in ["", "/preview"] {
            let got = post(&server, &f.admin, &format!("{path}{suffix}"), body.clone()).await;
            assert!(got.0.is_client_error(), "{body}: {got:?}");
            let named = got.1["error"]["field"].as_str().unwrap_or_default();
            assert!(
                named.starts_with(field),
                "{body} should name {field}: {}",
                got.1
            );
        }
    }
    let unknown = format!("/api/v1/experiments/{}/sweep", uuid::Uuid::new_v4());
    let got = post(
        &server,
        &f.admin,
        &unknown,
        json!({"strategy": {"kind": "grid"}}),
    )
    .await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{got:?}");
    let (_, list) = server
        .get(
            &format!("/api/v1/experiments/{}/sweeps", f.experiment),
            Some(&f.admin),
        )
        .await;
    assert_eq!(list["total"], 0, "nothing was created: {list}");
    assert_eq!(runs(&server, &f).await.len(), 0);
    // Steering without a sweep is a conflict; a guest cannot steer at all.
    for action in ["pause", "resume", "stop"] {
        let got = post(
            &server,
            &f.admin,
            &format!("/api/v1/experiments/{}/{action}", f.experiment),
            json!({}),
        )
        .await;
        assert_error(&got, StatusCode::CONFLICT, Some("experiment"));
    }
    // A second sweep while one is active is refused.
    let (s, _) = post(
        &server,
        &f.admin,
        &path,
        json!({"strategy": {"kind": "grid"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let got = post(
        &server,
        &f.admin,
        &path,
        json!({"strategy": {"kind": "grid"}}),
    )
    .await;
    assert_error(&got, StatusCode::CONFLICT, Some("experiment"));
    let got = post(
        &server,
        &f.admin,
        &format!("/api/v1/experiments/{}/resume", f.experiment),
        json!({"budget": {"max_tokens": "lots"}}),
    )
    .await;
    assert!(got.0.is_client_error(), "{got:?}");
    // While it runs, its items and stages stay as they are (the space may change: redirect).
    let got = server
        .call(
            Method::PUT,
            &format!("/api/v1/experiments/{}", f.experiment),
            Some(&f.admin),
            Some(json!({"sample_data": [{"input": {"text": "other"}}]})),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, Some("sample_data"));
    let (_, health) = server.get("/health", None).await;
    let queue = &health["queue"];
    assert!(
        queue["runs_pending"].as_i64().unwrap() + queue["runs_running"].as_i64().unwrap() > 0,
        "{health}"
    );
    assert_eq!(
        (&queue["sweeps_running"], &queue["processes"]["serve"]),
        (&json!(1), &json!(1)),
        "{health}"
    );
    assert_eq!(queue["max_concurrent_runs"], 2, "{health}");
    post(
        &server,
        &f.admin,
        &format!("/api/v1/experiments/{}/stop", f.experiment),
        json!({}),
    )
    .await;
    let got = server
        .call(
            Method::PUT,
            &format!("/api/v1/experiments/{}", f.experiment),
            Some(&f.admin),
            Some(json!({"sample_data": [{"input": {"text": "other"}}]})),
        )
        .await;
    assert_eq!(got.0, StatusCode::OK, "after the stop: {got:?}");
    drop(mock);
    server.stop().await;
}

#[tokio::test]
async fn pause_resume_stop_and_redirect_steer_a_running_sweep() {
    for database in engine::testing::TestDatabase::all().await {
        steer(database).await;
    }
}

async fn steer(database: engine::testing::TestDatabase) {
    let (server, mock, f) = slow_server(database, 150, &[]).await;
    let base = format!("/api/v1/experiments/{}", f.experiment);
    let (s, sweep) = post(
        &server,
        &f.admin,
        &format!("{base}/sweep"),
        json!({"strategy": {"kind": "grid"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sweep}");
    wait_sweep(&server, &f, "two runs", |s| progress(s, "done") >= 2).await;

    // Pause: calls in flight finish, nothing new starts.
    let (s, paused) = post(&server, &f.admin, &format!("{base}/pause"), json!({})).await;
    assert_eq!(
        (s, &paused["status"], &paused["pause_reason"]),
        (StatusCode::OK, &json!("paused"), &json!("manual")),
        "{paused}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let settled = mock.state.chat_requests();
    let (_, running) = server
        .get(&format!("{base}/runs?status=running"), Some(&f.admin))
        .await;
    assert_eq!(running["total"], 0, "in-flight runs finished: {running}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        mock.state.chat_requests(),
        settled,
        "no call starts while paused"
    );
    let (_, experiment) = server.get(&base, Some(&f.admin)).await;
    assert_eq!(experiment["status"], "paused");
    let got = post(&server, &f.admin, &format!("{base}/pause"), json!({})).await;
    assert_error(&got, StatusCode::CONFLICT, Some("experiment"));

    // Resume: it runs to the end; every run exactly once.
    let (s, resumed) = post(&server, &f.admin, &format!("{base}/resume"), json!({})).await;
    assert_eq!(
        (s, &resumed["status"]),
        (StatusCode::OK, &json!("running")),
        "{resumed}"
    );
    let done = wait_sweep(&server, &f, "completion", |s| s["status"] == "completed").await;
    assert_eq!(
        (progress(&done, "done"), progress(&done, "completed")),
        (24, 24),
        "{done}"
    );
    assert_eq!(mock.state.chat_requests(), 24);
    let timeline = events(&server, &f, "&type=experiment.paused,experiment.resumed").await;
    assert_eq!(timeline.len(), 2, "{timeline:?}");
    assert_eq!(timeline[1]["payload"]["reason"], "manual");

    // Stop: unstarted runs are dropped; the runs in flight end normally.
    let fresh = json!({"strategy": {"kind": "grid"}, "parameter_space": {"stages": [{"params": {"temperature": [0.21, 0.22, 0.23, 0.24]}}]}});
    let (s, second) = post(&server, &f.admin, &format!("{base}/sweep"), fresh).await;
    assert_eq!(
        (s, progress(&second, "total")),
        (StatusCode::CREATED, 16),
        "{second}"
    );
    wait_sweep(&server, &f, "two runs", |s| progress(s, "done") >= 2).await;
    let (s, stopped) = post(&server, &f.admin, &format!("{base}/stop"), json!({})).await;
    assert_eq!(
        (s, &stopped["status"]),
        (StatusCode::OK, &json!("stopped")),
        "{stopped}"
    );
    assert!(progress(&stopped, "skipped") > 0, "{stopped}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, after) = server
        .get(
            &format!("/api/v1/sweeps/{}", second["id"].as_str().unwrap()),
            Some(&f.admin),
        )
        .await;
    assert_eq!(after["status"], "stopped");
    assert_eq!(
        progress(&after, "done"),
        progress(&after, "total"),
        "what was not dropped ended: {after}"
    );
    assert_eq!(
        progress(&after, "total") + progress(&after, "skipped"),
        16,
        "{after}"
    );
    let (_, pending) = server
        .get(&format!("{base}/runs?status=pending"), Some(&f.admin))
        .await;
    assert_eq!(pending["total"], 0, "{pending}");

    // Redirect: the rest of a running sweep takes a new space; what ran is kept.
    let third = json!({"strategy": {"kind": "grid"}, "parameter_space": {"stages": [{"params": {"temperature": [0.31, 0.32, 0.33, 0.34, 0.35]}}]}});
    let (s, third) = post(&server, &f.admin, &format!("{base}/sweep"), third).await;
    assert_eq!(s, StatusCode::CREATED, "{third}");
    wait_sweep(&server, &f, "two runs", |s| progress(s, "done") >= 2).await;
    let (s, redirected) = post(
        &server,
        &f.admin,
        &format!("{base}/redirect"),
        json!({"parameter_space": {"stages": [{"params": {"temperature": [0.77]}}]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{redirected}");
    assert_eq!(
        redirected["parameter_space"]["stages"][0]["params"]["temperature"],
        json!([0.77])
    );
    let done = wait_sweep(&server, &f, "redirected completion", |s| {
        s["status"] == "completed"
    })
    .await;
    let (_, page) = server
        .get(&format!("{base}/runs?limit=1000"), Some(&f.admin))
        .await;
    let of_third: Vec<&Value> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["sweep_id"] == third["id"])
        .collect();
    assert_eq!(of_third.len() as i64, progress(&done, "total"), "{done}");
    let temps: Vec<f64> = of_third
        .iter()
        .map(|r| {
            r["config"]["stages"][0]["params"]["temperature"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        temps.iter().filter(|t| **t == 0.77).count(),
        4,
        "the new space over every item: {temps:?}"
    );
    assert!(
        temps
            .iter()
            .all(|t| *t == 0.77 || (0.31..=0.35).contains(t)),
        "{temps:?}"
    );
    assert!(of_third.iter().all(|r| r["status"] == "completed"));
    let redirect_event = events(&server, &f, "&type=experiment.redirected").await;
    assert_eq!(redirect_event.len(), 1);
    assert!(
        redirect_event[0]["payload"]["dropped"].as_i64().unwrap() > 0,
        "{redirect_event:?}"
    );
    // Redirecting with a bad space changes nothing.
    let got = post(
        &server,
        &f.admin,
        &format!("{base}/redirect"),
        json!({"parameter_space": {"stages": [{"params": {"temperature": [9.0]}}]}}),
    )
    .await;
    assert!(got.0.is_client_error(), "{got:?}");
    server.stop().await;
}

#[tokio::test]
async fn fork_approve_and_reject_act_on_configurations() {
    let (server, _mock, f) = slow_server(engine::testing::TestDatabase::sqlite(), 0, &[]).await;
    let base = format!("/api/v1/experiments/{}", f.experiment);
    post(
        &server,
        &f.admin,
        &format!("{base}/sweep"),
        json!({"strategy": {"kind": "grid"}}),
    )
    .await;
    wait_sweep(&server, &f, "completion", |s| s["status"] == "completed").await;
    let all = runs(&server, &f).await;
    let run = all
        .iter()
        .find(|r| r["config"]["stages"][0]["variant"] == "polite")
        .unwrap();
    let run_id = run["id"].as_str().unwrap();

    let (s, fork) = post(&server, &f.admin, &format!("{base}/fork"), json!({
        "run_id": run_id, "name": "polite, cooler", "stages": [{"params": {"temperature": 0.05}}]
    })).await;
    assert_eq!(s, StatusCode::CREATED, "{fork}");
    let stage = &fork["pipeline_stages"][0];
    assert_eq!(
        stage["system"], "Please list the entities.",
        "the run's prompt: {fork}"
    );
    assert_eq!(
        stage["params"]["temperature"], 0.05,
        "with the modification: {fork}"
    );
    assert_eq!(fork["items"]["count"].as_i64().unwrap() as usize, 4);
    assert_eq!(fork["status"], "draft");
    let got = post(
        &server,
        &f.admin,
        &format!("{base}/fork"),
        json!({"run_id": uuid::Uuid::new_v4()}),
    )
    .await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("run_id"));
    let got = post(
        &server,
        &f.admin,
        &format!("{base}/fork"),
        json!({"run_id": run_id, "name": "polite, cooler"}),
    )
    .await;
    assert_error(&got, StatusCode::CONFLICT, Some("name"));
    assert_eq!(
        events(&server, &f, "&type=experiment.forked").await.len(),
        1
    );

    let (s, approved) = post(
        &server,
        &f.admin,
        &format!("/api/v1/runs/{run_id}/approve"),
        json!({"note": "good enough"}),
    )
    .await;
    assert_eq!(
        (s, &approved["mark"], &approved["config_key"]),
        (StatusCode::OK, &json!("approved"), &run["config_key"]),
        "{approved}"
    );
    let other = all
        .iter()
        .find(|r| r["config_key"] != run["config_key"])
        .unwrap();
    let other_id = other["id"].as_str().unwrap();
    let (s, _) = server
        .call(
            Method::POST,
            &format!("/api/v1/runs/{other_id}/reject"),
            Some(&f.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "an empty body is fine");
    let (_, marks) = server.get(&format!("{base}/marks"), Some(&f.admin)).await;
    let marks = marks.as_array().unwrap();
    assert_eq!(marks.len(), 2);
    assert!(marks.iter().any(|m| m["mark"] == "rejected"
        && m["config_key"] == other["config_key"]
        && m["config"].is_object()));
    let (s, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v1/runs/{other_id}/mark"),
            Some(&f.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v1/runs/{other_id}/mark"),
            Some(&f.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let got = post(
        &server,
        &f.admin,
        &format!("/api/v1/runs/{run_id}/approve"),
        json!({"note": 5}),
    )
    .await;
    assert!(got.0.is_client_error(), "{got:?}");
    let timeline = events(
        &server,
        &f,
        "&type=configuration.approved,configuration.rejected",
    )
    .await;
    assert_eq!(timeline.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_budget_pauses_the_sweep_within_the_calls_in_flight() {
    for database in engine::testing::TestDatabase::all().await {
        budget(database).await;
    }
}

async fn budget(database: engine::testing::TestDatabase) {
    let (server, mock, f) = slow_server(database, 40, &["--max-tokens-per-sweep", "1000000"]).await;
    let base = format!("/api/v1/experiments/{}", f.experiment);
    // What one call costs in tokens, from an ad-hoc run.
    let (s, batch) = post(
        &server,
        &f.admin,
        "/api/v1/runs",
        json!({"experiment_id": f.experiment, "items": [0]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{batch}");
    let per_call = batch["tokens_in"].as_i64().unwrap() + batch["tokens_out"].as_i64().unwrap();
    let budget = per_call * 5;
    let (s, sweep) = post(
        &server,
        &f.admin,
        &format!("{base}/sweep"),
        json!({
            "strategy": {"kind": "grid"}, "budget": {"max_tokens": budget}
        }),
    )
    .await;
    assert_eq!(
        (s, &sweep["max_tokens"]),
        (StatusCode::CREATED, &json!(budget)),
        "{sweep}"
    );
    let paused = wait_sweep(&server, &f, "the budget pause", |s| s["status"] == "paused").await;
    assert_eq!(paused["pause_reason"], "budget", "{paused}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, settled) = server
        .get(
            &format!("/api/v1/sweeps/{}", sweep["id"].as_str().unwrap()),
            Some(&f.admin),
        )
        .await;
    let spent = progress(&settled, "tokens_in") + progress(&settled, "tokens_out");
    let calls = progress(&settled, "calls");
    assert!(spent >= budget, "{settled}");
    // Calls are similar in size: at most the calls needed, plus the 2 in flight when it hit.
    assert!(
        calls <= 5 + 2 + 1,
        "overshoot beyond the calls in flight: {settled}"
    );
    assert_eq!(mock.state.chat_requests() as i64, 1 + calls, "{settled}");
    let exhausted = events(&server, &f, "&type=budget.exhausted").await;
    assert_eq!(exhausted.len(), 1);
    assert!(
        exhausted[0]["payload"]["token_count"].as_i64().unwrap() >= budget,
        "{exhausted:?}"
    );
    let paused_events = events(&server, &f, "&type=experiment.paused").await;
    assert_eq!(paused_events[0]["payload"]["reason"], "budget");

    // Resuming without more budget is refused; with more, the sweep finishes.
    let got = post(&server, &f.admin, &format!("{base}/resume"), json!({})).await;
    assert_error(&got, StatusCode::CONFLICT, Some("budget"));
    let (s, resumed) = post(
        &server,
        &f.admin,
        &format!("{base}/resume"),
        json!({"budget": {"max_tokens": 10_000_000}}),
    )
    .await;
    assert_eq!(
        (s, &resumed["max_tokens"]),
        (StatusCode::OK, &json!(1_000_000)),
        "MAX_TOKENS_PER_SWEEP caps it: {resumed}"
    );
    let done = wait_sweep(&server, &f, "completion", |s| s["status"] == "completed").await;
    assert_eq!(progress(&done, "done"), 24);
    server.stop().await;
}

#[tokio::test]
async fn a_flaky_endpoint_still_ends_every_run_exactly_once() {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let mock = Mock::start(MockConfig {
        fail_rate: 0.3,
        ..MockConfig::default()
    })
    .await;
    // Short timeouts: the mock's "hang" failures cost 300 ms, not 30 s.
    let f = fixture(&server, &mock, 300).await;
    let base = format!("/api/v1/experiments/{}", f.experiment);
    post(
        &server,
        &f.admin,
        &format!("{base}/sweep"),
        json!({"strategy": {"kind": "grid"}, "repeats": 2}),
    )
    .await;
    let done = wait_sweep(&server, &f, "completion", |s| s["status"] == "completed").await;
    let p = &done["progress"];
    assert_eq!(p["done"], 48, "{done}");
    assert_eq!(
        progress(&done, "completed") + progress(&done, "failed"),
        48,
        "{done}"
    );
    let all = runs(&server, &f).await;
    assert_eq!(all.len(), 48, "no run lost or duplicated");
    let hashes: std::collections::HashSet<&str> = all
        .iter()
        .map(|r| r["config_hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes.len(), 48);
    for r in &all {
        match r["status"].as_str().unwrap() {
            "completed" => assert!(r["error"].is_null()),
            "failed" => assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}"),
            other => panic!("run ended {other}: {r}"),
        }
    }
    assert!(mock.state.chat_requests() > 48, "failures were retried");
    let failed = events(&server, &f, "&type=run.failed").await;
    assert_eq!(failed.len() as i64, progress(&done, "failed"));
    server.stop().await;
}

/// Reads SSE messages (`data:` lines) until `until` says stop.
async fn read_sse(res: reqwest::Response, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    use futures::StreamExt;
    let mut body = res.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, body.next()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            for line in message.lines() {
                if let Some(data) = line.strip_prefix("data:") {
                    let event: Value = serde_json::from_str(data.trim()).unwrap();
                    let stop = until(&event);
                    out.push(event);
                    if stop {
                        return out;
                    }
                }
            }
        }
    }
    panic!("the stream ended early after {} events: {out:?}", out.len());
}

#[tokio::test]
async fn live_events_reach_sse_and_websocket_subscribers() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    for server in TestServer::all().await {
        let mock = Mock::start(MockConfig::default()).await;
        let f = fixture(&server, &mock, 5000).await;
        let base = format!("/api/v1/experiments/{}", f.experiment);
        let sse = TestServer::client()
            .get(format!("{}{base}/events/stream", server.url))
            .bearer_auth(&f.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(sse.status(), StatusCode::OK);
        assert!(
            sse.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let filtered = TestServer::client()
            .get(format!(
                "{}/api/v1/events/stream?type=experiment.completed",
                server.url
            ))
            .bearer_auth(&f.admin)
            .send()
            .await
            .unwrap();
        let ws_url = format!("{}/ws/dashboard", server.url.replacen("http", "ws", 1));
        let mut request = ws_url.into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", f.admin).parse().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let anonymous = format!(
            "{}/ws/experiments/{}",
            server.url.replacen("http", "ws", 1),
            f.experiment
        );
        assert!(
            tokio_tungstenite::connect_async(anonymous).await.is_err(),
            "streams need auth"
        );

        post(
            &server,
            &f.admin,
            &format!("{base}/sweep"),
            json!({"strategy": {"kind": "grid"}, "items": [0]}),
        )
        .await;
        let is_end = |e: &Value| e["type"] == "experiment.completed";
        let over_sse = read_sse(sse, is_end).await;
        assert_eq!(over_sse[0]["type"], "experiment.started", "{over_sse:?}");
        assert_eq!(count(&over_sse, "run.completed"), 6);
        assert_eq!(count(&over_sse, "run.started"), 6);
        let only = read_sse(filtered, is_end).await;
        assert_eq!(only.len(), 1, "the type filter applies: {only:?}");

        let mut over_ws = Vec::new();
        while let Some(msg) = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap()
        {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = msg.unwrap() {
                let event: Value = serde_json::from_str(&text).unwrap();
                let end = is_end(&event);
                over_ws.push(event);
                if end {
                    break;
                }
            }
        }
        let ids = |v: &[Value]| {
            v.iter()
                .map(|e| e["id"].as_i64().unwrap())
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(
            ids(&over_ws),
            ids(&over_sse),
            "the same events on both transports"
        );
        let last = over_sse
            .iter()
            .rev()
            .find(|e| e["type"] == "run.completed")
            .unwrap();
        assert_eq!(last["payload"]["progress"]["total"], 6, "{last}");

        // Reconnecting with Last-Event-ID replays what came after it.
        let resume_from = over_sse[3]["id"].as_i64().unwrap();
        let replay = TestServer::client()
            .get(format!("{}{base}/events/stream", server.url))
            .bearer_auth(&f.admin)
            .header("last-event-id", resume_from.to_string())
            .send()
            .await
            .unwrap();
        let replayed = read_sse(replay, is_end).await;
        assert_eq!(
            replayed.first().unwrap()["id"].as_i64().unwrap(),
            over_sse[4]["id"].as_i64().unwrap()
        );
        assert_eq!(replayed.len(), over_sse.len() - 4);
        server.stop().await;
    }
}

fn item_path(f: &Fixture, rest: &str) -> String {
    format!("/api/v1/experiments/{}/items{rest}", f.experiment)
}

async fn summary(server: &TestServer, f: &Fixture) -> Value {
    let (s, e) = server
        .get(
            &format!("/api/v1/experiments/{}", f.experiment),
            Some(&f.admin),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert!(
        e.get("sample_data").is_none(),
        "no items in the experiment: {e}"
    );
    e["items"].clone()
}

#[tokio::test]
async fn items_are_paged_edited_and_only_an_edited_items_runs_run_again() {
    for server in TestServer::all().await {
        let mock = Mock::start(MockConfig::default()).await;
        let f = fixture(&server, &mock, 5000).await;
        let sweep_path = format!("/api/v1/experiments/{}/sweep", f.experiment);
        let grid = json!({"strategy": {"kind": "grid"}});
        let (s, _) = post(&server, &f.admin, &sweep_path, grid.clone()).await;
        assert_eq!(s, StatusCode::CREATED);
        wait_sweep(&server, &f, "completion", |s| s["status"] == "completed").await;
        assert_eq!(mock.state.chat_requests(), 24);

        let items = summary(&server, &f).await;
        assert_eq!(
            (&items["count"], &items["fields"], &items["common_fields"]),
            (&json!(4), &json!(["text"]), &json!(["text"])),
            "{items}"
        );
        let version = items["version"].as_i64().unwrap();
        let (s, page) = server
            .get(&item_path(&f, "?limit=2&offset=1"), Some(&f.admin))
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(
            (&page["total"], page["items"].as_array().unwrap().len()),
            (&json!(4), 2)
        );
        assert_eq!(
            page["items"][0]["input"]["text"],
            "Item 1: Ada Lovelace in London"
        );
        let edited = page["items"][0]["id"].as_str().unwrap().to_owned();
        let before: Vec<Value> = runs(&server, &f).await;
        assert!(
            before
                .iter()
                .all(|r| r["item_id"].as_str().is_some_and(|i| !i.is_empty()))
        );

        // Editing one item's input: a new version; the next sweep runs only that item again.
        let (s, changed) = server
            .call(
                Method::PUT,
                &item_path(&f, &format!("/{edited}")),
                Some(&f.admin),
                Some(json!({"input": {"text": "Item 1: Grace Hopper in Arlington"}, "tags": ["hard"]})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{changed}");
        assert_eq!(changed["summary"]["version"], version + 1, "{changed}");
        assert_eq!(changed["items"][0]["id"], edited.as_str());
        let (s, sweep) = post(&server, &f.admin, &sweep_path, grid.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{sweep}");
        let done = wait_sweep(&server, &f, "the second sweep", |s| {
            s["status"] == "completed"
        })
        .await;
        assert_eq!(
            mock.state.chat_requests(),
            24 + 6,
            "only the edited item's 6 runs: {done}"
        );
        assert_eq!(done["progress"]["cached"], 18, "{done}");
        let (_, tagged) = server
            .get(&item_path(&f, "?tag=hard"), Some(&f.admin))
            .await;
        assert_eq!(tagged["total"], 1, "{tagged}");
        assert_eq!(tagged["items"][0]["id"], edited.as_str());

        // Bad items are refused, naming the field, and change nothing.
        let version = summary(&server, &f).await["version"].as_i64().unwrap();
        for (body, field) in [
            (
                json!({"items": [{"id": edited, "input": {"text": "dup"}}]}),
                "items[0].id",
            ),
            (
                json!({"items": [{"input": {"text": "a"}}, {"input": {"bad name": "b"}}]}),
                "items[1].input",
            ),
            (json!({"items": [{"input": {"other": "x"}}]}), "items"),
            (
                json!({"items": [{"input": {"text": "x"}, "tags": [""]}]}),
                "items[0].tags",
            ),
            (json!({"items": []}), "items"),
        ] {
            let got = server
                .call(Method::POST, &item_path(&f, ""), Some(&f.admin), Some(body))
                .await;
            assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
        }
        let rejected = TestServer::client()
            .post(format!(
                "{}/api/v1/experiments/{}/samples",
                server.url, f.experiment
            ))
            .bearer_auth(&f.admin)
            .header("content-type", "text/csv")
            .body("text,reference\nfine,x\n\"broken,y\n")
            .send()
            .await
            .unwrap();
        assert_eq!(rejected.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let after = summary(&server, &f).await;
        assert_eq!(
            (&after["version"], &after["count"]),
            (&json!(version), &json!(4)),
            "{after}"
        );
        let got = server
            .call(
                Method::DELETE,
                &item_path(&f, "/no-such-item"),
                Some(&f.admin),
                None,
            )
            .await;
        assert_eq!(got.0, StatusCode::NOT_FOUND, "{got:?}");

        // Append, delete, export.
        let (s, added) = server
            .call(Method::POST, &item_path(&f, ""), Some(&f.admin), Some(json!({"items": [
                {"id": "extra", "input": {"text": "Katherine Johnson at NASA", "topic": "space"},
                 "reference": "Katherine Johnson, NASA", "split": "test"}
            ]})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{added}");
        assert_eq!(added["summary"]["count"], 5);
        assert_eq!(added["summary"]["fields"], json!(["text", "topic"]));
        assert_eq!(added["summary"]["common_fields"], json!(["text"]));
        let (_, test_split) = server
            .get(&item_path(&f, "?split=test"), Some(&f.admin))
            .await;
        assert_eq!(test_split["total"], 1);
        let (s, _) = server
            .call(
                Method::DELETE,
                &item_path(&f, &format!("/{edited}")),
                Some(&f.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let csv = TestServer::client()
            .get(format!(
                "{}{}",
                server.url,
                item_path(&f, "/export?format=csv")
            ))
            .bearer_auth(&f.admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "id,text,topic,reference,split,tags", "{csv}");
        assert_eq!(lines.len(), 5, "{csv}");
        assert!(
            lines[4].starts_with("extra,Katherine Johnson at NASA,space,"),
            "{csv}"
        );
        let jsonl = TestServer::client()
            .get(format!(
                "{}{}",
                server.url,
                item_path(&f, "/export?format=jsonl")
            ))
            .bearer_auth(&f.admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(jsonl.lines().count(), 4, "{jsonl}");
        let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert_eq!(first["input"]["text"], "Item 0: Ada Lovelace in London");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_request_for_a_person_is_an_event_and_bad_ones_name_the_field() {
    for database in engine::testing::TestDatabase::all().await {
        let server = TestServer::start(database).await;
        let mock = Mock::start(MockConfig::default()).await;
        let f = fixture(&server, &mock, 5000).await;
        let path = format!("/api/v1/experiments/{}/human-needed", f.experiment);
        let guest = server.user_token(&f.admin, "gus", "guest").await;
        let bad = [
            (json!({"reason": "   "}), "reason"),
            (json!({"reason": "x".repeat(2001)}), "reason"),
            (
                json!({"reason": "look", "context": {"blob": "y".repeat(70 * 1024)}}),
                "context",
            ),
        ];
        for (body, field) in bad {
            let got = post(&server, &f.admin, &path, body).await;
            assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
        }
        let got = post(
            &server,
            &f.admin,
            &path,
            json!({"reason": "look", "colour": "red"}),
        )
        .await;
        assert_error(&got, StatusCode::BAD_REQUEST, Some("colour"));
        let got = post(&server, &guest, &path, json!({"reason": "look"})).await;
        assert_eq!(got.0, StatusCode::FORBIDDEN, "{}", got.1);
        let missing = post(
            &server,
            &f.admin,
            "/api/v1/experiments/00000000-0000-0000-0000-000000000000/human-needed",
            json!({"reason": "look"}),
        )
        .await;
        assert_eq!(missing.0, StatusCode::NOT_FOUND, "{}", missing.1);
        assert!(events(&server, &f, "&type=human_needed").await.is_empty());

        let (s, event) = post(
            &server,
            &f.admin,
            &path,
            json!({"reason": "Scores and ratings disagree.", "context": {"runs": 3}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{event}");
        assert_eq!(event["type"], "human_needed");
        assert_eq!(event["payload"]["reason"], "Scores and ratings disagree.");
        assert_eq!(event["payload"]["context"]["runs"], 3);
        assert_eq!(event["payload"]["requested_by"], "admin");
        let listed = events(&server, &f, "&type=human_needed").await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["id"], event["id"]);
        drop(mock);
        server.stop().await;
    }
}
