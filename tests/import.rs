//! Moving from the TypeScript app, through the real `libero` binary: `libero import
//! typescript-app` from a real PostgreSQL database built per test from
//! `tests/fixtures/typescript_app.sql` into a fresh SQLite file and a fresh PostgreSQL database;
//! and `libero sessions find --cookie` (the spec's checks in Libero's terms) against a running
//! app.

mod common;

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

use chrono::{DateTime, Utc};
use common::{FreshDatabase, TENANT, TEST_SECRET, TestApp, TestDb};
use libero::server::{
    clients::{self, Installation},
    db::Db,
};
use reqwest::{StatusCode, header};
use serde_json::{Map, Value, json};
use sqlx::{Connection, Executor, PgConnection};

const FIXTURE: &str = include_str!("fixtures/typescript_app.sql");

/// The password put into the source URL when the test server's URL has none (trust
/// authentication ignores it): it must never be printed.
const SOURCE_PASSWORD: &str = "never-print-this-pw-7f3a";

/// The TypeScript app's database from the fixture, and its URL with a password in it.
async fn typescript_app_database() -> Option<(FreshDatabase, String, String)> {
    let source = FreshDatabase::create(TestDb::Postgres).await?;
    let mut conn = PgConnection::connect(&source.url).await.expect("connect to the source");
    conn.execute(sqlx::raw_sql(FIXTURE)).await.expect("the fixture loads on plain PostgreSQL");
    conn.close().await.unwrap();
    let mut url = url::Url::parse(&source.url).unwrap();
    let password = match url.password() {
        Some(existing) => existing.to_owned(),
        None => {
            url.set_password(Some(SOURCE_PASSWORD)).unwrap();
            SOURCE_PASSWORD.to_owned()
        }
    };
    Some((source, url.to_string(), password))
}

fn libero(args: &[&str], database_url: &str) -> Output {
    common::child::run_libero(args, database_url, &[], None)
}

fn import(from: &str, database_url: &str, dry_run: bool) -> Output {
    let mut args = vec!["import", "typescript-app", "--from", from];
    if dry_run {
        args.push("--dry-run");
    }
    libero(&args, database_url)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A destination migrated by Libero where `already-here` is installed and `gone-away` was
/// installed and then uninstalled, both with details of their own (not the fixture's).
async fn destination_with_known_tenants(kind: TestDb) -> Option<(FreshDatabase, Db)> {
    let database = FreshDatabase::create(kind).await?;
    let db = Db::connect(&database.url).await.unwrap();
    db.migrate().await.unwrap();
    for tenant in ["already-here", "gone-away"] {
        clients::install(
            &db,
            &Installation {
                tenant_id: tenant.into(),
                org_name: Some(format!("{tenant} (installed in Libero)")),
                org_contact: Some("Libero Contact".into()),
                user_id: Some("libero-user".into()),
                user_email: Some("libero@example.com".into()),
                install_data: json!({"from": "the install callback"}),
            },
            &Default::default(),
        )
        .await
        .unwrap();
    }
    clients::uninstall(&db, "gone-away").await.unwrap().expect("known tenant");
    Some((database, db))
}

/// Every column of every client row, keyed by tenant.
async fn clients_table(db: &Db) -> Map<String, Value> {
    let rows: Vec<String> = match db {
        Db::Sqlite(pool) => {
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info('clients')").fetch_all(pool).await.unwrap();
            let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', {c}")).collect();
            sqlx::query_scalar(&format!("SELECT json_object({}) FROM clients", pairs.join(", ")))
                .fetch_all(pool)
                .await
                .unwrap()
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT row_to_json(c)::text FROM clients c").fetch_all(pool).await.unwrap()
        }
    };
    rows.into_iter()
        .map(|row| {
            let row: Value = serde_json::from_str(&row).unwrap();
            (row["tenant_id"].as_str().unwrap().to_owned(), row)
        })
        .collect()
}

async fn count(db: &Db, table: &str) -> i64 {
    let query = format!("SELECT COUNT(*) FROM {table}");
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(&query).fetch_one(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar(&query).fetch_one(pool).await.unwrap(),
    }
}

/// Whether anything at all was written to a destination that did not exist: no SQLite file, or
/// a PostgreSQL database without a single table.
async fn untouched(database: &FreshDatabase) -> bool {
    match database.postgres_name() {
        None => {
            let path = database.url.trim_start_matches("sqlite://");
            !std::path::Path::new(path).exists()
        }
        Some(_) => {
            let mut conn = PgConnection::connect(&database.url).await.unwrap();
            let tables: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            tables == 0
        }
    }
}

fn text(value: &Value) -> Option<&str> {
    value.as_str()
}

/// The report's lines for the fixture against a destination where `already-here` is installed
/// and `gone-away` uninstalled (`imported` or `would import`).
fn fixture_lines(imported: &str) -> Vec<String> {
    let pad = |label: &str| format!("{label:<27} ");
    vec![
        format!("{}already-here — left as it is", pad("already known (installed)")),
        format!(
            "{}gone-away — left as it is, not reactivated (it comes back with its install from Commerce7)",
            pad("already known (uninstalled)")
        ),
        format!("{}libero-test-shop.myshopify.com — crm_type \"shopify\"", pad("skipped: other platform")),
        format!(
            "{}north-hill.admin.platform.commerce7.com — not a Commerce7 tenant id (letters, digits, - and _ only, at \
             most 100 characters)",
            pad("skipped: invalid")
        ),
        format!(
            "{}old-oak-cellars — organisation \"Old Oak Cellars\", contact Ben Okafor, installer c7-user-ben \
             <ben@oldoak.example>",
            pad(imported)
        ),
        format!(
            "{}quiet-creek — organisation \"Quiet Creek Winery\", contact none, installer none (no email)",
            pad(imported)
        ),
        format!(
            "{}vista-ridge — organisation \"Vista Ridge Vineyards\", contact Ana Ruiz, installer c7-user-ana \
             <ana@vistaridge.example>",
            pad(imported)
        ),
    ]
}

const SESSIONS_NOTE: &str = "Old sessions (app_sessions) are not imported: their ids are the raw cookie tokens, never \
                             hashed. Merchants sign in once more, without doing anything, the next time they open \
                             Libero from Commerce7.";

on_both_databases!(commerce7_tenants_become_installed_clients_and_nothing_else_changes, |kind| async move {
    let Some((_source, from, password)) = typescript_app_database().await else { return };
    let Some((database, db)) = destination_with_known_tenants(kind).await else { return };
    let before = clients_table(&db).await;
    let started = Utc::now();

    let output = import(&from, &database.url, false);
    let finished = Utc::now();
    assert!(output.status.success(), "{}", stderr(&output));
    let after = clients_table(&db).await;
    // Known tenants: every column as it was (not overwritten, the uninstalled one not reactivated).
    assert_eq!(after["already-here"], before["already-here"]);
    assert_eq!(after["gone-away"], before["gone-away"]);
    assert!(!after["gone-away"]["uninstalled_at"].is_null(), "still uninstalled");
    // Other platforms, invalid slugs: nothing.
    assert_eq!(after.len(), 5, "{:?}", after.keys().collect::<Vec<_>>());
    assert!(!after.contains_key("libero-test-shop.myshopify.com"));
    assert!(!after.keys().any(|t| t.contains("north-hill")));

    let vista = &after["vista-ridge"];
    assert_eq!(text(&vista["org_name"]), Some("Vista Ridge Vineyards"));
    assert_eq!(text(&vista["org_contact"]), Some("Ana Ruiz"));
    assert_eq!(text(&vista["user_id"]), Some("c7-user-ana"));
    assert_eq!(text(&vista["user_email"]), Some("ana@vistaridge.example"));
    assert_eq!(text(&after["old-oak-cellars"]["org_name"]), Some("Old Oak Cellars"), "trimmed as the callback does");
    let quiet = &after["quiet-creek"];
    assert_eq!(text(&quiet["org_name"]), Some("Quiet Creek Winery"));
    for missing in ["org_contact", "user_id", "user_email"] {
        assert!(quiet[missing].is_null(), "{missing}: {quiet}");
    }
    for tenant in ["vista-ridge", "old-oak-cellars", "quiet-creek"] {
        let row = &after[tenant];
        assert_eq!(row["install_generation"], 1, "{row}");
        assert!(row["uninstalled_at"].is_null(), "installed: {row}");
        // The app's clock, once for all three, during the run (not the old app's created_at).
        let installed: DateTime<Utc> = text(&row["installed_at"]).unwrap().parse().unwrap();
        assert!(installed >= started - chrono::TimeDelta::seconds(1) && installed <= finished, "{row}");
        for column in ["created_at", "updated_at"] {
            let at: DateTime<Utc> = text(&row[column]).unwrap().parse().unwrap();
            assert_eq!(at, installed, "{column} of {row}");
        }
        let found = clients::find_by_tenant(&db, tenant).await.unwrap().unwrap();
        assert!(found.is_installed());
        // The settings form is prefilled from the install details, as after an install callback.
        let stored = clients::settings(&db, found.id).await.unwrap().unwrap();
        assert_eq!(stored.org_name, text(&row["org_name"]).map(str::to_owned));
        assert_eq!(stored.org_contact, text(&row["org_contact"]).map(str::to_owned));
        assert_eq!(stored.user_email, text(&row["user_email"]).map(str::to_owned));
    }

    // Exactly what the install callback's first install writes for the same details.
    let reference = clients::install(
        &db,
        &Installation {
            tenant_id: "reference-winery".into(),
            org_name: Some("Vista Ridge Vineyards".into()),
            org_contact: Some("Ana Ruiz".into()),
            user_id: Some("c7-user-ana".into()),
            user_email: Some("ana@vistaridge.example".into()),
            install_data: json!({}),
        },
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(reference.install_generation, 1);
    let with_reference = clients_table(&db).await;
    let strip = |row: &Value| {
        let mut row = row.as_object().unwrap().clone();
        for varies in ["id", "tenant_id", "installed_at", "created_at", "updated_at"] {
            assert!(row.remove(varies).is_some(), "column {varies}");
        }
        row
    };
    assert_eq!(strip(&with_reference["vista-ridge"]), strip(&with_reference["reference-winery"]));

    // No session of the old app came over.
    assert_eq!(count(&db, "app_sessions").await, 0);

    // What it said it did, per tenant.
    let out = stdout(&output);
    let mut expected = vec![
        format!(
            "Source: the TypeScript app's clients table at {} (read only)",
            from.replace(&format!(":{password}@"), ":***@")
        ),
        format!("Destination: {} (migrations up to date)", database.url),
    ];
    expected.extend(fixture_lines("imported"));
    expected.push(
        "Summary: 3 imported, 2 already known, 1 skipped: other platform, 1 skipped: invalid (7 rows in clients)."
            .to_owned(),
    );
    expected.push(SESSIONS_NOTE.to_owned());
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
    assert!(!out.contains(password.as_str()) && !stderr(&output).contains(password.as_str()), "{out}");

    db.close().await;
});

on_both_databases!(a_second_run_changes_nothing_and_says_so, |kind| async move {
    let Some((_source, from, _)) = typescript_app_database().await else { return };
    // An empty destination that has never been migrated: the first run migrates it.
    let Some(database) = FreshDatabase::create(kind).await else { return };
    let first = import(&from, &database.url, false);
    assert!(first.status.success(), "{}", stderr(&first));
    let first = stdout(&first);
    assert!(first.lines().nth(1).unwrap().contains("pending migrations applied first)"), "{first}");
    assert!(
        first.contains(
            "Summary: 5 imported, 0 already known, 1 skipped: other platform, 1 skipped: invalid (7 rows in clients)."
        ),
        "{first}"
    );
    let db = Db::connect(&database.url).await.unwrap();
    let after_first = clients_table(&db).await;
    assert_eq!(after_first.len(), 5);

    let second = import(&from, &database.url, false);
    assert!(second.status.success(), "{}", stderr(&second));
    let second = stdout(&second);
    assert!(second.lines().nth(1).unwrap().ends_with("(migrations up to date)"), "{second}");
    for tenant in ["already-here", "gone-away", "old-oak-cellars", "quiet-creek", "vista-ridge"] {
        assert!(
            second.lines().any(|l| l == format!("{:<27} {tenant} — left as it is", "already known (installed)")),
            "{tenant}: {second}"
        );
    }
    assert!(
        second.contains(
            "Summary: 0 imported, 5 already known, 1 skipped: other platform, 1 skipped: invalid (7 rows in clients). \
             Nothing changed."
        ),
        "{second}"
    );
    assert_eq!(clients_table(&db).await, after_first, "every column of every row as it was");
    db.close().await;
});

on_both_databases!(a_dry_run_prints_the_plan_and_writes_nothing, |kind| async move {
    let Some((_source, from, _)) = typescript_app_database().await else { return };
    let Some((database, db)) = destination_with_known_tenants(kind).await else { return };
    let before = clients_table(&db).await;

    let dry = import(&from, &database.url, true);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let plan = stdout(&dry);
    let lines: Vec<&str> = plan.lines().collect();
    assert_eq!(lines[1], format!("Destination: {} (migrations up to date)", database.url), "{plan}");
    assert_eq!(lines[2..9], fixture_lines("would import"), "{plan}");
    assert_eq!(
        lines[9],
        "Summary (dry run, nothing written): 3 would be imported, 2 already known, 1 skipped: other platform, 1 \
         skipped: invalid (7 rows in clients)."
    );
    assert_eq!(lines[10], SESSIONS_NOTE);
    assert_eq!(clients_table(&db).await, before, "nothing written");

    // The real run then does exactly what the plan said.
    let real = import(&from, &database.url, false);
    assert!(real.status.success(), "{}", stderr(&real));
    assert_eq!(stdout(&real).lines().collect::<Vec<_>>()[2..9], fixture_lines("imported"));
    db.close().await;

    // Into a destination that does not exist yet: a plan, and not even an empty file or table.
    let Some(nothing) = FreshDatabase::create(kind).await else { return };
    let dry = import(&from, &nothing.url, true);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let plan = stdout(&dry);
    assert!(plan.contains("Summary (dry run, nothing written): 5 would be imported, 0 already known"), "{plan}");
    let destination = plan.lines().nth(1).unwrap();
    match kind {
        TestDb::Sqlite => assert!(destination.contains("(no database file yet: the real run creates it"), "{plan}"),
        TestDb::Postgres => {
            assert!(destination.contains("migrations pending: the real run applies them first)"), "{plan}")
        }
    }
    assert!(untouched(&nothing).await, "the dry run wrote nothing to {}", nothing.url);
});

on_both_databases!(a_source_from_before_the_installer_columns_imports_without_them, |kind| async move {
    let Some((source, from, _)) = typescript_app_database().await else { return };
    // The old app's database as it was before its migration 002_add_user_to_clients.sql.
    let mut conn = PgConnection::connect(&source.url).await.unwrap();
    conn.execute("ALTER TABLE clients DROP COLUMN user_id, DROP COLUMN user_email").await.unwrap();
    conn.close().await.unwrap();
    let Some(database) = FreshDatabase::create(kind).await else { return };

    let output = import(&from, &database.url, false);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains(
            "Summary: 5 imported, 0 already known, 1 skipped: other platform, 1 skipped: invalid (7 rows in clients)."
        ),
        "{out}"
    );
    let db = Db::connect(&database.url).await.unwrap();
    let clients = clients_table(&db).await;
    let vista = &clients["vista-ridge"];
    // What the old database had is imported; the installer, which it never had, is left empty.
    assert_eq!(text(&vista["org_name"]), Some("Vista Ridge Vineyards"));
    assert_eq!(text(&vista["org_contact"]), Some("Ana Ruiz"));
    assert!(vista["user_id"].is_null() && vista["user_email"].is_null(), "{vista}");
    db.close().await;
});

on_both_databases!(a_broken_source_is_one_clear_error_and_nothing_is_written, |kind| async move {
    let Some(destination) = FreshDatabase::create(kind).await else { return };
    let Some(empty) = FreshDatabase::create(TestDb::Postgres).await else { return };
    // Libero's own database is not the TypeScript app's either (no tenant_shop).
    let Some(libero_db) = FreshDatabase::create(TestDb::Postgres).await else { return };
    let db = Db::connect(&libero_db.url).await.unwrap();
    db.migrate().await.unwrap();
    db.close().await;
    let password = "broken-source-pw-91c2";
    let unreachable = format!("postgres://postgres:{password}@127.0.0.1:1/typescript_app");
    let cases = [
        (
            unreachable.clone(),
            "error: cannot read the TypeScript app's database postgres://postgres:***@127.0.0.1:1/typescript_app: ",
        ),
        (empty.url.clone(), "it has no clients table: is this the TypeScript app's database?"),
        (libero_db.url.clone(), "its clients table has no tenant_shop column: is this the TypeScript app's database?"),
        (
            format!("mysql://root:{password}@127.0.0.1/app"),
            "error: --from must be the TypeScript app's PostgreSQL URL (postgres://user:password@host:5432/postgres), \
             got mysql://root:***@127.0.0.1/app",
        ),
        ("not a url".to_owned(), "got something else"),
    ];
    for (from, says) in &cases {
        for dry_run in [false, true] {
            let output = import(from, &destination.url, dry_run);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(1), "{from}: {err}");
            assert!(err.contains(says), "{from} (dry run {dry_run}): {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(err.starts_with("error: "), "{err}");
            assert!(!err.contains(password), "{err}");
            assert!(stdout(&output).is_empty(), "{}", stdout(&output));
            assert!(untouched(&destination).await, "nothing written to {} ({from})", destination.url);
        }
    }
});

// DATABASE_URL and --from both the TypeScript app's database: refused before Libero's migrations
// write anything there (the tables share names, not columns), by the dry run with the same words.
// Importing into a database of its own is the control (the tests above).
#[tokio::test]
async fn the_typescript_apps_own_database_is_refused_as_the_destination_and_left_untouched() {
    let Some((source, from, password)) = typescript_app_database().await else { return };
    for dry_run in [true, false] {
        let output = import(&from, &from, dry_run);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{err}");
        let says = "cannot use the destination database postgres://postgres:***@";
        assert!(err.starts_with(&format!("error: {says}")), "dry run {dry_run}: {err}");
        assert!(
            err.contains(": it is the TypeScript app's database (clients.tenant_shop): give Libero its own"),
            "{err}"
        );
        assert!(!err.contains(&password), "{err}");
    }
    let mut conn = PgConnection::connect(&source.url).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_class WHERE relname = '_sqlx_migrations'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tables, 0, "no migration table written into the old app's database");
    conn.close().await.unwrap();
}

// --- `libero sessions find` ----------------------------------------------------------------

/// `libero sessions find` against the app's database, with `SESSION_SECRET` set to `secret`.
fn find(app: &TestApp, cookie: &str, secret: &str, extra: &[&str]) -> Output {
    let mut args = vec!["sessions", "find", "--cookie", cookie];
    args.extend(extra);
    common::child::run_libero(&args, &app.database.url, &[("SESSION_SECRET", secret)], None)
}

/// The cookie the app set, as the browser holds it: `(name=value, value)`.
fn browser_cookie(app: &TestApp) -> (String, String) {
    let pair = app.session_cookie().expect("signed in");
    let value = pair.trim_start_matches("__libero_session=").to_owned();
    (pair, value)
}

/// The session token inside a signed cookie value: its last 22 characters (URL-safe base64, never
/// percent-encoded), after the signature.
fn token_of(value: &str) -> &str {
    &value[value.len() - 22..]
}

on_both_databases!(sessions_find_shows_a_live_session_and_never_its_token, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let (pair, value) = browser_cookie(&app);
    let row = app.only_session().await;
    assert_eq!(row.id, libero::server::sessions::hash_token(token_of(&value)), "the token's place in the value");

    for cookie in [pair.as_str(), value.as_str()] {
        let output = find(&app, cookie, TEST_SECRET, &[]);
        assert!(output.status.success(), "{}", stderr(&output));
        let out = stdout(&output);
        assert!(out.starts_with(&format!("session             {}\n", row.id)), "{out}");
        assert!(out.contains(&format!("tenant              {TENANT}\n")), "{out}");
        assert!(out.contains(&format!("user id             {}\n", row.user_id)), "{out}");
        assert!(out.contains("user name           Dana Owner\n"), "{out}");
        assert!(out.contains("verdict             active\n"), "{out}");
        assert!(out.contains("install generation  1 (the client's: 1, installed)\n"), "{out}");
        assert!(!out.contains(token_of(&value)) && !out.contains(&value), "never the token: {out}");
    }

    let output = find(&app, &pair, TEST_SECRET, &["--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["row_id"], row.id.as_str());
    assert_eq!(json["tenant_id"], TENANT);
    assert_eq!(json["user_id"], row.user_id.as_str());
    assert_eq!(json["verdict"], "active");
    assert_eq!(json["install_generation"], 1);
    assert_eq!(json["client_installed"], true);
    let expires: DateTime<Utc> = json["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, row.expires_at);
    assert!(!String::from_utf8_lossy(&output.stdout).contains(token_of(&value)));

    // From standard input: the cookie stays out of the command line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_libero"))
        .args(["sessions", "find", "--cookie", "-"])
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database.url)
        .env("SESSION_SECRET", TEST_SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{pair}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("verdict             active"), "{}", stdout(&output));
    app.stop().await;
});

on_both_databases!(sessions_find_shows_an_expired_or_idle_session_and_leaves_it_in_place, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let (pair, _) = browser_cookie(&app);
    app.set_session_time("last_activity_at", Utc::now() - chrono::TimeDelta::hours(2)).await;
    let output = find(&app, &pair, TEST_SECRET, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("verdict             idle: no request for SESSION_IDLE_TIMEOUT (1 h)"));

    // The guide's test 4 as docs/operations.md gives it: the row id from `sessions find`, then
    // the documented UPDATE.
    let json = find(&app, &pair, TEST_SECRET, &["--json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let row_id = json["row_id"].as_str().unwrap();
    let expired = match &app.db {
        Db::Sqlite(pool) => sqlx::query(
            "UPDATE app_sessions SET expires_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-1 hour') WHERE id = ?1",
        )
        .bind(row_id)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected(),
        Db::Postgres(pool) => {
            sqlx::query("UPDATE app_sessions SET expires_at = now() - interval '1 hour' WHERE id = $1")
                .bind(row_id)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected()
        }
    };
    assert_eq!(expired, 1);
    let output = find(&app, &pair, TEST_SECRET, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("verdict             expired: its next request is signed out\n"), "{out}");
    assert!(out.contains(" ago)\n"), "{out}");
    assert_eq!(app.session_rows().await.len(), 1, "looking changes nothing");

    // The spec's test 4 in Libero: the next request has no session (and the cookie is cleared).
    let page = app.client.get(app.url("/settings")).header(header::ACCEPT, "text/html").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(common::clears_the_cookie(&page));
    assert!(page.text().await.unwrap().contains(r#"data-reason="ended""#));
    let after = find(&app, &pair, TEST_SECRET, &[]);
    assert_eq!(after.status.code(), Some(1));
    assert!(stderr(&after).contains("no such session"), "{}", stderr(&after));
    app.stop().await;
});

on_both_databases!(sessions_find_refuses_a_forged_cookie, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let (pair, value) = browser_cookie(&app);
    // Positive control: the cookie as it is, with the server's secret.
    assert!(find(&app, &pair, TEST_SECRET, &[]).status.success());

    let last = value.chars().last().unwrap();
    let tampered = format!("{}{}", &value[..value.len() - 1], if last == 'A' { 'B' } else { 'A' });
    let cases: [(String, &str); 4] = [
        (tampered, TEST_SECRET),
        // The bare token, unsigned: what a leaked backup of the old app would give.
        (token_of(&value).to_owned(), TEST_SECRET),
        // The real signature on another token.
        (format!("{}{}", &value[..value.len() - 22], "AAAAAAAAAAAAAAAAAAAAAA"), TEST_SECRET),
        // The real cookie, checked with another deployment's secret.
        (pair.clone(), "another-deployment-secret-0123456789abcdef"),
    ];
    for (cookie, secret) in &cases {
        let output = find(&app, cookie, secret, &[]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{cookie}: {err}");
        assert!(
            err.starts_with("error: not a session cookie signed with this SESSION_SECRET (bad_signature): forged"),
            "{err}"
        );
        assert!(stdout(&output).is_empty());
    }
    let missing = common::child::run_libero(&["sessions", "find", "--cookie", &pair], &app.database.url, &[], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("Missing SESSION_SECRET"), "{}", stderr(&missing));
    assert_eq!(app.session_rows().await.len(), 1);
    app.stop().await;
});

on_both_databases!(
    protected_routes_and_the_documented_logout_then_sessions_find_says_no_such_session,
    |kind| async move {
        let Some(app) = TestApp::signed_in(kind).await else { return };
        let (pair, _) = browser_cookie(&app);
        // The guide's test 5 as docs/operations.md gives it: POST /logout with the cookie and the
        // app's own Origin (curl -i -X POST "$APP/logout" -H "Origin: $APP" -H "Cookie: …").
        let bare = TestApp::bare_client();
        // Test 3 first: /settings without a session is the no-session page, with the cookie the page.
        let without = bare.get(app.url("/settings")).header(header::ACCEPT, "text/html").send().await.unwrap();
        assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
        assert!(without.text().await.unwrap().contains(r#"data-reason="missing""#));
        let with = bare.get(app.url("/settings")).header(header::COOKIE, &pair).send().await.unwrap();
        assert_eq!(with.status(), StatusCode::OK);
        let cross = bare.post(app.url("/logout")).header(header::COOKIE, &pair).send().await.unwrap();
        assert_eq!(cross.status(), StatusCode::FORBIDDEN, "control: without the Origin it is refused");
        assert!(find(&app, &pair, TEST_SECRET, &[]).status.success(), "and the session is still there");
        let out = bare
            .post(app.url("/logout"))
            .header(header::ORIGIN, &app.base)
            .header(header::COOKIE, &pair)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert_eq!(out.headers()[header::LOCATION], "/");
        assert!(common::clears_the_cookie(&out));
        assert!(app.session_rows().await.is_empty());

        let output = find(&app, &pair, TEST_SECRET, &[]);
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(stderr(&output), "error: no such session (signed out, expired and cleaned up, or never stored)\n");
        assert!(stdout(&output).is_empty());
        app.stop().await;
    }
);
