//! `clients`: one row per Commerce7 tenant, written by the install/uninstall callbacks and by the
//! merchant's settings form.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Connection, types::Json};
use uuid::Uuid;

use crate::db::{ClientKey, Db, bounded, now, on_pool};

/// A tenant's client row, as the app uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// Primary key.
    pub id: Uuid,
    /// Commerce7 tenant slug.
    pub tenant_id: String,
    /// Organisation name from the install callback.
    pub org_name: Option<String>,
    /// `None` while installed.
    pub uninstalled_at: Option<DateTime<Utc>>,
    /// Which installation this is: 1 at the first install, one more at each install that
    /// follows an uninstall. Sessions signed in under another generation are dead.
    pub install_generation: i64,
}

impl Client {
    /// Whether the app is currently installed for this tenant.
    pub fn is_installed(&self) -> bool {
        self.uninstalled_at.is_none()
    }
}

/// What an install callback records.
#[derive(Debug, Clone)]
pub struct Installation {
    /// Commerce7 tenant slug.
    pub tenant_id: String,
    /// `organization-name`, if sent.
    pub org_name: Option<String>,
    /// The contact prefilled in the settings: the installer's name.
    pub org_contact: Option<String>,
    /// Installer's Commerce7 user id.
    pub user_id: Option<String>,
    /// Installer's email.
    pub user_email: Option<String>,
    /// Every other field of the callback body.
    pub install_data: Value,
}

/// The organisation details an install callback carries besides its name
/// (`organization-address`, `organization-website`, `organization-phone`): a copy of what
/// Commerce7 holds, replaced by each install callback and shown read-only, never edited in Libero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Organization {
    /// `clients.org_address`: `organization-address`.
    pub address: Option<String>,
    /// `clients.org_website`: `organization-website`, as sent (not necessarily a URL).
    pub website: Option<String>,
    /// `clients.org_phone`: `organization-phone`.
    pub phone: Option<String>,
}

/// The merchant's settings JSON together with the version it was read at, and the install
/// details used as defaults before the first save.
#[derive(Debug, Clone)]
pub struct StoredSettings {
    /// `clients.settings`.
    pub settings: Value,
    /// `clients.updated_at`, used as an optimistic-concurrency version.
    pub version: DateTime<Utc>,
    /// `clients.org_name`.
    pub org_name: Option<String>,
    /// `clients.org_contact`.
    pub org_contact: Option<String>,
    /// `clients.user_email` (the installer).
    pub user_email: Option<String>,
    /// `clients.org_address`, `org_website`, `org_phone`.
    pub organization: Organization,
}

/// A client as both databases return it: the id as text (`CAST(id AS TEXT)`).
type ClientRow = (String, String, Option<String>, Option<DateTime<Utc>>, i64);

/// The columns of a [`ClientRow`].
macro_rules! client_columns {
    () => {
        "CAST(id AS TEXT), tenant_id, org_name, uninstalled_at, install_generation"
    };
}

fn client_of((id, tenant_id, org_name, uninstalled_at, install_generation): ClientRow) -> Result<Client, sqlx::Error> {
    let id = Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Client { id, tenant_id, org_name, uninstalled_at, install_generation })
}

/// Records an install: creates the client, or reactivates and refreshes it on reinstall. The
/// merchant's settings survive a reinstall.
///
/// Every install callback replaces the install details — the organisation name, contact,
/// installer and `organization` — with what it carried: a detail it leaves out becomes NULL.
/// Commerce7 is their source of truth and Libero never edits them, so there is nothing of the
/// merchant's to keep; what the merchant typed is in `settings`, which an install never touches.
///
/// Idempotent for sessions: only an install that follows an uninstall starts a new installation
/// (`install_generation` + 1, `installed_at` = now), which ends every older session. A repeated
/// install callback of an installed tenant (Commerce7 may retry) refreshes the install details
/// and changes nothing about sessions.
pub async fn install(db: &Db, install: &Installation, organization: &Organization) -> Result<Client, sqlx::Error> {
    let now = now();
    const SQL: &str = concat!(
        "INSERT INTO clients (id, tenant_id, org_name, org_contact, user_id, user_email, install_data,
                              installed_at, uninstalled_at, created_at, updated_at,
                              org_address, org_website, org_phone)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $8, $8, $9, $10, $11)
         ON CONFLICT (tenant_id) DO UPDATE SET
             org_name = excluded.org_name, org_contact = excluded.org_contact,
             user_id = excluded.user_id, user_email = excluded.user_email,
             install_data = excluded.install_data,
             org_address = excluded.org_address, org_website = excluded.org_website,
             org_phone = excluded.org_phone,
             installed_at = CASE WHEN clients.uninstalled_at IS NULL
                                 THEN clients.installed_at ELSE excluded.installed_at END,
             install_generation = clients.install_generation
                                  + CASE WHEN clients.uninstalled_at IS NULL THEN 0 ELSE 1 END,
             uninstalled_at = NULL, updated_at = excluded.updated_at
         RETURNING ",
        client_columns!()
    );
    let row: ClientRow = on_pool!(db, |c| sqlx::query_as(SQL)
        .bind(ClientKey(Uuid::new_v4()))
        .bind(&install.tenant_id)
        .bind(&install.org_name)
        .bind(&install.org_contact)
        .bind(&install.user_id)
        .bind(&install.user_email)
        .bind(Json(&install.install_data))
        .bind(now)
        .bind(&organization.address)
        .bind(&organization.website)
        .bind(&organization.phone)
        .fetch_one(c)
        .await?)?;
    client_of(row)
}

/// Deletes all the tenant's sessions and marks it uninstalled, in one transaction. Returns the
/// number of sessions deleted, or `None` for an unknown tenant. (Marking it uninstalled would
/// delete them too — the database's trigger, `…self_contained_sessions.sql` — but then they
/// could not be counted; on SQLite the trigger also catches a sign-in committed between the two
/// statements.)
pub async fn uninstall(db: &Db, tenant_id: &str) -> Result<Option<u64>, sqlx::Error> {
    let now = now();
    match db {
        Db::Sqlite(pool) => {
            bounded(pool, async |c| {
                let mut tx = c.begin().await?;
                let deleted = sqlx::query(
                    "DELETE FROM app_sessions WHERE client_id = (SELECT id FROM clients WHERE tenant_id = ?1)",
                )
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let id: Option<String> = sqlx::query_scalar(
                    "UPDATE clients SET uninstalled_at = COALESCE(uninstalled_at, ?1), updated_at = ?1
                     WHERE tenant_id = ?2 RETURNING id",
                )
                .bind(now)
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
                if id.is_none() {
                    return Ok(None);
                }
                tx.commit().await?;
                Ok(Some(deleted))
            })
            .await
        }
        Db::Postgres(pool) => {
            bounded(pool, async |c| {
                // The client row first, as an install does (its trigger then deletes sessions): one
                // lock order, so an uninstall and an install of one tenant cannot deadlock. A sign-in
                // holding the row FOR SHARE finishes first, and its session is deleted below.
                let mut tx = c.begin().await?;
                let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM clients WHERE tenant_id = $1 FOR UPDATE")
                    .bind(tenant_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(id) = id else { return Ok(None) };
                let deleted = sqlx::query("DELETE FROM app_sessions WHERE client_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(
                    "UPDATE clients SET uninstalled_at = COALESCE(uninstalled_at, $1), updated_at = $1 WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(deleted))
            })
            .await
        }
    }
}

/// The client of a tenant, installed or not.
pub async fn find_by_tenant(db: &Db, tenant_id: &str) -> Result<Option<Client>, sqlx::Error> {
    // Every sign-in's first query.
    const SQL: &str = concat!("SELECT ", client_columns!(), " FROM clients WHERE tenant_id = $1");
    let row: Option<ClientRow> = on_pool!(db, |c| sqlx::query_as(SQL).bind(tenant_id).fetch_optional(c).await?)?;
    row.map(client_of).transpose()
}

/// The merchant's settings and their version.
pub async fn settings(db: &Db, client_id: Uuid) -> Result<Option<StoredSettings>, sqlx::Error> {
    type Row = (
        Json<Value>,
        DateTime<Utc>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = on_pool!(db, |c| sqlx::query_as(
        "SELECT settings, updated_at, org_name, org_contact, user_email, org_address, org_website, org_phone
                   FROM clients WHERE id = $1",
    )
    .bind(ClientKey(client_id))
    .fetch_optional(c)
    .await?)?;
    Ok(row.map(|(Json(settings), version, org_name, org_contact, user_email, address, website, phone)| {
        StoredSettings {
            settings,
            version,
            org_name,
            org_contact,
            user_email,
            organization: Organization { address, website, phone },
        }
    }))
}

/// Saves settings only if nobody changed them since `expected_version` was read (no lost
/// updates between two windows). Returns the new version, or `None` when the row has moved on.
pub async fn save_settings<T: Serialize + Sync>(
    db: &Db,
    client_id: Uuid,
    settings: &T,
    expected_version: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    // A new version must differ from the old one even within the same microsecond.
    let version = now().max(expected_version + chrono::TimeDelta::microseconds(1));
    let updated = on_pool!(db, |c| {
        sqlx::query("UPDATE clients SET settings = $1, updated_at = $2 WHERE id = $3 AND updated_at = $4")
            .bind(Json(settings))
            .bind(version)
            .bind(ClientKey(client_id))
            .bind(expected_version)
            .execute(c)
            .await?
            .rows_affected()
    })?;
    Ok((updated == 1).then_some(version))
}

/// Records the first install of a tenant Libero does not know yet, exactly as [`install`] records
/// one (a new id, `install_generation` 1, `installed_at` = `created_at` = `updated_at` = the app's
/// clock, empty settings so the settings form is prefilled from the install details), and does
/// nothing to a tenant that already has a row, installed or uninstalled: `None` then. The
/// TypeScript-app import uses it, so that an imported client can never overwrite or reactivate
/// one that Libero knows, even if an install callback lands meanwhile.
pub async fn install_if_new(db: &Db, install: &Installation) -> Result<Option<Client>, sqlx::Error> {
    let now = now();
    const SQL: &str = concat!(
        "INSERT INTO clients (id, tenant_id, org_name, org_contact, user_id, user_email, install_data,
                              installed_at, uninstalled_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $8, $8)
         ON CONFLICT (tenant_id) DO NOTHING
         RETURNING ",
        client_columns!()
    );
    let row: Option<ClientRow> = on_pool!(db, |c| sqlx::query_as(SQL)
        .bind(ClientKey(Uuid::new_v4()))
        .bind(&install.tenant_id)
        .bind(&install.org_name)
        .bind(&install.org_contact)
        .bind(&install.user_id)
        .bind(&install.user_email)
        .bind(Json(&install.install_data))
        .bind(now)
        .fetch_optional(c)
        .await?)?;
    row.map(client_of).transpose()
}
