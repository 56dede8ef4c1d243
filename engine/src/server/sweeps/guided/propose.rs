//! Prompt proposals, in the manner of OPRO and APE: an LLM the user picks is shown the best
//! and the worst configurations so far (their prompts, a sample output, the scores and what
//! the scorers said) and writes new variants of one stage's prompt. The variants join the
//! sweep's space as new categorical values, with their provenance.
//!
//! The call goes through the response cache (a resumed sweep asks again and gets the same
//! answer for free) and counts toward the sweep's budget. A reply that is not what was asked
//! for is reported on the timeline and the search goes on without it.

use super::*;
use crate::server::cache::{self, CallKey};
use crate::server::providers::ChatRequest;
use crate::server::store::cache as cache_store;
use crate::server::store::guided::Spend;
use crate::server::store::scores as score_store;
use crate::types::{GuidedConfig, Params, PromptVariant, ProposedVariant, RunConfig};

/// The first line of every proposal request (the simulated provider recognises it).
pub const HEADER: &str = "You improve prompts for an LLM task.";
/// Longest prompt text a proposal may carry.
const MAX_PROMPT: usize = 20_000;

/// What a proposal attempt produced.
pub struct Proposal {
    pub variants: Vec<ProposedVariant>,
    pub spend: Spend,
    /// Why nothing usable came back (the reply was garbage, or the call failed).
    pub error: Option<(String, String)>,
}

/// Shown to the proposer for one configuration.
struct Shown {
    key: String,
    variant: String,
    mean: f64,
    items: u32,
    system: String,
    user: String,
    output: String,
    verdicts: Vec<String>,
}

async fn shown(
    ctx: &Context,
    c: &GuidedConfig,
    config: &RunConfig,
    stage: usize,
    best_run: Option<Uuid>,
) -> Result<Shown> {
    let s = &config.stages[stage];
    let (mut output, mut verdicts) = (String::new(), Vec::new());
    if let Some(run) = best_run {
        let stages = run_store::stage_results(&ctx.core.db, run).await?;
        if let Some(last) = stages.last() {
            output = last.response_raw.chars().take(600).collect();
        }
        for sc in score_store::for_run(&ctx.core.db, run).await? {
            let detail = sc
                .metadata
                .0
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or_default();
            verdicts.push(match sc.value {
                Some(v) => format!(
                    "{}: {v:.2} {}",
                    sc.scorer_name,
                    detail.chars().take(200).collect::<String>()
                ),
                None => format!(
                    "{}: no score ({})",
                    sc.scorer_name,
                    sc.error.unwrap_or_default()
                ),
            });
        }
    }
    Ok(Shown {
        key: c.config_key.clone(),
        variant: s
            .variant
            .clone()
            .unwrap_or_else(|| "(the stage's own prompt)".into()),
        mean: c.mean.unwrap_or_default(),
        items: c.items,
        system: s.system.clone(),
        user: s.user.clone(),
        output,
        verdicts,
    })
}

fn describe(out: &mut String, s: &Shown) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "[variant: {}] score {:.3} over {} item(s)\nSYSTEM:\n{}\nUSER TEMPLATE:\n{}\nSAMPLE OUTPUT:\n{}\nSCORERS:\n{}\n\n",
        s.variant,
        s.mean,
        s.items,
        s.system,
        s.user,
        s.output,
        if s.verdicts.is_empty() {
            "(none)".to_owned()
        } else {
            s.verdicts.join("\n")
        }
    );
}

/// Asks the proposer for `count` variants of `stage`'s prompt.
#[allow(clippy::too_many_arguments)]
pub async fn propose(
    ctx: &Context,
    p: &Proposer,
    state: &GuideState,
    configs: &[RunConfig],
    best_runs: &HashMap<String, Uuid>,
    round: u32,
) -> Result<Proposal> {
    let stage = p.stage.unwrap_or(0) as usize;
    let count = p.count.unwrap_or(2) as usize;
    let mut scored: Vec<usize> = (0..state.configurations.len())
        .filter(|&i| state.configurations[i].mean.is_some())
        .collect();
    scored.sort_by(|&a, &b| {
        let (x, y) = (&state.configurations[a], &state.configurations[b]);
        y.mean
            .unwrap_or_default()
            .total_cmp(&x.mean.unwrap_or_default())
            .then(y.items.cmp(&x.items))
    });
    let best: Vec<usize> = scored.iter().take(3).copied().collect();
    let worst: Vec<usize> = scored
        .iter()
        .rev()
        .take(2)
        .filter(|i| !best.contains(i))
        .copied()
        .collect();
    let mut text = format!(
        "{HEADER}\nBelow are prompt variants of stage {stage} (\"{}\") tried on the same items, with their weighted scores (0 to 1, higher is better), a sample output and what the scorers said.\n\n### Best so far\n",
        ctx.experiment
            .pipeline_stages
            .get(stage)
            .map_or("?", |s| s.name.as_str())
    );
    let mut from_best = Vec::new();
    let mut from_worst = Vec::new();
    for (heading, picked, keys) in [
        ("", &best, &mut from_best),
        ("### Worst so far\n", &worst, &mut from_worst),
    ] {
        text.push_str(heading);
        for &i in picked {
            let c = &state.configurations[i];
            let run = best_runs.get(&c.config_key).copied();
            let s = shown(ctx, c, &configs[i], stage, run).await?;
            describe(&mut text, &s);
            keys.push(s.key);
        }
    }
    text.push_str(&format!(
        "Write {count} new variant(s) of this prompt likely to score higher than the best. Keep every {{{{ placeholder }}}} of the user template. Answer with JSON only, as:\n{{\"variants\": [{{\"name\": \"short-name\", \"system\": \"…\", \"user\": \"…\", \"rationale\": \"what you changed and why\"}}]}}\n"
    ));
    let Some((row, ready)) = ctx.endpoint(p.endpoint_id).await? else {
        return Ok(Proposal {
            variants: Vec::new(),
            spend: Spend::default(),
            error: Some((
                format!("the proposer's endpoint {} no longer exists", p.endpoint_id),
                String::new(),
            )),
        });
    };
    let request = ChatRequest {
        model: p.model.clone(),
        messages: crate::server::exec::messages(String::new(), text),
        params: Params {
            temperature: Some(0.7),
            max_tokens: Some(2000),
            ..Params::default()
        },
    };
    let key = cache::call_key(&CallKey {
        kind: row.kind,
        base_url: &row.base_url,
        model: &request.model,
        messages: &request.messages,
        params: &request.params,
        input: &json!({"purpose": "prompt-proposal", "count": count}),
        stage_index: stage,
        repeat_index: 0,
    });
    let mut spend = Spend::default();
    let answer = match cache_store::get(&ctx.core.db, &key).await? {
        Some(hit) => hit,
        None => {
            let answer = match ready.call(&ctx.policy, &request).await? {
                Ok(answer) => answer,
                Err(e) => {
                    return Ok(Proposal {
                        variants: Vec::new(),
                        spend,
                        error: Some((
                            format!("the proposer call failed: {}", e.message),
                            String::new(),
                        )),
                    });
                }
            };
            cache_store::put(&ctx.core.db, &key, &answer).await?;
            spend = Spend {
                tokens_in: answer.tokens_in,
                tokens_out: answer.tokens_out,
                cost: ctx
                    .prices
                    .cost(&request.model, answer.tokens_in, answer.tokens_out)
                    .unwrap_or(0.0),
                calls: 1,
            };
            answer
        }
    };
    let existing: Vec<&str> = ctx
        .experiment
        .parameter_space
        .stages
        .get(stage)
        .map(|s| s.prompts.iter().map(|v| v.name.as_str()).collect())
        .unwrap_or_default();
    match parse(&answer.response, count, &existing) {
        Ok(parsed) => Ok(Proposal {
            variants: parsed
                .into_iter()
                .map(|(v, rationale)| ProposedVariant {
                    name: v.name,
                    stage: stage as u32,
                    system: v.system,
                    user: v.user,
                    model: p.model.clone(),
                    round,
                    from_best: from_best.clone(),
                    from_worst: from_worst.clone(),
                    rationale,
                })
                .collect(),
            spend,
            error: None,
        }),
        Err(e) => Ok(Proposal {
            variants: Vec::new(),
            spend,
            error: Some((e, answer.response.chars().take(300).collect())),
        }),
    }
}

/// The variants whose text (as it would render, over the stage's own prompt) neither the
/// stage nor an earlier variant of the list already has.
pub fn only_new(e: &Experiment, variants: Vec<ProposedVariant>) -> Vec<ProposedVariant> {
    let mut seen: std::collections::HashSet<(usize, String, String)> =
        std::collections::HashSet::new();
    for (k, stage) in e.pipeline_stages.iter().enumerate() {
        seen.insert((k, stage.system.clone(), stage.user.clone()));
        for v in e
            .parameter_space
            .stages
            .get(k)
            .map(|s| s.prompts.as_slice())
            .unwrap_or_default()
        {
            seen.insert((
                k,
                v.system.clone().unwrap_or_else(|| stage.system.clone()),
                v.user.clone().unwrap_or_else(|| stage.user.clone()),
            ));
        }
    }
    variants
        .into_iter()
        .filter(|v| {
            let k = v.stage as usize;
            let Some(stage) = e.pipeline_stages.get(k) else {
                return false;
            };
            seen.insert((
                k,
                v.system.clone().unwrap_or_else(|| stage.system.clone()),
                v.user.clone().unwrap_or_else(|| stage.user.clone()),
            ))
        })
        .collect()
}

/// Reads the proposer's reply: a JSON object with `variants` (name, system and/or user,
/// rationale). Names are made safe and unique; templates must compile.
pub fn parse(
    reply: &str,
    count: usize,
    existing: &[&str],
) -> std::result::Result<Vec<(PromptVariant, Option<String>)>, String> {
    let (Some(from), Some(to)) = (reply.find('{'), reply.rfind('}')) else {
        return Err("the reply holds no JSON object".into());
    };
    let value: Value = serde_json::from_str(&reply[from..=to])
        .map_err(|e| format!("the reply's JSON does not parse: {e}"))?;
    let Some(list) = value.get("variants").and_then(Value::as_array) else {
        return Err("the reply has no \"variants\" list".into());
    };
    let env = crate::server::templates::environment();
    let mut taken: Vec<String> = existing.iter().map(|s| (*s).to_owned()).collect();
    let mut out = Vec::new();
    for (i, v) in list.iter().take(count).enumerate() {
        let text = |f: &str| {
            v.get(f)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let (system, user) = (text("system"), text("user"));
        if system.is_none() && user.is_none() {
            return Err(format!(
                "variant {i} has neither a system nor a user prompt"
            ));
        }
        for t in [&system, &user].into_iter().flatten() {
            if t.len() > MAX_PROMPT {
                return Err(format!(
                    "variant {i} is longer than {MAX_PROMPT} characters"
                ));
            }
            env.template_from_str(t)
                .map_err(|e| format!("variant {i} is not a valid template: {e}"))?;
        }
        let base: String = text("name")
            .unwrap_or_else(|| "proposed".into())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let base = format!("p-{}", base.trim_matches('-'));
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        taken.push(name.clone());
        out.push((PromptVariant { name, system, user }, text("rationale")));
    }
    if out.is_empty() {
        return Err("the reply's \"variants\" list is empty".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_or_refused_with_a_reason() {
        let ok = parse(
            "Sure! {\"variants\": [{\"name\": \"Terse List\", \"system\": \"Only the answer.\", \"rationale\": \"shorter\"}, {\"name\": \"a\", \"user\": \"{{ text }}\"}]}",
            2,
            &["p-terse-list"],
        )
        .unwrap();
        assert_eq!(ok[0].0.name, "p-terse-list-2");
        assert_eq!(ok[0].1.as_deref(), Some("shorter"));
        assert_eq!(ok[1].0.user.as_deref(), Some("{{ text }}"));
        assert!(
            parse("Capital, Words, Only", 2, &[])
                .unwrap_err()
                .contains("no JSON")
        );
        assert!(
            parse("{\"x\": 1}", 2, &[])
                .unwrap_err()
                .contains("variants")
        );
        assert!(
            parse("{\"variants\": [{\"name\": \"x\"}]}", 2, &[])
                .unwrap_err()
                .contains("neither")
        );
        assert!(
            parse("{\"variants\": [{\"user\": \"{{ broken\"}]}", 2, &[])
                .unwrap_err()
                .contains("template")
        );
    }
}
