//! The LLM judge: another model grades the output with a rubric, and the score is read out of
//! its reply robustly. Judge calls (and embeddings, see `embedding`) go through the response
//! cache under keys of their own, so scoring again costs nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use uuid::Uuid;

use super::{Env, Scorer, Subject, Usage, Verdict};
use crate::server::cache;
use crate::server::core::Core;
use crate::server::endpoints::Ready;
use crate::server::exec::messages;
use crate::server::providers::ChatRequest;
use crate::server::providers::retry::RetryPolicy;
use crate::server::store::cache::{self as cache_store, CachedResponse};
use crate::server::store::endpoints::{self, EndpointRow};
use crate::server::templates;
use crate::types::{EndpointKind, Params, ScorerSpec};

/// The rubric used when a judge has no prompt of its own.
pub const DEFAULT_PROMPT: &str = "Grade the answer below.\n\n\
Task input:\n{{ input | tojson }}\n\n\
{% if reference %}Reference answer:\n{{ reference }}\n\n{% endif %}\
Answer to grade:\n{{ output }}\n\n\
How well does the answer fulfil the task{% if reference %} and agree with the reference{% endif %}? \
Reply with a score from {{ min }} (useless) to {{ max }} (perfect) on the first line, as \
\"Score: N\", then one sentence explaining it.";

pub const DEFAULT_SYSTEM: &str = "You are a strict, fair grader of model outputs.";

/// An endpoint a scorer calls, ready to use.
pub(super) struct Target {
    pub row: EndpointRow,
    pub ready: Ready,
}

pub(super) async fn target(core: &Core, id: Uuid) -> Result<Target, String> {
    let row = endpoints::get(&core.db, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("endpoint {id} does not exist"))?;
    let ready = core.providers.get(core, &row).map_err(|e| e.to_string())?;
    Ok(Target { row, ready })
}

impl Target {
    /// The base URL that identifies answers in cache keys (none for the simulated provider).
    pub fn url(&self) -> &str {
        if self.row.kind == EndpointKind::Simulated {
            ""
        } else {
            self.row.base_url.trim_end_matches('/')
        }
    }
}

/// How one cached call went.
pub(super) struct Call {
    pub answer: Result<CachedResponse, String>,
    /// This caller made the provider call (it was in neither the cache nor the memo).
    pub made: bool,
}

impl Call {
    /// What the call cost this caller, with the fresh answer to cache.
    pub fn usage(&self, env: &Env<'_>, key: &str) -> Usage {
        match (&self.answer, self.made) {
            (Ok(a), true) => Usage {
                calls: 1,
                tokens_in: a.tokens_in,
                tokens_out: a.tokens_out,
                cost: env
                    .prices
                    .cost(&a.model, a.tokens_in, a.tokens_out)
                    .unwrap_or(0.0),
                cache_puts: vec![(key.to_owned(), a.clone())],
                ..Usage::default()
            },
            (Err(_), true) => Usage {
                calls: 1,
                ..Usage::default()
            },
            (_, false) => Usage {
                cache_hits: 1,
                ..Usage::default()
            },
        }
    }
}

/// Most answers one pass keeps in memory.
const MEMO_MAX: usize = 10_000;

/// Answers `key` from the memo (when `memoize`), then the response cache, then `call`.
pub(super) async fn cached_call<F, Fut>(env: &Env<'_>, key: &str, memoize: bool, call: F) -> Call
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<CachedResponse, String>>,
{
    let made = AtomicBool::new(false);
    let lookup = || async {
        match cache_store::get(&env.core.db, key).await {
            Ok(Some(hit)) => Ok(hit),
            Ok(None) => {
                made.store(true, Ordering::SeqCst);
                call().await
            }
            Err(e) => Err(format!("cache lookup failed: {e}")),
        }
    };
    let answer = if memoize {
        let cell = {
            let mut memo = env.memo.lock().unwrap_or_else(|e| e.into_inner());
            // Bounded: a long pass forgets, and at worst asks the cache again.
            if memo.len() >= MEMO_MAX && !memo.contains_key(key) {
                memo.clear();
            }
            memo.entry(key.to_owned()).or_default().clone()
        };
        let answer = cell.get_or_init(lookup).await.clone();
        if answer.is_err() {
            // A failure is not remembered: the next run asking tries again.
            let mut memo = env.memo.lock().unwrap_or_else(|e| e.into_inner());
            if memo.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                memo.remove(key);
            }
        }
        answer
    } else {
        lookup().await
    };
    Call {
        answer,
        made: made.load(Ordering::SeqCst),
    }
}

/// A judge call under `key`: from the memo or the cache, else the provider (in one of its
/// slots, retried by `policy`).
pub(super) async fn call_judge(
    env: &Env<'_>,
    key: &str,
    ready: &Ready,
    policy: &RetryPolicy,
    request: &ChatRequest,
) -> Call {
    cached_call(env, key, true, || async move {
        ready
            .call(policy, request)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("the judge call failed: {}", e.message))
    })
    .await
}

pub(super) struct Judge {
    target: Target,
    model: String,
    prompt: String,
    system: String,
    min: f64,
    max: f64,
    params: Params,
    policy: RetryPolicy,
}

impl Judge {
    pub async fn new(core: &Core, spec: &ScorerSpec) -> Result<Judge, String> {
        let ScorerSpec::LlmJudge {
            endpoint_id,
            model,
            prompt,
            system,
            min,
            max,
            params,
        } = spec
        else {
            return Err("not a judge".into());
        };
        Ok(Judge {
            target: target(core, *endpoint_id).await?,
            model: model.clone(),
            prompt: prompt.clone().unwrap_or_else(|| DEFAULT_PROMPT.to_owned()),
            system: system.clone().unwrap_or_else(|| DEFAULT_SYSTEM.to_owned()),
            min: *min,
            max: *max,
            params: params.clone().unwrap_or(Params {
                temperature: Some(0.0),
                ..Params::default()
            }),
            policy: RetryPolicy::default(),
        })
    }

    fn render(&self, s: &Subject<'_>) -> Result<Vec<crate::server::providers::Message>, String> {
        let env = templates::environment();
        let ctx = json!({
            "input": s.input,
            "output": s.output,
            "reference": s.reference.unwrap_or(""),
            "stages": s.stages,
            "item": {"index": s.run.item_index, "id": s.item_id},
            "min": number(self.min),
            "max": number(self.max),
        });
        let render = |t: &str| {
            env.render_str(t, minijinja::value::Serde(&ctx))
                .map_err(|e| format!("judge template error: {e}"))
        };
        Ok(messages(render(&self.system)?, render(&self.prompt)?))
    }
}

/// Whole numbers print without a decimal point ("10", not "10.0").
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The cache key of a judge call.
pub(super) fn judge_key(
    kind: EndpointKind,
    url: &str,
    model: &str,
    messages: &[crate::server::providers::Message],
    params: &Params,
) -> String {
    cache::sha256_hex(&cache::canonical_json(&json!({
        "v": 1,
        "op": "judge",
        "provider": kind.as_str(),
        "base_url": url,
        "model": model,
        "messages": messages,
        "params": params,
    })))
}

#[async_trait::async_trait]
impl Scorer for Judge {
    async fn score(&self, env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        let messages = match self.render(s) {
            Ok(m) => m,
            Err(e) => return Some((Verdict::fail(e, json!({})), Usage::default())),
        };
        let key = judge_key(
            self.target.row.kind,
            self.target.url(),
            &self.model,
            &messages,
            &self.params,
        );
        let request = ChatRequest {
            model: self.model.clone(),
            messages,
            params: self.params.clone(),
        };
        let call = call_judge(env, &key, &self.target.ready, &self.policy, &request).await;
        let usage = call.usage(env, &key);
        let answer = match &call.answer {
            Ok(a) => a,
            Err(e) => {
                return Some((
                    Verdict::fail(e.clone(), json!({"model": self.model})),
                    usage,
                ));
            }
        };
        let reply: String = answer.response.chars().take(2000).collect();
        let mut metadata = json!({
            "model": self.model,
            "reply": reply,
            "cached": !call.made,
            "tokens_in": answer.tokens_in,
            "tokens_out": answer.tokens_out,
            "scale": [self.min, self.max],
        });
        let verdict = match parse_score(&answer.response, self.min, self.max) {
            Ok(p) => {
                metadata["parsed"] = json!(p.raw);
                metadata["how"] = json!(p.how);
                Verdict::score(p.normalised, metadata)
            }
            Err(why) => Verdict::fail(
                format!("the judge's reply has no readable score: {why}"),
                metadata,
            ),
        };
        Some((verdict, usage))
    }
}

/// A score read out of a judge's reply.
#[derive(Debug, PartialEq)]
pub struct Parsed {
    /// The number as the judge wrote it (on its scale, or as a fraction of its denominator).
    pub raw: f64,
    /// Mapped onto 0–1.
    pub normalised: f64,
    /// How it was found: json, labelled, fraction, bare or only_number.
    pub how: &'static str,
}

fn num(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Reads a score between `min` and `max` from a reply: a JSON `"score"`, a labelled
/// "Score: 7" (optionally "/10" or "out of 10"), a bare fraction "7/10", a reply that is just
/// a number, or else the only number in range. Anything else is an error, never a guess.
pub fn parse_score(reply: &str, min: f64, max: f64) -> Result<Parsed, String> {
    use std::sync::LazyLock;
    static JSON: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"(?i)"(?:score|rating)"\s*:\s*"?(-?\d+(?:\.\d+)?)"#).unwrap()
    });
    static LABELLED: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)\b(?:score|rating|grade|verdict)\b[^0-9\n]{0,12}?(-?\d+(?:\.\d+)?)(?:\s*(?:/|out of)\s*(\d+(?:\.\d+)?))?",
        )
        .unwrap()
    });
    static FRACTION: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?i)(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+(?:\.\d+)?)").unwrap()
    });
    static NUMBER: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"-?\d+(?:\.\d+)?").unwrap());

    let span = max - min;
    let on_scale = |x: f64, how: &'static str| {
        if x < min - 1e-9 || x > max + 1e-9 {
            Err(format!("{x} is outside the scale {min}–{max}"))
        } else {
            Ok(Parsed {
                raw: x,
                normalised: ((x - min) / span).clamp(0.0, 1.0),
                how,
            })
        }
    };
    // "4/5" on a 1–10 scale: the judge used its own scale; read it as a share of it.
    let fraction = |x: f64, d: f64, how: &'static str| {
        if (d - max).abs() < 1e-9 {
            on_scale(x, how)
        } else if d > 0.0 && (0.0..=d).contains(&x) {
            Ok(Parsed {
                raw: x,
                normalised: x / d,
                how,
            })
        } else {
            Err(format!("{x}/{d} is not a score"))
        }
    };
    if let Some(c) = JSON.captures(reply)
        && let Some(x) = num(&c[1])
    {
        return on_scale(x, "json");
    }
    // "Score (1-10): 8": the first number after the label starts the scale's range; the
    // score is the number after it.
    static RANGE: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^\s*(?:-|–|—|to)\s*\d+(?:\.\d+)?").unwrap());
    static AFTER_RANGE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)^[^0-9\n]{0,12}?(-?\d+(?:\.\d+)?)(?:\s*(?:/|out of)\s*(\d+(?:\.\d+)?))?",
        )
        .unwrap()
    });
    if let Some(c) = LABELLED.captures(reply) {
        let number = c.get(1).expect("group 1 always takes part");
        let rest = &reply[number.end()..];
        let c = match RANGE.find(rest) {
            Some(range) => match AFTER_RANGE.captures(&rest[range.end()..]) {
                Some(after) => Some(after),
                None => return Err("the reply names the scale but gives no score".to_owned()),
            },
            None => Some(c),
        };
        if let Some(c) = c
            && let Some(x) = num(&c[1])
        {
            return match c.get(2).and_then(|d| num(d.as_str())) {
                Some(d) => fraction(x, d, "labelled"),
                None => on_scale(x, "labelled"),
            };
        }
    }
    if let Some(c) = FRACTION.captures(reply)
        && let (Some(x), Some(d)) = (num(&c[1]), num(&c[2]))
    {
        return fraction(x, d, "fraction");
    }
    let trimmed = reply.trim().trim_end_matches(['.', '!']).trim();
    if let Some(x) = num(trimmed) {
        return on_scale(x, "bare");
    }
    let in_range: Vec<f64> = NUMBER
        .find_iter(reply)
        .filter_map(|m| num(m.as_str()))
        .filter(|x| (min..=max).contains(x))
        .collect();
    let mut distinct = in_range.clone();
    distinct.dedup();
    match distinct.as_slice() {
        [x] => on_scale(*x, "only_number"),
        [] => Err(format!("no number between {min} and {max}")),
        _ => Err(format!(
            "several numbers between {min} and {max} and no labelled score"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(reply: &str) -> Result<f64, String> {
        parse_score(reply, 1.0, 10.0).map(|p| p.normalised)
    }

    #[test]
    fn scores_are_read_robustly() {
        let close = |a: Result<f64, String>, b: f64| {
            let a = a.unwrap();
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        };
        close(read("Score: 10\nPerfect."), 1.0);
        close(read("**Score:** 7/10 — mostly right"), 6.0 / 9.0);
        close(read(r#"{"score": 4, "reason": "meh"}"#), 3.0 / 9.0);
        close(read("I'd rate it 8 out of 10."), 7.0 / 9.0);
        close(read("1"), 0.0);
        close(read("  5.5. "), 0.5);
        close(read("Rating - 4/5"), 0.8);
        close(read("The answer lists 3 of the entities, so 3."), 2.0 / 9.0);
        // A scale given beside the label is not the score.
        close(read("Score (1-10): 8"), 7.0 / 9.0);
        close(read("Rating (1 – 10): 4/10"), 3.0 / 9.0);
        close(read("Score 1 to 10: 10"), 1.0);
        assert!(read("Score (1-10):").is_err(), "a range alone is no score");
        assert!(
            read("Great answer!").is_err(),
            "no number is an error, not 0"
        );
        assert!(read("Score: 12").unwrap_err().contains("outside"));
        assert!(
            read("It has 3 errors and 5 omissions.").is_err(),
            "ambiguous"
        );
        assert_eq!(
            parse_score("Score: 0.7", 0.0, 1.0).unwrap(),
            Parsed {
                raw: 0.7,
                normalised: 0.7,
                how: "labelled"
            }
        );
    }

    #[test]
    fn the_default_prompt_renders_with_and_without_a_reference() {
        let env = templates::environment();
        for reference in ["Ada, London", ""] {
            let text = env
                .render_str(
                    DEFAULT_PROMPT,
                    minijinja::value::Serde(json!({"input": {"text": "Ada went to London"}, "output": "Ada", "reference": reference, "min": 1, "max": 10})),
                )
                .unwrap();
            assert!(text.contains("from 1 (useless) to 10"), "{text}");
            assert_eq!(text.contains("Reference answer"), !reference.is_empty());
        }
    }
}
