//! Webhooks over REST on SQLite and PostgreSQL, delivering to a local receiver: management and
//! bad input, the outbound guard, Standard Webhooks signatures, the spec's events from a real
//! sweep and a `human_needed` request, a retry after a failure (one delivery, two attempts,
//! the same id and body), the delivery log, the test send, and secrets kept out of answers.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
}

/// A receiver on 127.0.0.1:0 that records every request and fails the first `fail` ones.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    fail: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(fail: usize) -> (Receiver, String) {
        let r = Receiver {
            fail: Arc::new(Mutex::new(fail)),
            ..Receiver::default()
        };
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state.got.lock().unwrap().push(Received { headers, body });
                    let mut fail = state.fail.lock().unwrap();
                    if *fail > 0 {
                        *fail -= 1;
                        AxumStatus::INTERNAL_SERVER_ERROR
                    } else {
                        AxumStatus::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (r, url)
    }

    fn of_type(&self, t: &str) -> Vec<(Received, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.clone(), serde_json::from_str::<Value>(&r.body).unwrap()))
            .filter(|(_, v)| v["type"] == t)
            .collect()
    }

    async fn wait_for(&self, t: &str, n: usize) -> Vec<(Received, Value)> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.of_type(t);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "no {n} × {t} in 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers[name].to_str().unwrap()
}

/// The signature a receiver computes with the secret it was given.
fn verify(r: &Received, secret: &str) {
    let id = header(r, "webhook-id");
    let ts: i64 = header(r, "webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 300);
    let expected = engine::webhooks::sign(secret, id, ts, &r.body).unwrap();
    assert_eq!(header(r, "webhook-signature"), expected);
    assert_eq!(header(r, "content-type"), "application/json");
}

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, path, Some(token), Some(body))
        .await
}

#[tokio::test]
async fn webhooks_deliver_the_spec_events_signed_durably_and_once() {
    for database in engine::testing::TestDatabase::all().await {
        deliveries(database).await;
    }
}

async fn deliveries(database: engine::testing::TestDatabase) {
    let server = TestServer::start(database).await;
    let admin = server.setup_admin().await;
    let guest = server.user_token(&admin, "gus", "guest").await;
    let (receiver, url) = Receiver::start(1).await;
    let new = json!({
        "name": "ci", "url": url,
        "events": ["experiment.started", "experiment.completed", "human_needed", "new_best_found"],
        "headers": {"X-Receiver-Token": "tok-very-secret-header"}
    });

    // Private targets are refused until an admin allows them; bad input names the field.
    let got = post(&server, &admin, "/api/v1/webhooks", new.clone()).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("url"));
    for (body, status, field) in [
        (
            json!({"name": "x", "url": "ftp://example.com/x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "url",
        ),
        (
            json!({"name": "x", "url": "http://169.254.169.254/latest"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "url",
        ),
        (
            json!({"name": "x", "url": "https://example.com/x", "events": ["run.completed"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events",
        ),
        (
            json!({"name": "x", "url": "https://example.com/x", "headers": {"Webhook-Signature": "x"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "headers",
        ),
        (
            json!({"name": "x", "url": "https://example.com/x", "headers": {"X-A": "a\r\nb"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "headers",
        ),
        (
            json!({"name": "", "url": "https://example.com/x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({"name": "x", "url": "https://example.com/x", "colour": 1}),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
    ] {
        let got = post(&server, &admin, "/api/v1/webhooks", body).await;
        assert_error(&got, status, Some(field));
    }
    let (_, listed) = server.get("/api/v1/webhooks", Some(&admin)).await;
    assert_eq!(listed, json!([]), "a refused webhook writes nothing");
    let got = post(&server, &guest, "/api/v1/webhooks", new.clone()).await;
    assert_eq!(got.0, StatusCode::FORBIDDEN);
    assert_eq!(
        server.get("/api/v1/webhooks", Some(&guest)).await.0,
        StatusCode::FORBIDDEN
    );

    let (s, _) = server
        .call(
            Method::PUT,
            "/api/v1/admin/settings",
            Some(&admin),
            Some(json!({"allow_private_webhook_targets": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, created) = post(&server, &admin, "/api/v1/webhooks", new).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["header_names"], json!(["X-Receiver-Token"]));
    let id = created["id"].as_str().unwrap().to_owned();
    let hook = format!("/api/v1/webhooks/{id}");
    let (_, shown) = server.get(&hook, Some(&admin)).await;
    let (_, all) = server.get("/api/v1/webhooks", Some(&admin)).await;
    for text in [shown.to_string(), all.to_string()] {
        assert!(
            !text.contains(&secret) && !text.contains("tok-very-secret-header"),
            "{text}"
        );
    }

    // A sweep on the simulated endpoint: started, new best(s), completed with the best.
    let (_, endpoint) = post(
        &server,
        &admin,
        "/api/v1/endpoints",
        json!({"name": "sim", "kind": "simulated"}),
    )
    .await;
    let (_, project) = post(&server, &admin, "/api/v1/projects", json!({"name": "p"})).await;
    let (s, experiment) = post(&server, &admin, "/api/v1/experiments", json!({
        "project_id": project["id"], "name": "hooked",
        "sample_data": [{"input": {"text": "Ada Lovelace in London"}, "reference": "Ada, London"},
                        {"input": {"text": "Alan Turing in Bletchley"}, "reference": "Alan, Bletchley"}],
        "pipeline_stages": [{"name": "extract", "endpoint_id": endpoint["id"], "model": "sim-large",
                             "system": "List the entities.", "user": "{{ input.text }}"}],
        "parameter_space": {"stages": [{"params": {"temperature": [0.2, 0.8]}}]},
        "scoring_config": [{"kind": "lexical_similarity"}]
    })).await;
    assert_eq!(s, StatusCode::CREATED, "{experiment}");
    let eid = experiment["id"].as_str().unwrap().to_owned();
    let (s, sweep) = post(
        &server,
        &admin,
        &format!("/api/v1/experiments/{eid}/sweep"),
        json!({"strategy": {"kind": "grid"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sweep}");

    let started = receiver.wait_for("experiment.started", 1).await;
    let last = started.last().unwrap();
    verify(&last.0, &secret);
    assert_eq!(
        header(&last.0, "x-receiver-token"),
        "tok-very-secret-header"
    );
    let data = &last.1["data"];
    assert_eq!(data["sweep_id"], sweep["id"]);
    assert_eq!(data["config"]["strategy"]["kind"], "grid");

    let completed = receiver.wait_for("experiment.completed", 1).await;
    verify(&completed[0].0, &secret);
    let data = &completed[0].1["data"];
    assert_eq!(data["progress"]["done"], 4);
    assert!(data["best"]["config_key"].is_string(), "{data}");
    assert!(data["best"]["score"].is_number(), "{data}");
    let best = receiver.wait_for("new_best_found", 1).await;
    assert!(best[0].1["data"]["config"].is_object());

    let (s, event) = post(
        &server,
        &admin,
        &format!("/api/v1/experiments/{eid}/human-needed"),
        json!({"reason": "Two configurations tie.", "context": {"k": 1}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let human = receiver.wait_for("human_needed", 1).await;
    verify(&human[0].0, &secret);
    assert_eq!(human[0].1["data"]["reason"], "Two configurations tie.");
    assert_eq!(human[0].1["data"]["event_id"], event["id"]);
    // Not subscribed: never sent.
    assert!(receiver.of_type("run.failed").is_empty());

    // Once each: every delivery id reached the receiver with one success.
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let (s, page) = server
            .get(&format!("{hook}/deliveries?limit=100"), Some(&admin))
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let all = page["deliveries"].as_array().unwrap();
        if all.iter().all(|d| d["status"] == "delivered") {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "still pending after 60 s: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deliveries = page["deliveries"].as_array().unwrap();
    assert_eq!(page["total"], deliveries.len());
    let got = receiver.got.lock().unwrap().clone();
    for d in deliveries {
        assert_eq!(d["status"], "delivered", "{d}");
        let sent: Vec<&Received> = got
            .iter()
            .filter(|r| header(r, "webhook-id") == d["id"].as_str().unwrap())
            .collect();
        assert_eq!(sent.len() as i64, d["attempts"].as_i64().unwrap(), "{d}");
        assert_eq!(d["last_status"], 204);
    }
    // The receiver failed the very first request (500): that delivery was retried with the
    // same id and the same bytes, and its log says two attempts.
    let retried: Vec<&Value> = deliveries.iter().filter(|d| d["attempts"] == 2).collect();
    assert_eq!(retried.len(), 1, "{deliveries:?}");
    let twice: Vec<&Received> = got
        .iter()
        .filter(|r| header(r, "webhook-id") == retried[0]["id"].as_str().unwrap())
        .collect();
    assert_eq!(twice[0].body, twice[1].body);
    assert_ne!(
        header(twice[0], "webhook-timestamp")
            .parse::<i64>()
            .unwrap(),
        0
    );
    let (_, shown) = server.get(&hook, Some(&admin)).await;
    assert_eq!(shown["pending"], 0);
    assert!(shown["failing_since"].is_null());

    // The test send is signed too and queues nothing.
    let (s, test) = post(&server, &admin, &format!("{hook}/test"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{test}");
    assert_eq!(test["ok"], true);
    assert_eq!(test["status"], 204);
    let tests = receiver.wait_for("webhook.test", 1).await;
    verify(&tests[0].0, &secret);

    // Off: nothing more is queued for it; deleted: gone with its log.
    let (s, off) = server
        .call(
            Method::PUT,
            &hook,
            Some(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{off}");
    post(
        &server,
        &admin,
        &format!("/api/v1/experiments/{eid}/human-needed"),
        json!({"reason": "again"}),
    )
    .await;
    let (_, page2) = server
        .get(&format!("{hook}/deliveries"), Some(&admin))
        .await;
    assert_eq!(page2["total"], page["total"]);
    let (s, _) = server.call(Method::DELETE, &hook, Some(&admin), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get(&hook, Some(&admin)).await.0,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn a_receiver_that_is_down_keeps_its_deliveries_pending_and_failing_since() {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let admin = server.setup_admin().await;
    server
        .call(
            Method::PUT,
            "/api/v1/admin/settings",
            Some(&admin),
            Some(json!({"allow_private_webhook_targets": true})),
        )
        .await;
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (_, created) = post(&server, &admin, "/api/v1/webhooks",
        json!({"name": "down", "url": format!("http://127.0.0.1:{closed}/hook"), "events": ["human_needed"]})).await;
    let hook = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap());
    let (_, project) = post(&server, &admin, "/api/v1/projects", json!({"name": "p"})).await;
    let (_, endpoint) = post(
        &server,
        &admin,
        "/api/v1/endpoints",
        json!({"name": "sim", "kind": "simulated"}),
    )
    .await;
    let (_, experiment) = post(&server, &admin, "/api/v1/experiments", json!({
        "project_id": project["id"], "name": "e", "sample_data": [{"input": {"text": "x"}}],
        "pipeline_stages": [{"name": "s", "endpoint_id": endpoint["id"], "model": "sim-small", "user": "{{ input.text }}"}]
    })).await;
    post(
        &server,
        &admin,
        &format!(
            "/api/v1/experiments/{}/human-needed",
            experiment["id"].as_str().unwrap()
        ),
        json!({"reason": "look"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = server
            .get(&format!("{hook}/deliveries"), Some(&admin))
            .await;
        let d = &page["deliveries"][0];
        if d["attempts"].as_i64().unwrap_or(0) >= 1 {
            assert_eq!(d["status"], "pending", "{d}");
            assert!(d["next_attempt_at"].is_string());
            assert_eq!(d["last_error"], "could not connect");
            break;
        }
        assert!(Instant::now() < deadline, "no attempt in 30 s: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, shown) = server.get(&hook, Some(&admin)).await;
    assert!(shown["failing_since"].is_string(), "{shown}");
    assert_eq!(shown["pending"], 1);
    assert!(shown["enabled"].as_bool().unwrap());
    server.stop().await;
}
