//! Server functions for charts: drawn on the server (SVG), shown by the dashboard as is.

use leptos::prelude::*;
use uuid::Uuid;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::error::AppError;
use engine::types::{Chart, ChartInfo, ChartKind, ChartOptions};

/// The charts an experiment offers and the parameters score-vs-param can be drawn over.
#[server(prefix = "/sfn")]
pub async fn list_charts(experiment_id: Uuid) -> Result<Vec<ChartInfo>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::charts::list(&core, &actor, experiment_id).await?)
}

/// Charts with their SVGs: these `kinds` (every kind when empty), drawn with `options`
/// (`param` for score-vs-param, `scorer`, `top` for the distribution).
#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn get_charts(
    experiment_id: Uuid,
    kinds: Vec<ChartKind>,
    options: ChartOptions,
) -> Result<Vec<Chart>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::charts::charts(&core, &actor, experiment_id, &kinds, &options).await?)
}
