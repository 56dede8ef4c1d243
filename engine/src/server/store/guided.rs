//! A guided sweep's rounds. Each round is written by the one process that read the round it
//! follows (`guide_round` is compared and bumped), in one transaction with its runs, its
//! search state and its events — so a crash loses neither runs nor the search.

use chrono::Utc;
use sqlx::types::Json;
use uuid::Uuid;

use super::events::NewEvent;
use super::sweeps::{COLUMNS, SweepRow};
use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::{Event, GuideState, ParameterSpace, Run};

/// What a round spent before its runs (the proposer's calls).
#[derive(Debug, Default, Clone, Copy)]
pub struct Spend {
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost: f64,
    pub calls: i64,
}

/// One round as decided.
pub struct Round<'a> {
    /// The round read (`guide_round`); nothing is written if it changed since.
    pub after: i64,
    pub state: &'a GuideState,
    /// New pending runs.
    pub runs: &'a [Run],
    /// The sweep's space with proposed variants added.
    pub space: Option<&'a ParameterSpace>,
    pub spend: Spend,
    /// The sweep ends with this round (no runs).
    pub complete: bool,
}

/// Writes a round; `None` when another process (or a steer) moved the sweep on first.
pub async fn commit(
    db: &Db,
    id: Uuid,
    round: Round<'_>,
    events: impl FnOnce(&SweepRow) -> Vec<NewEvent>,
) -> Result<Option<(SweepRow, Vec<Event>)>> {
    let now = Utc::now();
    Ok(on_db!(db, p => async {
        let mut tx = p.begin().await?;
        let sql = format!(
            "UPDATE sweeps SET guide_round = guide_round + 1, guide = $3, total = total + $4, \
             tokens_in = tokens_in + $5, tokens_out = tokens_out + $6, cost = cost + $7, calls = calls + $8, \
             status = CASE WHEN $9 THEN 'completed' ELSE status END, space = COALESCE($11, space), \
             finished_at = CASE WHEN $9 THEN $10 ELSE finished_at END, updated_at = $10, driven_at = $10 \
             WHERE id = $1 AND guide_round = $2 AND status = 'running' RETURNING {COLUMNS}");
        let Some(row) = sqlx::query_as::<_, SweepRow>(sqlx::AssertSqlSafe(sql))
            .bind(id).bind(round.after).bind(Json(round.state)).bind(round.runs.len() as i64)
            .bind(round.spend.tokens_in).bind(round.spend.tokens_out).bind(round.spend.cost)
            .bind(round.spend.calls).bind(round.complete).bind(now).bind(round.space.map(Json))
            .fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        if round.complete {
            sqlx::query("UPDATE experiments SET status = 'completed', updated_at = $2 WHERE id = $1")
                .bind(row.experiment_id).bind(now).execute(&mut *tx).await?;
        }
        if !round.runs.is_empty() {
            let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM runs WHERE sweep_id = $1")
                .bind(id).fetch_one(&mut *tx).await?;
            super::bulk::insert_planned(&mut *tx, round.runs, &[], seq.map_or(0, |s| s + 1), now).await?;
        }
        let events = events(&row);
        let stored: Vec<Event> = super::bulk::insert_events(&mut *tx, &events).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some((row, stored)))
    }.await)?)
}
