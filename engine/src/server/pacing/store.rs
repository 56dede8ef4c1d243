//! The shared pace on PostgreSQL: one `endpoint_pace` row per endpoint, locked for the moment
//! an admission takes, and one `endpoint_flights` row per call in flight.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::bucket::{Bucket, Limits};
use super::now_ms;
use crate::server::error::Result;

pub enum Admission {
    /// The call may go after `wait`; `flight` is its row when the endpoint limits concurrency.
    Go {
        flight: Option<Uuid>,
        wait: Duration,
        throttled: bool,
    },
    /// Every slot of the endpoint is taken.
    Full,
}

#[derive(sqlx::FromRow)]
struct Row {
    requests: f64,
    tokens: f64,
    at_ms: i64,
    learned_rpm: Option<f64>,
    cut_at_ms: i64,
    cut_to_rpm: f64,
    window_start_ms: i64,
    window_calls: i64,
    prev_calls: i64,
    since_ms: i64,
}

/// The endpoint's row, locked until the transaction ends (made first if it is missing), and,
/// when `flights` asks, how many calls are in flight to it.
async fn locked(
    tx: &mut Transaction<'_, Postgres>,
    endpoint: Uuid,
    limits: &Limits,
    flights: Option<Duration>,
) -> Result<(Bucket, i64)> {
    const SELECT: &str = "SELECT requests, tokens, at_ms, learned_rpm, cut_at_ms, cut_to_rpm, \
        window_start_ms, window_calls, prev_calls, since_ms FROM endpoint_pace WHERE endpoint_id = $1 FOR UPDATE";
    let mut row: Option<Row> = sqlx::query_as(SELECT)
        .bind(endpoint)
        .fetch_optional(&mut **tx)
        .await?;
    if row.is_none() {
        let b = Bucket::fresh(limits, now_ms());
        sqlx::query(
            "INSERT INTO endpoint_pace (endpoint_id, requests, tokens, at_ms, window_start_ms, since_ms) \
             VALUES ($1, $2, $3, $4, $4, $4) ON CONFLICT (endpoint_id) DO NOTHING",
        )
        .bind(endpoint)
        .bind(b.requests)
        .bind(b.tokens)
        .bind(b.at_ms)
        .execute(&mut **tx)
        .await?;
        row = sqlx::query_as(SELECT)
            .bind(endpoint)
            .fetch_optional(&mut **tx)
            .await?;
    }
    let r = row.ok_or(crate::Error::NotFound("endpoint"))?;
    // Counted only now, holding the lock: a statement's snapshot is taken when it starts, so
    // counting in the locking statement would miss the flights of the holder it waited for.
    let in_flight = match flights {
        Some(stale) => {
            sqlx::query_scalar(
                "SELECT count(*) FROM endpoint_flights WHERE endpoint_id = $1 \
                 AND started_at > now() - make_interval(secs => $2)",
            )
            .bind(endpoint)
            .bind(stale.as_secs_f64())
            .fetch_one(&mut **tx)
            .await?
        }
        None => 0,
    };
    Ok((
        Bucket {
            requests: r.requests,
            tokens: r.tokens,
            at_ms: r.at_ms,
            learned_rpm: r.learned_rpm,
            cut_at_ms: r.cut_at_ms,
            cut_to_rpm: r.cut_to_rpm,
            window_start_ms: r.window_start_ms,
            window_calls: r.window_calls,
            prev_calls: r.prev_calls,
            since_ms: r.since_ms,
        },
        in_flight,
    ))
}

async fn save(tx: &mut Transaction<'_, Postgres>, endpoint: Uuid, b: &Bucket) -> Result<()> {
    sqlx::query(
        "UPDATE endpoint_pace SET requests = $2, tokens = $3, at_ms = $4, learned_rpm = $5, cut_at_ms = $6, \
         cut_to_rpm = $7, window_start_ms = $8, window_calls = $9, prev_calls = $10 WHERE endpoint_id = $1",
    )
    .bind(endpoint)
    .bind(b.requests)
    .bind(b.tokens)
    .bind(b.at_ms)
    .bind(b.learned_rpm)
    .bind(b.cut_at_ms)
    .bind(b.cut_to_rpm)
    .bind(b.window_start_ms)
    .bind(b.window_calls)
    .bind(b.prev_calls)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Admits one call, or answers `Full` when the endpoint's slots are all taken. `calls` that
/// succeeded since this process last said so are counted either way.
pub async fn admit(
    pool: &PgPool,
    endpoint: Uuid,
    node: &str,
    limits: &Limits,
    (estimate, calls): (f64, i64),
    stale: Duration,
) -> Result<Admission> {
    let mut tx = pool.begin().await?;
    let (mut b, flights) = locked(
        &mut tx,
        endpoint,
        limits,
        limits.max_concurrency.map(|_| stale),
    )
    .await?;
    let now = now_ms();
    b.count(calls, now);
    if limits.max_concurrency.is_some_and(|max| flights >= max) {
        if calls > 0 {
            save(&mut tx, endpoint, &b).await?;
        }
        tx.commit().await?;
        return Ok(Admission::Full);
    }
    let wait = b.take(limits, estimate, now);
    save(&mut tx, endpoint, &b).await?;
    let flight = match limits.max_concurrency {
        Some(_) => {
            let id = Uuid::new_v4();
            sqlx::query(
                "INSERT INTO endpoint_flights (id, endpoint_id, node, started_at) VALUES ($1, $2, $3, now())",
            )
            .bind(id)
            .bind(endpoint)
            .bind(node)
            .execute(&mut *tx)
            .await?;
            Some(id)
        }
        None => None,
    };
    tx.commit().await?;
    Ok(Admission::Go {
        flight,
        wait,
        throttled: b.learned_rpm.is_some(),
    })
}

/// Adds `calls` that succeeded to the count; whether the endpoint is paced lately.
pub async fn flush(pool: &PgPool, endpoint: Uuid, limits: &Limits, calls: i64) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let (mut b, _) = locked(&mut tx, endpoint, limits, None).await?;
    let now = now_ms();
    b.refresh(limits, now);
    b.count(calls, now);
    save(&mut tx, endpoint, &b).await?;
    tx.commit().await?;
    Ok(b.learned_rpm.is_some())
}

/// A call sent at `sent_ms` was answered 429 (asking to wait `retry_after`): the endpoint's
/// rate falls for every process.
pub async fn throttled(
    pool: &PgPool,
    endpoint: Uuid,
    limits: &Limits,
    (sent_ms, retry_after): (i64, Option<Duration>),
    calls: i64,
) -> Result<Option<f64>> {
    let mut tx = pool.begin().await?;
    let (mut b, _) = locked(&mut tx, endpoint, limits, None).await?;
    let now = now_ms();
    b.count(calls, now);
    let to = b.throttled(limits, sent_ms, now, retry_after);
    save(&mut tx, endpoint, &b).await?;
    tx.commit().await?;
    Ok(to)
}

/// Gives back (or owes) the difference between a call's estimated and used tokens.
pub async fn settle(pool: &PgPool, endpoint: Uuid, tokens: f64) -> Result<()> {
    sqlx::query("UPDATE endpoint_pace SET tokens = tokens + $2 WHERE endpoint_id = $1")
        .bind(endpoint)
        .bind(tokens)
        .execute(pool)
        .await?;
    Ok(())
}

/// A call in flight has landed.
pub async fn land(pool: &PgPool, flight: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM endpoint_flights WHERE id = $1")
        .bind(flight)
        .execute(pool)
        .await?;
    Ok(())
}

/// Forgets the flights of processes found dead.
pub async fn forget_nodes(pool: &PgPool, dead: &[String]) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM endpoint_flights WHERE node = ANY($1)")
            .bind(dead)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
