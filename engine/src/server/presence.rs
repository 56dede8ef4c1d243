//! PostgreSQL: dead processes are noticed in seconds, not when their leases expire.
//!
//! Each process holds one database session of its own for as long as it lives, named after it
//! (`application_name` = its node id, the owner its run leases carry). PostgreSQL ends that
//! session when the process dies, however it dies (`kill -9`, a lost machine: the connection
//! closes). Every second each process looks for running runs whose owner has no session; an
//! owner missing at two looks in a row (so a database restart, which ends every session at
//! once, gives everyone time to reconnect) is dead: its sweep runs go back to pending and get
//! lanes at once, its single runs fail. A process that was only cut off cannot record the runs
//! it loses this way (its lease is gone), so each run still ends exactly once. Its calls in
//! flight stop holding their endpoints' `max_concurrency` slots at the same moment.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::Connection;
use uuid::Uuid;

use super::core::Core;
use super::error::Result;
use super::store::Db;

/// How often a process checks its own session and looks for dead owners.
const EVERY: Duration = Duration::from_secs(1);
/// PostgreSQL keeps this many bytes of an `application_name`.
const NAME_MAX: usize = 63;

/// The `application_name` of the session of `node`.
fn session_name(node: &str) -> &str {
    let mut end = node.len().min(NAME_MAX);
    while !node.is_char_boundary(end) {
        end -= 1;
    }
    &node[..end]
}

/// Opens this process's named session (PostgreSQL only; `None` on SQLite, one process anyway).
pub async fn open(core: &Core) -> Result<Option<sqlx::PgConnection>> {
    let Db::Postgres(pool) = &core.db else {
        return Ok(None);
    };
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("SELECT set_config('application_name', $1, false)")
        .bind(session_name(&core.node))
        .execute(&mut conn)
        .await?;
    Ok(Some(conn))
}

/// Keeps the session open and reclaims dead owners' runs, until `stopped`.
pub async fn run(
    core: Core,
    mut session: sqlx::PgConnection,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut missing_before: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
        if session.ping().await.is_err() {
            match open(&core).await {
                Ok(Some(fresh)) => session = fresh,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "could not reopen this process's database session");
                    continue;
                }
            }
        }
        match sweep(&core, &missing_before).await {
            Ok(missing) => missing_before = missing,
            Err(e) => tracing::warn!(error = %e, "could not look for dead processes"),
        }
    }
    let _ = session.close().await;
}

/// One look: reclaims the runs of owners missing now and at the last look; returns the
/// owners missing now.
async fn sweep(core: &Core, missing_before: &HashSet<String>) -> Result<HashSet<String>> {
    let Db::Postgres(pool) = &core.db else {
        return Ok(HashSet::new());
    };
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT o.owner FROM (SELECT lease_owner AS owner FROM runs WHERE status = 'running' \
         AND lease_owner IS NOT NULL UNION SELECT node FROM endpoint_flights) o \
         WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = left(o.owner, $1))",
    )
    .bind(NAME_MAX as i32)
    .fetch_all(pool)
    .await?;
    let missing: HashSet<String> = missing.into_iter().collect();
    let dead: Vec<String> = missing.intersection(missing_before).cloned().collect();
    if dead.is_empty() {
        return Ok(missing);
    }
    // Its calls in flight no longer hold their endpoints' slots.
    super::pacing::forget_nodes(pool, &dead).await?;
    let requeued: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE runs SET status = 'pending', lease_owner = NULL, lease_until = NULL \
         WHERE status = 'running' AND sweep_id IS NOT NULL AND lease_owner = ANY($1) RETURNING sweep_id",
    )
    .bind(&dead)
    .fetch_all(pool)
    .await?;
    let failed = sqlx::query(
        "UPDATE runs SET status = 'failed', error = 'interrupted: the process running it stopped before it finished', \
         completed_at = now(), lease_owner = NULL, lease_until = NULL \
         WHERE status = 'running' AND sweep_id IS NULL AND lease_owner = ANY($1)",
    )
    .bind(&dead)
    .execute(pool)
    .await?
    .rows_affected();
    tracing::warn!(processes = ?dead, requeued = requeued.len(), failed, "reclaimed the runs of processes that died");
    let mut sweeps: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
    for id in requeued {
        *sweeps.entry(id).or_default() += 1;
    }
    for (sweep, pending) in sweeps {
        super::jobs::enqueue_lanes(core, sweep, pending).await?;
    }
    Ok(missing
        .difference(&dead.into_iter().collect())
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_postgres() {
        assert_eq!(session_name("web-1-1234-abcdef12"), "web-1-1234-abcdef12");
        let long = "h".repeat(70);
        assert_eq!(session_name(&long).len(), 63);
    }
}
