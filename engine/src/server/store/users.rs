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
pub async fn set_role(db: &Db, id: Uuid, role: Role) -> Result<bool> {
    let r = on_db!(db, p => sqlx::query(
        "UPDATE users SET role = $2, session_version = session_version + 1, updated_at = $3 WHERE id = $1")
        .bind(id).bind(role.as_str()).bind(Utc::now()).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

pub async fn delete(db: &Db, id: Uuid) -> Result<bool> {
    let r = on_db!(db, p => sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

pub async fn count_admins(db: &Db) -> Result<i64> {
    Ok(
        on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetch_one(p).await)?,
    )
}

/// The outcome of reserving a sign-in attempt.
pub enum Attempt {
    /// The attempt may check the password; it is attempt number `n` since the last success.
    Allowed(i64),
    /// The account is locked until then.
    Locked(DateTime<Utc>),
}

/// Counts a sign-in attempt *before* the password is checked, and locks the account when
/// `lock_for(n)` says so, in one transaction. Parallel guesses therefore serialize on the row:
/// no more than the free attempts ever reach the password check. A success clears both.
pub async fn reserve_login_attempt(
    db: &Db,
    id: Uuid,
    now: DateTime<Utc>,
    lock_for: impl Fn(i64) -> Option<chrono::Duration>,
) -> Result<Attempt> {
    let attempt = on_db!(db, p => {
        let mut tx = p.begin().await?;
        let reserved: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET failed_logins = failed_logins + 1 \
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2) RETURNING failed_logins")
            .bind(id).bind(now).fetch_optional(&mut *tx).await?;
        let attempt = match reserved {
            Some(n) => {
                if let Some(lock) = lock_for(n) {
                    sqlx::query("UPDATE users SET locked_until = $2 WHERE id = $1")
                        .bind(id).bind(now + lock).execute(&mut *tx).await?;
                }
                Attempt::Allowed(n)
            }
            None => {
                let until: Option<DateTime<Utc>> =
                    sqlx::query_scalar("SELECT locked_until FROM users WHERE id = $1")
                        .bind(id).fetch_one(&mut *tx).await?;
                Attempt::Locked(until.unwrap_or(now))
            }
        };
        tx.commit().await?;
        Ok::<_, sqlx::Error>(attempt)
    })?;
    Ok(attempt)
}

pub async fn clear_failed_logins(db: &Db, id: Uuid) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1 AND failed_logins > 0")
        .bind(id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}
