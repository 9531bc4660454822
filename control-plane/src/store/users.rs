//! Users (customers).

use sqlx::any::AnyRow;
use uuid::Uuid;

use super::audit::NewAudit;
use super::resource::resource;
use super::row::RowExt;
use super::{map_rows, Result, Store, StoreError};
use crate::model::{now_ms, User, UserStatus};

/// Fields an update may change; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub status: Option<UserStatus>,
}

const COLUMNS: &str = "id, name, email, status, created_at";

fn from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: r.id("id")?,
        name: r.text("name")?,
        email: r.opt_text("email")?,
        status: r.parsed("status")?,
        created_at: r.int("created_at")?,
    })
}

resource!(User, "users", COLUMNS, "user", from_row);

impl Store {
    pub async fn create_user(&self, actor: &str, name: &str, email: Option<&str>) -> Result<User> {
        let id = Uuid::new_v4();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO users (id, name, email, status, created_at) VALUES ($1, $2, $3, 'active', $4)")
            .bind(id.to_string())
            .bind(name)
            .bind(email)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"name": name, "email": email});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "user.create", "user", id, detail),
            id,
        )
        .await
    }

    pub async fn get_user(&self, id: Uuid) -> Result<User> {
        self.fetch(id).await
    }

    pub async fn user_by_name(&self, name: &str) -> Result<User> {
        self.fetch_by("name", name).await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<User> {
        self.fetch_by("email", email).await
    }

    pub async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users ORDER BY name LIMIT $1 OFFSET $2"
        ))
        .bind(limit.clamp(1, 1000))
        .bind(offset.max(0))
        .fetch_all(self.reader())
        .await?;
        map_rows(rows, from_row)
    }

    pub async fn update_user(&self, actor: &str, id: Uuid, update: &UserUpdate) -> Result<User> {
        let mut tx = self.begin().await?;
        let current = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        let current = from_row(&current)?;
        let name = update.name.clone().unwrap_or(current.name);
        let email = update.email.clone().unwrap_or(current.email);
        let status = update.status.unwrap_or(current.status);
        sqlx::query("UPDATE users SET name = $2, email = $3, status = $4 WHERE id = $1")
            .bind(id.to_string())
            .bind(&name)
            .bind(&email)
            .bind(status.as_str())
            .execute(&mut *tx)
            .await?;
        let action = match update.status {
            Some(UserStatus::Disabled) if current.status != UserStatus::Disabled => "user.disable",
            Some(UserStatus::Active) if current.status != UserStatus::Active => "user.enable",
            _ => "user.update",
        };
        let detail = serde_json::json!({"name": name, "email": email, "status": status});
        self.commit_and_fetch(tx, NewAudit::on(actor, action, "user", id, detail), id)
            .await
    }

    /// Deletes a user with its devices, subscriptions and sessions.
    pub async fn delete_user(&self, actor: &str, id: Uuid) -> Result<()> {
        self.delete_audited(actor, "users", "user", "user", id)
            .await
    }
}
