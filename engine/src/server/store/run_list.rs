//! Run listings: filters (status, configuration, item, score range) and sorts (columns, any
//! scorer, the weighted score), paged in SQL so a list over 100,000 runs reads one page.
//!
//! Scores are the current ones only: a scorer's value counts when its fingerprint matches the
//! experiment's scorer settings (`ScoreExpr` carries them); the weighted score is computed in
//! SQL the way `scoring::weighted` does (Σ w·v / Σ w over the scorers that scored the run).

use uuid::Uuid;

use super::runs::RunRow;
use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::Run;

/// Sort orders for run listings (whitelisted: the SQL is chosen, never built from input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunSort {
    CreatedDesc,
    CreatedAsc,
    DurationDesc,
    DurationAsc,
    TokensDesc,
    CostDesc,
    /// By item, then repeat (a configuration's runs in the order of the data).
    Item,
    /// By the listing's score (`ScoreExpr`), unscored runs last.
    ScoreDesc,
    ScoreAsc,
}

/// What "score" means in a listing: one scorer's current value, or the weighted score.
#[derive(Clone, Debug)]
pub enum ScoreExpr {
    /// (scorer name, fingerprint of its current settings).
    Scorer(String, String),
    /// Every current scorer: (name, fingerprint, weight).
    Weighted(Vec<(String, String, f64)>),
}

/// A listing's filters and order.
#[derive(Clone, Debug)]
pub struct Listing<'a> {
    pub status: Option<&'a str>,
    pub config_key: Option<&'a str>,
    pub item_id: Option<&'a str>,
    /// Needed when filtering by score or sorting by it.
    pub score: Option<ScoreExpr>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    pub sort: RunSort,
}

enum Bind {
    Uuid(Uuid),
    Text(String),
    Real(f64),
    Int(i64),
}

const COLUMNS: &str = "id, experiment_id, sweep_id, config_hash, config_key, config, item_id, item_index, \
    item_version, repeat_index, status, error, started_at, completed_at, duration_ms, tokens_in, \
    tokens_out, cost_estimate, created_at";

/// The SQL for a run's score (`runs.id` in scope), adding its parameters to `binds`.
fn score_sql(expr: &ScoreExpr, binds: &mut Vec<Bind>) -> String {
    let mut param = |b: Bind| {
        binds.push(b);
        format!("${}", binds.len())
    };
    match expr {
        ScoreExpr::Scorer(name, fp) => format!(
            "(SELECT s.value FROM scores s WHERE s.run_id = runs.id AND s.scorer_name = {} AND s.fingerprint = {})",
            param(Bind::Text(name.clone())),
            param(Bind::Text(fp.clone()))
        ),
        ScoreExpr::Weighted(scorers) => {
            let weighted: Vec<_> = scorers.iter().filter(|(_, _, w)| *w > 0.0).collect();
            if weighted.is_empty() {
                return "CAST(NULL AS DOUBLE PRECISION)".to_owned();
            }
            let mut case = String::from("CASE");
            for (name, fp, w) in weighted {
                // Weights are finite numbers from the experiment's own config, written as literals.
                case.push_str(&format!(
                    " WHEN s.scorer_name = {} AND s.fingerprint = {} THEN {w:?}",
                    param(Bind::Text(name.clone())),
                    param(Bind::Text(fp.clone()))
                ));
            }
            case.push_str(" ELSE 0.0 END");
            format!(
                "(SELECT SUM(s.value * ({case})) / NULLIF(SUM({case}), 0) FROM scores s \
                 WHERE s.run_id = runs.id AND s.value IS NOT NULL)"
            )
        }
    }
}

/// A page of an experiment's runs matching `l`, and how many match in all.
pub async fn list(
    db: &Db,
    experiment_id: Uuid,
    l: &Listing<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Run>, i64)> {
    let mut binds = vec![Bind::Uuid(experiment_id)];
    let mut base = String::from("runs.experiment_id = $1");
    for (column, value) in [
        ("status", l.status),
        ("config_key", l.config_key),
        ("item_id", l.item_id),
    ] {
        if let Some(v) = value {
            binds.push(Bind::Text(v.to_owned()));
            base.push_str(&format!(" AND runs.{column} = ${}", binds.len()));
        }
    }
    let by_score = matches!(l.sort, RunSort::ScoreDesc | RunSort::ScoreAsc)
        || l.min_score.is_some()
        || l.max_score.is_some();
    let order = match l.sort {
        RunSort::CreatedDesc => "created_at DESC",
        RunSort::CreatedAsc => "created_at ASC",
        RunSort::DurationDesc => "duration_ms DESC NULLS LAST",
        RunSort::DurationAsc => "duration_ms ASC NULLS LAST",
        RunSort::TokensDesc => "tokens_in + tokens_out DESC",
        RunSort::CostDesc => "cost_estimate DESC NULLS LAST",
        RunSort::Item => "item_index ASC, repeat_index ASC, created_at ASC",
        RunSort::ScoreDesc => "sc DESC NULLS LAST",
        RunSort::ScoreAsc => "sc ASC NULLS LAST",
    };
    let (from, filter) = if by_score {
        let expr = match &l.score {
            Some(e) => score_sql(e, &mut binds),
            None => "CAST(NULL AS DOUBLE PRECISION)".to_owned(),
        };
        let mut filter = String::from("TRUE");
        for (op, bound) in [(">=", l.min_score), ("<=", l.max_score)] {
            if let Some(b) = bound {
                binds.push(Bind::Real(b));
                filter.push_str(&format!(" AND sc {op} ${}", binds.len()));
            }
        }
        (
            format!("(SELECT {COLUMNS}, {expr} AS sc FROM runs WHERE {base}) r"),
            filter,
        )
    } else {
        ("runs r".to_owned(), base.replace("runs.", "r."))
    };
    let count_sql = format!("SELECT COUNT(*) FROM {from} WHERE {filter}");
    let count_binds = binds.len();
    binds.push(Bind::Int(limit));
    binds.push(Bind::Int(offset));
    let page_sql = format!(
        "SELECT {COLUMNS} FROM {from} WHERE {filter} ORDER BY {order}, item_index, repeat_index, id LIMIT ${} OFFSET ${}",
        binds.len() - 1,
        binds.len()
    );
    macro_rules! bound {
        ($q:expr, $binds:expr) => {{
            let mut q = $q;
            for b in $binds {
                q = match b {
                    Bind::Uuid(v) => q.bind(*v),
                    Bind::Text(v) => q.bind(v.as_str()),
                    Bind::Real(v) => q.bind(*v),
                    Bind::Int(v) => q.bind(*v),
                };
            }
            q
        }};
    }
    let rows: Vec<RunRow> = on_db!(db, p => bound!(sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(page_sql.clone())), &binds)
        .fetch_all(p).await)?;
    let total: i64 = on_db!(db, p => bound!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.clone())), &binds[..count_binds])
        .fetch_one(p).await)?;
    Ok((rows.into_iter().map(Run::from).collect(), total))
}
