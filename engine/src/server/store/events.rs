//! The `events` table: the persisted activity timeline.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::Event;

/// An event about to be recorded.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event_type: &'static str,
    pub experiment_id: Option<Uuid>,
    pub sweep_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub payload: Value,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    event_type: String,
    experiment_id: Option<Uuid>,
    sweep_id: Option<Uuid>,
    run_id: Option<Uuid>,
    payload: Json<Value>,
    created_at: DateTime<Utc>,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: r.id,
            event_type: r.event_type,
            experiment_id: r.experiment_id,
            sweep_id: r.sweep_id,
            run_id: r.run_id,
            payload: r.payload.0,
            created_at: r.created_at,
        }
    }
}

/// Inserts events in one transaction.
pub async fn insert(db: &Db, events: &[NewEvent]) -> Result<Vec<Event>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_db!(db, p => {
        let mut tx = p.begin().await?;
        let out: Vec<Event> = super::bulk::insert_events(&mut *tx, events).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(out)
    })?)
}

/// Which events to list.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub experiment_id: Option<Uuid>,
    pub sweep_id: Option<Uuid>,
    /// Comma-separated event types (validated by the caller).
    pub types: Option<String>,
    /// Only events after this id, oldest first (for catching up); otherwise newest first.
    pub after: Option<i64>,
}

const COLUMNS: &str =
    "SELECT id, event_type, experiment_id, sweep_id, run_id, payload, created_at FROM events ";
const WHERE: &str = "WHERE ($1 IS NULL OR experiment_id = $1) AND ($2 IS NULL OR sweep_id = $2) \
     AND (CAST($3 AS TEXT) IS NULL OR ',' || CAST($3 AS TEXT) || ',' LIKE '%,' || event_type || ',%') AND ($4 IS NULL OR id > $4) ";

pub async fn list(db: &Db, f: &EventFilter, limit: i64, offset: i64) -> Result<(Vec<Event>, i64)> {
    let order = if f.after.is_some() {
        "ORDER BY id ASC LIMIT $5 OFFSET $6"
    } else {
        "ORDER BY id DESC LIMIT $5 OFFSET $6"
    };
    let sql = format!("{COLUMNS}{WHERE}{order}");
    let rows = on_db!(db, p => sqlx::query_as::<_, EventRow>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(f.experiment_id).bind(f.sweep_id).bind(f.types.as_deref()).bind(f.after)
        .bind(limit).bind(offset).fetch_all(p).await)?;
    let count = format!("SELECT COUNT(*) FROM events {WHERE}");
    let total: i64 = on_db!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(count.clone()))
        .bind(f.experiment_id).bind(f.sweep_id).bind(f.types.as_deref()).bind(f.after)
        .fetch_one(p).await)?;
    Ok((rows.into_iter().map(Event::from).collect(), total))
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Event>> {
    let sql = format!("{COLUMNS}WHERE id = $1");
    let row = on_db!(db, p => sqlx::query_as::<_, EventRow>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id).fetch_optional(p).await)?;
    Ok(row.map(Event::from))
}
