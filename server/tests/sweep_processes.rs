//! Sweep durability with real `promptlooper` processes: a `serve` killed with SIGKILL in the
//! middle of a sweep resumes it by itself after a restart (SQLite); a `serve` and two
//! `worker`s on one PostgreSQL database execute every run of a large sweep exactly once and
//! stream every run's end to the serve's live clients; a worker refuses SQLite.
//!
//! The LLM is `promptlooper mock-llm`, in its own process, so its request counters count
//! every call any process made.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_promptlooper");
const STATIC_KEY: &str = "static-key-sweep-process-tests-0123456789abcdef";
const JWT_SECRET: &str = "jwt-secret-shared-by-the-sweep-processes-0123456789";
const ENCRYPTION_KEY: &str = "encryption-key-shared-by-the-sweep-processes-0123456789";

/// The `promptlooper` command with a clean environment (serve or worker).
fn command(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("MCP_PORT", "0")
        .env("LEPTOS_SITE_ROOT", data_dir.join("site"))
        .env("SEED_DEMO", "false")
        .env("API_KEY", STATIC_KEY)
        .env(
            "RUST_LOG",
            "info,sqlx=warn,tower_sessions=warn,tower_http=warn",
        );
    c
}

/// A child process whose standard error is collected; killed if the test ends early.
struct Proc {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    /// Spawns `cmd` and waits (up to 60 s) until its log contains `marker`.
    fn start(name: &'static str, mut cmd: Command, marker: &str) -> Proc {
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
        let mut p = Proc { name, child, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !p.log().contains(marker) {
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!("{name} exited with {status}: {}", p.log());
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not log {marker:?}: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The address after "listening on " in the log.
    fn url(&self) -> String {
        let log = self.log();
        let at = log
            .find("listening on http://")
            .expect("a listening address");
        log[at + "listening on ".len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches("/v1")
            .to_owned()
    }

    fn signal(&self, signal: &str) {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// SIGTERM, then wait (up to 60 s): the exit code and the full log.
    fn terminate(&mut self) -> (i32, String) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} ignored SIGTERM for 60 s: {}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        (status.code().unwrap_or(-1), self.log())
    }

    /// SIGKILL, then wait.
    fn kill(&mut self) {
        self.signal("-KILL");
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `promptlooper mock-llm` on a free port.
fn start_mock(latency_ms: u64) -> Proc {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .args([
            "mock-llm",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--latency-ms",
            &latency_ms.to_string(),
            "--fail-rate",
            "0",
        ]);
    Proc::start("mock-llm", cmd, "listening on http://")
}

/// The REST API of one serve process, with the static API key.
struct Api {
    url: String,
    http: reqwest::Client,
}

impl Api {
    fn new(url: String) -> Api {
        Api {
            url,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(STATIC_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(STATIC_KEY)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    /// An endpoint on the mock, a project, and an experiment of `items` items × `temperatures`
    /// temperatures (one stage): that many distinct calls. Returns the experiment id.
    async fn experiment(&self, mock_url: &str, items: usize, temperatures: usize) -> String {
        let (s, endpoint) = self
            .post(
                "/api/v1/endpoints",
                json!({"name": "mock", "kind": "openai", "base_url": format!("{mock_url}/v1"),
                       "timeout_ms": 5000}),
            )
            .await;
        assert_eq!(s, 201, "{endpoint}");
        let (s, project) = self.post("/api/v1/projects", json!({"name": "p"})).await;
        assert_eq!(s, 201, "{project}");
        let sample: Vec<Value> = (0..items)
            .map(|i| json!({"input": {"text": format!("Item {i}: Ada Lovelace in London")}}))
            .collect();
        let temps: Vec<f64> = (0..temperatures).map(|t| t as f64 / 10.0).collect();
        let (s, experiment) = self
            .post(
                "/api/v1/experiments",
                json!({
                    "project_id": project["id"], "name": "durable", "sample_data": sample,
                    "pipeline_stages": [{"name": "one", "endpoint_id": endpoint["id"],
                                         "model": "sim-medium", "user": "{{ input.text }}"}],
                    "parameter_space": {"stages": [{"params": {"temperature": temps}}]}
                }),
            )
            .await;
        assert_eq!(s, 201, "{experiment}");
        experiment["id"].as_str().unwrap().to_owned()
    }

    async fn sweep(&self, experiment: &str) -> Value {
        let (s, sweep) = self
            .get(&format!("/api/v1/experiments/{experiment}/sweep"))
            .await;
        assert_eq!(s, 200, "{sweep}");
        sweep
    }

    /// Polls the experiment's sweep until `done(sweep)` (panics after `limit`).
    async fn wait_sweep(
        &self,
        experiment: &str,
        limit: Duration,
        what: &str,
        process: &Proc,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let sweep = self.sweep(experiment).await;
            if done(&sweep) {
                return sweep;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {sweep}\n{} log:\n{}",
                process.name,
                process.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every run of the experiment (pages of 1000).
    async fn all_runs(&self, experiment: &str) -> Vec<Value> {
        let mut runs = Vec::new();
        loop {
            let (s, page) = self
                .get(&format!(
                    "/api/v1/experiments/{experiment}/runs?limit=1000&offset={}",
                    runs.len()
                ))
                .await;
            assert_eq!(s, 200, "{page}");
            let batch = page["runs"].as_array().unwrap();
            let total = page["total"].as_u64().unwrap() as usize;
            runs.extend(batch.iter().cloned());
            if batch.is_empty() || runs.len() >= total {
                return runs;
            }
        }
    }

    /// How many timeline events of this type the experiment has.
    async fn event_total(&self, experiment: &str, event_type: &str) -> u64 {
        let (s, page) = self
            .get(&format!(
                "/api/v1/experiments/{experiment}/events?type={event_type}&limit=1"
            ))
            .await;
        assert_eq!(s, 200, "{page}");
        page["total"].as_u64().unwrap()
    }
}

/// Chat completions the mock has answered (or refused) so far.
async fn mock_chats(mock_url: &str) -> u64 {
    let stats: Value = reqwest::get(format!("{mock_url}/mock/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["chat_completions"].as_u64().unwrap()
}

fn count_by(runs: &[Value], field: &str) -> usize {
    runs.iter()
        .map(|r| r[field].as_str().unwrap().to_owned())
        .collect::<HashSet<_>>()
        .len()
}

fn statuses(runs: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for r in runs {
        *out.entry(r["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_killed_mid_flight_resumes_by_itself_and_runs_each_run_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut mock = start_mock(100);
    let mock_url = mock.url();
    let serve_cmd = || {
        let mut c = command(dir.path());
        c.env("MAX_CONCURRENT_RUNS", "8");
        c
    };
    let mut first = Proc::start("serve", serve_cmd(), "listening on http://");
    let api = Api::new(first.url());
    let experiment = api.experiment(&mock_url, 20, 10).await;
    let (s, sweep) = api
        .post(
            &format!("/api/v1/experiments/{experiment}/sweep"),
            json!({"strategy": {"kind": "grid"}}),
        )
        .await;
    assert_eq!(s, 201, "{sweep}");
    assert_eq!(sweep["progress"]["total"], 200, "{sweep}");
    let sweep_id = sweep["id"].as_str().unwrap().to_owned();

    // Kill the process once about a third of the runs have ended, with calls in flight. At 8
    // runs of 100 ms at a time that takes about a second; 20 s means the sweep's lanes were
    // never picked up.
    let at_kill = api
        .wait_sweep(
            &experiment,
            Duration::from_secs(20),
            "30% done (lanes not picked up?)",
            &first,
            |s| s["progress"]["done"].as_i64().unwrap() >= 60,
        )
        .await;
    first.kill();
    let done_at_kill = at_kill["progress"]["done"].as_i64().unwrap();
    assert!(
        done_at_kill < 200 && at_kill["status"] == "running",
        "the sweep ended before the kill: {at_kill}"
    );
    let chats_at_kill = mock_chats(&mock_url).await;

    // Nothing is asked of the restarted process: it resumes the sweep by itself.
    let mut second = Proc::start("serve (restarted)", serve_cmd(), "listening on http://");
    let api = Api::new(second.url());
    let sweep = api
        .wait_sweep(
            &experiment,
            Duration::from_secs(60),
            "completion",
            &second,
            |s| s["status"] == "completed",
        )
        .await;
    let elapsed_after_restart = began.elapsed();
    assert_eq!(sweep["id"], sweep_id.as_str(), "{sweep}");
    let p = &sweep["progress"];
    assert_eq!(
        (
            p["done"].as_i64(),
            p["total"].as_i64(),
            p["completed"].as_i64(),
            p["failed"].as_i64(),
            p["cached"].as_i64(),
        ),
        (Some(200), Some(200), Some(200), Some(0), Some(0)),
        "{sweep}"
    );

    let runs = api.all_runs(&experiment).await;
    assert_eq!(runs.len(), 200, "{:?}", statuses(&runs));
    assert_eq!(
        statuses(&runs),
        std::collections::BTreeMap::from([("completed".to_owned(), 200)]),
        "every run completed, none pending, running or failed"
    );
    assert_eq!(count_by(&runs, "id"), 200);
    assert_eq!(count_by(&runs, "config_hash"), 200);
    assert!(runs.iter().all(|r| r["error"].is_null()), "{runs:?}");

    // At most the calls in flight at the kill (MAX_CONCURRENT_RUNS) were made twice.
    let chats = mock_chats(&mock_url).await;
    assert!(
        (200..=208).contains(&chats),
        "{chats} chat requests for 200 runs (8 may be repeated)"
    );

    // One timeline: one run.completed per run, one completion.
    assert_eq!(api.event_total(&experiment, "run.completed").await, 200);
    assert_eq!(
        api.event_total(&experiment, "experiment.completed").await,
        1
    );
    assert_eq!(api.event_total(&experiment, "experiment.started").await, 1);

    // Completed runs have their stage result (a sample, including runs ended before the kill).
    for run in runs.iter().step_by(10) {
        let id = run["id"].as_str().unwrap();
        let (s, detail) = api.get(&format!("/api/v1/runs/{id}")).await;
        assert_eq!(s, 200, "{detail}");
        let stages = detail["stages"].as_array().unwrap();
        assert_eq!(stages.len(), 1, "{detail}");
        assert!(
            !stages[0]["response_raw"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{detail}"
        );
    }

    let (code, log) = second.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("recovered runs an earlier process left unfinished")
            && log.contains("resuming a sweep nobody was driving"),
        "the restart recovered the sweep: {log}"
    );
    mock.terminate();
    eprintln!(
        "killed at done={done_at_kill}, mock chats at kill={chats_at_kill}, total chats={chats} \
         (re-executed {}), completed {:.1}s after start",
        chats - 200,
        elapsed_after_restart.as_secs_f64()
    );
}

/// Reads an SSE response, collecting the `run.completed` run ids and whether
/// `experiment.completed` arrived.
#[derive(Default)]
struct Received {
    run_completed: Vec<String>,
    experiment_completed: usize,
    other: Vec<String>,
}

async fn read_sse(res: reqwest::Response, into: Arc<Mutex<Received>>) {
    let mut body = res.bytes_stream();
    let mut buf = String::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { return };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find('\n') {
            let line = buf[..end].trim_end_matches('\r').to_owned();
            buf.drain(..=end);
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let event: Value = serde_json::from_str(data.trim()).unwrap();
            let mut r = into.lock().unwrap();
            match event["type"].as_str() {
                Some("run.completed") => r
                    .run_completed
                    .push(event["run_id"].as_str().unwrap().to_owned()),
                Some("experiment.completed") => r.experiment_completed += 1,
                other => r.other.push(format!("{other:?}")),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_two_workers_on_postgres_execute_2000_runs_exactly_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(database) = engine::testing::TestDatabase::postgres().await else {
        return;
    };
    let began = Instant::now();
    let mut mock = start_mock(5);
    let mock_url = mock.url();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let cmd = |dir: &tempfile::TempDir| {
        let mut c = command(dir.path());
        c.env("DATABASE_URL", &database.url)
            .env("JWT_SECRET", JWT_SECRET)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("MAX_CONCURRENT_RUNS", "8");
        c
    };
    // The serve migrates the database first; then the workers join.
    let mut serve = Proc::start("serve", cmd(&dirs[0]), "listening on http://");
    let mut workers: Vec<Proc> = dirs[1..]
        .iter()
        .map(|d| {
            let mut c = cmd(d);
            c.arg("worker");
            Proc::start("worker", c, "worker ready")
        })
        .collect();
    let api = Api::new(serve.url());
    let experiment = api.experiment(&mock_url, 100, 20).await;

    // A live client of the serve, connected before the sweep starts.
    let res = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/experiments/{experiment}/events/stream?type=run.completed,experiment.completed",
            api.url
        ))
        .bearer_auth(STATIC_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let received = Arc::new(Mutex::new(Received::default()));
    let reader = tokio::spawn(read_sse(res, received.clone()));

    let (s, sweep) = api
        .post(
            &format!("/api/v1/experiments/{experiment}/sweep"),
            json!({"strategy": {"kind": "grid"}}),
        )
        .await;
    assert_eq!(s, 201, "{sweep}");
    assert_eq!(sweep["progress"]["total"], 2000, "{sweep}");
    // Which processes hold runs while the sweep goes.
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (pool, sampling) = (pool.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut owners = std::collections::BTreeMap::<String, i64>::new();
            while sampling.load(std::sync::atomic::Ordering::SeqCst) {
                let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
                    "SELECT lease_owner, COUNT(*) FROM runs WHERE status = 'running' GROUP BY 1",
                )
                .fetch_all(&pool)
                .await
                .unwrap();
                for (owner, n) in rows {
                    *owners.entry(owner.unwrap_or_default()).or_default() += n;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            owners
        })
    };
    let sweep = api
        .wait_sweep(
            &experiment,
            Duration::from_secs(180),
            "completion",
            &serve,
            |s| s["status"] == "completed",
        )
        .await;
    let sweep_time = began.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    let running_by_owner = sampler.await.unwrap();
    // Lanes spread over the processes: serve and both workers held runs.
    assert_eq!(
        running_by_owner.len(),
        3,
        "every process executed runs (leases sampled every 50 ms): {running_by_owner:?}"
    );
    let p = &sweep["progress"];
    assert_eq!(
        (
            p["done"].as_i64(),
            p["total"].as_i64(),
            p["completed"].as_i64(),
            p["failed"].as_i64(),
            p["cached"].as_i64(),
            p["calls"].as_i64(),
        ),
        (
            Some(2000),
            Some(2000),
            Some(2000),
            Some(0),
            Some(0),
            Some(2000)
        ),
        "{sweep}"
    );
    assert_eq!(
        mock_chats(&mock_url).await,
        2000,
        "one call per run, none repeated"
    );

    let runs = api.all_runs(&experiment).await;
    assert_eq!(runs.len(), 2000);
    assert_eq!(
        statuses(&runs),
        std::collections::BTreeMap::from([("completed".to_owned(), 2000)])
    );
    assert_eq!(count_by(&runs, "id"), 2000);
    assert_eq!(count_by(&runs, "config_hash"), 2000);
    assert_eq!(api.event_total(&experiment, "run.completed").await, 2000);
    assert_eq!(
        api.event_total(&experiment, "experiment.completed").await,
        1
    );

    // Every run's end reached the serve's live client, wherever it was executed, once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        {
            let r = received.lock().unwrap();
            if r.run_completed.len() >= 2000 && r.experiment_completed >= 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the live stream delivered {} run.completed events of 2000 ({} distinct) and \
                 {} experiment.completed",
                r.run_completed.len(),
                r.run_completed.iter().collect::<HashSet<_>>().len(),
                r.experiment_completed
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // duplicates, if any, arrive
    {
        let r = received.lock().unwrap();
        let distinct: HashSet<&String> = r.run_completed.iter().collect();
        let run_ids: HashSet<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(
            (
                r.run_completed.len(),
                distinct.len(),
                r.experiment_completed
            ),
            (2000, 2000, 1),
            "each run.completed exactly once on the live stream"
        );
        assert!(distinct.iter().all(|id| run_ids.contains(id.as_str())));
        assert!(r.other.is_empty(), "the type filter held: {:?}", r.other);
    }
    reader.abort();

    // The database's view: each run claimed once; three processes registered.
    let not_once: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE attempts <> 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(not_once, 0, "every run was claimed exactly once");
    let roles: Vec<(String, i64)> = sqlx::query_as(
        "SELECT role, COUNT(DISTINCT id) FROM processes GROUP BY role ORDER BY role",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        roles,
        vec![("serve".to_owned(), 1), ("worker".to_owned(), 2)],
        "the heartbeat registry"
    );
    // Which process drove the sweep's lanes (informational: lanes go to whoever asks first).
    let lanes: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT lock_by, COUNT(*) FROM apalis.jobs WHERE job_type = $1 GROUP BY lock_by ORDER BY lock_by",
    )
    .bind(engine::jobs::QUEUE)
    .fetch_all(&pool)
    .await
    .unwrap();
    let nodes: Vec<(String, String)> = sqlx::query_as("SELECT id, role FROM processes")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;

    // All three stop cleanly on SIGTERM.
    let (code, log) = serve.terminate();
    assert_eq!(code, 0, "serve: {log}");
    for worker in &mut workers {
        let (code, log) = worker.terminate();
        assert_eq!(code, 0, "worker: {log}");
        assert!(log.contains("stopped"), "{log}");
        assert!(!log.contains("ERROR"), "a worker logged an error: {log}");
    }
    mock.terminate();
    eprintln!(
        "2000 runs completed {:.1}s after start; lanes by worker: {lanes:?}; \
         running runs sampled every 50 ms, by lease owner: {running_by_owner:?}; \
         processes: {nodes:?}",
        sweep_time.as_secs_f64()
    );
}

/// A worker killed with SIGKILL mid-sweep: the serve notices it is gone within seconds (its
/// database session ended), long before its 20 s leases would expire, and takes its runs over;
/// each run still ends once.
#[tokio::test]
async fn a_killed_worker_s_runs_move_on_within_seconds_each_still_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(database) = engine::testing::TestDatabase::postgres().await else {
        return;
    };
    let mut mock = start_mock(100);
    let mock_url = mock.url();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let cmd = |dir: &tempfile::TempDir| {
        let mut c = command(dir.path());
        c.env("DATABASE_URL", &database.url)
            .env("JWT_SECRET", JWT_SECRET)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("MAX_CONCURRENT_RUNS", "4");
        c
    };
    let mut serve = Proc::start("serve", cmd(&dirs[0]), "listening on http://");
    let mut worker = {
        let mut c = cmd(&dirs[1]);
        c.arg("worker");
        Proc::start("worker", c, "worker ready")
    };
    let api = Api::new(serve.url());
    let experiment = api.experiment(&mock_url, 20, 20).await;
    let (s, sweep) = api
        .post(
            &format!("/api/v1/experiments/{experiment}/sweep"),
            json!({"strategy": {"kind": "grid"}}),
        )
        .await;
    assert_eq!(s, 201, "{sweep}");
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let worker_node: String = sqlx::query_scalar("SELECT id FROM processes WHERE role = 'worker'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let held = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM runs WHERE status = 'running' AND lease_owner = $1",
        )
        .bind(&worker_node)
        .fetch_one(&pool)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while held().await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "the worker never leased a run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill();
    let killed = Instant::now();
    while held().await.unwrap() > 0 {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "the dead worker's runs stayed leased"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved = killed.elapsed();
    assert!(
        moved < Duration::from_secs(10),
        "the dead worker's runs moved on after {moved:?}"
    );
    let sweep = api
        .wait_sweep(
            &experiment,
            Duration::from_secs(120),
            "completion",
            &serve,
            |s| s["status"] == "completed",
        )
        .await;
    assert_eq!(
        (
            sweep["progress"]["done"].as_i64(),
            sweep["progress"]["completed"].as_i64()
        ),
        (Some(400), Some(400)),
        "{sweep}"
    );
    let runs = api.all_runs(&experiment).await;
    assert_eq!((runs.len(), count_by(&runs, "id")), (400, 400));
    assert_eq!(
        api.event_total(&experiment, "run.completed").await,
        400,
        "each run ended once"
    );
    pool.close().await;
    let (code, log) = serve.terminate();
    assert_eq!(code, 0, "serve: {log}");
    assert!(
        log.contains("reclaimed the runs of processes that died"),
        "{log}"
    );
    mock.terminate();
    eprintln!(
        "the killed worker's runs moved on {:.2} s after the kill",
        moved.as_secs_f64()
    );
}

#[test]
fn a_worker_refuses_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path()).arg("worker").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(stderr.contains("postgres"), "{stderr}");
}
