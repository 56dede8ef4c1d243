//! OpenAI-compatible chat completions (`/chat/completions`, `/models`, `/embeddings`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    ChatRequest, ChatResponse, EndpointAccess, Provider, ProviderError, clamp_tokens,
    estimate_tokens, model_ids, send_json,
};

pub struct OpenAi {
    access: EndpointAccess,
    http: reqwest::Client,
}

impl OpenAi {
    pub fn new(access: EndpointAccess, http: reqwest::Client) -> Self {
        OpenAi { access, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.access.base_url.trim_end_matches('/'))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ProviderError> {
        let request = match &self.access.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        send_json(&self.access, request).await
    }
}

/// The request body: the normalized parameters plus any extra ones, passed through.
pub fn chat_body(request: &ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), json!(request.messages));
    let p = &request.params;
    for (key, value) in &p.extra {
        body.insert(key.clone(), value.clone());
    }
    if let Some(v) = p.temperature {
        body.insert("temperature".into(), json!(v));
    }
    if let Some(v) = p.top_p {
        body.insert("top_p".into(), json!(v));
    }
    if let Some(v) = p.max_tokens {
        body.insert("max_tokens".into(), json!(v));
    }
    if let Some(v) = &p.stop {
        body.insert("stop".into(), json!(v));
    }
    if let Some(v) = p.seed {
        body.insert("seed".into(), json!(v));
    }
    Value::Object(body)
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
}

#[async_trait::async_trait]
impl Provider for OpenAi {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let raw = self
            .send(
                self.http
                    .post(self.url("chat/completions"))
                    .json(&chat_body(request)),
            )
            .await?;
        let completion: Completion = serde_json::from_value(raw).map_err(|e| {
            ProviderError::fatal(
                Some(200),
                self.access
                    .scrub_text(&format!("unexpected completion format ({e})")),
            )
        })?;
        let choice = completion.choices.into_iter().next().ok_or_else(|| {
            ProviderError::retryable(Some(200), None, "the completion has no choices")
        })?;
        let content = choice.message.content.unwrap_or_default();
        let (tokens_in, tokens_out, usage_estimated) = match completion.usage {
            Some(Usage {
                prompt_tokens: Some(i),
                completion_tokens: Some(o),
            }) => (clamp_tokens(i), clamp_tokens(o), false),
            _ => {
                let prompt: String = request
                    .messages
                    .iter()
                    .map(|m| m.content.as_str())
                    .collect();
                (estimate_tokens(&prompt), estimate_tokens(&content), true)
            }
        };
        Ok(ChatResponse {
            content,
            tokens_in,
            tokens_out,
            usage_estimated,
            finish_reason: choice.finish_reason,
        })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        model_ids(&self.send(self.http.get(self.url("models"))).await?)
    }

    async fn embed(&self, model: &str, inputs: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let raw = self
            .send(
                self.http
                    .post(self.url("embeddings"))
                    .json(&json!({"model": model, "input": inputs})),
            )
            .await?;
        let mut rows: Vec<(usize, Vec<f32>)> = raw["data"]
            .as_array()
            .ok_or_else(|| {
                ProviderError::retryable(Some(200), None, "the embeddings have no `data` array")
            })?
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let index = row["index"].as_u64().map_or(i, |n| n as usize);
                let vector = row["embedding"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x.as_f64())
                            .map(|x| x as f32)
                            .collect()
                    })
                    .unwrap_or_default();
                (index, vector)
            })
            .collect();
        rows.sort_by_key(|(i, _)| *i);
        if rows.len() != inputs.len() {
            return Err(ProviderError::retryable(
                Some(200),
                None,
                "embedding count differs from input count",
            ));
        }
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }
}
