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
        ScoreExpr::Weighted(scorers) => match weights_case(scorers, binds) {
            Some((case, _)) => format!(
                "(SELECT SUM(s.value * ({case})) / NULLIF(SUM({case}), 0) FROM scores s \
                 WHERE s.run_id = runs.id AND s.value IS NOT NULL)"
            ),
            None => "CAST(NULL AS DOUBLE PRECISION)".to_owned(),
        },
    }
}

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

/// The runs' own filters as SQL on `alias` (the experiment is `$1`), adding their parameters.
fn run_filters(l: &Listing<'_>, alias: &str, binds: &mut Vec<Bind>) -> String {
    let mut sql = String::new();
    for (column, value) in [
        ("status", l.status),
        ("config_key", l.config_key),
        ("item_id", l.item_id),
    ] {
        if let Some(v) = value {
            binds.push(Bind::Text(v.to_owned()));
            sql.push_str(&format!(" AND {alias}.{column} = ${}", binds.len()));
        }
    }
    sql
}

/// `CASE` giving each current, positively weighted scorer's weight (0 for other rows of
/// `scores s`), and the list of their names' parameters (for `s.scorer_name IN (…)`, which
/// lets a read of the experiment's scores stay within `scores_by_value`); `None` when no
/// scorer has a weight.
fn weights_case(
    scorers: &[(String, String, f64)],
    binds: &mut Vec<Bind>,
) -> Option<(String, String)> {
    let weighted: Vec<_> = scorers.iter().filter(|(_, _, w)| *w > 0.0).collect();
    if weighted.is_empty() {
        return None;
    }
    let mut case = String::from("CASE");
    let mut names = Vec::new();
    for (name, fp, w) in weighted {
        binds.push(Bind::Text(name.clone()));
        binds.push(Bind::Text(fp.clone()));
        names.push(format!("${}", binds.len() - 1));
        // Weights are finite numbers from the experiment's own config, written as literals.
        case.push_str(&format!(
            " WHEN s.scorer_name = ${} AND s.fingerprint = ${} THEN {w:?}",
            binds.len() - 1,
            binds.len()
        ));
    }
    case.push_str(" ELSE 0.0 END");
    Some((case, names.join(", ")))
}

/// Which rows of `scores s` make a run "scored" by `expr`, its parameters added.
fn scored_by(expr: &ScoreExpr, binds: &mut Vec<Bind>) -> Option<String> {
    match expr {
        ScoreExpr::Scorer(name, fp) => {
            binds.push(Bind::Text(name.clone()));
            binds.push(Bind::Text(fp.clone()));
            Some(format!(
                "s.scorer_name = ${} AND s.fingerprint = ${}",
                binds.len() - 1,
                binds.len()
            ))
        }
        ScoreExpr::Weighted(scorers) => weights_case(scorers, binds)
            .map(|(c, names)| format!("s.scorer_name IN ({names}) AND ({c}) > 0")),
    }
}

/// A page sorted by a score: ranks the scored runs from `scores` alone (one scorer walks
/// `scores_by_value` in score order, so a page costs about its own size; the weighted score
/// aggregates the experiment's score rows), then reads those runs. Runs without that score
/// come after the scored ones, by item (unless a score range leaves them out).
async fn by_score(
    db: &Db,
    experiment_id: Uuid,
    l: &Listing<'_>,
    expr: &ScoreExpr,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Run>, i64)> {
    let mut binds = vec![Bind::Uuid(experiment_id)];
    let direction = if l.sort == RunSort::ScoreAsc {
        "ASC"
    } else {
        "DESC"
    };
    let (scored_from, key, id) = match expr {
        ScoreExpr::Scorer(name, fp) => {
            binds.push(Bind::Text(name.clone()));
            binds.push(Bind::Text(fp.clone()));
            let mut filter = String::from(
                "s.experiment_id = $1 AND s.scorer_name = $2 AND s.fingerprint = $3 AND s.value IS NOT NULL",
            );
            for (op, bound) in [(">=", l.min_score), ("<=", l.max_score)] {
                if let Some(b) = bound {
                    binds.push(Bind::Real(b));
                    filter.push_str(&format!(" AND s.value {op} ${}", binds.len()));
                }
            }
            let on_runs = run_filters(l, "r", &mut binds);
            let from = if on_runs.is_empty() {
                "scores s"
            } else {
                "scores s JOIN runs r ON r.id = s.run_id"
            };
            (
                format!("{from} WHERE {filter}{on_runs}"),
                "s.value",
                "s.run_id",
            )
        }
        ScoreExpr::Weighted(scorers) => match weights_case(scorers, &mut binds) {
            Some((case, names)) => {
                let on_runs = run_filters(l, "r", &mut binds);
                let from = if on_runs.is_empty() {
                    "scores s"
                } else {
                    "scores s JOIN runs r ON r.id = s.run_id"
                };
                let mut filter = String::from("t.sc IS NOT NULL");
                for (op, bound) in [(">=", l.min_score), ("<=", l.max_score)] {
                    if let Some(b) = bound {
                        binds.push(Bind::Real(b));
                        filter.push_str(&format!(" AND t.sc {op} ${}", binds.len()));
                    }
                }
                (
                    format!(
                        "(SELECT s.run_id AS run_id, SUM(s.value * ({case})) / NULLIF(SUM({case}), 0) AS sc \
                         FROM {from} WHERE s.experiment_id = $1 AND s.scorer_name IN ({names}) \
                         AND s.value IS NOT NULL{on_runs} GROUP BY s.run_id) t \
                         WHERE {filter}"
                    ),
                    "t.sc",
                    "t.run_id",
                )
            }
            // No weighted scorer: nothing is scored.
            None => ("scores s WHERE FALSE".to_owned(), "s.value", "s.run_id"),
        },
    };
    let count_sql = format!("SELECT COUNT(*) FROM {scored_from}");
    let mut ids: Vec<Uuid> = Vec::new();
    let scored: i64 = if matches!(expr, ScoreExpr::Weighted(_)) {
        // The weighted score aggregates every score row: one pass gives the page and, as a
        // window over the same rows, the count (counted apart only past the last page).
        let page_binds = binds.len();
        binds.push(Bind::Int(limit));
        binds.push(Bind::Int(offset));
        let n = binds.len();
        let page_sql = format!(
            "SELECT {id}, COUNT(*) OVER () FROM {scored_from} ORDER BY {key} {direction}, {id} {direction} LIMIT ${} OFFSET ${}",
            n - 1,
            n
        );
        let rows: Vec<(Uuid, i64)> = on_db!(db, p => bound!(sqlx::query_as(sqlx::AssertSqlSafe(page_sql.clone())), &binds)
            .fetch_all(p).await)?;
        binds.truncate(page_binds);
        match rows.first() {
            Some(&(_, count)) => {
                ids = rows.into_iter().map(|(id, _)| id).collect();
                count
            }
            None if offset == 0 => 0,
            None => {
                on_db!(db, p => bound!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.clone())), &binds)
                .fetch_one(p).await)?
            }
        }
    } else {
        // One scorer's page walks `scores_by_value` and stops at the page; its count is a
        // covering index range.
        let scored: i64 = on_db!(db, p => bound!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.clone())), &binds)
            .fetch_one(p).await)?;
        if offset < scored {
            binds.push(Bind::Int(limit));
            binds.push(Bind::Int(offset));
            let n = binds.len();
            let page_sql = format!(
                "SELECT {id} FROM {scored_from} ORDER BY {key} {direction}, {id} {direction} LIMIT ${} OFFSET ${}",
                n - 1,
                n
            );
            ids = on_db!(db, p => bound!(sqlx::query_scalar(sqlx::AssertSqlSafe(page_sql.clone())), &binds)
                .fetch_all(p).await)?;
        }
        scored
    };
    let mut total = scored;
    if l.min_score.is_none() && l.max_score.is_none() {
        // The unscored runs: every run matching the filters, less the scored ones.
        let mut binds = vec![Bind::Uuid(experiment_id)];
        let on_runs = run_filters(l, "r", &mut binds);
        let all_sql = format!("SELECT COUNT(*) FROM runs r WHERE r.experiment_id = $1{on_runs}");
        let all: i64 = on_db!(db, p => bound!(sqlx::query_scalar(sqlx::AssertSqlSafe(all_sql.clone())), &binds)
            .fetch_one(p).await)?;
        total = all;
        let wanted = limit - ids.len() as i64;
        if wanted > 0 && all > scored {
            let unscored = match scored_by(expr, &mut binds) {
                Some(cond) => format!(
                    " AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.run_id = r.id AND s.value IS NOT NULL AND {cond})"
                ),
                None => String::new(),
            };
            binds.push(Bind::Int(wanted));
            binds.push(Bind::Int((offset - scored).max(0)));
            let n = binds.len();
            let rest_sql = format!(
                "SELECT r.id FROM runs r WHERE r.experiment_id = $1{on_runs}{unscored} \
                 ORDER BY r.item_index, r.repeat_index, r.created_at, r.id LIMIT ${} OFFSET ${}",
                n - 1,
                n
            );
            let rest: Vec<Uuid> = on_db!(db, p => bound!(sqlx::query_scalar(sqlx::AssertSqlSafe(rest_sql.clone())), &binds)
                .fetch_all(p).await)?;
            ids.extend(rest);
        }
    }
    let mut runs = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(run) = super::runs::get(db, id).await? {
            runs.push(run);
        }
    }
    Ok((runs, total))
}

/// A page of an experiment's runs matching `l`, and how many match in all.
pub async fn list(
    db: &Db,
    experiment_id: Uuid,
    l: &Listing<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Run>, i64)> {
    // Ranking from the scores table pays off over many runs; one configuration's or one item's
    // runs are few enough to score one by one (their own index finds them).
    if let (Some(expr), RunSort::ScoreDesc | RunSort::ScoreAsc) = (&l.score, l.sort)
        && l.config_key.is_none()
        && l.item_id.is_none()
    {
        return by_score(db, experiment_id, l, expr, limit, offset).await;
    }
    let mut binds = vec![Bind::Uuid(experiment_id)];
    let base = format!(
        "runs.experiment_id = $1{}",
        run_filters(l, "runs", &mut binds)
    );
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
    let rows: Vec<RunRow> = on_db!(db, p => bound!(sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(page_sql.clone())), &binds)
        .fetch_all(p).await)?;
    let total: i64 = on_db!(db, p => bound!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.clone())), &binds[..count_binds])
        .fetch_one(p).await)?;
    Ok((rows.into_iter().map(Run::from).collect(), total))
}
