//! Endpoint limits that hold across processes: `max_concurrency`, `rpm` and `tpm` set over the
//! API, enforced for every process through PostgreSQL (in memory on SQLite), and a 429 that
//! slows every process down. "Processes" here are separate paces over one database, each with
//! its own node name and local state, exactly as separate processes hold them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use common::mock::Mock;
use common::story::{post, put};
use common::{TestServer, assert_error};
use engine::endpoints::Ready;
use engine::pacing::Pace;
use engine::providers::retry::RetryPolicy;
use engine::providers::{ChatRequest, Message, Role};
use engine::types::Params;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::mock_llm::{MockConfig, Scripted};
use uuid::Uuid;

async fn endpoint_count(server: &TestServer, admin: &str) -> usize {
    let (s, list) = server.get("/api/v1/endpoints", Some(admin)).await;
    assert_eq!(s, StatusCode::OK);
    list.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn endpoint_limits_are_checked_kept_and_changed() {
    for server in TestServer::all().await {
        let admin = server.setup_admin().await;
        for (field, body) in [
            ("rpm", json!({"name": "a", "kind": "simulated", "rpm": 0})),
            ("tpm", json!({"name": "a", "kind": "simulated", "tpm": 50})),
            (
                "max_concurrency",
                json!({"name": "a", "kind": "simulated", "max_concurrency": 0}),
            ),
            (
                "rpm",
                json!({"name": "a", "kind": "simulated", "rpm": 2_000_000}),
            ),
        ] {
            let got = post(&server, &admin, "/api/v1/endpoints", body).await;
            assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
        }
        assert_eq!(
            endpoint_count(&server, &admin).await,
            0,
            "a refused endpoint is not made"
        );

        let (s, e) = post(
            &server,
            &admin,
            "/api/v1/endpoints",
            json!({
            "name": "paced", "kind": "simulated", "max_concurrency": 4, "rpm": 120, "tpm": 40_000}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        assert_eq!(
            (
                e["max_concurrency"].as_i64(),
                e["rpm"].as_i64(),
                e["tpm"].as_i64()
            ),
            (Some(4), Some(120), Some(40_000))
        );
        let path = format!("/api/v1/endpoints/{}", e["id"].as_str().unwrap());

        // A bad change is refused and changes nothing; absent fields are kept, null removes.
        let got = put(&server, &admin, &path, json!({"tpm": 5, "rpm": 60})).await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("tpm"));
        let (_, same) = server.get(&path, Some(&admin)).await;
        assert_eq!(same["rpm"], 120);
        let (s, changed) = put(&server, &admin, &path, json!({"rpm": null, "tpm": 90_000})).await;
        assert_eq!(s, StatusCode::OK, "{changed}");
        assert_eq!(
            (
                changed["max_concurrency"].clone(),
                changed["rpm"].clone(),
                changed["tpm"].clone()
            ),
            (json!(4), Value::Null, json!(90_000))
        );
        // A client's update (the CLI's remote mode) leaves out what it does not change: a
        // `null` there would remove the key or the limit.
        let partial = engine::types::EndpointUpdate {
            timeout_ms: Some(5_000),
            ..Default::default()
        };
        let sent = serde_json::to_value(&partial).unwrap();
        for field in ["api_key", "max_concurrency", "rpm", "tpm"] {
            assert!(sent.get(field).is_none(), "{field} sent as {sent}");
        }
        let (s, after) = put(&server, &admin, &path, sent).await;
        assert_eq!(s, StatusCode::OK, "{after}");
        assert_eq!(
            (
                after["max_concurrency"].clone(),
                after["tpm"].clone(),
                after["timeout_ms"].clone()
            ),
            (json!(4), json!(90_000), json!(5_000))
        );
        server.stop().await;
    }
}

/// The endpoint row and a ready provider for it; `nodes` more "processes" get paces of their
/// own over the same database.
async fn processes(server: &TestServer, id: &str, nodes: &[&str]) -> Vec<Ready> {
    let core = &server.state.core;
    let row = engine::store::endpoints::get(&core.db, Uuid::parse_str(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let first = core.providers.get(core, &row).unwrap();
    let mut all = vec![first.clone()];
    for node in nodes {
        all.push(Ready {
            provider: first.provider.clone(),
            pace: Arc::new(Pace::new(&core.db, (*node).into(), &row)),
            name: first.name.clone(),
        });
    }
    all
}

fn now_ms(start: Instant) -> i64 {
    start.elapsed().as_millis() as i64
}

#[tokio::test]
async fn concurrency_and_rate_hold_across_processes_on_postgres() {
    let Some(database) = engine::testing::TestDatabase::postgres().await else {
        return;
    };
    let server = TestServer::start(database).await;
    let admin = server.setup_admin().await;
    let (s, e) = post(
        &server,
        &admin,
        "/api/v1/endpoints",
        json!({
        "name": "shared", "kind": "simulated", "max_concurrency": 3, "rpm": 600}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let procs = processes(&server, e["id"].as_str().unwrap(), &["proc-b", "proc-c"]).await;

    // 3 processes × 6 tasks × 4 calls of 40 ms each.
    let start = Instant::now();
    let (in_flight, most) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicI64::new(0)));
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for ready in &procs {
        for _ in 0..6 {
            let (pace, in_flight, most, sent) = (
                ready.pace.clone(),
                in_flight.clone(),
                most.clone(),
                sent.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for _ in 0..4 {
                    let r: Result<i64, _> = pace
                        .attempt(
                            10.0,
                            |n| *n,
                            || async {
                                sent.lock().unwrap().push(now_ms(start));
                                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                                most.fetch_max(now, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(40)).await;
                                in_flight.fetch_sub(1, Ordering::SeqCst);
                                Ok(10)
                            },
                        )
                        .await;
                    r.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed();
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 72);
    assert!(
        most.load(Ordering::SeqCst) <= 3,
        "{} calls at once",
        most.load(Ordering::SeqCst)
    );
    // 600 rpm: a burst of 10, then 9.83 a second; so never more than 20 in a second, and the
    // 62 after the burst take at least 6.3 s however fast the machine is.
    let most_in_a_second = sent
        .iter()
        .map(|&t| sent.iter().filter(|&&s| s >= t && s < t + 1000).count())
        .max()
        .unwrap();
    assert!(
        most_in_a_second <= 20,
        "{most_in_a_second} calls in one second"
    );
    assert!(
        took >= Duration::from_millis(6_200),
        "72 calls at 600 rpm took only {took:?}"
    );

    // A process that dies with calls in flight: its slots come back once it is noticed dead
    // (its node never held a session, so at the second look of the presence check).
    let ghost = processes(&server, e["id"].as_str().unwrap(), &["ghost-node"])
        .await
        .pop()
        .unwrap();
    for _ in 0..3 {
        std::mem::forget(ghost.pace.admit(1.0).await.unwrap());
    }
    let waited = Instant::now();
    let pass = tokio::time::timeout(Duration::from_secs(15), procs[1].pace.admit(1.0))
        .await
        .expect("the dead process's slots came back")
        .unwrap();
    assert!(
        waited.elapsed() >= Duration::from_millis(500),
        "its slots were held until noticed"
    );
    procs[1]
        .pace
        .finish(pass, Some(1), engine::pacing::Throttled::No)
        .await;
    server.stop().await;
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "sim-small".into(),
        messages: vec![Message {
            role: Role::User,
            content: "Say something short.".into(),
        }],
        params: Params {
            max_tokens: Some(16),
            ..Params::default()
        },
    }
}

#[tokio::test]
async fn a_429_slows_every_process_down() {
    for database in engine::testing::TestDatabase::all().await {
        let postgres = database.kind == engine::DbKind::Postgres;
        let server = TestServer::start(database).await;
        let admin = server.setup_admin().await;
        let mock = Mock::start(MockConfig::default()).await;
        let (s, e) = post(&server, &admin, "/api/v1/endpoints", json!({
            "name": "hosted", "kind": "openai", "base_url": mock.url, "api_key": "sk-test-key-for-the-mock-1234"}))
        .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        // On SQLite there is one process; on PostgreSQL a second one shares the endpoint.
        let others: &[&str] = if postgres { &["proc-b"] } else { &[] };
        let procs = processes(&server, e["id"].as_str().unwrap(), others).await;
        let (a, b) = (&procs[0], procs.last().unwrap());
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(10),
            ..RetryPolicy::default()
        };

        // 30 calls go through unpaced, then the provider answers one 429 asking to wait 5 s:
        // a minute's quota, so 30 is what it lets through a minute.
        for _ in 0..30 {
            a.call(&policy, &request()).await.unwrap().unwrap();
        }
        mock.state.script([Scripted::Status {
            status: 429,
            retry_after: None,
            retry_after_ms: Some(5_000),
            body: None,
        }]);
        a.call(&policy, &request()).await.unwrap().unwrap();
        // 30 got through this minute: every process is now paced at 27 a minute (2.2 s apart),
        // the other one from its next look at the shared row (at most a second).
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..3 {
            b.call(&policy, &request()).await.unwrap().unwrap();
            at.push(start.elapsed());
        }
        let gap = at[2] - at[1];
        assert!(
            gap >= Duration::from_millis(2_000),
            "calls after a 429 went {gap:?} apart"
        );
        assert_eq!(mock.state.chat_requests(), 30 + 2 + 3);
        server.stop().await;
    }
}

#[tokio::test]
async fn tokens_per_minute_pace_the_calls() {
    for server in TestServer::all().await {
        let admin = server.setup_admin().await;
        let (s, e) = post(
            &server,
            &admin,
            "/api/v1/endpoints",
            json!({
            "name": "tpm", "kind": "simulated", "tpm": 600}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let procs = processes(&server, e["id"].as_str().unwrap(), &[]).await;
        let policy = RetryPolicy::default();
        let start = Instant::now();
        let mut used = 0;
        for _ in 0..2 {
            let answer = procs[0].call(&policy, &request()).await.unwrap().unwrap();
            used += answer.tokens_in + answer.tokens_out;
        }
        procs[0].call(&policy, &request()).await.unwrap().unwrap();
        // 600 tokens a minute: a burst of 10, then 590/60 a second. The third call is estimated
        // at its prompt and its 16 allowed tokens; the first two owe what they used.
        let estimate = engine::providers::estimate_tokens("Say something short.") + 16;
        let owed = (used + estimate) as f64 - 10.0;
        let bound = Duration::from_secs_f64(owed / (590.0 / 60.0));
        assert!(
            start.elapsed() + Duration::from_millis(20) >= bound,
            "3 calls using {used} + {estimate} tokens at 600 tpm took {:?} (at least {bound:?})",
            start.elapsed()
        );
        server.stop().await;
    }
}
