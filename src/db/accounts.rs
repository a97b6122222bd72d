//! Users, access groups, permission groups and permissions.

use super::{Db, Result, execute, on_pool};
use chrono::{DateTime, Utc};

/// A person who can log in (locally or through the trusted proxy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub is_active: bool,
    pub affiliation: String,
    /// Preferred UI language (`fr`, `en`), empty when the user never chose.
    pub language: String,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    /// The name to show: the display name, or the username when there is none.
    pub fn shown_name(&self) -> &str {
        if self.display_name.trim().is_empty() {
            &self.username
        } else {
            &self.display_name
        }
    }
}

/// What is needed to create a user.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub email: String,
    /// PHC string (argon2id); `None` for accounts that only log in through the proxy.
    pub password_hash: Option<String>,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub affiliation: String,
}

/// An access group (Pod's `AccessGroup`): code name plus the name shown to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGroup {
    pub id: i64,
    pub code_name: String,
    pub display_name: String,
}

/// Identity asserted by the trusted reverse proxy; empty fields leave the stored value alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyIdentity {
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub affiliation: String,
    /// Access group code names; `None` when the proxy sends no group header.
    pub groups: Option<Vec<String>>,
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    email: String,
    is_staff: bool,
    is_superuser: bool,
    is_active: bool,
    affiliation: String,
    language: String,
    created_at: i64,
    last_login_at: Option<i64>,
}

/// The columns of [`UserRow`], as a literal for `concat!`.
macro_rules! user_columns {
    () => {
        "id, username, display_name, email, is_staff, is_superuser, is_active, affiliation, \
         language, created_at, last_login_at"
    };
}
pub(super) use user_columns;

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            email: row.email,
            is_staff: row.is_staff,
            is_superuser: row.is_superuser,
            is_active: row.is_active,
            affiliation: row.affiliation,
            language: row.language,
            created_at: from_millis(row.created_at),
            last_login_at: row.last_login_at.map(from_millis),
        }
    }
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: i64,
    code_name: String,
    display_name: String,
}

impl Db {
    /// Creates a user; `Error::Conflict` when the username is taken.
    pub async fn create_user(&self, user: &NewUser, now: DateTime<Utc>) -> Result<User> {
        let sql = concat!(
            "INSERT INTO users (username, display_name, email, password_hash, is_staff, \
             is_superuser, affiliation, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING ",
            user_columns!()
        );
        let row: UserRow = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(&user.username)
                .bind(&user.display_name)
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(user.is_staff)
                .bind(user.is_superuser)
                .bind(&user.affiliation)
                .bind(now.timestamp_millis())
                .fetch_one(pool)
                .await
        })
        .map_err(|e| match super::Error::from(e) {
            super::Error::Conflict(_) => {
                super::Error::Conflict(format!("user `{}`", user.username))
            }
            other => other,
        })?;
        Ok(row.into())
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(User::from))
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username = $1"
        );
        let row: Option<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(username).fetch_optional(pool).await
        })?;
        Ok(row.map(User::from))
    }

    /// The user and their password hash, for a login attempt.
    pub async fn login_credentials(
        &self,
        username: &str,
    ) -> Result<Option<(User, Option<String>)>> {
        #[derive(sqlx::FromRow)]
        struct Credentials {
            #[sqlx(flatten)]
            user: UserRow,
            password_hash: Option<String>,
        }
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            ", password_hash FROM users WHERE username = $1"
        );
        let row: Option<Credentials> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(username).fetch_optional(pool).await
        })?;
        Ok(row.map(|r| (r.user.into(), r.password_hash)))
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users ORDER BY username");
        let rows: Vec<UserRow> = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    pub async fn set_password_hash(&self, user_id: i64, hash: &str) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(user_id)
                .execute(pool)
                .await
        })?;
        Ok(())
    }

    pub async fn set_user_language(&self, user_id: i64, language: &str) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("UPDATE users SET language = $1 WHERE id = $2")
                .bind(language)
                .bind(user_id)
                .execute(pool)
                .await
        })?;
        Ok(())
    }

    pub async fn touch_last_login(&self, user_id: i64, now: DateTime<Utc>) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
                .bind(now.timestamp_millis())
                .bind(user_id)
                .execute(pool)
                .await
        })?;
        Ok(())
    }

    /// Returns the access group with this code name, creating it when missing.
    pub async fn ensure_access_group(
        &self,
        code_name: &str,
        display_name: &str,
    ) -> Result<AccessGroup> {
        let row: GroupRow = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO access_groups (code_name, display_name) VALUES ($1, $2) \
                 ON CONFLICT (code_name) DO NOTHING",
            )
            .bind(code_name)
            .bind(display_name)
            .execute(pool)
            .await?;
            sqlx::query_as("SELECT id, code_name, display_name FROM access_groups WHERE code_name = $1")
                .bind(code_name)
                .fetch_one(pool)
                .await
        })?;
        Ok(AccessGroup {
            id: row.id,
            code_name: row.code_name,
            display_name: row.display_name,
        })
    }

    /// Makes the user's access groups exactly `code_names` (creating unknown groups).
    pub async fn set_user_access_groups(&self, user_id: i64, code_names: &[String]) -> Result<()> {
        let mut ids = Vec::with_capacity(code_names.len());
        for code in code_names {
            ids.push(self.ensure_access_group(code, code).await?.id);
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM user_access_groups WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for id in &ids {
                sqlx::query(
                    "INSERT INTO user_access_groups (user_id, group_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Every access group, by code name.
    pub async fn access_groups(&self) -> Result<Vec<AccessGroup>> {
        let rows: Vec<GroupRow> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, code_name, display_name FROM access_groups ORDER BY code_name")
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| AccessGroup {
                id: r.id,
                code_name: r.code_name,
                display_name: r.display_name,
            })
            .collect())
    }

    pub async fn user_access_groups(&self, user_id: i64) -> Result<Vec<AccessGroup>> {
        let rows: Vec<GroupRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT g.id, g.code_name, g.display_name FROM access_groups g \
                 JOIN user_access_groups ug ON ug.group_id = g.id \
                 WHERE ug.user_id = $1 ORDER BY g.code_name",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| AccessGroup {
                id: r.id,
                code_name: r.code_name,
                display_name: r.display_name,
            })
            .collect())
    }

    /// Adds the user to a permission group (Django `Group`), creating the group when missing.
    pub async fn add_to_permission_group(&self, user_id: i64, group: &str) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("INSERT INTO permission_groups (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(group)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO permission_group_members (group_id, user_id) \
                 SELECT id, $2 FROM permission_groups WHERE name = $1 ON CONFLICT DO NOTHING",
            )
            .bind(group)
            .bind(user_id)
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    pub async fn user_permission_groups(&self, user_id: i64) -> Result<Vec<String>> {
        let names = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT g.name FROM permission_groups g JOIN permission_group_members m \
                 ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.name",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(names)
    }

    /// Grants a permission (`app.codename`) to a user or, with `group`, to a permission group.
    /// Returns false when the permission does not exist.
    pub async fn grant_permission(
        &self,
        codename: &str,
        user_id: Option<i64>,
        group: Option<&str>,
    ) -> Result<bool> {
        let affected = on_pool!(self, pool => {
            match (user_id, group) {
                (Some(user_id), _) => sqlx::query(
                    "INSERT INTO user_permissions (user_id, permission_id) \
                     SELECT $1, id FROM permissions WHERE codename = $2 ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(codename)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
                (None, Some(group)) => sqlx::query(
                    "INSERT INTO permission_group_permissions (group_id, permission_id) \
                     SELECT g.id, p.id FROM permission_groups g, permissions p \
                     WHERE g.name = $1 AND p.codename = $2 ON CONFLICT DO NOTHING",
                )
                .bind(group)
                .bind(codename)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
                (None, None) => return Ok(false),
            }
        })?;
        let exists: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM permissions WHERE codename = $1")
                .bind(codename)
                .fetch_optional(pool)
                .await
        })?;
        Ok(affected > 0 || exists.is_some())
    }

    /// Permission codenames the user holds directly or through permission groups.
    pub async fn user_permissions(&self, user_id: i64) -> Result<Vec<String>> {
        let names = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT p.codename FROM permissions p JOIN user_permissions up \
                 ON up.permission_id = p.id WHERE up.user_id = $1 \
                 UNION \
                 SELECT p.codename FROM permissions p \
                 JOIN permission_group_permissions gp ON gp.permission_id = p.id \
                 JOIN permission_group_members m ON m.group_id = gp.group_id \
                 WHERE m.user_id = $1 ORDER BY 1",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(names)
    }

    /// Creates or refreshes the account the proxy vouches for.
    pub async fn upsert_proxy_user(
        &self,
        identity: &ProxyIdentity,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let user = match self.user_by_username(&identity.username).await? {
            Some(user) => user,
            None => {
                let new = NewUser {
                    username: identity.username.clone(),
                    display_name: identity.display_name.clone(),
                    email: identity.email.clone(),
                    affiliation: identity.affiliation.clone(),
                    ..NewUser::default()
                };
                match self.create_user(&new, now).await {
                    Ok(user) => user,
                    // Two first requests raced: the other one created it.
                    Err(super::Error::Conflict(_)) => self
                        .user_by_username(&identity.username)
                        .await?
                        .ok_or_else(|| super::Error::Query("user vanished".into()))?,
                    Err(e) => return Err(e),
                }
            }
        };
        let changed = (!identity.email.is_empty() && identity.email != user.email)
            || (!identity.display_name.is_empty() && identity.display_name != user.display_name)
            || (!identity.affiliation.is_empty() && identity.affiliation != user.affiliation);
        if changed {
            execute!(self, pool => {
                sqlx::query(
                    "UPDATE users SET \
                     email = CASE WHEN $1 = '' THEN email ELSE $1 END, \
                     display_name = CASE WHEN $2 = '' THEN display_name ELSE $2 END, \
                     affiliation = CASE WHEN $3 = '' THEN affiliation ELSE $3 END \
                     WHERE id = $4",
                )
                .bind(&identity.email)
                .bind(&identity.display_name)
                .bind(&identity.affiliation)
                .bind(user.id)
                .execute(pool)
                .await
            })?;
        }
        if let Some(groups) = &identity.groups {
            let current: Vec<String> = self
                .user_access_groups(user.id)
                .await?
                .into_iter()
                .map(|g| g.code_name)
                .collect();
            let mut wanted = groups.clone();
            wanted.sort();
            wanted.dedup();
            if current != wanted {
                self.set_user_access_groups(user.id, &wanted).await?;
            }
        }
        if changed {
            return self
                .user_by_id(user.id)
                .await?
                .ok_or_else(|| super::Error::Query("user vanished".into()));
        }
        Ok(user)
    }
}
