//! Scoring end to end over REST, on SQLite and PostgreSQL: scorer configs checked at save time,
//! a sweep over the simulated provider whose leaderboard ranks its known best configuration
//! first, retroactive re-scoring with zero new LLM calls, human ratings, and exports.

mod common;

use common::mock::Mock;
use common::story::{basics, extraction, post, put, sweep_to_the_end, wait_for};
use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::mock_llm::MockConfig;

/// Waits until no scoring job of the experiment is running; returns the newest job.
async fn scoring_settles(server: &TestServer, admin: &str, experiment: &str) -> Value {
    let page = wait_for(
        server,
        admin,
        &format!("/api/v1/experiments/{experiment}/scoring-jobs"),
        "scoring jobs to finish",
        |p| {
            p["total"].as_i64().unwrap_or(0) > 0
                && p["jobs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|j| j["status"] != "running")
        },
    )
    .await;
    page["jobs"][0].clone()
}

async fn events(server: &TestServer, admin: &str, experiment: &str, types: &str) -> Vec<Value> {
    let (s, page) = server
        .get(
            &format!("/api/v1/experiments/{experiment}/events?limit=1000&type={types}"),
            Some(admin),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn bad_scorer_configs_are_refused_naming_the_scorer_and_change_nothing() {
    for server in TestServer::all().await {
        let (admin, endpoint, project) = basics(&server).await;
        let good = json!([{"kind": "keywords", "name": "names", "required": ["Ada"]}]);
        let id = extraction(&server, &admin, &endpoint, &project, good).await;
        let path = format!("/api/v1/experiments/{id}");
        let (_, before) = server.get(&path, Some(&admin)).await;
        let cases = [
            (json!([{"kind": "nope"}]), "scoring_config[0].kind"),
            (
                json!([{"kind": "format", "name": "dates", "format": "regex", "pattern": "(unclosed"}]),
                "scoring_config[0].pattern",
            ),
            (
                json!([{"kind": "format", "format": "json_schema", "schema": {"type": 12}}]),
                "scoring_config[0].schema",
            ),
            (
                json!([{"kind": "format", "format": "json", "pattern": "x"}]),
                "scoring_config[0].pattern",
            ),
            (
                json!([{"kind": "rhai", "script": "let x = ;"}]),
                "scoring_config[0].script",
            ),
            (
                json!([{"kind": "keywords", "required": ["a"], "weight": -1}]),
                "scoring_config[0].weight",
            ),
            (
                json!([{"kind": "keywords", "required": ["a"], "weight": 0}, {"kind": "length", "max": 9, "weight": 0}]),
                "scoring_config",
            ),
            (json!([{"kind": "keywords"}]), "scoring_config[0].required"),
            (
                json!([{"kind": "length", "min": 10, "max": 5}]),
                "scoring_config[0].min",
            ),
            (
                json!([{"kind": "length", "max": "ten"}]),
                "scoring_config[0].max",
            ),
            (
                json!([{"kind": "embedding_similarity"}]),
                "scoring_config[0].endpoint_id",
            ),
            (
                json!([{"kind": "llm_judge", "endpoint_id": uuid::Uuid::new_v4(), "model": "m"}]),
                "scoring_config[0].endpoint_id",
            ),
            (
                json!([{"kind": "llm_judge", "endpoint_id": endpoint, "model": "sim-huge"}]),
                "scoring_config[0].model",
            ),
            (
                json!([{"kind": "llm_judge", "endpoint_id": endpoint, "model": "sim-large", "prompt": "{{ secret }}"}]),
                "scoring_config[0].prompt",
            ),
            (
                json!([{"kind": "llm_judge", "endpoint_id": endpoint, "model": "sim-large", "prompt": "{{ input.nope }}"}]),
                "scoring_config[0].prompt",
            ),
            (
                json!([{"kind": "webhook", "url": "ftp://example.com/score"}]),
                "scoring_config[0].url",
            ),
            (
                json!([{"kind": "webhook", "url": "http://127.0.0.1:9/score", "headers": {"Authorization": "<hidden>"}}]),
                "scoring_config[0].headers.Authorization",
            ),
            (
                json!([{"kind": "python", "code": "def score(i, o, r, c):\n    return 1\n"}]),
                "scoring_config[0].kind",
            ),
            (
                json!([{"kind": "lexical_similarity"}, {"kind": "lexical_similarity"}]),
                "scoring_config[1].name",
            ),
            (
                json!([{"kind": "length", "max": 9, "maxx": 3}]),
                "scoring_config[0].maxx",
            ),
            (json!({"scorers": []}), "scoring_config"),
        ];
        for (config, field) in cases {
            let got = put(&server, &admin, &path, json!({"scoring_config": config})).await;
            assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
            let message = got.1["error"]["message"].as_str().unwrap();
            if field != "scoring_config" {
                assert!(
                    message.starts_with("scorer \""),
                    "names the scorer: {message}"
                );
            }
        }
        let got = put(
            &server,
            &admin,
            &path,
            json!({"scoring_config": [{"kind": "embedding_similarity"}]}),
        )
        .await;
        assert!(
            got.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("lexical_similarity"),
            "offers the lexical scorer: {}",
            got.1
        );
        let (_, after) = server.get(&path, Some(&admin)).await;
        assert_eq!(before, after, "nothing changed");
        // Valid configs are stored normalised: names, weights and defaults filled in.
        let (s, saved) = put(
            &server,
            &admin,
            &path,
            json!({"scoring_config": [
            {"kind": "lexical_similarity", "metric": "rouge_l", "weight": 2},
            {"kind": "length", "unit": "words", "max": 30},
            {"kind": "format", "format": "regex", "pattern": "\\d{4}"},
            {"kind": "rhai", "script": "if output.contains(\"London\") { 1.0 } else { 0.0 }"},
            {"kind": "embedding_similarity", "endpoint_id": endpoint},
            {"kind": "llm_judge", "endpoint_id": endpoint, "model": "sim-large"},
            {"kind": "human_rating", "scale": "stars"}]}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{saved}");
        let config = saved["scoring_config"].as_array().unwrap();
        assert_eq!(config[0]["name"], "lexical_similarity");
        assert_eq!(config[1]["weight"], 1.0);
        assert_eq!(config[1]["falloff"], 0.5);
        assert_eq!(
            config[4]["model"],
            Value::Null,
            "the simulated endpoint's embedding model is the default"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_sweep_ranks_the_known_best_configuration_first_with_intervals_and_a_paired_test() {
    for server in TestServer::all().await {
        let (admin, endpoint, project) = basics(&server).await;
        let id = extraction(&server, &admin, &endpoint, &project, json!([
            {"kind": "lexical_similarity", "name": "f1", "weight": 2},
            {"kind": "embedding_similarity", "name": "similarity", "endpoint_id": endpoint},
            {"kind": "keywords", "name": "no_filler", "forbidden": ["perhaps", "notably", "various", "somewhat"], "whole_words": true},
        ])).await;
        let sweep = sweep_to_the_end(&server, &admin, &id).await;
        assert_eq!(sweep["progress"]["completed"], 216, "{sweep}");

        let board_path = format!("/api/v1/experiments/{id}/leaderboard");
        let (s, board) = server.get(&board_path, Some(&admin)).await;
        assert_eq!(s, StatusCode::OK, "{board}");
        assert_eq!(board["total"], 27);
        let top = &board["entries"][0];
        assert_eq!(top["rank"], 1);
        let label = top["label"].as_str().unwrap();
        assert!(
            label.contains("terse")
                && label.contains("sim-large")
                && label.contains("temperature=0.2"),
            "the known best leads: {label}"
        );
        assert_eq!(
            (
                top["items"].as_i64(),
                top["samples"].as_i64(),
                top["runs"].as_i64()
            ),
            (Some(8), Some(8), Some(8))
        );
        let (score, lo, hi) = (
            top["score"].as_f64().unwrap(),
            top["ci_low"].as_f64().unwrap(),
            top["ci_high"].as_f64().unwrap(),
        );
        assert!(
            lo <= score && score <= hi && hi <= 1.0 && lo >= 0.0,
            "{top}"
        );
        assert!(top["std"].as_f64().is_some());
        for name in ["f1", "similarity", "no_filler"] {
            assert_eq!(top["scorers"][name]["n"], 8, "{top}");
        }
        let scores: Vec<f64> = board["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["score"].as_f64().unwrap())
            .collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "ranked by score: {scores:?}"
        );
        let worst = board["entries"].as_array().unwrap().last().unwrap();
        assert!(
            worst["label"].as_str().unwrap().contains("sim-small"),
            "{worst}"
        );
        let cmp = &board["comparison"];
        assert_eq!(cmp["first"], top["config_key"]);
        assert_eq!(cmp["second"], board["entries"][1]["config_key"]);
        assert_eq!(cmp["items"], 8);
        assert!(
            cmp["p_value"].as_f64().is_some() && cmp["verdict"].as_str().unwrap().contains("#1"),
            "{cmp}"
        );

        // The best run of the leader carries its scores.
        let (_, run) = server
            .get(
                &format!("/api/v1/runs/{}", top["best_run_id"].as_str().unwrap()),
                Some(&admin),
            )
            .await;
        assert_eq!(run["scores"].as_array().unwrap().len(), 3, "{run}");
        assert!(run["weighted_score"].as_f64().is_some());
        let (_, page) = server
            .get(
                &format!("/api/v1/experiments/{id}/runs?limit=5"),
                Some(&admin),
            )
            .await;
        assert_eq!(
            page["runs"][0]["scores"].as_object().unwrap().len(),
            3,
            "{page}"
        );

        // Sorting by one scorer, paging, bad sorts.
        let (_, by_f1) = server
            .get(
                &format!("{board_path}?sort=scorer:f1&limit=5&offset=5"),
                Some(&admin),
            )
            .await;
        assert_eq!(by_f1["sort"], "scorer:f1");
        let ranks: Vec<i64> = by_f1["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["rank"].as_i64().unwrap())
            .collect();
        assert_eq!(ranks, [6, 7, 8, 9, 10]);
        let f1: Vec<f64> = by_f1["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["scorers"]["f1"]["mean"].as_f64().unwrap())
            .collect();
        assert!(f1.windows(2).all(|w| w[0] >= w[1]), "{f1:?}");
        assert_eq!(by_f1["comparison"]["metric"], "f1");
        let (_, cheapest) = server
            .get(&format!("{board_path}?sort=latency"), Some(&admin))
            .await;
        assert_eq!(cheapest["sort"], "latency");
        assert_error(
            &server
                .get(&format!("{board_path}?sort=scorer:nope"), Some(&admin))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("sort"),
        );
        assert_error(
            &server
                .get(&format!("{board_path}?sort=fastest"), Some(&admin))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("sort"),
        );
        assert_error(
            &server
                .get(&format!("{board_path}?limit=0"), Some(&admin))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("limit"),
        );

        // The leader was announced, during the sweep.
        let best = wait_for(
            &server,
            &admin,
            &format!("/api/v1/experiments/{id}/events?type=new_best_found&limit=100"),
            "new_best_found",
            |p| {
                p["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["payload"]["config_key"] == top["config_key"])
            },
        )
        .await;
        let announced = best["events"].as_array().unwrap();
        assert!(
            announced.iter().any(|e| e["sweep_id"] == sweep["id"]),
            "{best}"
        );
        let last = announced
            .iter()
            .find(|e| e["payload"]["config_key"] == top["config_key"])
            .unwrap();
        assert!(
            last["payload"]["scores"]["f1"].is_number() && last["run_id"].is_string(),
            "{last}"
        );

        // A rejected configuration leaves the leaderboard; the next one leads and is announced.
        let (s, _) = post(
            &server,
            &admin,
            &format!(
                "/api/v1/runs/{}/reject",
                top["best_run_id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (_, board) = server.get(&board_path, Some(&admin)).await;
        assert_eq!(board["total"], 26);
        assert_ne!(board["entries"][0]["config_key"], top["config_key"]);
        let second = board["entries"][0]["config_key"].clone();
        wait_for(
            &server,
            &admin,
            &format!("/api/v1/experiments/{id}/events?type=new_best_found&limit=100"),
            "a new leader",
            |p| {
                p["events"].as_array().unwrap().iter().any(|e| {
                    e["payload"]["config_key"] == second && e["payload"]["cause"] == "mark"
                })
            },
        )
        .await;
        server.stop().await;
    }
}

#[tokio::test]
async fn adding_a_scorer_rescores_history_and_rerunning_costs_nothing() {
    for server in TestServer::all().await {
        let mock = Mock::start(MockConfig::default()).await;
        let (admin, _, project) = basics(&server).await;
        let (s, endpoint) = post(
            &server,
            &admin,
            "/api/v1/endpoints",
            json!({"name": "mock", "kind": "openai", "base_url": mock.url}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{endpoint}");
        let endpoint = endpoint["id"].as_str().unwrap().to_owned();
        let id = extraction(&server, &admin, &endpoint, &project, json!([])).await;
        let path = format!("/api/v1/experiments/{id}");
        // Only the models the mock serves (the simulated ones), 2 × 3 × 3 = 18 configurations.
        let (s, _) = put(&server, &admin, &path, json!({"parameter_space": {"stages": [{
            "prompts": [{"name": "terse", "system": "Return only the entities, as a comma-separated list."},
                        {"name": "plain", "system": "You extract named entities."}],
            "models": [{"model": "sim-large"}, {"model": "sim-medium"}, {"model": "sim-small"}],
            "params": {"temperature": [0.2, 0.5, 0.9]}}]}})).await;
        assert_eq!(s, StatusCode::OK);
        sweep_to_the_end(&server, &admin, &id).await;
        let calls = mock.state.chat_requests();
        assert_eq!(calls, 144);
        let (_, board) = server
            .get(&format!("{path}/leaderboard"), Some(&admin))
            .await;
        assert_eq!(board["total"], 18);
        assert!(
            board["entries"][0]["score"].is_null(),
            "no scorers, no scores: {board}"
        );

        // Adding scorers re-scores every run in the background, with no LLM call.
        let (s, _) = put(
            &server,
            &admin,
            &path,
            json!({"scoring_config": [
            {"kind": "lexical_similarity", "name": "f1"},
            {"kind": "length", "name": "short", "unit": "words", "max": 12}]}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let job = scoring_settles(&server, &admin, &id).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(
            (
                job["done"].as_i64(),
                job["scored"].as_i64(),
                job["calls"].as_i64()
            ),
            (Some(144), Some(288), Some(0)),
            "{job}"
        );
        assert_eq!(
            mock.state.chat_requests(),
            calls,
            "re-scoring made no LLM call"
        );
        let (_, board) = server
            .get(&format!("{path}/leaderboard"), Some(&admin))
            .await;
        assert!(board["entries"][0]["score"].as_f64().is_some(), "{board}");
        assert!(
            board["entries"][0]["label"]
                .as_str()
                .unwrap()
                .contains("sim-large"),
            "{board}"
        );
        assert_eq!(
            events(&server, &admin, &id, "scoring.started").await.len(),
            1
        );
        assert_eq!(
            events(&server, &admin, &id, "scoring.completed")
                .await
                .len(),
            1
        );

        // Re-running the sweep costs zero tokens; the cached runs are scored too, and the
        // same samples are not counted twice.
        let again = sweep_to_the_end(&server, &admin, &id).await;
        assert_eq!(
            (
                again["progress"]["cached"].as_i64(),
                again["progress"]["tokens_in"].as_i64()
            ),
            (Some(144), Some(0)),
            "{again}"
        );
        let job = scoring_settles(&server, &admin, &id).await;
        assert_eq!(
            (job["scored"].as_i64(), job["calls"].as_i64()),
            (Some(288), Some(0)),
            "{job}"
        );
        assert_eq!(mock.state.chat_requests(), calls);
        let (_, board) = server
            .get(&format!("{path}/leaderboard"), Some(&admin))
            .await;
        assert_eq!(
            (
                board["entries"][0]["runs"].as_i64(),
                board["entries"][0]["samples"].as_i64()
            ),
            (Some(16), Some(8)),
            "{board}"
        );

        // A judge makes its calls once; forcing a re-score answers them from the cache.
        let (s, _) = put(
            &server,
            &admin,
            &path,
            json!({"scoring_config": [
            {"kind": "lexical_similarity", "name": "f1"},
            {"kind": "length", "name": "short", "unit": "words", "max": 12},
            {"kind": "llm_judge", "name": "judge", "endpoint_id": endpoint, "model": "sim-large",
             "prompt": "Grade this.\n\nScore {{ 10 if output == reference else 3 }}"}]}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let job = scoring_settles(&server, &admin, &id).await;
        assert_eq!(job["status"], "completed", "{job}");
        let judge_calls = mock.state.chat_requests() - calls;
        assert!(judge_calls > 0 && judge_calls <= 144, "{judge_calls}");
        assert_eq!(job["calls"].as_i64(), Some(judge_calls as i64), "{job}");
        let (_, page) = server
            .get(&format!("{path}/runs?limit=1"), Some(&admin))
            .await;
        let (_, run) = server
            .get(
                &format!("/api/v1/runs/{}", page["runs"][0]["id"].as_str().unwrap()),
                Some(&admin),
            )
            .await;
        let judge = run["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scorer"] == "judge")
            .unwrap()
            .clone();
        // The simulated judge may lose its number: then the score is absent and says why.
        match judge["value"].as_f64() {
            Some(v) => assert!(v == 1.0 || (v - 2.0 / 9.0).abs() < 1e-9, "{judge}"),
            None => assert!(
                judge["error"]
                    .as_str()
                    .unwrap()
                    .contains("no readable score"),
                "{judge}"
            ),
        }
        let (s, forced) = post(
            &server,
            &admin,
            &format!("{path}/rescore"),
            json!({"force": true, "scorers": ["judge"]}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{forced}");
        let job = scoring_settles(&server, &admin, &id).await;
        assert_eq!(
            (
                job["id"].clone(),
                job["status"].as_str(),
                job["calls"].as_i64()
            ),
            (forced["id"].clone(), Some("completed"), Some(0)),
            "{job}"
        );
        assert!(job["cache_hits"].as_i64().unwrap() >= 144, "{job}");
        assert_eq!(
            mock.state.chat_requests(),
            calls + judge_calls,
            "forced re-scoring answered from the cache"
        );
        assert_error(
            &post(
                &server,
                &admin,
                &format!("{path}/rescore"),
                json!({"scorers": ["nope"]}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("scorers[0]"),
        );

        // A job a dead process left running is picked up and finished; its cursor names a run
        // that is gone (a pending run dropped when a sweep stopped), so it starts over.
        let core = &server.state.core;
        let long_ago = chrono::Utc::now() - chrono::Duration::minutes(5);
        let orphan = engine::store::scoring_jobs::JobRow {
            id: uuid::Uuid::new_v4(),
            experiment_id: uuid::Uuid::parse_str(&id).unwrap(),
            status: "running".into(),
            scorers: None,
            force: true,
            cursor: Some(uuid::Uuid::new_v4()),
            passes: 0,
            total: 288,
            done: 0,
            scored: 0,
            errors: 0,
            calls: 0,
            cache_hits: 0,
            error: None,
            created_at: long_ago,
            updated_at: long_ago,
            finished_at: None,
        };
        engine::store::scoring_jobs::insert(&core.db, &orphan, None)
            .await
            .unwrap();
        engine::scoring::jobs::redrive(core, chrono::Utc::now() - chrono::Duration::seconds(30))
            .await
            .unwrap();
        let job = wait_for(
            &server,
            &admin,
            &format!("/api/v1/scoring-jobs/{}", orphan.id),
            "the orphaned job",
            |j| j["status"] != "running",
        )
        .await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(
            (job["done"].as_i64(), job["calls"].as_i64()),
            (Some(288), Some(0)),
            "{job}"
        );
        assert_eq!(mock.state.chat_requests(), calls + judge_calls);
        server.stop().await;
    }
}

#[tokio::test]
async fn people_rate_runs_and_ratings_average_into_scores() {
    for server in TestServer::all().await {
        let (admin, endpoint, project) = basics(&server).await;
        let id = extraction(
            &server,
            &admin,
            &endpoint,
            &project,
            json!([
            {"kind": "human_rating", "name": "stars", "scale": "stars"},
            {"kind": "lexical_similarity", "name": "f1"}]),
        )
        .await;
        let member = server.user_token(&admin, "rita", "member").await;
        let guest = server.user_token(&admin, "gus", "guest").await;
        let (s, batch) = post(
            &server,
            &admin,
            "/api/v1/runs",
            json!({"experiment_id": id, "items": [0, 1]}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{batch}");
        let run = batch["runs"][0]["id"].as_str().unwrap().to_owned();
        let score = format!("/api/v1/runs/{run}/score");

        let (s, r) = post(
            &server,
            &admin,
            &score,
            json!({"stars": 5, "comment": "spot on"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        assert_eq!(
            (r["score"]["value"].as_f64(), r["ranked"].as_bool()),
            (Some(1.0), Some(true))
        );
        let (_, r) = post(&server, &member, &score, json!({"stars": 3})).await;
        assert_eq!(
            (
                r["score"]["value"].as_f64(),
                r["ratings"].as_array().unwrap().len()
            ),
            (Some(0.75), 2),
            "{r}"
        );
        let (_, r) = post(&server, &admin, &score, json!({"stars": 1})).await;
        assert_eq!(
            (
                r["score"]["value"].as_f64(),
                r["ratings"].as_array().unwrap().len()
            ),
            (Some(0.25), 2),
            "a second rating replaces the first: {r}"
        );

        assert_error(
            &post(&server, &admin, &score, json!({"thumbs": "up"})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("thumbs"),
        );
        assert_error(
            &post(&server, &admin, &score, json!({"stars": 6})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("stars"),
        );
        assert_error(
            &post(&server, &admin, &score, json!({"stars": 2, "thumbs": "up"})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("stars"),
        );
        assert_error(
            &post(&server, &admin, &score, json!({})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("thumbs"),
        );
        assert_error(
            &post(
                &server,
                &admin,
                &score,
                json!({"stars": 2, "scorer": "vibes"}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("scorer"),
        );
        assert_error(
            &post(&server, &admin, &score, json!({"stars": 2, "extra": 1})).await,
            StatusCode::BAD_REQUEST,
            Some("extra"),
        );
        assert_error(
            &post(&server, &guest, &score, json!({"stars": 2})).await,
            StatusCode::FORBIDDEN,
            None,
        );
        assert_error(
            &post(
                &server,
                &admin,
                &format!("/api/v1/runs/{}/score", uuid::Uuid::new_v4()),
                json!({"stars": 2}),
            )
            .await,
            StatusCode::NOT_FOUND,
            None,
        );

        let (_, detail) = server
            .get(&format!("/api/v1/runs/{run}"), Some(&admin))
            .await;
        assert_eq!(detail["ratings"].as_array().unwrap().len(), 2, "{detail}");
        let stars = detail["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scorer"] == "stars")
            .unwrap();
        assert_eq!(stars["value"], 0.25);

        // The leaderboard sees the rating.
        let (_, board) = server
            .get(
                &format!("/api/v1/experiments/{id}/leaderboard"),
                Some(&admin),
            )
            .await;
        assert_eq!(board["entries"][0]["scorers"]["stars"]["n"], 1, "{board}");
        assert_eq!(board["entries"][0]["scorers"]["f1"]["n"], 2, "{board}");

        // Withdrawing a rating.
        let (s, _) = server
            .call(Method::DELETE, &score, Some(&member), None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = server
            .call(Method::DELETE, &score, Some(&member), None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, detail) = server
            .get(&format!("/api/v1/runs/{run}"), Some(&admin))
            .await;
        let stars = detail["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scorer"] == "stars")
            .unwrap();
        assert_eq!(stars["value"], 0.0, "only the admin's 1 star is left");
        server.stop().await;
    }
}
