//! promptfoo prompts → prompt variants: inline, text files split at `---`, chat lists with one
//! system and one user message; Nunjucks variables become `input.` ones.

use std::collections::BTreeSet;

use engine::types::PromptVariant;
use serde_json::Value;

use super::Ctx;
use super::cases::is_code;

pub(super) fn read_prompts(
    ctx: &mut Ctx,
    prompts: Option<&Value>,
    vars: &BTreeSet<String>,
) -> Result<Vec<PromptVariant>, String> {
    let mut raw: Vec<(Option<String>, String)> = Vec::new();
    match prompts {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => raw.push((None, s.clone())),
        Some(Value::Array(list)) => {
            for p in list {
                match p {
                    Value::String(s) => raw.push((None, s.clone())),
                    Value::Object(o) => {
                        let label = o
                            .get("label")
                            .or_else(|| o.get("id"))
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        match o.get("raw").or_else(|| o.get("id")).and_then(Value::as_str) {
                            Some(text) => raw.push((label, text.to_owned())),
                            None => ctx.unmapped.push(format!("prompt {p}")),
                        }
                    }
                    other => ctx.unmapped.push(format!("prompt {other}")),
                }
            }
        }
        Some(Value::Object(map)) => {
            for (k, v) in map {
                raw.push((v.as_str().map(str::to_owned), k.clone()));
            }
        }
        Some(other) => ctx.unmapped.push(format!("prompts {other}")),
    }
    let mut out = Vec::new();
    for (label, text) in raw {
        let mut bodies: Vec<(Option<String>, String)> = Vec::new();
        if let Some(reference) = text.strip_prefix("file://") {
            let lower = reference.to_ascii_lowercase();
            if [".js", ".py", ".ts", ".mjs", ".cjs"]
                .iter()
                .any(|e| is_code(&lower, e))
                || reference.contains('*')
            {
                ctx.unmapped
                    .push(format!("prompt {text} (functions and globs)"));
                continue;
            }
            let content = ctx.read(&text)?;
            if lower.ends_with(".json") || lower.ends_with(".yaml") || lower.ends_with(".yml") {
                bodies.push((
                    label.clone().or_else(|| Some(reference.to_owned())),
                    content,
                ));
            } else {
                // promptfoo splits a text file into prompts at lines of `---`.
                let parts: Vec<&str> = content.split("\n---\n").collect();
                let many = parts.len() > 1;
                for (i, part) in parts.into_iter().enumerate() {
                    let name = match (&label, many) {
                        (Some(l), true) => Some(format!("{l} {}", i + 1)),
                        (Some(l), false) => Some(l.clone()),
                        (None, true) => Some(format!("{reference} {}", i + 1)),
                        (None, false) => Some(reference.to_owned()),
                    };
                    bodies.push((name, part.trim().to_owned()));
                }
            }
        } else {
            bodies.push((label, text));
        }
        for (name, body) in bodies {
            let name = name.unwrap_or_else(|| format!("prompt {}", out.len() + 1));
            match chat(&body) {
                Some(Ok((system, user))) => out.push(PromptVariant {
                    name,
                    system: (!system.is_empty()).then(|| jinja(&system, vars)),
                    user: Some(jinja(&user, vars)),
                }),
                Some(Err(why)) => ctx.unmapped.push(format!("prompt {name:?}: {why}")),
                None => out.push(PromptVariant {
                    name,
                    system: None,
                    user: Some(jinja(&body, vars)),
                }),
            }
        }
    }
    // Names must be unique among variants.
    let mut seen = BTreeSet::new();
    for p in &mut out {
        let mut name = p.name.clone();
        let mut n = 2;
        while !seen.insert(name.clone()) {
            name = format!("{} ({n})", p.name);
            n += 1;
        }
        p.name = name;
    }
    Ok(out)
}

/// A chat-format prompt (a JSON/YAML list of `{role, content}`) as (system, user); `None` when
/// the text is not one.
pub(super) fn chat(body: &str) -> Option<Result<(String, String), String>> {
    let trimmed = body.trim_start();
    if !trimmed.starts_with('[') && !trimmed.starts_with("- ") {
        return None;
    }
    let Ok(Value::Array(messages)) = serde_norway::from_str::<Value>(body) else {
        return None;
    };
    if !messages.iter().all(|m| m.get("role").is_some()) {
        return None;
    }
    let mut system = Vec::new();
    let mut user = Vec::new();
    for m in &messages {
        let content = m["content"].as_str().unwrap_or_default().to_owned();
        match m["role"].as_str() {
            Some("system") => system.push(content),
            Some("user") => user.push(content),
            Some(role) => {
                return Some(Err(format!(
                    "a chat prompt with a `{role}` message (a stage has one system and one user message)"
                )));
            }
            None => return Some(Err("a message without a role".into())),
        }
    }
    if user.len() != 1 {
        return Some(Err(format!(
            "a chat prompt with {} user messages (a stage has one)",
            user.len()
        )));
    }
    Some(Ok((system.join("\n\n"), user.remove(0))))
}

/// promptfoo's `{{ var }}` (Nunjucks) → our `{{ input.var }}` (Jinja): every variable name
/// inside `{{ … }}` and `{% … %}` that a test defines gets the `input.` prefix.
pub fn jinja(template: &str, vars: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    loop {
        let next = ["{{", "{%"]
            .iter()
            .filter_map(|o| rest.find(o).map(|at| (at, *o)))
            .min();
        let Some((at, open)) = next else {
            out.push_str(rest);
            return out;
        };
        let close = if open == "{{" { "}}" } else { "%}" };
        out.push_str(&rest[..at + 2]);
        let body_start = at + 2;
        let Some(len) = rest[body_start..].find(close) else {
            out.push_str(&rest[body_start..]);
            return out;
        };
        out.push_str(&prefix_vars(&rest[body_start..body_start + len], vars));
        out.push_str(close);
        rest = &rest[body_start + len + 2..];
    }
}

pub(super) fn prefix_vars(expr: &str, vars: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(expr.len() + 8);
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            out.push(c);
            i += 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let after_dot = start > 0 && chars[start - 1] == '.';
            if !after_dot && vars.contains(&word) {
                out.push_str("input.");
            }
            out.push_str(&word);
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}
