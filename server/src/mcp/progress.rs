//! Progress notifications for a sweep started by `run_sweep` with a progress token: done/total
//! and the best score so far, at most four a second, until the sweep ends or the client goes.

use std::time::Duration;

use engine::types::Sweep;
use engine::{Actor, Core};
use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::Peer;
use uuid::Uuid;

/// Fewest milliseconds between two notifications.
const EVERY: Duration = Duration::from_millis(250);
/// How often the sweep is read when no event arrives (a paused sweep, another process).
const TICK: Duration = Duration::from_secs(2);

pub fn follow(
    core: Core,
    actor: Actor,
    peer: Peer<RoleServer>,
    token: ProgressToken,
    sweep: &Sweep,
) {
    let sweep_id = sweep.id;
    let experiment_id = sweep.experiment_id;
    tokio::spawn(async move {
        if let Err(e) = run(&core, &actor, &peer, token, sweep_id, experiment_id).await {
            tracing::debug!(sweep = %sweep_id, error = %e, "MCP progress ended");
        }
    });
}

async fn run(
    core: &Core,
    actor: &Actor,
    peer: &Peer<RoleServer>,
    token: ProgressToken,
    sweep_id: Uuid,
    experiment_id: Uuid,
) -> Result<(), String> {
    let mut events = core.hub.subscribe();
    let experiment = engine::experiments::get_experiment(core, actor, experiment_id)
        .await
        .map_err(|e| e.to_string())?;
    let mut last: Option<(i64, i64, Option<f64>)> = None;
    loop {
        let sweep = match engine::sweeps::get_sweep(core, actor, sweep_id).await {
            Ok(s) => s,
            Err(engine::Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        let best = engine::leaderboard::top(core, &experiment)
            .await
            .map_err(|e| e.to_string())?;
        let best_score = best.as_ref().and_then(|b| b.score);
        let now = (sweep.progress.done, sweep.progress.total, best_score);
        let ended = matches!(sweep.status.as_str(), "completed" | "stopped");
        if last != Some(now) || ended {
            let mut message = format!(
                "{} {}/{} runs",
                sweep.status, sweep.progress.done, sweep.progress.total
            );
            if sweep.progress.failed > 0 {
                message.push_str(&format!(", {} failed", sweep.progress.failed));
            }
            if let Some(b) = &best {
                match b.score {
                    Some(s) => message.push_str(&format!("; best {s:.3} ({})", b.label)),
                    None => message.push_str(&format!("; best so far {}", b.label)),
                }
            }
            let param = ProgressNotificationParam::new(token.clone(), sweep.progress.done as f64)
                .with_total(sweep.progress.total as f64)
                .with_message(message);
            peer.notify_progress(param)
                .await
                .map_err(|e| e.to_string())?;
            last = Some(now);
        }
        if ended || peer.is_transport_closed() {
            return Ok(());
        }
        tokio::time::sleep(EVERY).await;
        // Wait for one of this sweep's events, or the tick.
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(e) if e.sweep_id == Some(sweep_id) => return,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                }
            }
        };
        let _ = tokio::time::timeout(TICK, wait).await;
    }
}
