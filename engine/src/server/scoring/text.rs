//! Scorers that read the output alone (or with the reference): length, lexical similarity,
//! format (JSON, JSON Schema, regex, markdown) and keywords. No calls, no I/O.

use serde_json::{Value, json};

use super::{Env, Scorer, Subject, Usage, Verdict};
use crate::types::{FormatKind, KeywordMode, LengthUnit, LexicalMetric, ScorerSpec};

/// Longest token sequences ROUGE-L compares (its cost is the product of the two lengths).
const LCS_MAX_TOKENS: usize = 4000;
/// Largest compiled regex, in bytes.
pub(super) const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn scored(v: Verdict) -> Option<(Verdict, Usage)> {
    Some((v, Usage::default()))
}

pub(super) struct Length {
    pub unit: LengthUnit,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub falloff: f64,
}

impl Length {
    /// 1 within bounds; outside, falling linearly to 0 over `falloff` × the bound.
    pub fn value(&self, length: u64) -> (f64, u64) {
        let fall = |distance: u64, bound: u64| {
            let width = self.falloff * bound.max(1) as f64;
            if width <= 0.0 {
                0.0
            } else {
                (1.0 - distance as f64 / width).max(0.0)
            }
        };
        match (self.min, self.max) {
            (Some(min), _) if length < min => (fall(min - length, min), min - length),
            (_, Some(max)) if length > max => (fall(length - max, max), length - max),
            _ => (1.0, 0),
        }
    }
}

#[async_trait::async_trait]
impl Scorer for Length {
    async fn score(&self, _env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        let (length, estimated) = match self.unit {
            LengthUnit::Characters => (s.output.chars().count() as u64, false),
            LengthUnit::Words => (s.output.split_whitespace().count() as u64, false),
            LengthUnit::Tokens => (s.output_tokens.max(0) as u64, s.output_tokens_estimated),
        };
        let (value, distance) = self.value(length);
        scored(Verdict::score(
            value,
            json!({
                "length": length,
                "unit": self.unit,
                "min": self.min,
                "max": self.max,
                "distance": distance,
                "estimated": estimated,
            }),
        ))
    }
}

/// Lowercased alphanumeric words.
pub(super) fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Token-level F1 (multiset overlap) between output and reference.
pub(super) fn token_f1(output: &[String], reference: &[String]) -> (f64, f64, f64) {
    if output.is_empty() && reference.is_empty() {
        return (1.0, 1.0, 1.0);
    }
    let mut counts: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for t in reference {
        *counts.entry(t).or_default() += 1;
    }
    let mut overlap = 0;
    for t in output {
        if let Some(n) = counts.get_mut(t.as_str())
            && *n > 0
        {
            *n -= 1;
            overlap += 1;
        }
    }
    f_measure(overlap, output.len(), reference.len())
}

fn f_measure(matched: usize, output: usize, reference: usize) -> (f64, f64, f64) {
    if matched == 0 {
        return (0.0, 0.0, 0.0);
    }
    let precision = matched as f64 / output as f64;
    let recall = matched as f64 / reference as f64;
    (
        2.0 * precision * recall / (precision + recall),
        precision,
        recall,
    )
}

/// ROUGE-L: the F-measure of the longest common subsequence of tokens.
pub(super) fn rouge_l(output: &[String], reference: &[String]) -> (f64, f64, f64) {
    if output.is_empty() && reference.is_empty() {
        return (1.0, 1.0, 1.0);
    }
    let mut previous = vec![0usize; reference.len() + 1];
    let mut current = vec![0usize; reference.len() + 1];
    for a in output {
        for (j, b) in reference.iter().enumerate() {
            current[j + 1] = if a == b {
                previous[j] + 1
            } else {
                current[j].max(previous[j + 1])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    f_measure(previous[reference.len()], output.len(), reference.len())
}

pub(super) struct Lexical {
    pub metric: LexicalMetric,
}

pub(super) fn no_reference(s: &Subject<'_>) -> Verdict {
    Verdict::fail(
        format!(
            "sample item {} has no reference to compare with",
            s.run.item_index
        ),
        json!({}),
    )
}

#[async_trait::async_trait]
impl Scorer for Lexical {
    async fn score(&self, _env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        let Some(reference) = s.reference else {
            return scored(no_reference(s));
        };
        let (mut out, mut reference) = (tokens(s.output), tokens(reference));
        let (value, precision, recall, truncated) = match self.metric {
            LexicalMetric::TokenF1 => {
                let (f, p, r) = token_f1(&out, &reference);
                (f, p, r, false)
            }
            LexicalMetric::RougeL => {
                let truncated = out.len() > LCS_MAX_TOKENS || reference.len() > LCS_MAX_TOKENS;
                out.truncate(LCS_MAX_TOKENS);
                reference.truncate(LCS_MAX_TOKENS);
                let (f, p, r) = rouge_l(&out, &reference);
                (f, p, r, truncated)
            }
        };
        scored(Verdict::score(
            value,
            json!({
                "metric": self.metric,
                "precision": precision,
                "recall": recall,
                "output_tokens": out.len(),
                "reference_tokens": reference.len(),
                "truncated": truncated,
            }),
        ))
    }
}

pub(super) struct Format {
    kind: FormatKind,
    schema: Option<jsonschema::Validator>,
    regex: Option<regex::Regex>,
    allow_code_fence: bool,
    markdown: Markdown,
}

#[derive(Default)]
struct Markdown {
    min_headings: Option<u32>,
    min_list_items: Option<u32>,
    min_code_blocks: Option<u32>,
    min_tables: Option<u32>,
    required_headings: Vec<String>,
}

/// Compiles a JSON Schema, or says why it is not one.
pub(super) fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| format!("invalid JSON Schema: {e}"))
}

/// Compiles a regex (whole-output anchored when `full`), within the size limit.
pub(super) fn compile_regex(pattern: &str, full: bool) -> Result<regex::Regex, String> {
    let pattern = if full {
        format!(r"\A(?:{pattern})\z")
    } else {
        pattern.to_owned()
    };
    regex::RegexBuilder::new(&pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex: {e}"))
}

impl Format {
    pub fn new(spec: &ScorerSpec) -> Result<Format, String> {
        let ScorerSpec::Format {
            format,
            schema,
            pattern,
            full_match,
            allow_code_fence,
            min_headings,
            min_list_items,
            min_code_blocks,
            min_tables,
            required_headings,
        } = spec
        else {
            return Err("not a format scorer".into());
        };
        Ok(Format {
            kind: *format,
            schema: match (format, schema) {
                (FormatKind::JsonSchema, Some(s)) => Some(compile_schema(s)?),
                (FormatKind::JsonSchema, None) => return Err("json_schema needs a schema".into()),
                _ => None,
            },
            regex: match (format, pattern) {
                (FormatKind::Regex, Some(p)) => Some(compile_regex(p, *full_match)?),
                (FormatKind::Regex, None) => return Err("regex needs a pattern".into()),
                _ => None,
            },
            allow_code_fence: *allow_code_fence,
            markdown: Markdown {
                min_headings: *min_headings,
                min_list_items: *min_list_items,
                min_code_blocks: *min_code_blocks,
                min_tables: *min_tables,
                required_headings: required_headings.clone(),
            },
        })
    }

    fn json_text<'a>(&self, output: &'a str) -> (&'a str, bool) {
        let trimmed = output.trim();
        if self.allow_code_fence
            && let Some(rest) = trimmed.strip_prefix("```")
            && let Some(body) = rest.strip_suffix("```")
        {
            // Drop the info string (```json) on the fence's first line.
            let body = body.split_once('\n').map_or("", |(_, b)| b);
            return (body.trim(), true);
        }
        (trimmed, false)
    }

    fn check(&self, output: &str) -> Verdict {
        match self.kind {
            FormatKind::Json | FormatKind::JsonSchema => {
                let (text, fenced) = self.json_text(output);
                let value: Value = match serde_json::from_str(text) {
                    Ok(v) => v,
                    Err(e) => {
                        return Verdict::score(
                            0.0,
                            json!({"valid_json": false, "error": e.to_string(), "code_fence": fenced}),
                        );
                    }
                };
                let Some(validator) = &self.schema else {
                    return Verdict::score(1.0, json!({"valid_json": true, "code_fence": fenced}));
                };
                let errors: Vec<Value> = validator
                    .iter_errors(&value)
                    .take(10)
                    .map(|e| json!({"path": e.instance_path().to_string(), "message": e.to_string()}))
                    .collect();
                Verdict::score(
                    if errors.is_empty() { 1.0 } else { 0.0 },
                    json!({"valid_json": true, "valid": errors.is_empty(), "errors": errors, "code_fence": fenced}),
                )
            }
            FormatKind::Regex => {
                let found = self.regex.as_ref().and_then(|r| r.find(output));
                Verdict::score(
                    if found.is_some() { 1.0 } else { 0.0 },
                    json!({
                        "matched": found.is_some(),
                        "match": found.map(|m| m.as_str().chars().take(200).collect::<String>()),
                    }),
                )
            }
            FormatKind::Markdown => self.markdown.check(output),
        }
    }
}

impl Markdown {
    fn check(&self, output: &str) -> Verdict {
        use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
        let (mut headings, mut items, mut code, mut tables) = (0u32, 0u32, 0u32, 0u32);
        let mut titles: Vec<String> = Vec::new();
        let mut in_heading: Option<String> = None;
        for event in Parser::new_ext(output, Options::ENABLE_TABLES) {
            match event {
                Event::Start(Tag::Heading { .. }) => {
                    headings += 1;
                    in_heading = Some(String::new());
                }
                Event::End(TagEnd::Heading(_)) => {
                    if let Some(t) = in_heading.take() {
                        titles.push(t.trim().to_owned());
                    }
                }
                Event::Text(t) | Event::Code(t) => {
                    if let Some(h) = in_heading.as_mut() {
                        h.push_str(&t);
                    }
                }
                Event::Start(Tag::Item) => items += 1,
                Event::Start(Tag::CodeBlock(_)) => code += 1,
                Event::Start(Tag::Table(_)) => tables += 1,
                _ => {}
            }
        }
        let mut met = 0;
        let mut total = 0;
        let mut unmet = Vec::new();
        for (what, want, have) in [
            ("headings", self.min_headings, headings),
            ("list_items", self.min_list_items, items),
            ("code_blocks", self.min_code_blocks, code),
            ("tables", self.min_tables, tables),
        ] {
            if let Some(want) = want {
                total += 1;
                if have >= want {
                    met += 1;
                } else {
                    unmet.push(format!("{what}: {have} of at least {want}"));
                }
            }
        }
        let mut missing = Vec::new();
        for required in &self.required_headings {
            total += 1;
            if titles
                .iter()
                .any(|t| t.eq_ignore_ascii_case(required.trim()))
            {
                met += 1;
            } else {
                missing.push(required.clone());
            }
        }
        let value = if total == 0 {
            1.0
        } else {
            met as f64 / total as f64
        };
        Verdict::score(
            value,
            json!({
                "headings": headings, "list_items": items, "code_blocks": code, "tables": tables,
                "requirements": total, "met": met, "unmet": unmet, "missing_headings": missing,
            }),
        )
    }
}

#[async_trait::async_trait]
impl Scorer for Format {
    async fn score(&self, _env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        scored(self.check(s.output))
    }
}

pub(super) struct Keywords {
    required: Vec<Term>,
    forbidden: Vec<Term>,
    mode: KeywordMode,
}

struct Term {
    text: String,
    matcher: Matcher,
}

enum Matcher {
    Substring { case_sensitive: bool },
    Word(regex::Regex),
}

impl Term {
    fn new(text: &str, case_sensitive: bool, whole_words: bool) -> Result<Term, String> {
        let matcher = if whole_words {
            // A word boundary only at an edge that is a word character: "C++" is a whole
            // word in "C++ is", though no boundary follows its "+".
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            let edge = |at: bool| if at { r"\b" } else { "" };
            let pattern = format!(
                "{}{}{}{}",
                if case_sensitive { "" } else { "(?i)" },
                edge(word(text.chars().next())),
                regex::escape(text),
                edge(word(text.chars().last())),
            );
            Matcher::Word(compile_regex(&pattern, false)?)
        } else {
            Matcher::Substring { case_sensitive }
        };
        Ok(Term {
            text: text.to_owned(),
            matcher,
        })
    }

    fn found(&self, output: &str, lowered: &str) -> bool {
        match &self.matcher {
            Matcher::Substring {
                case_sensitive: true,
            } => output.contains(&self.text),
            Matcher::Substring {
                case_sensitive: false,
            } => lowered.contains(&self.text.to_lowercase()),
            Matcher::Word(re) => re.is_match(output),
        }
    }
}

impl Keywords {
    pub fn new(spec: &ScorerSpec) -> Result<Keywords, String> {
        let ScorerSpec::Keywords {
            required,
            forbidden,
            case_sensitive,
            whole_words,
            mode,
        } = spec
        else {
            return Err("not a keywords scorer".into());
        };
        let terms = |list: &[String]| {
            list.iter()
                .map(|t| Term::new(t, *case_sensitive, *whole_words))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Keywords {
            required: terms(required)?,
            forbidden: terms(forbidden)?,
            mode: *mode,
        })
    }

    fn check(&self, output: &str) -> Verdict {
        let lowered = output.to_lowercase();
        let (found, missing): (Vec<&Term>, Vec<&Term>) = self
            .required
            .iter()
            .partition(|t| t.found(output, &lowered));
        let forbidden: Vec<&Term> = self
            .forbidden
            .iter()
            .filter(|t| t.found(output, &lowered))
            .collect();
        let required_score = if self.required.is_empty() {
            1.0
        } else {
            match self.mode {
                KeywordMode::All => f64::from(missing.is_empty()),
                KeywordMode::Any => f64::from(!found.is_empty()),
                KeywordMode::Fraction => found.len() as f64 / self.required.len() as f64,
            }
        };
        let value = match self.mode {
            _ if forbidden.is_empty() => required_score,
            KeywordMode::Fraction => {
                required_score * (1.0 - forbidden.len() as f64 / self.forbidden.len() as f64)
            }
            KeywordMode::All | KeywordMode::Any => 0.0,
        };
        let names = |terms: &[&Term]| terms.iter().map(|t| t.text.clone()).collect::<Vec<_>>();
        Verdict::score(
            value,
            json!({
                "mode": self.mode,
                "found": names(&found),
                "missing": names(&missing),
                "forbidden_found": names(&forbidden),
            }),
        )
    }
}

#[async_trait::async_trait]
impl Scorer for Keywords {
    async fn score(&self, _env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        scored(self.check(s.output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> ScorerSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn length_is_one_within_bounds_and_falls_off_outside() {
        let l = Length {
            unit: LengthUnit::Characters,
            min: Some(10),
            max: Some(100),
            falloff: 0.5,
        };
        assert_eq!(l.value(10).0, 1.0);
        assert_eq!(l.value(100).0, 1.0);
        assert_eq!(l.value(125).0, 0.5, "25 over, width 50");
        assert_eq!(l.value(150).0, 0.0);
        assert_eq!(l.value(500).0, 0.0);
        assert_eq!(l.value(5).0, 0.0, "5 under, width 5");
        assert!((l.value(8).0 - 0.6).abs() < 1e-9);
        let hard = Length { falloff: 0.0, ..l };
        assert_eq!(hard.value(101).0, 0.0);
        let only_max = Length {
            unit: LengthUnit::Words,
            min: None,
            max: Some(0),
            falloff: 1.0,
        };
        assert_eq!(only_max.value(0).0, 1.0);
        assert_eq!(only_max.value(1).0, 0.0);
    }

    #[test]
    fn lexical_metrics() {
        let t = |s: &str| tokens(s);
        assert_eq!(token_f1(&t("a b c"), &t("A, b; C")).0, 1.0);
        let (f, p, r) = token_f1(&t("a b x"), &t("a b c d"));
        assert!((p - 2.0 / 3.0).abs() < 1e-9 && (r - 0.5).abs() < 1e-9);
        assert!((f - 4.0 / 7.0).abs() < 1e-9);
        assert_eq!(token_f1(&t(""), &t("a")).0, 0.0);
        assert_eq!(token_f1(&t(""), &t("")).0, 1.0);
        // Order matters for ROUGE-L, not for token F1.
        assert_eq!(token_f1(&t("c b a"), &t("a b c")).0, 1.0);
        let (f, _, _) = rouge_l(&t("c b a"), &t("a b c"));
        assert!((f - 1.0 / 3.0).abs() < 1e-9, "{f}");
        assert_eq!(rouge_l(&t("a x b y c"), &t("a b c")).2, 1.0, "recall");
    }

    #[test]
    fn json_and_schema_checks() {
        let json = Format::new(&spec(json!({"kind": "format", "format": "json"}))).unwrap();
        assert_eq!(json.check(r#"{"a": 1}"#).value, Some(1.0));
        assert_eq!(json.check("```json\n{\"a\": 1}\n```").value, Some(1.0));
        let bad = json.check("{a: 1}");
        assert_eq!(bad.value, Some(0.0));
        assert!(bad.metadata["error"].as_str().unwrap().contains("line 1"));
        let strict = Format::new(&spec(
            json!({"kind": "format", "format": "json", "allow_code_fence": false}),
        ))
        .unwrap();
        assert_eq!(strict.check("```\n{}\n```").value, Some(0.0));

        let schema = Format::new(&spec(json!({"kind": "format", "format": "json_schema",
            "schema": {"type": "object", "required": ["name"], "properties": {"age": {"type": "integer"}}}})))
        .unwrap();
        assert_eq!(
            schema.check(r#"{"name": "Ada", "age": 36}"#).value,
            Some(1.0)
        );
        let v = schema.check(r#"{"age": "old"}"#);
        assert_eq!(v.value, Some(0.0));
        assert_eq!(v.metadata["errors"].as_array().unwrap().len(), 2, "{v:?}");
        assert!(
            Format::new(&spec(json!({"kind": "format", "format": "json_schema",
            "schema": {"type": "no-such-type"}})))
            .is_err()
        );
    }

    #[test]
    fn regex_and_markdown_checks() {
        let find = Format::new(&spec(
            json!({"kind": "format", "format": "regex", "pattern": r"\d{4}"}),
        ))
        .unwrap();
        assert_eq!(find.check("in 1843, then").value, Some(1.0));
        assert_eq!(find.check("no year").value, Some(0.0));
        let full = Format::new(&spec(
            json!({"kind": "format", "format": "regex", "pattern": r"\d{4}", "full_match": true}),
        ))
        .unwrap();
        assert_eq!(full.check("1843").value, Some(1.0));
        assert_eq!(full.check("in 1843").value, Some(0.0));
        assert!(
            Format::new(&spec(
                json!({"kind": "format", "format": "regex", "pattern": "(unclosed"})
            ))
            .is_err()
        );

        let md = Format::new(&spec(json!({"kind": "format", "format": "markdown",
            "min_headings": 2, "min_list_items": 2, "required_headings": ["Summary", "Risks"]})))
        .unwrap();
        let v = md.check("# Summary\n\n- one\n- two\n\n## Details\n\ntext\n");
        assert_eq!(v.value, Some(0.75), "{v:?}");
        assert_eq!(v.metadata["missing_headings"], json!(["Risks"]));
    }

    #[test]
    fn keyword_modes() {
        let k = |mode: &str, whole: bool| {
            Keywords::new(&spec(
                json!({"kind": "keywords", "required": ["London", "Ada"],
                "forbidden": ["perhaps", "maybe"], "mode": mode, "whole_words": whole}),
            ))
            .unwrap()
        };
        assert_eq!(k("fraction", false).check("ada in london").value, Some(1.0));
        assert_eq!(k("fraction", false).check("Ada only").value, Some(0.5));
        assert_eq!(
            k("fraction", false).check("Ada, perhaps").value,
            Some(0.25),
            "one of two forbidden terms halves it"
        );
        assert_eq!(k("all", false).check("Ada only").value, Some(0.0));
        assert_eq!(k("any", false).check("Ada only").value, Some(1.0));
        assert_eq!(k("any", false).check("Ada, maybe").value, Some(0.0));
        assert_eq!(
            k("fraction", true).check("Adams in Londonderry").value,
            Some(0.0)
        );
        assert_eq!(
            k("fraction", false).check("Adams in Londonderry").value,
            Some(1.0)
        );
        let plus = Keywords::new(&spec(
            json!({"kind": "keywords", "required": ["C++"], "whole_words": true}),
        ))
        .unwrap();
        assert_eq!(plus.check("C++ is fast").value, Some(1.0));
        assert_eq!(plus.check("I like C++.").value, Some(1.0));
        assert_eq!(plus.check("ObjC++ is odd").value, Some(0.0));
        let cs = Keywords::new(&spec(
            json!({"kind": "keywords", "required": ["Ada"], "case_sensitive": true}),
        ))
        .unwrap();
        assert_eq!(cs.check("ada").value, Some(0.0));
        let v = cs.check("Ada");
        assert_eq!(v.metadata["found"], json!(["Ada"]));
    }
}
