//! Webhooks: the operations REST (and the dashboard) call, and Standard Webhooks signing.
//! Deliveries are queued with the events (`store::bulk::insert_events`) and sent by
//! [`deliver::run`], one background task per process.

pub mod deliver;

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::Utc;
use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::outbound;
use super::store::settings;
use super::store::webhooks::{self as store, WebhookRow};
use crate::types::{
    CreatedWebhook, DeliveryPage, NewWebhook, WEBHOOK_EVENTS, Webhook, WebhookUpdate,
};
use crate::validate;

/// Most deliveries a page lists.
pub const PAGE_MAX: i64 = 500;
const MAX_HEADERS: usize = 20;
const MAX_HEADER_BYTES: usize = 8 * 1024;
// Headers a webhook cannot set: the transport's and the signature's (the API document
// states the same list).
use crate::types::schema::RESERVED_WEBHOOK_HEADERS as RESERVED;

/// Whether a webhook's stored subscription (`*` or `,a,b,`) includes `event_type`.
pub fn subscribes(stored: &str, event_type: &str) -> bool {
    stored == "*" || stored.contains(&format!(",{event_type},"))
}

/// `webhook-signature` for a body: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed
/// with the secret's bytes (`whsec_` + base64, as Standard Webhooks defines it).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String> {
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| Error::Internal("a webhook secret is not base64".into()))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key)
        .map_err(|_| Error::Internal("bad webhook key".into()))?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn events_field(events: &[String]) -> Result<String> {
    if events.is_empty() {
        return Ok("*".into());
    }
    let mut list: Vec<&str> = Vec::new();
    for e in events {
        let e = e.trim();
        if !WEBHOOK_EVENTS.contains(&e) {
            return Err(Error::invalid(
                "events",
                format!("unknown event {e:?}; one of {}", WEBHOOK_EVENTS.join(", ")),
            ));
        }
        if !list.contains(&e) {
            list.push(e);
        }
    }
    Ok(format!(",{},", list.join(",")))
}

fn headers_field(
    core: &Core,
    headers: &BTreeMap<String, String>,
) -> Result<(Option<String>, String)> {
    if headers.len() > MAX_HEADERS {
        return Err(Error::invalid(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    let mut bytes = 0;
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(Error::invalid(
                "headers",
                format!("{name:?} is not a valid header name"),
            ));
        }
        if RESERVED.contains(&lower.as_str()) {
            return Err(Error::invalid(
                "headers",
                format!("{name} is set by PromptLooper and cannot be overridden"),
            ));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(Error::invalid(
                "headers",
                format!("the value of {name} has a line break"),
            ));
        }
        bytes += name.len() + value.len();
    }
    if bytes > MAX_HEADER_BYTES {
        return Err(Error::invalid(
            "headers",
            format!("at most {} KB of headers", MAX_HEADER_BYTES / 1024),
        ));
    }
    let names: Vec<&String> = headers.keys().collect();
    let names = serde_json::to_string(&names).map_err(|e| Error::Internal(e.to_string()))?;
    if headers.is_empty() {
        return Ok((None, names));
    }
    let plain = serde_json::to_string(headers).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((Some(core.secrets.seal(&plain)?), names))
}

async fn url_field(core: &Core, raw: &str) -> Result<String> {
    let url = outbound::parse("url", raw)?;
    let allow = settings::load(&core.db)
        .await?
        .allow_private_webhook_targets;
    outbound::check_literal("url", &url, allow)?;
    Ok(url.to_string())
}

/// Webhooks as shown (no secret, no header values), with their queues and last deliveries.
async fn shown(core: &Core, rows: &[WebhookRow]) -> Result<Vec<Webhook>> {
    let pending = store::pending_counts(&core.db).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let n = pending
            .iter()
            .find(|(id, _)| *id == row.id)
            .map_or(0, |(_, n)| *n);
        let (last, _) = store::deliveries(&core.db, row.id, 1, 0).await?;
        out.push(to_webhook(row, n, last.first().map(|d| d.to_delivery())));
    }
    Ok(out)
}

async fn shown_one(core: &Core, row: WebhookRow) -> Result<Webhook> {
    shown(core, std::slice::from_ref(&row))
        .await?
        .pop()
        .ok_or(Error::NotFound("webhook"))
}

fn to_webhook(
    row: &WebhookRow,
    pending: i64,
    last_delivery: Option<crate::types::WebhookDelivery>,
) -> Webhook {
    let all_events = row.events == "*";
    let events = if all_events {
        WEBHOOK_EVENTS.iter().map(|e| (*e).to_owned()).collect()
    } else {
        row.events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Webhook {
        id: row.id,
        name: row.name.clone(),
        url: row.url.clone(),
        events,
        all_events,
        header_names: serde_json::from_str(&row.header_names).unwrap_or_default(),
        enabled: row.enabled,
        disabled_reason: row.disabled_reason.clone(),
        failing_since: row.failing_since,
        pending,
        last_delivery,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// `GET /api/v1/webhooks`: every webhook with its queue and last delivery (members and admins).
pub async fn list_webhooks(core: &Core, actor: &Actor) -> Result<Vec<Webhook>> {
    actor.require_write()?;
    shown(core, &store::list(&core.db).await?).await
}

pub async fn get_webhook(core: &Core, actor: &Actor, id: Uuid) -> Result<Webhook> {
    actor.require_write()?;
    let row = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("webhook"))?;
    shown_one(core, row).await
}

/// `POST /api/v1/webhooks`: the answer carries the signing secret, once.
pub async fn create_webhook(core: &Core, actor: &Actor, new: NewWebhook) -> Result<CreatedWebhook> {
    actor.require_write()?;
    let name = validate::name("name", &new.name)?;
    let url = url_field(core, &new.url).await?;
    let events = events_field(&new.events)?;
    let (headers, header_names) = headers_field(core, &new.headers)?;
    let secret = new_secret();
    let now = Utc::now();
    let row = WebhookRow {
        id: Uuid::new_v4(),
        name,
        url,
        secret: core.secrets.seal(&secret)?,
        headers,
        header_names,
        events,
        enabled: new.enabled,
        disabled_reason: None,
        failing_since: None,
        created_by: actor.user_id(),
        created_at: now,
        updated_at: now,
    };
    store::insert(&core.db, &row).await?;
    tracing::info!(webhook = %row.id, events = %row.events, "webhook created");
    Ok(CreatedWebhook {
        webhook: to_webhook(&row, 0, None),
        secret,
    })
}

/// `PUT /api/v1/webhooks/{id}`.
pub async fn update_webhook(
    core: &Core,
    actor: &Actor,
    id: Uuid,
    u: WebhookUpdate,
) -> Result<Webhook> {
    actor.require_write()?;
    let mut row = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("webhook"))?;
    if let Some(name) = &u.name {
        row.name = validate::name("name", name)?;
    }
    if let Some(url) = &u.url {
        row.url = url_field(core, url).await?;
    }
    if let Some(events) = &u.events {
        row.events = events_field(events)?;
    }
    if let Some(headers) = &u.headers {
        (row.headers, row.header_names) = headers_field(core, headers)?;
    }
    if let Some(enabled) = u.enabled {
        if enabled && !row.enabled {
            row.disabled_reason = None;
            row.failing_since = None;
        }
        row.enabled = enabled;
    }
    row.updated_at = Utc::now();
    if !store::update(&core.db, &row).await? {
        return Err(Error::NotFound("webhook"));
    }
    shown_one(core, row).await
}

/// `DELETE /api/v1/webhooks/{id}`: with its deliveries and their log.
pub async fn delete_webhook(core: &Core, actor: &Actor, id: Uuid) -> Result<()> {
    actor.require_write()?;
    if !store::delete(&core.db, id).await? {
        return Err(Error::NotFound("webhook"));
    }
    Ok(())
}

/// `GET /api/v1/webhooks/{id}/deliveries`, newest first.
pub async fn list_deliveries(
    core: &Core,
    actor: &Actor,
    id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<DeliveryPage> {
    actor.require_write()?;
    validate::page(limit, offset, PAGE_MAX)?;
    if store::get(&core.db, id).await?.is_none() {
        return Err(Error::NotFound("webhook"));
    }
    let (rows, total) = store::deliveries(&core.db, id, limit, offset).await?;
    Ok(DeliveryPage {
        deliveries: rows.iter().map(|r| r.to_delivery()).collect(),
        total,
    })
}

/// `POST /api/v1/webhooks/{id}/test`: sends a signed `webhook.test` now and says how the
/// receiver answered (nothing is queued or retried).
pub async fn test_webhook(
    core: &Core,
    actor: &Actor,
    id: Uuid,
) -> Result<crate::types::WebhookTest> {
    actor.require_write()?;
    let row = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("webhook"))?;
    let body = serde_json::json!({
        "type": "webhook.test",
        "timestamp": Utc::now(),
        "data": {"webhook_id": row.id, "name": row.name},
    })
    .to_string();
    let allow = settings::load(&core.db)
        .await?
        .allow_private_webhook_targets;
    let sent = deliver::send(
        core,
        &row,
        &format!("test_{}", Uuid::new_v4()),
        &body,
        allow,
    )
    .await;
    Ok(crate::types::WebhookTest {
        ok: sent.ok,
        status: sent.status.map(i64::from),
        latency_ms: sent.latency_ms,
        error: sent.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn subscriptions_match_whole_event_types() {
        assert!(subscribes("*", "run.failed"));
        assert!(subscribes(",run.failed,human_needed,", "human_needed"));
        assert!(!subscribes(",run.failed,", "run.fail"));
        assert_eq!(events_field(&[]).unwrap(), "*");
        assert_eq!(
            events_field(&["run.failed".into(), "run.failed".into()]).unwrap(),
            ",run.failed,"
        );
        assert_eq!(
            events_field(&["run.completed".into()]).unwrap_err().field(),
            Some("events")
        );
    }
}
