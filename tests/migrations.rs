//! PostgreSQL migrations that change what is already deployed (issue 26, item 8): the
//! `SECURITY DEFINER` functions run with `search_path = pg_catalog, pg_temp` (migration 008), on a
//! fresh database and on one upgraded from migration 007, and their triggers and the cleanup
//! function still do what they did. Each test has a fresh database of its own.

mod common;

use std::path::Path;

use common::{FreshDatabase, TestDb};
use libero::server::db::{Db, POSTGRES_MIGRATIONS};
use sqlx::{PgPool, migrate::Migrator};

/// What `pg_proc.proconfig` holds for a function created with
/// `SET search_path = pg_catalog, pg_temp`.
const PINNED: &str = "search_path=pg_catalog, pg_temp";

/// The SECURITY DEFINER functions the migrations create (as `regprocedure` prints them).
const DEFINERS: [&str; 3] =
    ["app_sessions_installed_client()", "cleanup_expired_app_sessions(interval)", "clients_end_sessions()"];

/// One SECURITY DEFINER function outside the system schemas: its signature, its settings and
/// whether PUBLIC may execute it.
#[derive(Debug, sqlx::FromRow)]
struct Definer {
    signature: String,
    config: Vec<String>,
    public_execute: bool,
}

/// Every SECURITY DEFINER function of the database, whoever created it.
async fn security_definers(pool: &PgPool) -> Vec<Definer> {
    sqlx::query_as(
        "SELECT p.oid::regprocedure::text AS signature,
                coalesce(p.proconfig, '{}'::text[]) AS config,
                has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Asserts that every SECURITY DEFINER function (the three known ones at least) pins the search
/// path to the system catalog and is not executable by PUBLIC.
async fn assert_all_pinned(pool: &PgPool) {
    let definers = security_definers(pool).await;
    let names: Vec<&str> = definers.iter().map(|d| d.signature.as_str()).collect();
    for expected in DEFINERS {
        assert!(names.contains(&expected), "{expected} is a SECURITY DEFINER function: {names:?}");
    }
    for definer in &definers {
        assert_eq!(definer.config, [PINNED], "{}: its search_path is pinned to the catalog", definer.signature);
        assert!(!definer.public_execute, "{}: PUBLIC may not execute it", definer.signature);
    }
}

async fn fresh_postgres() -> Option<(FreshDatabase, PgPool)> {
    let database = FreshDatabase::create(TestDb::Postgres).await?;
    let Db::Postgres(pool) = Db::connect(&database.url).await.expect("connect") else { unreachable!() };
    Some((database, pool))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_security_definer_function_runs_with_search_path_pg_catalog_pg_temp() {
    let Some((_database, pool)) = fresh_postgres().await else { return };
    POSTGRES_MIGRATIONS.run(&pool).await.expect("migrations apply");
    assert_all_pinned(&pool).await;
    pool.close().await;
}

/// The migrations up to and including `last`, from the repository's files (the same text, hence
/// the same checksums, as the ones embedded in the binary).
async fn migrations_up_to(last: i64) -> (tempfile::TempDir, Migrator) {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version <= last {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
        }
    }
    let migrator = Migrator::new(dir.path()).await.unwrap();
    (dir, migrator)
}

/// Inserts a session row of `client` (`tenant_id` left for the trigger to fill in).
async fn insert_session(
    pool: &PgPool,
    id: &str,
    client: uuid::Uuid,
    generation: i64,
    expires_in: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO app_sessions (id, client_id, user_id, theme, data, last_activity_at, expires_at, created_at,
                                   updated_at, install_generation)
         VALUES ($1, $2, 'c7-user', 'light', '{}', now(), now() + $4::interval, now(), now(), $3)",
    )
    .bind(id)
    .bind(client)
    .bind(generation)
    .bind(expires_in)
    .execute(pool)
    .await
    .map(drop)
}

async fn sessions_of(pool: &PgPool, client: uuid::Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM app_sessions WHERE client_id = $1 ORDER BY id")
        .bind(client)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// `SELECT cleanup_expired_app_sessions()` as a fresh role granted nothing but EXECUTE on it (as
/// docs/operations.md grants it to pg_cron's role); the role is dropped afterwards.
async fn cleanup_as_a_granted_role(pool: &PgPool) -> i32 {
    let role = format!("libero_cron_{}", uuid::Uuid::new_v4().simple());
    let mut conn = pool.acquire().await.unwrap();
    for statement in [
        format!(r#"CREATE ROLE "{role}" NOLOGIN"#),
        format!(r#"GRANT EXECUTE ON FUNCTION cleanup_expired_app_sessions(interval) TO "{role}""#),
        format!(r#"SET ROLE "{role}""#),
    ] {
        sqlx::query(&statement).execute(&mut *conn).await.unwrap();
    }
    let deleted = sqlx::query_scalar("SELECT cleanup_expired_app_sessions()").fetch_one(&mut *conn).await;
    for statement in [
        "RESET ROLE".to_owned(),
        format!(r#"REVOKE EXECUTE ON FUNCTION cleanup_expired_app_sessions(interval) FROM "{role}""#),
        format!(r#"DROP ROLE "{role}""#),
    ] {
        sqlx::query(&statement).execute(&mut *conn).await.unwrap();
    }
    deleted.expect("a role granted EXECUTE runs it")
}

/// Whether `err` is the session trigger's refusal (SQLSTATE 23503 under its own constraint name).
fn refused_as_not_installed(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|db| {
        db.code().as_deref() == Some("23503") && db.constraint() == Some("app_sessions_installed_client")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_upgraded_from_007_gets_the_pinned_search_path_and_its_triggers_still_work() {
    let Some((_database, pool)) = fresh_postgres().await else { return };

    // A database deployed at migration 007: the functions search `public` first.
    let (_dir, at_007) = migrations_up_to(7).await;
    at_007.run(&pool).await.expect("migrations 001-007 apply");
    let before = security_definers(&pool).await;
    assert!(!before.is_empty());
    for definer in &before {
        assert_eq!(definer.config, ["search_path=public, pg_temp"], "control: 007's {}", definer.signature);
    }
    let clients: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO clients (tenant_id, installed_at, created_at, updated_at)
         VALUES ('demo-winery', now(), now(), now()), ('second-cellar', now(), now(), now()) RETURNING id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let (demo, other) = (clients[0], clients[1]);
    insert_session(&pool, "kept-across-the-upgrade", demo, 1, "1 hour").await.unwrap();

    // What `libero serve` runs at start-up: the pending migrations, 008 among them.
    POSTGRES_MIGRATIONS.run(&pool).await.expect("the upgrade applies");
    assert_all_pinned(&pool).await;
    assert_eq!(sessions_of(&pool, demo).await, ["kept-across-the-upgrade"], "the upgrade keeps sessions");

    // app_sessions_installed_client: a row of the installed generation is written, its tenant id
    // filled in; another generation is refused.
    insert_session(&pool, "current", demo, 1, "1 hour").await.expect("positive control: installed generation");
    let tenant: String =
        sqlx::query_scalar("SELECT tenant_id FROM app_sessions WHERE id = 'current'").fetch_one(&pool).await.unwrap();
    assert_eq!(tenant, "demo-winery", "the trigger filled in the tenant id");
    let err = insert_session(&pool, "next-generation", demo, 2, "1 hour").await.expect_err("another generation");
    assert!(refused_as_not_installed(&err), "{err}");

    // cleanup_expired_app_sessions: deletes the expired row and says so, run by its owner and
    // by a role that was only granted EXECUTE (it runs with its owner's rights).
    insert_session(&pool, "expired", demo, 1, "-1 minute").await.unwrap();
    let deleted: i32 = sqlx::query_scalar("SELECT cleanup_expired_app_sessions()").fetch_one(&pool).await.unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(sessions_of(&pool, demo).await, ["current", "kept-across-the-upgrade"]);
    insert_session(&pool, "expired-again", demo, 1, "-1 minute").await.unwrap();
    assert_eq!(cleanup_as_a_granted_role(&pool).await, 1);
    assert_eq!(sessions_of(&pool, demo).await, ["current", "kept-across-the-upgrade"]);

    // clients_end_sessions: an uninstall (an UPDATE by hand) deletes that client's sessions and
    // no other's; afterwards its sessions are refused.
    insert_session(&pool, "other-client", other, 1, "1 hour").await.unwrap();
    sqlx::query("UPDATE clients SET uninstalled_at = now() WHERE id = $1").bind(demo).execute(&pool).await.unwrap();
    assert!(sessions_of(&pool, demo).await.is_empty(), "the uninstall ended the client's sessions");
    assert_eq!(sessions_of(&pool, other).await, ["other-client"], "control: another client keeps its own");
    let err = insert_session(&pool, "after-uninstall", demo, 1, "1 hour").await.expect_err("uninstalled");
    assert!(refused_as_not_installed(&err), "{err}");
    pool.close().await;
}
