//! Removes what would otherwise only grow: per-run events older than `EVENT_RETENTION_DAYS`
//! (experiment-level events, such as a new leader or a pause, are kept whatever their age),
//! and failed sign-ins of usernames without an account once they are a day old.
//!
//! It deletes in small batches with a pause between them, so a first pass over millions of old
//! events never holds the database for long.

use std::time::Duration;

use chrono::Utc;

use super::core::Core;
use super::error::Result;
use super::store::{Db, on_db, users};

/// The event types that belong to one run (what retention removes).
pub const PER_RUN_EVENTS: [&str; 5] = [
    "run.started",
    "run.completed",
    "run.cached",
    "run.failed",
    "stage.completed",
];
/// The default for `EVENT_RETENTION_DAYS`.
pub const DEFAULT_DAYS: u32 = 90;
/// Rows deleted per statement.
pub const BATCH: i64 = 1000;
/// The pause between batches.
const PAUSE: Duration = Duration::from_millis(50);
/// How often a pass runs (the first one soon after start).
const EVERY: Duration = Duration::from_secs(15 * 60);
const FIRST_AFTER: Duration = Duration::from_secs(1);
/// Failed sign-ins of unknown usernames are forgotten after this long.
const KEEP_SIGN_IN_FAILURES: chrono::Duration = chrono::Duration::days(1);

/// Runs passes until `stopped` (once per process).
pub async fn run(core: Core, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut wait = FIRST_AFTER;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        wait = EVERY;
        if let Err(e) = pass(&core).await {
            tracing::warn!(error = %e, "retention pass failed");
        }
    }
}

/// One pass: old per-run events, then old sign-in failures.
async fn pass(core: &Core) -> Result<()> {
    if let Some(days) = core.event_retention_days {
        let before = Utc::now() - chrono::Duration::days(i64::from(days));
        let removed = purge_events(&core.db, before, BATCH, &core.stopping).await?;
        if removed > 0 {
            tracing::info!(removed, days, "removed per-run events past retention");
        }
    }
    users::forget_sign_in_failures(&core.db, Utc::now() - KEEP_SIGN_IN_FAILURES).await?;
    Ok(())
}

/// Deletes per-run events created before `before`, `batch` at a time; returns how many.
pub async fn purge_events(
    db: &Db,
    before: chrono::DateTime<Utc>,
    batch: i64,
    stopping: &std::sync::atomic::AtomicBool,
) -> Result<u64> {
    let types = PER_RUN_EVENTS
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    // The same predicate as the partial index `events_per_run_age`, so it is used.
    let sql = format!(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE event_type IN ({types}) \
         AND created_at < $1 LIMIT {batch})"
    );
    let mut removed = 0;
    loop {
        let n = on_db!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(before).execute(p).await.map(|r| r.rows_affected()))?;
        removed += n;
        if n < batch as u64 || stopping.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(removed);
        }
        tokio::time::sleep(PAUSE).await;
    }
}
