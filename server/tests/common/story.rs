//! The scoring story's pieces, shared by the tests that need an experiment with a known best
//! configuration: a simulated endpoint, an extraction experiment over it, a grid sweep run to
//! its end, and polling.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::TestServer;

const TEXTS: [&str; 8] = [
    "Ada Lovelace wrote notes on the Analytical Engine in London in 1843.",
    "Marie Curie won Nobel prizes in 1903 and 1911 while working in Paris.",
    "Alan Turing published his paper on computable numbers at Cambridge in 1936.",
    "Grace Hopper joined the Navy and later built COBOL compilers at Remington Rand.",
    "Tim Berners-Lee proposed the World Wide Web at CERN near Geneva in 1989.",
    "Katherine Johnson computed trajectories for NASA missions including Apollo 11.",
    "Linus Torvalds released Linux from Helsinki in 1991 as a hobby project.",
    "Margaret Hamilton led software engineering for Apollo at MIT in 1969.",
];

pub async fn post(
    server: &TestServer,
    token: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    server
        .call(Method::POST, path, Some(token), Some(body))
        .await
}

pub async fn put(server: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::PUT, path, Some(token), Some(body))
        .await
}

/// A simulated endpoint and a project; returns (admin, endpoint id, project id).
pub async fn basics(server: &TestServer) -> (String, String, String) {
    let admin = server.setup_admin().await;
    let (s, endpoint) = post(
        server,
        &admin,
        "/api/v1/endpoints",
        json!({"name": "sim", "kind": "simulated"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{endpoint}");
    let (s, project) = post(server, &admin, "/api/v1/projects", json!({"name": "p"})).await;
    assert_eq!(s, StatusCode::CREATED, "{project}");
    (
        admin,
        endpoint["id"].as_str().unwrap().to_owned(),
        project["id"].as_str().unwrap().to_owned(),
    )
}

pub fn items() -> Vec<Value> {
    TEXTS
        .iter()
        .map(|t| {
            json!({"input": {"text": t},
                   "reference": engine::providers::simulated::ideal_answer(t).join(", ")})
        })
        .collect()
}

/// A one-stage extraction on the simulated endpoint with a space of 3 prompts × 3 models ×
/// 3 temperatures; its known best is the terse prompt on sim-large at temperature 0.2.
pub async fn extraction(
    server: &TestServer,
    admin: &str,
    endpoint: &str,
    project: &str,
    scoring: Value,
) -> String {
    let (s, e) = post(server, admin, "/api/v1/experiments", json!({
        "project_id": project, "name": "extraction", "sample_data": items(),
        "pipeline_stages": [{"name": "extract", "endpoint_id": endpoint, "model": "sim-medium",
            "system": "You extract named entities.", "user": "Extract the entities.\n\n{{ input.text }}",
            "params": {"temperature": 0.7}}],
        "parameter_space": {"stages": [{
            "prompts": [
                {"name": "terse", "system": "Return only the entities, as a comma-separated list."},
                {"name": "plain", "system": "You extract named entities: people, places and numbers."},
                {"name": "reasoning", "system": "Think step by step about each word before you answer."}],
            "models": [{"model": "sim-large"}, {"model": "sim-medium"}, {"model": "sim-small"}],
            "params": {"temperature": [0.2, 0.5, 0.9]}}]},
        "scoring_config": scoring,
    })).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    e["id"].as_str().unwrap().to_owned()
}

/// Polls `path` until `done` holds (or panics after 60 s).
pub async fn wait_for(
    server: &TestServer,
    token: &str,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, body) = server.get(path, Some(token)).await;
        if s == StatusCode::OK && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s} {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn sweep_to_the_end(server: &TestServer, admin: &str, experiment: &str) -> Value {
    let (s, sweep) = post(
        server,
        admin,
        &format!("/api/v1/experiments/{experiment}/sweep"),
        json!({"strategy": {"kind": "grid"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sweep}");
    wait_for(
        server,
        admin,
        &format!("/api/v1/sweeps/{}", sweep["id"].as_str().unwrap()),
        "the sweep",
        |s| s["status"] == "completed",
    )
    .await
}
