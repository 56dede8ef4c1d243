//! Races and limits found by using the product hard, on SQLite and PostgreSQL: leaderboard
//! reads racing each other right after a change of weights, two admins demoting each other
//! at once, sign-ins for usernames that do not exist, and event retention.

mod common;

use std::sync::atomic::AtomicBool;

use common::story::{basics, extraction, post, put, sweep_to_the_end};
use common::{STATIC_KEY, TestServer, assert_error};
use engine::DbKind;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Two scorers; only one of them weighs in the score at a time.
fn scoring(length_weight: u32, year_weight: u32) -> Value {
    json!([
        {"kind": "length", "name": "len", "unit": "words", "max": 30, "weight": length_weight},
        {"kind": "format", "name": "year", "format": "regex", "pattern": "\\d{4}", "weight": year_weight},
    ])
}

/// Every entry's score is its `scorer`'s mean (the only scorer with weight).
fn stale_entries(board: &Value, scorer: &str) -> Vec<String> {
    board["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let mean = e["scorers"][scorer]["mean"].as_f64();
            let score = e["score"].as_f64();
            match (mean, score) {
                (Some(m), Some(s)) => (m - s).abs() > 1e-9,
                (m, s) => m.is_some() != s.is_some(),
            }
        })
        .map(|e| {
            format!(
                "{} score {} vs {scorer} {}",
                e["label"], e["score"], e["scorers"][scorer]["mean"]
            )
        })
        .collect()
}

#[tokio::test]
async fn a_leaderboard_read_never_shows_a_summary_older_than_what_was_committed_before_it() {
    for server in TestServer::all().await {
        let (admin, endpoint, project) = basics(&server).await;
        let id = extraction(&server, &admin, &endpoint, &project, scoring(1, 0)).await;
        sweep_to_the_end(&server, &admin, &id).await;
        let path = format!("/api/v1/experiments/{id}");
        let board_path = format!("{path}/leaderboard?limit=100");
        let (s, board) = server.get(&board_path, Some(&admin)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(board["total"], 27, "{board}");
        // The two scorers must tell configurations apart, or the check below proves nothing.
        assert!(!stale_entries(&board, "year").is_empty(), "{board}");
        // Flip the weights, then read from 4 clients at once: each read began after the save
        // committed, so each must rank by the new weights (PostgreSQL: 50 times).
        let rounds = if server.database.kind == DbKind::Postgres {
            50
        } else {
            10
        };
        for round in 0..rounds {
            let (weights, scorer) = if round % 2 == 0 {
                ((0, 1), "year")
            } else {
                ((1, 0), "len")
            };
            let (s, saved) = put(
                &server,
                &admin,
                &path,
                json!({"scoring_config": scoring(weights.0, weights.1)}),
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{saved}");
            let reads = (0..4).map(|_| server.get(&board_path, Some(&admin)));
            for (s, board) in futures::future::join_all(reads).await {
                assert_eq!(s, StatusCode::OK, "{board}");
                let stale = stale_entries(&board, scorer);
                assert!(
                    stale.is_empty(),
                    "round {round} on {:?}: {stale:?}",
                    server.database.kind
                );
            }
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    for server in TestServer::all().await {
        let admin = server.setup_admin().await;
        let (_, me) = server.get("/api/v1/auth/me", Some(&admin)).await;
        let first = me["id"]
            .as_str()
            .or(me["user"]["id"].as_str())
            .unwrap()
            .to_owned();
        let (s, second) = post(
            &server,
            &admin,
            "/api/v1/admin/users",
            json!({"username": "second", "password": "a long password", "role": "admin"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{second}");
        let second = second["id"].as_str().unwrap().to_owned();
        for round in 0..20 {
            let server = &server;
            let demote = |id: String| async move {
                server
                    .call(
                        Method::PUT,
                        &format!("/api/v1/admin/users/{id}"),
                        Some(STATIC_KEY),
                        Some(json!({"role": "member"})),
                    )
                    .await
            };
            let (a, b) = tokio::join!(demote(first.clone()), demote(second.clone()));
            let ok = [&a, &b].iter().filter(|r| r.0 == StatusCode::OK).count();
            assert_eq!(
                ok, 1,
                "round {round}: exactly one demotion goes through: {a:?} {b:?}"
            );
            let refused = if a.0 == StatusCode::OK { &b } else { &a };
            assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, Some("role"));
            let (_, users) = server.get("/api/v1/admin/users", Some(STATIC_KEY)).await;
            let admins = users
                .as_array()
                .unwrap()
                .iter()
                .filter(|u| u["role"] == "admin")
                .count();
            assert_eq!(admins, 1, "round {round}: {users}");
            // The last admin cannot be deleted either, and the refusal changes nothing.
            let last = if a.0 == StatusCode::OK {
                &second
            } else {
                &first
            };
            assert_error(
                &server
                    .call(
                        Method::DELETE,
                        &format!("/api/v1/admin/users/{last}"),
                        Some(STATIC_KEY),
                        None,
                    )
                    .await,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("id"),
            );
            // Promote the other one back for the next round.
            let other = if a.0 == StatusCode::OK {
                &first
            } else {
                &second
            };
            let (s, body) = server
                .call(
                    Method::PUT,
                    &format!("/api/v1/admin/users/{other}"),
                    Some(STATIC_KEY),
                    Some(json!({"role": "admin"})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn sign_ins_do_not_tell_whether_an_account_exists() {
    for server in TestServer::all().await {
        server.setup_admin().await;
        let attempt = |username: &'static str, password: &'static str| {
            TestServer::client()
                .post(format!("{}/api/v1/auth/login", server.url))
                .json(&json!({"username": username, "password": password}))
                .send()
        };
        let mut answers: Vec<Vec<(StatusCode, String)>> = Vec::new();
        for username in ["admin", "nobody"] {
            let mut seen = Vec::new();
            for _ in 0..=engine::auth::FREE_ATTEMPTS {
                let res = attempt(username, "wrong password").await.unwrap();
                let status = res.status();
                let retry = res
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body: Value = res.json().await.unwrap();
                seen.push((
                    status,
                    format!("{} retry-after {}", body["error"], retry.is_some()),
                ));
            }
            answers.push(seen);
        }
        assert_eq!(
            answers[0], answers[1],
            "an account and no account answer alike"
        );
        assert_eq!(
            answers[1].last().unwrap().0,
            StatusCode::TOO_MANY_REQUESTS,
            "{answers:?}"
        );
        // Locked means locked, for the right password too.
        let res = attempt("admin", common::ADMIN_PASSWORD).await.unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        server.stop().await;
    }
}

#[tokio::test]
async fn retention_removes_old_per_run_events_and_keeps_experiment_events() {
    for server in TestServer::all().await {
        let (admin, endpoint, project) = basics(&server).await;
        let id = extraction(&server, &admin, &endpoint, &project, scoring(1, 1)).await;
        sweep_to_the_end(&server, &admin, &id).await;
        let count = |types: &'static str| {
            let server = &server;
            let admin = admin.clone();
            let id = id.clone();
            async move {
                let (s, page) = server
                    .get(
                        &format!("/api/v1/experiments/{id}/events?limit=1&type={types}"),
                        Some(&admin),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{page}");
                page["total"].as_i64().unwrap()
            }
        };
        let per_run = "run.started,run.completed,run.cached,run.failed,stage.completed";
        let kept = "experiment.started,experiment.completed,new_best_found";
        let (runs_before, kept_before) = (count(per_run).await, count(kept).await);
        assert!(
            runs_before >= 216 && kept_before >= 2,
            "{runs_before} {kept_before}"
        );
        // Everything is 100 days old; a cut at 90 days removes the per-run events only, in
        // batches of 100.
        let old = chrono::Utc::now() - chrono::Duration::days(100);
        let aged = match &server.state.core.db {
            engine::Db::Sqlite(p) => sqlx::query("UPDATE events SET created_at = $1")
                .bind(old)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            engine::Db::Postgres(p) => sqlx::query("UPDATE events SET created_at = $1")
                .bind(old)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        };
        assert!(aged.unwrap() > 0);
        let cut = chrono::Utc::now() - chrono::Duration::days(90);
        let removed = engine::retention::purge_events(
            &server.state.core.db,
            cut,
            100,
            &AtomicBool::new(false),
        )
        .await
        .unwrap();
        assert_eq!(removed as i64, runs_before);
        assert_eq!(count(per_run).await, 0);
        // (A leader may still be announced after the sweep: experiment events only grow.)
        assert!(count(kept).await >= kept_before);
        // Nothing newer than the cut goes.
        let removed = engine::retention::purge_events(
            &server.state.core.db,
            cut,
            100,
            &AtomicBool::new(false),
        )
        .await
        .unwrap();
        assert_eq!(removed, 0);
        server.stop().await;
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_for_admins_and_the_metrics_token() {
    const TOKEN: &str = "metrics-token-for-the-tests-0123456789";
    for database in engine::testing::TestDatabase::all().await {
        let server = TestServer::start_with(
            database,
            &["--seed-demo", "false", "--metrics-token", TOKEN],
        )
        .await;
        let (admin, endpoint, project) = basics(&server).await;
        let id = extraction(&server, &admin, &endpoint, &project, scoring(1, 1)).await;
        sweep_to_the_end(&server, &admin, &id).await;
        let member = server.user_token(&admin, "mia", "member").await;
        let scrape = |token: Option<&'static str>| {
            let mut req = TestServer::client().get(format!("{}/metrics", server.url));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            async move {
                let res = req.send().await.unwrap();
                let status = res.status();
                let kind = res
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned());
                (status, kind, res.text().await.unwrap())
            }
        };
        assert_eq!(scrape(None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            scrape(Some("not-the-metrics-token-but-long-enough-0000"))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        let (s, body) = server.get("/metrics", Some(&member)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        let (s, kind, text) = scrape(Some(TOKEN)).await;
        assert_eq!(s, StatusCode::OK, "{text}");
        assert!(kind.unwrap().starts_with("text/plain; version=0.0.4"));
        let has = |needle: &str| assert!(text.contains(needle), "no {needle} in:\n{text}");
        has("# TYPE promptlooper_http_requests_total counter");
        has(
            "promptlooper_http_requests_total{method=\"GET\",route=\"/api/v1/sweeps/{id}\",status=\"200\"}",
        );
        has(
            "promptlooper_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/experiments\",le=\"0.5\"}",
        );
        has("promptlooper_llm_calls_total{endpoint=\"sim\",model=\"sim-large\",outcome=\"ok\"}");
        has(
            "promptlooper_llm_call_duration_seconds_bucket{endpoint=\"sim\",model=\"sim-large\",outcome=\"ok\",le=\"1\"}",
        );
        has("promptlooper_llm_tokens_total{endpoint=\"sim\",model=\"sim-large\",kind=\"output\"}");
        has("promptlooper_cache_misses_total");
        has("promptlooper_runs_finished_total{status=\"completed\"}");
        // The database's view is this server's exactly: 216 runs ended, none waiting.
        has("promptlooper_runs{status=\"pending\"} 0\n");
        let ended: f64 = ["completed", "cached", "failed"]
            .iter()
            .map(|s| {
                let line = format!("promptlooper_runs{{status=\"{s}\"}} ");
                let at = text
                    .find(&line)
                    .unwrap_or_else(|| panic!("no {line} in:\n{text}"));
                text[at + line.len()..]
                    .lines()
                    .next()
                    .unwrap()
                    .parse::<f64>()
                    .unwrap()
            })
            .sum();
        assert_eq!(ended, 216.0);
        for gauge in [
            "promptlooper_run_slots ",
            "promptlooper_run_slots_in_use ",
            "promptlooper_run_leases ",
            "promptlooper_sweeps_driven ",
            "promptlooper_event_subscribers ",
            "promptlooper_lane_jobs{",
        ] {
            has(gauge);
        }
        // Ids never become routes, and no secret is in the text.
        assert!(!text.contains(&id), "a raw path leaked into the labels");
        assert!(!text.contains(TOKEN) && !text.contains(common::STATIC_KEY));
        // An admin reads it too.
        let (s, _) = server.get("/metrics", Some(&admin)).await;
        assert_eq!(s, StatusCode::OK);
        server.stop().await;
    }
    // Turned off: 404, whoever asks.
    let server = TestServer::start_with(
        engine::testing::TestDatabase::sqlite(),
        &["--seed-demo", "false", "--metrics-enabled", "false"],
    )
    .await;
    assert_eq!(
        server.get("/metrics", Some(STATIC_KEY)).await.0,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

/// Plants every kind of secret, uses them (calls with the key, a provider that echoes it in an
/// error, webhook deliveries with the header), then reads every GET route of the API document
/// with the ids at hand. The test server searches each body and every log line for them.
#[tokio::test]
async fn planted_secrets_never_come_back_in_any_response_event_or_log_line() {
    use common::mock::Mock;
    use common::sentinels::{ENDPOINT_KEY, HEADER_SECRET};
    use server::mock_llm::{MockConfig, Scripted};
    for server in TestServer::all().await {
        let admin = server.setup_admin().await;
        let mock = Mock::start(MockConfig {
            api_key: Some(ENDPOINT_KEY.into()),
            ..MockConfig::default()
        })
        .await;
        // The provider echoes the key in an error, as some do; then answers normally.
        mock.state.script([Scripted::Status {
            status: 400,
            retry_after: None,
            retry_after_ms: None,
            body: Some(format!(
                "{{\"error\": {{\"message\": \"Incorrect API key provided: {ENDPOINT_KEY}\"}}}}"
            )),
        }]);
        let (s, endpoint) = post(&server, &admin, "/api/v1/endpoints",
            json!({"name": "keyed", "kind": "openai", "base_url": mock.url, "api_key": ENDPOINT_KEY})).await;
        assert_eq!(s, StatusCode::CREATED, "{endpoint}");
        let endpoint = endpoint["id"].as_str().unwrap().to_owned();
        let (s, tested) = post(
            &server,
            &admin,
            &format!("/api/v1/endpoints/{endpoint}/test"),
            json!({}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{tested}");
        let (s, _) = server
            .call(
                Method::PUT,
                "/api/v1/admin/settings",
                Some(&admin),
                Some(json!({"allow_private_webhook_targets": true})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let receiver = Mock::start(MockConfig::default()).await;
        let (s, hook) = post(
            &server,
            &admin,
            "/api/v1/webhooks",
            json!({
            "name": "ci", "url": format!("{}/hook", receiver.url),
            "events": ["experiment.started", "experiment.completed", "new_best_found"],
            "headers": {"Authorization": format!("Bearer {HEADER_SECRET}")}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{hook}");
        let hook = hook["id"].as_str().unwrap().to_owned();
        let (s, project) = post(&server, &admin, "/api/v1/projects", json!({"name": "p"})).await;
        assert_eq!(s, StatusCode::CREATED);
        let project = project["id"].as_str().unwrap().to_owned();
        let id = extraction(
            &server,
            &admin,
            &endpoint,
            &project,
            json!([
            {"kind": "webhook", "name": "remote", "url": format!("{}/score", receiver.url),
             "headers": {"Authorization": format!("Bearer {HEADER_SECRET}")}, "timeout_ms": 2000},
            {"kind": "format", "name": "year", "format": "regex", "pattern": "\\d{4}"}]),
        )
        .await;
        // Only the models the mock serves, so every run calls it with the key.
        let (s, body) = put(&server, &admin, &format!("/api/v1/experiments/{id}"), json!({"parameter_space": {"stages": [{
            "models": [{"model": "sim-large"}, {"model": "sim-small"}], "params": {"temperature": [0.2, 0.9]}}]}})).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let sweep = sweep_to_the_end(&server, &admin, &id).await;
        let (_, runs) = server
            .get(
                &format!("/api/v1/experiments/{id}/runs?limit=1"),
                Some(&admin),
            )
            .await;
        let run = runs["runs"][0]["id"].as_str().unwrap().to_owned();
        let (s, export) = post(
            &server,
            &admin,
            &format!("/api/v1/experiments/{id}/exports"),
            json!({"format": "json"}),
        )
        .await;
        let export = if s == StatusCode::CREATED || s == StatusCode::ACCEPTED || s == StatusCode::OK
        {
            export["id"].as_str().map(str::to_owned)
        } else {
            None
        };
        // Every GET route of the document, with the ids this test made.
        let (_, doc) = server.get("/api/v1/openapi.json", None).await;
        let ids = |path: &str| -> Option<String> {
            let mut p = path.to_owned();
            let value = if p.starts_with("/api/v1/endpoints/") {
                endpoint.clone()
            } else if p.starts_with("/api/v1/webhooks/") {
                hook.clone()
            } else if p.starts_with("/api/v1/projects/") {
                project.clone()
            } else if p.starts_with("/api/v1/runs/") {
                run.clone()
            } else if p.starts_with("/api/v1/sweeps/") {
                sweep["id"].as_str()?.to_owned()
            } else if p.starts_with("/api/v1/exports/") {
                export.clone()?
            } else {
                id.clone()
            };
            p = p.replace("{id}", &value);
            (!p.contains('{')).then_some(p)
        };
        let mut read = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            if ops.get("get").is_none() {
                continue;
            }
            let Some(path) = ids(path) else { continue };
            if path.ends_with("/stream") {
                // An event stream never ends: read what it replays for a moment.
                let res = TestServer::client()
                    .get(format!("{}{path}?after=0", server.url))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .unwrap();
                assert!(res.status().is_success(), "{path}: {}", res.status());
                let mut body = res.bytes_stream();
                let mut text = String::new();
                let until = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
                while let Ok(Some(Ok(chunk))) =
                    tokio::time::timeout_at(until, futures::StreamExt::next(&mut body)).await
                {
                    text.push_str(&String::from_utf8_lossy(&chunk));
                }
                common::sentinels::assert_absent(&text, &path);
                read += 1;
                continue;
            }
            let (s, _) = server.get(&path, Some(&admin)).await;
            // Some routes need query parameters; what matters here is what comes back.
            assert!(!s.is_server_error(), "{path}: {s}");
            read += 1;
        }
        assert!(read >= 40, "read {read} routes");
        // Runs failed once with the echoed key: the error shows no key.
        let (_, failed) = server
            .get(
                &format!("/api/v1/experiments/{id}/events?type=run.failed&limit=100"),
                Some(&admin),
            )
            .await;
        let (_, all) = server
            .get(
                &format!("/api/v1/experiments/{id}/events?limit=1000"),
                Some(&admin),
            )
            .await;
        assert!(all["total"].as_i64().unwrap() > 8, "{failed}");
        server.stop().await;
    }
}
