//! The `promptlooper` binary as a process: configuration errors, graceful shutdown, restarts,
//! the admin CLI, and logs free of secrets.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_promptlooper");
const STATIC_KEY: &str = "static-key-process-tests-0123456789abcdef";

fn command(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("MCP_PORT", "0")
        .env("LEPTOS_SITE_ROOT", data_dir.join("site"))
        .env(
            "RUST_LOG",
            "debug,sqlx=warn,hyper=info,h2=info,tower_sessions=info",
        );
    c
}

struct Running {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

fn start(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = {
            let text = log.lock().unwrap();
            text.find("listening on http://").map(|at| {
                text[at + "listening on ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned()
            })
        };
        if let Some(url) = found {
            return Running { child, url, log };
        }
        assert!(
            Instant::now() < deadline,
            "server did not start: {}",
            log.lock().unwrap()
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("server exited with {status}: {}", log.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Running {
    /// SIGTERM, then wait: returns the exit code and the full log.
    fn terminate(mut self) -> (i32, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let log = self.log.lock().unwrap().clone();
        (status.code().unwrap_or(-1), log)
    }
}

async fn post(url: &str, path: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(&body);
    if let Some(a) = auth {
        req = req.bearer_auth(a);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn get(url: &str, path: &str, auth: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{url}{path}"));
    if let Some(a) = auth {
        req = req.bearer_auth(a);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// First-boot setup over HTTP; returns the admin's token.
async fn setup_admin(url: &str, password: &str) -> String {
    let (s, body) = post(
        url,
        "/api/v1/auth/setup",
        None,
        json!({"username": "admin", "password": password}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

#[test]
fn bad_configuration_fails_at_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("DATABASE_URL", "mysql://db/x"),
        ("HOST", "everywhere"),
        ("MAX_CONCURRENT_RUNS", "0"),
        ("MCP_ENABLED", "maybe"),
        ("REDIS_URL", "http://x"),
        ("DEFAULT_ENDPOINT_URL", "ftp://x"),
        ("JWT_SECRET", "short"),
    ] {
        let out = command(dir.path()).env(var, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}={value} not named in: {stderr}");
    }
    // An unreachable database: a clear message, exit 1, and the password stays hidden.
    let out = command(dir.path())
        .env("DATABASE_URL", "postgres://pl:sekret-pw@127.0.0.1:1/none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );
    assert!(!stderr.contains("sekret-pw"), "{stderr}");
}

#[tokio::test]
async fn serves_stops_on_sigterm_and_keeps_sessions_across_restarts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let first = start(command(dir.path()));
    let (s, health) = get(&first.url, "/health", None).await;
    assert_eq!(
        (s, health["database"]["backend"].as_str()),
        (200, Some("sqlite"))
    );
    let token = setup_admin(&first.url, "correct horse battery").await;
    let (code, log) = first.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );

    // The generated signing key is private and survives the restart, and so do tokens.
    let secret = dir.path().join("jwt_secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let second = start(command(dir.path()));
    let (s, me) = get(&second.url, "/api/v1/auth/me", Some(&token)).await;
    assert_eq!((s, me["user"]["username"].as_str()), (200, Some("admin")));
    second.terminate();
}

/// A browser with a live view open must not keep the server from stopping: SIGTERM ends the
/// live streams, and the stream's client sees its end.
#[tokio::test]
async fn sigterm_ends_open_live_streams() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let server = start(command(dir.path()));
    let token = setup_admin(&server.url, "correct horse battery").await;
    let mut stream = reqwest::Client::new()
        .get(format!("{}/api/v1/events/stream", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let stopping = tokio::task::spawn_blocking(move || server.terminate());
    let (code, log) = tokio::time::timeout(Duration::from_secs(20), stopping)
        .await
        .expect("the server still runs 20 s after SIGTERM: an open stream holds it")
        .unwrap();
    assert_eq!(code, 0, "{log}");
    // The stream ended (not cut mid-message): reading it finishes.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream did not end");
}

#[tokio::test]
async fn admin_reset_password_from_the_command_line() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path()).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("promptlooper.db").exists());

    let server = start(command(dir.path()));
    let old_token = setup_admin(&server.url, "forgotten password").await;

    let out = command(dir.path())
        .args(["admin", "reset-password", "admin"])
        .env("PROMPTLOOPER_PASSWORD", "brand new password")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("password reset for admin"));
    let out = command(dir.path())
        .args(["admin", "reset-password", "nobody"])
        .env("PROMPTLOOPER_PASSWORD", "brand new password")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named"));
    let out = command(dir.path())
        .args(["admin", "reset-password", "admin"])
        .env("PROMPTLOOPER_PASSWORD", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));

    assert_eq!(
        get(&server.url, "/api/v1/auth/me", Some(&old_token))
            .await
            .0,
        401,
        "old tokens are signed out"
    );
    let (s, _) = post(
        &server.url,
        "/api/v1/auth/login",
        None,
        json!({"username": "admin", "password": "brand new password"}),
    )
    .await;
    assert_eq!(s, 200);
    server.terminate();
}

#[tokio::test]
async fn logs_never_contain_secrets() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("API_KEY", STATIC_KEY)
        .env("JWT_SECRET", "jwt-secret-for-the-log-test-0123456789abcdef")
        .env("DEFAULT_ENDPOINT_KEY", "sk-endpoint-secret-123456")
        .env("DEFAULT_ENDPOINT_URL", "http://127.0.0.1:9/v1")
        .env(
            "ENCRYPTION_KEY",
            "encryption-key-for-the-log-test-0123456789",
        )
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("x.db").display()),
        );
    let server = start(cmd);
    let token = setup_admin(&server.url, "correct horse battery").await;
    // The endpoint from DEFAULT_ENDPOINT_URL exists, with its key, and its test fails loudly.
    let (_, endpoints) = get(&server.url, "/api/v1/endpoints", Some(&token)).await;
    let default = endpoints
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Default")
        .expect("the default endpoint was added");
    assert_eq!(default["api_key_hint"], "sk-…3456");
    let test_path = format!("/api/v1/endpoints/{}/test", default["id"].as_str().unwrap());
    let (_, test) = post(&server.url, &test_path, Some(&token), json!({})).await;
    assert_eq!(test["ok"], false, "{test}");
    let (_, created) = post(
        &server.url,
        "/api/v1/admin/api-keys",
        Some(&token),
        json!({"name": "ci"}),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    get(&server.url, "/api/v1/auth/me", Some(&key)).await;
    get(&server.url, "/api/v1/auth/me", Some(STATIC_KEY)).await;
    post(
        &server.url,
        "/api/v1/auth/login",
        None,
        json!({"username": "admin", "password": "a wrong password"}),
    )
    .await;
    let (_, log) = server.terminate();
    assert!(
        log.contains("failed sign-in"),
        "the failure is logged: {log}"
    );
    for secret in [
        STATIC_KEY,
        "jwt-secret-for-the-log-test",
        "encryption-key-for-the-log",
        "sk-endpoint-secret",
        "correct horse battery",
        "a wrong password",
        key.as_str(),
        token.as_str(),
    ] {
        assert!(!log.contains(secret), "{secret} appears in the log");
    }
}

/// The Compose topology, natively: the binary in `serve` role on PostgreSQL.
#[tokio::test]
async fn serves_on_postgresql_like_the_compose_stack() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(database) = engine::testing::TestDatabase::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .env("DATABASE_URL", &database.url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied (postgres)"));
    // The local server trusts connections, so a planted password is ignored by it and must be
    // hidden by us.
    let mut with_password = url::Url::parse(&database.url).unwrap();
    with_password
        .set_password(Some("planted-db-password"))
        .unwrap();
    let mut cmd = command(dir.path());
    cmd.env("DATABASE_URL", with_password.as_str())
        .env("REDIS_URL", "redis://:planted-redis-pw@127.0.0.1:6379");
    let server = start(cmd);
    let (s, health) = get(&server.url, "/health", None).await;
    assert_eq!(
        (s, health["database"]["backend"].as_str()),
        (200, Some("postgres"))
    );
    let token = setup_admin(&server.url, "correct horse battery").await;
    let (s, _) = post(
        &server.url,
        "/api/v1/projects",
        Some(&token),
        json!({"name": "on postgres"}),
    )
    .await;
    assert_eq!(s, 201);
    let (code, log) = server.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("postgres"), "{log}");
    assert!(
        !log.contains("planted-db-password") && !log.contains("planted-redis-pw"),
        "{log}"
    );
}

/// `kill -9` in the middle of a batch: after a restart no run is left pending or running,
/// completed runs keep their results, the interrupted ones say so.
#[tokio::test]
async fn a_killed_server_loses_no_completed_run_and_leaves_none_stuck() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("MAX_CONCURRENT_RUNS", "1")
        .env("SEED_DEMO", "false");
    let server = start(cmd);
    let token = setup_admin(&server.url, "correct horse battery").await;
    let (_, endpoint) = post(
        &server.url,
        "/api/v1/endpoints",
        Some(&token),
        json!({"name": "slow", "kind": "simulated", "options": {"latency_ms": 400}}),
    )
    .await;
    let (_, project) = post(
        &server.url,
        "/api/v1/projects",
        Some(&token),
        json!({"name": "p"}),
    )
    .await;
    let items: Vec<Value> = (0..8)
        .map(|i| json!({"input": {"text": format!("Item {i} in Paris")}}))
        .collect();
    let (s, experiment) = post(&server.url, "/api/v1/experiments", Some(&token), json!({
        "project_id": project["id"], "name": "e", "sample_data": items,
        "pipeline_stages": [{"name": "one", "endpoint_id": endpoint["id"], "model": "sim-large", "user": "{{ input.text }}"}]
    })).await;
    assert_eq!(s, 201, "{experiment}");
    let experiment_id = experiment["id"].as_str().unwrap().to_owned();
    let (url, body, auth) = (
        server.url.clone(),
        json!({"experiment_id": experiment_id}),
        token.clone(),
    );
    let batch = tokio::spawn(async move { post(&url, "/api/v1/runs", Some(&auth), body).await });
    let runs_path = format!("/api/v1/experiments/{experiment_id}/runs?limit=100");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = get(&server.url, &runs_path, Some(&token)).await;
        if page["runs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["status"] == "completed"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no run completed: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut child = server.child;
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    batch.abort();

    let mut cmd = command(dir.path());
    cmd.env("SEED_DEMO", "false");
    let restarted = start(cmd);
    let (_, page) = get(&restarted.url, &runs_path, Some(&token)).await;
    let runs = page["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        8,
        "every run was persisted before any call: {page}"
    );
    let completed: Vec<&Value> = runs.iter().filter(|r| r["status"] == "completed").collect();
    let failed: Vec<&Value> = runs.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(
        completed.len() + failed.len(),
        8,
        "none pending or running: {page}"
    );
    assert!(!completed.is_empty() && !failed.is_empty(), "{page}");
    assert!(
        failed
            .iter()
            .all(|r| r["error"].as_str().unwrap().starts_with("interrupted")),
        "{page}"
    );
    for run in completed {
        let (_, detail) = get(
            &restarted.url,
            &format!("/api/v1/runs/{}", run["id"].as_str().unwrap()),
            Some(&token),
        )
        .await;
        assert_eq!(
            detail["stages"].as_array().unwrap().len(),
            1,
            "the completed run kept its result"
        );
    }
    restarted.terminate();
}

/// A webhook delivery queued before `kill -9` goes out after the restart: with the id it was
/// queued with, once.
#[tokio::test]
async fn a_killed_server_still_delivers_its_queued_webhooks_after_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("SEED_DEMO", "false");
    let server = start(cmd);
    let token = setup_admin(&server.url, "correct horse battery").await;
    let put = reqwest::Client::new()
        .put(format!("{}/api/v1/admin/settings", server.url))
        .bearer_auth(&token)
        .json(&json!({"allow_private_webhook_targets": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    // The receiver is down for now: its port is free but nothing listens yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (s, hook) = post(&server.url, "/api/v1/webhooks", Some(&token), json!({
        "name": "later", "url": format!("http://127.0.0.1:{port}/hook"), "events": ["human_needed"]
    })).await;
    assert_eq!(s, 201, "{hook}");
    let deliveries = format!(
        "/api/v1/webhooks/{}/deliveries",
        hook["id"].as_str().unwrap()
    );
    let (_, endpoint) = post(
        &server.url,
        "/api/v1/endpoints",
        Some(&token),
        json!({"name": "sim", "kind": "simulated"}),
    )
    .await;
    let (_, project) = post(
        &server.url,
        "/api/v1/projects",
        Some(&token),
        json!({"name": "p"}),
    )
    .await;
    let (_, experiment) = post(&server.url, "/api/v1/experiments", Some(&token), json!({
        "project_id": project["id"], "name": "e", "sample_data": [{"input": {"text": "x"}}],
        "pipeline_stages": [{"name": "s", "endpoint_id": endpoint["id"], "model": "sim-small", "user": "{{ input.text }}"}]
    })).await;
    let (s, _) = post(
        &server.url,
        &format!(
            "/api/v1/experiments/{}/human-needed",
            experiment["id"].as_str().unwrap()
        ),
        Some(&token),
        json!({"reason": "survive a crash"}),
    )
    .await;
    assert_eq!(s, 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    let queued = loop {
        let (_, page) = get(&server.url, &deliveries, Some(&token)).await;
        if page["deliveries"][0]["attempts"] == 1 {
            break page["deliveries"][0].clone();
        }
        assert!(Instant::now() < deadline, "no failed attempt: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(queued["status"], "pending");
    let mut child = server.child;
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    // Now the receiver is up, and the server comes back on the same data.
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                sink.lock().unwrap().push((id, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut cmd = command(dir.path());
    cmd.env("SEED_DEMO", "false");
    let restarted = start(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = get(&restarted.url, &deliveries, Some(&token)).await;
        if page["deliveries"][0]["status"] == "delivered" {
            assert_eq!(page["deliveries"][0]["attempts"], 2, "{page}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered after the restart: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "delivered once");
    assert_eq!(got[0].0, queued["id"].as_str().unwrap());
    assert!(got[0].1.contains("survive a crash"));
    let (code, _) = restarted.terminate();
    assert_eq!(code, 0);
}

/// `kill -9` in the middle of a guided sweep: the restarted server goes on with the same
/// search (the configurations tried so far, then more), runs each (configuration, item)
/// once, makes no call twice, and stays within the budget.
#[tokio::test]
async fn a_killed_guided_sweep_resumes_its_search_without_repeating_a_call() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("MAX_CONCURRENT_RUNS", "4")
        .env("SEED_DEMO", "false");
    let server = start(cmd);
    let token = setup_admin(&server.url, "correct horse battery").await;
    let (_, endpoint) = post(
        &server.url,
        "/api/v1/endpoints",
        Some(&token),
        json!({"name": "slow", "kind": "simulated", "options": {"latency_ms": 60}}),
    )
    .await;
    let (_, project) = post(
        &server.url,
        "/api/v1/projects",
        Some(&token),
        json!({"name": "p"}),
    )
    .await;
    let texts = [
        "Ada Lovelace in London",
        "Grace Hopper at Yale",
        "Alan Turing at Bletchley",
        "Katherine Johnson at NASA",
        "Linus Torvalds in Helsinki",
        "Barbara Liskov at MIT",
        "Dennis Ritchie at Bell",
        "Donald Knuth at Stanford",
    ];
    let items: Vec<Value> = texts
        .iter()
        .map(|t| {
            json!({"input": {"text": t},
        "reference": engine::providers::simulated::ideal_answer(t).join(", ")})
        })
        .collect();
    let (s, experiment) = post(&server.url, "/api/v1/experiments", Some(&token), json!({
        "project_id": project["id"], "name": "guided", "sample_data": items,
        "pipeline_stages": [{"name": "one", "endpoint_id": endpoint["id"], "model": "sim-large",
                             "system": "List the names.", "user": "{{ input.text }}"}],
        "parameter_space": {"stages": [{
            "prompts": [{"name": "a", "system": "List the names."}, {"name": "b", "system": "Return only the names."},
                        {"name": "c", "system": "Think, then list the names."}],
            "models": [{"model": "sim-large"}, {"model": "sim-medium"}, {"model": "sim-small"}],
            "params": {"temperature": [0.1, 0.5, 0.9]}}]},
        "scoring_config": [{"kind": "lexical_similarity", "name": "f1"}]
    })).await;
    assert_eq!(s, 201, "{experiment}");
    let base = format!("/api/v1/experiments/{}", experiment["id"].as_str().unwrap());
    let (s, sweep) = post(
        &server.url,
        &format!("{base}/sweep"),
        Some(&token),
        json!({
        "strategy": {"kind": "guided", "seed": 4}, "budget": {"max_calls": 80}}),
    )
    .await;
    assert_eq!(s, 201, "{sweep}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        let (_, sweep) = get(&server.url, &format!("{base}/sweep"), Some(&token)).await;
        if sweep["guide"]["round"].as_u64().unwrap_or(0) >= 3
            && sweep["in_flight"].as_i64().unwrap_or(0) > 0
        {
            break sweep;
        }
        assert!(
            Instant::now() < deadline,
            "the sweep did not get going: {sweep}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut child = server.child;
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    let mut cmd = command(dir.path());
    cmd.env("MAX_CONCURRENT_RUNS", "4")
        .env("SEED_DEMO", "false");
    let restarted = start(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let (_, sweep) = get(&restarted.url, &format!("{base}/sweep"), Some(&token)).await;
        if sweep["status"] != "running" {
            break sweep;
        }
        assert!(
            Instant::now() < deadline,
            "the sweep did not end after the restart: {sweep}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(after["status"], "completed", "{after}");
    let keys = |s: &Value| -> Vec<String> {
        s["guide"]["configurations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["config_key"].as_str().unwrap().to_owned())
            .collect()
    };
    let (k0, k1) = (keys(&before), keys(&after));
    assert!(
        k1.len() > k0.len(),
        "the search went on: {} then {}",
        k0.len(),
        k1.len()
    );
    assert_eq!(k1[..k0.len()], k0[..], "the search state survived the kill");
    assert!(after["guide"]["round"].as_u64() > before["guide"]["round"].as_u64());
    let (_, page) = get(
        &restarted.url,
        &format!("{base}/runs?limit=1000"),
        Some(&token),
    )
    .await;
    let runs = page["runs"].as_array().unwrap();
    assert_eq!(
        runs.len() as i64,
        after["progress"]["total"].as_i64().unwrap()
    );
    let mut seen = std::collections::HashSet::new();
    for r in runs {
        assert!(
            seen.insert((r["config_key"].clone(), r["item_id"].clone())),
            "ran twice: {r}"
        );
        assert!(
            matches!(r["status"].as_str(), Some("completed" | "cached")),
            "{r}"
        );
    }
    let completed = runs.iter().filter(|r| r["status"] == "completed").count() as i64;
    assert_eq!(
        after["progress"]["calls"].as_i64().unwrap(),
        completed,
        "one call per completed run: none repeated"
    );
    assert!(completed <= 80, "the budget held: {completed}");
    restarted.terminate();
}
