//! The built-in simulated provider: no network, deterministic, free. Used by the demo project,
//! the tests and the benchmarks.
//!
//! Its task is extraction: the ideal answer to a request is the list of capitalised words and
//! numbers in the last paragraph of the user message, in order, without repeats. How much of
//! that answer survives depends on a hidden *quality landscape* over the model, the parameters
//! and the prompt wording, so a sweep over it has a true winner:
//! - model: names containing `large` beat `medium` beat `small`;
//! - temperature: best near 0.25, worse the further away; a low `top_p` costs a little;
//! - prompt: asking for `only` the answer and a `comma`-separated list helps; asking the model
//!   to `think` aloud hurts.
//!
//! Lost words are dropped or replaced by filler, and filler is added as quality falls.
//! Options (the endpoint's `options`) add latency and inject failures.
//!
//! It also plays the pairwise judge: a request laid out as the pairwise judge's default prompt
//! (`Answer A:` … `Answer B:` … `Winner:`) is answered `Winner: A|B|tie` with a sentence why,
//! by comparing each answer's terms with the reference answer (or the input's terms), so
//! comparisons on the simulated endpoint are deterministic and meaningful.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ChatRequest, ChatResponse, Provider, ProviderError, Role, estimate_tokens};

pub const MODELS: [&str; 4] = ["sim-large", "sim-medium", "sim-small", "sim-embed"];
pub const EMBEDDING_DIMENSIONS: usize = 64;
const FILLER: [&str; 8] = [
    "perhaps", "notably", "various", "the", "somewhat", "related", "items", "also",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// 429 with a Retry-After.
    RateLimit,
    /// 500.
    ServerError,
    /// No answer until the call times out.
    Timeout,
    /// 200 with a body that is not valid.
    Malformed,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatedOptions {
    /// Mean added latency per call.
    pub latency_ms: u64,
    /// Uniform jitter added on top (0 to this).
    pub jitter_ms: u64,
    /// Share of calls that fail (0 to 1).
    pub failure_rate: f64,
    /// Which failures to inject (default: all four kinds).
    pub failures: Vec<Failure>,
    /// The Retry-After a simulated 429 carries.
    pub retry_after_ms: u64,
    /// How long a simulated timeout hangs (capped by the endpoint's timeout).
    pub hang_ms: u64,
    /// Changes which calls fail (not the outputs).
    pub seed: u64,
}

impl Default for SimulatedOptions {
    fn default() -> Self {
        SimulatedOptions {
            latency_ms: 0,
            jitter_ms: 0,
            failure_rate: 0.0,
            failures: vec![
                Failure::RateLimit,
                Failure::ServerError,
                Failure::Timeout,
                Failure::Malformed,
            ],
            retry_after_ms: 200,
            hang_ms: 2_000,
            seed: 0,
        }
    }
}

impl SimulatedOptions {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err("failure_rate must be between 0 and 1".into());
        }
        if self.failure_rate > 0.0 && self.failures.is_empty() {
            return Err("failures must name at least one kind when failure_rate > 0".into());
        }
        if self.latency_ms > 600_000 || self.jitter_ms > 600_000 || self.hang_ms > 600_000 {
            return Err("latency_ms, jitter_ms and hang_ms must be at most 600000".into());
        }
        Ok(())
    }
}

pub struct Simulated {
    options: SimulatedOptions,
    timeout: Duration,
    calls: AtomicU64,
}

impl Simulated {
    pub fn new(options: SimulatedOptions, timeout: Duration) -> Self {
        Simulated {
            options,
            timeout,
            calls: AtomicU64::new(0),
        }
    }

    pub fn from_options(options: &serde_json::Value, timeout: Duration) -> Result<Self, String> {
        let options: SimulatedOptions = if options.is_null() {
            SimulatedOptions::default()
        } else {
            serde_json::from_value(options.clone()).map_err(|e| e.to_string())?
        };
        options.validate()?;
        Ok(Simulated::new(options, timeout))
    }

    /// A per-call draw in [0, 1), reproducible for a given call order and seed.
    fn draw(&self) -> f64 {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        unit(
            &hash(&[&self.options.seed.to_le_bytes(), &n.to_le_bytes()]),
            0,
        )
    }

    async fn delay_and_fail(&self) -> Result<(), ProviderError> {
        let o = &self.options;
        if o.latency_ms > 0 || o.jitter_ms > 0 {
            let jitter = (self.draw() * o.jitter_ms as f64) as u64;
            tokio::time::sleep(Duration::from_millis(o.latency_ms + jitter)).await;
        }
        if o.failure_rate > 0.0 && self.draw() < o.failure_rate {
            let kind = o.failures
                [((self.draw() * o.failures.len() as f64) as usize).min(o.failures.len() - 1)];
            return Err(match kind {
                Failure::RateLimit => ProviderError::retryable(
                    Some(429),
                    Some(Duration::from_millis(o.retry_after_ms)),
                    "HTTP 429: rate limited (simulated)",
                ),
                Failure::ServerError => {
                    ProviderError::retryable(Some(500), None, "HTTP 500: server error (simulated)")
                }
                Failure::Timeout => {
                    tokio::time::sleep(Duration::from_millis(o.hang_ms).min(self.timeout)).await;
                    ProviderError::retryable(None, None, "timed out (simulated)")
                }
                Failure::Malformed => {
                    ProviderError::retryable(Some(200), None, "malformed response body (simulated)")
                }
            });
        }
        Ok(())
    }
}

/// The answer the simulated model would give with perfect quality.
pub fn ideal_answer(user_message: &str) -> Vec<String> {
    let payload = user_message
        .trim()
        .rsplit("\n\n")
        .next()
        .unwrap_or_default();
    let mut seen = Vec::new();
    for raw in payload.split(|c: char| c.is_whitespace() || c == ',' || c == ';') {
        let word: String = raw.trim_matches(|c: char| !c.is_alphanumeric()).to_owned();
        let first = word.chars().next();
        if first.is_some_and(|c| c.is_uppercase() || c.is_ascii_digit()) && !seen.contains(&word) {
            seen.push(word);
        }
    }
    seen
}

/// The hidden quality (0.05–0.98) of a request.
pub fn quality(request: &ChatRequest) -> f64 {
    let model = request.model.to_ascii_lowercase();
    let mut q = if model.contains("large") {
        0.92
    } else if model.contains("medium") {
        0.78
    } else if model.contains("small") {
        0.58
    } else {
        0.68
    };
    let t = request.params.temperature.unwrap_or(0.7);
    q -= 0.45 * (t - 0.25).abs();
    q -= 0.15 * (1.0 - request.params.top_p.unwrap_or(1.0)).max(0.0);
    let prompt: String = request
        .messages
        .iter()
        .map(|m| m.content.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    if prompt.contains("only") {
        q += 0.05;
    }
    if prompt.contains("comma") {
        q += 0.03;
    }
    if prompt.contains("think") {
        q -= 0.08;
    }
    q.clamp(0.05, 0.98)
}

/// The prompt proposer's answer to a guided sweep's proposal request (laid out as
/// `sweeps::PROPOSER_HEADER` lays it out), else `None`. It rewrites the best prompt the way
/// the landscape rewards: drops sentences asking to think aloud, asks for only the answer,
/// then for a comma-separated list — one more edit per variant. (`sim-small` does not
/// understand the request and answers it as an extraction task: garbage to the proposer.)
pub fn proposer_reply(user: &str) -> Option<String> {
    if !user.starts_with(crate::server::sweeps::PROPOSER_HEADER) {
        return None;
    }
    let best = section(user, "### Best so far\n", "### Worst so far")?;
    let system = section(best, "SYSTEM:\n", "\nUSER TEMPLATE:").unwrap_or_default();
    let count: usize = user
        .split("Write ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let kept: Vec<&str> = system
        .split_inclusive(['.', '!', '?'])
        .filter(|s| !s.to_ascii_lowercase().contains("think"))
        .collect();
    let mut text = kept.concat().trim().to_owned();
    let mut variants = Vec::new();
    let edits = [
        ("only", "Reply with only the answer."),
        ("comma", "Give it as a comma-separated list."),
        ("exact", "Be exact."),
        ("order", "Keep the order they appear in."),
        ("repeat", "Do not repeat a term."),
    ];
    let mut applied = Vec::new();
    for (word, sentence) in edits {
        if variants.len() == count {
            break;
        }
        if text.to_ascii_lowercase().contains(word) {
            continue;
        }
        text = format!("{text} {sentence}").trim().to_owned();
        applied.push(sentence);
        variants.push(json!({
            "name": format!("sim-rewrite-{}", variants.len() + 1),
            "system": text,
            "rationale": format!("Dropped thinking aloud; added: {}", applied.join(" ")),
        }));
    }
    Some(json!({ "variants": variants }).to_string())
}

/// The text of `prompt` after `start` up to the next blank line before `end` (or the end).
fn section<'a>(prompt: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = prompt.find(start)? + start.len();
    let rest = &prompt[from..];
    let to = rest.find(end).unwrap_or(rest.len());
    Some(rest[..to].trim())
}

/// Words of a text as the simulated judge compares them.
fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The pairwise judge's verdict on a request laid out as its default prompt, else `None`.
pub fn judge_reply(user: &str) -> Option<String> {
    if !user.contains("Winner: A") {
        return None;
    }
    let a = section(user, "Answer A:\n", "\n\nAnswer B:")?;
    let b = section(user, "Answer B:\n", "\n\nReply with")?;
    let wanted: Vec<String> = match section(user, "Reference answer:\n", "\n\n") {
        Some(r) => terms(r),
        None => ideal_answer(&section(user, "Task input:\n", "\n\n")?.replace("\\n", "\n")),
    };
    let f1 = |answer: &str| -> (f64, usize) {
        let got = terms(answer);
        let hits = wanted.iter().filter(|w| got.contains(w)).count();
        if hits == 0 {
            return (0.0, 0);
        }
        let (p, r) = (
            hits as f64 / got.len() as f64,
            hits as f64 / wanted.len() as f64,
        );
        (2.0 * p * r / (p + r), hits)
    };
    let ((fa, ha), (fb, hb)) = (f1(a), f1(b));
    let winner = if (fa - fb).abs() < 1e-9 {
        "tie"
    } else if fa > fb {
        "A"
    } else {
        "B"
    };
    Some(format!(
        "Winner: {winner}\nAnswer A has {ha} of the {} expected terms (F1 {fa:.2}), answer B {hb} (F1 {fb:.2}).",
        wanted.len()
    ))
}

/// The simulated completion for a request: deterministic in the request.
pub fn complete(request: &ChatRequest) -> ChatResponse {
    let user = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str());
    let proposal = (!request.model.contains("small"))
        .then(|| proposer_reply(user))
        .flatten();
    if let Some(content) = judge_reply(user).or(proposal) {
        let prompt: String = request
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect();
        return ChatResponse {
            tokens_in: estimate_tokens(&prompt) + 3 * request.messages.len() as i64,
            tokens_out: estimate_tokens(&content),
            content,
            usage_estimated: false,
            finish_reason: Some("stop".to_owned()),
        };
    }
    let key = hash(&[
        serde_json::to_string(&(&request.model, &request.messages, &request.params))
            .unwrap_or_default()
            .as_bytes(),
    ]);
    let q = quality(request);
    let mut words = Vec::new();
    for (i, word) in ideal_answer(user).into_iter().enumerate() {
        let r = unit(&key, i as u64 + 1);
        if r < q {
            words.push(word);
        } else if r < q + (1.0 - q) / 2.0 {
            words.push(
                FILLER[(unit(&key, 1000 + i as u64) * FILLER.len() as f64) as usize % FILLER.len()]
                    .to_owned(),
            );
        }
    }
    let extra = ((1.0 - q) * 6.0).round() as u64;
    for j in 0..extra {
        let at = (unit(&key, 2000 + j) * (words.len() + 1) as f64) as usize;
        let filler = FILLER[(unit(&key, 3000 + j) * FILLER.len() as f64) as usize % FILLER.len()];
        words.insert(at.min(words.len()), filler.to_owned());
    }
    let mut content = words.join(", ");
    let mut finish_reason = "stop";
    if let Some(max) = request.params.max_tokens {
        let max_chars = max as usize * 4;
        if content.chars().count() > max_chars {
            content = content.chars().take(max_chars).collect();
            finish_reason = "length";
        }
    }
    if let Some(stops) = &request.params.stop {
        for stop in stops.iter().filter(|s| !s.is_empty()) {
            if let Some(at) = content.find(stop.as_str()) {
                content.truncate(at);
            }
        }
    }
    let prompt: String = request
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    ChatResponse {
        tokens_in: estimate_tokens(&prompt) + 3 * request.messages.len() as i64,
        tokens_out: estimate_tokens(&content),
        content,
        usage_estimated: false,
        finish_reason: Some(finish_reason.to_owned()),
    }
}

/// A deterministic embedding: hashed bag of lowercase words, L2-normalised.
pub fn embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; EMBEDDING_DIMENSIONS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = hash(&[word.to_lowercase().as_bytes()]);
        let index = h[0] as usize % EMBEDDING_DIMENSIONS;
        v[index] += if h[1] & 1 == 0 { 1.0 } else { -1.0 };
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// A uniform number in [0, 1) derived from `key` and `n`.
fn unit(key: &[u8; 32], n: u64) -> f64 {
    let h = hash(&[key, &n.to_le_bytes()]);
    let bits = u64::from_le_bytes(h[..8].try_into().unwrap_or_default());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[async_trait::async_trait]
impl Provider for Simulated {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.delay_and_fail().await?;
        if !MODELS[..3].contains(&request.model.as_str()) {
            return Err(ProviderError::fatal(
                Some(404),
                format!(
                    "HTTP 404: model {:?} not found (simulated models: sim-large, sim-medium, sim-small)",
                    request.model
                ),
            ));
        }
        Ok(complete(request))
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        Ok(MODELS.iter().map(|m| (*m).to_owned()).collect())
    }

    async fn embed(&self, _model: &str, inputs: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        self.delay_and_fail().await?;
        Ok(inputs.iter().map(|t| embedding(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Message;
    use super::*;
    use crate::types::Params;

    fn request(model: &str, temperature: f64, system: &str) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages: vec![
                Message { role: Role::System, content: system.into() },
                Message {
                    role: Role::User,
                    content: "Extract the entities.\n\nAda Lovelace met Charles Babbage in London in 1833 to discuss the Analytical Engine.".into(),
                },
            ],
            params: Params { temperature: Some(temperature), ..Params::default() },
        }
    }

    #[test]
    fn the_ideal_answer_is_the_capitalised_words_and_numbers_of_the_last_paragraph() {
        assert_eq!(
            ideal_answer(
                "Extract.\n\nAda Lovelace met Charles Babbage in London in 1833, then Ada left."
            ),
            ["Ada", "Lovelace", "Charles", "Babbage", "London", "1833"]
        );
    }

    #[test]
    fn outputs_are_deterministic_and_quality_has_a_landscape() {
        let good = request("sim-large", 0.25, "Return only a comma-separated list.");
        assert_eq!(complete(&good), complete(&good));
        assert!(
            quality(&good)
                > quality(&request(
                    "sim-large",
                    0.9,
                    "Return only a comma-separated list."
                ))
        );
        assert!(
            quality(&good)
                > quality(&request(
                    "sim-small",
                    0.25,
                    "Return only a comma-separated list."
                ))
        );
        assert!(quality(&good) > quality(&request("sim-large", 0.25, "Think step by step.")));
        let best = complete(&good).content;
        assert!(best.contains("Lovelace") && best.contains("1833"), "{best}");
    }

    #[test]
    fn it_judges_pairs_laid_out_as_the_default_prompt() {
        let prompt = |a: &str, b: &str| {
            format!(
                "Two answers to the same task follow. Which one is better?\n\nTask input:\n{{\"text\":\"x\"}}\n\n\
                 Reference answer:\nAda, London, 1843\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\n\
                 Reply with \"Winner: A\", \"Winner: B\" or \"Winner: tie\" on the first line, then one sentence why."
            )
        };
        let reply = judge_reply(&prompt("Ada, London, 1843", "Ada, perhaps")).unwrap();
        assert!(reply.starts_with("Winner: A\n"), "{reply}");
        let reply = judge_reply(&prompt("items", "Ada, London")).unwrap();
        assert!(reply.starts_with("Winner: B\n"), "{reply}");
        let reply = judge_reply(&prompt("Ada", "Ada")).unwrap();
        assert!(reply.starts_with("Winner: tie"), "{reply}");
        assert_eq!(judge_reply("Extract the entities.\n\nAda Lovelace"), None);
        // Without a reference, the input's terms are what counts.
        let bare = "Task input:\n{\"text\":\"Ada went to London\"}\n\nAnswer A:\nAda, London\n\nAnswer B:\nwent\n\nReply with \"Winner: A\"";
        assert!(judge_reply(bare).unwrap().starts_with("Winner: A"));
    }

    #[test]
    fn embeddings_are_unit_vectors_and_similar_for_similar_text() {
        let a = embedding("Ada Lovelace London");
        let b = embedding("London, Ada Lovelace");
        let c = embedding("completely different words here");
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        assert!(dot(&a, &b) > 0.99);
        assert!(dot(&a, &c) < 0.5);
    }

    #[tokio::test(start_paused = true)]
    async fn injected_failures_follow_the_rate() {
        let options = SimulatedOptions {
            failure_rate: 0.3,
            ..SimulatedOptions::default()
        };
        let sim = Simulated::new(options, Duration::from_millis(50));
        let mut failed = 0;
        for _ in 0..400 {
            if let Err(e) = sim.chat(&request("sim-small", 0.5, "")).await {
                assert!(e.retryable, "{e:?}");
                failed += 1;
            }
        }
        assert!((80..160).contains(&failed), "{failed} of 400 failed");
    }

    #[test]
    fn it_proposes_prompts_the_landscape_rewards() {
        let request = format!(
            "{}\nBelow are prompt variants.\n\n### Best so far\n[variant: a] score 0.7 over 2 item(s)\nSYSTEM:\nList the names. Think it through.\nUSER TEMPLATE:\n{{{{ input.text }}}}\nSAMPLE OUTPUT:\nAda\nSCORERS:\n(none)\n\n### Worst so far\n\nWrite 2 new variant(s) of this prompt.",
            crate::server::sweeps::PROPOSER_HEADER
        );
        let reply: serde_json::Value =
            serde_json::from_str(&proposer_reply(&request).unwrap()).unwrap();
        let v = reply["variants"].as_array().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0]["system"],
            "List the names. Reply with only the answer."
        );
        assert!(v[1]["system"].as_str().unwrap().contains("comma-separated"));
        assert!(proposer_reply("Extract the entities.").is_none());
        let asked = ChatRequest {
            model: "sim-small".into(),
            messages: vec![super::super::Message {
                role: Role::User,
                content: request.clone(),
            }],
            params: Params::default(),
        };
        assert!(
            !complete(&asked).content.contains("variants"),
            "sim-small cannot propose"
        );
    }
}
