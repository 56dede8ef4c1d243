//! Ask/tell: an agent (over REST or MCP) proposes the next configurations of a running guided
//! sweep; the next round takes them before its own search, races them like any other, and
//! the agent reads the results and proposes more. With `search: agent` they are the only
//! source, and the sweep waits for them between rounds.

use super::*;
use crate::server::store::guided::{self as guided_store, Round, Spend};
use crate::types::{SkippedSuggestion, SuggestionRequest, SuggestionResult};

/// Most configurations one request may suggest, and may wait in the queue.
pub const MAX_SUGGESTIONS: usize = 100;

/// `POST /api/v1/experiments/{id}/sweep/suggestions`.
pub async fn suggest(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    req: SuggestionRequest,
) -> Result<SuggestionResult> {
    actor.require_write()?;
    if req.configurations.is_empty() || req.configurations.len() > MAX_SUGGESTIONS {
        return Err(Error::invalid(
            "configurations",
            format!("must hold 1 to {MAX_SUGGESTIONS} configurations"),
        ));
    }
    // A few tries: a round may be written between the read and the write.
    for _ in 0..5 {
        let row = super::super::steer::active_or_conflict(core, experiment_id).await?;
        let Some(Json(mut state)) = row.guide.clone() else {
            return Err(Error::conflict(
                "experiment",
                "the running sweep is not guided; suggestions go to a guided sweep",
            ));
        };
        let Some(mut e) = experiments::get(&core.db, experiment_id).await? else {
            return Err(Error::NotFound("experiment"));
        };
        e.parameter_space = row.space.0.clone();
        let mut known: HashSet<String> = state
            .configurations
            .iter()
            .map(|c| c.config_key.clone())
            .collect();
        for queued in &state.suggestions {
            if let Ok((k, _)) = resolve(&e, queued, "configurations") {
                known.insert(k);
            }
        }
        let mut accepted = Vec::new();
        let mut skipped = Vec::new();
        for (i, s) in req.configurations.iter().enumerate() {
            // Every suggestion is checked before any is queued.
            let (key, _) = resolve(&e, &s.stages, &format!("configurations[{i}]"))?;
            if !known.insert(key.clone()) {
                skipped.push(SkippedSuggestion {
                    index: i as u32,
                    config_key: key,
                    reason: "already tried or queued in this sweep".into(),
                });
                continue;
            }
            accepted.push((key, s.stages.clone()));
        }
        if state.suggestions.len() + accepted.len() > MAX_SUGGESTIONS {
            return Err(Error::conflict(
                "configurations",
                format!(
                    "{} suggestions are already waiting; at most {MAX_SUGGESTIONS} may wait",
                    state.suggestions.len()
                ),
            ));
        }
        state
            .suggestions
            .extend(accepted.iter().map(|(_, c)| c.clone()));
        let pending = state.suggestions.len();
        let keys: Vec<String> = accepted.into_iter().map(|(k, _)| k).collect();
        let committed = guided_store::commit(
            &core.db,
            row.id,
            Round {
                after: row.guide_round,
                state: &state,
                runs: &[],
                space: None,
                spend: Spend::default(),
                complete: false,
            },
            |row| {
                vec![sweep_event(
                    "sweep.round",
                    row,
                    json!({
                        "suggested": keys,
                        "skipped": skipped.len(),
                        "message": format!("An agent suggested {} configuration(s); {} skipped.", keys.len(), skipped.len()),
                    }),
                )]
            },
        )
        .await?;
        let Some((row, events)) = committed else {
            continue;
        };
        crate::server::events::publish(core, events).await;
        if row.status == "running" && row.done >= row.total {
            // Idle between rounds: the next round takes them now.
            crate::server::jobs::push_lanes(core, row.id, 1).await?;
        }
        return Ok(SuggestionResult {
            sweep_id: row.id,
            accepted: keys,
            skipped,
            waiting: pending as u32,
        });
    }
    Err(Error::conflict(
        "experiment",
        "the sweep kept changing; try again",
    ))
}
