//! Admin operations: settings, stats, users and API keys.

use uuid::Uuid;

use super::auth::{self, Actor};
use super::core::Core;
use super::error::{Error, Result};
use super::store::{api_keys, settings, stats, users};
use crate::types::{
    ApiKey, CreatedApiKey, NewApiKey, NewUser, Settings, SettingsUpdate, Stats, User, UserUpdate,
};
use crate::validate;

pub const TOKEN_TTL_MINUTES: std::ops::RangeInclusive<i64> = 5..=43_200;

/// The settings (admins only; the dashboard reads the instance name through the session).
pub async fn get_settings(core: &Core, actor: &Actor) -> Result<Settings> {
    actor.require_admin()?;
    settings::load(&core.db).await
}

/// Applies an update: every field is checked before anything is written.
pub async fn update_settings(
    core: &Core,
    actor: &Actor,
    update: SettingsUpdate,
) -> Result<Settings> {
    actor.require_admin()?;
    let mut s = settings::load(&core.db).await?;
    if let Some(v) = update.allow_guest_access {
        s.allow_guest_access = v;
    }
    if let Some(v) = update.default_model {
        s.default_model = match v {
            Some(m) => Some(validate::name("default_model", &m)?),
            None => None,
        };
    }
    if let Some(v) = update.instance_name {
        s.instance_name = validate::name("instance_name", &v)?;
    }
    if let Some(v) = update.token_ttl_minutes {
        if !TOKEN_TTL_MINUTES.contains(&v) {
            return Err(Error::invalid(
                "token_ttl_minutes",
                format!(
                    "must be between {} and {}",
                    TOKEN_TTL_MINUTES.start(),
                    TOKEN_TTL_MINUTES.end()
                ),
            ));
        }
        s.token_ttl_minutes = v;
    }
    if let Some(v) = update.allow_python_scorers {
        s.allow_python_scorers = v;
    }
    if let Some(v) = update.allow_private_webhook_targets {
        s.allow_private_webhook_targets = v;
    }
    settings::save(&core.db, &s).await?;
    tracing::info!(
        allow_guest_access = s.allow_guest_access,
        allow_python_scorers = s.allow_python_scorers,
        allow_private_webhook_targets = s.allow_private_webhook_targets,
        "settings updated"
    );
    Ok(s)
}

pub async fn get_stats(core: &Core, actor: &Actor) -> Result<Stats> {
    actor.require_admin()?;
    let t = stats::totals(&core.db).await?;
    let runs = stats::run_counts(&core.db).await?;
    let (hits, misses) = super::store::cache::counters(&core.db).await?;
    let lookups = hits + misses;
    Ok(Stats {
        users: t.users,
        projects: t.projects,
        experiments: t.experiments,
        cache_hits: hits,
        cache_misses: misses,
        cache_hit_rate: (lookups > 0).then(|| hits as f64 / lookups as f64),
        runs,
        cache_entries: t.cache_entries,
        tokens_in: t.tokens_in,
        tokens_out: t.tokens_out,
        cost_estimate: t.cost_estimate,
        active_api_keys: t.active_api_keys,
        database: core.db.kind().as_str().to_owned(),
        version: crate::VERSION.to_owned(),
        uptime_seconds: core.started_at.elapsed().as_secs(),
    })
}

pub async fn list_users(core: &Core, actor: &Actor) -> Result<Vec<User>> {
    actor.require_admin()?;
    Ok(users::list(&core.db)
        .await?
        .iter()
        .map(users::UserRow::to_user)
        .collect())
}

pub async fn create_user(core: &Core, actor: &Actor, new: NewUser) -> Result<User> {
    actor.require_admin()?;
    let username = validate::username(&new.username)?;
    validate::password(&new.password)?;
    let hash = auth::hash_password(&new.password).await?;
    Ok(users::insert(&core.db, &username, &hash, new.role)
        .await?
        .to_user())
}

pub async fn update_user(core: &Core, actor: &Actor, id: Uuid, update: UserUpdate) -> Result<User> {
    actor.require_admin()?;
    let user = users::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if let Some(p) = &update.password {
        validate::password(p)?;
    }
    // The role first: it is the change that can be refused (the last admin is never demoted,
    // checked in the same statement as the write), and a refused request changes nothing.
    if let Some(role) = update.role
        && role != user.role
        && !users::set_role(&core.db, id, role).await?
    {
        return Err(if users::get(&core.db, id).await?.is_some() {
            Error::invalid("role", "the last admin cannot be demoted")
        } else {
            Error::NotFound("user")
        });
    }
    if let Some(p) = &update.password {
        users::set_password(&core.db, id, &auth::hash_password(p).await?).await?;
    }
    Ok(users::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("user"))?
        .to_user())
}

pub async fn delete_user(core: &Core, actor: &Actor, id: Uuid) -> Result<()> {
    actor.require_admin()?;
    users::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if actor.user_id() == Some(id) {
        return Err(Error::invalid("id", "you cannot delete your own account"));
    }
    // The last admin is never deleted: checked in the same statement as the delete.
    if users::delete(&core.db, id).await? {
        return Ok(());
    }
    Err(if users::get(&core.db, id).await?.is_some() {
        Error::invalid("id", "the last admin cannot be deleted")
    } else {
        Error::NotFound("user")
    })
}

/// Sets a user's password from the command line (`promptlooper admin reset-password`); signs
/// the user out everywhere and lifts any lock.
pub async fn reset_password(core: &Core, username: &str, password: &str) -> Result<User> {
    let username = validate::username(username)?;
    validate::password(password)?;
    let user = users::get_by_username(&core.db, &username)
        .await?
        .ok_or(Error::NotFound("user"))?;
    users::set_password(&core.db, user.id, &auth::hash_password(password).await?).await?;
    Ok(user.to_user())
}

pub async fn list_api_keys(core: &Core, actor: &Actor) -> Result<Vec<ApiKey>> {
    actor.require_admin()?;
    api_keys::list(&core.db).await
}

/// Creates a key; the secret is in the answer and nowhere else, ever.
pub async fn create_api_key(core: &Core, actor: &Actor, new: NewApiKey) -> Result<CreatedApiKey> {
    actor.require_admin()?;
    let name = validate::name("name", &new.name)?;
    let Some(creator) = actor.user_id() else {
        return Err(Error::Forbidden(
            "API keys are created by a signed-in admin user",
        ));
    };
    let (key, prefix, hash) = auth::generate_api_key();
    let api_key = api_keys::insert(&core.db, &name, &prefix, &hash, new.role, creator).await?;
    tracing::info!(key_id = %api_key.id, name = %api_key.name, "API key created");
    Ok(CreatedApiKey { key, api_key })
}

pub async fn revoke_api_key(core: &Core, actor: &Actor, id: Uuid) -> Result<()> {
    actor.require_admin()?;
    if api_keys::revoke(&core.db, id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("API key"))
    }
}

/// `GET /api/v1/admin/cache`: the response cache's size, hit rate and entries per model.
pub async fn cache_stats(core: &Core, actor: &Actor) -> Result<crate::types::CacheStats> {
    actor.require_admin()?;
    let mut s = super::store::cache::summary(&core.db).await?;
    let (hits, misses) = super::store::cache::counters(&core.db).await?;
    let lookups = hits + misses;
    s.hits = hits;
    s.misses = misses;
    s.hit_rate = (lookups > 0).then(|| hits as f64 / lookups as f64);
    Ok(s)
}
