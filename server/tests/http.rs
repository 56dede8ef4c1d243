//! HTTP tests against the real app on port 0, on SQLite and PostgreSQL.

mod common;

use common::{ADMIN_PASSWORD, STATIC_KEY, TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn setup_login_me_api_key_and_projects() {
    for server in TestServer::all().await {
        let (s, body) = server.get("/api/v1/auth/me", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");

        // Setup once; then 409.
        let bad = server
            .call(
                Method::POST,
                "/api/v1/auth/setup",
                None,
                Some(json!({"username": "admin", "password": "short"})),
            )
            .await;
        assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, Some("password"));
        let admin = server.setup_admin().await;
        let again = server
            .call(
                Method::POST,
                "/api/v1/auth/setup",
                None,
                Some(json!({"username": "root", "password": ADMIN_PASSWORD})),
            )
            .await;
        assert_error(&again, StatusCode::CONFLICT, Some("username"));

        // Login and me.
        let (s, login) = server
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(login["token_type"], "Bearer");
        assert!(login["expires_at"].is_string());
        assert!(login["user"].get("password_hash").is_none());
        let token = login["token"].as_str().unwrap();
        let (s, me) = server.get("/api/v1/auth/me", Some(token)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (
                me["role"].as_str(),
                me["via"].as_str(),
                me["user"]["username"].as_str()
            ),
            (Some("admin"), Some("jwt"), Some("admin"))
        );
        let (_, me) = server.get("/api/v1/auth/me", Some(STATIC_KEY)).await;
        assert_eq!(me["via"], "static_api_key");
        let wrong = server.get("/api/v1/auth/me", Some("not-a-token")).await;
        assert_error(&wrong, StatusCode::UNAUTHORIZED, None);

        // An API key: shown once, works, never listed, revocable.
        let (s, created) = server
            .call(
                Method::POST,
                "/api/v1/admin/api-keys",
                Some(&admin),
                Some(json!({"name": "ci"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let key = created["key"].as_str().unwrap().to_owned();
        assert_eq!(created["role"], "member");
        let (_, me) = server.get("/api/v1/auth/me", Some(&key)).await;
        assert_eq!(
            (me["via"].as_str(), me["role"].as_str()),
            (Some("api_key"), Some("member"))
        );
        let (_, keys) = server.get("/api/v1/admin/api-keys", Some(&admin)).await;
        assert_eq!(keys.as_array().unwrap().len(), 1);
        assert!(
            !keys.to_string().contains(&key),
            "listing must not contain the secret"
        );

        // Projects through the key.
        let (s, p) = server
            .call(
                Method::POST,
                "/api/v1/projects",
                Some(&key),
                Some(json!({"name": "Chrysopedia", "description": "extraction"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let id = p["id"].as_str().unwrap().to_owned();
        let (s, list) = server.get("/api/v1/projects", Some(&key)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list[0]["name"], "Chrysopedia");
        let (s, detail) = server
            .get(&format!("/api/v1/projects/{id}"), Some(&key))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(detail["experiments"], json!([]));
        let (s, updated) = server
            .call(
                Method::PUT,
                &format!("/api/v1/projects/{id}"),
                Some(&key),
                Some(json!({"notes": "## Findings\nQwen wins"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (updated["name"].as_str(), updated["notes"].as_str()),
            (Some("Chrysopedia"), Some("## Findings\nQwen wins"))
        );
        let (s, _) = server
            .call(
                Method::DELETE,
                &format!("/api/v1/projects/{id}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_error(
            &server
                .get(&format!("/api/v1/projects/{id}"), Some(&key))
                .await,
            StatusCode::NOT_FOUND,
            None,
        );

        let key_id = created["id"].as_str().unwrap();
        let (s, _) = server
            .call(
                Method::DELETE,
                &format!("/api/v1/admin/api-keys/{key_id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_error(
            &server.get("/api/v1/auth/me", Some(&key)).await,
            StatusCode::UNAUTHORIZED,
            None,
        );

        // Stats and settings.
        let (s, stats) = server.get("/api/v1/admin/stats", Some(&admin)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (stats["users"].as_i64(), stats["projects"].as_i64()),
            (Some(1), Some(0))
        );
        assert_eq!(stats["database"], server.database.kind.as_str());
        server.stop().await;
    }
}

/// Who may do what: anonymous (guest access off, then on), guest, member, admin.
#[tokio::test]
async fn access_matrix() {
    for server in TestServer::all().await {
        let admin = server.setup_admin().await;
        let member = server.user_token(&admin, "mia", "member").await;
        let guest = server.user_token(&admin, "gus", "guest").await;
        let new_project = || Some(json!({"name": format!("p-{}", uuid::Uuid::new_v4())}));

        // Guest access off: anonymous gets 401 everywhere that needs a caller.
        for (method, path) in [
            (Method::GET, "/api/v1/projects"),
            (Method::POST, "/api/v1/projects"),
            (Method::GET, "/api/v1/admin/settings"),
        ] {
            let got = server.call(method, path, None, new_project()).await;
            assert_error(&got, StatusCode::UNAUTHORIZED, None);
        }
        // Health and the API description stay public.
        assert_eq!(server.get("/health", None).await.0, StatusCode::OK);
        assert_eq!(
            server.get("/api/v1/openapi.json", None).await.0,
            StatusCode::OK
        );

        // Members write projects but do not administer; guests only read.
        assert_eq!(
            server
                .call(
                    Method::POST,
                    "/api/v1/projects",
                    Some(&member),
                    new_project()
                )
                .await
                .0,
            StatusCode::CREATED
        );
        assert_error(
            &server.get("/api/v1/admin/settings", Some(&member)).await,
            StatusCode::FORBIDDEN,
            None,
        );
        assert_error(
            &server.get("/api/v1/admin/users", Some(&member)).await,
            StatusCode::FORBIDDEN,
            None,
        );
        assert_error(
            &server
                .call(
                    Method::POST,
                    "/api/v1/admin/api-keys",
                    Some(&member),
                    Some(json!({"name": "x"})),
                )
                .await,
            StatusCode::FORBIDDEN,
            None,
        );
        assert_eq!(
            server.get("/api/v1/projects", Some(&guest)).await.0,
            StatusCode::OK
        );
        assert_error(
            &server
                .call(
                    Method::POST,
                    "/api/v1/projects",
                    Some(&guest),
                    new_project(),
                )
                .await,
            StatusCode::FORBIDDEN,
            None,
        );

        // Guest access on: anonymous reads, every write is 403.
        let (s, settings) = server
            .call(
                Method::PUT,
                "/api/v1/admin/settings",
                Some(&admin),
                Some(json!({"allow_guest_access": true})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{settings}");
        assert_eq!(settings["allow_guest_access"], true);
        let (s, list) = server.get("/api/v1/projects", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        let id = list[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            server.get(&format!("/api/v1/projects/{id}"), None).await.0,
            StatusCode::OK
        );
        let (_, me) = server.get("/api/v1/auth/me", None).await;
        assert_eq!(
            (me["role"].as_str(), me["via"].as_str()),
            (Some("guest"), Some("guest"))
        );
        for (method, path, body) in [
            (Method::POST, "/api/v1/projects".to_owned(), new_project()),
            (
                Method::PUT,
                format!("/api/v1/projects/{id}"),
                Some(json!({"name": "hijacked"})),
            ),
            (Method::DELETE, format!("/api/v1/projects/{id}"), None),
            (
                Method::PUT,
                "/api/v1/admin/settings".to_owned(),
                Some(json!({"allow_guest_access": false})),
            ),
            (Method::GET, "/api/v1/admin/stats".to_owned(), None),
        ] {
            assert_error(
                &server.call(method, &path, None, body).await,
                StatusCode::FORBIDDEN,
                None,
            );
        }
        let (_, after) = server.get(&format!("/api/v1/projects/{id}"), None).await;
        assert_ne!(after["name"], "hijacked");
        server.stop().await;
    }
}

/// Malformed, mistyped, missing, unknown, over-long and oversized input: a 4xx naming the
/// field, and nothing written.
#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let admin = server.setup_admin().await;
    let url = format!("{}/api/v1/projects", server.url);
    let client = TestServer::client();
    let raw = |body: &'static str, content_type: &'static str| {
        client
            .post(&url)
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    async fn parse(res: reqwest::Response) -> (StatusCode, Value) {
        let s = res.status();
        (s, res.json().await.unwrap_or(Value::Null))
    }

    let got = parse(raw("{\"name\": ", "application/json").await.unwrap()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, Some("name"));
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
    assert_error(
        &parse(raw("not json", "application/json").await.unwrap()).await,
        StatusCode::BAD_REQUEST,
        None,
    );
    assert_error(
        &parse(raw("{\"name\": 5}", "application/json").await.unwrap()).await,
        StatusCode::BAD_REQUEST,
        Some("name"),
    );
    assert_error(
        &parse(
            raw("{\"description\": \"d\"}", "application/json")
                .await
                .unwrap(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        Some("name"),
    );
    assert_error(
        &parse(
            raw("{\"name\": \"x\", \"colour\": \"red\"}", "application/json")
                .await
                .unwrap(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        Some("colour"),
    );
    assert_error(
        &parse(raw("[]", "application/json").await.unwrap()).await,
        StatusCode::BAD_REQUEST,
        Some("body"),
    );
    assert_error(
        &parse(
            raw("name=x", "application/x-www-form-urlencoded")
                .await
                .unwrap(),
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        None,
    );
    let long = server
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&admin),
            Some(json!({"name": "n".repeat(201)})),
        )
        .await;
    assert_error(&long, StatusCode::UNPROCESSABLE_ENTITY, Some("name"));
    let blank = server
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&admin),
            Some(json!({"name": "   "})),
        )
        .await;
    assert_error(&blank, StatusCode::UNPROCESSABLE_ENTITY, Some("name"));
    let huge = client
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"name\": \"x\", \"notes\": \"{}\"}}",
            "a".repeat(3 * 1024 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_error(&parse(huge).await, StatusCode::PAYLOAD_TOO_LARGE, None);
    assert_error(
        &server
            .get("/api/v1/projects/not-a-uuid", Some(&admin))
            .await,
        StatusCode::BAD_REQUEST,
        Some("id"),
    );
    assert_error(
        &server.get("/api/v1/projects?limit=abc", Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        Some("limit"),
    );
    assert_error(
        &server.get("/api/v1/projects?limit=0", Some(&admin)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("limit"),
    );
    assert_error(
        &server.get("/api/v1/projects?sort=name", Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        Some("sort"),
    );
    let settings = server
        .call(
            Method::PUT,
            "/api/v1/admin/settings",
            Some(&admin),
            Some(json!({"allow_guest_access": true, "token_ttl_minutes": 0})),
        )
        .await;
    assert_error(
        &settings,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("token_ttl_minutes"),
    );
    let wrong_type = server
        .call(
            Method::PUT,
            "/api/v1/admin/settings",
            Some(&admin),
            Some(json!({"allow_guest_access": "yes"})),
        )
        .await;
    assert_error(
        &wrong_type,
        StatusCode::BAD_REQUEST,
        Some("allow_guest_access"),
    );
    let user = server
        .call(
            Method::POST,
            "/api/v1/admin/users",
            Some(&admin),
            Some(json!({"username": "x", "password": "p", "role": "owner"})),
        )
        .await;
    assert_error(&user, StatusCode::BAD_REQUEST, Some("role"));

    // Nothing was written by any of it.
    let (_, list) = server.get("/api/v1/projects", Some(&admin)).await;
    assert_eq!(list, json!([]));
    let (_, settings) = server.get("/api/v1/admin/settings", Some(&admin)).await;
    assert_eq!(settings["allow_guest_access"], false);
    let (_, users) = server.get("/api/v1/admin/users", Some(&admin)).await;
    assert_eq!(users.as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn repeated_failed_logins_lock_with_retry_after() {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    server.setup_admin().await;
    let attempt = |password: &'static str| {
        server.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": password})),
        )
    };
    for _ in 0..engine::auth::FREE_ATTEMPTS {
        assert_error(
            &attempt("wrong password").await,
            StatusCode::UNAUTHORIZED,
            None,
        );
    }
    let res = TestServer::client()
        .post(format!("{}/api/v1/auth/login", server.url))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry));
    server.stop().await;
}

#[tokio::test]
async fn health_reports_the_database_and_503_when_it_is_gone() {
    for server in TestServer::all().await {
        let (s, health) = server.get("/health", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (
                health["status"].as_str(),
                health["database"]["status"].as_str()
            ),
            (Some("ok"), Some("ok"))
        );
        assert_eq!(health["database"]["backend"], server.database.kind.as_str());
        assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
        let res = TestServer::client()
            .get(format!("{}/health", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        server.state.core.db.close().await;
        let (s, health) = server.get("/health", None).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health["database"]["status"], "unavailable");
        server.stop().await;
    }
}

/// The OpenAPI document lists every REST route, and every documented operation is routed.
#[tokio::test]
async fn openapi_describes_every_route() {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let admin = server.setup_admin().await;
    let (s, doc) = server.get("/api/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("get", "/health"),
        ("get", "/api/v1/openapi.json"),
        ("post", "/api/v1/auth/setup"),
        ("post", "/api/v1/auth/login"),
        ("get", "/api/v1/auth/me"),
        ("get", "/api/v1/admin/settings"),
        ("put", "/api/v1/admin/settings"),
        ("get", "/api/v1/admin/stats"),
        ("get", "/api/v1/admin/users"),
        ("post", "/api/v1/admin/users"),
        ("put", "/api/v1/admin/users/{id}"),
        ("delete", "/api/v1/admin/users/{id}"),
        ("get", "/api/v1/admin/api-keys"),
        ("post", "/api/v1/admin/api-keys"),
        ("delete", "/api/v1/admin/api-keys/{id}"),
        ("get", "/api/v1/projects"),
        ("post", "/api/v1/projects"),
        ("get", "/api/v1/projects/{id}"),
        ("put", "/api/v1/projects/{id}"),
        ("delete", "/api/v1/projects/{id}"),
        ("get", "/api/v1/admin/pricing"),
        ("put", "/api/v1/admin/pricing"),
        ("delete", "/api/v1/admin/pricing/{model}"),
        ("delete", "/api/v1/admin/cache"),
        ("get", "/api/v1/admin/cache"),
        ("get", "/api/v1/endpoints"),
        ("post", "/api/v1/endpoints"),
        ("get", "/api/v1/endpoints/{id}"),
        ("put", "/api/v1/endpoints/{id}"),
        ("delete", "/api/v1/endpoints/{id}"),
        ("post", "/api/v1/endpoints/{id}/test"),
        ("get", "/api/v1/endpoints/{id}/models"),
        ("get", "/api/v1/experiments"),
        ("post", "/api/v1/experiments"),
        ("get", "/api/v1/experiments/{id}"),
        ("put", "/api/v1/experiments/{id}"),
        ("delete", "/api/v1/experiments/{id}"),
        ("post", "/api/v1/experiments/{id}/samples"),
        ("get", "/api/v1/runs/compare"),
        ("post", "/api/v1/experiments/{id}/sweep/suggestions"),
        ("get", "/api/v1/experiments/{id}/configs/compare"),
        ("get", "/api/v1/datasets"),
        ("post", "/api/v1/datasets"),
        ("get", "/api/v1/datasets/{id}"),
        ("put", "/api/v1/datasets/{id}"),
        ("delete", "/api/v1/datasets/{id}"),
        ("get", "/api/v1/datasets/{id}/versions"),
        ("get", "/api/v1/datasets/{id}/items"),
        ("post", "/api/v1/datasets/{id}/samples"),
        ("get", "/api/v1/datasets/{id}/items/export"),
        ("get", "/api/v1/experiments/{id}/items"),
        ("post", "/api/v1/experiments/{id}/items"),
        ("get", "/api/v1/experiments/{id}/items/export"),
        ("get", "/api/v1/experiments/{id}/items/{item_id}"),
        ("put", "/api/v1/experiments/{id}/items/{item_id}"),
        ("delete", "/api/v1/experiments/{id}/items/{item_id}"),
        ("post", "/api/v1/samples/parse"),
        ("get", "/api/v1/experiments/{id}/runs"),
        ("delete", "/api/v1/experiments/{id}/cache"),
        ("post", "/api/v1/runs"),
        ("get", "/api/v1/runs/{id}"),
        ("delete", "/api/v1/runs/{id}/cache"),
        ("post", "/api/v1/experiments/{id}/sweep"),
        ("get", "/api/v1/experiments/{id}/sweep"),
        ("post", "/api/v1/experiments/{id}/sweep/preview"),
        ("get", "/api/v1/experiments/{id}/sweeps"),
        ("get", "/api/v1/sweeps/{id}"),
        ("post", "/api/v1/experiments/{id}/pause"),
        ("post", "/api/v1/experiments/{id}/resume"),
        ("post", "/api/v1/experiments/{id}/stop"),
        ("post", "/api/v1/experiments/{id}/redirect"),
        ("post", "/api/v1/experiments/{id}/fork"),
        ("post", "/api/v1/runs/{id}/approve"),
        ("post", "/api/v1/runs/{id}/reject"),
        ("delete", "/api/v1/runs/{id}/mark"),
        ("get", "/api/v1/experiments/{id}/marks"),
        ("get", "/api/v1/experiments/{id}/events"),
        ("post", "/api/v1/experiments/{id}/human-needed"),
        ("get", "/api/v1/webhooks"),
        ("post", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks/{id}"),
        ("put", "/api/v1/webhooks/{id}"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("post", "/api/v1/webhooks/{id}/test"),
        ("get", "/api/v1/webhooks/{id}/deliveries"),
        ("get", "/api/v1/events"),
        ("get", "/api/v1/overview"),
        ("get", "/api/v1/experiments/{id}/events/stream"),
        ("get", "/api/v1/events/stream"),
        ("get", "/api/v1/experiments/{id}/leaderboard"),
        ("post", "/api/v1/runs/{id}/score"),
        ("delete", "/api/v1/runs/{id}/score"),
        ("post", "/api/v1/experiments/{id}/rescore"),
        ("get", "/api/v1/experiments/{id}/scoring-jobs"),
        ("get", "/api/v1/scoring-jobs/{id}"),
        ("get", "/api/v1/experiments/{id}/export/{format}"),
        ("get", "/api/v1/experiments/{id}/exports"),
        ("get", "/api/v1/projects/{id}/exports"),
        ("get", "/api/v1/exports/{id}"),
        ("post", "/api/v1/experiments/{id}/compare"),
        ("post", "/api/v1/experiments/{id}/scorers/test"),
        ("get", "/api/v1/experiments/{id}/charts"),
        ("get", "/api/v1/experiments/{id}/charts/{file}"),
    ];
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
        {
            documented.push((method.clone(), path.clone()));
            let op = &item[method];
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no responses"
            );
            // The router really serves it: never 404 "no route" or 405.
            let concrete = path
                .replace("{id}", &uuid::Uuid::new_v4().to_string())
                .replace("{model}", "no-such-model")
                .replace("{format}", "best")
                .replace("{file}", "progress.svg");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = TestServer::client()
                .request(m, format!("{}{}", server.url, concrete))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_ne!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            if res.status() == StatusCode::NOT_FOUND {
                let body: Value = res.json().await.unwrap_or(Value::Null);
                assert_eq!(
                    body["error"]["code"], "not_found",
                    "{method} {path} is not routed"
                );
            }
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = expected
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    server.stop().await;
}

/// Secrets (passwords, keys, the static key) appear in no response.
#[tokio::test]
async fn secrets_never_appear_in_responses() {
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let admin = server.setup_admin().await;
    let (_, created) = server
        .call(
            Method::POST,
            "/api/v1/admin/api-keys",
            Some(&admin),
            Some(json!({"name": "agent", "role": "admin"})),
        )
        .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let mut seen = String::new();
    for path in [
        "/api/v1/auth/me",
        "/api/v1/admin/api-keys",
        "/api/v1/admin/users",
        "/api/v1/admin/stats",
        "/api/v1/admin/settings",
        "/api/v1/openapi.json",
        "/health",
        "/api/v1/projects",
    ] {
        for auth in [&admin, &key] {
            seen.push_str(&server.get(path, Some(auth)).await.1.to_string());
        }
    }
    seen.push_str(
        &server
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": "admin", "password": "bad password x"})),
            )
            .await
            .1
            .to_string(),
    );
    for secret in [
        key.as_str(),
        STATIC_KEY,
        ADMIN_PASSWORD,
        "bad password x",
        "$argon2",
    ] {
        assert!(!seen.contains(secret), "{secret} leaked");
    }
    server.stop().await;
}

/// A browser session cannot be used by another site to change anything; bearer tokens are
/// unaffected (browsers never attach them on their own).
#[tokio::test]
async fn cross_site_writes_with_the_session_cookie_are_refused() {
    use leptos::server_fn::ServerFn;
    let server = TestServer::start(engine::testing::TestDatabase::sqlite()).await;
    let admin = server.setup_admin().await;
    let browser = TestServer::client();
    let login = browser
        .post(format!("{}{}", server.url, app::api::Login::PATH))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "{}", login.status());
    let create = |site: Option<&'static str>, origin: Option<&'static str>, name: &'static str| {
        let mut req = browser
            .post(format!("{}{}", server.url, app::api::CreateProject::PATH))
            .form(&[("name", name), ("description", "")]);
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send()
    };
    assert_eq!(
        create(Some("cross-site"), None, "evil-1")
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        create(Some("same-site"), None, "evil-2")
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        create(None, Some("http://evil.example"), "evil-3")
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        create(Some("same-origin"), None, "mine")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let same_origin = Box::leak(server.url.clone().into_boxed_str());
    assert_eq!(
        create(None, Some(same_origin), "mine too")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (_, list) = server.get("/api/v1/projects", Some(&admin)).await;
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["mine", "mine too"]);
    // A bearer token is not subject to the check.
    let res = TestServer::client()
        .post(format!("{}/api/v1/projects", server.url))
        .bearer_auth(&admin)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"name": "via token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    server.stop().await;
}
