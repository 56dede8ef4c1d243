//! Server functions for the admin page's price table and response cache.

use leptos::prelude::*;
use uuid::Uuid;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::error::AppError;
use engine::types::{CacheStats, ModelPrice};

#[server(prefix = "/sfn")]
pub async fn list_prices() -> Result<Vec<ModelPrice>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::pricing::list_prices(&core, &actor).await?)
}

/// Sets one model's price (USD per million tokens); runs on that model are re-priced.
#[server(prefix = "/sfn")]
pub async fn save_price(
    model: String,
    input_per_million: f64,
    output_per_million: f64,
) -> Result<Vec<ModelPrice>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let price = ModelPrice {
        model: model.trim().to_owned(),
        input_per_million,
        output_per_million,
    };
    Ok(engine::pricing::set_prices(&core, &actor, vec![price]).await?)
}

#[server(prefix = "/sfn")]
pub async fn remove_price(model: String) -> Result<(), AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::pricing::delete_price(&core, &actor, &model).await?)
}

#[server(prefix = "/sfn")]
pub async fn get_cache_stats() -> Result<CacheStats, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::admin::cache_stats(&core, &actor).await?)
}

/// Forgets cached responses: every one (no experiment), or those one experiment's runs used.
#[server(prefix = "/sfn")]
pub async fn clear_cache(experiment_id: Option<Uuid>) -> Result<u64, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(match experiment_id {
        Some(id) => engine::runs::invalidate_experiment_cache(&core, &actor, id).await?,
        None => engine::runs::invalidate_all_cache(&core, &actor).await?,
    })
}

/// Every experiment (newest first, up to 500) as (id, name), for pickers.
#[server(prefix = "/sfn")]
pub async fn experiment_choices() -> Result<Vec<(Uuid, String)>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(
        engine::experiments::list_experiments(&core, &actor, None, 500, 0)
            .await?
            .into_iter()
            .map(|e| (e.id, e.name))
            .collect(),
    )
}
