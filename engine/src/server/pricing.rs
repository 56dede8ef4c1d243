//! Model prices (USD per million tokens) and cost estimates. Defaults cover common hosted
//! models and are inserted without overwriting an admin's edits; unknown models have no cost
//! (shown as absent, never as zero).

use std::collections::HashMap;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::store::pricing as store;
use crate::types::ModelPrice;

/// Published list prices at the time of writing; admins can edit them.
const DEFAULTS: &[(&str, f64, f64)] = &[
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("o3-mini", 1.10, 4.40),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-opus-4", 15.00, 75.00),
    ("sim-large", 0.0, 0.0),
    ("sim-medium", 0.0, 0.0),
    ("sim-small", 0.0, 0.0),
];

pub async fn seed_defaults(core: &Core) -> Result<()> {
    for (model, input, output) in DEFAULTS {
        store::insert_default(
            &core.db,
            &ModelPrice {
                model: (*model).to_owned(),
                input_per_million: *input,
                output_per_million: *output,
            },
        )
        .await?;
    }
    Ok(())
}

pub async fn list_prices(core: &Core, _actor: &Actor) -> Result<Vec<ModelPrice>> {
    store::list(&core.db).await
}

/// Sets prices (admins only); all are checked before any is written.
pub async fn set_prices(
    core: &Core,
    actor: &Actor,
    prices: Vec<ModelPrice>,
) -> Result<Vec<ModelPrice>> {
    actor.require_admin()?;
    for (i, p) in prices.iter().enumerate() {
        if p.model.trim().is_empty() || p.model.len() > 200 {
            return Err(Error::invalid(
                format!("[{i}].model"),
                "must be 1 to 200 characters",
            ));
        }
        for (field, v) in [
            ("input_per_million", p.input_per_million),
            ("output_per_million", p.output_per_million),
        ] {
            if !(v.is_finite() && (0.0..=1_000_000.0).contains(&v)) {
                return Err(Error::invalid(
                    format!("[{i}].{field}"),
                    "must be between 0 and 1000000",
                ));
            }
        }
    }
    let before = PriceBook::load(core).await?;
    let mut after = PriceBook(before.0.clone());
    for p in &prices {
        after
            .0
            .insert(p.model.clone(), (p.input_per_million, p.output_per_million));
    }
    let reprice = changes(core, &before, &after).await?;
    store::apply(&core.db, &prices, None, &reprice).await?;
    store::list(&core.db).await
}

/// Removes a model's price (admins only); its runs then show no cost (or a shorter name's).
pub async fn delete_price(core: &Core, actor: &Actor, model: &str) -> Result<()> {
    actor.require_admin()?;
    let before = PriceBook::load(core).await?;
    let mut after = PriceBook(before.0.clone());
    if after.0.remove(model).is_none() {
        return Err(Error::NotFound("price"));
    }
    let reprice = changes(core, &before, &after).await?;
    if store::apply(&core.db, &[], Some(model), &reprice).await? {
        Ok(())
    } else {
        Err(Error::NotFound("price"))
    }
}

/// The models runs were priced on whose price differs between two price books: stored costs
/// are estimates at the current prices, so a price change re-prices every run on that model
/// (and the leaderboards show the new costs).
async fn changes(
    core: &Core,
    before: &PriceBook,
    after: &PriceBook,
) -> Result<Vec<(String, Option<(f64, f64)>)>> {
    Ok(store::models_used(&core.db)
        .await?
        .into_iter()
        .filter(|m| before.price(m) != after.price(m))
        .map(|m| {
            let price = after.price(&m);
            (m, price)
        })
        .collect())
}

/// Prices by model, for estimating a batch of runs.
#[derive(PartialEq)]
pub struct PriceBook(HashMap<String, (f64, f64)>);

impl PriceBook {
    pub async fn load(core: &Core) -> Result<PriceBook> {
        Ok(PriceBook(
            store::list(&core.db)
                .await?
                .into_iter()
                .map(|p| (p.model, (p.input_per_million, p.output_per_million)))
                .collect(),
        ))
    }

    /// The price of `model`: an exact match, else the longest known name that `model` extends
    /// with a dash (so `gpt-4o-2024-08-06` is priced as `gpt-4o`).
    pub fn price(&self, model: &str) -> Option<(f64, f64)> {
        if let Some(p) = self.0.get(model) {
            return Some(*p);
        }
        self.0
            .iter()
            .filter(|(name, _)| {
                model
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }

    pub fn cost(&self, model: &str, tokens_in: i64, tokens_out: i64) -> Option<f64> {
        self.price(model)
            .map(|(i, o)| (tokens_in as f64 * i + tokens_out as f64 * o) / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_match_exactly_or_by_dated_suffix() {
        let book = PriceBook(
            [
                ("gpt-4o".to_owned(), (2.5, 10.0)),
                ("gpt-4o-mini".to_owned(), (0.15, 0.6)),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(book.price("gpt-4o-mini-2024-07-18"), Some((0.15, 0.6)));
        assert_eq!(book.price("gpt-4o-2024-08-06"), Some((2.5, 10.0)));
        assert_eq!(book.price("gpt-4oo"), None);
        assert_eq!(book.cost("gpt-4o", 1_000_000, 100_000), Some(3.5));
        assert_eq!(book.cost("llama3", 10, 10), None);
    }
}
