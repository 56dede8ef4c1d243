//! Boots the real PromptLooper app on 127.0.0.1:0 over a fresh database, for HTTP tests.
#![allow(dead_code)]

pub mod mock;
pub mod sentinels;
pub mod story;

use engine::testing::TestDatabase;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use server::config::Cli;
use server::state::AppState;

pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub database: TestDatabase,
    _data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub const STATIC_KEY: &str = "static-api-key-for-tests-0123456789abcdef";
pub const ADMIN_PASSWORD: &str = "correct horse battery";
/// The password of the users `user_token` creates.
pub const USER_PASSWORD: &str = "a long password";

impl TestServer {
    /// Boots the app without the demo project (tests count what they create).
    pub async fn start(database: TestDatabase) -> TestServer {
        Self::start_with(database, &["--seed-demo", "false"]).await
    }

    /// Boots the app with extra command-line arguments.
    pub async fn start_with(database: TestDatabase, extra: &[&str]) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        sentinels::capture_logs();
        let data_dir = tempfile::tempdir().unwrap();
        let site = data_dir.path().join("site");
        let mut args = vec![
            "promptlooper",
            "--data-dir",
            data_dir.path().to_str().unwrap(),
            "--database-url",
            &database.url,
            "--api-key",
            STATIC_KEY,
            "--site-root",
            site.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from_args(args);
        let state = server::prepare(cli.config).await.expect("server prepares");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = server::router(state.clone());
        let task = tokio::spawn(async move {
            server::serve(listener, router, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            url,
            state,
            database,
            _data_dir: data_dir,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Every backend this run has: SQLite always, PostgreSQL with TEST_DATABASE_URL.
    pub async fn all() -> Vec<TestServer> {
        let mut servers = Vec::new();
        for database in TestDatabase::all().await {
            servers.push(TestServer::start(database).await);
        }
        servers
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        server::stop_background(&self.state).await;
        self.state.core.db.close().await;
        let leaked = sentinels::leaked_log_lines();
        assert!(leaked.is_empty(), "secrets in log lines: {leaked:#?}");
    }

    pub fn client() -> Client {
        Client::builder().cookie_store(true).build().unwrap()
    }

    /// Sends a request; `auth` is a bearer credential. Returns status and JSON body (or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Self::client().request(method, format!("{}{}", self.url, path));
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        sentinels::assert_absent(&text, path);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, auth: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, auth, None).await
    }

    /// Runs first-boot setup and returns the admin's token.
    pub async fn setup_admin(&self) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/setup",
                None,
                Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Creates a user with `role` and returns a token for them.
    pub async fn user_token(&self, admin: &str, username: &str, role: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/admin/users",
                Some(admin),
                Some(json!({"username": username, "password": USER_PASSWORD, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": USER_PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

/// Asserts an error response: status, and the field it names.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, field: Option<&str>) {
    assert_eq!(got.0, status, "body: {}", got.1);
    assert!(
        got.1["error"]["message"].is_string(),
        "error body: {}",
        got.1
    );
    assert_eq!(
        got.1["error"]["field"].as_str(),
        field,
        "error body: {}",
        got.1
    );
}
