//! The `scores`, `human_ratings` and `scorer_secrets` tables.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::bulk_scores::{Bump, ScoreBulk};
use super::{Db, on_db};
use crate::server::error::Result;
use crate::server::scoring::ScoreRow;
use crate::types::{Rating, Score};

#[derive(Debug, sqlx::FromRow)]
pub struct StoredScore {
    pub scorer_name: String,
    pub fingerprint: String,
    pub value: Option<f64>,
    pub error: Option<String>,
    pub metadata: Json<Value>,
    pub created_at: DateTime<Utc>,
}

impl StoredScore {
    pub fn to_score(&self) -> Score {
        Score {
            scorer: self.scorer_name.clone(),
            value: self.value,
            error: self.error.clone(),
            metadata: self.metadata.0.clone(),
            created_at: self.created_at,
        }
    }
}

/// A run's scores (current and outdated; callers pick).
pub async fn for_run(db: &Db, run_id: Uuid) -> Result<Vec<StoredScore>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, StoredScore>(
        "SELECT scorer_name, fingerprint, value, error, metadata, created_at FROM scores WHERE run_id = $1 \
         ORDER BY scorer_name")
        .bind(run_id).fetch_all(p).await)?)
}

/// Scores of many runs: run → (scorer, fingerprint, value, has error).
pub type Brief = (String, String, Option<f64>, bool);

pub async fn brief_for_runs(db: &Db, run_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<Brief>>> {
    let mut out: HashMap<Uuid, Vec<Brief>> = HashMap::new();
    for chunk in run_ids.chunks(500) {
        let rows: Vec<(Uuid, String, String, Option<f64>, bool)> = match db {
            Db::Postgres(p) => sqlx::query_as(
                "SELECT run_id, scorer_name, fingerprint, value, error IS NOT NULL FROM scores WHERE run_id = ANY($1)")
                .bind(chunk.to_vec()).fetch_all(p).await?,
            Db::Sqlite(p) => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT run_id, scorer_name, fingerprint, value, error IS NOT NULL FROM scores WHERE run_id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build_query_as().fetch_all(p).await?
            }
        };
        for (run, name, fp, value, err) in rows {
            out.entry(run).or_default().push((name, fp, value, err));
        }
    }
    Ok(out)
}

#[derive(Debug, sqlx::FromRow)]
struct RatingRow {
    scorer_name: String,
    rater: String,
    raw: String,
    value: f64,
    comment: String,
    updated_at: DateTime<Utc>,
}

impl From<RatingRow> for Rating {
    fn from(r: RatingRow) -> Rating {
        Rating {
            scorer: r.scorer_name,
            rater: r.rater,
            raw: r.raw,
            value: r.value,
            comment: r.comment,
            rater_name: None,
            updated_at: r.updated_at,
        }
    }
}

pub async fn ratings_for_run(db: &Db, run_id: Uuid) -> Result<Vec<Rating>> {
    let rows = on_db!(db, p => sqlx::query_as::<_, RatingRow>(
        "SELECT scorer_name, rater, raw, value, comment, updated_at FROM human_ratings WHERE run_id = $1 \
         ORDER BY scorer_name, updated_at")
        .bind(run_id).fetch_all(p).await)?;
    Ok(rows.into_iter().map(Rating::from).collect())
}

/// Ratings of many runs: run → scorer → values.
pub async fn ratings_for_runs(
    db: &Db,
    run_ids: &[Uuid],
) -> Result<HashMap<Uuid, HashMap<String, Vec<f64>>>> {
    let mut out: HashMap<Uuid, HashMap<String, Vec<f64>>> = HashMap::new();
    for chunk in run_ids.chunks(500) {
        let rows: Vec<(Uuid, String, f64)> =
            match db {
                Db::Postgres(p) => sqlx::query_as(
                    "SELECT run_id, scorer_name, value FROM human_ratings WHERE run_id = ANY($1)",
                )
                .bind(chunk.to_vec())
                .fetch_all(p)
                .await?,
                Db::Sqlite(p) => {
                    let mut q = sqlx::QueryBuilder::new(
                        "SELECT run_id, scorer_name, value FROM human_ratings WHERE run_id IN (",
                    );
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    q.build_query_as().fetch_all(p).await?
                }
            };
        for (run, name, value) in rows {
            out.entry(run)
                .or_default()
                .entry(name)
                .or_default()
                .push(value);
        }
    }
    Ok(out)
}

/// A rating to store, and the run's configuration (its leaderboard entry is bumped).
pub struct NewRating<'a> {
    pub run_id: Uuid,
    pub experiment_id: Uuid,
    pub config_key: &'a str,
    pub config: String,
    pub scorer_name: &'a str,
    pub rater: &'a str,
    pub raw: &'a str,
    pub value: f64,
    pub comment: &'a str,
}

/// Stores (or replaces) a rating, or withdraws it (`value` = None), then rewrites the run's
/// score for that scorer from every rating left, in one transaction. Returns the ratings.
pub async fn put_rating(
    db: &Db,
    r: &NewRating<'_>,
    withdraw: bool,
    fingerprint: &str,
) -> Result<Vec<f64>> {
    let now = Utc::now();
    let postgres = matches!(db, Db::Postgres(_));
    Ok(on_db!(db, p => {
        let mut tx = p.begin().await?;
        // Two raters at once: each recomputes the mean from what it reads, so the second waits
        // for the first (on PostgreSQL, by locking the run; SQLite writes one at a time).
        if postgres {
            sqlx::query("SELECT id FROM runs WHERE id = $1 FOR UPDATE")
                .bind(r.run_id).execute(&mut *tx).await?;
        }
        if withdraw {
            sqlx::query("DELETE FROM human_ratings WHERE run_id = $1 AND scorer_name = $2 AND rater = $3")
                .bind(r.run_id).bind(r.scorer_name).bind(r.rater).execute(&mut *tx).await?;
        } else {
            sqlx::query(
                "INSERT INTO human_ratings (run_id, scorer_name, rater, raw, value, comment, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (run_id, scorer_name, rater) DO UPDATE SET \
                 raw = excluded.raw, value = excluded.value, comment = excluded.comment, updated_at = excluded.updated_at")
                .bind(r.run_id).bind(r.scorer_name).bind(r.rater).bind(r.raw).bind(r.value).bind(r.comment).bind(now)
                .execute(&mut *tx).await?;
        }
        let values: Vec<f64> = sqlx::query_scalar(
            "SELECT value FROM human_ratings WHERE run_id = $1 AND scorer_name = $2 ORDER BY updated_at")
            .bind(r.run_id).bind(r.scorer_name).fetch_all(&mut *tx).await?;
        if values.is_empty() {
            sqlx::query("DELETE FROM scores WHERE run_id = $1 AND scorer_name = $2")
                .bind(r.run_id).bind(r.scorer_name).execute(&mut *tx).await?;
        } else {
            let row = crate::server::scoring::human::score_row(r, fingerprint, &values);
            tx.upsert_scores(&[&row], now).await?;
        }
        let mut bumps = vec![Bump { experiment_id: r.experiment_id, config_key: r.config_key, config: r.config.clone() }];
        tx.bump_entries(&mut bumps).await?;
        tx.commit().await?;
        values
    }))
}

/// Writes scores (and the cache entries their judge and embedding calls produced), bumping
/// the leaderboard entries of their configurations, in one transaction.
pub async fn write(
    db: &Db,
    rows: &[ScoreRow],
    configs: &HashMap<(Uuid, String), String>,
    cache_puts: &[(String, super::cache::CachedResponse)],
) -> Result<()> {
    let now = Utc::now();
    let refs: Vec<&ScoreRow> = rows.iter().collect();
    let mut seen = std::collections::HashSet::new();
    let puts: Vec<&(String, super::cache::CachedResponse)> = cache_puts
        .iter()
        .filter(|(k, _)| seen.insert(k.as_str()))
        .collect();
    on_db!(db, p => {
        let mut tx = p.begin().await?;
        use super::bulk::Bulk;
        tx.insert_cache(&puts, now).await?;
        tx.upsert_scores(&refs, now).await?;
        let mut bumps: Vec<Bump<'_>> = configs
            .iter()
            .map(|((e, k), c)| Bump { experiment_id: *e, config_key: k.as_str(), config: c.clone() })
            .collect();
        tx.bump_entries(&mut bumps).await?;
        tx.commit().await
    })?;
    Ok(())
}

/// Forgets the scores of scorers no longer configured (`$keep`: the names that stay), inside
/// a transaction `$tx`.
macro_rules! forget_removed_on {
    ($tx:ident, $experiment_id:expr, $keep:expr) => {{
        let mut q = sqlx::QueryBuilder::new("DELETE FROM scores WHERE experiment_id = ");
        q.push_bind($experiment_id);
        if !$keep.is_empty() {
            q.push(" AND scorer_name NOT IN (");
            let mut list = q.separated(", ");
            for k in $keep {
                list.push_bind(k.clone());
            }
            q.push(")");
        }
        q.build().execute(&mut *$tx).await?.rows_affected()
    }};
}
pub(crate) use forget_removed_on;

/// Replaces every scorer secret of an experiment inside a transaction `$tx`.
macro_rules! replace_secrets_on {
    ($tx:ident, $experiment_id:expr, $secrets:expr) => {
        sqlx::query("DELETE FROM scorer_secrets WHERE experiment_id = $1")
            .bind($experiment_id)
            .execute(&mut *$tx)
            .await?;
        for (scorer, header, sealed) in $secrets {
            sqlx::query("INSERT INTO scorer_secrets (experiment_id, scorer_name, header, sealed) VALUES ($1, $2, $3, $4)")
                .bind($experiment_id).bind(scorer).bind(header).bind(sealed).execute(&mut *$tx).await?;
        }
    };
}
pub(crate) use replace_secrets_on;

/// The sealed header values of a webhook scorer: (header, sealed).
pub async fn scorer_secrets(
    db: &Db,
    experiment_id: Uuid,
    scorer: &str,
) -> Result<Vec<(String, String)>> {
    Ok(on_db!(db, p => sqlx::query_as(
        "SELECT header, sealed FROM scorer_secrets WHERE experiment_id = $1 AND scorer_name = $2 ORDER BY header")
        .bind(experiment_id).bind(scorer).fetch_all(p).await)?)
}

/// Replaces every scorer secret of an experiment: (scorer, header, sealed).
pub async fn set_scorer_secrets(
    db: &Db,
    experiment_id: Uuid,
    secrets: &[(String, String, String)],
) -> Result<()> {
    on_db!(db, p => {
        let mut tx = p.begin().await?;
        replace_secrets_on!(tx, experiment_id, secrets);
        tx.commit().await
    })?;
    Ok(())
}

/// Every sealed header value of an experiment's webhook scorers: (scorer, header, sealed).
pub async fn all_scorer_secrets(
    db: &Db,
    experiment_id: Uuid,
) -> Result<Vec<(String, String, String)>> {
    Ok(on_db!(db, p => sqlx::query_as(
        "SELECT scorer_name, header, sealed FROM scorer_secrets WHERE experiment_id = $1 ORDER BY scorer_name, header")
        .bind(experiment_id).fetch_all(p).await)?)
}
