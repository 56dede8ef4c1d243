//! Embedding similarity: the cosine similarity of the output's and the reference's embeddings.
//! Embeddings are cached like any call (keyed by endpoint, model and text); a reference's
//! embedding is computed once per scoring pass however many runs compare with it.

use serde_json::json;
use uuid::Uuid;

use super::judge::{Target, cached_call, target};
use super::text::no_reference;
use super::{Env, Scorer, Subject, Usage, Verdict};
use crate::server::cache;
use crate::server::core::Core;
use crate::server::providers::estimate_tokens;
use crate::server::providers::retry::RetryPolicy;
use crate::server::store::cache::CachedResponse;
use crate::types::EndpointKind;

/// The simulated endpoint's embedding model.
pub const SIMULATED_MODEL: &str = "sim-embed";

pub(super) struct Embedding {
    target: Target,
    model: String,
    policy: RetryPolicy,
}

/// The model an embedding scorer uses on an endpoint of `kind`, or why there is none.
pub fn model_for(kind: EndpointKind, model: Option<&str>) -> Result<String, String> {
    match (kind, model) {
        (EndpointKind::Anthropic, _) => Err(
            "Anthropic endpoints have no embeddings API; use an OpenAI-compatible or simulated endpoint"
                .into(),
        ),
        (_, Some(m)) if !m.trim().is_empty() => Ok(m.to_owned()),
        (EndpointKind::Simulated, _) => Ok(SIMULATED_MODEL.to_owned()),
        (EndpointKind::Openai, _) => {
            Err("name the embedding model (e.g. text-embedding-3-small)".into())
        }
    }
}

impl Embedding {
    pub async fn new(
        core: &Core,
        endpoint_id: Option<Uuid>,
        model: Option<&str>,
    ) -> Result<Embedding, String> {
        let id = endpoint_id.ok_or("embedding_similarity needs an endpoint_id")?;
        let target = target(core, id).await?;
        let model = model_for(target.row.kind, model)?;
        Ok(Embedding {
            target,
            model,
            policy: RetryPolicy::default(),
        })
    }

    fn key(&self, text: &str) -> String {
        cache::sha256_hex(&cache::canonical_json(&json!({
            "v": 1,
            "op": "embedding",
            "provider": self.target.row.kind.as_str(),
            "base_url": self.target.url(),
            "model": self.model,
            "text": text,
        })))
    }

    /// The embedding of `text`, and what getting it cost.
    async fn embed(
        &self,
        env: &Env<'_>,
        text: &str,
        memoize: bool,
    ) -> (Result<Vec<f32>, String>, Usage) {
        let key = self.key(text);
        let call = cached_call(env, &key, memoize, || async {
            let ready = &self.target.ready;
            let inputs = [text.to_owned()];
            let tokens = estimate_tokens(text);
            let started = std::time::Instant::now();
            let (result, _) = self
                .policy
                .run(|| {
                    ready.pace.attempt(
                        tokens as f64,
                        |_: &Vec<Vec<f32>>| tokens,
                        || ready.provider.embed(&self.model, &inputs),
                    )
                })
                .await;
            let vector = result
                .map_err(|e| format!("the embeddings call failed: {}", e.message))?
                .into_iter()
                .next()
                .ok_or("the endpoint returned no embedding")?;
            Ok(CachedResponse {
                response: serde_json::to_string(&vector).unwrap_or_default(),
                model: self.model.clone(),
                tokens_in: estimate_tokens(text),
                tokens_out: 0,
                latency_ms: started.elapsed().as_millis() as i64,
                finish_reason: None,
                usage_estimated: true,
            })
        })
        .await;
        let usage = call.usage(env, &key);
        let vector = call.answer.and_then(|a| {
            serde_json::from_str::<Vec<f32>>(&a.response)
                .map_err(|e| format!("a cached embedding is unreadable ({e})"))
        });
        (vector, usage)
    }
}

/// Cosine similarity; `None` when the vectors differ in length or one is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    (na > 0.0 && nb > 0.0).then(|| dot / (na.sqrt() * nb.sqrt()))
}

#[async_trait::async_trait]
impl Scorer for Embedding {
    async fn score(&self, env: &Env<'_>, s: &Subject<'_>) -> Option<(Verdict, Usage)> {
        let Some(reference) = s.reference else {
            return Some((no_reference(s), Usage::default()));
        };
        // The reference is shared by every run of its item: memoised for the pass.
        let ((output, mut usage), (reference, spent)) = futures::join!(
            self.embed(env, s.output, false),
            self.embed(env, reference, true)
        );
        usage.add(spent);
        let verdict = match (output, reference) {
            (Ok(a), Ok(b)) => match cosine(&a, &b) {
                // Opposite directions are as dissimilar as unrelated text: 0.
                Some(c) => Verdict::score(
                    c.max(0.0),
                    json!({"cosine": c, "model": self.model, "dimensions": a.len()}),
                ),
                None if a.len() != b.len() => Verdict::fail(
                    format!("embeddings differ in length ({} and {})", a.len(), b.len()),
                    json!({"model": self.model}),
                ),
                None => Verdict::score(
                    0.0,
                    json!({"cosine": null, "model": self.model, "note": "an empty embedding (no words) matches nothing"}),
                ),
            },
            (Err(e), _) | (_, Err(e)) => Verdict::fail(e, json!({"model": self.model})),
        };
        Some((verdict, usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_similarity() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]).unwrap() - 1.0).abs() < 1e-9);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).unwrap().abs() < 1e-9);
        assert!((cosine(&[1.0, 0.0], &[-1.0, 0.0]).unwrap() + 1.0).abs() < 1e-9);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), None);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), None);
    }

    #[test]
    fn models_per_endpoint_kind() {
        assert_eq!(
            model_for(EndpointKind::Simulated, None).unwrap(),
            "sim-embed"
        );
        assert!(model_for(EndpointKind::Openai, None).is_err());
        assert_eq!(
            model_for(EndpointKind::Openai, Some("text-embedding-3-small")).unwrap(),
            "text-embedding-3-small"
        );
        assert!(model_for(EndpointKind::Anthropic, Some("x")).is_err());
    }
}
