//! The event hub: every event is persisted (the activity timeline), then published to this
//! process's live streams and, on PostgreSQL, to every other process through `LISTEN/NOTIFY`.

use std::sync::Arc;

use tokio::sync::broadcast;
use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::store::events::{self as store, EventFilter, NewEvent};
use super::store::{Db, experiments};
use crate::types::{EVENT_TYPES, Event, EventPage};
use crate::validate;

/// The PostgreSQL channel events travel on between processes.
pub const CHANNEL: &str = "promptlooper_events";
/// The longest payload of one `NOTIFY` (PostgreSQL allows just under 8000 bytes).
const NOTIFY_MAX: usize = 7000;
pub const PAGE_MAX: i64 = 1000;

/// Live subscribers of this process.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        Hub {
            tx: broadcast::channel(8192).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Live subscribers (event streams served now).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    pub fn publish(&self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            // No subscribers is fine: the timeline has it.
            let _ = self.tx.send(Arc::new(e));
        }
    }
}

/// The `NOTIFY` payloads carrying `events` to other processes (each under the size limit).
pub fn notify_payloads(origin: &str, events: &[Event]) -> Vec<String> {
    let mut out = Vec::new();
    let mut batch: Vec<&Event> = Vec::new();
    let mut size = 0;
    for e in events {
        let len = serde_json::to_string(e).map_or(0, |s| s.len());
        if !batch.is_empty() && size + len > NOTIFY_MAX {
            out.push(serde_json::json!({"origin": origin, "events": batch}).to_string());
            batch.clear();
            size = 0;
        }
        if len > NOTIFY_MAX {
            tracing::warn!(
                event = e.id,
                "an event is too large to notify; other processes see it in the timeline"
            );
            continue;
        }
        batch.push(e);
        size += len;
    }
    if !batch.is_empty() {
        out.push(serde_json::json!({"origin": origin, "events": batch}).to_string());
    }
    out
}

/// Sends `NOTIFY`s for events already committed (PostgreSQL only).
pub async fn notify(db: &Db, origin: &str, events: &[Event]) {
    let Db::Postgres(pool) = db else { return };
    for payload in notify_payloads(origin, events) {
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(pool)
            .await
        {
            tracing::warn!(error = %e, "could not notify other processes of events");
        }
    }
}

/// Records events and publishes them everywhere.
pub async fn emit(core: &Core, events: Vec<NewEvent>) -> Result<Vec<Event>> {
    let stored = store::insert(&core.db, &events).await?;
    publish(core, stored.clone()).await;
    Ok(stored)
}

/// Publishes events already recorded: to other processes, then to this one's streams.
pub async fn publish(core: &Core, stored: Vec<Event>) {
    notify(&core.db, &core.node, &stored).await;
    core.hub.publish(stored);
}

/// Like [`emit`], for events whose loss is logged rather than failing the caller.
pub async fn emit_logged(core: &Core, events: Vec<NewEvent>) {
    if let Err(e) = emit(core, events).await {
        tracing::error!(error = %e, "could not record events");
    }
}

/// Relays other processes' events (PostgreSQL `LISTEN`) to this process's hub, until the
/// process ends. Reconnects after errors.
pub async fn listen(core: Core) {
    let Db::Postgres(pool) = &core.db else { return };
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "event listener could not connect; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "event listener could not LISTEN; retrying");
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(n) => {
                    #[derive(serde::Deserialize)]
                    struct Note {
                        origin: String,
                        events: Vec<Event>,
                    }
                    match serde_json::from_str::<Note>(n.payload()) {
                        Ok(note) if note.origin != *core.node => core.hub.publish(note.events),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "unreadable event notification"),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}

/// Checks a comma-separated list of event types.
pub fn parse_types(types: Option<&str>) -> Result<Option<String>> {
    let Some(types) = types.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut list = Vec::new();
    for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !EVENT_TYPES.contains(&t) {
            return Err(Error::invalid(
                "type",
                format!(
                    "unknown event type {t:?}; known: {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        list.push(t);
    }
    Ok((!list.is_empty()).then(|| list.join(",")))
}

/// `GET /api/v1/events` and `GET /api/v1/experiments/{id}/events`.
pub async fn list_events(
    core: &Core,
    _actor: &Actor,
    experiment_id: Option<Uuid>,
    types: Option<&str>,
    after: Option<i64>,
    limit: i64,
    offset: i64,
) -> Result<EventPage> {
    if let Some(id) = experiment_id
        && experiments::get(&core.db, id).await?.is_none()
    {
        return Err(Error::NotFound("experiment"));
    }
    validate::page(limit, offset, PAGE_MAX)?;
    let filter = EventFilter {
        experiment_id,
        sweep_id: None,
        types: parse_types(types)?,
        after,
    };
    let (events, total) = store::list(&core.db, &filter, limit, offset).await?;
    Ok(EventPage { events, total })
}

/// Whether a live event passes a stream's filter.
pub fn matches(e: &Event, experiment_id: Option<Uuid>, types: Option<&str>) -> bool {
    experiment_id.is_none_or(|id| e.experiment_id == Some(id))
        && types.is_none_or(|t| t.split(',').any(|t| t == e.event_type))
}

/// The longest `reason` of a request for a person, in characters.
pub const REASON_MAX: usize = 2000;
/// The largest `context` of a request for a person, serialized, in bytes.
pub const CONTEXT_MAX: usize = 64 * 1024;

/// `POST /api/v1/experiments/{id}/human-needed` and MCP's `request_human`: asks a person to
/// look (a `human_needed` event on the experiment's timeline, its live views and webhooks).
pub async fn request_human(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    r: crate::types::HumanNeeded,
) -> Result<Event> {
    actor.require_write()?;
    let reason = r.reason.trim();
    if reason.is_empty() {
        return Err(Error::invalid("reason", "say what a person should look at"));
    }
    if reason.chars().count() > REASON_MAX {
        return Err(Error::invalid(
            "reason",
            format!("at most {REASON_MAX} characters"),
        ));
    }
    let context = r.context.unwrap_or(serde_json::Value::Null);
    if serde_json::to_vec(&context).map_or(0, |v| v.len()) > CONTEXT_MAX {
        return Err(Error::invalid(
            "context",
            format!("at most {} KB as JSON", CONTEXT_MAX / 1024),
        ));
    }
    if experiments::get(&core.db, experiment_id).await?.is_none() {
        return Err(Error::NotFound("experiment"));
    }
    let by = actor.user.as_ref().map(|u| u.username.clone());
    let mut stored = emit(
        core,
        vec![NewEvent {
            event_type: "human_needed",
            experiment_id: Some(experiment_id),
            sweep_id: None,
            run_id: None,
            payload: serde_json::json!({
                "reason": reason,
                "context": context,
                "requested_by": by,
                "via": actor.via.as_str(),
            }),
        }],
    )
    .await?;
    stored
        .pop()
        .ok_or_else(|| Error::Internal("the event was not stored".into()))
}
