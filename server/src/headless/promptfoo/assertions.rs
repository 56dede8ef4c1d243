//! promptfoo assertions → scorers, and the per-item data they read (`_checks`, `_rubric`,
//! the reference).

use std::collections::{BTreeMap, BTreeSet};

use engine::types::EndpointKind;
use serde_json::{Map, Value, json};

use super::Ctx;
use super::cases::Test;
use super::providers::Model;
use crate::headless::file::EndpointSpec;

/// Per-item checks a Rhai scorer evaluates (promptfoo's string assertions).
pub(super) const ITEM_CHECKS: &[&str] = &[
    "contains",
    "icontains",
    "not-contains",
    "not-icontains",
    "equals",
    "not-equals",
    "starts-with",
    "contains-any",
    "contains-all",
    "icontains-any",
    "icontains-all",
];

/// The Rhai scorer for per-item checks: the share of an item's checks the output passes (an
/// item with none passes, as a promptfoo test without assertions does).
pub(super) const CHECKS_SCRIPT: &str = r#"let checks = if "_checks" in input { input._checks } else { [] };
if checks.len() == 0 { return #{score: 1.0, metadata: #{note: "no checks for this item"}}; }
let low = output.to_lower();
let passed = 0;
let failed = [];
for c in checks {
    let t = c["type"];
    let v = c["value"];
    let ok = switch t {
        "contains" => output.contains(v),
        "icontains" => low.contains(v.to_lower()),
        "not-contains" => !output.contains(v),
        "not-icontains" => !low.contains(v.to_lower()),
        "equals" => output == v,
        "not-equals" => output != v,
        "starts-with" => output.starts_with(v),
        "contains-any" => v.some(|x| output.contains(x)),
        "contains-all" => v.all(|x| output.contains(x)),
        "icontains-any" => v.some(|x| low.contains(x.to_lower())),
        "icontains-all" => v.all(|x| low.contains(x.to_lower())),
        _ => false
    };
    if ok { passed += 1; } else { failed.push(`${t} ${v}`); }
}
#{score: passed.to_float() / checks.len().to_float(), metadata: #{passed: passed, checks: checks.len(), failed: failed}}"#;

/// Assertions → scorers and items. Returns the scorers, the items (vars, `_checks`,
/// `_rubric`, reference) and an endpoint a scorer needs that no provider gave.
pub(super) fn assertions(
    ctx: &mut Ctx,
    default_test: &Value,
    tests: &[Test],
    models: &[Model],
) -> (Vec<Value>, Vec<Value>, Option<(String, EndpointSpec)>) {
    let global: Vec<Value> = default_test
        .get("assert")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut scorers: Vec<Value> = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut add = |scorers: &mut Vec<Value>, base: &str, mut s: Value, weight: Option<f64>| {
        let mut name = base.to_owned();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        s["name"] = json!(name);
        if let Some(w) = weight {
            s["weight"] = json!(w);
        }
        scorers.push(s);
    };
    let mut global_checks: Vec<Value> = Vec::new();
    let mut global_rubric: Option<String> = None;
    let mut global_reference: Option<String> = None;
    let mut need_judge = false;
    let mut need_embed = false;
    let mut unmapped: BTreeMap<String, usize> = BTreeMap::new();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for a in &global {
        let t = a["type"].as_str().unwrap_or_default();
        let v = &a["value"];
        let weight = a["weight"].as_f64();
        match t {
            "contains" | "icontains" | "not-contains" | "not-icontains" => {
                let key = if t.starts_with("not-") {
                    "forbidden"
                } else {
                    "required"
                };
                add(
                    &mut scorers,
                    t,
                    json!({"kind": "keywords", key: [text(v)], "case_sensitive": !t.contains("icontains"), "mode": "all"}),
                    weight,
                );
            }
            "contains-any" | "contains-all" | "icontains-any" | "icontains-all" => {
                let terms: Vec<String> = match v {
                    Value::Array(list) => list.iter().map(text).collect(),
                    other => text(other)
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .collect(),
                };
                add(
                    &mut scorers,
                    t,
                    json!({"kind": "keywords", "required": terms, "case_sensitive": !t.starts_with('i'),
                           "mode": if t.ends_with("-any") { "any" } else { "all" }}),
                    weight,
                );
            }
            "regex" => add(
                &mut scorers,
                "regex",
                json!({"kind": "format", "format": "regex", "pattern": text(v)}),
                weight,
            ),
            "is-json" | "contains-json" => {
                let s = if v.is_object() {
                    json!({"kind": "format", "format": "json_schema", "schema": v})
                } else {
                    json!({"kind": "format", "format": "json"})
                };
                add(&mut scorers, "json", s, weight);
            }
            "equals" | "not-equals" | "starts-with" => {
                global_checks.push(json!({"type": t, "value": text(v)}))
            }
            "llm-rubric" => {
                global_rubric = Some(text(v));
                need_judge = true;
            }
            "similar" => {
                global_reference = Some(text(v));
                need_embed = true;
            }
            other => *unmapped.entry(other.to_owned()).or_default() += 1,
        }
    }
    // Per-test assertions.
    let mut items = Vec::new();
    let mut any_checks = !global_checks.is_empty();
    let mut any_rubric = false;
    let mut any_json = false;
    let mut any_regex: Option<String> = None;
    let mut regex_differs = false;
    let mut lexical = false;
    for t in tests {
        let mut checks = global_checks.clone();
        let mut rubrics: Vec<String> = Vec::new();
        let mut reference: Option<String> = global_reference.clone();
        for a in &t.asserts {
            let kind = a["type"].as_str().unwrap_or_default();
            let v = &a["value"];
            if ITEM_CHECKS.contains(&kind) {
                checks.push(json!({"type": kind, "value": if v.is_array() { v.clone() } else { json!(text(v)) }}));
                any_checks = true;
                continue;
            }
            match kind {
                "llm-rubric" => {
                    rubrics.push(text(v));
                    any_rubric = true;
                }
                "similar" | "rouge-n" | "levenshtein" => {
                    if reference.is_none() {
                        reference = Some(text(v));
                    }
                    if kind == "similar" {
                        need_embed = true;
                    } else {
                        lexical = true;
                    }
                }
                "is-json" | "contains-json" => any_json = true,
                "regex" => {
                    let p = text(v);
                    match &any_regex {
                        Some(prev) if *prev != p => regex_differs = true,
                        _ => any_regex = Some(p),
                    }
                }
                other => *unmapped.entry(other.to_owned()).or_default() += 1,
            }
        }
        let mut item = Map::new();
        item.insert("input".into(), Value::Object(t.vars.clone()));
        if let Some(r) = reference {
            item.insert("reference".into(), json!(r));
        }
        if !checks.is_empty() {
            item["input"]["_checks"] = Value::Array(checks);
        }
        if !rubrics.is_empty() {
            item["input"]["_rubric"] = json!(rubrics.join("\n"));
        }
        items.push(Value::Object(item));
    }
    if any_checks {
        for item in &mut items {
            if item["input"].get("_checks").is_none() {
                item["input"]["_checks"] = json!([]);
            }
        }
        add(
            &mut scorers,
            "checks",
            json!({"kind": "rhai", "script": CHECKS_SCRIPT}),
            None,
        );
        ctx.notes.push(
            "string assertions (contains, equals, starts-with…) are checked per item by the `checks` Rhai scorer from each item's `_checks`".into(),
        );
    }
    if any_json {
        add(
            &mut scorers,
            "json",
            json!({"kind": "format", "format": "json"}),
            None,
        );
        if tests.iter().any(|t| {
            !t.asserts
                .iter()
                .any(|a| matches!(a["type"].as_str(), Some("is-json" | "contains-json")))
        }) {
            ctx.notes
                .push("is-json applies to every item (some tests did not ask for it)".into());
        }
    }
    if let Some(p) = any_regex {
        if regex_differs {
            *unmapped
                .entry("regex (a different pattern per test)".into())
                .or_default() += 1;
        } else {
            add(
                &mut scorers,
                "regex",
                json!({"kind": "format", "format": "regex", "pattern": p}),
                None,
            );
        }
    }
    if lexical {
        add(
            &mut scorers,
            "rouge",
            json!({"kind": "lexical_similarity", "metric": "rouge_l"}),
            None,
        );
        ctx.notes.push("rouge-n and levenshtein become lexical_similarity (ROUGE-L) against the item's reference; thresholds are not used (scores are continuous)".into());
    }
    let mut extra_endpoint = None;
    let openai = models
        .iter()
        .find(|m| m.spec.kind == EndpointKind::Openai && m.endpoint == "openai");
    if need_judge || any_rubric {
        if any_rubric {
            for item in &mut items {
                if item["input"].get("_rubric").is_none() {
                    item["input"]["_rubric"] = json!("");
                }
            }
        }
        let rubric = match (&global_rubric, any_rubric) {
            (Some(g), true) => format!("{g}\n{{{{ input._rubric }}}}"),
            (Some(g), false) => g.clone(),
            (None, _) => "{% if input._rubric %}{{ input._rubric }}{% else %}(This item has no rubric: judge whether the output does what the request asked.){% endif %}".into(),
        };
        let prompt = format!(
            "You grade an AI assistant's output against a rubric.\n\nRubric:\n{rubric}\n\nOutput:\n{{{{ output }}}}\n\nReply with a score from {{{{ min }}}} (fails the rubric) to {{{{ max }}}} (fully meets it), as `Score: N`."
        );
        let (endpoint, model) = match openai {
            Some(m) => (m.endpoint.clone(), "gpt-4o".to_owned()),
            None => (models[0].endpoint.clone(), models[0].model.clone()),
        };
        ctx.notes.push(format!(
            "llm-rubric is graded by {model} on {endpoint} (promptfoo's default grader is an OpenAI model); change the llm_rubric scorer's endpoint/model to pick another"
        ));
        add(
            &mut scorers,
            "llm_rubric",
            json!({"kind": "llm_judge", "endpoint": endpoint, "model": model, "prompt": prompt, "min": 0, "max": 10}),
            None,
        );
    }
    if need_embed {
        let endpoint = match openai {
            Some(m) => m.endpoint.clone(),
            None => {
                let spec = EndpointSpec {
                    kind: EndpointKind::Openai,
                    base_url: "${OPENAI_BASE_URL:-https://api.openai.com/v1}".into(),
                    api_key_env: Some("OPENAI_API_KEY".into()),
                    options: None,
                    max_concurrency: None,
                    rpm: None,
                    tpm: None,
                    timeout_ms: None,
                };
                extra_endpoint = Some(("openai".to_owned(), spec));
                "openai".to_owned()
            }
        };
        add(
            &mut scorers,
            "similar",
            json!({"kind": "embedding_similarity", "endpoint": endpoint, "model": "text-embedding-3-large"}),
            None,
        );
        ctx.notes.push("similar becomes embedding_similarity (text-embedding-3-large, as promptfoo's default) against the item's reference; its threshold is not used (scores are continuous)".into());
    }
    for (kind, count) in unmapped {
        ctx.unmapped.push(format!("assertion `{kind}` ({count}×)"));
    }
    (scorers, items, extra_endpoint)
}
