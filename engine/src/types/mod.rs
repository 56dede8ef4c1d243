//! Types shared by the dashboard and the backend. They compile for WASM: no server-only
//! dependencies here (schema derives are switched on by the `server` feature).

mod charts;
mod dashboard;
mod dataset;
mod pipeline;
#[cfg(feature = "server")]
pub mod schema;
mod scoring;
mod sweep;
mod webhooks;
pub use charts::*;
pub use dashboard::*;
pub use dataset::*;
pub use pipeline::*;
pub use scoring::*;
pub use sweep::*;
pub use webhooks::*;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "server")]
use utoipa::ToSchema;

/// What a principal may do. Admin: everything; member: read and write experiments;
/// guest: read only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
    Guest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Guest => "guest",
        }
    }

    pub fn can_write(self) -> bool {
        matches!(self, Role::Admin | Role::Member)
    }

    /// The less privileged of two roles.
    pub fn min(self, other: Role) -> Role {
        let rank = |r: Role| match r {
            Role::Guest => 0,
            Role::Member => 1,
            Role::Admin => 2,
        };
        if rank(self) <= rank(other) {
            self
        } else {
            other
        }
    }
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "guest" => Ok(Role::Guest),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user account, as every response shows it (never with its password hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// Who is making a request, as `GET /api/v1/auth/me` reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Me {
    /// The signed-in user; absent for anonymous guests and the static `API_KEY`.
    pub user: Option<User>,
    pub role: Role,
    /// How the request authenticated: `session`, `jwt`, `api_key`, `static_api_key` or `guest`.
    pub via: String,
}

/// Credentials for `setup` and `login`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[cfg_attr(feature = "server", schema(value_type = schema::Username))]
    pub username: String,
    #[cfg_attr(feature = "server", schema(min_length = 8, max_length = 256))]
    pub password: String,
}

/// A signed API token returned by `login` and `setup`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct TokenResponse {
    pub token: String,
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

/// A new user created by the admin.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[cfg_attr(feature = "server", schema(value_type = schema::Username))]
    pub username: String,
    #[cfg_attr(feature = "server", schema(min_length = 8, max_length = 256))]
    pub password: String,
    #[serde(default = "default_member")]
    pub role: Role,
}

/// Changes to a user; absent fields are kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[cfg_attr(feature = "server", schema(min_length = 8, max_length = 256))]
    pub password: Option<String>,
    pub role: Option<Role>,
}

fn default_member() -> Role {
    Role::Member
}

/// An API key as listed: the secret itself is shown once, at creation, and never again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, enough to recognise it.
    pub prefix: String,
    pub role: Role,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    #[cfg_attr(feature = "server", schema(value_type = schema::Name))]
    pub name: String,
    #[serde(default = "default_member")]
    pub role: Role,
}

/// The answer to creating an API key: the only time `key` is shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct CreatedApiKey {
    pub key: String,
    #[serde(flatten)]
    pub api_key: ApiKey,
}

/// A workspace grouping related experiments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// Free-form markdown notes.
    pub notes: String,
    pub owner_id: Option<Uuid>,
    pub experiment_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A project with summaries of its experiments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ProjectDetail {
    #[serde(flatten)]
    pub project: Project,
    pub experiments: Vec<ExperimentSummary>,
    /// Configurations approved in the project's experiments, newest first.
    #[serde(default)]
    pub approved: Vec<ApprovedConfig>,
    /// The newest exports (up to 20), each readable as it was at `/api/v1/exports/{id}`.
    #[serde(default)]
    pub exports: Vec<ExportRecord>,
    #[serde(default)]
    pub export_total: i64,
}

/// An approved configuration, as a project lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ApprovedConfig {
    pub experiment_id: Uuid,
    pub experiment_name: String,
    pub config_key: String,
    pub label: String,
    /// Its weighted score now (absent when unscored).
    pub score: Option<f64>,
    pub note: String,
    pub marked_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ExperimentSummary {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub status: String,
    pub run_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest sweep's status and progress (none before the first sweep).
    #[serde(default)]
    pub sweep_status: Option<String>,
    #[serde(default)]
    pub progress: Option<Progress>,
    /// The leader's weighted score and label (none before anything is scored).
    #[serde(default)]
    pub best_score: Option<f64>,
    #[serde(default)]
    pub best_label: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    #[cfg_attr(feature = "server", schema(value_type = schema::Name))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_length = 10000))]
    pub description: String,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_length = 200000))]
    pub notes: String,
}

/// Changes to a project; absent fields are kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdate {
    #[cfg_attr(feature = "server", schema(value_type = Option<schema::Name>))]
    pub name: Option<String>,
    #[cfg_attr(feature = "server", schema(max_length = 10000))]
    pub description: Option<String>,
    #[cfg_attr(feature = "server", schema(max_length = 200000))]
    pub notes: Option<String>,
}

/// System settings an admin manages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Settings {
    /// Let anonymous visitors read projects and results (never write). Off by default.
    pub allow_guest_access: bool,
    /// The model new experiment stages start with, if any.
    pub default_model: Option<String>,
    /// The name shown in the dashboard's header.
    pub instance_name: String,
    /// How long a token from `login` stays valid, in minutes (5 to 43,200).
    pub token_ttl_minutes: i64,
    /// Let experiments use `python` scorers. They run `python3` in a subprocess with a timeout
    /// but are NOT sandboxed: the code can do anything the server's user can. Off by default.
    pub allow_python_scorers: bool,
    /// Let webhooks reach loopback, private, link-local and cloud-metadata addresses (a
    /// webhook on this machine or the local network). Off by default: such URLs are refused.
    pub allow_private_webhook_targets: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allow_guest_access: false,
            default_model: None,
            instance_name: "PromptLooper".to_owned(),
            token_ttl_minutes: 24 * 60,
            allow_python_scorers: false,
            allow_private_webhook_targets: false,
        }
    }
}

/// Changes to the settings; absent fields are kept. `default_model: null` clears it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    pub allow_guest_access: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "server", schema(value_type = Option<schema::Name>))]
    pub default_model: Option<Option<String>>,
    #[cfg_attr(feature = "server", schema(value_type = Option<schema::Name>))]
    pub instance_name: Option<String>,
    #[cfg_attr(feature = "server", schema(minimum = 5, maximum = 43200))]
    pub token_ttl_minutes: Option<i64>,
    pub allow_python_scorers: Option<bool>,
    pub allow_private_webhook_targets: Option<bool>,
}

/// Tells "absent" (outer `None`) from "null" (`Some(None)`).
fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// System-wide numbers for the admin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Stats {
    pub users: i64,
    pub projects: i64,
    pub experiments: i64,
    pub runs: RunCounts,
    pub cache_entries: i64,
    /// LLM calls answered from the cache, and calls that went to a provider.
    pub cache_hits: i64,
    pub cache_misses: i64,
    /// Hits over lookups; absent until the first lookup.
    pub cache_hit_rate: Option<f64>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_estimate: f64,
    pub active_api_keys: i64,
    pub database: String,
    pub version: String,
    pub uptime_seconds: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct RunCounts {
    pub total: i64,
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub cached: i64,
}

/// What the dashboard needs to know before it draws anything.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// No user exists yet: the setup page is the only way in.
    pub needs_setup: bool,
    pub me: Option<Me>,
    pub instance_name: String,
}
