//! Where `promptlooper run` does its work: in this process on an embedded database (engine
//! calls), or on a running server over REST (`--server`). Both expose the same operations, so
//! the command reads the same either way.

use std::time::Duration;

use engine::types::Role;
use engine::types::{
    Endpoint, EndpointUpdate, Experiment, ImportReport, Leaderboard, NewEndpoint, NewExperiment,
    NewProject, Project, SampleFormat, Sweep, SweepRequest,
};
use engine::{Actor, AuthVia};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::file::{Data, EndpointSpec};
use crate::state::AppState;

/// Why an operation failed. `field` set: the request named a field (a mistake in the file,
/// exit 2); otherwise the run could not go on (exit 3).
#[derive(Debug)]
pub struct Failure {
    pub field: Option<String>,
    pub message: String,
    /// A mistake in what the file asked for (validation, a name that does not exist).
    pub bad_input: bool,
}

impl Failure {
    fn other(message: impl Into<String>) -> Failure {
        Failure {
            field: None,
            message: message.into(),
            bad_input: false,
        }
    }
}

impl From<engine::Error> for Failure {
    fn from(e: engine::Error) -> Failure {
        let bad_input = matches!(
            e,
            engine::Error::Invalid(_) | engine::Error::Conflict(_) | engine::Error::BadLines { .. }
        );
        Failure {
            field: e.field().map(str::to_owned),
            message: e.to_string(),
            bad_input,
        }
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

pub enum Backend {
    Local(Box<Local>),
    Remote(Remote),
}

pub struct Local {
    pub state: AppState,
    actor: Actor,
    /// The temporary data folder, removed when the command ends.
    _temp: Option<tempfile::TempDir>,
}

pub struct Remote {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Backend {
    /// This process on the configured database, acting as its administrator (whoever can run
    /// the binary on the data folder owns it).
    pub fn local(state: AppState, temp: Option<tempfile::TempDir>) -> Backend {
        Backend::Local(Box::new(Local {
            state,
            actor: Actor {
                user: None,
                role: Role::Admin,
                via: AuthVia::StaticApiKey,
            },
            _temp: temp,
        }))
    }

    /// A running server at `base`, with an API key (or token).
    pub fn remote(base: &str, key: String) -> Result<Backend> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Failure::other(format!("HTTP client: {e}")))?;
        Ok(Backend::Remote(Remote {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
        }))
    }

    /// Where a person can look at the experiment (remote only).
    pub fn page_url(&self, experiment: Uuid) -> Option<String> {
        match self {
            Backend::Local(_) => None,
            Backend::Remote(r) => Some(format!("{}/experiments/{experiment}", r.base)),
        }
    }

    /// Checks the connection and the key before anything is written.
    pub async fn hello(&self) -> Result<()> {
        match self {
            Backend::Local(_) => Ok(()),
            Backend::Remote(r) => {
                let me: Value = r.get("/api/v1/auth/me").await?;
                if me["role"] == "guest" {
                    return Err(Failure::other(
                        "the server treats this key as a guest (read-only): set PROMPTLOOPER_API_KEY to a member or admin key",
                    ));
                }
                Ok(())
            }
        }
    }

    /// The project named `name`, created when missing.
    pub async fn project(&self, name: &str) -> Result<Uuid> {
        let new = NewProject {
            name: name.to_owned(),
            description: "Experiments run by `promptlooper run`.".into(),
            notes: String::new(),
        };
        match self {
            Backend::Local(l) => {
                let mut offset = 0;
                loop {
                    let page =
                        engine::projects::list_projects(&l.state.core, &l.actor, 500, offset)
                            .await?;
                    if let Some(p) = page.iter().find(|p| p.name == name) {
                        return Ok(p.id);
                    }
                    if page.len() < 500 {
                        break;
                    }
                    offset += 500;
                }
                Ok(
                    engine::projects::create_project(&l.state.core, &l.actor, new)
                        .await?
                        .id,
                )
            }
            Backend::Remote(r) => {
                let mut offset = 0;
                loop {
                    let page: Vec<Project> = r
                        .get(&format!("/api/v1/projects?limit=500&offset={offset}"))
                        .await?;
                    if let Some(p) = page.iter().find(|p| p.name == name) {
                        return Ok(p.id);
                    }
                    if page.len() < 500 {
                        break;
                    }
                    offset += 500;
                }
                let p: Project = r.send("POST", "/api/v1/projects", &new).await?;
                Ok(p.id)
            }
        }
    }

    pub async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        match self {
            Backend::Local(l) => {
                Ok(engine::endpoints::list_endpoints(&l.state.core, &l.actor).await?)
            }
            Backend::Remote(r) => r.get("/api/v1/endpoints").await,
        }
    }

    /// The endpoint `name` as the file describes it: created, or brought in line with the file.
    pub async fn ensure_endpoint(
        &self,
        existing: Option<&Endpoint>,
        name: &str,
        spec: &EndpointSpec,
        key: Option<String>,
    ) -> Result<Uuid> {
        if let Some(ep) = existing {
            if ep.kind != spec.kind {
                return Err(Failure {
                    field: Some("kind".into()),
                    message: format!(
                        "an endpoint named {name:?} of kind {} already exists; give this one another name",
                        ep.kind.as_str()
                    ),
                    bad_input: true,
                });
            }
            // Only what differs is sent: an unchanged endpoint is left alone (a change of
            // endpoint re-scores nothing, but there is no reason to touch it).
            let key_differs = key.as_deref().is_some_and(|k| {
                !ep.has_api_key
                    || ep.api_key_hint.as_deref() != Some(&engine::endpoints::mask_key(k))
            });
            let changes = EndpointUpdate {
                name: None,
                base_url: (ep.base_url.trim_end_matches('/')
                    != spec.base_url.trim_end_matches('/'))
                .then(|| spec.base_url.clone()),
                api_key: key.filter(|_| key_differs).map(Some),
                options: spec.options.clone().filter(|o| *o != ep.options),
                max_concurrency: (ep.max_concurrency != spec.max_concurrency)
                    .then_some(spec.max_concurrency),
                rpm: (ep.rpm != spec.rpm).then_some(spec.rpm),
                tpm: (ep.tpm != spec.tpm).then_some(spec.tpm),
                timeout_ms: spec.timeout_ms.filter(|t| *t != ep.timeout_ms),
            };
            if changes.base_url.is_none()
                && changes.api_key.is_none()
                && changes.options.is_none()
                && changes.max_concurrency.is_none()
                && changes.rpm.is_none()
                && changes.tpm.is_none()
                && changes.timeout_ms.is_none()
            {
                return Ok(ep.id);
            }
            match self {
                Backend::Local(l) => {
                    engine::endpoints::update_endpoint(&l.state.core, &l.actor, ep.id, changes)
                        .await?;
                }
                Backend::Remote(r) => {
                    let _: Endpoint = r
                        .send("PUT", &format!("/api/v1/endpoints/{}", ep.id), &changes)
                        .await?;
                }
            }
            return Ok(ep.id);
        }
        let new = NewEndpoint {
            name: name.to_owned(),
            kind: spec.kind,
            base_url: spec.base_url.clone(),
            api_key: key,
            options: spec.options.clone(),
            max_concurrency: spec.max_concurrency,
            rpm: spec.rpm,
            tpm: spec.tpm,
            timeout_ms: spec.timeout_ms,
        };
        match self {
            Backend::Local(l) => {
                Ok(
                    engine::endpoints::create_endpoint(&l.state.core, &l.actor, new)
                        .await?
                        .id,
                )
            }
            Backend::Remote(r) => {
                let ep: Endpoint = r.send("POST", "/api/v1/endpoints", &new).await?;
                Ok(ep.id)
            }
        }
    }

    pub async fn create_experiment(&self, new: &NewExperiment) -> Result<Experiment> {
        match self {
            Backend::Local(l) => {
                Ok(
                    engine::experiments::create_experiment(&l.state.core, &l.actor, new.clone())
                        .await?,
                )
            }
            Backend::Remote(r) => r.send("POST", "/api/v1/experiments", new).await,
        }
    }

    /// Removes an experiment this command made but could not run (its file had a mistake).
    pub async fn delete_experiment(&self, id: Uuid) -> Result<()> {
        match self {
            Backend::Local(l) => {
                engine::experiments::delete_experiment(&l.state.core, &l.actor, id).await?;
            }
            Backend::Remote(r) => {
                let response = r
                    .request("DELETE", &format!("/api/v1/experiments/{id}"))
                    .send()
                    .await
                    .map_err(|e| r.unreachable(e))?;
                r.check(response).await?;
            }
        }
        Ok(())
    }

    /// Imports the sample data (inline items as a JSON array; a file streamed as it is).
    pub async fn import(&self, experiment: Uuid, data: &Data) -> Result<ImportReport> {
        match self {
            Backend::Local(l) => {
                let (source, format) = match data {
                    Data::Items(items) => (
                        engine::datasets::Source::Text(lines(items)),
                        SampleFormat::Jsonl,
                    ),
                    Data::File { path, format } => {
                        (engine::datasets::Source::File(path.clone()), *format)
                    }
                    Data::Dataset { .. } => return Err(Failure::other("nothing to import")),
                };
                Ok(engine::datasets::import(
                    &l.state.core,
                    &l.actor,
                    experiment,
                    source,
                    engine::datasets::ImportOptions {
                        format,
                        append: false,
                        skip_invalid: false,
                    },
                )
                .await?)
            }
            Backend::Remote(r) => {
                let path = format!("/api/v1/experiments/{experiment}/samples");
                let (body, content_type) = match data {
                    Data::Items(items) => {
                        (reqwest::Body::from(lines(items)), "application/x-ndjson")
                    }
                    Data::File { path, format } => {
                        let file = tokio::fs::File::open(path).await.map_err(|e| {
                            Failure::other(format!("cannot read {}: {e}", path.display()))
                        })?;
                        (
                            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file)),
                            match format {
                                SampleFormat::Csv => "text/csv",
                                SampleFormat::Jsonl => "application/x-ndjson",
                                SampleFormat::Json => "application/json",
                            },
                        )
                    }
                    Data::Dataset { .. } => return Err(Failure::other("nothing to import")),
                };
                let request = r
                    .request("POST", &path)
                    .header("content-type", content_type)
                    .body(body);
                r.read(request).await
            }
        }
    }

    pub async fn start(&self, experiment: Uuid, request: &SweepRequest) -> Result<Sweep> {
        match self {
            Backend::Local(l) => {
                Ok(
                    engine::sweeps::start(&l.state.core, &l.actor, experiment, request.clone())
                        .await?,
                )
            }
            Backend::Remote(r) => {
                r.send(
                    "POST",
                    &format!("/api/v1/experiments/{experiment}/sweep"),
                    request,
                )
                .await
            }
        }
    }

    pub async fn sweep(&self, id: Uuid) -> Result<Sweep> {
        match self {
            Backend::Local(l) => Ok(engine::sweeps::get_sweep(&l.state.core, &l.actor, id).await?),
            Backend::Remote(r) => r.get(&format!("/api/v1/sweeps/{id}")).await,
        }
    }

    pub async fn pause(&self, experiment: Uuid) -> Result<()> {
        match self {
            Backend::Local(l) => {
                engine::sweeps::pause(&l.state.core, &l.actor, experiment).await?;
            }
            Backend::Remote(r) => {
                let _: Sweep = r
                    .send(
                        "POST",
                        &format!("/api/v1/experiments/{experiment}/pause"),
                        &json!({}),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn leaderboard(&self, experiment: Uuid, limit: i64) -> Result<Leaderboard> {
        match self {
            Backend::Local(l) => Ok(engine::leaderboard::get_leaderboard(
                &l.state.core,
                &l.actor,
                experiment,
                engine::leaderboard::Query {
                    sort: None,
                    limit,
                    offset: 0,
                },
            )
            .await?),
            Backend::Remote(r) => {
                r.get(&format!(
                    "/api/v1/experiments/{experiment}/leaderboard?limit={limit}"
                ))
                .await
            }
        }
    }

    /// One export of the best configuration: (file name, content).
    pub async fn export(&self, experiment: Uuid, format: &str) -> Result<(String, String)> {
        match self {
            Backend::Local(l) => {
                let e = engine::exports::export(&l.state.core, &l.actor, experiment, format, None)
                    .await?;
                Ok((e.filename, e.body))
            }
            Backend::Remote(r) => {
                let response = r
                    .request(
                        "GET",
                        &format!("/api/v1/experiments/{experiment}/export/{format}"),
                    )
                    .send()
                    .await
                    .map_err(|e| r.unreachable(e))?;
                let response = r.check(response).await?;
                let filename = response
                    .headers()
                    .get("content-disposition")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split("filename=").nth(1))
                    .map(|f| f.trim_matches('"').to_owned())
                    .unwrap_or_else(|| format!("export.{format}"));
                let body = response
                    .text()
                    .await
                    .map_err(|e| Failure::other(format!("reading the export: {e}")))?;
                Ok((filename, body))
            }
        }
    }

    /// Lets sweeps in flight finish their runs and closes the database (local only).
    pub async fn close(self) {
        if let Backend::Local(l) = self {
            let t = std::time::Instant::now();
            l.state.stop_streams();
            crate::stop_background(&l.state).await;
            let background = t.elapsed();
            l.state.core.db.close().await;
            tracing::debug!(
                background_ms = background.as_millis() as u64,
                total_ms = t.elapsed().as_millis() as u64,
                "closed"
            );
        }
    }
}

/// Inline items as JSON Lines: an import error's "line N" is then item N.
fn lines(items: &[Value]) -> String {
    items
        .iter()
        .map(|i| serde_json::to_string(i).unwrap_or_default() + "\n")
        .collect()
}

impl Remote {
    fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    fn unreachable(&self, e: reqwest::Error) -> Failure {
        Failure::other(format!(
            "cannot reach the server at {} ({})",
            self.base,
            e.without_url()
        ))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.read(self.request("GET", path)).await
    }

    async fn send<T: DeserializeOwned, B: serde::Serialize + ?Sized>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.read(self.request(method, path).json(body)).await
    }

    async fn read<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let response = self.check(response).await?;
        response
            .json()
            .await
            .map_err(|e| Failure::other(format!("an answer the CLI cannot read ({e})")))
    }

    /// A 2xx response, or the server's error as a failure (4xx with a field: the file's fault).
    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let error = &body["error"];
        let message = error["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the server answered {status}"));
        let message = match error["lines"].as_array().and_then(|l| l.first()) {
            Some(line) => format!(
                "line {}: {}",
                line["line"],
                line["message"].as_str().unwrap_or_default()
            ),
            None => message,
        };
        match status.as_u16() {
            401 => Err(Failure::other(format!(
                "the server refused the key in PROMPTLOOPER_API_KEY ({message})"
            ))),
            403 => Err(Failure::other(format!("not allowed: {message}"))),
            400 | 404 | 409 | 422 => Err(Failure {
                field: error["field"].as_str().map(str::to_owned),
                message,
                bad_input: true,
            }),
            _ => Err(Failure::other(format!(
                "the server answered {status}: {message}"
            ))),
        }
    }
}
