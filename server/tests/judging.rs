//! Pairwise judging (A vs B in a random order per item, cached) and trying a scorer on a run
//! before saving it, over REST on SQLite and PostgreSQL.

mod common;

use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, path, Some(token), Some(body))
        .await
}

struct Setup {
    admin: String,
    endpoint: String,
    experiment: String,
    /// Two configurations with runs: (config_key, a run id).
    configs: Vec<(String, String)>,
}

async fn setup(server: &TestServer) -> Setup {
    let admin = server.setup_admin().await;
    let (_, endpoint) = post(
        server,
        &admin,
        "/api/v1/endpoints",
        json!({"name": "sim", "kind": "simulated"}),
    )
    .await;
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    let (_, project) = post(server, &admin, "/api/v1/projects", json!({"name": "p"})).await;
    let texts = [
        "Ada Lovelace wrote notes on the Analytical Engine in London in 1843.",
        "Marie Curie won Nobel prizes in 1903 and 1911 while working in Paris.",
        "Alan Turing published his paper on computable numbers at Cambridge in 1936.",
        "Grace Hopper joined the Navy and later built COBOL compilers at Remington Rand.",
        "Tim Berners-Lee proposed the World Wide Web at CERN near Geneva in 1989.",
        "Linus Torvalds released Linux from Helsinki in 1991 as a hobby project.",
    ];
    let items: Vec<Value> = texts
        .iter()
        .map(|t| json!({"input": {"text": t}, "reference": engine::providers::simulated::ideal_answer(t).join(", ")}))
        .collect();
    let (s, e) = post(server, &admin, "/api/v1/experiments", json!({
        "project_id": project["id"], "name": "judged", "sample_data": items,
        "pipeline_stages": [{"name": "extract", "endpoint_id": endpoint, "model": "sim-small",
            "system": "You extract named entities.", "user": "Extract.\n\n{{ input.text }}", "params": {"temperature": 0.9}}],
        "scoring_config": [{"kind": "lexical_similarity", "name": "f1"}],
    })).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let experiment = e["id"].as_str().unwrap().to_owned();
    let mut configs = Vec::new();
    for stages in [
        json!([{"model": "sim-large", "params": {"temperature": 0.2}}]),
        json!([]),
    ] {
        let (s, batch) = post(
            server,
            &admin,
            "/api/v1/runs",
            json!({"experiment_id": experiment, "stages": stages}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{batch}");
        configs.push((
            batch["config_key"].as_str().unwrap().to_owned(),
            batch["runs"][0]["id"].as_str().unwrap().to_owned(),
        ));
    }
    Setup {
        admin,
        endpoint,
        experiment,
        configs,
    }
}

#[tokio::test]
async fn a_judge_compares_two_configurations_item_by_item_in_random_order() {
    for server in TestServer::all().await {
        let f = setup(&server).await;
        let path = format!("/api/v1/experiments/{}/compare", f.experiment);
        // A deterministic judge: the simulated model repeats the last paragraph, here the
        // letter of the longer answer; "only … comma" at 0.25 makes it near perfect.
        let body = json!({
            "first": f.configs[0].0, "second": f.configs[1].0, "endpoint_id": f.endpoint, "model": "sim-large",
            "system": "Answer with only the letter, no comma.",
            "prompt": "Which answer is longer?\n\n{{ 'A' if a|length >= b|length else 'B' }}",
            "params": {"temperature": 0.25},
        });
        let (s, result) = post(&server, &f.admin, &path, body.clone()).await;
        assert_eq!(s, StatusCode::OK, "{result}");
        assert_eq!(result["items"], 6);
        let sum: i64 = ["first_wins", "second_wins", "ties", "failures"]
            .iter()
            .map(|k| result[k].as_i64().unwrap())
            .sum();
        assert_eq!(sum, 6, "{result}");
        assert!(
            result["first_wins"].as_i64().unwrap() + result["second_wins"].as_i64().unwrap() >= 4,
            "the judge decides most items: {result}"
        );
        let shown: Vec<&str> = result["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["shown_as_a"].as_str().unwrap())
            .collect();
        assert!(
            shown.contains(&"first") && shown.contains(&"second"),
            "both orders are used: {shown:?}"
        );
        assert!(
            result["calls"].as_i64().unwrap() >= 1 && result["verdict"].is_string(),
            "{result}"
        );
        // Again: every call from the cache, the same verdicts.
        let (_, again) = post(&server, &f.admin, &path, body.clone()).await;
        assert_eq!(
            (again["calls"].as_i64(), again["cache_hits"].as_i64()),
            (Some(0), Some(6)),
            "{again}"
        );
        assert_eq!(again["first_wins"], result["first_wins"]);

        let mut bad = body.clone();
        bad["second"] = bad["first"].clone();
        assert_error(
            &post(&server, &f.admin, &path, bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("second"),
        );
        let mut bad = body.clone();
        bad["first"] = json!("nope");
        assert_error(
            &post(&server, &f.admin, &path, bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("first"),
        );
        let mut bad = body.clone();
        bad["endpoint_id"] = json!(uuid::Uuid::new_v4());
        assert_error(
            &post(&server, &f.admin, &path, bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("endpoint_id"),
        );
        let guest = server.user_token(&f.admin, "gus", "guest").await;
        assert_error(
            &post(&server, &guest, &path, body).await,
            StatusCode::FORBIDDEN,
            None,
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_scorer_can_be_tried_on_a_run_before_it_is_saved() {
    for server in TestServer::all().await {
        let f = setup(&server).await;
        let path = format!("/api/v1/experiments/{}/scorers/test", f.experiment);
        let run = &f.configs[0].1;
        let (s, score) = post(&server, &f.admin, &path, json!({"run_id": run,
            "scorer": {"kind": "rhai", "name": "has_ada", "script": "print(output); if output.contains(\"Ada\") { 1.0 } else { 0.0 }"}})).await;
        assert_eq!(s, StatusCode::OK, "{score}");
        assert_eq!(score["scorer"], "has_ada");
        assert!(score["value"] == 1.0 || score["value"] == 0.0, "{score}");
        assert_eq!(score["metadata"]["log"].as_array().unwrap().len(), 1);
        let (_, score) = post(
            &server,
            &f.admin,
            &path,
            json!({"run_id": run,
            "scorer": {"kind": "keywords", "required": ["Ada", "London"], "mode": "fraction"}}),
        )
        .await;
        assert!(
            score["value"].is_number() && score["metadata"]["found"].is_array(),
            "{score}"
        );

        assert_error(&post(&server, &f.admin, &path, json!({"run_id": run, "scorer": {"kind": "format", "format": "regex", "pattern": "("}})).await,
            StatusCode::UNPROCESSABLE_ENTITY, Some("scorer.pattern"));
        assert_error(
            &post(
                &server,
                &f.admin,
                &path,
                json!({"run_id": uuid::Uuid::new_v4(), "scorer": {"kind": "lexical_similarity"}}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("run_id"),
        );
        // Nothing was stored: the run still has only the experiment's own scorer.
        let (_, detail) = server
            .get(&format!("/api/v1/runs/{run}"), Some(&f.admin))
            .await;
        let names: Vec<&str> = detail["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["scorer"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["f1"]);
        server.stop().await;
    }
}
