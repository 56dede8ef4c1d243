//! Background work of a process (`serve` or `worker`): the apalis worker that runs sweep
//! lanes, the heartbeat that keeps this process's leases alive, the reaper that gives runs of
//! dead processes back to the queue, and (on PostgreSQL) the event relay.
//!
//! Lanes travel as apalis jobs on the same database (SQLite or PostgreSQL storage). A lane is
//! idempotent: it only claims what is still pending, so a duplicate or replayed job is harmless.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::core::Core;
use super::error::{Error, Result};
use super::store::{Db, runs as run_store, sweeps as sweep_store};
use super::sweeps::{self, LEASE};

/// The apalis queue lanes travel on.
pub const QUEUE: &str = "promptlooper::sweep-lane";
/// How often a process renews its leases and reaps others' expired ones.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A running sweep nobody has driven for this long gets new lanes.
const STALE: Duration = Duration::from_secs(30);
/// How often an idle SQLite worker looks for new lanes (PostgreSQL is woken by NOTIFY).
const POLL_SQLITE: Duration = Duration::from_millis(25);
const POLL_POSTGRES: Duration = Duration::from_millis(500);

/// One apalis job: drive a sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lane {
    pub sweep_id: Uuid,
}

/// Sweeps this process is driving (lanes in progress), for the heartbeat.
#[derive(Debug, Default)]
pub struct Driving(Mutex<HashMap<Uuid, usize>>);

pub struct DrivingGuard<'a> {
    owner: &'a Driving,
    id: Uuid,
}

impl Driving {
    pub fn hold(&self, id: Uuid) -> DrivingGuard<'_> {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default() += 1;
        DrivingGuard { owner: self, id }
    }

    pub fn ids(&self) -> Vec<Uuid> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }
}

impl Drop for DrivingGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.owner.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.id);
            }
        }
    }
}

fn queue_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("job queue: {e}"))
}

/// Enqueues lanes for a sweep with `pending` runs to go.
pub async fn enqueue_lanes(core: &Core, sweep_id: Uuid, pending: usize) -> Result<()> {
    push_lanes(core, sweep_id, sweeps::lanes_for(pending)).await
}

/// Enqueues `n` lanes, and wakes this process's lane worker (other processes poll, or on
/// PostgreSQL hear the queue's NOTIFY).
pub async fn push_lanes(core: &Core, sweep_id: Uuid, n: usize) -> Result<()> {
    let lanes: Vec<Lane> = (0..n).map(|_| Lane { sweep_id }).collect();
    let pushed = match &core.db {
        Db::Sqlite(pool) => {
            let mut storage = SqliteStorage::<Lane>::new(pool).with_config(sqlite_config());
            storage.push_bulk(lanes).await.map_err(queue_error)
        }
        Db::Postgres(pool) => {
            let mut storage = PostgresStorage::<Lane>::new(pool).with_config(postgres_config());
            storage.push_bulk(lanes).await.map_err(queue_error)
        }
    };
    if let Some(wake) = core.lane_wake.get() {
        let _ = wake.send(());
    }
    pushed
}

/// The queue settings: one lane per fetch, so lanes spread over processes instead of the
/// first to poll taking them all; a 5 s heartbeat (the backstop when a wake-up is missed).
fn sqlite_config() -> apalis_sqlite::Config {
    apalis_sqlite::Config::default()
        .queue(QUEUE)
        .batch_size(1)
        .heartbeat_interval(APALIS_HEARTBEAT)
}

fn postgres_config() -> apalis_postgres::Config {
    apalis_postgres::Config::default()
        .queue(QUEUE)
        .batch_size(1)
        .heartbeat_interval(APALIS_HEARTBEAT)
        .missed_heartbeats(3)
}

const APALIS_HEARTBEAT: Duration = Duration::from_secs(5);

/// Local wake-ups as a stream the lane worker's poll strategy listens to.
struct Wake(tokio::sync::mpsc::UnboundedReceiver<()>);

impl futures::Stream for Wake {
    type Item = ();

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<()>> {
        self.0.poll_recv(cx)
    }
}

/// Lane jobs by apalis status (Pending, Running, Done, Failed, Killed…), for `/health`.
pub async fn queue_status(db: &Db) -> Result<Vec<(String, i64)>> {
    Ok(match db {
        Db::Sqlite(pool) => sqlx::query_as(
            "SELECT status, COUNT(*) FROM Jobs WHERE job_type = $1 GROUP BY status ORDER BY status",
        )
        .bind(QUEUE)
        .fetch_all(pool)
        .await?,
        Db::Postgres(pool) => sqlx::query_as(
            "SELECT status::text, COUNT(*) FROM apalis.jobs WHERE job_type = $1 GROUP BY status ORDER BY status",
        )
        .bind(QUEUE)
        .fetch_all(pool)
        .await?,
    })
}

/// The apalis handler. It never fails the job: apalis would retry it at once, 25 times. A
/// lane that stops on an error leaves its runs pending; the heartbeat notices the sweep is no
/// longer driven and enqueues new lanes.
async fn lane(job: Lane, core: Data<Core>) -> std::result::Result<(), BoxDynError> {
    if let Err(e) = sweeps::drive(&core, job.sweep_id).await {
        tracing::error!(sweep = %job.sweep_id, error = %e, "a sweep lane stopped on an error; it will be re-driven");
    }
    Ok(())
}

/// The background tasks of a process; stop them with [`Background::shutdown`].
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    core: Core,
}

impl Background {
    /// Stops claiming new runs, lets runs in flight finish and be recorded, then returns.
    /// Scoring jobs stop after their current batch (and resume at the next start).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.core.tasks.join_all().await;
    }
}

/// Starts this process's background work. `role` is `serve` or `worker`. Before anything
/// else it recovers what a previous process left behind.
pub async fn start(core: &Core, role: &str, lanes: usize) -> Result<Background> {
    // The session that says this process is alive, before it leases anything.
    let session = super::presence::open(core).await?;
    register(core, role).await?;
    recover(core).await?;
    // The client for LLM calls loads the system's TLS roots when built:
    // built now, off the runtime's threads, not in the middle of the first sweep's first calls.
    let providers = core.providers.clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        drop(providers.http());
        tracing::debug!(
            took_ms = started.elapsed().as_millis() as u64,
            "HTTP client for LLM calls ready"
        );
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();

    let signal = {
        let mut stopped = stopped.clone();
        let core = core.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
            core.stopping
                .store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<(), std::io::Error>(())
        }
    };
    let name = format!("{}-lanes", core.node);
    let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
    let _ = core.lane_wake.set(wake);
    // Polling alone can miss a wake-up (apalis-core 1.0's interval strategy sometimes parks
    // until the next heartbeat), so lanes enqueued here wake the worker directly.
    let worker_task = match &core.db {
        Db::Sqlite(pool) => {
            let strategy = apalis::prelude::Strategy::new()
                .stream(Wake(woken))
                .interval(POLL_SQLITE);
            let backend = SqliteStorage::<Lane>::new(pool)
                .with_config(sqlite_config())
                .poll_with_strategy(strategy);
            let worker = WorkerBuilder::new(name.as_str())
                .backend(backend)
                .concurrency(lanes)
                .data(core.clone())
                .build(lane);
            tokio::spawn(async move {
                if let Err(e) = worker.run_until(signal).await {
                    tracing::error!(error = %e, "the lane worker stopped");
                }
            })
        }
        Db::Postgres(pool) => {
            let storage = PostgresStorage::<Lane>::new(pool).with_config(postgres_config());
            let strategy = apalis::prelude::Strategy::new()
                .stream(Wake(woken))
                .stream(apalis_postgres::Pubsub::new(pool.clone(), QUEUE.to_owned()))
                .interval(POLL_POSTGRES);
            let backend = storage.poll_with_strategy(strategy);
            let worker = WorkerBuilder::new(name.as_str())
                .backend(backend)
                .concurrency(lanes)
                .data(core.clone())
                .build(lane);
            tokio::spawn(async move {
                if let Err(e) = worker.run_until(signal).await {
                    tracing::error!(error = %e, "the lane worker stopped");
                }
            })
        }
    };
    tasks.push(worker_task);

    let heartbeat = {
        let core = core.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut beats: u64 = 0;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
                if let Err(e) = beat(&core).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
                beats += 1;
                if beats.is_multiple_of(CLEANUP_EVERY)
                    && let Err(e) = clean_up(&core.db).await
                {
                    tracing::warn!(error = %e, "queue clean-up failed");
                }
            }
        })
    };
    tasks.push(heartbeat);

    tasks.push(tokio::spawn(super::leaderboard::LeaderWatch::run(
        core.clone(),
        stopped.clone(),
    )));
    tasks.push(tokio::spawn(super::webhooks::deliver::run(
        core.clone(),
        stopped.clone(),
    )));
    if let Some(session) = session {
        tasks.push(tokio::spawn(super::presence::run(
            core.clone(),
            session,
            stopped.clone(),
        )));
    }
    tasks.push(tokio::spawn(super::retention::run(
        core.clone(),
        stopped.clone(),
    )));

    if matches!(core.db, Db::Postgres(_)) {
        let core = core.clone();
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                _ = super::events::listen(core) => {}
                _ = stopped.wait_for(|s| *s) => {}
            }
        }));
    }
    Ok(Background {
        stop,
        tasks,
        core: core.clone(),
    })
}

async fn register(core: &Core, role: &str) -> Result<()> {
    let now = Utc::now();
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    super::store::on_db!(&core.db, p => sqlx::query(
        "INSERT INTO processes (id, role, hostname, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at")
        .bind(&*core.node).bind(role).bind(host).bind(std::process::id() as i32).bind(now)
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// At start: on SQLite this process is alone, so every leased run was left by a dead one and
/// goes back to the queue now; on PostgreSQL only expired leases do. Then every running sweep
/// with pending runs gets lanes again.
async fn recover(core: &Core) -> Result<()> {
    let now = Utc::now();
    let before = match core.db {
        Db::Sqlite(_) => None,
        Db::Postgres(_) => Some(now),
    };
    let (requeued, failed) = run_store::reclaim_expired(&core.db, before).await?;
    if requeued + failed > 0 {
        tracing::warn!(
            requeued,
            failed,
            "recovered runs an earlier process left unfinished"
        );
    }
    let stale_before = match core.db {
        // Alone: every running sweep needs driving now.
        Db::Sqlite(_) => now + chrono::Duration::seconds(1),
        Db::Postgres(_) => now - chrono::Duration::from_std(STALE).unwrap_or_default(),
    };
    redrive(core, stale_before).await?;
    super::scoring::jobs::redrive(core, stale_before).await
}

async fn redrive(core: &Core, stale_before: chrono::DateTime<Utc>) -> Result<()> {
    for id in sweep_store::claim_stale(&core.db, stale_before, Utc::now()).await? {
        let pending = match sweep_store::get(&core.db, id).await? {
            Some(s) => (s.total - s.done).max(1) as usize,
            None => continue,
        };
        tracing::info!(sweep = %id, "resuming a sweep nobody was driving");
        enqueue_lanes(core, id, pending).await?;
    }
    Ok(())
}

/// Renews this process's leases and heartbeat, marks its sweeps driven, and reaps expired
/// leases of processes that died.
async fn beat(core: &Core) -> Result<()> {
    let now = Utc::now();
    let lease = chrono::Duration::from_std(LEASE).unwrap_or_default();
    run_store::renew_leases(&core.db, &core.node, now + lease).await?;
    super::store::on_db!(&core.db, p => sqlx::query("UPDATE processes SET heartbeat_at = $2 WHERE id = $1")
        .bind(&*core.node).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
    sweep_store::touch_driven(&core.db, &core.driving.ids(), now).await?;
    super::store::scoring_jobs::touch_driven(&core.db, &core.scoring_driving.ids(), now).await?;
    let (requeued, failed) = run_store::reclaim_expired(&core.db, Some(now)).await?;
    if requeued + failed > 0 {
        tracing::warn!(requeued, failed, "reclaimed runs whose process stopped");
    }
    let stale = now - chrono::Duration::from_std(STALE).unwrap_or_default();
    redrive(core, stale).await?;
    super::scoring::jobs::redrive(core, stale).await
}

/// Heartbeats between clean-ups (about 10 minutes).
const CLEANUP_EVERY: u64 = 120;
/// Finished lane jobs and stopped processes are forgotten after this long.
const KEEP_FINISHED: chrono::Duration = chrono::Duration::days(1);

/// Forgets lane jobs that finished and processes that stopped over a day ago (the runs table
/// keeps the history; these only grow otherwise).
pub async fn clean_up(db: &Db) -> Result<()> {
    let before = Utc::now() - KEEP_FINISHED;
    let jobs = match db {
        Db::Sqlite(pool) => sqlx::query(
            "DELETE FROM Jobs WHERE job_type = $1 AND status IN ('Done', 'Killed') AND done_at < $2",
        )
        .bind(QUEUE)
        .bind(before.timestamp())
        .execute(pool)
        .await?
        .rows_affected(),
        Db::Postgres(pool) => sqlx::query(
            "DELETE FROM apalis.jobs WHERE job_type = $1 AND status IN ('Done', 'Killed') AND done_at < $2",
        )
        .bind(QUEUE)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected(),
    };
    let processes = super::store::on_db!(db, p => sqlx::query("DELETE FROM processes WHERE heartbeat_at < $1")
        .bind(before).execute(p).await.map(|r| r.rows_affected()))?;
    tracing::debug!(jobs, processes, "cleaned up the queue");
    Ok(())
}

/// Live processes (heartbeat within the last 3 beats), by role.
pub async fn live_processes(db: &Db) -> Result<Vec<(String, i64)>> {
    let since = Utc::now() - chrono::Duration::from_std(HEARTBEAT * 3).unwrap_or_default();
    Ok(super::store::on_db!(db, p => sqlx::query_as(
        "SELECT role, COUNT(*) FROM processes WHERE heartbeat_at > $1 GROUP BY role ORDER BY role")
        .bind(since).fetch_all(p).await)?)
}
