//! Provider adapters against the local mock LLM server: both wire shapes, usage, and every
//! failure the retry policy must handle (429 + Retry-After, 500, timeouts, malformed bodies,
//! auth and quota errors that must fail fast).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mock::Mock;
use engine::providers::retry::RetryPolicy;
use engine::providers::{self, ChatRequest, EndpointAccess, Message, Provider, Role};
use engine::types::{EndpointKind, Params};
use server::mock_llm::{MockConfig, Scripted};

const KEY: &str = "sk-test-sentinel-0123456789";

fn provider(
    kind: EndpointKind,
    url: &str,
    key: Option<&str>,
    timeout_ms: u64,
) -> Arc<dyn Provider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    providers::build(
        EndpointAccess {
            kind,
            base_url: url.to_owned(),
            api_key: key.map(str::to_owned),
            options: serde_json::json!({}),
            timeout: Duration::from_millis(timeout_ms),
        },
        reqwest::Client::new(),
    )
    .unwrap()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "sim-large".into(),
        messages: vec![
            Message {
                role: Role::System,
                content: "Return only a comma-separated list.".into(),
            },
            Message {
                role: Role::User,
                content: "Extract.\n\nAda Lovelace visited London in 1843.".into(),
            },
        ],
        params: Params {
            temperature: Some(0.2),
            max_tokens: Some(100),
            ..Params::default()
        },
    }
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn openai_and_anthropic_shapes_round_trip() {
    let mock = Mock::start(MockConfig {
        api_key: Some(KEY.into()),
        ..MockConfig::default()
    })
    .await;
    for kind in [EndpointKind::Openai, EndpointKind::Anthropic] {
        let p = provider(kind, &mock.url, Some(KEY), 5_000);
        let answer = p.chat(&request()).await.unwrap();
        assert!(
            answer.content.contains("Lovelace"),
            "{kind:?}: {}",
            answer.content
        );
        assert!(answer.tokens_in > 0 && answer.tokens_out > 0 && !answer.usage_estimated);
        assert!(answer.finish_reason.is_some());
        assert_eq!(
            p.list_models().await.unwrap(),
            ["sim-embed", "sim-large", "sim-medium", "sim-small"]
        );
        // The simulated provider gives the same answer as the mock, which serves it.
        assert_eq!(
            answer.content,
            providers::simulated::complete(&request()).content
        );
    }
    let embeddings = provider(EndpointKind::Openai, &mock.url, Some(KEY), 5_000)
        .embed("sim-embed", &["Ada Lovelace".into(), "London".into()])
        .await
        .unwrap();
    assert_eq!(embeddings.len(), 2);
    assert_eq!(
        embeddings[0].len(),
        providers::simulated::EMBEDDING_DIMENSIONS
    );
}

#[tokio::test]
async fn missing_usage_is_estimated_and_said_so() {
    let mock = Mock::start(MockConfig {
        omit_usage: true,
        ..MockConfig::default()
    })
    .await;
    let answer = provider(EndpointKind::Openai, &mock.url, None, 5_000)
        .chat(&request())
        .await
        .unwrap();
    assert!(answer.usage_estimated);
    assert!(answer.tokens_in > 0 && answer.tokens_out > 0);
}

#[tokio::test]
async fn transient_failures_are_retried_until_success() {
    let req = request();
    let mock = Mock::start(MockConfig::default()).await;
    mock.state.script([
        Scripted::Status {
            status: 429,
            retry_after: Some("0.2".into()),
            retry_after_ms: None,
            body: None,
        },
        Scripted::status(500),
        Scripted::Malformed,
        Scripted::Hang { ms: 2_000 },
        Scripted::Status {
            status: 529,
            retry_after: None,
            retry_after_ms: Some(50),
            body: None,
        },
    ]);
    let p = provider(EndpointKind::Openai, &mock.url, None, 300);
    let started = Instant::now();
    let (result, attempts) = RetryPolicy {
        max_attempts: 6,
        ..fast_policy()
    }
    .run(|| p.chat(&req))
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(attempts, 6);
    assert_eq!(mock.state.chat_requests(), 6);
    // Retry-After (200 ms), the timeout (300 ms) and retry-after-ms (50 ms) were all waited out.
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn auth_and_quota_errors_fail_fast_and_never_show_the_key() {
    let req = request();
    let mock = Mock::start(MockConfig {
        api_key: Some(KEY.into()),
        ..MockConfig::default()
    })
    .await;
    let wrong = provider(
        EndpointKind::Openai,
        &mock.url,
        Some("sk-wrong-key-000000000"),
        5_000,
    );
    let (result, attempts) = fast_policy().run(|| wrong.chat(&req)).await;
    let error = result.unwrap_err();
    assert_eq!(
        (attempts, error.status, error.retryable),
        (1, Some(401), false)
    );
    assert!(
        error.message.contains("authentication failed"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("sk-wrong-key"), "{}", error.message);

    mock.state.script([Scripted::Status {
        status: 429,
        retry_after: Some("1".into()),
        retry_after_ms: None,
        body: Some(r#"{"error": {"type": "insufficient_quota", "message": "You exceeded your current quota"}}"#.into()),
    }]);
    let right = provider(EndpointKind::Openai, &mock.url, Some(KEY), 5_000);
    let (result, attempts) = fast_policy().run(|| right.chat(&req)).await;
    let error = result.unwrap_err();
    assert_eq!((attempts, error.retryable), (1, false));
    assert!(error.message.contains("quota"), "{}", error.message);

    // A retryable failure that never ends gives up after the policy's attempts, saying so.
    mock.state.script((0..5).map(|_| Scripted::status(503)));
    let (result, attempts) = fast_policy().run(|| right.chat(&req)).await;
    assert_eq!(attempts, 5);
    assert!(result.unwrap_err().message.contains("after 5 attempts"));
}

#[tokio::test]
async fn unreachable_endpoints_fail_with_a_clear_error() {
    let req = request();
    let p = provider(EndpointKind::Openai, "http://127.0.0.1:9/v1", None, 1_000);
    let (result, attempts) = RetryPolicy {
        max_attempts: 2,
        ..fast_policy()
    }
    .run(|| p.chat(&req))
    .await;
    let error = result.unwrap_err();
    assert_eq!(attempts, 2);
    assert!(
        error.message.contains("could not connect"),
        "{}",
        error.message
    );
}
