//! Test support (feature `testing`): a fresh, empty database per test, on SQLite or on the
//! PostgreSQL server named by `TEST_DATABASE_URL`.
//!
//! Without `TEST_DATABASE_URL` the PostgreSQL variants are skipped, unless
//! `PL_REQUIRE_POSTGRES=1` (set by `make test`), in which case they fail loudly.

use super::store::{Db, DbKind};

/// A database that exists for one test and is removed afterwards.
pub struct TestDatabase {
    pub url: String,
    pub kind: DbKind,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

impl TestDatabase {
    /// A new SQLite database file in a temporary folder.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDatabase {
            url,
            kind: DbKind::Sqlite,
            _dir: Some(dir),
            pg_cleanup: None,
        }
    }

    /// A new, empty PostgreSQL database, or `None` when no server is configured.
    pub async fn postgres() -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            if std::env::var("PL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("PL_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set");
            }
            eprintln!("TEST_DATABASE_URL not set: skipping the PostgreSQL variant");
            return None;
        };
        let name = format!("pl_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Db::connect(&admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        if let Db::Postgres(pool) = &admin {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(pool)
                .await
                .expect("create test database");
        }
        admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Some(TestDatabase {
            url: url.to_string(),
            kind: DbKind::Postgres,
            _dir: None,
            pg_cleanup: Some((admin_url, name)),
        })
    }

    /// Every backend available to this test run: SQLite always, PostgreSQL when configured.
    pub async fn all() -> Vec<TestDatabase> {
        let mut all = vec![TestDatabase::sqlite()];
        all.extend(TestDatabase::postgres().await);
        all
    }

    /// Connects and migrates.
    pub async fn connect(&self) -> Db {
        let db = Db::connect(&self.url)
            .await
            .expect("connect to test database");
        db.migrate().await.expect("migrate test database");
        db
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg_cleanup.take() else {
            return;
        };
        // Drop runs outside any runtime guarantee: use a short-lived one on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = Db::connect(&admin_url).await.ok()?;
                if let Db::Postgres(pool) = &admin {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(pool)
                    .await;
                }
                admin.close().await;
                Some(())
            })
        })
        .join();
    }
}
