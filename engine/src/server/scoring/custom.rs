//! Custom scorers: a Rhai script (sandboxed), an HTTP webhook, and Python code (a subprocess;
//! not sandboxed, so only when an admin allows it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Env, Scorer, Subject, Usage, Verdict};
use crate::server::core::Core;

/// The default and longest time one script or program may take.
pub const SCRIPT_TIMEOUT_MS: u64 = 1_000;
pub const SCRIPT_TIMEOUT_MAX_MS: u64 = 10_000;
pub const WEBHOOK_TIMEOUT_MS: u64 = 10_000;
pub const WEBHOOK_TIMEOUT_MAX_MS: u64 = 60_000;
pub const WEBHOOK_RETRIES: u32 = 2;
pub const WEBHOOK_RETRIES_MAX: u32 = 5;
pub const PYTHON_TIMEOUT_MS: u64 = 5_000;
pub const PYTHON_TIMEOUT_MAX_MS: u64 = 60_000;
/// Rhai operations one evaluation may perform.
pub const RHAI_MAX_OPERATIONS: u64 = 5_000_000;
/// Largest string, array and map a script may build.
const RHAI_MAX_STRING: usize = 1_000_000;
const RHAI_MAX_COLLECTION: usize = 100_000;
/// Most bytes read back from a webhook or a Python program.
const RESPONSE_MAX: usize = 64 * 1024;
/// Most lines of `print`/`debug` output kept from a script.
const LOG_LINES: usize = 20;

fn scored(v: Verdict) -> Option<(Verdict, Usage)> {
    Some((v, Usage::default()))
}

/// Reads a scorer's answer: a number (or bool) in 0–1, or `{score, metadata}`.
fn verdict_from(result: &Value, mut extra: Value) -> Verdict {
    let (score, metadata) = match result {
        Value::Object(o) => (o.get("score").cloned(), o.get("metadata").cloned()),
        other => (Some(other.clone()), None),
    };
    if let (Some(Value::Object(m)), Some(e)) = (metadata, extra.as_object_mut()) {
        e.insert("metadata".into(), Value::Object(m));
    }
    match score {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) => Verdict::score(v, extra),
            None => Verdict::fail("the score is not a number", extra),
        },
        Some(Value::Bool(b)) => Verdict::score(f64::from(b), extra),
        _ => Verdict::fail(
            format!(
                "expected a number between 0 and 1 or {{\"score\": …, \"metadata\": {{…}}}}, got {}",
                short(&result.to_string())
            ),
            extra,
        ),
    }
}

fn short(text: &str) -> String {
    let mut s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// A sandboxed Rhai engine: no modules (the crate is built without them), no `eval`, and
/// limits on operations, time, call depth and the size of strings, arrays and maps.
fn rhai_engine(
    deadline: Option<(Instant, Duration)>,
    log: Arc<Mutex<Vec<String>>>,
) -> rhai::Engine {
    use rhai::packages::Package;
    use std::sync::LazyLock;
    static STANDARD: LazyLock<rhai::Shared<rhai::Module>> =
        LazyLock::new(|| rhai::packages::StandardPackage::new().as_shared_module());
    let mut engine = rhai::Engine::new_raw();
    engine.register_global_module(STANDARD.clone());
    engine.disable_symbol("eval");
    engine.set_max_operations(RHAI_MAX_OPERATIONS);
    engine.set_max_string_size(RHAI_MAX_STRING);
    engine.set_max_array_size(RHAI_MAX_COLLECTION);
    engine.set_max_map_size(RHAI_MAX_COLLECTION);
    engine.set_max_call_levels(64);
    engine.set_max_expr_depths(128, 64);
    if let Some((started, limit)) = deadline {
        engine.on_progress(move |_ops| {
            (started.elapsed() > limit).then(|| rhai::Dynamic::from("time limit"))
        });
    }
    let print_log = log.clone();
    engine.on_print(move |text| push_log(&print_log, text));
    engine.on_debug(move |text, _source, _pos| push_log(&log, text));
    engine
}

fn push_log(log: &Mutex<Vec<String>>, text: &str) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    if log.len() < LOG_LINES {
        log.push(short(text));
    }
}

/// Compiles a script, or says where it is wrong.
pub fn compile_rhai(script: &str) -> Result<rhai::AST, String> {
    rhai_engine(None, Arc::default())
        .compile(script)
        .map_err(|e| format!("Rhai syntax error: {e}"))
}

pub(super) struct RhaiScorer {
    ast: Arc<rhai::AST>,
    timeout: Duration,
}

impl RhaiScorer {
    pub fn new(script: &str, timeout_ms: Option<u64>) -> Result<RhaiScorer, String> {
        Ok(RhaiScorer {
            ast: Arc::new(compile_rhai(script)?),
            timeout: Duration::from_millis(
                timeout_ms
                    .unwrap_or(SCRIPT_TIMEOUT_MS)
                    .min(SCRIPT_TIMEOUT_MAX_MS),
            ),
        })
    }
}

/// Runs a compiled script on a blocking thread, within its limits.
pub fn run_rhai(ast: &rhai::AST, timeout: Duration, vars: &Value) -> Verdict {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let engine = rhai_engine(Some((started, timeout)), log.clone());
    let mut scope = rhai::Scope::new();
    if let Value::Object(vars) = vars {
        for (name, value) in vars {
            match rhai::serde::to_dynamic(value) {
                Ok(d) => {
                    scope.push_dynamic(name.clone(), d);
                }
                Err(e) => {
                    return Verdict::fail(
                        format!("cannot pass {name} to the script: {e}"),
                        json!({}),
                    );
                }
            }
        }
    }
    let result = engine.eval_ast_with_scope::<rhai::Dynamic>(&mut scope, ast);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let lines = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let meta = json!({"elapsed_ms": elapsed_ms, "log": lines});
    match result {
        Ok(d) => match rhai::serde::from_dynamic::<Value>(&d) {
            Ok(v) => verdict_from(&v, meta),
            Err(e) => Verdict::fail(format!("the script's result cannot be read: {e}"), meta),
        },
        Err(e) => {
            let why = match *e {
                rhai::EvalAltResult::ErrorTerminated(..) => {
                    format!(
                        "the script ran longer than {} ms and was stopped",
                        timeout.as_millis()
                    )
                }
                rhai::EvalAltResult::ErrorTooManyOperations(..) => {
                    format!("the script exceeded {RHAI_MAX_OPERATIONS} operations and was stopped")
                }
                ref other => format!("the script failed: {other}"),
            };
            Verdict::fail(why, meta)
        }
    }
}

fn script_vars(s: &Subject<'_>) -> Value {
    json!({
        "input": s.input,
        "output": s.output,
        "reference": s.reference,
        "context": s.context(),
    })
}

#[async_trait::async_trait]
impl Scorer for RhaiScorer {
    async fn score(&self, _env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        let (ast, timeout, vars) = (self.ast.clone(), self.timeout, script_vars(s));
        let verdict = tokio::task::spawn_blocking(move || run_rhai(&ast, timeout, &vars))
            .await
            .unwrap_or_else(|e| Verdict::fail(format!("the script crashed: {e}"), json!({})));
        scored(verdict)
    }
}

pub(super) struct Webhook {
    url: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
    retries: u32,
    db: crate::server::store::Db,
    /// The admin setting, read once per scorer (per scoring pass).
    allow_private: tokio::sync::OnceCell<bool>,
}

impl Webhook {
    pub fn new(
        core: &Core,
        url: &str,
        headers: Vec<(String, String)>,
        timeout_ms: Option<u64>,
        retries: Option<u32>,
    ) -> Result<Webhook, String> {
        Ok(Webhook {
            url: url.to_owned(),
            headers,
            timeout: Duration::from_millis(
                timeout_ms
                    .unwrap_or(WEBHOOK_TIMEOUT_MS)
                    .min(WEBHOOK_TIMEOUT_MAX_MS),
            ),
            retries: retries.unwrap_or(WEBHOOK_RETRIES).min(WEBHOOK_RETRIES_MAX),
            db: core.db.clone(),
            allow_private: tokio::sync::OnceCell::new(),
        })
    }

    async fn allow_private(&self) -> bool {
        *self
            .allow_private
            .get_or_init(|| async {
                crate::server::store::settings::load(&self.db)
                    .await
                    .map(|s| s.allow_private_webhook_targets)
                    .unwrap_or(false)
            })
            .await
    }

    /// Error text without any header value in it (a server may echo them back).
    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (_, value) in &self.headers {
            if value.len() >= 4 {
                text = text.replace(value.as_str(), "***");
            }
        }
        text
    }

    /// One attempt: `Ok(answer)`, or an error and whether trying again may help.
    async fn attempt(&self, body: &Value) -> Result<Value, (String, bool, Option<Duration>)> {
        // The same outbound rules as webhooks: resolved, checked, pinned, no redirects.
        use crate::server::outbound;
        let url = outbound::parse("url", &self.url).map_err(|e| (e.to_string(), false, None))?;
        let addrs = outbound::resolve(&url, self.allow_private().await)
            .await
            .map_err(|e| (e, false, None))?;
        let http = outbound::client(&url, &addrs, self.timeout).map_err(|e| (e, false, None))?;
        let mut request = http.post(url).json(body);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                format!("timed out after {} ms", self.timeout.as_millis())
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                format!("request failed: {}", e.without_url())
            };
            (what, true, None)
        })?;
        let status = response.status().as_u16();
        let wait = crate::server::providers::retry_after(response.headers());
        let mut bytes = Vec::new();
        let mut stream = response;
        while let Some(chunk) = stream.chunk().await.map_err(|e| {
            (
                format!("reading the answer failed: {}", e.without_url()),
                true,
                None,
            )
        })? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > RESPONSE_MAX {
                return Err((
                    format!("the answer is larger than {RESPONSE_MAX} bytes"),
                    false,
                    None,
                ));
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if !(200..300).contains(&status) {
            let retry = matches!(status, 408 | 429 | 500..=599);
            return Err((format!("HTTP {status}: {}", short(&text)), retry, wait));
        }
        serde_json::from_str(&text).map_err(|e| {
            (
                format!("the answer is not JSON ({e}): {}", short(&text)),
                false,
                None,
            )
        })
    }
}

#[async_trait::async_trait]
impl Scorer for Webhook {
    async fn score(&self, _env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        let body = script_vars(s);
        let started = Instant::now();
        let mut attempt = 0;
        let verdict = loop {
            attempt += 1;
            match self.attempt(&body).await {
                Ok(answer) => {
                    break verdict_from(
                        &answer,
                        json!({"attempts": attempt, "elapsed_ms": started.elapsed().as_millis() as u64}),
                    );
                }
                Err((why, retry, wait)) if retry && attempt <= self.retries => {
                    let backoff = Duration::from_millis(250 * (1 << (attempt - 1).min(6)));
                    tokio::time::sleep(wait.unwrap_or(backoff).min(Duration::from_secs(10))).await;
                    tracing::debug!(attempt, error = %self.scrub(&why), "retrying a webhook scorer");
                }
                Err((why, _, _)) => {
                    break Verdict::fail(
                        format!("the webhook failed: {}", self.scrub(&why)),
                        json!({"attempts": attempt}),
                    );
                }
            }
        };
        scored(verdict)
    }
}

/// Runs the user's code: it must define `score(input, output, reference, context)`. Its own
/// prints go to stderr so they cannot corrupt the answer.
const PYTHON_WRAPPER: &str = r#"
import json, sys
payload = json.load(sys.stdin)
answer, sys.stdout = sys.stdout, sys.stderr
namespace = {"__name__": "scorer"}
exec(compile(payload["code"], "<scorer>", "exec"), namespace)
score = namespace.get("score")
if not callable(score):
    raise SystemExit("the code must define score(input, output, reference, context)")
result = score(payload["input"], payload["output"], payload["reference"], payload["context"])
answer.write(json.dumps({"result": result}))
"#;

pub(super) struct Python {
    code: String,
    timeout: Duration,
}

impl Python {
    pub fn new(code: &str, timeout_ms: Option<u64>) -> Python {
        Python {
            code: code.to_owned(),
            timeout: Duration::from_millis(
                timeout_ms
                    .unwrap_or(PYTHON_TIMEOUT_MS)
                    .min(PYTHON_TIMEOUT_MAX_MS),
            ),
        }
    }
}

/// Runs `python3 -I -c <program>` with `stdin` as input, a clean environment and a timeout.
/// Returns (exit ok, stdout, stderr), each stream capped.
pub async fn run_python(
    program: &str,
    stdin: &[u8],
    timeout: Duration,
) -> Result<(bool, String, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut child = tokio::process::Command::new("python3")
        .arg("-I")
        .arg("-c")
        .arg(program)
        // Nothing of the server's environment (secrets, database URL) reaches the code.
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start python3: {e}"))?;
    let mut input = child.stdin.take().ok_or("no stdin")?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let run = async {
        let write = async {
            let _ = input.write_all(stdin).await;
            drop(input);
        };
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let read_out = async {
            let _ = (&mut out)
                .take(RESPONSE_MAX as u64 + 1)
                .read_to_end(&mut stdout)
                .await;
        };
        // Past its cap stderr is read and thrown away: a program blocked on a full pipe
        // would otherwise look like one that ran too long.
        let read_err = async {
            let _ = (&mut err).take(8 * 1024).read_to_end(&mut stderr).await;
            let _ = tokio::io::copy(&mut err, &mut tokio::io::sink()).await;
        };
        let (_, _, _) = tokio::join!(write, read_out, read_err);
        if stdout.len() > RESPONSE_MAX {
            // Too much already: stop it rather than wait for the rest.
            let _ = child.start_kill();
        }
        let status = child.wait().await;
        (status, stdout, stderr)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok((status, stdout, stderr)) => {
            if stdout.len() > RESPONSE_MAX {
                return Err(format!("the program wrote more than {RESPONSE_MAX} bytes"));
            }
            Ok((
                status.map(|s| s.success()).unwrap_or(false),
                String::from_utf8_lossy(&stdout).into_owned(),
                String::from_utf8_lossy(&stderr).into_owned(),
            ))
        }
        // Dropping the child kills it.
        Err(_) => Err(format!(
            "the program ran longer than {} ms and was stopped",
            timeout.as_millis()
        )),
    }
}

/// The last line of a Python error (the exception), for messages.
fn last_line(stderr: &str) -> String {
    short(stderr.trim().lines().last().unwrap_or("no error output"))
}

/// Checks Python code's syntax (`python3 -I`, `ast.parse`).
pub async fn check_python(code: &str) -> Result<(), String> {
    let program = "import ast, sys\nast.parse(sys.stdin.read(), '<scorer>')";
    match run_python(program, code.as_bytes(), Duration::from_secs(10)).await? {
        (true, _, _) => Ok(()),
        (false, _, stderr) => Err(format!("Python syntax error: {}", last_line(&stderr))),
    }
}

#[async_trait::async_trait]
impl Scorer for Python {
    async fn score(&self, _env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        let mut payload = script_vars(s);
        payload["code"] = json!(self.code);
        let started = Instant::now();
        let verdict = match run_python(PYTHON_WRAPPER, payload.to_string().as_bytes(), self.timeout)
            .await
        {
            Err(e) => Verdict::fail(e, json!({})),
            Ok((ok, stdout, stderr)) => {
                let meta = json!({
                    "elapsed_ms": started.elapsed().as_millis() as u64,
                    "stderr": short(stderr.trim()),
                });
                match serde_json::from_str::<Value>(&stdout) {
                    Ok(answer) if ok => verdict_from(&answer["result"], meta),
                    _ => Verdict::fail(format!("the code failed: {}", last_line(&stderr)), meta),
                }
            }
        };
        scored(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rhai(script: &str) -> Verdict {
        let ast = compile_rhai(script).unwrap();
        run_rhai(
            &ast,
            Duration::from_millis(500),
            &json!({"input": {"text": "Ada in London"}, "output": "Ada, London", "reference": "Ada, London", "context": {"item_index": 0}}),
        )
    }

    #[test]
    fn rhai_scripts_score() {
        assert_eq!(
            rhai("if output == reference { 1.0 } else { 0.0 }").value,
            Some(1.0)
        );
        assert_eq!(rhai("output.len() / 22.0").value, Some(0.5));
        assert_eq!(rhai("1").value, Some(1.0), "integers are numbers");
        let v =
            rhai(r#"print("checking " + input.text); #{score: 0.25, metadata: #{why: "test"}}"#);
        assert_eq!(v.value, Some(0.25));
        assert_eq!(v.metadata["metadata"]["why"], "test");
        assert_eq!(v.metadata["log"][0], "checking Ada in London");
        assert!(rhai("2.0").error.unwrap().contains("not between 0 and 1"));
        assert!(
            rhai(r#""yes""#)
                .error
                .unwrap()
                .contains("expected a number")
        );
        assert!(
            compile_rhai("let x = ;")
                .unwrap_err()
                .contains("syntax error")
        );
    }

    #[test]
    fn malicious_rhai_stops_within_its_limits() {
        let started = Instant::now();
        let endless = rhai("loop { }");
        assert!(endless.value.is_none());
        assert!(
            endless.error.as_deref().unwrap().contains("stopped"),
            "{endless:?}"
        );
        let huge = rhai(r#"let s = "x"; loop { s += s; }"#);
        assert!(huge.value.is_none());
        assert!(huge.error.is_some(), "{huge:?}");
        let deep = rhai("fn f(n) { f(n + 1) } f(0)");
        assert!(deep.value.is_none(), "{deep:?}");
        let big_array = rhai("let a = []; loop { a.push(1); }");
        assert!(big_array.value.is_none(), "{big_array:?}");
        assert!(
            compile_rhai(r#"eval("1")"#).unwrap_err().contains("eval"),
            "eval is disabled"
        );
        assert!(
            compile_rhai(r#"import "file" as f; 1"#).is_err()
                || rhai(r#"import "file" as f; 1"#).value.is_none(),
            "no modules"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn rhai_time_limit_stops_slow_scripts() {
        let ast = compile_rhai("let n = 0; while n < 4000000 { n += 1; } 1.0").unwrap();
        let v = run_rhai(&ast, Duration::from_millis(1), &json!({}));
        assert!(v.value.is_none());
        let why = v.error.unwrap();
        assert!(why.contains("stopped"), "{why}");
    }

    #[tokio::test]
    async fn python_scores_and_times_out() {
        if std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("python3 not installed; skipping");
            return;
        }
        let wrapper_input = |code: &str| {
            json!({"code": code, "input": {"q": 1}, "output": "abc", "reference": "abc", "context": {}}).to_string()
        };
        let (ok, out, _) = run_python(
            PYTHON_WRAPPER,
            wrapper_input(
                "def score(i, o, r, c):\n    print('noise')\n    return 1.0 if o == r else 0.0",
            )
            .as_bytes(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(ok);
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["result"], 1.0);
        let slow = run_python(
            PYTHON_WRAPPER,
            wrapper_input("import time\ndef score(i, o, r, c):\n    time.sleep(30)").as_bytes(),
            Duration::from_millis(300),
        )
        .await;
        assert!(slow.unwrap_err().contains("stopped"));
        let (ok, _, err) = run_python(
            PYTHON_WRAPPER,
            wrapper_input("x = 1").as_bytes(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(!ok && err.contains("must define score"), "{err}");
        assert!(
            check_python("def score(:\n")
                .await
                .unwrap_err()
                .contains("syntax")
        );
        assert!(
            check_python("def score(i, o, r, c):\n    return 1\n")
                .await
                .is_ok()
        );
        // The server's environment does not reach the code.
        let (_, out, _) = run_python(
            "import os, json; print(json.dumps(sorted(os.environ)))",
            b"",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(
            !out.contains("DATABASE_URL") && !out.contains("JWT"),
            "{out}"
        );
    }
}
