//! A local mock LLM server (`promptlooper mock-llm`): OpenAI-compatible chat completions,
//! models and embeddings, and Anthropic Messages, answering with the simulated model. For
//! tests and benchmarks: latency, random failures, a script of exact failures to return next,
//! an optional required API key, a provider-style rate limit (429 past N requests in any
//! window), and counters at `/mock/stats` (requests, the most at once, the most in a window,
//! 429s for the rate limit).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::providers::simulated;
use engine::providers::{ChatRequest, Message, Role};
use engine::types::Params;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone, Debug, Default)]
pub struct MockConfig {
    pub latency_ms: u64,
    /// Share of requests that fail at random (429, 500, malformed, hang).
    pub fail_rate: f64,
    /// When set, requests must carry this key (Bearer or x-api-key).
    pub api_key: Option<String>,
    /// Leave `usage` out of chat completions (clients must estimate).
    pub omit_usage: bool,
    /// Answer 429 (with `Retry-After`) to requests past this many in any `rate_window_ms`.
    pub rate_limit: Option<u64>,
    /// The rate limit's window (60,000 when 0: a per-minute limit).
    pub rate_window_ms: u64,
}

/// One scripted reply, returned instead of a normal answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scripted {
    /// An HTTP error with optional `Retry-After` (seconds) / `retry-after-ms` headers and body.
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<String>,
        #[serde(default)]
        retry_after_ms: Option<u64>,
        #[serde(default)]
        body: Option<String>,
    },
    /// No answer for this long (the client should time out first).
    Hang { ms: u64 },
    /// 200 with a body that is not JSON.
    Malformed,
}

impl Scripted {
    /// A plain HTTP error with no headers.
    pub fn status(status: u16) -> Scripted {
        Scripted::Status {
            status,
            retry_after: None,
            retry_after_ms: None,
            body: None,
        }
    }
}

#[derive(Clone, Default)]
pub struct MockState {
    config: Arc<MockConfig>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    in_flight: AtomicU64,
    in_flight_max: AtomicU64,
    /// Requests let through the rate limit in the last window, and the most there ever were.
    window: Mutex<VecDeque<std::time::Instant>>,
    window_max: AtomicU64,
    /// Every request that reached the rate limit in the last window, let through or not.
    seen: Mutex<VecDeque<std::time::Instant>>,
    seen_max: AtomicU64,
    throttled: AtomicU64,
    requests: AtomicU64,
    chat: AtomicU64,
    messages: AtomicU64,
    embeddings: AtomicU64,
    models: AtomicU64,
    draws: AtomicU64,
}

impl MockState {
    pub fn new(config: MockConfig) -> Self {
        MockState {
            config: Arc::new(config),
            ..MockState::default()
        }
    }

    /// Queues replies for the next requests.
    pub fn script(&self, replies: impl IntoIterator<Item = Scripted>) {
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(replies);
    }

    /// Chat completions and messages answered or refused so far.
    pub fn chat_requests(&self) -> u64 {
        self.counters.chat.load(Ordering::Relaxed) + self.counters.messages.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }
}

pub fn router(state: MockState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/mock/stats", get(stats))
        .route("/mock/script", post(add_script))
        .with_state(state)
}

/// Serves the mock until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: MockState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"error": {"message": message, "type": "mock_error"}})),
    )
        .into_response()
}

/// Auth, the script, random failures and latency: `Some(response)` ends the request early.
async fn gate(state: &MockState, headers: &HeaderMap) -> Option<Response> {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(expected) = &state.config.api_key {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let x_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        if bearer != Some(expected.as_str()) && x_key != Some(expected.as_str()) {
            return Some(error(401, "invalid api key"));
        }
    }
    let scripted = state
        .script
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop_front();
    let scripted = scripted.or_else(|| {
        let cfg = &state.config;
        if cfg.fail_rate <= 0.0 {
            return None;
        }
        let n = state.counters.draws.fetch_add(1, Ordering::Relaxed);
        let r = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
        (r < cfg.fail_rate).then(|| match n % 4 {
            0 => Scripted::Status {
                status: 429,
                retry_after: Some("0.05".into()),
                retry_after_ms: None,
                body: None,
            },
            1 => Scripted::Status {
                status: 500,
                retry_after: None,
                retry_after_ms: None,
                body: None,
            },
            2 => Scripted::Malformed,
            _ => Scripted::Hang { ms: 30_000 },
        })
    });
    if let Some(reply) = scripted {
        return Some(match reply {
            Scripted::Status {
                status,
                retry_after,
                retry_after_ms,
                body,
            } => {
                let mut response = match body {
                    Some(body) => (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        body,
                    )
                        .into_response(),
                    None => error(status, "scripted failure"),
                };
                if let Some(v) = retry_after.and_then(|v| v.parse().ok()) {
                    response.headers_mut().insert("retry-after", v);
                }
                if let Some(ms) = retry_after_ms {
                    response.headers_mut().insert("retry-after-ms", ms.into());
                }
                response
            }
            Scripted::Hang { ms } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                error(504, "hung")
            }
            Scripted::Malformed => {
                (StatusCode::OK, "{\"choices\": [ this is not json").into_response()
            }
        });
    }
    if let Some(limit) = state.config.rate_limit {
        let window = Duration::from_millis(match state.config.rate_window_ms {
            0 => 60_000,
            ms => ms,
        });
        let now = std::time::Instant::now();
        {
            let mut seen = state
                .counters
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            while seen
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                seen.pop_front();
            }
            seen.push_back(now);
            state
                .counters
                .seen_max
                .fetch_max(seen.len() as u64, Ordering::Relaxed);
        }
        let mut sent = state
            .counters
            .window
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            sent.pop_front();
        }
        if sent.len() as u64 >= limit {
            state.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let free_in = sent.front().map_or(Duration::ZERO, |t| {
                window.saturating_sub(now.duration_since(*t))
            });
            let mut response = error(429, "rate limit reached for requests");
            response
                .headers_mut()
                .insert("retry-after-ms", (free_in.as_millis() as u64).into());
            return Some(response);
        }
        sent.push_back(now);
        state
            .counters
            .window_max
            .fetch_max(sent.len() as u64, Ordering::Relaxed);
    }
    let c = &state.counters;
    let now_in_flight = c.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    c.in_flight_max.fetch_max(now_in_flight, Ordering::Relaxed);
    if state.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(state.config.latency_ms)).await;
    }
    c.in_flight.fetch_sub(1, Ordering::Relaxed);
    None
}

fn to_messages(system: Option<&str>, messages: &[Value]) -> Vec<Message> {
    let mut out = Vec::new();
    if let Some(s) = system {
        out.push(Message {
            role: Role::System,
            content: s.to_owned(),
        });
    }
    for m in messages {
        let content = match &m["content"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let role = if m["role"] == "system" {
            Role::System
        } else {
            Role::User
        };
        out.push(Message { role, content });
    }
    out
}

fn params(body: &Value) -> Params {
    Params {
        temperature: body["temperature"].as_f64(),
        top_p: body["top_p"].as_f64(),
        max_tokens: body["max_tokens"].as_u64().map(|v| v as u32),
        stop: serde_json::from_value(body["stop"].clone())
            .ok()
            .or_else(|| serde_json::from_value(body["stop_sequences"].clone()).ok()),
        seed: body["seed"].as_i64(),
        ..Params::default()
    }
}

async fn chat_completions(
    State(state): State<MockState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.counters.chat.fetch_add(1, Ordering::Relaxed);
    if let Some(early) = gate(&state, &headers).await {
        return early;
    }
    let Some(model) = body["model"].as_str() else {
        return error(400, "model is required");
    };
    let Some(messages) = body["messages"].as_array() else {
        return error(400, "messages is required");
    };
    let request = ChatRequest {
        model: model.to_owned(),
        messages: to_messages(None, messages),
        params: params(&body),
    };
    let answer = simulated::complete(&request);
    let mut reply = json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.content}, "finish_reason": answer.finish_reason}],
    });
    if !state.config.omit_usage {
        reply["usage"] = json!({"prompt_tokens": answer.tokens_in, "completion_tokens": answer.tokens_out,
                                "total_tokens": answer.tokens_in + answer.tokens_out});
    }
    Json(reply).into_response()
}

async fn messages(
    State(state): State<MockState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.counters.messages.fetch_add(1, Ordering::Relaxed);
    if headers.get("anthropic-version").is_none() {
        return error(400, "anthropic-version header is required");
    }
    if let Some(early) = gate(&state, &headers).await {
        return early;
    }
    let Some(model) = body["model"].as_str() else {
        return error(400, "model is required");
    };
    if body["max_tokens"].as_u64().is_none() {
        return error(400, "max_tokens is required");
    }
    let Some(messages) = body["messages"].as_array() else {
        return error(400, "messages is required");
    };
    let request = ChatRequest {
        model: model.to_owned(),
        messages: to_messages(body["system"].as_str(), messages),
        params: params(&body),
    };
    let answer = simulated::complete(&request);
    let stop_reason = if answer.finish_reason.as_deref() == Some("length") {
        "max_tokens"
    } else {
        "end_turn"
    };
    Json(json!({
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": answer.content}],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": answer.tokens_in, "output_tokens": answer.tokens_out},
    }))
    .into_response()
}

async fn embeddings(
    State(state): State<MockState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.counters.embeddings.fetch_add(1, Ordering::Relaxed);
    if let Some(early) = gate(&state, &headers).await {
        return early;
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => return error(400, "input is required"),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": simulated::embedding(text)}))
        .collect();
    Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
}

async fn models(State(state): State<MockState>, headers: HeaderMap) -> Response {
    state.counters.models.fetch_add(1, Ordering::Relaxed);
    if let Some(early) = gate(&state, &headers).await {
        return early;
    }
    let data: Vec<Value> = simulated::MODELS
        .iter()
        .map(|m| json!({"id": m, "object": "model"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn stats(State(state): State<MockState>) -> Json<Value> {
    let c = &state.counters;
    Json(json!({
        "requests": c.requests.load(Ordering::Relaxed),
        "chat_completions": c.chat.load(Ordering::Relaxed),
        "messages": c.messages.load(Ordering::Relaxed),
        "embeddings": c.embeddings.load(Ordering::Relaxed),
        "models": c.models.load(Ordering::Relaxed),
        "in_flight_max": c.in_flight_max.load(Ordering::Relaxed),
        "window_max": c.window_max.load(Ordering::Relaxed),
        "seen_window_max": c.seen_max.load(Ordering::Relaxed),
        "throttled": c.throttled.load(Ordering::Relaxed),
    }))
}

async fn add_script(
    State(state): State<MockState>,
    Json(replies): Json<Vec<Scripted>>,
) -> StatusCode {
    state.script(replies);
    StatusCode::NO_CONTENT
}
