//! Admin accounts. Passwords arrive already hashed (argon2, see `auth::password`).

use sqlx::any::AnyRow;
use uuid::Uuid;

use super::audit::NewAudit;
use super::resource::{changed, resource, Page};
use super::row::RowExt;
use super::{Result, Store, StoreError};
use crate::model::{now_ms, Admin, Role};

const COLUMNS: &str = "id, username, role, disabled, created_at";

fn from_row(r: &AnyRow) -> Result<Admin> {
    Ok(Admin {
        id: r.id("id")?,
        username: r.text("username")?,
        role: r.parsed("role")?,
        disabled: r.flag("disabled")?,
        created_at: r.int("created_at")?,
    })
}

resource!(Admin, "admins", COLUMNS, "admin", from_row);

impl Store {
    pub async fn create_admin(
        &self,
        actor: &str,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<Admin> {
        let id = Uuid::new_v4();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO admins (id, username, password_hash, role, disabled, created_at) VALUES ($1, $2, $3, $4, FALSE, $5)")
            .bind(id.to_string())
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"username": username, "role": role});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "admin.create", "admin", id, detail),
            id,
        )
        .await
    }

    pub async fn get_admin(&self, id: Uuid) -> Result<Admin> {
        self.fetch(id).await
    }

    /// The admin and its password hash, for login.
    pub async fn admin_credentials(&self, username: &str) -> Result<Option<(Admin, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, password_hash FROM admins WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| Ok((from_row(&r)?, r.text("password_hash")?)))
            .transpose()
    }

    /// The admin, its password hash and its token generation, for login.
    pub async fn admin_login(&self, username: &str) -> Result<Option<(Admin, String, i64)>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, password_hash, token_generation FROM admins WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok((
                from_row(&r)?,
                r.text("password_hash")?,
                r.int("token_generation")?,
            ))
        })
        .transpose()
    }

    /// The admin and its token generation, for checking a token on every request.
    pub async fn admin_session(&self, id: Uuid) -> Result<(Admin, i64)> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, token_generation FROM admins WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound("admin"))?;
        Ok((from_row(&row)?, row.int("token_generation")?))
    }

    /// The admin's password hash (to check a current password before changing it).
    pub async fn admin_password_hash(&self, id: Uuid) -> Result<String> {
        sqlx::query("SELECT password_hash FROM admins WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound("admin"))?
            .text("password_hash")
    }

    pub async fn list_admins(&self) -> Result<Vec<Admin>> {
        self.list_admins_page(Page::ALL).await
    }

    pub async fn list_admins_page(&self, page: Page) -> Result<Vec<Admin>> {
        self.list("username", page).await
    }

    pub async fn count_admins(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM admins")
            .fetch_one(self.reader())
            .await?;
        row.int("n")
    }

    /// Changes an admin's role, disabled flag or password hash. A new password moves the token
    /// generation on, so every token issued before it stops working.
    pub async fn update_admin(
        &self,
        actor: &str,
        id: Uuid,
        role: Option<Role>,
        disabled: Option<bool>,
        password_hash: Option<&str>,
    ) -> Result<Admin> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE admins SET role = COALESCE($2, role), disabled = COALESCE($3, disabled), \
             password_hash = COALESCE($4, password_hash), \
             token_generation = token_generation + CASE WHEN $4 IS NULL THEN 0 ELSE 1 END \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(role.map(Role::as_str))
        .bind(disabled)
        .bind(password_hash)
        .execute(&mut *tx)
        .await?;
        changed(&done, "admin")?;
        let detail = serde_json::json!({"role": role, "disabled": disabled, "password_changed": password_hash.is_some()});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "admin.update", "admin", id, detail),
            id,
        )
        .await
    }
}
