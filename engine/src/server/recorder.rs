//! The recorder: one task per process that commits run outcomes in groups. Each group is one
//! transaction holding the runs' final state, their stage results, fresh cache entries, cache
//! counters, sweep progress (and the budget and completion transitions it triggers) and the
//! events — so a run is recorded whole or not at all, and at most once: the final update only
//! applies to a run still pending or running under this process's lease.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::error::{Error, Result};
use super::events::{Hub, notify_payloads};
use super::exec::Outcome;
use super::leaderboard::LeaderWatch;
use super::store::bulk::{Bulk, FinalRow};
use super::store::bulk_scores::{Bump, ScoreBulk};
use super::store::events::NewEvent;
use super::store::sweeps::SweepRow;
use super::store::{Db, on_db};
use crate::types::Event;

/// Most outcomes in one transaction.
const GROUP_MAX: usize = 512;
/// Longest error text carried in an event.
const EVENT_TEXT_MAX: usize = 1000;

enum Job {
    Outcome {
        outcome: Box<Outcome>,
        lease: Option<Arc<str>>,
        done: oneshot::Sender<Result<bool>>,
    },
    Events(Vec<NewEvent>),
}

/// A handle to the recorder task.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Recorder {
    /// Starts the recorder task (needs a Tokio runtime).
    pub fn start(db: Db, hub: Arc<Hub>, node: Arc<str>, watch: Arc<LeaderWatch>) -> Recorder {
        let (tx, rx) = mpsc::channel(8192);
        tokio::spawn(run(db, hub, node, watch, rx));
        Recorder { tx }
    }

    /// Records how a run ended; returns when it is committed. `Ok(false)`: the run was no
    /// longer this process's to record (already ended, or its lease was taken over).
    pub async fn record(&self, outcome: Outcome, lease: Option<Arc<str>>) -> Result<bool> {
        let status = outcome.run.status.clone();
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job::Outcome {
                outcome: Box::new(outcome),
                lease,
                done,
            })
            .await
            .map_err(|_| Error::Internal("the recorder has stopped".into()))?;
        let recorded = wait
            .await
            .map_err(|_| Error::Internal("the recorder has stopped".into()))??;
        if recorded {
            super::telemetry::run_finished(&status);
        }
        Ok(recorded)
    }

    /// Records events with the next group (not waited for).
    pub async fn events(&self, events: Vec<NewEvent>) {
        if !events.is_empty() && self.tx.send(Job::Events(events)).await.is_err() {
            tracing::warn!("the recorder has stopped; events dropped");
        }
    }
}

async fn run(
    db: Db,
    hub: Arc<Hub>,
    node: Arc<str>,
    watch: Arc<LeaderWatch>,
    mut rx: mpsc::Receiver<Job>,
) {
    let mut jobs = Vec::with_capacity(GROUP_MAX);
    while rx.recv_many(&mut jobs, GROUP_MAX).await > 0 {
        let group: Vec<Job> = std::mem::take(&mut jobs);
        match write(&db, &node, &group).await {
            Ok((events, applied)) => {
                notice(&watch, &group, &applied);
                hub.publish(events);
                reply(group, applied.into_iter().map(Ok).collect());
            }
            Err(e) if group.len() > 1 => {
                // One bad outcome must not sink the others: write them one by one.
                tracing::warn!(error = %e, size = group.len(), "a record group failed; retrying one by one");
                for job in group {
                    let one = [job];
                    match write(&db, &node, &one).await {
                        Ok((events, applied)) => {
                            notice(&watch, &one, &applied);
                            hub.publish(events);
                            reply(one.into(), applied.into_iter().map(Ok).collect());
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "could not record a run");
                            let [job] = one;
                            reply(vec![job], vec![Err(Error::Internal(e.to_string()))]);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record a run");
                reply(group, vec![Err(Error::Internal(e.to_string()))]);
            }
        }
    }
}

/// Tells the leader watch which experiments' standings moved (runs that applied).
fn notice(watch: &LeaderWatch, group: &[Job], applied: &[bool]) {
    let mut seen = std::collections::HashSet::new();
    let outcomes = group.iter().filter_map(|j| match j {
        Job::Outcome { outcome, .. } => Some(outcome),
        Job::Events(_) => None,
    });
    for (outcome, applied) in outcomes.zip(applied) {
        let r = &outcome.run;
        if *applied && seen.insert((r.experiment_id, r.sweep_id)) {
            watch.notice(
                r.experiment_id,
                r.sweep_id,
                if r.sweep_id.is_some() { "sweep" } else { "run" },
            );
        }
    }
}

/// Answers each outcome job with its result (in order); event jobs need no answer.
fn reply(group: Vec<Job>, results: Vec<Result<bool>>) {
    let mut results = results.into_iter();
    for job in group {
        if let Job::Outcome { done, outcome, .. } = job {
            let result = results
                .next()
                .unwrap_or_else(|| Err(Error::Internal("no result".into())));
            let _ = done.send(result);
            // The single-flight locks go now that the answers are in the cache.
            drop(outcome);
        }
    }
}

#[derive(Default)]
struct Delta {
    done: i64,
    completed: i64,
    cached: i64,
    failed: i64,
    tokens_in: i64,
    tokens_out: i64,
    cost: f64,
    calls: i64,
    cache_hits: i64,
    /// Indexes (into the group's events) of events that carry this sweep's progress.
    events: Vec<usize>,
}

fn clip(text: &str) -> String {
    if text.len() <= EVENT_TEXT_MAX {
        return text.to_owned();
    }
    let mut end = EVENT_TEXT_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The event a run's end produces.
pub fn run_event(run: &crate::types::Run) -> NewEvent {
    let event_type = match run.status.as_str() {
        "completed" => "run.completed",
        "cached" => "run.cached",
        _ => "run.failed",
    };
    NewEvent {
        event_type,
        experiment_id: Some(run.experiment_id),
        sweep_id: run.sweep_id,
        run_id: Some(run.id),
        payload: json!({
            "status": run.status,
            "config_key": run.config_key,
            "item_id": run.item_id,
            "item_index": run.item_index,
            "repeat_index": run.repeat_index,
            "tokens_in": run.tokens_in,
            "tokens_out": run.tokens_out,
            "cost": run.cost_estimate,
            "duration_ms": run.duration_ms,
            "error": run.error.as_deref().map(clip),
        }),
    }
}

/// After a sweep's counters changed (row = its new state): pauses it when its budget is spent
/// and completes it when every run has ended. Runs on a transaction; yields the events.
macro_rules! transitions {
    ($tx:ident, $row:expr, $now:expr) => {{
        let row: &$crate::server::store::sweeps::SweepRow = &$row;
        let mut out: Vec<NewEvent> = Vec::new();
        // A guided sweep between rounds is not done: its next round is decided by a lane.
        if row.done >= row.total && !row.is_guided() && matches!(row.status.as_str(), "running" | "paused") {
            let n = sqlx::query(
                "UPDATE sweeps SET status = 'completed', pause_reason = NULL, finished_at = $2, updated_at = $2 \
                 WHERE id = $1 AND status IN ('running', 'paused')")
                .bind(row.id).bind($now).execute(&mut *$tx).await?.rows_affected();
            if n == 1 {
                sqlx::query("UPDATE experiments SET status = 'completed', updated_at = $2 WHERE id = $1")
                    .bind(row.experiment_id).bind($now).execute(&mut *$tx).await?;
                let mut done = row.clone();
                done.status = "completed".into();
                out.push($crate::server::sweeps::sweep_event("experiment.completed", &done, serde_json::json!({})));
            }
        } else if row.status == "running" && row.pauses_for_budget() {
            let n = sqlx::query(
                "UPDATE sweeps SET status = 'paused', pause_reason = 'budget', updated_at = $2 \
                 WHERE id = $1 AND status = 'running'")
                .bind(row.id).bind($now).execute(&mut *$tx).await?.rows_affected();
            if n == 1 {
                sqlx::query("UPDATE experiments SET status = 'paused', updated_at = $2 WHERE id = $1")
                    .bind(row.experiment_id).bind($now).execute(&mut *$tx).await?;
                let mut paused = row.clone();
                paused.status = "paused".into();
                paused.pause_reason = Some("budget".into());
                out.push($crate::server::sweeps::sweep_event("budget.exhausted", &paused, serde_json::json!({
                    "token_count": row.tokens_in + row.tokens_out,
                    "cost": row.cost,
                    "max_tokens": row.max_tokens,
                    "max_cost": row.max_cost,
                })));
                out.push($crate::server::sweeps::sweep_event("experiment.paused", &paused, serde_json::json!({"reason": "budget"})));
            }
        }
        out
    }};
}

/// Writes one group in one transaction; returns the stored events and, per outcome, whether
/// it applied.
async fn write(
    db: &Db,
    node: &str,
    group: &[Job],
) -> std::result::Result<(Vec<Event>, Vec<bool>), sqlx::Error> {
    let is_pg = matches!(db, Db::Postgres(_));
    on_db!(db, p => {
        let now = Utc::now();
        let mut tx = p.begin().await?;
        let mut events: Vec<NewEvent> = Vec::new();
        let mut deltas: Vec<(Uuid, Delta)> = Vec::new();
        let (mut hits, mut misses) = (0i64, 0i64);
        let mut outcomes: Vec<(&Outcome, Option<&str>)> = Vec::new();
        for job in group {
            match job {
                Job::Events(e) => events.extend(e.iter().cloned()),
                Job::Outcome { outcome, lease, .. } => outcomes.push((outcome, lease.as_deref())),
            }
        }
        // The runs' final state, only where the run is still pending or running under our
        // lease: the rows that come back are the outcomes that apply.
        let finals: Vec<FinalRow<'_>> = outcomes
            .iter()
            .map(|(o, lease)| FinalRow { run: &o.run, lease: *lease })
            .collect();
        let updated: std::collections::HashSet<Uuid> =
            Bulk::finish_runs(&mut *tx, &finals).await?.into_iter().collect();
        let applied: Vec<bool> = outcomes.iter().map(|(o, _)| updated.contains(&o.run.id)).collect();
        let live: Vec<&Outcome> = outcomes
            .iter()
            .filter(|(o, _)| updated.contains(&o.run.id))
            .map(|(o, _)| *o)
            .collect();
        let stages: Vec<(Uuid, &super::exec::StageRecord)> = live
            .iter()
            .flat_map(|o| o.stages.iter().map(move |s| (o.run.id, s)))
            .collect();
        Bulk::insert_stages(&mut *tx, &stages, now).await?;
        let mut seen = std::collections::HashSet::new();
        let puts: Vec<&(String, super::store::cache::CachedResponse)> = live
            .iter()
            .flat_map(|o| o.cache_puts.iter())
            .filter(|(key, _)| seen.insert(key.as_str()))
            .collect();
        Bulk::insert_cache(&mut *tx, &puts, now).await?;
        let scores: Vec<&super::scoring::ScoreRow> = live.iter().flat_map(|o| o.scores.iter()).collect();
        ScoreBulk::upsert_scores(&mut *tx, &scores, now).await?;
        let mut bumps: Vec<Bump<'_>> = Vec::new();
        let mut bumped = std::collections::HashSet::new();
        for o in live.iter().copied() {
            if bumped.insert((o.run.experiment_id, o.run.config_key.as_str())) {
                bumps.push(Bump {
                    experiment_id: o.run.experiment_id,
                    config_key: &o.run.config_key,
                    config: serde_json::to_string(&o.run.config).unwrap_or_default(),
                });
            }
        }
        for outcome in live {
            let r = &outcome.run;
            hits += outcome.hits;
            misses += outcome.misses;
            events.extend(outcome.events.iter().cloned());
            events.push(run_event(r));
            if let Some(sweep_id) = r.sweep_id {
                let at = match deltas.iter().position(|(id, _)| *id == sweep_id) {
                    Some(i) => i,
                    None => {
                        deltas.push((sweep_id, Delta::default()));
                        deltas.len() - 1
                    }
                };
                let d = &mut deltas[at].1;
                d.done += 1;
                match r.status.as_str() {
                    "completed" => d.completed += 1,
                    "cached" => d.cached += 1,
                    _ => d.failed += 1,
                }
                d.tokens_in += outcome.spent_tokens_in;
                d.tokens_out += outcome.spent_tokens_out;
                d.cost += outcome.spent_cost;
                d.calls += outcome.misses;
                d.cache_hits += outcome.hits;
                d.events.push(events.len() - 1);
            }
        }
        if hits != 0 || misses != 0 {
            sqlx::query(
                "UPDATE cache_counters SET value = value + CASE name WHEN 'hits' THEN $1 WHEN 'misses' THEN $2 ELSE 0 END")
                .bind(hits).bind(misses).execute(&mut *tx).await?;
        }
        for (sweep_id, d) in &deltas {
            let sql = format!(
                "UPDATE sweeps SET done = done + $2, completed = completed + $3, cached = cached + $4, \
                 failed = failed + $5, tokens_in = tokens_in + $6, tokens_out = tokens_out + $7, cost = cost + $8, \
                 calls = calls + $9, cache_hits = cache_hits + $10, updated_at = $11 WHERE id = $1 RETURNING {}",
                super::store::sweeps::COLUMNS
            );
            let Some(row) = sqlx::query_as::<_, SweepRow>(sqlx::AssertSqlSafe(sql))
                .bind(sweep_id).bind(d.done).bind(d.completed).bind(d.cached).bind(d.failed)
                .bind(d.tokens_in).bind(d.tokens_out).bind(d.cost).bind(d.calls).bind(d.cache_hits).bind(now)
                .fetch_optional(&mut *tx).await? else { continue };
            let progress = serde_json::to_value(row.progress()).unwrap_or(Value::Null);
            for &i in &d.events {
                if let Some(obj) = events[i].payload.as_object_mut() {
                    obj.insert("progress".into(), progress.clone());
                }
            }
            events.extend(transitions!(tx, row, now));
        }
        // Last, and in key order: writers in several processes lock these rows alike.
        ScoreBulk::bump_entries(&mut *tx, &mut bumps).await?;
        let stored: Vec<Event> = super::store::bulk::insert_events(&mut *tx, &events).await?;
        if is_pg {
            for payload in notify_payloads(node, &stored) {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(super::events::CHANNEL).bind(payload)
                    .execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok((stored, applied))
    })
}
