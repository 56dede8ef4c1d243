//! `datasets`, `dataset_versions` and `dataset_items`. An item row is one revision, part of
//! the versions `since_version <= v < until_version`; a change closes the rows it replaces
//! and inserts new ones, so every version can be read back whole.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::{Error, Result};
use crate::types::{Item, ItemsSummary};

/// Rows of version `$2` of dataset `$1`.
macro_rules! live {
    () => {
        "dataset_id = $1 AND since_version <= $2 AND (until_version IS NULL OR until_version > $2)"
    };
}

macro_rules! item_columns {
    () => {
        "item_id, position, reference, tags, split, input"
    };
}

#[derive(Debug, sqlx::FromRow)]
struct ItemRow {
    item_id: String,
    position: i64,
    reference: Option<String>,
    tags: Json<Vec<String>>,
    split: Option<String>,
    input: Json<BTreeMap<String, Value>>,
}

impl From<ItemRow> for Item {
    fn from(r: ItemRow) -> Self {
        Item {
            id: r.item_id,
            position: r.position,
            input: r.input.0,
            reference: r.reference,
            tags: r.tags.0,
            split: r.split,
        }
    }
}

/// A dataset's own row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DatasetRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: Option<String>,
    pub description: String,
    pub version: i64,
}

/// The input's names, sorted, as stored in `keys`.
pub fn keys_of(input: &BTreeMap<String, Value>) -> String {
    serde_json::to_string(&input.keys().collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

/// A version's item count and fields: names in the order they first appear, and the names
/// every item has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub count: i64,
    pub fields: Vec<String>,
    pub common_fields: Vec<String>,
}

impl Stats {
    /// From (keys, items with them), ordered by where each key set first appears.
    fn from_groups(groups: Vec<(String, i64, i64)>) -> Stats {
        let mut stats = Stats::default();
        let mut seen = BTreeSet::new();
        let mut common: Option<BTreeSet<String>> = None;
        for (keys, n, _) in groups {
            let keys: Vec<String> = serde_json::from_str(&keys).unwrap_or_default();
            stats.count += n;
            for k in &keys {
                if seen.insert(k.clone()) {
                    stats.fields.push(k.clone());
                }
            }
            let set: BTreeSet<String> = keys.into_iter().collect();
            common = Some(match common {
                None => set,
                Some(c) => c.intersection(&set).cloned().collect(),
            });
        }
        let common = common.unwrap_or_default();
        stats.common_fields = stats
            .fields
            .iter()
            .filter(|f| common.contains(*f))
            .cloned()
            .collect();
        stats
    }
}

/// Counts version `version` of a dataset from its items' key sets (within `$conn`).
macro_rules! count_version {
    ($conn:expr, $dataset:expr, $version:expr) => {{
        let groups: Vec<(String, i64, i64)> = sqlx::query_as(concat!(
            "SELECT keys, COUNT(*), MIN(position) FROM dataset_items WHERE ",
            live!(),
            " GROUP BY keys ORDER BY MIN(position)"
        ))
        .bind($dataset)
        .bind($version)
        .fetch_all($conn)
        .await?;
        Stats::from_groups(groups)
    }};
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<DatasetRow>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, DatasetRow>(
        "SELECT id, project_id, name, description, version FROM datasets WHERE id = $1")
        .bind(id).fetch_optional(p).await)?)
}

/// What version `version` of a dataset holds (`None`: no such dataset or version). Versions
/// made before fields were counted at write time are counted now, once.
pub async fn summary(db: &Db, dataset_id: Uuid, version: i64) -> Result<Option<ItemsSummary>> {
    type Row = (
        Option<String>,
        i64,
        i64,
        Option<Json<Vec<String>>>,
        Option<Json<Vec<String>>>,
    );
    let row: Option<Row> = on_db!(db, p => sqlx::query_as(
        "SELECT d.name, d.version, v.item_count, v.fields, v.common_fields FROM datasets d \
         JOIN dataset_versions v ON v.dataset_id = d.id AND v.version = $2 WHERE d.id = $1")
        .bind(dataset_id).bind(version).fetch_optional(p).await)?;
    let Some((name, latest, count, fields, common)) = row else {
        return Ok(None);
    };
    let (count, fields, common_fields) = match (fields, common) {
        (Some(f), Some(c)) => (count, f.0, c.0),
        _ => {
            let stats = on_db!(db, p => async {
                let stats = count_version!(p, dataset_id, version);
                sqlx::query(
                    "UPDATE dataset_versions SET item_count = $3, fields = $4, common_fields = $5 \
                     WHERE dataset_id = $1 AND version = $2")
                    .bind(dataset_id).bind(version).bind(stats.count)
                    .bind(Json(&stats.fields)).bind(Json(&stats.common_fields))
                    .execute(p).await?;
                Ok::<_, sqlx::Error>(stats)
            }.await)?;
            (stats.count, stats.fields, stats.common_fields)
        }
    };
    Ok(Some(ItemsSummary {
        dataset_id,
        dataset_name: name,
        version,
        latest_version: latest,
        count,
        fields,
        common_fields,
    }))
}

/// Which items a page holds.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub tag: Option<&'a str>,
    pub split: Option<&'a str>,
}

/// A page of version `version`'s items in order, with how many match in all.
pub async fn page(
    db: &Db,
    dataset_id: Uuid,
    version: i64,
    filter: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Item>, i64)> {
    const SPLIT: &str = "(CAST($3 AS TEXT) IS NULL OR split = $3)";
    let tag = match db {
        Db::Sqlite(_) => {
            "(CAST($4 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM json_each(dataset_items.tags) t WHERE t.value = $4))"
        }
        Db::Postgres(_) => "(CAST($4 AS TEXT) IS NULL OR tags ? CAST($4 AS TEXT))",
    };
    let rows_sql = format!(
        concat!(
            "SELECT ",
            item_columns!(),
            " FROM dataset_items WHERE ",
            live!(),
            " AND {} AND {} ORDER BY position, item_id LIMIT $5 OFFSET $6"
        ),
        SPLIT, tag
    );
    let count_sql = format!(
        concat!(
            "SELECT COUNT(*) FROM dataset_items WHERE ",
            live!(),
            " AND {} AND {}"
        ),
        SPLIT, tag
    );
    let rows_sql = sqlx::AssertSqlSafe(rows_sql);
    let count_sql = sqlx::AssertSqlSafe(count_sql);
    let (rows, total): (Vec<ItemRow>, i64) = on_db!(db, p => async {
        let rows = sqlx::query_as::<_, ItemRow>(rows_sql).bind(dataset_id).bind(version)
            .bind(filter.split).bind(filter.tag).bind(limit).bind(offset).fetch_all(p).await?;
        let total: i64 = sqlx::query_scalar(count_sql).bind(dataset_id).bind(version)
            .bind(filter.split).bind(filter.tag).bind(0i64).bind(0i64).fetch_one(p).await?;
        Ok::<_, sqlx::Error>((rows, total))
    }.await)?;
    Ok((rows.into_iter().map(Item::from).collect(), total))
}

/// Up to `limit` items of version `version` after position `after` (all from the start when
/// `None`), in order: for reading a whole version page by page.
pub async fn after(
    db: &Db,
    dataset_id: Uuid,
    version: i64,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Item>> {
    let sql = concat!(
        "SELECT ",
        item_columns!(),
        " FROM dataset_items WHERE ",
        live!(),
        " AND position > $3 ORDER BY position, item_id LIMIT $4"
    );
    let rows = on_db!(db, p => sqlx::query_as::<_, ItemRow>(sql).bind(dataset_id).bind(version)
        .bind(after.unwrap_or(i64::MIN)).bind(limit).fetch_all(p).await)?;
    Ok(rows.into_iter().map(Item::from).collect())
}

/// The ids of a version's items in order (by position), without their inputs.
pub async fn ids_in_order(db: &Db, dataset_id: Uuid, version: i64) -> Result<Vec<String>> {
    let sql = concat!(
        "SELECT item_id FROM dataset_items WHERE ",
        live!(),
        " ORDER BY position, item_id"
    );
    Ok(on_db!(db, p => sqlx::query_scalar(sql).bind(dataset_id).bind(version).fetch_all(p).await)?)
}

/// The ids of a version's items (their inputs are not read).
pub async fn ids(db: &Db, dataset_id: Uuid, version: i64) -> Result<Vec<String>> {
    let sql = concat!("SELECT item_id FROM dataset_items WHERE ", live!());
    Ok(on_db!(db, p => sqlx::query_scalar(sql).bind(dataset_id).bind(version).fetch_all(p).await)?)
}

/// Every item of a version, in order (read in pages).
pub async fn all(db: &Db, dataset_id: Uuid, version: i64) -> Result<Vec<Item>> {
    let mut out: Vec<Item> = Vec::new();
    loop {
        let page = after(
            db,
            dataset_id,
            version,
            out.last().map(|i| i.position),
            2000,
        )
        .await?;
        let done = page.len() < 2000;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// These items of a version, by id (unknown ids are left out).
pub async fn by_ids(db: &Db, dataset_id: Uuid, version: i64, ids: &[String]) -> Result<Vec<Item>> {
    by_column(db, dataset_id, version, "item_id", ids).await
}

/// These items of a version, by position (unknown positions are left out).
pub async fn by_positions(
    db: &Db,
    dataset_id: Uuid,
    version: i64,
    positions: &[i64],
) -> Result<Vec<Item>> {
    by_column(db, dataset_id, version, "position", positions).await
}

/// Items of a version whose `column` is one of `values`, 500 values per statement.
async fn by_column<T>(
    db: &Db,
    dataset_id: Uuid,
    version: i64,
    column: &'static str,
    values: &[T],
) -> Result<Vec<Item>>
where
    T: Clone
        + Send
        + for<'q> sqlx::Encode<'q, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'q> sqlx::Encode<'q, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + 'static,
{
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(500) {
        let rows: Vec<ItemRow> = on_db!(db, p => {
            let mut q = sqlx::QueryBuilder::new(concat!(
                "SELECT ",
                item_columns!(),
                " FROM dataset_items WHERE dataset_id = "
            ));
            q.push_bind(dataset_id)
                .push(" AND since_version <= ")
                .push_bind(version)
                .push(" AND (until_version IS NULL OR until_version > ")
                .push_bind(version)
                .push(") AND ")
                .push(column)
                .push(" IN (");
            let mut list = q.separated(", ");
            for v in chunk {
                list.push_bind(v.clone());
            }
            q.push(")");
            q.build_query_as().fetch_all(p).await
        })?;
        out.extend(rows.into_iter().map(Item::from));
    }
    Ok(out)
}

/// The greatest position any revision of the dataset has had (-1: none).
pub async fn max_position(db: &Db, dataset_id: Uuid) -> Result<i64> {
    let max: Option<i64> = on_db!(db, p => sqlx::query_scalar(
        "SELECT MAX(position) FROM dataset_items WHERE dataset_id = $1")
        .bind(dataset_id).fetch_one(p).await)?;
    Ok(max.unwrap_or(-1))
}

/// A change that makes the next version of a dataset.
pub struct Change<'a> {
    pub dataset_id: Uuid,
    /// The newest version the change was worked out on; another change since is a conflict.
    pub base: i64,
    /// Close every current item (a replacement), or only these.
    pub close_all: bool,
    pub close: &'a [String],
    pub insert: &'a [Item],
    /// The experiment that moves to the new version.
    pub pin: Option<Uuid>,
}

/// Rows of items per multi-row insert, and bytes of bound text.
const ITEM_ROWS: usize = 500;
const ITEM_BYTES: usize = 2 * 1024 * 1024;

fn item_bytes(i: &Item) -> usize {
    i.input
        .iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    Value::String(s) => s.len(),
                    other => other.to_string().len(),
                }
        })
        .sum::<usize>()
        + i.reference.as_ref().map_or(0, String::len)
        + i.id.len()
        + 64
}

/// Batches of items to insert after `Change::insert`, from a reader elsewhere: an empty batch
/// ends them; an `Err`, or a reader that goes away before the end, abandons the change.
pub type ItemBatches = tokio::sync::mpsc::Receiver<std::result::Result<Vec<Item>, String>>;

enum Committed {
    Done(Stats),
    Moved,
    Abandoned(String),
}

/// Makes version `base + 1` (one transaction) and returns it with what it holds.
pub async fn commit(db: &Db, c: &Change<'_>) -> Result<(i64, Stats)> {
    commit_with(db, c, None).await
}

/// [`commit`], inserting `more` batches too (in the same transaction: all or nothing).
pub async fn commit_with(
    db: &Db,
    c: &Change<'_>,
    mut more: Option<ItemBatches>,
) -> Result<(i64, Stats)> {
    let now = Utc::now();
    let next = c.base + 1;
    let chunks = super::bulk::chunks_within(c.insert, item_bytes, ITEM_ROWS, ITEM_BYTES);
    let outcome = on_db!(db, p => async {
        let mut tx = p.begin().await?;
        let moved = sqlx::query(
            "UPDATE datasets SET version = $3, updated_at = $4 WHERE id = $1 AND version = $2")
            .bind(c.dataset_id).bind(c.base).bind(next).bind(now)
            .execute(&mut *tx).await?.rows_affected();
        if moved != 1 {
            return Ok(Committed::Moved);
        }
        if c.close_all {
            sqlx::query("UPDATE dataset_items SET until_version = $2 WHERE dataset_id = $1 AND until_version IS NULL")
                .bind(c.dataset_id).bind(next).execute(&mut *tx).await?;
        }
        for ids in c.close.chunks(500) {
            let mut q = sqlx::QueryBuilder::new("UPDATE dataset_items SET until_version = ");
            q.push_bind(next).push(" WHERE dataset_id = ").push_bind(c.dataset_id)
                .push(" AND until_version IS NULL AND item_id IN (");
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(id.clone());
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        macro_rules! insert {
            ($rows:expr) => {{
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO dataset_items (dataset_id, item_id, since_version, until_version, position, keys, \
                     split, tags, reference, input) ");
                q.push_values($rows.iter(), |mut b, i: &Item| {
                    b.push_bind(c.dataset_id).push_bind(i.id.clone()).push_bind(next)
                        .push_bind(None::<i64>).push_bind(i.position).push_bind(keys_of(&i.input))
                        .push_bind(i.split.clone()).push_bind(Json(i.tags.clone()))
                        .push_bind(i.reference.clone()).push_bind(Json(i.input.clone()));
                });
                q.build().execute(&mut *tx).await?;
            }};
        }
        for chunk in &chunks {
            insert!(chunk);
        }
        if let Some(rx) = more.as_mut() {
            loop {
                let batch = match rx.recv().await {
                    Some(Ok(batch)) if batch.is_empty() => break,
                    Some(Ok(batch)) => batch,
                    Some(Err(why)) => return Ok(Committed::Abandoned(why)),
                    None => return Ok(Committed::Abandoned("the reader stopped".to_owned())),
                };
                for chunk in super::bulk::chunks_within(&batch, item_bytes, ITEM_ROWS, ITEM_BYTES) {
                    insert!(chunk);
                }
            }
        }
        let stats = count_version!(&mut *tx, c.dataset_id, next);
        sqlx::query(
            "INSERT INTO dataset_versions (dataset_id, version, item_count, fields, common_fields, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(c.dataset_id).bind(next).bind(stats.count).bind(Json(&stats.fields))
            .bind(Json(&stats.common_fields)).bind(now)
            .execute(&mut *tx).await?;
        if let Some(experiment) = c.pin {
            sqlx::query("UPDATE experiments SET dataset_version = $2, updated_at = $3 WHERE id = $1")
                .bind(experiment).bind(next).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Committed::Done(stats))
    }.await)?;
    match outcome {
        Committed::Done(stats) => Ok((next, stats)),
        Committed::Moved => Err(Error::conflict(
            "items",
            "the dataset changed meanwhile; read it again and retry",
        )),
        Committed::Abandoned(why) => Err(Error::Internal(why)),
    }
}

/// Creates a dataset at version 0 (empty) inside a transaction: `commit` makes version 1.
macro_rules! create_on {
    ($tx:expr, $id:expr, $project:expr, $name:expr, $description:expr) => {{
        let now = chrono::Utc::now();
        sqlx::query(
            "INSERT INTO datasets (id, project_id, name, description, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $5)",
        )
        .bind($id)
        .bind($project)
        .bind($name)
        .bind($description)
        .bind(now)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(
            "INSERT INTO dataset_versions (dataset_id, version, item_count, fields, common_fields, created_at) \
             VALUES ($1, 0, 0, '[]', '[]', $2)",
        )
        .bind($id)
        .bind(now)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use create_on;

/// Deletes a dataset with every version and item.
pub async fn delete(db: &Db, id: Uuid) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query("DELETE FROM datasets WHERE id = $1").bind(id).execute(p).await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_keep_first_appearance_and_intersect() {
        let s = Stats::from_groups(vec![
            (r#"["b","text"]"#.into(), 3, 0),
            (r#"["a","text"]"#.into(), 2, 1),
        ]);
        assert_eq!(s.count, 5);
        assert_eq!(s.fields, ["b", "text", "a"]);
        assert_eq!(s.common_fields, ["text"]);
        assert_eq!(Stats::from_groups(vec![]), Stats::default());
    }
}

#[derive(Debug, sqlx::FromRow)]
struct NamedRow {
    id: Uuid,
    project_id: Uuid,
    name: String,
    description: String,
    version: i64,
    item_count: i64,
    fields: Option<Json<Vec<String>>>,
    common_fields: Option<Json<Vec<String>>>,
    experiments: i64,
    created_at: chrono::DateTime<Utc>,
    updated_at: chrono::DateTime<Utc>,
}

macro_rules! select_named {
    ($tail:literal) => {
        concat!(
            "SELECT d.id, d.project_id, d.name, d.description, d.version, v.item_count, v.fields, ",
            "v.common_fields, (SELECT COUNT(*) FROM experiments e WHERE e.dataset_id = d.id) AS experiments, ",
            "d.created_at, d.updated_at FROM datasets d ",
            "JOIN dataset_versions v ON v.dataset_id = d.id AND v.version = d.version WHERE d.name IS NOT NULL ",
            $tail
        )
    };
}

async fn named(db: &Db, r: NamedRow) -> Result<crate::types::Dataset> {
    let (fields, common_fields) = match (r.fields, r.common_fields) {
        (Some(f), Some(c)) => (f.0, c.0),
        _ => summary(db, r.id, r.version)
            .await?
            .map(|s| (s.fields, s.common_fields))
            .unwrap_or_default(),
    };
    Ok(crate::types::Dataset {
        id: r.id,
        project_id: r.project_id,
        name: r.name,
        description: r.description,
        version: r.version,
        count: r.item_count,
        fields,
        common_fields,
        experiments: r.experiments,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// Named datasets, by name (of one project, or all).
pub async fn list_named(
    db: &Db,
    project_id: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<Vec<crate::types::Dataset>> {
    let rows: Vec<NamedRow> = match project_id {
        Some(project) => {
            let sql = select_named!("AND d.project_id = $1 ORDER BY d.name LIMIT $2 OFFSET $3");
            on_db!(db, p => sqlx::query_as(sql).bind(project).bind(limit).bind(offset).fetch_all(p).await)?
        }
        None => {
            let sql = select_named!("ORDER BY d.name LIMIT $1 OFFSET $2");
            on_db!(db, p => sqlx::query_as(sql).bind(limit).bind(offset).fetch_all(p).await)?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(named(db, r).await?);
    }
    Ok(out)
}

pub async fn get_named(db: &Db, id: Uuid) -> Result<Option<crate::types::Dataset>> {
    let sql = select_named!("AND d.id = $1");
    let row: Option<NamedRow> =
        on_db!(db, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?;
    match row {
        Some(r) => Ok(Some(named(db, r).await?)),
        None => Ok(None),
    }
}

/// The id of the project's dataset with this name.
pub async fn id_by_name(db: &Db, project_id: Uuid, name: &str) -> Result<Option<Uuid>> {
    Ok(on_db!(db, p => sqlx::query_scalar(
        "SELECT id FROM datasets WHERE project_id = $1 AND name = $2")
        .bind(project_id).bind(name).fetch_optional(p).await)?)
}

const DATASET_NAME_TAKEN: &str = "this project already has a dataset with this name";

/// Creates an empty named dataset (version 0).
pub async fn create_named(
    db: &Db,
    id: Uuid,
    project_id: Uuid,
    name: &str,
    description: &str,
) -> Result<()> {
    on_db!(db, p => async {
        let mut tx = p.begin().await?;
        create_on!(tx, id, project_id, Some(name.to_owned()), description);
        tx.commit().await
    }.await)
    .map_err(crate::server::error::unique_violation(
        "name",
        DATASET_NAME_TAKEN,
    ))
}

/// Gives an experiment's own dataset a name: it becomes shared. `false` if it has one.
pub async fn name_private(db: &Db, id: Uuid, name: &str, description: &str) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query(
        "UPDATE datasets SET name = $2, description = $3, updated_at = $4 WHERE id = $1 AND name IS NULL")
        .bind(id).bind(name).bind(description).bind(Utc::now()).execute(p).await.map(|r| r.rows_affected()))
    .map_err(crate::server::error::unique_violation("name", DATASET_NAME_TAKEN))?;
    Ok(n == 1)
}

pub async fn rename(db: &Db, id: Uuid, name: &str, description: &str) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "UPDATE datasets SET name = $2, description = $3, updated_at = $4 WHERE id = $1")
        .bind(id).bind(name).bind(description).bind(Utc::now()).execute(p).await.map(|_| ()))
    .map_err(crate::server::error::unique_violation(
        "name",
        DATASET_NAME_TAKEN,
    ))?;
    Ok(())
}

/// A dataset's versions, newest first, with how many experiments use each.
pub async fn versions(db: &Db, id: Uuid) -> Result<Vec<crate::types::DatasetVersion>> {
    let rows: Vec<(i64, i64, i64, chrono::DateTime<Utc>)> = on_db!(db, p => sqlx::query_as(
        "SELECT v.version, v.item_count, (SELECT COUNT(*) FROM experiments e WHERE e.dataset_id = v.dataset_id \
         AND e.dataset_version = v.version), v.created_at FROM dataset_versions v WHERE v.dataset_id = $1 \
         AND v.version > 0 ORDER BY v.version DESC")
        .bind(id).fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(
            |(version, count, experiments, created_at)| crate::types::DatasetVersion {
                version,
                count,
                experiments,
                created_at,
            },
        )
        .collect())
}
