//! Guided sweeps end to end over REST, on SQLite and PostgreSQL, on the simulated provider:
//! racing with pruning on the timeline, budgets, determinism under a seed, prompt proposals
//! (a proposer that writes usable variants and one that returns garbage), ask/tell from an
//! agent, steering, previews, and bad requests.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Setup {
    admin: String,
    endpoint: String,
    project: String,
}

const TEXTS: [&str; 16] = [
    "Ada Lovelace met Charles Babbage in London in 1833.",
    "Grace Hopper built COBOL at Remington Rand.",
    "Alan Turing worked at Bletchley Park in 1940.",
    "Katherine Johnson computed orbits for NASA in 1962.",
    "Tim Berners-Lee proposed the Web at CERN in 1989.",
    "Margaret Hamilton led software for Apollo at MIT.",
    "Linus Torvalds released Linux in Helsinki in 1991.",
    "Barbara Liskov won the Turing Award in 2008.",
    "Dennis Ritchie created C at Bell Labs.",
    "Hedy Lamarr patented frequency hopping in 1942.",
    "John McCarthy coined Artificial Intelligence at Dartmouth.",
    "Frances Allen joined IBM Research in 1957.",
    "Edsger Dijkstra wrote about GOTO in Amsterdam.",
    "Radia Perlman designed Spanning Tree at DEC.",
    "Donald Knuth began TeX at Stanford in 1977.",
    "Shafi Goldwasser studied at Berkeley and MIT.",
];

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, path, Some(token), Some(body))
        .await
}

async fn setup(server: &TestServer) -> Setup {
    let admin = server.setup_admin().await;
    let (s, endpoint) = post(
        server,
        &admin,
        "/api/v1/endpoints",
        json!({"name": "sim", "kind": "simulated"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{endpoint}");
    let (_, project) = post(server, &admin, "/api/v1/projects", json!({"name": "p"})).await;
    Setup {
        admin,
        endpoint: endpoint["id"].as_str().unwrap().to_owned(),
        project: project["id"].as_str().unwrap().to_owned(),
    }
}

/// An experiment whose grid is 4 variants × 3 models × 5 temperatures × 2 top_p = 120
/// configurations over 16 items (1,920 runs).
async fn experiment(server: &TestServer, f: &Setup, name: &str) -> String {
    let items: Vec<Value> = TEXTS
        .iter()
        .map(|t| json!({"input": {"text": t}, "reference": engine::providers::simulated::ideal_answer(t).join(", ")}))
        .collect();
    let (s, e) = post(server, &f.admin, "/api/v1/experiments", json!({
        "project_id": f.project, "name": name, "sample_data": items,
        "pipeline_stages": [{"name": "extract", "endpoint_id": f.endpoint, "model": "sim-medium",
            "system": "Extract the entities.", "user": "{{ input.text }}", "params": {"temperature": 0.5}}],
        "parameter_space": {"stages": [{
            "prompts": [{"name": "plain", "system": "List the names in the text."},
                        {"name": "only", "system": "Return only the names."},
                        {"name": "think", "system": "Think step by step about the names."},
                        {"name": "list", "system": "Return only a comma-separated list of the names."}],
            "models": [{"model": "sim-large"}, {"model": "sim-medium"}, {"model": "sim-small"}],
            "params": {"temperature": [0.1, 0.3, 0.5, 0.7, 0.9], "top_p": [0.5, 1.0]}}]},
        "scoring_config": [{"kind": "lexical_similarity", "name": "f1"}],
    })).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    format!("/api/v1/experiments/{}", e["id"].as_str().unwrap())
}

async fn wait_ended(server: &TestServer, f: &Setup, base: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, sweep) = server.get(&format!("{base}/sweep"), Some(&f.admin)).await;
        assert_eq!(s, StatusCode::OK, "{sweep}");
        if !matches!(sweep["status"].as_str(), Some("running")) {
            return sweep;
        }
        assert!(
            Instant::now() < deadline,
            "the guided sweep did not end: {sweep}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn events(server: &TestServer, f: &Setup, base: &str) -> Vec<Value> {
    let (s, page) = server
        .get(
            &format!("{base}/events?limit=1000&type=sweep.round,configuration.pruned,configuration.promoted,prompt.proposed,prompt.proposal_failed,experiment.started,experiment.completed"),
            Some(&f.admin),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["events"].as_array().unwrap().clone()
}

async fn runs(server: &TestServer, f: &Setup, base: &str) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let (s, page) = server
            .get(
                &format!("{base}/runs?limit=1000&offset={}", all.len()),
                Some(&f.admin),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let got = page["runs"].as_array().unwrap().clone();
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

fn keys(sweep: &Value) -> Vec<String> {
    sweep["guide"]["configurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["config_key"].as_str().unwrap().to_owned())
        .collect()
}

fn guided(seed: u64, max_calls: i64) -> Value {
    json!({"strategy": {"kind": "guided", "seed": seed}, "budget": {"max_calls": max_calls}})
}

/// At most 30 configurations (a cached re-run makes no calls, so a calls budget would not
/// stop it where the first one stopped).
fn limited(seed: u64) -> Value {
    json!({"strategy": {"kind": "guided", "seed": seed, "max_configurations": 30}, "budget": {"max_calls": 400}})
}

#[tokio::test]
async fn a_guided_sweep_races_within_its_budget_and_repeats_itself_under_a_seed() {
    for server in TestServer::all().await {
        let f = setup(&server).await;
        let base = experiment(&server, &f, "guided").await;

        let (s, preview) = post(
            &server,
            &f.admin,
            &format!("{base}/sweep/preview"),
            guided(7, 400),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{preview}");
        assert_eq!(preview["strategy"], "guided");
        assert_eq!(preview["estimate"], true);
        assert_eq!(preview["budget_calls"], 400);
        assert_eq!(preview["space_configurations"], 120);
        assert!(preview["calls"].as_i64().unwrap() <= 400, "{preview}");
        assert!(
            preview["note"].as_str().unwrap().contains("400 LLM calls"),
            "{preview}"
        );

        let (s, started) = post(&server, &f.admin, &format!("{base}/sweep"), limited(7)).await;
        assert_eq!(s, StatusCode::CREATED, "{started}");
        assert_eq!(started["guide"]["rungs"], json!([2, 6, 16]));
        assert!(
            started["progress"]["total"].as_i64().unwrap() > 0,
            "the first round is planned: {started}"
        );
        let sweep = wait_ended(&server, &f, &base).await;
        assert_eq!(sweep["status"], "completed", "{sweep}");
        let calls = sweep["progress"]["calls"].as_i64().unwrap();
        assert!(calls <= 400, "the budget holds: {calls}");
        assert!(
            calls < 1920 / 4,
            "a fraction of the grid's 1,920 calls: {calls}"
        );
        let guide = &sweep["guide"];
        assert!(guide["stop_reason"].as_str().is_some(), "{guide}");
        let best = guide["best"]["config_key"].as_str().unwrap().to_owned();

        // Every (configuration, item) ran once.
        let all = runs(&server, &f, &base).await;
        assert_eq!(
            all.len() as i64,
            sweep["progress"]["total"].as_i64().unwrap()
        );
        let mut seen = HashSet::new();
        for r in &all {
            assert!(
                seen.insert((r["config_key"].clone(), r["item_id"].clone())),
                "ran twice: {r}"
            );
        }
        // The best has every item and leads the leaderboard; pruned ones stopped early.
        let (_, board) = server
            .get(&format!("{base}/leaderboard?limit=5"), Some(&f.admin))
            .await;
        let top = &board["entries"][0];
        assert_eq!(top["config_key"], best.as_str(), "{board}");
        assert_eq!(top["items"], 16);
        assert!(top["score"].as_f64().unwrap() > 0.8, "{top}");
        let label = top["label"].as_str().unwrap();
        assert!(label.contains("sim-large"), "{label}");

        let ev = events(&server, &f, &base).await;
        let pruned: Vec<&Value> = ev
            .iter()
            .filter(|e| e["type"] == "configuration.pruned")
            .collect();
        assert!(!pruned.is_empty(), "pruning is on the timeline");
        let msg = pruned[0]["payload"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with("UCB ") && msg.contains("< leader LCB") && msg.contains("/16 items"),
            "{msg}"
        );
        assert!(
            pruned[0]["payload"]["ucb"].as_f64().unwrap()
                < pruned[0]["payload"]["leader_lcb"].as_f64().unwrap()
        );
        assert!(ev.iter().any(|e| e["type"] == "configuration.promoted"));
        assert!(ev.iter().filter(|e| e["type"] == "sweep.round").count() >= 3);
        let completed: Vec<&Value> = ev
            .iter()
            .filter(|e| e["type"] == "experiment.completed")
            .collect();
        assert_eq!(completed.len(), 1);
        assert!(completed[0]["payload"]["reason"].is_string());
        for c in guide["configurations"].as_array().unwrap() {
            let items = c["items"].as_u64().unwrap();
            match c["state"].as_str().unwrap() {
                "finished" => assert_eq!(items, 16),
                "pruned" | "racing" => assert!(items < 16),
                other => panic!("state {other}"),
            }
        }

        // The same seed on the same results makes the same choices (the cache emptied, so the
        // second sweep makes the same calls again); another seed makes others.
        let (s, _) = server
            .call(Method::DELETE, "/api/v1/admin/cache", Some(&f.admin), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let again = experiment(&server, &f, "guided again").await;
        let (s, _) = post(&server, &f.admin, &format!("{again}/sweep"), limited(7)).await;
        assert_eq!(s, StatusCode::CREATED);
        let second = wait_ended(&server, &f, &again).await;
        assert_eq!(
            keys(&second),
            keys(&sweep),
            "same seed, same configurations in the same order"
        );
        assert_eq!(second["progress"]["calls"], sweep["progress"]["calls"]);
        let other = experiment(&server, &f, "guided other").await;
        let (s, _) = post(&server, &f.admin, &format!("{other}/sweep"), limited(8)).await;
        assert_eq!(s, StatusCode::CREATED);
        let third = wait_ended(&server, &f, &other).await;
        assert_ne!(keys(&third), keys(&sweep));

        // Earlier work in the cache is free to learn from: the first round takes every
        // configuration whose first rung the cache answers, at no cost.
        let warm = experiment(&server, &f, "guided warm").await;
        let (s, started) = post(&server, &f.admin, &format!("{warm}/sweep"), json!({
            "strategy": {"kind": "guided", "seed": 7, "max_configurations": 100}, "budget": {"max_calls": 400}})).await;
        assert_eq!(s, StatusCode::CREATED, "{started}");
        let from_cache: HashSet<String> = started["guide"]["configurations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["origin"] == "cache" && c["round"] == 1)
            .map(|c| c["config_key"].as_str().unwrap().to_owned())
            .collect();
        for k in keys(&sweep) {
            assert!(
                from_cache.contains(&k),
                "{k} was cached on the first rung: {}",
                started["guide"]
            );
        }
        let warmed = wait_ended(&server, &f, &warm).await;
        assert_eq!(warmed["status"], "completed");

        // A calls budget ends it (the cache emptied first, so every call is made).
        let (s, _) = server
            .call(Method::DELETE, "/api/v1/admin/cache", Some(&f.admin), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let tight = experiment(&server, &f, "tight").await;
        let (s, _) = post(&server, &f.admin, &format!("{tight}/sweep"), guided(9, 60)).await;
        assert_eq!(s, StatusCode::CREATED);
        let fourth = wait_ended(&server, &f, &tight).await;
        assert_eq!(fourth["status"], "completed", "{fourth}");
        assert!(
            fourth["progress"]["calls"].as_i64().unwrap() <= 60,
            "{fourth}"
        );
        assert!(
            fourth["guide"]["stop_reason"]
                .as_str()
                .unwrap()
                .contains("budget"),
            "{}",
            fourth["guide"]
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn proposals_enter_the_search_and_garbage_is_reported() {
    for server in TestServer::all().await {
        let f = setup(&server).await;
        let base = experiment(&server, &f, "proposed").await;
        let body = |model: &str| {
            json!({"strategy": {"kind": "guided", "seed": 3, "max_configurations": 24,
                                "proposer": {"endpoint_id": f.endpoint, "model": model, "every": 2, "count": 2, "max_proposals": 2}},
                   "budget": {"max_calls": 300}})
        };
        let (s, started) = post(
            &server,
            &f.admin,
            &format!("{base}/sweep"),
            body("sim-large"),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{started}");
        let sweep = wait_ended(&server, &f, &base).await;
        assert_eq!(sweep["status"], "completed", "{sweep}");
        let proposals = sweep["guide"]["proposals"].as_array().unwrap();
        assert!(!proposals.is_empty(), "{sweep}");
        let p = &proposals[0];
        assert_eq!(p["model"], "sim-large");
        assert!(!p["from_best"].as_array().unwrap().is_empty());
        assert!(
            p["system"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("only"),
            "{p}"
        );
        // The variants joined the sweep's space and were tried.
        let names: BTreeSet<&str> = sweep["parameter_space"]["stages"][0]["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(p["name"].as_str().unwrap()), "{names:?}");
        let tried: Vec<&Value> = sweep["guide"]["configurations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["origin"] == "proposal")
            .collect();
        assert!(!tried.is_empty());
        let ev = events(&server, &f, &base).await;
        assert!(ev.iter().any(|e| e["type"] == "prompt.proposed"));
        assert!(sweep["progress"]["calls"].as_i64().unwrap() <= 300);

        // sim-small cannot write proposals: each failure is reported and the search goes on.
        let garbage = experiment(&server, &f, "garbage").await;
        let (s, _) = post(
            &server,
            &f.admin,
            &format!("{garbage}/sweep"),
            body("sim-small"),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let sweep = wait_ended(&server, &f, &garbage).await;
        assert_eq!(sweep["status"], "completed", "{sweep}");
        assert!(sweep["guide"]["proposals"].as_array().unwrap().is_empty());
        assert!(sweep["guide"]["proposal_failures"].as_u64().unwrap() >= 1);
        let ev = events(&server, &f, &garbage).await;
        let failed: Vec<&Value> = ev
            .iter()
            .filter(|e| e["type"] == "prompt.proposal_failed")
            .collect();
        assert!(!failed.is_empty());
        assert!(
            failed[0]["payload"]["error"]
                .as_str()
                .unwrap()
                .contains("JSON"),
            "{}",
            failed[0]
        );
        assert!(
            sweep["guide"]["configurations"].as_array().unwrap().len() >= 10,
            "the search went on"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn an_agent_drives_a_guided_sweep_by_suggestions() {
    for server in TestServer::all().await {
        let f = setup(&server).await;
        let base = experiment(&server, &f, "agent").await;
        let (s, started) = post(&server, &f.admin, &format!("{base}/sweep"), json!({
            "strategy": {"kind": "guided", "search": "agent", "seed": 1}, "budget": {"max_calls": 200}})).await;
        assert_eq!(s, StatusCode::CREATED, "{started}");
        assert_eq!(started["status"], "running");
        assert_eq!(
            started["progress"]["total"], 0,
            "nothing to run until an agent suggests"
        );
        let path = format!("{base}/sweep/suggestions");
        for (body, field) in [
            (json!({"configurations": []}), "configurations"),
            (
                json!({"configurations": [{"stages": [{"variant": "nope"}]}]}),
                "configurations[0].stages[0].variant",
            ),
            (
                json!({"configurations": [{"stages": [{"params": {"temperature": 9}}]}]}),
                "configurations[0].stages[0].params.temperature",
            ),
        ] {
            let got = post(&server, &f.admin, &path, body).await;
            assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
        }
        let good = json!({"configurations": [
            {"stages": [{"variant": "list", "model": "sim-large", "params": {"temperature": 0.3, "top_p": 1.0}}]},
            {"stages": [{"variant": "think", "model": "sim-small", "params": {"temperature": 0.9, "top_p": 0.5}}]},
        ]});
        let (s, r) = post(&server, &f.admin, &path, good.clone()).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{r}");
        assert_eq!(r["accepted"].as_array().unwrap().len(), 2);
        // Raced: the weak one is pruned, the strong one earns every item.
        let deadline = Instant::now() + Duration::from_secs(60);
        let sweep = loop {
            let (_, sweep) = server.get(&format!("{base}/sweep"), Some(&f.admin)).await;
            let states: Vec<&str> = sweep["guide"]["configurations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["state"].as_str().unwrap())
                .collect();
            if states.len() == 2 && !states.contains(&"racing") {
                break sweep;
            }
            assert!(Instant::now() < deadline, "{sweep}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        assert_eq!(
            sweep["status"], "running",
            "an agent-driven sweep waits for more"
        );
        let states: Vec<&str> = sweep["guide"]["configurations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["finished", "pruned"], "{sweep}");
        let (s, r) = post(&server, &f.admin, &path, good).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{r}");
        assert_eq!(r["skipped"].as_array().unwrap().len(), 2, "already tried");
        // A guest may not suggest; a grid sweep takes no suggestions.
        let guest = server.user_token(&f.admin, "guest", "guest").await;
        let got = post(
            &server,
            &guest,
            &path,
            json!({"configurations": [{"stages": []}]}),
        )
        .await;
        assert_eq!(got.0, StatusCode::FORBIDDEN, "{}", got.1);
        let (s, stopped) = post(&server, &f.admin, &format!("{base}/stop"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{stopped}");
        assert_eq!(stopped["status"], "stopped");
        let got = post(
            &server,
            &f.admin,
            &path,
            json!({"configurations": [{"stages": []}]}),
        )
        .await;
        assert_error(&got, StatusCode::CONFLICT, Some("experiment"));
        server.stop().await;
    }
}

#[tokio::test]
async fn bad_guided_requests_name_the_field_and_change_nothing() {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let f = setup(&server).await;
    let base = experiment(&server, &f, "bad").await;
    let cases = [
        (
            json!({"kind": "guided", "patience": 0}),
            "strategy.patience",
        ),
        (json!({"kind": "guided", "batch": 5000}), "strategy.batch"),
        (
            json!({"kind": "guided", "reduction": 1}),
            "strategy.reduction",
        ),
        (
            json!({"kind": "guided", "max_configurations": 0}),
            "strategy.max_configurations",
        ),
        (
            json!({"kind": "guided", "proposer": {"endpoint_id": "00000000-0000-0000-0000-000000000001", "model": "m"}}),
            "strategy.proposer.endpoint_id",
        ),
        (
            json!({"kind": "guided", "proposer": {"endpoint_id": f.endpoint, "model": "sim-large", "stage": 3}}),
            "strategy.proposer.stage",
        ),
        (
            json!({"kind": "guided", "proposer": {"endpoint_id": f.endpoint, "model": "sim-large", "count": 9}}),
            "strategy.proposer.count",
        ),
    ];
    for (strategy, field) in cases {
        for path in ["sweep", "sweep/preview"] {
            let got = post(
                &server,
                &f.admin,
                &format!("{base}/{path}"),
                json!({"strategy": strategy}),
            )
            .await;
            assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
        }
    }
    let got = post(
        &server,
        &f.admin,
        &format!("{base}/sweep"),
        json!({"strategy": {"kind": "guided"}, "budget": {"max_calls": 0}}),
    )
    .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("budget.max_calls"),
    );
    let got = post(
        &server,
        &f.admin,
        &format!("{base}/sweep"),
        json!({"strategy": {"kind": "guided", "surprise": 1}}),
    )
    .await;
    assert_error(&got, StatusCode::BAD_REQUEST, Some("strategy"));
    // No scorer: nothing to be guided by.
    let (s, _) = server
        .call(
            Method::PUT,
            &base,
            Some(&f.admin),
            Some(json!({"scoring_config": []})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let got = post(
        &server,
        &f.admin,
        &format!("{base}/sweep"),
        json!({"strategy": {"kind": "guided"}}),
    )
    .await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("strategy"));
    let (_, sweeps) = server.get(&format!("{base}/sweeps"), Some(&f.admin)).await;
    assert_eq!(sweeps["total"], 0, "nothing was stored: {sweeps}");
    server.stop().await;
}

#[tokio::test]
async fn a_guided_sweep_pauses_resumes_and_redirects() {
    for server in TestServer::all().await {
        let f = setup(&server).await;
        let base = experiment(&server, &f, "steered").await;
        // Slow calls, so there is time to steer.
        let (s, slow) = post(
            &server,
            &f.admin,
            "/api/v1/endpoints",
            json!({"name": "slow", "kind": "simulated", "options": {"latency_ms": 30}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{slow}");
        let (s, _) = server.call(Method::PUT, &base, Some(&f.admin), Some(json!({
            "pipeline_stages": [{"name": "extract", "endpoint_id": slow["id"], "model": "sim-medium",
                "system": "Extract the entities.", "user": "{{ input.text }}", "params": {"temperature": 0.5}}]}))).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = post(&server, &f.admin, &format!("{base}/sweep"), guided(5, 300)).await;
        assert_eq!(s, StatusCode::CREATED);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (s, paused) = post(&server, &f.admin, &format!("{base}/pause"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{paused}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, still) = server.get(&format!("{base}/sweep"), Some(&f.admin)).await;
        assert_eq!(still["status"], "paused");
        let done = still["progress"]["done"].clone();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, later) = server.get(&format!("{base}/sweep"), Some(&f.admin)).await;
        assert_eq!(later["progress"]["done"], done, "nothing runs while paused");
        // Narrow the space to the large model and low temperatures; the search carries on.
        let (s, redirected) = post(&server, &f.admin, &format!("{base}/redirect"), json!({
            "parameter_space": {"stages": [{
                "prompts": [{"name": "only", "system": "Return only the names."},
                            {"name": "list", "system": "Return only a comma-separated list of the names."}],
                "models": [{"model": "sim-large"}],
                "params": {"temperature": [0.1, 0.3], "top_p": [1.0]}}]}})).await;
        assert_eq!(s, StatusCode::OK, "{redirected}");
        let got = post(
            &server,
            &f.admin,
            &format!("{base}/redirect"),
            json!({
            "parameter_space": {"stages": []}, "strategy": {"kind": "grid"}}),
        )
        .await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("strategy"));
        let (s, resumed) = post(&server, &f.admin, &format!("{base}/resume"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{resumed}");
        let sweep = wait_ended(&server, &f, &base).await;
        assert_eq!(sweep["status"], "completed", "{sweep}");
        let configs = sweep["guide"]["configurations"].as_array().unwrap();
        let after: Vec<&Value> = configs
            .iter()
            .filter(|c| {
                c["round"].as_u64().unwrap() > redirected["guide"]["round"].as_u64().unwrap()
            })
            .collect();
        assert!(!after.is_empty());
        for c in after {
            assert_eq!(c["choice"][0]["model"], "sim-large", "{c}");
        }
        server.stop().await;
    }
}
