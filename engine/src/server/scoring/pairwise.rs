//! Pairwise judging: a judge model compares two configurations' outputs on each shared item,
//! seeing them as A and B in an order drawn per item (so a judge's position bias cancels
//! out). Calls go through the cache; the result is a win rate with a Wilson interval and an
//! exact sign test.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use super::judge::{Target, call_judge, judge_key, target};
use super::stats::Rng;
use super::{Env, Memo, Usage};
use crate::server::auth::Actor;
use crate::server::core::Core;
use crate::server::error::{Error, Result};
use crate::server::exec::messages;
use crate::server::pricing::PriceBook;
use crate::server::providers::ChatRequest;
use crate::server::providers::retry::RetryPolicy;
use crate::server::store::{experiments, runs as run_store};
use crate::server::templates;
use crate::types::{PairwiseItem, PairwiseRequest, PairwiseResult, Params};

pub const DEFAULT_PROMPT: &str = "Two answers to the same task follow. Which one is better?\n\n\
Task input:\n{{ input | tojson }}\n\n\
{% if reference %}Reference answer:\n{{ reference }}\n\n{% endif %}\
Answer A:\n{{ a }}\n\n\
Answer B:\n{{ b }}\n\n\
Reply with \"Winner: A\", \"Winner: B\" or \"Winner: tie\" on the first line, then one sentence why.";

const CONCURRENCY: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Winner {
    A,
    B,
    Tie,
}

/// Reads a verdict: a JSON `"winner"`, "Winner: A", a reply that is just A, B or tie, or
/// "Answer A is better". Anything else is an error, never a guess.
pub fn parse_winner(reply: &str) -> std::result::Result<Winner, String> {
    use std::sync::LazyLock;
    static JSON: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"(?i)"winner"\s*:\s*"\s*(a|b|tie|neither|both|equal)\s*""#).unwrap()
    });
    static LABELLED: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b(?:winner|verdict|better|answer)\s*(?:is)?\s*[:=\-]\s*\**\s*(?:(?:answer|response|option)\s+)?(a|b|tie|neither|both|equal)\b").unwrap()
    });
    static PHRASE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)\b(?:answer|response|option)\s+(a|b)\s+is\s+(?:better|best|preferred|stronger)",
        )
        .unwrap()
    });
    let word = |w: &str| match w.to_ascii_lowercase().as_str() {
        "a" => Winner::A,
        "b" => Winner::B,
        _ => Winner::Tie,
    };
    for re in [&*JSON, &*LABELLED, &*PHRASE] {
        if let Some(c) = re.captures(reply) {
            return Ok(word(&c[1]));
        }
    }
    let bare = reply
        .trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_ascii_lowercase();
    match bare.as_str() {
        "a" | "b" | "tie" => Ok(word(&bare)),
        _ => Err("no \"Winner: A\", \"Winner: B\" or \"Winner: tie\" in the reply".into()),
    }
}

/// Two-sided exact sign test: P(a result at least this lopsided) with `wins` of `n` under
/// a fair coin.
pub fn sign_test(wins: u64, n: u64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let k = wins.min(n - wins);
    // Sum C(n, i) / 2^n for i ≤ k, in logs (n may be large).
    let mut log_c = 0.0f64; // ln C(n, 0)
    let mut tail = 0.0f64;
    let ln2n = n as f64 * std::f64::consts::LN_2;
    for i in 0..=k {
        if i > 0 {
            log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (log_c - ln2n).exp();
    }
    Some((2.0 * tail).min(1.0))
}

/// The 95% Wilson interval of a proportion `wins / n`.
pub fn wilson(wins: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (z, n, p) = (1.959964, n as f64, wins as f64 / n as f64);
    let centre = p + z * z / (2.0 * n);
    let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt();
    let denominator = 1.0 + z * z / n;
    Some((
        ((centre - half) / denominator).max(0.0),
        ((centre + half) / denominator).min(1.0),
    ))
}

struct Judge {
    target: Target,
    model: String,
    prompt: String,
    system: String,
    params: Params,
    policy: RetryPolicy,
}

/// `POST /api/v1/experiments/{id}/compare`.
pub async fn compare(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    req: PairwiseRequest,
) -> Result<PairwiseResult> {
    actor.require_write()?;
    let e = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    if req.first == req.second {
        return Err(Error::invalid(
            "second",
            "compare two different configurations",
        ));
    }
    for (field, template) in [("prompt", &req.prompt), ("system", &req.system)] {
        if let Some(t) = template {
            templates::environment()
                .template_from_str(t)
                .map_err(|err| Error::invalid(field, format!("template syntax error: {err}")))?;
        }
    }
    if let Some(p) = &req.params {
        crate::server::experiments::check_params(p, "params")?;
    }
    let target = target(core, req.endpoint_id)
        .await
        .map_err(|why| Error::invalid("endpoint_id", why))?;
    if req.model.trim().is_empty() || req.model.len() > 200 {
        return Err(Error::invalid("model", "must be 1 to 200 characters"));
    }
    let first = run_store::first_outputs(&core.db, experiment_id, &req.first).await?;
    if first.is_empty() {
        return Err(Error::invalid(
            "first",
            "no configuration with this key has outputs in this experiment",
        ));
    }
    let second = run_store::first_outputs(&core.db, experiment_id, &req.second).await?;
    if second.is_empty() {
        return Err(Error::invalid(
            "second",
            "no configuration with this key has outputs in this experiment",
        ));
    }
    let mut shared: Vec<i32> = first
        .keys()
        .filter(|i| second.contains_key(i))
        .copied()
        .collect();
    if let Some(items) = &req.items {
        let wanted: std::collections::HashSet<i32> = items.iter().map(|i| *i as i32).collect();
        shared.retain(|i| wanted.contains(i));
    }
    if shared.is_empty() {
        return Err(Error::invalid(
            "items",
            "the two configurations share no scored item",
        ));
    }
    let judge = Judge {
        target,
        model: req.model.clone(),
        prompt: req
            .prompt
            .clone()
            .unwrap_or_else(|| DEFAULT_PROMPT.to_owned()),
        system: req
            .system
            .clone()
            .unwrap_or_else(|| super::judge::DEFAULT_SYSTEM.to_owned()),
        params: req.params.clone().unwrap_or(Params {
            temperature: Some(0.0),
            ..Params::default()
        }),
        policy: RetryPolicy::default(),
    };
    let prices = PriceBook::load(core).await?;
    let memo = Memo::default();
    let env = Env {
        core,
        prices: &prices,
        memo: &memo,
    };
    let seed = req.seed.unwrap_or(0);
    // The items by position, as the experiment's dataset version has them.
    let positions: Vec<i64> = shared.iter().map(|i| i64::from(*i)).collect();
    let items: HashMap<i32, crate::types::Item> = crate::server::store::datasets::by_positions(
        &core.db,
        e.items.dataset_id,
        e.items.version,
        &positions,
    )
    .await?
    .into_iter()
    .map(|i| (i.position as i32, i))
    .collect();
    let work: Vec<_> = shared
        .iter()
        .map(|&i| {
            let (env, judge, items) = (&env, &judge, &items);
            let (a_first, b_first) = (&first[&i], &second[&i]);
            async move {
                // Which answer is A: drawn per item, reproducibly.
                let first_is_a =
                    Rng::new(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64() & 1
                        == 0;
                let (a, b) = if first_is_a {
                    (a_first, b_first)
                } else {
                    (b_first, a_first)
                };
                judge_one(env, judge, items.get(&i), i, a, b, first_is_a).await
            }
        })
        .collect();
    let judged: Vec<(PairwiseItem, Usage)> = futures::stream::iter(work)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut details = Vec::with_capacity(judged.len());
    let mut usage = Usage::default();
    for (item, spent) in judged {
        details.push(item);
        usage.add(spent);
    }
    details.sort_by_key(|d| d.item_index);
    for (key, answer) in &usage.cache_puts {
        crate::server::store::cache::put(&core.db, key, answer).await?;
    }
    Ok(summarise(req.first, req.second, details, &usage))
}

async fn judge_one(
    env: &Env<'_>,
    judge: &Judge,
    sample: Option<&crate::types::Item>,
    item: i32,
    a: &str,
    b: &str,
    first_is_a: bool,
) -> (PairwiseItem, Usage) {
    let shown_as_a = if first_is_a { "first" } else { "second" }.to_owned();
    let ctx = json!({
        "input": sample.map(|s| &s.input),
        "reference": sample.and_then(|s| s.reference.as_deref()).unwrap_or(""),
        "a": a,
        "b": b,
        "item": {"index": item, "id": sample.map(|s| s.id.as_str())},
    });
    let env_t = templates::environment();
    let render = |t: &str| {
        env_t
            .render_str(t, minijinja::value::Serde(&ctx))
            .map_err(|err| format!("judge template error: {err}"))
    };
    let failed = |error: String| PairwiseItem {
        item_index: item,
        winner: None,
        shown_as_a: shown_as_a.clone(),
        error: Some(error),
        reply: String::new(),
        cached: false,
    };
    let msgs = match (render(&judge.system), render(&judge.prompt)) {
        (Ok(s), Ok(u)) => messages(s, u),
        (Err(err), _) | (_, Err(err)) => return (failed(err), Usage::default()),
    };
    let key = judge_key(
        judge.target.row.kind,
        judge.target.url(),
        &judge.model,
        &msgs,
        &judge.params,
    );
    let request = ChatRequest {
        model: judge.model.clone(),
        messages: msgs,
        params: judge.params.clone(),
    };
    let call = call_judge(env, &key, &judge.target.ready, &judge.policy, &request).await;
    let usage = call.usage(env, &key);
    let answer = match &call.answer {
        Ok(answer) => answer,
        Err(err) => return (failed(err.clone()), usage),
    };
    let reply: String = answer.response.chars().take(1000).collect();
    let (winner, error) = match parse_winner(&answer.response) {
        Ok(Winner::Tie) => (Some("tie"), None),
        Ok(w) => {
            let a_won = w == Winner::A;
            (
                Some(if a_won == first_is_a {
                    "first"
                } else {
                    "second"
                }),
                None,
            )
        }
        Err(why) => (None, Some(why)),
    };
    (
        PairwiseItem {
            item_index: item,
            winner: winner.map(str::to_owned),
            shown_as_a,
            error,
            reply,
            cached: !call.made,
        },
        usage,
    )
}

fn summarise(
    first: String,
    second: String,
    details: Vec<PairwiseItem>,
    usage: &Usage,
) -> PairwiseResult {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &details {
        *counts
            .entry(d.winner.as_deref().unwrap_or("failed"))
            .or_default() += 1;
    }
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    let (fw, sw, ties, failures) = (get("first"), get("second"), get("tie"), get("failed"));
    let decided = fw + sw;
    let p_value = sign_test(fw, decided);
    let ci = wilson(fw, decided);
    let significant = p_value.is_some_and(|p| p < 0.05);
    let verdict = if decided == 0 {
        "The judge decided no item; see the replies.".to_owned()
    } else {
        let rate = fw as f64 / decided as f64;
        let who = if fw >= sw { "The first" } else { "The second" };
        let (lo, hi) = ci.unwrap_or((0.0, 1.0));
        if significant {
            format!(
                "{who} configuration is preferred: the first won {fw} of {decided} decided items ({:.0}%, 95% CI {:.0}–{:.0}%, sign test p = {:.3}); {ties} ties.",
                rate * 100.0,
                lo * 100.0,
                hi * 100.0,
                p_value.unwrap_or(1.0)
            )
        } else {
            format!(
                "No clear preference: the first won {fw} of {decided} decided items ({:.0}%, 95% CI {:.0}–{:.0}%, sign test p = {:.3}); {ties} ties.",
                rate * 100.0,
                lo * 100.0,
                hi * 100.0,
                p_value.unwrap_or(1.0)
            )
        }
    };
    PairwiseResult {
        first,
        second,
        items: details.len() as i64,
        first_wins: fw as i64,
        second_wins: sw as i64,
        ties: ties as i64,
        failures: failures as i64,
        win_rate: (decided > 0).then(|| fw as f64 / decided as f64),
        ci_low: ci.map(|c| c.0),
        ci_high: ci.map(|c| c.1),
        p_value,
        significant,
        verdict,
        calls: usage.calls,
        cache_hits: usage.cache_hits,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_robustly() {
        assert_eq!(parse_winner("Winner: A\nIt is shorter."), Ok(Winner::A));
        assert_eq!(parse_winner("**Winner:** B"), Ok(Winner::B));
        assert_eq!(parse_winner(r#"{"winner": "tie"}"#), Ok(Winner::Tie));
        assert_eq!(parse_winner("B."), Ok(Winner::B));
        assert_eq!(
            parse_winner("Answer A is better because it is complete."),
            Ok(Winner::A)
        );
        assert_eq!(parse_winner("Verdict - tie"), Ok(Winner::Tie));
        assert_eq!(parse_winner("Winner: Answer B"), Ok(Winner::B));
        assert_eq!(parse_winner("**Winner:** Response A."), Ok(Winner::A));
        assert!(parse_winner("Both have merits.").is_err());
        assert!(parse_winner("A and B").is_err());
    }

    #[test]
    fn sign_test_and_wilson() {
        assert_eq!(sign_test(5, 10), Some(1.0));
        // 10 of 10: 2 / 1024.
        assert!((sign_test(10, 10).unwrap() - 2.0 / 1024.0).abs() < 1e-12);
        assert!((sign_test(0, 10).unwrap() - 2.0 / 1024.0).abs() < 1e-12);
        // 60 of 100 ≈ 0.057 (two-sided).
        assert!((sign_test(60, 100).unwrap() - 0.0569).abs() < 1e-3);
        assert!(sign_test(5000, 10_000).unwrap() > 0.99);
        assert_eq!(sign_test(0, 0), None);
        let (lo, hi) = wilson(8, 10).unwrap();
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
    }
}
