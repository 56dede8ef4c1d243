//! Many rows in few statements, per backend. SQLite: multi-row statements in chunks. PostgreSQL:
//! one statement per table over `UNNEST` of array parameters — the SQL text never changes, so
//! it is prepared once, and each statement is one round trip whatever the row count. (sqlx
//! 0.9.0 leaves Nagle's algorithm on, which makes every extra statement of a large write cost
//! up to 40 ms.)

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, SqliteConnection};
use uuid::Uuid;

use super::cache::CachedResponse;
use super::events::NewEvent;
use crate::server::exec::StageRecord;
use crate::types::Run;

/// Most rows per multi-row statement on SQLite (well under its bind-parameter limit).
const INSERT_CHUNK: usize = 400;
/// Most bytes of bound text per multi-row statement on SQLite.
const INSERT_BYTES: usize = 1024 * 1024;

/// Splits `items` into runs of at most `INSERT_CHUNK` rows and about `INSERT_BYTES` bytes.
fn chunks_by_size<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    chunks_within(items, size, INSERT_CHUNK, INSERT_BYTES)
}

/// Splits `items` into runs of at most `rows` items and about `max_bytes` bytes (each run
/// holds at least one item).
pub(crate) fn chunks_within<T>(
    items: &[T],
    size: impl Fn(&T) -> usize,
    rows: usize,
    max_bytes: usize,
) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item) + 64;
        if i > start && (i - start >= rows || bytes + n > max_bytes) {
            out.push(&items[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// A planned run to insert: `pending`, or `cached` (ended at `now`, from the cache).
pub(crate) struct PlannedRow<'a> {
    pub run: &'a Run,
    pub seq: i64,
    pub cached: bool,
}

/// A run's final state, applied only if the run is still pending or running (and, with a
/// lease, still leased to that owner).
pub(crate) struct FinalRow<'a> {
    pub run: &'a Run,
    pub lease: Option<&'a str>,
}

pub(crate) trait Bulk {
    async fn insert_runs(
        &mut self,
        rows: &[PlannedRow<'_>],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()>;
    /// Existing (run, stage) rows are left alone.
    async fn insert_stages(
        &mut self,
        rows: &[(Uuid, &StageRecord)],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()>;
    /// Existing keys are left alone.
    async fn insert_cache(
        &mut self,
        rows: &[&(String, CachedResponse)],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()>;
    /// Returns the ids of the runs that were updated.
    async fn finish_runs(&mut self, rows: &[FinalRow<'_>]) -> sqlx::Result<Vec<Uuid>>;
    /// Returns the new events' ids, in the order of `events`.
    async fn insert_events(
        &mut self,
        events: &[NewEvent],
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<i64>>;
    /// The enabled webhooks: (id, subscribed events as stored).
    async fn enabled_webhooks(&mut self) -> sqlx::Result<Vec<(Uuid, String)>>;
    /// Outbox rows: (delivery id, webhook, event id, event type), due now.
    async fn insert_deliveries(
        &mut self,
        rows: &[(Uuid, Uuid, i64, &str)],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()>;
}

/// The outbox part of recording events: a delivery per (enabled webhook, event it subscribes
/// to), in the caller's transaction.
async fn queue_deliveries<C: Bulk>(
    conn: &mut C,
    ids: &[i64],
    events: &[NewEvent],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    if !events
        .iter()
        .any(|e| crate::types::WEBHOOK_EVENTS.contains(&e.event_type))
    {
        return Ok(());
    }
    let hooks = conn.enabled_webhooks().await?;
    if hooks.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::new();
    for (id, e) in ids.iter().zip(events) {
        if !crate::types::WEBHOOK_EVENTS.contains(&e.event_type) {
            continue;
        }
        for (hook, subscribed) in &hooks {
            if crate::server::webhooks::subscribes(subscribed, e.event_type) {
                rows.push((Uuid::new_v4(), *hook, *id, e.event_type));
            }
        }
    }
    for chunk in rows.chunks(500) {
        conn.insert_deliveries(chunk, now).await?;
    }
    Ok(())
}

fn run_bytes(r: &Run) -> usize {
    r.config
        .stages
        .iter()
        .map(|s| s.system.len() + s.user.len() + s.model.len() + 200)
        .sum::<usize>()
        + 160
}

fn stage_bytes(s: &StageRecord) -> usize {
    s.prompt_sent.len() + s.response_raw.len() + s.cache_key.len() + s.model_used.len() + 200
}

fn config_text(r: &Run) -> String {
    serde_json::to_string(&r.config).unwrap_or_else(|_| "{}".into())
}

/// The outbox statements: the same SQL on both backends.
macro_rules! outbox_methods {
    () => {
        async fn enabled_webhooks(&mut self) -> sqlx::Result<Vec<(Uuid, String)>> {
            sqlx::query_as("SELECT id, events FROM webhooks WHERE enabled")
                .fetch_all(&mut *self)
                .await
        }

        async fn insert_deliveries(
            &mut self,
            rows: &[(Uuid, Uuid, i64, &str)],
            now: DateTime<Utc>,
        ) -> sqlx::Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, status, attempts, \
                 next_attempt_at, created_at) ",
            );
            q.push_values(rows, |mut b, (id, hook, event, kind)| {
                b.push_bind(*id)
                    .push_bind(*hook)
                    .push_bind(*event)
                    .push_bind(*kind)
                    .push_bind("pending")
                    .push_bind(0i64)
                    .push_bind(now)
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (webhook_id, event_id) DO NOTHING");
            q.build().execute(&mut *self).await?;
            Ok(())
        }

    };
}

impl Bulk for SqliteConnection {
    async fn insert_runs(
        &mut self,
        rows: &[PlannedRow<'_>],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        for chunk in chunks_by_size(rows, |r| run_bytes(r.run)) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO runs (id, experiment_id, sweep_id, seq, config_hash, config_key, config, item_index, \
                 repeat_index, status, started_at, completed_at, duration_ms, tokens_in, tokens_out, cost_estimate, \
                 created_at, item_id, item_version) ",
            );
            q.push_values(chunk, |mut b, p| {
                let r = p.run;
                let ended = p.cached.then_some(now);
                b.push_bind(r.id)
                    .push_bind(r.experiment_id)
                    .push_bind(r.sweep_id)
                    .push_bind(p.seq)
                    .push_bind(r.config_hash.clone())
                    .push_bind(r.config_key.clone())
                    .push_bind(config_text(r))
                    .push_bind(r.item_index)
                    .push_bind(r.repeat_index)
                    .push_bind(if p.cached { "cached" } else { "pending" })
                    .push_bind(ended)
                    .push_bind(ended)
                    .push_bind(p.cached.then_some(0i64))
                    .push_bind(r.tokens_in)
                    .push_bind(r.tokens_out)
                    .push_bind(r.cost_estimate)
                    .push_bind(now)
                    .push_bind(r.item_id.clone())
                    .push_bind(r.item_version);
            });
            q.build().execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn insert_stages(
        &mut self,
        rows: &[(Uuid, &StageRecord)],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        for chunk in chunks_by_size(rows, |(_, s)| stage_bytes(s)) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO stage_results (id, run_id, stage_index, prompt_sent, response_raw, model_used, \
                 parameters, tokens_in, tokens_out, latency_ms, cached, finish_reason, usage_estimated, \
                 cost_estimate, cache_key, created_at) ",
            );
            q.push_values(chunk, |mut b, (run_id, s)| {
                b.push_bind(Uuid::now_v7())
                    .push_bind(*run_id)
                    .push_bind(s.stage_index)
                    .push_bind(s.prompt_sent.clone())
                    .push_bind(s.response_raw.clone())
                    .push_bind(s.model_used.clone())
                    .push_bind(Json(s.parameters.clone()))
                    .push_bind(s.tokens_in)
                    .push_bind(s.tokens_out)
                    .push_bind(s.latency_ms)
                    .push_bind(s.cached)
                    .push_bind(s.finish_reason.clone())
                    .push_bind(s.usage_estimated)
                    .push_bind(s.cost_estimate)
                    .push_bind(s.cache_key.clone())
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (run_id, stage_index) DO NOTHING");
            q.build().execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn insert_cache(
        &mut self,
        rows: &[&(String, CachedResponse)],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        for chunk in chunks_by_size(rows, |(k, a)| {
            k.len() + a.response.len() + a.model.len() + 100
        }) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO response_cache (config_hash, response, model, tokens_in, tokens_out, latency_ms, \
                 finish_reason, usage_estimated, created_at) ",
            );
            q.push_values(chunk, |mut b, (key, a)| {
                b.push_bind(key.clone())
                    .push_bind(a.response.clone())
                    .push_bind(a.model.clone())
                    .push_bind(a.tokens_in)
                    .push_bind(a.tokens_out)
                    .push_bind(a.latency_ms)
                    .push_bind(a.finish_reason.clone())
                    .push_bind(a.usage_estimated)
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (config_hash) DO NOTHING");
            q.build().execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn finish_runs(&mut self, rows: &[FinalRow<'_>]) -> sqlx::Result<Vec<Uuid>> {
        let mut updated = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(128) {
            let mut q = sqlx::QueryBuilder::new(
                "WITH v (id, status, error, started_at, completed_at, duration_ms, tokens_in, tokens_out, \
                 cost_estimate, lease) AS (",
            );
            q.push_values(chunk, |mut b, f| {
                let r = f.run;
                b.push_bind(r.id)
                    .push_bind(r.status.clone())
                    .push_bind(r.error.clone())
                    .push_bind(r.started_at)
                    .push_bind(r.completed_at)
                    .push_bind(r.duration_ms)
                    .push_bind(r.tokens_in)
                    .push_bind(r.tokens_out)
                    .push_bind(r.cost_estimate)
                    .push_bind(f.lease.map(str::to_owned));
            });
            q.push(
                ") UPDATE runs SET status = v.status, error = v.error, \
                 started_at = COALESCE(runs.started_at, v.started_at), completed_at = v.completed_at, \
                 duration_ms = v.duration_ms, tokens_in = v.tokens_in, tokens_out = v.tokens_out, \
                 cost_estimate = v.cost_estimate, lease_owner = NULL, lease_until = NULL \
                 FROM v WHERE runs.id = v.id AND runs.status IN ('pending', 'running') \
                 AND (v.lease IS NULL OR runs.lease_owner = v.lease) RETURNING id",
            );
            updated.extend(q.build_query_scalar::<Uuid>().fetch_all(&mut *self).await?);
        }
        Ok(updated)
    }

    async fn insert_events(
        &mut self,
        events: &[NewEvent],
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<i64>> {
        let mut out = Vec::with_capacity(events.len());
        for chunk in chunks_by_size(events, |e| e.payload.to_string().len()) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO events (experiment_id, sweep_id, run_id, event_type, payload, created_at) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.experiment_id)
                    .push_bind(e.sweep_id)
                    .push_bind(e.run_id)
                    .push_bind(e.event_type)
                    .push_bind(Json(e.payload.clone()))
                    .push_bind(now);
            });
            q.push(" RETURNING id");
            let mut ids: Vec<i64> = q.build_query_scalar().fetch_all(&mut *self).await?;
            // Ids are assigned in row order; RETURNING's order is not promised.
            ids.sort_unstable();
            out.extend(ids);
        }
        Ok(out)
    }

    outbox_methods!();
}

impl Bulk for PgConnection {
    async fn insert_runs(
        &mut self,
        rows: &[PlannedRow<'_>],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = rows.iter().map(|p| p.run.id).collect();
        let experiments: Vec<Uuid> = rows.iter().map(|p| p.run.experiment_id).collect();
        let sweeps: Vec<Option<Uuid>> = rows.iter().map(|p| p.run.sweep_id).collect();
        let seqs: Vec<i64> = rows.iter().map(|p| p.seq).collect();
        let hashes: Vec<String> = rows.iter().map(|p| p.run.config_hash.clone()).collect();
        let keys: Vec<String> = rows.iter().map(|p| p.run.config_key.clone()).collect();
        let configs: Vec<String> = rows.iter().map(|p| config_text(p.run)).collect();
        let items: Vec<i32> = rows.iter().map(|p| p.run.item_index).collect();
        let item_ids: Vec<String> = rows.iter().map(|p| p.run.item_id.clone()).collect();
        let item_versions: Vec<i64> = rows.iter().map(|p| p.run.item_version).collect();
        let repeats: Vec<i32> = rows.iter().map(|p| p.run.repeat_index).collect();
        let cached: Vec<bool> = rows.iter().map(|p| p.cached).collect();
        let tokens_in: Vec<i64> = rows.iter().map(|p| p.run.tokens_in).collect();
        let tokens_out: Vec<i64> = rows.iter().map(|p| p.run.tokens_out).collect();
        let costs: Vec<Option<f64>> = rows.iter().map(|p| p.run.cost_estimate).collect();
        sqlx::query(
            "INSERT INTO runs (id, experiment_id, sweep_id, seq, config_hash, config_key, config, item_index, \
             repeat_index, status, started_at, completed_at, duration_ms, tokens_in, tokens_out, cost_estimate, \
             created_at, item_id, item_version) \
             SELECT id, experiment_id, sweep_id, seq, config_hash, config_key, config::jsonb, item_index, repeat_index, \
                    CASE WHEN cached THEN 'cached' ELSE 'pending' END, \
                    CASE WHEN cached THEN $14 END, CASE WHEN cached THEN $14 END, CASE WHEN cached THEN 0 END, \
                    tokens_in, tokens_out, cost_estimate, $14, item_id, item_version \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
                         $8::int[], $9::int[], $10::bool[], $11::bigint[], $12::bigint[], $13::float8[], \
                         $15::text[], $16::bigint[]) \
               AS t (id, experiment_id, sweep_id, seq, config_hash, config_key, config, item_index, repeat_index, \
                     cached, tokens_in, tokens_out, cost_estimate, item_id, item_version)",
        )
        .bind(ids)
        .bind(experiments)
        .bind(sweeps)
        .bind(seqs)
        .bind(hashes)
        .bind(keys)
        .bind(configs)
        .bind(items)
        .bind(repeats)
        .bind(cached)
        .bind(tokens_in)
        .bind(tokens_out)
        .bind(costs)
        .bind(now)
        .bind(item_ids)
        .bind(item_versions)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn insert_stages(
        &mut self,
        rows: &[(Uuid, &StageRecord)],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        macro_rules! col {
            ($f:expr) => {
                rows.iter().map($f).collect::<Vec<_>>()
            };
        }
        sqlx::query(
            "INSERT INTO stage_results (id, run_id, stage_index, prompt_sent, response_raw, model_used, parameters, \
             tokens_in, tokens_out, latency_ms, cached, finish_reason, usage_estimated, cost_estimate, cache_key, \
             created_at) \
             SELECT id, run_id, stage_index, prompt_sent, response_raw, model_used, parameters::jsonb, tokens_in, \
                    tokens_out, latency_ms, cached, finish_reason, usage_estimated, cost_estimate, cache_key, $15 \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], \
                         $8::bigint[], $9::bigint[], $10::bigint[], $11::bool[], $12::text[], $13::bool[], \
                         $14::float8[], $16::text[]) \
               AS t (id, run_id, stage_index, prompt_sent, response_raw, model_used, parameters, tokens_in, \
                     tokens_out, latency_ms, cached, finish_reason, usage_estimated, cost_estimate, cache_key) \
             ON CONFLICT (run_id, stage_index) DO NOTHING",
        )
        .bind(col!(|_| Uuid::now_v7()))
        .bind(col!(|(r, _)| *r))
        .bind(col!(|(_, s)| s.stage_index))
        .bind(col!(|(_, s)| s.prompt_sent.clone()))
        .bind(col!(|(_, s)| s.response_raw.clone()))
        .bind(col!(|(_, s)| s.model_used.clone()))
        .bind(col!(|(_, s)| s.parameters.to_string()))
        .bind(col!(|(_, s)| s.tokens_in))
        .bind(col!(|(_, s)| s.tokens_out))
        .bind(col!(|(_, s)| s.latency_ms))
        .bind(col!(|(_, s)| s.cached))
        .bind(col!(|(_, s)| s.finish_reason.clone()))
        .bind(col!(|(_, s)| s.usage_estimated))
        .bind(col!(|(_, s)| s.cost_estimate))
        .bind(now)
        .bind(col!(|(_, s)| s.cache_key.clone()))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn insert_cache(
        &mut self,
        rows: &[&(String, CachedResponse)],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // In key order: two transactions inserting overlapping keys in different orders
        // would wait on each other's unique-index entries (a deadlock).
        let mut sorted = rows.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let rows = &sorted[..];
        macro_rules! col {
            ($f:expr) => {
                rows.iter().map($f).collect::<Vec<_>>()
            };
        }
        sqlx::query(
            "INSERT INTO response_cache (config_hash, response, model, tokens_in, tokens_out, latency_ms, \
             finish_reason, usage_estimated, created_at) \
             SELECT *, $9 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], \
                                      $7::text[], $8::bool[]) \
             ON CONFLICT (config_hash) DO NOTHING",
        )
        .bind(col!(|(k, _)| k.clone()))
        .bind(col!(|(_, a)| a.response.clone()))
        .bind(col!(|(_, a)| a.model.clone()))
        .bind(col!(|(_, a)| a.tokens_in))
        .bind(col!(|(_, a)| a.tokens_out))
        .bind(col!(|(_, a)| a.latency_ms))
        .bind(col!(|(_, a)| a.finish_reason.clone()))
        .bind(col!(|(_, a)| a.usage_estimated))
        .bind(now)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn finish_runs(&mut self, rows: &[FinalRow<'_>]) -> sqlx::Result<Vec<Uuid>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        macro_rules! col {
            ($f:expr) => {
                rows.iter().map($f).collect::<Vec<_>>()
            };
        }
        sqlx::query_scalar(
            "UPDATE runs SET status = v.status, error = v.error, \
             started_at = COALESCE(runs.started_at, v.started_at), completed_at = v.completed_at, \
             duration_ms = v.duration_ms, tokens_in = v.tokens_in, tokens_out = v.tokens_out, \
             cost_estimate = v.cost_estimate, lease_owner = NULL, lease_until = NULL \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bigint[], \
                         $7::bigint[], $8::bigint[], $9::float8[], $10::text[]) \
               AS v (id, status, error, started_at, completed_at, duration_ms, tokens_in, tokens_out, \
                     cost_estimate, lease) \
             WHERE runs.id = v.id AND runs.status IN ('pending', 'running') \
             AND (v.lease IS NULL OR runs.lease_owner = v.lease) RETURNING runs.id",
        )
        .bind(col!(|f| f.run.id))
        .bind(col!(|f| f.run.status.clone()))
        .bind(col!(|f| f.run.error.clone()))
        .bind(col!(|f| f.run.started_at))
        .bind(col!(|f| f.run.completed_at))
        .bind(col!(|f| f.run.duration_ms))
        .bind(col!(|f| f.run.tokens_in))
        .bind(col!(|f| f.run.tokens_out))
        .bind(col!(|f| f.run.cost_estimate))
        .bind(col!(|f| f.lease.map(str::to_owned)))
        .fetch_all(&mut *self)
        .await
    }

    async fn insert_events(
        &mut self,
        events: &[NewEvent],
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        macro_rules! col {
            ($f:expr) => {
                events.iter().map($f).collect::<Vec<_>>()
            };
        }
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO events (experiment_id, sweep_id, run_id, event_type, payload, created_at) \
             SELECT experiment_id, sweep_id, run_id, event_type, payload::jsonb, $6 \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[]) \
               AS t (experiment_id, sweep_id, run_id, event_type, payload) \
             RETURNING id",
        )
        .bind(col!(|e| e.experiment_id))
        .bind(col!(|e| e.sweep_id))
        .bind(col!(|e| e.run_id))
        .bind(col!(|e| e.event_type.to_owned()))
        .bind(col!(|e| e.payload.to_string()))
        .bind(now)
        .fetch_all(&mut *self)
        .await?;
        // Ids are assigned in row order; RETURNING's order is not promised.
        ids.sort_unstable();
        Ok(ids)
    }

    outbox_methods!();
}

/// Inserts a plan's runs — pending ones, and ones the cache answered with their stages — with
/// `seq` numbers from `seq`. Returns the next free `seq`.
pub(crate) async fn insert_planned<C: Bulk + super::bulk_scores::ScoreBulk>(
    conn: &mut C,
    pending: &[Run],
    cached: &[(Run, Vec<StageRecord>)],
    seq: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<i64> {
    let mut next = seq;
    let mut rows = Vec::with_capacity(pending.len() + cached.len());
    for run in pending {
        rows.push(PlannedRow {
            run,
            seq: next,
            cached: false,
        });
        next += 1;
    }
    for (run, _) in cached {
        rows.push(PlannedRow {
            run,
            seq: next,
            cached: true,
        });
        next += 1;
    }
    conn.insert_runs(&rows, now).await?;
    let stages: Vec<(Uuid, &StageRecord)> = cached
        .iter()
        .flat_map(|(r, stages)| stages.iter().map(move |s| (r.id, s)))
        .collect();
    conn.insert_stages(&stages, now).await?;
    // Runs the cache answered count on the leaderboard at once.
    let mut bumps: Vec<super::bulk_scores::Bump<'_>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (run, _) in cached {
        if seen.insert((run.experiment_id, run.config_key.as_str())) {
            bumps.push(super::bulk_scores::Bump {
                experiment_id: run.experiment_id,
                config_key: &run.config_key,
                config: config_text(run),
            });
        }
    }
    conn.bump_entries(&mut bumps).await?;
    Ok(next)
}

/// Inserts events, returning them with their ids.
pub(crate) async fn insert_events<C: Bulk>(
    conn: &mut C,
    events: &[NewEvent],
) -> sqlx::Result<Vec<crate::types::Event>> {
    let now = Utc::now();
    let ids = conn.insert_events(events, now).await?;
    queue_deliveries(conn, &ids, events, now).await?;
    Ok(ids
        .into_iter()
        .zip(events)
        .map(|(id, e)| crate::types::Event {
            id,
            event_type: e.event_type.to_owned(),
            experiment_id: e.experiment_id,
            sweep_id: e.sweep_id,
            run_id: e.run_id,
            payload: e.payload.clone(),
            created_at: now,
        })
        .collect())
}
