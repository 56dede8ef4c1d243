//! Server functions: thin adapters from the dashboard to the engine. Each one resolves the
//! caller (set on the request by the server's auth layer), calls one engine operation, and
//! maps its error.

use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use engine::types::{Project, ProjectDetail, SessionInfo};

mod admin;
mod charts;
mod experiments;
mod runs;
mod sweeps;
pub use admin::*;
pub use charts::*;
pub use experiments::*;
pub use runs::*;
pub use sweeps::*;

#[cfg(feature = "ssr")]
pub mod ssr {
    //! What server functions need from the server: the engine handle and the caller.
    use crate::error::AppError;
    use engine::{Actor, Core};
    use leptos::prelude::*;

    /// The principal the auth layer resolved for this request (`None`: nobody, and guests are
    /// not allowed). The server inserts it as a request extension.
    #[derive(Clone, Debug)]
    pub struct Caller(pub Option<Actor>);

    /// Key under which a browser session stores who is signed in.
    pub const SESSION_USER: &str = "user";

    /// What a browser session remembers: the user and the session version it was issued for.
    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
    pub struct SessionUser {
        pub id: uuid::Uuid,
        pub version: i64,
    }

    pub fn core() -> Result<Core, AppError> {
        use_context::<Core>().ok_or_else(|| AppError::Message("server state missing".into()))
    }

    pub async fn caller() -> Result<Option<Actor>, AppError> {
        let axum::Extension(Caller(actor)) = leptos_axum::extract::<axum::Extension<Caller>>()
            .await
            .map_err(|e| AppError::Message(e.to_string()))?;
        Ok(actor)
    }

    /// The caller, or `Unauthenticated`.
    pub async fn actor() -> Result<Actor, AppError> {
        caller()
            .await?
            .ok_or_else(|| engine::Error::Unauthenticated.into())
    }

    pub async fn session() -> Result<tower_sessions::Session, AppError> {
        leptos_axum::extract::<tower_sessions::Session>()
            .await
            .map_err(|e| AppError::Message(e.to_string()))
    }

    /// Starts a browser session for `user` under a fresh session id (no fixation).
    pub async fn sign_in(user: &engine::store::users::UserRow) -> Result<(), AppError> {
        let session = session().await?;
        session
            .cycle_id()
            .await
            .map_err(|e| AppError::Message(e.to_string()))?;
        session
            .insert(
                SESSION_USER,
                SessionUser {
                    id: user.id,
                    version: user.session_version,
                },
            )
            .await
            .map_err(|e| AppError::Message(e.to_string()))
    }
}

/// Whether setup is needed, and who is signed in.
#[server(prefix = "/sfn")]
pub async fn get_session_info() -> Result<SessionInfo, AppError> {
    let core = ssr::core()?;
    let needs_setup = engine::auth::needs_setup(&core).await?;
    let me = ssr::caller().await?.map(|a| a.me());
    let instance_name = engine::store::settings::load(&core.db).await?.instance_name;
    Ok(SessionInfo {
        needs_setup,
        me,
        instance_name,
    })
}

/// Creates the first admin and signs them in.
#[server(prefix = "/sfn")]
pub async fn setup(username: String, password: String, confirm: String) -> Result<(), AppError> {
    if password != confirm {
        return Err(engine::Error::invalid("confirm", "the passwords do not match").into());
    }
    let core = ssr::core()?;
    let user = engine::auth::setup_admin(&core, &username, &password).await?;
    let row = engine::store::users::get(&core.db, user.id)
        .await?
        .ok_or(engine::Error::NotFound("user"))?;
    ssr::sign_in(&row).await?;
    leptos_axum::redirect("/projects");
    Ok(())
}

#[server(prefix = "/sfn")]
pub async fn login(username: String, password: String) -> Result<(), AppError> {
    let core = ssr::core()?;
    let user = engine::auth::login(&core, &username, &password).await?;
    ssr::sign_in(&user).await?;
    leptos_axum::redirect("/projects");
    Ok(())
}

#[server(prefix = "/sfn")]
pub async fn logout() -> Result<(), AppError> {
    ssr::session()
        .await?
        .flush()
        .await
        .map_err(|e| AppError::Message(e.to_string()))?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[server(prefix = "/sfn")]
pub async fn list_projects() -> Result<Vec<Project>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::projects::list_projects(&core, &actor, engine::projects::PAGE_MAX, 0).await?)
}

#[server(prefix = "/sfn")]
pub async fn get_project(id: Uuid) -> Result<ProjectDetail, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::projects::get_project(&core, &actor, id).await?)
}

#[server(prefix = "/sfn")]
pub async fn create_project(name: String, description: String) -> Result<Project, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let new = engine::types::NewProject {
        name,
        description,
        notes: String::new(),
    };
    Ok(engine::projects::create_project(&core, &actor, new).await?)
}

#[server(prefix = "/sfn")]
pub async fn rename_project(id: Uuid, name: String) -> Result<Project, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let update = engine::types::ProjectUpdate {
        name: Some(name),
        ..Default::default()
    };
    Ok(engine::projects::update_project(&core, &actor, id, update).await?)
}

#[server(prefix = "/sfn")]
pub async fn update_project_text(
    id: Uuid,
    description: String,
    notes: String,
) -> Result<Project, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let update = engine::types::ProjectUpdate {
        name: None,
        description: Some(description),
        notes: Some(notes),
    };
    Ok(engine::projects::update_project(&core, &actor, id, update).await?)
}

#[server(prefix = "/sfn")]
pub async fn delete_project(id: Uuid) -> Result<(), AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::projects::delete_project(&core, &actor, id).await?)
}

#[server(prefix = "/sfn")]
pub async fn get_settings() -> Result<engine::types::Settings, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::admin::get_settings(&core, &actor).await?)
}

#[server(prefix = "/sfn")]
pub async fn save_settings(
    allow_guest_access: Option<String>,
    allow_python_scorers: Option<String>,
    allow_private_webhook_targets: Option<String>,
    instance_name: String,
    default_model: String,
    token_ttl_minutes: i64,
) -> Result<engine::types::Settings, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let default_model = default_model.trim().to_owned();
    let update = engine::types::SettingsUpdate {
        // An unchecked checkbox sends nothing.
        allow_guest_access: Some(allow_guest_access.is_some()),
        default_model: Some((!default_model.is_empty()).then_some(default_model)),
        instance_name: Some(instance_name),
        token_ttl_minutes: Some(token_ttl_minutes),
        allow_python_scorers: Some(allow_python_scorers.is_some()),
        allow_private_webhook_targets: Some(allow_private_webhook_targets.is_some()),
    };
    Ok(engine::admin::update_settings(&core, &actor, update).await?)
}

#[server(prefix = "/sfn")]
pub async fn list_users() -> Result<Vec<engine::types::User>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::admin::list_users(&core, &actor).await?)
}

#[server(prefix = "/sfn")]
pub async fn create_user(
    username: String,
    password: String,
    role: engine::types::Role,
) -> Result<engine::types::User, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let new = engine::types::NewUser {
        username,
        password,
        role,
    };
    Ok(engine::admin::create_user(&core, &actor, new).await?)
}

#[server(prefix = "/sfn")]
pub async fn delete_user(id: Uuid) -> Result<(), AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::admin::delete_user(&core, &actor, id).await?)
}

#[server(prefix = "/sfn")]
pub async fn list_api_keys() -> Result<Vec<engine::types::ApiKey>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::admin::list_api_keys(&core, &actor).await?)
}

#[server(prefix = "/sfn")]
pub async fn create_api_key(
    name: String,
    role: engine::types::Role,
) -> Result<engine::types::CreatedApiKey, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let new = engine::types::NewApiKey { name, role };
    Ok(engine::admin::create_api_key(&core, &actor, new).await?)
}

#[server(prefix = "/sfn")]
pub async fn revoke_api_key(id: Uuid) -> Result<(), AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::admin::revoke_api_key(&core, &actor, id).await?)
}

#[server(prefix = "/sfn")]
pub async fn get_stats() -> Result<engine::types::Stats, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::admin::get_stats(&core, &actor).await?)
}

#[server(prefix = "/sfn")]
pub async fn list_endpoints() -> Result<Vec<engine::types::Endpoint>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::endpoints::list_endpoints(&core, &actor).await?)
}

#[server(prefix = "/sfn")]
pub async fn create_endpoint(
    name: String,
    kind: engine::types::EndpointKind,
    base_url: String,
    api_key: String,
    max_concurrency: String,
    rpm: String,
    tpm: String,
) -> Result<engine::types::Endpoint, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let api_key = (!api_key.is_empty()).then_some(api_key);
    // An empty box is no limit; digits may be grouped (`40,000`, `40 000`, `40_000`).
    let limit = |field: &str, text: &str| -> Result<Option<i64>, AppError> {
        let digits: String = text
            .chars()
            .filter(|c| !matches!(c, ',' | '_' | ' '))
            .collect();
        if digits.is_empty() {
            return Ok(None);
        }
        // Through engine::Error, so the answer carries the 422 every invalid field gets.
        digits
            .parse()
            .map(Some)
            .map_err(|_| engine::Error::invalid(field, "must be a whole number").into())
    };
    let new = engine::types::NewEndpoint {
        name,
        kind,
        base_url,
        api_key,
        options: None,
        max_concurrency: limit("max_concurrency", &max_concurrency)?,
        rpm: limit("rpm", &rpm)?,
        tpm: limit("tpm", &tpm)?,
        timeout_ms: None,
    };
    Ok(engine::endpoints::create_endpoint(&core, &actor, new).await?)
}

#[server(prefix = "/sfn")]
pub async fn delete_endpoint(id: Uuid) -> Result<(), AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::endpoints::delete_endpoint(&core, &actor, id).await?)
}

#[server(prefix = "/sfn")]
pub async fn test_endpoint(id: Uuid) -> Result<engine::types::EndpointTest, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::endpoints::test_endpoint(&core, &actor, id).await?)
}
