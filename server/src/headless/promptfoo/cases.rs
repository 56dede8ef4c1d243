//! promptfoo tests → cases: inline, from CSV (`__expected` columns), YAML or JSON(L) files;
//! `defaultTest` vars merged and array-valued vars expanded.

use serde_json::{Map, Value, json};

use super::Ctx;

/// One test case: its vars and its own assertions.
#[derive(Clone, Debug)]
pub(super) struct Test {
    pub(super) vars: Map<String, Value>,
    pub(super) asserts: Vec<Value>,
}

pub(super) fn read_tests(ctx: &mut Ctx, tests: Option<&Value>) -> Result<Vec<Test>, String> {
    let mut out = Vec::new();
    let list = match tests {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(list)) => list.clone(),
        Some(other) => vec![other.clone()],
    };
    for t in list {
        match t {
            Value::String(s) if s.starts_with("file://") => {
                out.extend(tests_file(ctx, &s)?);
            }
            Value::Object(o) => {
                let mut vars = match o.get("vars") {
                    Some(Value::Object(v)) => v.clone(),
                    Some(Value::String(s)) if s.starts_with("file://") => {
                        match serde_norway::from_str::<Value>(&ctx.read(s)?) {
                            Ok(Value::Object(v)) => v,
                            _ => {
                                ctx.unmapped.push(format!("vars file {s} (not a mapping)"));
                                Map::new()
                            }
                        }
                    }
                    _ => Map::new(),
                };
                load_var_files(ctx, &mut vars);
                for key in o.keys() {
                    if !matches!(
                        key.as_str(),
                        "vars" | "assert" | "description" | "metadata" | "threshold"
                    ) {
                        ctx.unmapped.push(format!("test field `{key}`"));
                    }
                }
                if o.contains_key("threshold") {
                    ctx.unmapped
                        .push("a test's `threshold` (use --fail-under for the whole run)".into());
                }
                out.push(Test {
                    vars,
                    asserts: o
                        .get("assert")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                });
            }
            other => ctx.unmapped.push(format!("test {other}")),
        }
    }
    Ok(out)
}

/// A var given as `file://…` is the file's text (as promptfoo reads it).
pub(super) fn load_var_files(ctx: &mut Ctx, vars: &mut Map<String, Value>) {
    for (name, v) in vars.iter_mut() {
        if let Value::String(s) = v
            && s.starts_with("file://")
        {
            let lower = s.to_ascii_lowercase();
            if [".js", ".py", ".ts"].iter().any(|e| is_code(&lower, e)) {
                ctx.unmapped.push(format!("var `{name}` computed by {s}"));
                continue;
            }
            match ctx.read(s) {
                Ok(text) => *v = Value::String(text),
                Err(e) => ctx.unmapped.push(format!("var `{name}`: {e}")),
            }
        }
    }
}

/// `file://x.py` or `file://x.py:function`: code promptfoo runs, which has no equivalent.
pub(super) fn is_code(reference: &str, extension: &str) -> bool {
    reference.ends_with(extension) || reference.contains(&format!("{extension}:"))
}

/// Tests from a CSV (`__expected…` columns are assertions), YAML or JSON(L) file.
pub(super) fn tests_file(ctx: &mut Ctx, reference: &str) -> Result<Vec<Test>, String> {
    let text = ctx.read(reference)?;
    let lower = reference.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| format!("{reference}: {e}"))?
            .clone();
        let mut out = Vec::new();
        for row in reader.records() {
            let row = row.map_err(|e| format!("{reference}: {e}"))?;
            let mut vars = Map::new();
            let mut asserts = Vec::new();
            for (h, cell) in headers.iter().zip(row.iter()) {
                if h.starts_with("__expected") {
                    if !cell.is_empty() {
                        asserts.push(expected(cell));
                    }
                } else if h.starts_with("__") {
                    // __description, __metadata…: nothing to carry over.
                } else {
                    vars.insert(h.to_owned(), Value::String(cell.to_owned()));
                }
            }
            out.push(Test { vars, asserts });
        }
        return Ok(out);
    }
    let value: Value = if lower.ends_with(".jsonl") {
        Value::Array(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{reference}: {e}"))?,
        )
    } else {
        serde_norway::from_str(&text).map_err(|e| format!("{reference}: {e}"))?
    };
    read_tests(ctx, Some(&value))
}

/// A CSV `__expected` cell as an assertion (`contains: x`, `grade: x`, `similar(0.8): x`, or a
/// plain value meaning equals).
pub(super) fn expected(cell: &str) -> Value {
    let known = [
        "contains-any",
        "contains-all",
        "icontains-any",
        "icontains-all",
        "not-contains",
        "not-icontains",
        "icontains",
        "contains",
        "starts-with",
        "regex",
        "not-regex",
        "equals",
        "is-json",
        "contains-json",
        "javascript",
        "python",
        "fn",
        "grade",
        "llm-rubric",
        "similar",
        "rouge-n",
        "levenshtein",
        "eval",
    ];
    for k in known {
        if let Some(rest) = cell.strip_prefix(k) {
            let (threshold, rest) = match rest.strip_prefix('(') {
                Some(r) => match r.split_once(')') {
                    Some((t, r)) => (t.parse::<f64>().ok(), r),
                    None => (None, rest),
                },
                None => (None, rest),
            };
            let Some(value) = rest.strip_prefix(':').or(rest.is_empty().then_some("")) else {
                continue;
            };
            let kind = match k {
                "grade" => "llm-rubric",
                "fn" | "eval" => "javascript",
                other => other,
            };
            let value = value.trim();
            let value = if kind.ends_with("-any") || kind.ends_with("-all") {
                json!(value.split(',').map(str::trim).collect::<Vec<_>>())
            } else {
                json!(value)
            };
            let mut a = json!({"type": kind, "value": value});
            if let Some(t) = threshold {
                a["threshold"] = json!(t);
            }
            return a;
        }
    }
    json!({"type": "equals", "value": cell})
}

/// defaultTest's vars under each test's, and every combination of array-valued vars (promptfoo
/// runs a test once per combination).
pub(super) fn expand(default_test: &Value, tests: Vec<Test>) -> Vec<Test> {
    let defaults = default_test
        .get("vars")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    let tests = if tests.is_empty() && !defaults.is_empty() {
        vec![Test {
            vars: Map::new(),
            asserts: Vec::new(),
        }]
    } else {
        tests
    };
    for t in tests {
        let mut vars = defaults.clone();
        vars.extend(t.vars);
        let mut combos: Vec<Map<String, Value>> = vec![Map::new()];
        for (k, v) in vars {
            let values = match v {
                Value::Array(list) if !list.is_empty() => list,
                other => vec![other],
            };
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    let k = &k;
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert(k.clone(), v.clone());
                        c
                    })
                })
                .collect();
        }
        for vars in combos {
            out.push(Test {
                vars,
                asserts: t.asserts.clone(),
            });
        }
    }
    out
}
