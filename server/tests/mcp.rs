//! The MCP transport at `/mcp` as raw HTTP: who may reach it (a bearer credential, an allowed
//! Host and Origin) and `MCP_ENABLED=false`. The tools themselves are driven by the official
//! Python SDK in `tests/mcp/test_mcp.py`.

mod common;

use common::{STATIC_KEY, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw-http", "version": "0"}}})
}

async fn post(
    server: &TestServer,
    headers: &[(&str, &str)],
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = TestServer::client()
        .post(format!("{}/mcp", server.url))
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(id) = session {
        req = req.header("mcp-session-id", id);
    }
    req.send().await.unwrap()
}

/// The JSON-RPC messages of an SSE (or JSON) answer.
async fn messages(res: reqwest::Response) -> Vec<Value> {
    let text = res.text().await.unwrap();
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return vec![v];
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

#[tokio::test]
async fn mcp_needs_a_bearer_credential_an_allowed_host_and_a_same_host_origin() {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let bearer = format!("Bearer {STATIC_KEY}");
    let port = server.url.rsplit(':').next().unwrap().to_owned();

    let res = post(&server, &[], None, initialize()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = post(
        &server,
        &[("authorization", "Bearer pl_not_a_key")],
        None,
        initialize(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let res = post(
        &server,
        &[("authorization", &bearer), ("host", "evil.example")],
        None,
        initialize(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    for origin in [
        "https://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
    ] {
        let res = post(
            &server,
            &[("authorization", &bearer), ("origin", origin)],
            None,
            initialize(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{origin}");
    }

    let origin = format!("http://localhost:{port}");
    let res = post(
        &server,
        &[("authorization", &bearer), ("origin", &origin)],
        None,
        initialize(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let init = messages(res).await;
    assert_eq!(init[0]["result"]["serverInfo"]["name"], "promptlooper");
    assert!(init[0]["result"]["capabilities"]["tools"].is_object());

    let res = post(
        &server,
        &[("authorization", &bearer)],
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert!(res.status().is_success(), "{}", res.status());
    let res = post(
        &server,
        &[("authorization", &bearer)],
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let listed = messages(res).await;
    let tools = listed[0]["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 25);
    let sweep = tools.iter().find(|t| t["name"] == "run_sweep").unwrap();
    assert!(sweep["inputSchema"]["properties"]["sweep"].is_object());

    // A bad argument is a tool error naming it, not a protocol error.
    let res = post(
        &server,
        &[("authorization", &bearer)],
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "create_project", "arguments": {"name": 7}}}),
    )
    .await;
    let called = messages(res).await;
    let result = &called[0]["result"];
    assert_eq!(result["isError"], true, "{called:?}");
    assert_eq!(result["structuredContent"]["error"]["field"], "name");
    server.stop().await;
}

#[tokio::test]
async fn mcp_enabled_false_turns_the_endpoint_off() {
    let server = TestServer::start_with(
        engine::testing::TestDatabase::sqlite(),
        &["--seed-demo", "false", "--mcp-enabled", "false"],
    )
    .await;
    let bearer = format!("Bearer {STATIC_KEY}");
    let res = post(&server, &[("authorization", &bearer)], None, initialize()).await;
    assert!(
        matches!(
            res.status(),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ),
        "{}",
        res.status()
    );
    assert!(res.headers().get("mcp-session-id").is_none());
    server.stop().await;
}
