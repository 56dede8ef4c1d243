//! The `webhooks`, `webhook_deliveries` (the outbox; rows are written with the events, see
//! `bulk::insert_events`) and `webhook_attempts` tables.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::WebhookDelivery;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub name: String,
    pub url: String,
    /// Sealed (`Secrets::seal`).
    pub secret: String,
    /// Sealed JSON object of header name → value.
    pub headers: Option<String>,
    /// JSON array of the header names.
    pub header_names: String,
    /// `*` or `,type,type,`.
    pub events: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const WEBHOOK_COLUMNS: &str = "SELECT id, name, url, secret, headers, header_names, events, enabled, \
     disabled_reason, failing_since, created_by, created_at, updated_at FROM webhooks ";

pub async fn insert(db: &Db, w: &WebhookRow) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO webhooks (id, name, url, secret, headers, header_names, events, enabled, \
         disabled_reason, failing_since, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
        .bind(w.id).bind(&w.name).bind(&w.url).bind(&w.secret).bind(&w.headers)
        .bind(&w.header_names).bind(&w.events).bind(w.enabled).bind(&w.disabled_reason)
        .bind(w.failing_since).bind(w.created_by).bind(w.created_at).bind(w.updated_at)
        .execute(p).await.map(|_| ()))?;
    Ok(())
}

/// Writes every field but the id, creator and creation time.
pub async fn update(db: &Db, w: &WebhookRow) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query(
        "UPDATE webhooks SET name = $2, url = $3, secret = $4, headers = $5, header_names = $6, \
         events = $7, enabled = $8, disabled_reason = $9, failing_since = $10, updated_at = $11 \
         WHERE id = $1")
        .bind(w.id).bind(&w.name).bind(&w.url).bind(&w.secret).bind(&w.headers)
        .bind(&w.header_names).bind(&w.events).bind(w.enabled).bind(&w.disabled_reason)
        .bind(w.failing_since).bind(w.updated_at)
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<WebhookRow>> {
    let sql = format!("{WEBHOOK_COLUMNS}WHERE id = $1");
    Ok(
        on_db!(db, p => sqlx::query_as::<_, WebhookRow>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id).fetch_optional(p).await)?,
    )
}

pub async fn list(db: &Db) -> Result<Vec<WebhookRow>> {
    let sql = format!("{WEBHOOK_COLUMNS}ORDER BY created_at, id");
    Ok(
        on_db!(db, p => sqlx::query_as::<_, WebhookRow>(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_all(p).await)?,
    )
}

pub async fn delete(db: &Db, id: Uuid) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: i64,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub body: Option<String>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl DeliveryRow {
    pub fn to_delivery(&self) -> WebhookDelivery {
        WebhookDelivery {
            id: self.id,
            webhook_id: self.webhook_id,
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            status: self.status.clone(),
            attempts: self.attempts,
            next_attempt_at: (self.status == "pending").then_some(self.next_attempt_at),
            last_status: self.last_status,
            last_error: self.last_error.clone(),
            last_latency_ms: self.last_latency_ms,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
        }
    }
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, status, attempts, next_attempt_at, \
     body, last_status, last_error, last_latency_ms, created_at, delivered_at";

/// A webhook's deliveries, newest first, and how many it has.
pub async fn deliveries(
    db: &Db,
    webhook_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DeliveryRow>, i64)> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 \
         ORDER BY created_at DESC, event_id DESC LIMIT $2 OFFSET $3"
    );
    let rows = on_db!(db, p => sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(webhook_id).bind(limit).bind(offset).fetch_all(p).await)?;
    let total: i64 = on_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1")
        .bind(webhook_id).fetch_one(p).await)?;
    Ok((rows, total))
}

/// Deliveries waiting per webhook.
pub async fn pending_counts(db: &Db) -> Result<Vec<(Uuid, i64)>> {
    Ok(on_db!(db, p => sqlx::query_as(
        "SELECT webhook_id, COUNT(*) FROM webhook_deliveries WHERE status = 'pending' GROUP BY webhook_id")
        .fetch_all(p).await)?)
}

/// Claims up to `limit` due deliveries for `owner` until `until` (one process sends each).
pub async fn claim(
    db: &Db,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    let pick = "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $3 \
         AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_attempt_at, event_id LIMIT $4";
    let sql = match db {
        Db::Sqlite(_) => format!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 WHERE id IN ({pick}) \
             RETURNING {DELIVERY_COLUMNS}"
        ),
        Db::Postgres(_) => format!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 WHERE id IN ({pick} \
             FOR UPDATE SKIP LOCKED) RETURNING {DELIVERY_COLUMNS}"
        ),
    };
    Ok(
        on_db!(db, p => sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(owner).bind(until).bind(now).bind(limit).fetch_all(p).await)?,
    )
}

/// Keeps the body first sent (retries send the same bytes).
pub async fn set_body(db: &Db, id: Uuid, body: &str) -> Result<()> {
    on_db!(db, p => sqlx::query("UPDATE webhook_deliveries SET body = $2 WHERE id = $1 AND body IS NULL")
        .bind(id).bind(body).execute(p).await.map(|_| ()))?;
    Ok(())
}

/// One attempt's outcome and what follows from it.
pub struct Attempt<'a> {
    pub delivery_id: Uuid,
    pub webhook_id: Uuid,
    pub owner: &'a str,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: f64,
    pub at: DateTime<Utc>,
    /// delivered, pending (retry at `next_attempt_at`) or failed.
    pub status: &'static str,
    pub next_attempt_at: DateTime<Utc>,
    /// Turn the webhook off with this reason (failing for a day).
    pub disable: Option<String>,
}

/// Records an attempt (only while this process still holds the delivery's lease) with the
/// delivery's new state and the webhook's failure record, in one transaction.
pub async fn record(db: &Db, a: &Attempt<'_>) -> Result<bool> {
    let delivered_at = (a.status == "delivered").then_some(a.at);
    let ok = a.status == "delivered";
    Ok(on_db!(db, p => {
        let mut tx = p.begin().await?;
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, attempts = $4, next_attempt_at = $5, \
             last_status = $6, last_error = $7, last_latency_ms = $8, delivered_at = $9, \
             lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(a.delivery_id).bind(a.owner).bind(a.status).bind(a.attempt)
            .bind(a.next_attempt_at).bind(a.status_code).bind(&a.error).bind(a.latency_ms)
            .bind(delivered_at)
            .execute(&mut *tx).await?.rows_affected();
        if n == 1 {
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, latency_ms, at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id, attempt) DO NOTHING")
                .bind(a.delivery_id).bind(a.attempt).bind(a.status_code).bind(&a.error)
                .bind(a.latency_ms).bind(a.at)
                .execute(&mut *tx).await?;
            if ok {
                sqlx::query("UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL")
                    .bind(a.webhook_id).execute(&mut *tx).await?;
            } else {
                sqlx::query("UPDATE webhooks SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL")
                    .bind(a.webhook_id).bind(a.at).execute(&mut *tx).await?;
            }
            if let Some(reason) = &a.disable {
                sqlx::query("UPDATE webhooks SET enabled = FALSE, disabled_reason = $2, updated_at = $3 WHERE id = $1 AND enabled")
                    .bind(a.webhook_id).bind(reason).bind(a.at).execute(&mut *tx).await?;
                // What it still had queued will not go out.
                sqlx::query("UPDATE webhook_deliveries SET status = 'failed', last_error = $2, \
                             lease_owner = NULL, lease_until = NULL WHERE webhook_id = $1 AND status = 'pending'")
                    .bind(a.webhook_id).bind(reason).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(n == 1)
    })?)
}

/// Gives up a delivery without an attempt (its webhook is gone or off).
pub async fn abandon(db: &Db, id: Uuid, owner: &str, why: &str) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $3, lease_owner = NULL, \
         lease_until = NULL WHERE id = $1 AND lease_owner = $2")
        .bind(id).bind(owner).bind(why).execute(p).await.map(|_| ()))?;
    Ok(())
}
