//! A re-scoring job right after a large sweep refreshes PostgreSQL's planner statistics first
//! (`store::stats::analyze_stale`): tables changed by more than autovacuum's threshold are
//! analyzed, others are left alone.

use std::time::{Duration, Instant};

use engine::Db;
use engine::store::stats::analyze_stale;
use engine::testing::TestDatabase;

#[tokio::test]
async fn only_tables_changed_past_autovacuums_threshold_are_analyzed() {
    let sqlite = TestDatabase::sqlite();
    let db = sqlite.connect().await;
    assert!(
        analyze_stale(&db, &["response_cache"])
            .await
            .unwrap()
            .is_empty()
    );

    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let db = database.connect().await;
    let Db::Postgres(pool) = &db else {
        unreachable!()
    };
    // Freshly migrated: nothing has changed.
    assert!(
        analyze_stale(&db, &["response_cache", "dataset_items"])
            .await
            .unwrap()
            .is_empty()
    );
    sqlx::query(
        "INSERT INTO response_cache (config_hash, response, model, created_at) \
         SELECT 'h' || i, 'r', 'm', now() FROM generate_series(1, 500) i",
    )
    .execute(pool)
    .await
    .unwrap();
    // The server's counters reach pg_stat_user_tables within seconds of the commit.
    let deadline = Instant::now() + Duration::from_secs(30);
    let analyzed = loop {
        let analyzed = analyze_stale(&db, &["response_cache", "dataset_items"])
            .await
            .unwrap();
        if !analyzed.is_empty() || Instant::now() > deadline {
            break analyzed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(analyzed, ["response_cache"]);
    let (tuples, last): (f32, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT c.reltuples, s.last_analyze FROM pg_class c \
         JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = 'response_cache'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(tuples, 500.0, "the planner now knows the table's size");
    assert!(last.is_some());
    // Analyzed once; not again until it changes again.
    assert!(
        analyze_stale(&db, &["response_cache"])
            .await
            .unwrap()
            .is_empty()
    );
}
