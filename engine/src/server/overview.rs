//! The dashboard's home: totals over every run, the sweeps running or paused, the latest new
//! bests and the experiments changed most recently. Anyone who may read may see it.

use super::auth::Actor;
use super::core::Core;
use super::error::Result;
use super::store::events::EventFilter;
use super::store::{cache, events, projects, stats, sweeps};
use crate::types::{ActiveSweep, Overview, Totals};

/// How many sweeps, new bests and experiments the overview lists.
pub const LISTED: i64 = 10;

pub async fn get_overview(core: &Core, _actor: &Actor) -> Result<Overview> {
    let t = stats::totals(&core.db).await?;
    let runs = stats::run_counts(&core.db).await?;
    let (hits, misses) = cache::counters(&core.db).await?;
    let lookups = hits + misses;
    let mut active = Vec::new();
    for (row, experiment_name, project_id, project_name) in
        sweeps::list_active(&core.db, LISTED).await?
    {
        let mut sweep = row.to_sweep();
        sweep.in_flight = sweeps::in_flight(&core.db, row.id).await?;
        active.push(ActiveSweep {
            sweep: sweep.into(),
            experiment_name,
            project_id,
            project_name,
        });
    }
    let bests = EventFilter {
        types: Some("new_best_found".to_owned()),
        ..EventFilter::default()
    };
    let (bests, _) = events::list(&core.db, &bests, LISTED, 0).await?;
    Ok(Overview {
        totals: Totals {
            runs,
            tokens_in: t.tokens_in,
            tokens_out: t.tokens_out,
            cost: (t.cost_estimate * 1e6).round() / 1e6,
            cache_hits: hits,
            cache_misses: misses,
            cache_hit_rate: (lookups > 0).then(|| hits as f64 / lookups as f64),
            projects: t.projects,
            experiments: t.experiments,
        },
        sweeps: active,
        bests,
        experiments: projects::recent_experiments(&core.db, LISTED).await?,
    })
}
