//! `libero import typescript-app --from <postgres URL> [--dry-run]`: moving from the TypeScript
//! app Libero replaces (its Supabase/PostgreSQL database).
//!
//! Of the old database only the `clients` table is read, and of it only the columns whose meaning
//! is known (`tenant_shop`, `crm_type`, `org_name`, `org_contact`, `user_id`, `user_email`), in a
//! read-only transaction. Each **Commerce7** row (`crm_type = 'commerce7'`, the tenant slug in
//! `tenant_shop`) becomes an installed client of Libero through [`clients::install_if_new`] —
//! the same row the install callback writes for a first install: install generation 1, the app's
//! clock for every timestamp, empty settings (the settings form is then prefilled from the
//! organisation and the installer, as after a callback). Rows of other platforms (Shopify) and
//! rows whose `tenant_shop` is not a Commerce7 tenant slug are reported and skipped. A tenant
//! Libero already knows, installed or uninstalled, is reported and never overwritten or
//! reactivated — also when its install callback lands while the import runs (the insert does
//! nothing on a conflict). So the import is idempotent: a second run imports nothing and says so.
//!
//! The old `app_sessions` rows are not read: their ids are the raw cookie tokens (never hashed),
//! and Libero's sessions are keyed by the SHA-256 of a token of its own. Merchants sign in once
//! more, without doing anything, on their next open from Commerce7.
//!
//! The source is read completely before the destination (`DATABASE_URL`) is even opened: a source
//! that cannot be read stops the command with one line and nothing written anywhere. A real run
//! then applies the destination's pending migrations, as `libero migrate` and `libero serve` do;
//! a dry run opens the destination read-only (a SQLite file that does not exist is not created)
//! and writes nothing at all.

use std::{collections::HashMap, fmt::Write as _, str::FromStr, time::Duration};

use serde_json::json;
use sqlx::{
    Connection, PgConnection, SqliteConnection, migrate::Migrator, postgres::PgConnectOptions,
    sqlite::SqliteConnectOptions,
};

use super::{
    clients::{self, Installation},
    db::{self, Backend, Db},
    sessions::tab::is_tenant_slug,
    terminal::{escape_controls, redact_url, scrub, url_passwords},
};

/// How long connecting to either database may take before the command gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest install detail kept, as the install callback keeps it.
const MAX_DETAIL_CHARS: usize = 500;

/// The old app's `clients` columns the import reads; the first three are required.
const REQUIRED_COLUMNS: [&str; 3] = ["tenant_shop", "crm_type", "org_name"];
/// Optional: `org_contact` (001) and `user_id`, `user_email` (002); read as NULL when absent.
const OPTIONAL_COLUMNS: [&str; 3] = ["org_contact", "user_id", "user_email"];

/// Why a destination whose `clients` table has `tenant_shop` is refused, dry run or not: Libero's
/// tables share the old app's names, not its columns, and its migrations would write there.
const THE_OLD_APPS: &str = "it is the TypeScript app's database (clients.tenant_shop): give Libero its own";

/// What the output says about the old sessions, on every run.
pub const SESSIONS_NOT_IMPORTED: &str = "Old sessions (app_sessions) are not imported: their ids are the raw cookie \
                                         tokens, never hashed. Merchants sign in once more, without doing anything, \
                                         the next time they open Libero from Commerce7.";

/// One row of the old app's `clients` table, as read.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceClient {
    /// `tenant_shop`: the Commerce7 tenant slug, or a Shopify shop.
    pub tenant_shop: String,
    /// `crm_type`: `commerce7` or `shopify`.
    pub crm_type: String,
    pub org_name: Option<String>,
    /// `org_contact` (the installer's name at install in the old app).
    pub org_contact: Option<String>,
    /// `user_id`: the installer's Commerce7 user id.
    pub user_id: Option<String>,
    /// `user_email`: the installer's email.
    pub user_email: Option<String>,
}

/// What the import did, or in a dry run would do, with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Made an installed client (a dry run: would be).
    Imported,
    /// Libero already has this tenant: left exactly as it is.
    AlreadyKnown {
        /// Whether it is installed now (an uninstalled one is not reactivated either).
        installed: bool,
    },
    /// A row of another platform (`crm_type` is not `commerce7`).
    OtherPlatform,
    /// `tenant_shop` is not a Commerce7 tenant slug.
    Invalid,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The source row.
    pub source: SourceClient,
    /// What happened to it.
    pub outcome: Outcome,
}

/// The destination's migrations, as the run found (and left) them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Nothing was pending.
    UpToDate,
    /// A real run applied this many before importing.
    Applied(usize),
    /// A dry run found this many pending (a real run applies them first).
    Pending(usize),
    /// A dry run found no SQLite file: a real run creates it and applies every migration.
    NoDatabaseYet(usize),
}

/// The whole run, printed by [`Report::to_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The source URL, its password replaced.
    pub source: String,
    /// The destination URL, its password replaced.
    pub destination: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The destination's migrations.
    pub migrations: Migrations,
    /// One per source row, in `tenant_shop` order.
    pub entries: Vec<Entry>,
    /// A write that failed part-way: the rows before it are done, a new run continues.
    pub failure: Option<String>,
}

/// The client Libero makes of a Commerce7 row, or why the row is skipped.
pub fn classify(row: &SourceClient) -> Result<Installation, Outcome> {
    if !row.crm_type.trim().eq_ignore_ascii_case("commerce7") {
        return Err(Outcome::OtherPlatform);
    }
    if !is_tenant_slug(&row.tenant_shop) {
        return Err(Outcome::Invalid);
    }
    Ok(Installation {
        tenant_id: row.tenant_shop.clone(),
        org_name: detail(row.org_name.as_deref()),
        org_contact: detail(row.org_contact.as_deref()),
        user_id: detail(row.user_id.as_deref()),
        user_email: detail(row.user_email.as_deref()),
        install_data: json!({}),
    })
}

/// An install detail as the install callback keeps one: trimmed, empty as none, at most 500
/// characters.
fn detail(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|s| !s.is_empty()).map(|s| s.chars().take(MAX_DETAIL_CHARS).collect())
}

/// The outcome of each row against the tenants Libero knows (`tenant_id` → installed).
pub fn plan(rows: Vec<SourceClient>, known: &HashMap<String, bool>) -> Vec<Entry> {
    rows.into_iter()
        .map(|source| {
            let outcome = match classify(&source) {
                Err(skipped) => skipped,
                Ok(install) => match known.get(&install.tenant_id) {
                    Some(&installed) => Outcome::AlreadyKnown { installed },
                    None => Outcome::Imported,
                },
            };
            Entry { source, outcome }
        })
        .collect()
}

/// Runs the import from the PostgreSQL database at `source_url` into `destination_url`.
///
/// `Err` when nothing was written: the source or the destination cannot be read or migrated.
/// A write that fails part-way is [`Report::failure`], with the rows done before it.
pub async fn typescript_app(source_url: &str, destination_url: &str, dry_run: bool) -> Result<Report, String> {
    let rows = read_source(source_url).await?;
    let destination = redact_url(destination_url);
    let mut report = Report {
        source: redact_url(source_url),
        destination: destination.clone(),
        dry_run,
        migrations: Migrations::UpToDate,
        entries: Vec::new(),
        failure: None,
    };
    let cannot = |what: &str, err: &dyn std::fmt::Display| {
        let reason = scrub(&err.to_string(), &url_passwords(destination_url));
        format!("cannot {what} the destination database {destination}: {reason}")
    };
    if dry_run {
        let (known, migrations) = match read_destination(destination_url).await {
            Ok(Some(read)) => read,
            Ok(None) => return Err(cannot("use", &THE_OLD_APPS)),
            Err(err) => return Err(cannot("read", &err)),
        };
        report.migrations = migrations;
        report.entries = plan(rows, &known);
        return Ok(report);
    }

    let db = Db::connect(destination_url).await.map_err(|e| cannot("open", &e))?;
    let result = import_into(&db, rows, &mut report).await;
    db.close().await;
    result.map(|()| report).map_err(|(what, err)| cannot(what, &err))
}

/// The real run: migrations, then one insert per Commerce7 row that Libero does not know.
async fn import_into(db: &Db, rows: Vec<SourceClient>, report: &mut Report) -> Result<(), (&'static str, String)> {
    let read = |e: sqlx::Error| ("read", e.to_string());
    let pending = match db {
        Db::Sqlite(pool) => pending_sqlite(&mut *pool.acquire().await.map_err(read)?).await,
        Db::Postgres(pool) => pending_postgres(&mut *pool.acquire().await.map_err(read)?).await,
    }
    .map_err(read)?;
    if let Db::Postgres(pool) = db
        && clients_columns(pool).await.map_err(read)?.iter().any(|column| column == "tenant_shop")
    {
        return Err(("use", THE_OLD_APPS.into()));
    }
    db.migrate().await.map_err(|e| ("migrate", e.to_string()))?;
    report.migrations = if pending == 0 { Migrations::UpToDate } else { Migrations::Applied(pending) };

    for source in rows {
        let outcome = match classify(&source) {
            Err(skipped) => skipped,
            Ok(install) => match write_one(db, &install).await {
                Ok(outcome) => outcome,
                Err(err) => {
                    report.failure = Some(format!("importing {} failed: {err}", escape_controls(&install.tenant_id)));
                    return Ok(());
                }
            },
        };
        report.entries.push(Entry { source, outcome });
    }
    Ok(())
}

async fn write_one(db: &Db, install: &Installation) -> Result<Outcome, sqlx::Error> {
    if clients::install_if_new(db, install).await?.is_some() {
        return Ok(Outcome::Imported);
    }
    let installed = clients::find_by_tenant(db, &install.tenant_id).await?.is_some_and(|c| c.is_installed());
    Ok(Outcome::AlreadyKnown { installed })
}

// ---------------------------------------------------------------------------------------------
// The source

/// Every row of the old app's `clients`, ordered by `tenant_shop`, read in one read-only
/// transaction. Reads no other table.
async fn read_source(url: &str) -> Result<Vec<SourceClient>, String> {
    let shown = redact_url(url);
    let fail = |err: String| {
        format!("cannot read the TypeScript app's database {shown}: {}", scrub(&err, &url_passwords(url)))
    };
    if Backend::of_url(url) != Some(Backend::Postgres) {
        return Err(format!(
            "--from must be the TypeScript app's PostgreSQL URL (postgres://user:password@host:5432/postgres), got {}",
            if url.contains("://") { shown.clone() } else { "something else".to_owned() }
        ));
    }
    let options = PgConnectOptions::from_str(url).map_err(|e| fail(e.to_string()))?;
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| fail(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| fail(e.to_string()))?;
    let rows = read_clients(&mut conn).await.map_err(fail);
    let _ = conn.close().await;
    rows
}

/// The columns of the database's `clients` table (none without one): the TypeScript app's has
/// `tenant_shop`, Libero's `tenant_id`.
async fn clients_columns<'c>(db: impl sqlx::PgExecutor<'c>) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute
          WHERE attrelid = to_regclass('clients') AND attnum > 0 AND NOT attisdropped",
    )
    .fetch_all(db)
    .await
}

async fn read_clients(conn: &mut PgConnection) -> Result<Vec<SourceClient>, String> {
    let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
    sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await.map_err(|e| e.to_string())?;
    let columns = clients_columns(&mut *tx).await.map_err(|e| e.to_string())?;
    if columns.is_empty() {
        return Err("it has no clients table: is this the TypeScript app's database?".to_owned());
    }
    if let Some(missing) = REQUIRED_COLUMNS.iter().find(|c| !columns.iter().any(|have| have == *c)) {
        return Err(format!("its clients table has no {missing} column: is this the TypeScript app's database?"));
    }
    // Fixed column names only: what is selected never comes from the database or the user.
    let optional = OPTIONAL_COLUMNS.map(|c| if columns.iter().any(|have| have == c) { c } else { "NULL" });
    let query = format!(
        "SELECT tenant_shop::text, crm_type::text, org_name::text, {}::text AS org_contact, {}::text AS user_id,
                {}::text AS user_email
           FROM clients ORDER BY tenant_shop",
        optional[0], optional[1], optional[2]
    );
    let mut rows: Vec<SourceClient> = sqlx::query_as(&query).fetch_all(&mut *tx).await.map_err(|e| e.to_string())?;
    tx.rollback().await.map_err(|e| e.to_string())?;
    // In byte order, whatever the database's collation.
    rows.sort_by(|a, b| a.tenant_shop.cmp(&b.tenant_shop));
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// The destination, read-only (dry run)

/// The tenants the destination knows (`tenant_id` → installed) and its pending migrations, read
/// without writing: SQLite read-only (a missing file is not created), PostgreSQL in a read-only
/// transaction. Only columns that exist since the first migration are read. `None`: it is the
/// TypeScript app's database ([`THE_OLD_APPS`]).
async fn read_destination(url: &str) -> Result<Option<(HashMap<String, bool>, Migrations)>, sqlx::Error> {
    const KNOWN: &str = "SELECT tenant_id, uninstalled_at IS NULL FROM clients";
    let connect_timeout = |_| {
        let message = format!("no answer within {} s", CONNECT_TIMEOUT.as_secs());
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, message))
    };
    let (pending, known) = if Backend::of_url(url) == Some(Backend::Postgres) {
        let options = PgConnectOptions::from_str(url)?;
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(connect_timeout)??;
        let mut tx = conn.begin().await?;
        sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
        let pending = pending_postgres(&mut tx).await?;
        let columns = clients_columns(&mut *tx).await?;
        if columns.iter().any(|column| column == "tenant_shop") {
            return Ok(None);
        }
        let known: Vec<(String, bool)> =
            if columns.is_empty() { Vec::new() } else { sqlx::query_as(KNOWN).fetch_all(&mut *tx).await? };
        tx.rollback().await?;
        let _ = conn.close().await;
        (pending, known)
    } else {
        let options = SqliteConnectOptions::from_str(url)?;
        let file = options.get_filename();
        if Backend::is_in_memory(url) || !file.exists() {
            return Ok(Some((HashMap::new(), Migrations::NoDatabaseYet(known_versions(&db::SQLITE_MIGRATIONS).len()))));
        }
        let options = options.read_only(true).create_if_missing(false);
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, SqliteConnection::connect_with(&options))
            .await
            .map_err(connect_timeout)??;
        let pending = pending_sqlite(&mut conn).await?;
        let has_clients: bool =
            sqlx::query_scalar("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'clients'")
                .fetch_one(&mut conn)
                .await?;
        let known: Vec<(String, bool)> =
            if has_clients { sqlx::query_as(KNOWN).fetch_all(&mut conn).await? } else { Vec::new() };
        let _ = conn.close().await;
        (pending, known)
    };
    let migrations = if pending == 0 { Migrations::UpToDate } else { Migrations::Pending(pending) };
    Ok(Some((known.into_iter().collect(), migrations)))
}

/// The versions this binary would apply (no down migrations).
fn known_versions(migrator: &Migrator) -> Vec<i64> {
    migrator.iter().filter(|m| !m.migration_type.is_down_migration()).map(|m| m.version).collect()
}

/// How many of `migrator`'s migrations the database has not applied successfully.
fn count_pending(migrator: &Migrator, recorded: &[db::Recorded]) -> usize {
    known_versions(migrator).iter().filter(|v| !recorded.iter().any(|r| r.success && r.version == **v)).count()
}

async fn pending_sqlite(conn: &mut SqliteConnection) -> Result<usize, sqlx::Error> {
    Ok(count_pending(&db::SQLITE_MIGRATIONS, &db::recorded_migrations_sqlite(conn).await?))
}

async fn pending_postgres(conn: &mut PgConnection) -> Result<usize, sqlx::Error> {
    Ok(count_pending(&db::POSTGRES_MIGRATIONS, &db::recorded_migrations_postgres(conn).await?))
}

// ---------------------------------------------------------------------------------------------
// The report

/// The width of the first column of a report line (the longest label).
const LABEL_WIDTH: usize = 27;

impl Outcome {
    /// The first column of its report line.
    pub fn label(&self, dry_run: bool) -> &'static str {
        match self {
            Self::Imported if dry_run => "would import",
            Self::Imported => "imported",
            Self::AlreadyKnown { installed: true } => "already known (installed)",
            Self::AlreadyKnown { installed: false } => "already known (uninstalled)",
            Self::OtherPlatform => "skipped: other platform",
            Self::Invalid => "skipped: invalid",
        }
    }
}

impl Entry {
    /// `label  tenant — detail`, every value from the old database with its control characters
    /// escaped.
    pub fn line(&self, dry_run: bool) -> String {
        let s = &self.source;
        let shown = |value: &Option<String>| value.as_deref().map_or_else(|| "none".to_owned(), escape_controls);
        let detail = match &self.outcome {
            Outcome::Imported => {
                let install = classify(s).expect("an imported row classifies");
                let (org, email) = (install.org_name.as_deref(), install.user_email.as_deref());
                format!(
                    "organisation {}, contact {}, installer {} {}",
                    org.map_or_else(|| "none".to_owned(), |n| format!("\"{}\"", escape_controls(n))),
                    shown(&install.org_contact),
                    shown(&install.user_id),
                    email.map_or_else(|| "(no email)".to_owned(), |e| format!("<{}>", escape_controls(e))),
                )
            }
            Outcome::AlreadyKnown { installed: true } => "left as it is".to_owned(),
            Outcome::AlreadyKnown { installed: false } => {
                "left as it is, not reactivated (it comes back with its install from Commerce7)".to_owned()
            }
            Outcome::OtherPlatform => format!("crm_type \"{}\"", escape_controls(&s.crm_type)),
            Outcome::Invalid => {
                "not a Commerce7 tenant id (letters, digits, - and _ only, at most 100 characters)".to_owned()
            }
        };
        let tenant = if s.tenant_shop.is_empty() { "(empty)".to_owned() } else { escape_controls(&s.tenant_shop) };
        format!("{:<LABEL_WIDTH$} {tenant} — {detail}", self.outcome.label(dry_run))
    }
}

impl Report {
    /// How many rows had each outcome: imported, already known, other platform, invalid.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |f: fn(&Outcome) -> bool| self.entries.iter().filter(|e| f(&e.outcome)).count();
        (
            count(|o| *o == Outcome::Imported),
            count(|o| matches!(o, Outcome::AlreadyKnown { .. })),
            count(|o| *o == Outcome::OtherPlatform),
            count(|o| *o == Outcome::Invalid),
        )
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let (imported, known, other, invalid) = self.counts();
        let rows = self.entries.len();
        let rest = format!(
            "{known} already known, {other} skipped: other platform, {invalid} skipped: invalid \
             ({rows} rows in clients)"
        );
        if self.dry_run {
            format!("Summary (dry run, nothing written): {imported} would be imported, {rest}.")
        } else if let Some(failure) = &self.failure {
            format!(
                "Summary: stopped after {rows} rows: {imported} imported, {rest}; {failure}. Run the import again: it \
                 continues where it stopped."
            )
        } else if imported == 0 {
            format!("Summary: 0 imported, {rest}. Nothing changed.")
        } else {
            format!("Summary: {imported} imported, {rest}.")
        }
    }

    /// The whole report: where from and to, one line per row, the summary, the sessions note.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Source: the TypeScript app's clients table at {} (read only)", self.source);
        let migrations = match self.migrations {
            Migrations::UpToDate => "migrations up to date".to_owned(),
            Migrations::Applied(n) => format!("{n} pending migrations applied first"),
            Migrations::Pending(n) => format!("{n} migrations pending: the real run applies them first"),
            Migrations::NoDatabaseYet(n) => {
                format!("no database file yet: the real run creates it and applies all {n} migrations")
            }
        };
        let _ = writeln!(out, "Destination: {} ({migrations})", self.destination);
        for entry in &self.entries {
            let _ = writeln!(out, "{}", entry.line(self.dry_run));
        }
        let _ = writeln!(out, "{}", self.summary());
        let _ = writeln!(out, "{SESSIONS_NOT_IMPORTED}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tenant: &str, crm: &str) -> SourceClient {
        SourceClient {
            tenant_shop: tenant.into(),
            crm_type: crm.into(),
            org_name: Some("Vista Ridge Vineyards".into()),
            org_contact: Some("Ana Ruiz".into()),
            user_id: Some("c7-user-ana".into()),
            user_email: Some("ana@vistaridge.example".into()),
        }
    }

    #[test]
    fn only_commerce7_rows_with_a_tenant_slug_become_clients() {
        let install = classify(&row("vista-ridge", "commerce7")).unwrap();
        assert_eq!(install.tenant_id, "vista-ridge");
        assert_eq!(install.org_name.as_deref(), Some("Vista Ridge Vineyards"));
        assert_eq!(install.org_contact.as_deref(), Some("Ana Ruiz"));
        assert_eq!(install.user_id.as_deref(), Some("c7-user-ana"));
        assert_eq!(install.user_email.as_deref(), Some("ana@vistaridge.example"));
        assert_eq!(install.install_data, json!({}));
        assert!(classify(&row("winery_2", "commerce7")).is_ok());
        assert_eq!(classify(&row("shop.myshopify.com", "shopify")).unwrap_err(), Outcome::OtherPlatform);
        // Another platform is reported as such even with a slug-like name.
        assert_eq!(classify(&row("vista-ridge", "shopify")).unwrap_err(), Outcome::OtherPlatform);
        for invalid in [
            "",
            "north-hill.admin.platform.commerce7.com",
            "vista ridge",
            " vista-ridge",
            "vista-ridge\n",
            "a/b",
            "vista-ridge;drop",
            "vïsta",
            &"a".repeat(101),
        ] {
            assert_eq!(classify(&row(invalid, "commerce7")).unwrap_err(), Outcome::Invalid, "{invalid:?}");
        }
        assert!(classify(&row(&"a".repeat(100), "commerce7")).is_ok(), "100 characters is a slug");
    }

    #[test]
    fn install_details_are_kept_as_the_install_callback_keeps_them() {
        let mut source = row("quiet-creek", "commerce7");
        source.org_name = Some("  Old Oak Cellars \t".into());
        source.org_contact = None;
        source.user_id = Some("   ".into());
        source.user_email = None;
        let install = classify(&source).unwrap();
        assert_eq!(install.org_name.as_deref(), Some("Old Oak Cellars"));
        assert_eq!(install.org_contact, None);
        assert_eq!(install.user_id, None, "blank is none");
        assert_eq!(install.user_email, None);
        source.org_name = Some("é".repeat(600));
        assert_eq!(classify(&source).unwrap().org_name.unwrap().chars().count(), 500);
    }

    #[test]
    fn the_plan_never_imports_a_known_tenant() {
        let rows = vec![
            row("already-here", "commerce7"),
            row("gone-away", "commerce7"),
            row("new-one", "commerce7"),
            row("shop.myshopify.com", "shopify"),
            row("bad.slug", "commerce7"),
        ];
        let known = HashMap::from([("already-here".to_owned(), true), ("gone-away".to_owned(), false)]);
        let outcomes: Vec<Outcome> = plan(rows, &known).into_iter().map(|e| e.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::AlreadyKnown { installed: true },
                Outcome::AlreadyKnown { installed: false },
                Outcome::Imported,
                Outcome::OtherPlatform,
                Outcome::Invalid,
            ]
        );
    }

    fn report(dry_run: bool, outcomes: &[(&str, &str, Outcome)]) -> Report {
        Report {
            source: "postgres://postgres:***@db.example.com:5432/postgres".into(),
            destination: "sqlite://libero.db".into(),
            dry_run,
            migrations: Migrations::UpToDate,
            entries: outcomes
                .iter()
                .map(|(tenant, crm, outcome)| Entry { source: row(tenant, crm), outcome: outcome.clone() })
                .collect(),
            failure: None,
        }
    }

    #[test]
    fn the_report_has_one_line_per_row_a_summary_and_the_sessions_note() {
        let mut quiet = row("quiet-creek", "commerce7");
        quiet.org_contact = None;
        quiet.user_id = None;
        quiet.user_email = None;
        let mut r = report(
            false,
            &[
                ("already-here", "commerce7", Outcome::AlreadyKnown { installed: true }),
                ("gone-away", "commerce7", Outcome::AlreadyKnown { installed: false }),
                ("shop.myshopify.com", "shopify", Outcome::OtherPlatform),
                ("bad.slug", "commerce7", Outcome::Invalid),
                ("vista-ridge", "commerce7", Outcome::Imported),
            ],
        );
        r.entries.push(Entry { source: quiet, outcome: Outcome::Imported });
        r.migrations = Migrations::Applied(9);
        let text = r.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "Source: the TypeScript app's clients table at postgres://postgres:***@db.example.com:5432/postgres (read only)",
                "Destination: sqlite://libero.db (9 pending migrations applied first)",
                "already known (installed)   already-here — left as it is",
                "already known (uninstalled) gone-away — left as it is, not reactivated (it comes back with its install from Commerce7)",
                "skipped: other platform     shop.myshopify.com — crm_type \"shopify\"",
                "skipped: invalid            bad.slug — not a Commerce7 tenant id (letters, digits, - and _ only, at most 100 characters)",
                "imported                    vista-ridge — organisation \"Vista Ridge Vineyards\", contact Ana Ruiz, installer c7-user-ana <ana@vistaridge.example>",
                "imported                    quiet-creek — organisation \"Vista Ridge Vineyards\", contact none, installer none (no email)",
                "Summary: 2 imported, 2 already known, 1 skipped: other platform, 1 skipped: invalid (6 rows in clients).",
                SESSIONS_NOT_IMPORTED,
            ]
        );
    }

    #[test]
    fn a_run_that_imports_nothing_says_nothing_changed_and_a_dry_run_says_it_wrote_nothing() {
        let again = report(false, &[("vista-ridge", "commerce7", Outcome::AlreadyKnown { installed: true })]);
        assert_eq!(
            again.summary(),
            "Summary: 0 imported, 1 already known, 0 skipped: other platform, 0 skipped: invalid (1 rows in clients). \
             Nothing changed."
        );
        let mut dry = report(true, &[("vista-ridge", "commerce7", Outcome::Imported)]);
        dry.migrations = Migrations::NoDatabaseYet(6);
        let text = dry.to_text();
        assert!(text.contains("\nwould import                vista-ridge — organisation"), "{text}");
        assert!(
            text.contains(
                "Summary (dry run, nothing written): 1 would be imported, 0 already known, 0 skipped: other platform, \
                 0 skipped: invalid (1 rows in clients)."
            ),
            "{text}"
        );
        assert!(
            text.contains("(no database file yet: the real run creates it and applies all 6 migrations)"),
            "{text}"
        );
    }

    #[test]
    fn a_failure_part_way_is_in_the_summary() {
        let mut r = report(false, &[("vista-ridge", "commerce7", Outcome::Imported)]);
        r.failure = Some("importing old-oak failed: database is locked".into());
        assert!(r.summary().starts_with("Summary: stopped after 1 rows: 1 imported,"), "{}", r.summary());
        assert!(r.summary().contains("importing old-oak failed: database is locked"), "{}", r.summary());
    }

    #[test]
    fn values_from_the_old_database_cannot_rewrite_the_terminal() {
        let mut source = row("bad\u{1b}[2Jslug\nimported                    forged", "commerce7");
        source.crm_type = "shopify\r".into();
        let line = Entry { source: source.clone(), outcome: Outcome::OtherPlatform }.line(false);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains(r"bad\u{1b}[2Jslug\nimported"), "{line}");
        source.crm_type = "commerce7".into();
        source.tenant_shop = "ok-slug".into();
        source.org_name = Some("Evil\u{202e}Name".into());
        source.user_email = Some("a@b\u{7}".into());
        let line = Entry { source, outcome: Outcome::Imported }.line(false);
        assert!(!line.chars().any(|c| c.is_control() || c == '\u{202e}'), "{line:?}");
    }
}
