//! LLM endpoint operations: create, update, delete, list, test; and the registry that turns an
//! endpoint row into a ready provider (API key decrypted in memory only, per-endpoint
//! concurrency limit).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::pacing::{Limits, Pace};
use super::providers::{self, EndpointAccess, Provider, simulated::SimulatedOptions};
use super::store::cache::CachedResponse;
use super::store::endpoints::{self as store, EndpointFields, EndpointRow};
use crate::types::{Endpoint, EndpointKind, EndpointTest, EndpointUpdate, NewEndpoint};
use crate::validate;

pub const DEFAULT_TIMEOUT_MS: i64 = 60_000;
const TIMEOUT_RANGE: std::ops::RangeInclusive<i64> = 100..=600_000;
const CONCURRENCY_RANGE: std::ops::RangeInclusive<i64> = 1..=1024;
const RPM_RANGE: std::ops::RangeInclusive<i64> = 1..=1_000_000;
const TPM_RANGE: std::ops::RangeInclusive<i64> = 100..=1_000_000_000;

/// Built providers, rebuilt when their endpoint changes.
pub struct ProviderRegistry {
    /// Built on first use: a server that never calls an endpoint never loads TLS roots.
    http: std::sync::OnceLock<reqwest::Client>,
    entries: RwLock<HashMap<Uuid, Entry>>,
}

#[derive(Clone)]
struct Entry {
    updated_at: DateTime<Utc>,
    ready: Ready,
}

/// A provider ready to call, with its endpoint's limits.
#[derive(Clone)]
pub struct Ready {
    pub provider: Arc<dyn Provider>,
    /// The endpoint's limits, shared by every process: each attempt at a call is admitted by it.
    pub pace: Arc<Pace>,
    /// The endpoint's name, as metrics label its calls.
    pub name: Arc<str>,
}

/// What a chat request is expected to cost in tokens before it is sent: its text, and the
/// answer it allows (256 when it sets no `max_tokens`). The call settles the difference.
fn estimate(request: &super::providers::ChatRequest) -> f64 {
    let input: i64 = request
        .messages
        .iter()
        .map(|m| providers::estimate_tokens(&m.content))
        .sum();
    (input + i64::from(request.params.max_tokens.unwrap_or(256))) as f64
}

impl Ready {
    /// One chat call, each attempt admitted by the endpoint's pace, retried by `policy`, timed,
    /// and answered as the response cache keeps answers (`Err` inside: the call failed after
    /// its retries).
    pub async fn call(
        &self,
        policy: &super::providers::retry::RetryPolicy,
        request: &super::providers::ChatRequest,
    ) -> Result<std::result::Result<CachedResponse, super::providers::ProviderError>> {
        let started = std::time::Instant::now();
        // Only a `tpm` limit needs the estimate: no per-call text scan for the rest.
        let cost = if self.pace.counts_tokens() {
            estimate(request)
        } else {
            0.0
        };
        let (result, _attempts) = policy
            .run(|| {
                self.pace.attempt(
                    cost,
                    |r: &super::providers::ChatResponse| r.tokens_in + r.tokens_out,
                    || self.provider.chat(request),
                )
            })
            .await;
        super::telemetry::llm_call(
            &self.name,
            &request.model,
            result.as_ref().map(|r| (r.tokens_in, r.tokens_out)).ok(),
            started.elapsed(),
        );
        Ok(result.map(|r| CachedResponse {
            response: r.content,
            model: request.model.clone(),
            tokens_in: r.tokens_in,
            tokens_out: r.tokens_out,
            latency_ms: started.elapsed().as_millis() as i64,
            finish_reason: r.finish_reason,
            usage_estimated: r.usage_estimated,
        }))
    }
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderRegistry")
    }
}

impl Default for ProviderRegistry {
    fn default() -> Self {
        ProviderRegistry::new()
    }
}

impl ProviderRegistry {
    pub fn new() -> Self {
        ProviderRegistry {
            http: std::sync::OnceLock::new(),
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn http(&self) -> reqwest::Client {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    // Never follow redirects: a key header (x-api-key) would go along.
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_max_idle_per_host(64)
                    .connect_timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default()
            })
            .clone()
    }

    /// The provider for `row`, built (and its key decrypted) only when the row changed.
    pub fn get(&self, core: &Core, row: &EndpointRow) -> Result<Ready> {
        if let Some(e) = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&row.id)
            && e.updated_at == row.updated_at
        {
            return Ok(e.ready.clone());
        }
        let provider = providers::build(access(core, row)?, self.http())
            .map_err(|e| Error::invalid("options", e.message))?;
        let ready = Ready {
            provider,
            pace: Arc::new(Pace::new(&core.db, core.node.clone(), row)),
            name: row.name.as_str().into(),
        };
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                row.id,
                Entry {
                    updated_at: row.updated_at,
                    ready: ready.clone(),
                },
            );
        Ok(ready)
    }

    pub fn forget(&self, id: Uuid) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

fn access(core: &Core, row: &EndpointRow) -> Result<EndpointAccess> {
    let api_key = row
        .api_key_enc
        .as_deref()
        .map(|sealed| core.secrets.open(sealed))
        .transpose()?;
    Ok(EndpointAccess {
        kind: row.kind,
        base_url: row.base_url.clone(),
        api_key,
        options: row.options.0.clone(),
        timeout: Duration::from_millis(row.timeout_ms.max(1) as u64),
    })
}

/// `sk-…abcd`: enough to recognise a key, never enough to use it.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    // Short keys show at most their last two characters.
    if chars.len() < 20 {
        let tail: String = chars[chars.len().saturating_sub(2)..].iter().collect();
        return format!("…{tail}");
    }
    let head: String = match key.find('-') {
        Some(i) if i <= 3 => key[..=i].to_owned(),
        _ => chars[..3].iter().collect(),
    };
    format!(
        "{head}…{}",
        chars[chars.len() - 4..].iter().collect::<String>()
    )
}

pub async fn list_endpoints(core: &Core, _actor: &Actor) -> Result<Vec<Endpoint>> {
    Ok(store::list(&core.db)
        .await?
        .iter()
        .map(EndpointRow::to_endpoint)
        .collect())
}

pub async fn get_endpoint(core: &Core, _actor: &Actor, id: Uuid) -> Result<Endpoint> {
    Ok(store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("endpoint"))?
        .to_endpoint())
}

/// Checks everything about an endpoint before it is written.
fn check(
    kind: EndpointKind,
    base_url: &str,
    options: &Value,
    timeout_ms: i64,
    limits: &Limits,
) -> Result<()> {
    match kind {
        EndpointKind::Simulated => {
            let parsed: SimulatedOptions = serde_json::from_value(options.clone())
                .map_err(|e| Error::invalid("options", format!("simulated options: {e}")))?;
            parsed
                .validate()
                .map_err(|e| Error::invalid("options", e))?;
        }
        EndpointKind::Openai | EndpointKind::Anthropic => {
            let url = url::Url::parse(base_url)
                .map_err(|e| Error::invalid("base_url", format!("must be an http(s) URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(Error::invalid("base_url", "must be an http(s) URL"));
            }
            if url.password().is_some() || !url.username().is_empty() {
                return Err(Error::invalid(
                    "base_url",
                    "must not contain credentials; use api_key",
                ));
            }
            if !options.as_object().is_some_and(|o| o.is_empty()) {
                return Err(Error::invalid(
                    "options",
                    "only simulated endpoints take options",
                ));
            }
        }
    }
    if !TIMEOUT_RANGE.contains(&timeout_ms) {
        return Err(Error::invalid(
            "timeout_ms",
            "must be between 100 and 600000",
        ));
    }
    for (field, value, range, words) in [
        (
            "max_concurrency",
            limits.max_concurrency,
            CONCURRENCY_RANGE,
            "1 and 1024",
        ),
        ("rpm", limits.rpm, RPM_RANGE, "1 and 1000000"),
        ("tpm", limits.tpm, TPM_RANGE, "100 and 1000000000"),
    ] {
        if value.is_some_and(|n| !range.contains(&n)) {
            return Err(Error::invalid(field, format!("must be between {words}")));
        }
    }
    Ok(())
}

fn check_key(key: &str) -> Result<()> {
    if key.trim().is_empty() || key.len() > 4096 || key.chars().any(char::is_control) {
        return Err(Error::invalid(
            "api_key",
            "must be 1 to 4096 printable characters",
        ));
    }
    Ok(())
}

pub async fn create_endpoint(core: &Core, actor: &Actor, new: NewEndpoint) -> Result<Endpoint> {
    actor.require_admin()?;
    let name = validate::name("name", &new.name)?;
    let options = new.options.unwrap_or_else(|| json!({}));
    let base_url = new.base_url.trim().to_owned();
    let timeout_ms = new.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    let limits = Limits {
        max_concurrency: new.max_concurrency,
        rpm: new.rpm,
        tpm: new.tpm,
    };
    check(new.kind, &base_url, &options, timeout_ms, &limits)?;
    let (sealed, hint) = match new.api_key.as_deref() {
        Some(key) => {
            check_key(key)?;
            (Some(core.secrets.seal(key)?), Some(mask_key(key)))
        }
        None => (None, None),
    };
    let row = store::insert(
        &core.db,
        &EndpointFields {
            name: &name,
            kind: new.kind,
            base_url: &base_url,
            api_key_enc: sealed.as_deref(),
            api_key_hint: hint.as_deref(),
            options: &options,
            limits,
            timeout_ms,
        },
    )
    .await?;
    tracing::info!(endpoint = %row.name, kind = row.kind.as_str(), "endpoint created");
    Ok(row.to_endpoint())
}

pub async fn update_endpoint(
    core: &Core,
    actor: &Actor,
    id: Uuid,
    update: EndpointUpdate,
) -> Result<Endpoint> {
    actor.require_admin()?;
    let row = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("endpoint"))?;
    let name = match &update.name {
        Some(n) => validate::name("name", n)?,
        None => row.name.clone(),
    };
    let base_url = update
        .base_url
        .map(|u| u.trim().to_owned())
        .unwrap_or(row.base_url.clone());
    let options = update.options.unwrap_or(row.options.0.clone());
    let timeout_ms = update.timeout_ms.unwrap_or(row.timeout_ms);
    let limits = Limits {
        max_concurrency: update.max_concurrency.unwrap_or(row.max_concurrency),
        rpm: update.rpm.unwrap_or(row.rpm),
        tpm: update.tpm.unwrap_or(row.tpm),
    };
    check(row.kind, &base_url, &options, timeout_ms, &limits)?;
    // A stored key only ever goes to the origin it was entered for.
    let origin = |u: &str| {
        url::Url::parse(u).ok().map(|u| {
            (
                u.scheme().to_owned(),
                u.host_str().map(str::to_owned),
                u.port_or_known_default(),
            )
        })
    };
    if update.api_key.is_none()
        && row.api_key_enc.is_some()
        && origin(&base_url) != origin(&row.base_url)
    {
        return Err(Error::invalid(
            "api_key",
            "changing the endpoint's scheme, host or port requires entering the API key again (or api_key: null)",
        ));
    }
    let (sealed, hint) = match update.api_key {
        None => (row.api_key_enc.clone(), row.api_key_hint.clone()),
        Some(None) => (None, None),
        Some(Some(key)) => {
            check_key(&key)?;
            (Some(core.secrets.seal(&key)?), Some(mask_key(&key)))
        }
    };
    store::update(
        &core.db,
        id,
        &EndpointFields {
            name: &name,
            kind: row.kind,
            base_url: &base_url,
            api_key_enc: sealed.as_deref(),
            api_key_hint: hint.as_deref(),
            options: &options,
            limits,
            timeout_ms,
        },
    )
    .await?;
    core.providers.forget(id);
    Ok(store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("endpoint"))?
        .to_endpoint())
}

/// Deletes an endpoint; refused while an experiment's stage uses it.
pub async fn delete_endpoint(core: &Core, actor: &Actor, id: Uuid) -> Result<()> {
    actor.require_admin()?;
    let users = super::store::experiments::names_using_endpoint(&core.db, id).await?;
    if !users.is_empty() {
        return Err(Error::conflict(
            "id",
            format!(
                "the endpoint is used by experiment(s): {}",
                users.join(", ")
            ),
        ));
    }
    if !store::delete(&core.db, id).await? {
        return Err(Error::NotFound("endpoint"));
    }
    core.providers.forget(id);
    Ok(())
}

/// Connects to the endpoint and lists its models. Failures are reported in the answer, not as
/// an error: the test itself worked.
pub async fn test_endpoint(core: &Core, actor: &Actor, id: Uuid) -> Result<EndpointTest> {
    actor.require_write()?;
    probe(core, id).await
}

/// The models an endpoint offers, for model pickers (anyone who may read). A failure to reach
/// the endpoint is reported in the answer (`ok: false`, `error`), not as an error.
pub async fn list_models(core: &Core, _actor: &Actor, id: Uuid) -> Result<EndpointTest> {
    probe(core, id).await
}

async fn probe(core: &Core, id: Uuid) -> Result<EndpointTest> {
    let row = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("endpoint"))?;
    let ready = core.providers.get(core, &row)?;
    let started = Instant::now();
    let result = ready.provider.list_models().await;
    let latency_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    Ok(match result {
        Ok(models) => EndpointTest {
            ok: true,
            latency_ms,
            models,
            error: None,
        },
        Err(e) => EndpointTest {
            ok: false,
            latency_ms,
            models: Vec::new(),
            error: Some(e.message),
        },
    })
}

/// Adds the endpoint named by `DEFAULT_ENDPOINT_URL` (and its key) once, as "Default".
pub async fn seed_default_endpoint(core: &Core, url: &str, key: Option<&str>) -> Result<()> {
    if store::list(&core.db)
        .await?
        .iter()
        .any(|e| e.base_url == url)
    {
        return Ok(());
    }
    let name = if store::get_by_name(&core.db, "Default").await?.is_some() {
        "Default (environment)"
    } else {
        "Default"
    };
    check(
        EndpointKind::Openai,
        url,
        &json!({}),
        DEFAULT_TIMEOUT_MS,
        &Limits::default(),
    )?;
    let (sealed, hint) = match key {
        Some(k) => (Some(core.secrets.seal(k)?), Some(mask_key(k))),
        None => (None, None),
    };
    store::insert(
        &core.db,
        &EndpointFields {
            name,
            kind: EndpointKind::Openai,
            base_url: url,
            api_key_enc: sealed.as_deref(),
            api_key_hint: hint.as_deref(),
            options: &json!({}),
            limits: Limits::default(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        },
    )
    .await?;
    tracing::info!("added the endpoint from DEFAULT_ENDPOINT_URL");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked() {
        assert_eq!(mask_key("sk-proj-abcdefghijklmnop1234"), "sk-…1234");
        assert_eq!(mask_key("abcdefghijklmnopqrstuvwxyz"), "abc…wxyz");
        assert_eq!(mask_key("short"), "…rt");
        assert_eq!(
            mask_key("sk-0123456789ab"),
            "…ab",
            "short keys reveal almost nothing"
        );
    }
}
