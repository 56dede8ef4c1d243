//! The `users` table.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::{Result, unique_violation};
use crate::types::{Role, User};

/// A user row with what authentication needs; never leaves the engine.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub session_version: i64,
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    pub fn to_user(&self) -> User {
        User {
            id: self.id,
            username: self.username.clone(),
            role: self.role,
            created_at: self.created_at,
        }
    }
}

/// `SELECT … FROM users` with every column `UserRow` reads, then `$tail`.
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, username, password_hash, role, session_version, failed_logins, ",
            "locked_until, created_at FROM users ",
            $tail
        )
    };
}

pub async fn count(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(p).await)?)
}

/// Inserts a user; a taken username is a conflict on `username`.
pub async fn insert(db: &Db, username: &str, password_hash: &str, role: Role) -> Result<UserRow> {
    let now = Utc::now();
    let id = Uuid::new_v4();
    on_db!(db, p => sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)")
        .bind(id).bind(username).bind(password_hash).bind(role.as_str()).bind(now)
        .execute(p).await.map(|r| r.rows_affected()))
    .map_err(unique_violation("username", "this username is taken"))?;
    get(db, id).await?.ok_or(crate::Error::NotFound("user"))
}

/// Inserts the first admin, only while no user exists. Returns `None` when setup was
/// already done. A marker row in `settings` makes two racing setups end with one admin.
pub async fn insert_first_admin(
    db: &Db,
    username: &str,
    password_hash: &str,
) -> Result<Option<UserRow>> {
    let now = Utc::now();
    let id = Uuid::new_v4();
    let inserted = on_db!(db, p => {
        let mut tx = p.begin().await?;
        let marker = sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ('setup_completed', 'true', $1) \
             ON CONFLICT (key) DO NOTHING")
            .bind(now).execute(&mut *tx).await?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut *tx).await?;
        if marker.rows_affected() == 0 || users > 0 {
            tx.rollback().await?;
            false
        } else {
            sqlx::query(
                "INSERT INTO users (id, username, password_hash, role, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'admin', $4, $4)")
                .bind(id).bind(username).bind(password_hash).bind(now)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            true
        }
    });
    if inserted {
        Ok(get(db, id).await?)
    } else {
        Ok(None)
    }
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<UserRow>> {
    let sql = select_users!("WHERE id = $1");
    Ok(on_db!(db, p => sqlx::query_as::<_, UserRow>(sql).bind(id).fetch_optional(p).await)?)
}

pub async fn get_by_username(db: &Db, username: &str) -> Result<Option<UserRow>> {
    let sql = select_users!("WHERE username = $1");
    Ok(on_db!(db, p => sqlx::query_as::<_, UserRow>(sql).bind(username).fetch_optional(p).await)?)
}

pub async fn list(db: &Db) -> Result<Vec<UserRow>> {
    let sql = select_users!("ORDER BY created_at, username");
    Ok(on_db!(db, p => sqlx::query_as::<_, UserRow>(sql).fetch_all(p).await)?)
}

/// Sets a new password hash and bumps the session version, which signs the user out
/// everywhere (sessions and tokens carry the version they were issued with).
pub async fn set_password(db: &Db, id: Uuid, password_hash: &str) -> Result<bool> {
    let r = on_db!(db, p => sqlx::query(
        "UPDATE users SET password_hash = $2, session_version = session_version + 1, \
         failed_logins = 0, locked_until = NULL, updated_at = $3 WHERE id = $1")
        .bind(id).bind(password_hash).bind(Utc::now()).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Changes a role; also bumps the session version so old tokens stop carrying the old role.
/// Sets a user's role (signing them out everywhere). Refuses, returning `Ok(false)`, to demote
/// the last admin: see [`unless_last_admin`].
pub async fn set_role(db: &Db, id: Uuid, role: Role) -> Result<bool> {
    let sql = "UPDATE users SET role = $2, session_version = session_version + 1, updated_at = $3 WHERE id = $1";
    if role == Role::Admin {
        let n = on_db!(db, p => sqlx::query(sql).bind(id).bind(role.as_str()).bind(Utc::now())
            .execute(p).await.map(|r| r.rows_affected()))?;
        return Ok(n == 1);
    }
    unless_last_admin(db, id, sql, Some(role)).await
}

/// Deletes a user unless they are the last admin (`Ok(false)`).
pub async fn delete(db: &Db, id: Uuid) -> Result<bool> {
    unless_last_admin(db, id, "DELETE FROM users WHERE id = $1", None).await
}

/// Runs `sql` on user `id` (binding `$2` the role and `$3` the time when a role is given) only
/// while another admin would remain. On PostgreSQL the admins are locked first, so two admins
/// demoting each other at the same moment serialize and the second sees the first's change;
/// on SQLite the check and the write are one statement under its single writer.
async fn unless_last_admin(db: &Db, id: Uuid, sql: &str, role: Option<Role>) -> Result<bool> {
    let sql = format!(
        "{sql} AND (role <> 'admin' OR EXISTS (SELECT 1 FROM users o WHERE o.role = 'admin' AND o.id <> $1))"
    );
    macro_rules! run {
        ($conn:expr) => {{
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(id);
            if let Some(role) = role {
                q = q.bind(role.as_str()).bind(Utc::now());
            }
            q.execute($conn).await.map(|r| r.rows_affected())
        }};
    }
    let n = match db {
        Db::Sqlite(p) => run!(p)?,
        Db::Postgres(p) => {
            let mut tx = p.begin().await?;
            sqlx::query("SELECT id FROM users WHERE role = 'admin' ORDER BY id FOR UPDATE")
                .fetch_all(&mut *tx)
                .await?;
            let n = run!(&mut *tx)?;
            tx.commit().await?;
            n
        }
    };
    Ok(n == 1)
}

/// Whose sign-in attempts are counted: an account, or a username with no account (counted in
/// `sign_in_failures`, so both answer alike).
#[derive(Clone, Copy, Debug)]
pub enum Signer<'a> {
    Account(Uuid),
    Unknown(&'a str),
}

impl Signer<'_> {
    /// (table, key column) holding its count and lock.
    fn table(&self) -> (&'static str, &'static str) {
        match self {
            Signer::Account(_) => ("users", "id"),
            Signer::Unknown(_) => ("sign_in_failures", "username"),
        }
    }
}

macro_rules! bind_signer {
    ($q:expr, $who:expr) => {
        match $who {
            Signer::Account(id) => $q.bind(id),
            Signer::Unknown(name) => $q.bind(name),
        }
    };
}

/// Until when sign-ins are locked for `who`, if they are now.
pub async fn locked_until(
    db: &Db,
    who: Signer<'_>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let (table, key) = who.table();
    let sql = format!("SELECT locked_until FROM {table} WHERE {key} = $1");
    let until: Option<Option<DateTime<Utc>>> = on_db!(db, p =>
        bind_signer!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())), who).fetch_optional(p).await)?;
    Ok(until.flatten().filter(|u| *u > now))
}

/// Counts a failed sign-in and locks `who` when `lock_for(failures)` says so; returns the
/// consecutive failures.
pub async fn record_failed_login(
    db: &Db,
    who: Signer<'_>,
    now: DateTime<Utc>,
    lock_for: impl Fn(i64) -> Option<chrono::Duration>,
) -> Result<i64> {
    let (table, key) = who.table();
    let count = match who {
        Signer::Account(_) => format!(
            "UPDATE {table} SET failed_logins = failed_logins + 1, updated_at = $2 WHERE {key} = $1 \
             RETURNING failed_logins"
        ),
        Signer::Unknown(_) => "INSERT INTO sign_in_failures (username, failed_logins, updated_at) VALUES ($1, 1, $2) \
             ON CONFLICT (username) DO UPDATE SET failed_logins = sign_in_failures.failed_logins + 1, \
             updated_at = excluded.updated_at RETURNING failed_logins"
            .to_owned(),
    };
    let lock = format!("UPDATE {table} SET locked_until = $2 WHERE {key} = $1");
    let n: i64 = on_db!(db, p =>
        bind_signer!(sqlx::query_scalar(sqlx::AssertSqlSafe(count.clone())), who).bind(now).fetch_one(p).await)?;
    if let Some(lock_for) = lock_for(n) {
        on_db!(db, p => bind_signer!(sqlx::query(sqlx::AssertSqlSafe(lock.clone())), who)
            .bind(now + lock_for).execute(p).await.map(|r| r.rows_affected()))?;
    }
    Ok(n)
}

/// Forgets failed sign-ins of usernames without an account not tried since `before`.
pub async fn forget_sign_in_failures(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    Ok(on_db!(db, p => sqlx::query(
        "DELETE FROM sign_in_failures WHERE updated_at < $1 AND (locked_until IS NULL OR locked_until < $1)")
        .bind(before).execute(p).await.map(|r| r.rows_affected()))?)
}

pub async fn clear_failed_logins(db: &Db, id: Uuid) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1 AND failed_logins > 0")
        .bind(id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}
