//! Prompt templates (Jinja2 syntax, minijinja). Checked at save time: syntax, and that every
//! variable exists — `input.<var>` in every sample item, `stages[k]` only for earlier stages.
//! Rendering is strict: an undefined variable is an error, never an empty string.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::error::{Error, Result};

/// The environment every prompt renders in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    // A bound on the work one render may do: runaway loops end with an error.
    env.set_fuel(Some(FUEL));
    env
}

/// Instructions one render may execute.
pub const FUEL: u64 = 1_000_000;
/// The longest rendered prompt, in bytes.
pub const MAX_RENDERED: usize = 1_000_000;

/// What a template may refer to.
#[derive(Serialize)]
pub struct RenderContext<'a> {
    pub input: &'a std::collections::BTreeMap<String, serde_json::Value>,
    pub stages: &'a [StageOutput],
    pub item: ItemInfo<'a>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StageOutput {
    pub name: String,
    pub output: String,
}

#[derive(Serialize)]
pub struct ItemInfo<'a> {
    pub index: usize,
    pub id: Option<&'a str>,
}

/// Checks one template of stage `stage` (0-based). `inputs`: the variables every sample item
/// has (`None`: no items yet, so input names are not checked). `field` names it in errors.
pub fn check(
    template: &str,
    field: &str,
    stage: usize,
    inputs: Option<&BTreeSet<String>>,
) -> Result<()> {
    let env = environment();
    let compiled = env
        .template_from_str(template)
        .map_err(|e| Error::invalid(field, format!("template syntax error: {}", describe(&e))))?;
    for var in compiled.undeclared_variables(true) {
        let mut parts = var.splitn(2, '.');
        let root = parts.next().unwrap_or_default();
        let rest = parts.next();
        match root {
            "input" => {
                if let (Some(name), Some(inputs)) = (rest, inputs) {
                    let name = name.split('.').next().unwrap_or(name);
                    if !inputs.contains(name) {
                        let known: Vec<&str> = inputs.iter().map(String::as_str).collect();
                        return Err(Error::invalid(
                            field,
                            format!(
                                "undefined variable input.{name} (sample items have: {})",
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
            "stages" => {
                if stage == 0 {
                    return Err(Error::invalid(
                        field,
                        "the first stage cannot refer to stages[...]",
                    ));
                }
            }
            "item" => {
                if let Some(name) = rest
                    && !matches!(name.split('.').next(), Some("index" | "id"))
                {
                    return Err(Error::invalid(
                        field,
                        format!("undefined variable item.{name} (item has index and id)"),
                    ));
                }
            }
            "loop" | "range" | "namespace" | "dict" | "debug" => {}
            other => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "undefined variable {other} (use input.<name>, stages[k].output or item.index)"
                    ),
                ));
            }
        }
    }
    for k in stage_refs(template) {
        if k >= stage {
            return Err(Error::invalid(
                field,
                format!("stages[{k}] is not an earlier stage (this is stage {stage})"),
            ));
        }
    }
    Ok(())
}

/// The literal indexes in `stages[k]` references.
fn stage_refs(template: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find("stages[") {
        rest = &rest[at + "stages[".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(k) = digits.parse() {
            found.push(k);
        }
    }
    found
}

/// Renders a template. Errors name the problem (e.g. an undefined variable) and the line.
pub fn render(
    env: &Environment<'_>,
    template: &str,
    ctx: &RenderContext<'_>,
) -> std::result::Result<String, String> {
    env.render_str(template, minijinja::value::Serde(ctx))
        .map_err(|e| describe(&e))
}

fn describe(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    if let Some(line) = e.line() {
        text = format!("{text} (line {line})");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn inputs(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn checks_syntax_and_variables() {
        let have = inputs(&["text", "lang"]);
        assert!(
            check(
                "Summarise {{ input.text }} in {{ input.lang }}",
                "user",
                0,
                Some(&have)
            )
            .is_ok()
        );
        let e = check(
            "Hello {{ input.txt }}",
            "pipeline_stages[0].user",
            0,
            Some(&have),
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("pipeline_stages[0].user"));
        assert!(e.to_string().contains("input.txt"), "{e}");
        assert!(
            check("{% if %}", "user", 0, Some(&have))
                .unwrap_err()
                .to_string()
                .contains("syntax")
        );
        assert!(check("{{ stages[0].output }}", "user", 0, Some(&have)).is_err());
        assert!(check("{{ stages[0].output }}", "user", 1, Some(&have)).is_ok());
        assert!(check("{{ stages[1].output }}", "user", 1, Some(&have)).is_err());
        assert!(
            check("{{ secret }}", "user", 0, Some(&have))
                .unwrap_err()
                .to_string()
                .contains("secret")
        );
        assert!(
            check(
                "{% for w in input.text.split() %}{{ w }}{% endfor %}",
                "user",
                0,
                Some(&have)
            )
            .is_ok()
        );
        assert!(check("{{ input.anything }}", "user", 0, None).is_ok());
        assert!(check("{{ item.index }} {{ item.id }}", "user", 0, Some(&have)).is_ok());
        assert!(check("{{ item.name }}", "user", 0, Some(&have)).is_err());
    }

    #[test]
    fn renders_strictly() {
        let env = environment();
        let input: BTreeMap<String, serde_json::Value> =
            [("text".to_owned(), serde_json::json!("hi"))].into();
        let stages = [StageOutput {
            name: "a".into(),
            output: "out".into(),
        }];
        let ctx = RenderContext {
            input: &input,
            stages: &stages,
            item: ItemInfo { index: 3, id: None },
        };
        assert_eq!(
            render(
                &env,
                "{{ input.text }}/{{ stages[0].output }}/{{ item.index }}",
                &ctx
            )
            .unwrap(),
            "hi/out/3"
        );
        assert!(render(&env, "{{ input.missing }}", &ctx).is_err());
        let runaway =
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(
            render(&env, runaway, &ctx).is_err(),
            "fuel ends runaway loops"
        );
    }
}
