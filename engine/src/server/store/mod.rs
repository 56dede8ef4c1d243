//! Storage over SQLite or PostgreSQL, chosen once from the database URL. Queries are written
//! once in portable SQL (`$1` placeholders, `RETURNING`, `ON CONFLICT`) and run on whichever
//! pool `Db` holds: `on_db!` expands a body for each backend.

pub mod api_keys;
pub mod bulk;
pub(crate) mod bulk_scores;
pub mod cache;
pub mod charts;
pub mod datasets;
pub mod endpoints;
pub mod events;
pub mod experiments;
pub mod exports;
pub mod guided;
pub mod leaderboard;
pub mod pricing;
pub mod projects;
pub mod run_list;
pub mod runs;
pub mod scores;
pub mod scoring_jobs;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod sweeps;
pub mod users;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::server::store::Db::Sqlite($pool) => $body,
            $crate::server::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// Whether a transaction failed only because it ran into another one: running it again is
/// safe.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    // PostgreSQL: deadlock, serialization failure. SQLite: busy, and busy-snapshot (a deferred
    // transaction that read, then found another writer had committed before it could write:
    // SQLite answers that at once, without waiting out the busy timeout).
    matches!(e, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("40P01" | "40001" | "5" | "517")))
}

/// A connection pool to the one database PromptLooper uses.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    /// The backend a database URL names, or `None` for an unsupported scheme.
    pub fn from_url(url: &str) -> Option<DbKind> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(DbKind::Sqlite),
            "postgres" | "postgresql" => Some(DbKind::Postgres),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DbKind::Sqlite => "sqlite",
            DbKind::Postgres => "postgres",
        }
    }
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). SQLite runs in WAL mode with a busy
    /// timeout and foreign keys on; the file is created when missing.
    pub async fn connect(url: &str) -> Result<Db, sqlx::Error> {
        match DbKind::from_url(url) {
            Some(DbKind::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // 4 MiB of page cache per connection (SQLite's default is 2 MiB): re-scoring
                    // and the leaderboard walk many pages; more would cost memory that the
                    // operating system's cache serves nearly as well.
                    .pragma("cache_size", "-4096");
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Ok(Db::Sqlite(pool))
            }
            Some(DbKind::Postgres) => {
                let options = PgConnectOptions::from_str(url)?;
                // A few connections are opened up front, so a sweep's first runs do not wait
                // for connection set-up.
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .min_connections(4)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                Ok(Db::Postgres(pool))
            }
            None => Err(sqlx::Error::Configuration(
                "DATABASE_URL must start with sqlite:, postgres: or postgresql:".into(),
            )),
        }
    }

    /// Applies the migrations for this backend (idempotent).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Db::Sqlite(pool) => {
                sqlx::migrate!("../migrations/sqlite").run(pool).await?;
                // The job queue's own tables, tracked apart from ours.
                let mut apalis = apalis_sqlite::SqliteStorage::migrations();
                apalis.dangerous_set_table_name("_apalis_migrations");
                apalis.run(pool).await
            }
            Db::Postgres(pool) => {
                sqlx::migrate!("../migrations/postgres").run(pool).await?;
                // The job queue's tables live in their own schema (`apalis`).
                apalis_postgres::PostgresStorage::migrations()
                    .run(pool)
                    .await
            }
        }
    }

    /// Applies this backend's migrations up to `version` only (tests of a later migration
    /// start from the schema before it).
    #[cfg(feature = "testing")]
    pub async fn migrate_until(&self, version: i64) -> Result<(), sqlx::migrate::MigrateError> {
        let keep = |mut m: sqlx::migrate::Migrator| {
            m.migrations = std::borrow::Cow::Owned(
                m.migrations
                    .iter()
                    .filter(|x| x.version <= version)
                    .cloned()
                    .collect(),
            );
            m
        };
        match self {
            Db::Sqlite(pool) => keep(sqlx::migrate!("../migrations/sqlite")).run(pool).await,
            Db::Postgres(pool) => {
                keep(sqlx::migrate!("../migrations/postgres"))
                    .run(pool)
                    .await
            }
        }
    }

    pub fn kind(&self) -> DbKind {
        match self {
            Db::Sqlite(_) => DbKind::Sqlite,
            Db::Postgres(_) => DbKind::Postgres,
        }
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }
}
