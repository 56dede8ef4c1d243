//! `promptlooper run` and `promptlooper import promptfoo` as processes: on an embedded
//! database (SQLite in a temporary or given folder, or DATABASE_URL), against a server over
//! REST, with the simulated provider and the local mock; thresholds both ways, bad files named
//! by line and field, secrets never printed.

mod common;

use std::path::{Path, PathBuf};

use common::mock::Mock;
use common::{STATIC_KEY, TestServer};
use engine::testing::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};
use server::mock_llm::MockConfig;

const BIN: &str = env!("CARGO_BIN_EXE_promptlooper");
const MOCK_KEY: &str = "sk-mock-cli-secret-0123456789abcdef";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

async fn cli(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = tokio::process::Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().await.expect("the binary runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn example() -> String {
    examples().join("ci/experiment.yaml").display().to_string()
}

/// The example file, changed by `edit`, written next to a copy of its CSV in `dir`.
fn variant(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> (String, String) {
    std::fs::copy(examples().join("ci/entities.csv"), dir.join("entities.csv")).unwrap();
    let text = edit(std::fs::read_to_string(example()).unwrap());
    let path = dir.join(name);
    std::fs::write(&path, &text).unwrap();
    (path.display().to_string(), text)
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect(needle) + 1
}

#[tokio::test]
async fn a_run_passes_or_fails_by_its_threshold_and_writes_exports() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().display().to_string();
    let pass = cli(
        &["run", &example(), "--fail-under", "0.5", "--out", &out],
        &[],
    )
    .await;
    assert_eq!(pass.code, 0, "{}", pass.both());
    assert!(pass.stdout.contains("PASS: best score"), "{}", pass.stdout);
    assert!(
        pass.stdout.contains("#  score") || pass.stdout.contains("#   score"),
        "{}",
        pass.stdout
    );
    assert!(
        pass.stdout.contains("90 runs: 90 completed"),
        "{}",
        pass.stdout
    );
    // Not a terminal: plain progress lines, ending at the total.
    assert!(
        pass.stderr.contains("progress: 90/90 runs"),
        "{}",
        pass.stderr
    );
    for f in [
        "leaderboard.json",
        "best.json",
        "best.env",
        "best.yaml",
        "report.md",
    ] {
        assert!(out_dir.path().join(f).is_file(), "{f} written");
    }
    let board: Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("leaderboard.json")).unwrap())
            .unwrap();
    let best: Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("best.json")).unwrap()).unwrap();
    assert_eq!(board["total"], 18);
    let top = board["entries"][0]["score"].as_f64().unwrap();
    assert_eq!(
        best["config_key"], board["entries"][0]["config_key"],
        "{best}"
    );
    assert!(top > 0.5, "{top}");
    let env = std::fs::read_to_string(out_dir.path().join("best.env")).unwrap();
    assert!(env.contains("MODEL=sim-large"), "{env}");

    // The same file again, asking for more than the best reaches: exit 1, and JSON says why.
    let fail = cli(&["run", &example(), "--fail-under", "0.999", "--json"], &[]).await;
    assert_eq!(fail.code, 1, "{}", fail.both());
    let result: Value = serde_json::from_str(&fail.stdout).expect("--json prints JSON only");
    assert_eq!(result["passed"], false);
    assert_eq!(result["fail_under"], 0.999);
    assert_eq!(result["sweep"]["status"], "completed");
    // The simulated provider is deterministic: the same best score.
    let again = result["best"]["score"].as_f64().unwrap();
    assert!((again - top).abs() < 1e-9, "{again} vs {top}");

    // The file's own fail_under (0.5) applies when the flag is absent.
    let default = cli(&["run", &example(), "--json"], &[]).await;
    assert_eq!(default.code, 0, "{}", default.both());
    assert_eq!(
        serde_json::from_str::<Value>(&default.stdout).unwrap()["fail_under"],
        0.5
    );
}

/// A change to the example file's text.
type Edit = Box<dyn Fn(String) -> String>;

#[tokio::test]
async fn bad_files_exit_2_naming_the_line_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Edit, &str, &str)> = vec![
        (
            "unknown-field.yaml",
            Box::new(|t: String| t.replace("    model: sim-medium", "    modle: sim-medium")),
            "modle:",
            "stages[0].modle: unknown field `modle`",
        ),
        (
            "bad-range.yaml",
            Box::new(|t: String| t.replace("[0.2, 0.5, 0.9]", "[0.2, 5.5, 0.9]")),
            "temperature: [0.2, 5.5",
            "stages[0].vary.params.temperature: must be between 0 and 2",
        ),
        (
            "unknown-endpoint.yaml",
            Box::new(|t: String| {
                t.replace(
                    "    endpoint: sim\n    model",
                    "    endpoint: nope\n    model",
                )
            }),
            "endpoint: nope",
            "stages[0].endpoint: no endpoint named \"nope\"",
        ),
        (
            "template.yaml",
            Box::new(|t: String| t.replace("{{ input.text }}", "{{ input.txt }}")),
            "user: |",
            "stages[0].user: undefined variable input.txt",
        ),
        (
            "scorer.yaml",
            Box::new(|t: String| t.replace("kind: keywords", "kind: keyword")),
            "kind: keyword",
            "scorers[2].kind:",
        ),
        (
            "key.yaml",
            Box::new(|t: String| {
                t.replace(
                    "    options: {latency_ms: 0}",
                    "    options: {latency_ms: 0}\n  hosted:\n    kind: openai\n    base_url: https://example.invalid/v1\n    api_key_env: PL_CLI_TEST_UNSET_KEY",
                )
            }),
            "api_key_env: PL_CLI_TEST_UNSET_KEY",
            "endpoints.hosted.api_key_env: the environment variable PL_CLI_TEST_UNSET_KEY is not set",
        ),
        (
            "items.yaml",
            Box::new(|t: String| {
                t.replace(
                    "  file: entities.csv",
                    "  items:\n    - {text: Ada Lovelace in 1843}\n    - {input: 5}",
                )
            }),
            "- {input: 5}",
            "data.items[1]",
        ),
        (
            "strategy.yaml",
            Box::new(|t: String| {
                t.replace("strategy: grid", "strategy: {kind: random, samples: 0}")
            }),
            "strategy: {kind: random",
            "strategy.samples: must be between 1 and",
        ),
    ];
    for (name, edit, needle, expected) in cases {
        let (path, text) = variant(dir.path(), name, edit);
        let out = cli(&["run", &path], &[]).await;
        assert_eq!(out.code, 2, "{name}: {}", out.both());
        let line = line_of(&text, needle);
        let placed = format!("{path}:{line}: {expected}");
        assert!(
            out.stderr.contains(&placed),
            "{name}: wanted {placed:?} in {}",
            out.stderr
        );
        assert!(
            out.stdout.is_empty(),
            "{name}: nothing on stdout: {}",
            out.stdout
        );
    }
    let (path, _) = variant(dir.path(), "syntax.yaml", |t| {
        t.replace("models: [sim-small", "models: [sim-small\n  oops: ]")
    });
    let out = cli(&["run", &path], &[]).await;
    assert_eq!(out.code, 2, "{}", out.both());
    assert!(out.stderr.contains("not valid YAML"), "{}", out.stderr);
    let out = cli(&["run", &example(), "--fail-under", "2"], &[]).await;
    assert_eq!(out.code, 2, "{}", out.both());
    let out = cli(&["run", "/nonexistent/experiment.yaml"], &[]).await;
    assert_eq!(out.code, 2, "{}", out.both());
}

/// An experiment file on the mock at `url` with its key in PL_CLI_MOCK_KEY.
fn mock_file(dir: &Path, url: &str) -> String {
    let text = format!(
        r#"project: CLI tests
name: Mock answers
endpoints:
  mock:
    kind: openai
    base_url: {url}
    api_key_env: PL_CLI_MOCK_KEY
data:
  items:
    - {{text: Marie Curie moved to Paris in 1891., reference: "Marie, Curie, Paris, 1891"}}
    - {{text: Ada Lovelace met Charles Babbage in 1833., reference: "Ada, Lovelace, Charles, Babbage, 1833"}}
    - {{input: {{text: Tokyo hosted the Games in 1964.}}, reference: "Tokyo, Games, 1964"}}
stages:
  - endpoint: mock
    model: gpt-4o-mini
    system: Return only the entities, as a comma-separated list.
    user: "{{{{ input.text }}}}"
    vary:
      params:
        temperature: [0.1, 0.9]
scorers:
  - {{kind: lexical_similarity, metric: token_f1}}
  - {{kind: keywords, forbidden: [perhaps]}}
"#
    );
    let path = dir.join("mock.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn a_hosted_endpoint_takes_its_key_from_the_environment_and_never_shows_it() {
    let mock = Mock::start(MockConfig {
        api_key: Some(MOCK_KEY.into()),
        ..MockConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = mock_file(dir.path(), &mock.url);
    let out_dir = dir.path().join("out");
    let out = out_dir.display().to_string();
    let ok = cli(
        &["run", &file, "--fail-under", "0.3", "--out", &out],
        &[("PL_CLI_MOCK_KEY", MOCK_KEY), ("RUST_LOG", "debug")],
    )
    .await;
    assert_eq!(ok.code, 0, "{}", ok.both());
    assert!(ok.stdout.contains("6 runs: 6 completed"), "{}", ok.stdout);
    let stats = mock_stats(&mock).await;
    assert_eq!(stats["chat_completions"], 6, "{stats}");
    assert!(!ok.both().contains(MOCK_KEY), "the key was printed");
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains(MOCK_KEY) && !text.contains("0123456789abcdef"));
    }

    // Without the variable: a mistake in the file's setup, before anything runs.
    let missing = cli(&["run", &file], &[]).await;
    assert_eq!(missing.code, 2, "{}", missing.both());
    assert!(
        missing.stderr.contains(
            "endpoints.mock.api_key_env: the environment variable PL_CLI_MOCK_KEY is not set"
        ),
        "{}",
        missing.stderr
    );

    // A key the endpoint refuses: every run fails, nothing is scored, exit 1 (not a hang).
    let refused = cli(
        &["run", &file, "--fail-under", "0.3"],
        &[("PL_CLI_MOCK_KEY", "sk-wrong-key-000000000000000000")],
    )
    .await;
    assert_eq!(refused.code, 1, "{}", refused.both());
    assert!(refused.stdout.contains("6 failed"), "{}", refused.stdout);
    assert!(
        refused
            .stdout
            .contains("FAIL: no configuration has a score"),
        "{}",
        refused.stdout
    );
    assert!(
        !refused.both().contains("sk-wrong-key-0000"),
        "the key was printed"
    );
}

#[tokio::test]
async fn a_promptfoo_config_imports_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let imported = dir.path().join("imported.yaml");
    let config = examples().join("promptfoo/promptfooconfig.yaml");
    let out = cli(
        &[
            "import",
            "promptfoo",
            config.to_str().unwrap(),
            "-o",
            imported.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.both());
    for unmapped in [
        "not mapped: assertion `javascript` (2×)",
        "not mapped: assertion `latency` (1×)",
    ] {
        assert!(out.stderr.contains(unmapped), "{}", out.stderr);
    }
    let text = std::fs::read_to_string(&imported).unwrap();
    assert!(text.starts_with("# Imported from"), "{text}");
    assert!(text.contains("#   - assertion `javascript` (2×)"), "{text}");
    let file: Value = serde_norway::from_str(&text).unwrap();
    // 3 prompts (inline, a text file, a chat file), 3 providers, 6 items (one test's array var
    // gives two, the CSV two more), the vars as inputs.
    let stage = &file["stages"][0];
    assert_eq!(
        stage["vary"]["prompts"].as_array().unwrap().len(),
        3,
        "{stage}"
    );
    assert_eq!(
        stage["vary"]["models"].as_array().unwrap().len(),
        3,
        "{stage}"
    );
    assert_eq!(
        stage["user"],
        "Translate into {{input.language}}: {{input.text}}"
    );
    assert_eq!(
        stage["vary"]["prompts"][2]["system"],
        "You are a professional translator. Answer with the translation only."
    );
    let items = file["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 6, "{items:?}");
    assert_eq!(items[2]["input"]["language"], "German");
    assert_eq!(items[3]["reference"], "Merci pour votre patience.");
    let kinds: Vec<&str> = file["scorers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["keywords", "rhai", "llm_judge", "embedding_similarity"]
    );

    // Run it against the mock, as promptfoo would call OpenAI and Anthropic.
    let mock = Mock::start(MockConfig {
        api_key: Some(MOCK_KEY.into()),
        ..MockConfig::default()
    })
    .await;
    let env = [
        ("OPENAI_BASE_URL", mock.url.as_str()),
        ("ANTHROPIC_BASE_URL", mock.url.trim_end_matches("/v1")),
        ("OPENAI_API_KEY", MOCK_KEY),
        ("ANTHROPIC_API_KEY", MOCK_KEY),
    ];
    let run = cli(
        &[
            "run",
            imported.to_str().unwrap(),
            "--json",
            "--fail-under",
            "0.1",
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.both());
    let result: Value = serde_json::from_str(&run.stdout).unwrap();
    let board = &result["leaderboard"];
    // 3 prompts × 3 models × 2 temperatures.
    assert_eq!(board["total"], 18, "{board}");
    let top = &board["entries"][0];
    assert_eq!(top["runs"], 6);
    assert_eq!(top["failed"], 0);
    // Each mapped scorer produced values: the Rhai checks, the judge, the keywords.
    for scorer in ["checks", "llm_rubric", "not-icontains"] {
        assert!(
            top["scorers"][scorer]["mean"].is_number(),
            "{scorer}: {}",
            top["scorers"]
        );
    }
    let stats = mock_stats(&mock).await;
    assert!(
        stats["messages"].as_u64().unwrap() > 0,
        "Anthropic was called: {stats}"
    );
    let strict = cli(
        &["run", imported.to_str().unwrap(), "--fail-under", "0.99"],
        &env,
    )
    .await;
    assert_eq!(strict.code, 1, "{}", strict.both());
    assert!(
        strict.stdout.contains("FAIL: best score"),
        "{}",
        strict.stdout
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "prompts: []\nproviders: [openai:gpt-4o]\n").unwrap();
    let out = cli(&["import", "promptfoo", bad.to_str().unwrap()], &[]).await;
    assert_eq!(out.code, 2, "{}", out.both());
    assert!(out.stderr.contains("no prompts"), "{}", out.stderr);
}

#[tokio::test]
async fn a_given_database_keeps_the_cache_between_runs() {
    for database in TestDatabase::all().await {
        let data_dir = tempfile::tempdir().unwrap();
        let env = [
            ("DATABASE_URL", database.url.as_str()),
            ("DATA_DIR", data_dir.path().to_str().unwrap()),
        ];
        let first = cli(&["run", &example(), "--json"], &env).await;
        assert_eq!(first.code, 0, "{:?}: {}", database.kind, first.both());
        let first: Value = serde_json::from_str(&first.stdout).unwrap();
        assert_eq!(first["sweep"]["progress"]["completed"], 90);
        let second = cli(&["run", &example(), "--json"], &env).await;
        assert_eq!(second.code, 0, "{:?}: {}", database.kind, second.both());
        let second: Value = serde_json::from_str(&second.stdout).unwrap();
        // Every answer comes from the cache, is scored the same, and costs nothing.
        assert_eq!(
            second["sweep"]["progress"]["cached"], 90,
            "{:?}",
            database.kind
        );
        assert_eq!(second["sweep"]["progress"]["calls"], 0);
        assert_eq!(second["best"]["config_key"], first["best"]["config_key"]);
        let (a, b) = (
            first["best"]["score"].as_f64().unwrap(),
            second["best"]["score"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        assert_ne!(second["experiment"]["id"], first["experiment"]["id"]);
    }
}

#[tokio::test]
async fn a_run_on_a_server_uses_its_datasets_and_changes_nothing_on_a_bad_file() {
    for server in TestServer::all().await {
        let project = server
            .call(
                Method::POST,
                "/api/v1/projects",
                Some(STATIC_KEY),
                Some(json!({"name": "Examples"})),
            )
            .await;
        assert_eq!(project.0.as_u16(), 201, "{:?}", project.1);
        let items: Vec<Value> = csv_items();
        let dataset = server
            .call(
                Method::POST,
                "/api/v1/datasets",
                Some(STATIC_KEY),
                Some(json!({"project_id": project.1["id"], "name": "entities", "sample_data": items})),
            )
            .await;
        assert_eq!(dataset.0.as_u16(), 201, "{:?}", dataset.1);
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = variant(dir.path(), "server.yaml", |t| {
            t.replace("  file: entities.csv", "  dataset: entities")
        });
        let env = [("PROMPTLOOPER_API_KEY", STATIC_KEY)];
        let out = cli(&["run", &file, "--server", &server.url, "--json"], &env).await;
        assert_eq!(out.code, 0, "{}", out.both());
        let result: Value = serde_json::from_str(&out.stdout).unwrap();
        let id = result["experiment"]["id"].as_str().unwrap();
        assert_eq!(
            result["url"],
            format!("{}/experiments/{id}", server.url),
            "{result}"
        );
        let (status, e) = server
            .get(&format!("/api/v1/experiments/{id}"), Some(STATIC_KEY))
            .await;
        assert_eq!(status.as_u16(), 200);
        assert_eq!(e["items"]["count"], 5, "{e}");
        assert_eq!(e["status"], "completed");
        let (_, board) = server
            .get(
                &format!("/api/v1/experiments/{id}/leaderboard?limit=1"),
                Some(STATIC_KEY),
            )
            .await;
        assert_eq!(board["entries"][0]["score"], result["best"]["score"]);

        // A bad scorer is found by the server: exit 2, placed in the file, and the experiment
        // the run began is gone again.
        let before = server
            .get("/api/v1/experiments?limit=500", Some(STATIC_KEY))
            .await
            .1;
        let (bad, text) = variant(dir.path(), "bad.yaml", |t| {
            t.replace("  file: entities.csv", "  dataset: entities")
                .replace("    forbidden: [perhaps", "    forbiden: [perhaps")
        });
        let out = cli(&["run", &bad, "--server", &server.url], &env).await;
        assert_eq!(out.code, 2, "{}", out.both());
        let line = line_of(&text, "  - kind: keywords");
        assert!(out.stderr.contains(&format!("{bad}:")), "{}", out.stderr);
        assert!(
            out.stderr.contains("scorers[2]"),
            "{} (line {line})",
            out.stderr
        );
        let after = server
            .get("/api/v1/experiments?limit=500", Some(STATIC_KEY))
            .await
            .1;
        assert_eq!(before, after, "a bad file changes nothing");

        // A refused key: exit 3, said plainly, the key not echoed.
        let out = cli(
            &["run", &file, "--server", &server.url],
            &[("PROMPTLOOPER_API_KEY", "pl-not-a-real-key-1234567890")],
        )
        .await;
        assert_eq!(out.code, 3, "{}", out.both());
        assert!(out.stderr.contains("refused the key"), "{}", out.stderr);
        assert!(!out.both().contains("pl-not-a-real-key"));
        server.stop().await;
    }
}

fn csv_items() -> Vec<Value> {
    let text = std::fs::read_to_string(examples().join("ci/entities.csv")).unwrap();
    let mut lines = text.lines();
    lines.next();
    lines
        .map(|l| {
            // "text","reference": both quoted.
            let parts: Vec<&str> = l.split("\",\"").collect();
            json!({
                "input": {"text": parts[0].trim_start_matches('"')},
                "reference": parts[1].trim_end_matches('"'),
            })
        })
        .collect()
}

async fn mock_stats(mock: &Mock) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(mock.url.replace("/v1", "/mock/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn ctrl_c_pauses_and_a_rerun_gets_the_finished_runs_from_the_cache() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = variant(dir.path(), "slow.yaml", |t| {
        t.replace("options: {latency_ms: 0}", "options: {latency_ms: 100}")
    });
    let data = dir.path().join("data");
    let mut child = tokio::process::Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", &data)
        .args(["run", &file])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    // Wait until some runs have finished, then interrupt as Ctrl-C would.
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("progress: ") && !line.starts_with("progress: 0/") {
            break;
        }
    }
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push_str(&line);
        seen.push('\n');
    }
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted: pausing the sweep"), "{seen}");

    let again = cli(
        &["run", &file, "--json"],
        &[("DATA_DIR", data.to_str().unwrap())],
    )
    .await;
    assert_eq!(again.code, 0, "{}", again.both());
    let result: Value = serde_json::from_str(&again.stdout).unwrap();
    let progress = &result["sweep"]["progress"];
    let cached = progress["cached"].as_i64().unwrap();
    assert!(
        cached > 0 && cached < 90,
        "the runs finished before the interrupt are reused: {progress}"
    );
    assert_eq!(progress["done"], 90);
    assert_eq!(
        progress["completed"].as_i64().unwrap() + cached,
        90,
        "nothing is asked twice: {progress}"
    );
}

/// A guided strategy in the file, its proposer's endpoint by name: the sweep stays within its
/// calls budget and the JSON says how the search went; an unknown proposer endpoint is a bad
/// file at its line.
#[tokio::test]
async fn a_guided_strategy_runs_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = variant(dir.path(), "guided.yaml", |t| {
        t.replace(
            "strategy: grid",
            "strategy: {kind: guided, seed: 3, proposer: {endpoint: sim, model: sim-large, every: 2}}\nbudget: {max_calls: 60}",
        )
    });
    let out = cli(&["run", &path, "--json"], &[]).await;
    assert_eq!(out.code, 0, "{}", out.both());
    let result: Value = serde_json::from_str(&out.stdout).unwrap();
    let sweep = &result["sweep"];
    assert_eq!(sweep["status"], "completed", "{sweep}");
    assert_eq!(sweep["request"]["strategy"]["kind"], "guided");
    assert!(
        sweep["progress"]["calls"].as_i64().unwrap() <= 60,
        "{sweep}"
    );
    assert!(sweep["guide"]["stop_reason"].is_string(), "{sweep}");
    assert!(result["best"]["score"].as_f64().unwrap() > 0.5);

    let (bad, text) = variant(dir.path(), "guided-bad.yaml", |t| {
        t.replace(
            "strategy: grid",
            "strategy: {kind: guided, proposer: {endpoint: nope, model: sim-large}}",
        )
    });
    let out = cli(&["run", &bad], &[]).await;
    assert_eq!(out.code, 2, "{}", out.both());
    let line = text
        .lines()
        .position(|l| l.contains("endpoint: nope"))
        .unwrap()
        + 1;
    assert!(
        out.stderr.contains(&format!(
            "guided-bad.yaml:{line}: strategy.proposer.endpoint: no endpoint named \"nope\""
        )),
        "{}",
        out.stderr
    );
}
