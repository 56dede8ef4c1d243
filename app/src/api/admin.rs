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

/// Every webhook with its queue and last delivery.
#[server(prefix = "/sfn")]
pub async fn list_webhooks() -> Result<Vec<engine::types::Webhook>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::webhooks::list_webhooks(&core, &actor).await?)
}

/// A webhook's newest deliveries.
#[server(prefix = "/sfn")]
pub async fn webhook_deliveries(
    id: Uuid,
    limit: i64,
) -> Result<engine::types::DeliveryPage, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::webhooks::list_deliveries(&core, &actor, id, limit, 0).await?)
}

/// Adds a webhook (one optional custom header); the answer holds its secret, shown once.
#[server(prefix = "/sfn")]
pub async fn create_webhook(
    name: String,
    url: String,
    events: Vec<String>,
    header_name: String,
    header_value: String,
) -> Result<engine::types::CreatedWebhook, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let mut headers = std::collections::BTreeMap::new();
    if !header_name.trim().is_empty() {
        headers.insert(header_name.trim().to_owned(), header_value);
    }
    let new = engine::types::NewWebhook {
        name,
        url,
        events,
        headers,
        enabled: true,
    };
    Ok(engine::webhooks::create_webhook(&core, &actor, new).await?)
}

/// Turns a webhook on (clearing its failure record) or off.
#[server(prefix = "/sfn")]
pub async fn set_webhook_enabled(
    id: Uuid,
    enabled: bool,
) -> Result<engine::types::Webhook, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let update = engine::types::WebhookUpdate {
        enabled: Some(enabled),
        ..Default::default()
    };
    Ok(engine::webhooks::update_webhook(&core, &actor, id, update).await?)
}

#[server(prefix = "/sfn")]
pub async fn delete_webhook(id: Uuid) -> Result<(), AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::webhooks::delete_webhook(&core, &actor, id).await?)
}

/// Sends a signed `webhook.test` now.
#[server(prefix = "/sfn")]
pub async fn test_webhook(id: Uuid) -> Result<engine::types::WebhookTest, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::webhooks::test_webhook(&core, &actor, id).await?)
}
