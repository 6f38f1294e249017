//! `libero doctor` as an operator runs it: the real binary, from an empty working directory (so
//! no `.env` is read), with an explicit environment. One healthy set-up first (every line ok,
//! exit 0), then one broken thing at a time.

mod common;

use std::{
    io::{Read, Write},
    net::TcpListener,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const SECRET: &str = "0123456789abcdef0123456789abcdef-doctor";
const C7_PASSWORD: &str = "callback-password-never-printed";
/// Nothing listens on port 1 (it is outside the ephemeral range, so no other test can take it).
const CLOSED: &str = "127.0.0.1:1";
/// The doctor's own waits are 5 s each; anything near this means it hangs.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A stand-in for Commerce7 that answers every request as Commerce7 answers one without a token:
/// `401 Unauthorized`. Lives until the test process ends.
fn commerce7_stand_in() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = r#"{"statusCode":401,"type":"unauthorized","message":"Unauthorized"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/v1")
}

/// Runs `libero <args>` in `cwd` with exactly `env` (plus `PATH`), killing it after [`RUN_LIMIT`].
fn run_libero(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_libero"));
    command.args(args).current_dir(cwd).env_clear().stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the binary starts");
    let deadline = Instant::now() + RUN_LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("libero {args:?} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The doctor's report: its lines, its exit code, and everything it wrote.
struct Report {
    lines: Vec<String>,
    success: bool,
    all: String,
}

impl Report {
    /// The one line of check `name` (panics when there is none or more than one).
    fn line(&self, name: &str) -> &str {
        let found: Vec<&String> = self.lines.iter().filter(|l| l.split_whitespace().nth(1) == Some(name)).collect();
        assert_eq!(found.len(), 1, "exactly one `{name}` line in:\n{}", self.all);
        found[0]
    }
    fn status(&self, name: &str) -> &str {
        self.line(name).split_whitespace().next().unwrap()
    }
}

fn doctor(cwd: &Path, env: &[(&str, &str)]) -> Report {
    let output = run_libero(cwd, &["doctor"], env);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    Report { lines: stdout.lines().map(str::to_owned).collect(), success: output.status.success(), all }
}

/// A temporary working directory with an SQLite database `libero migrate` has migrated.
fn migrated_sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("libero.db").display());
    let output = run_libero(dir.path(), &["migrate"], &[("DATABASE_URL", &url)]);
    assert!(output.status.success(), "migrate: {}", String::from_utf8_lossy(&output.stderr));
    (dir, url)
}

/// Every setting of a healthy set-up; tests override one at a time.
fn healthy_env<'a>(database_url: &'a str, commerce7: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SESSION_SECRET", SECRET),
        ("DATABASE_URL", database_url),
        ("COMMERCE7_API_URL", commerce7),
        ("COMMERCE7_USER", "commerce7"),
        ("COMMERCE7_PASSWORD", C7_PASSWORD),
    ]
}

fn with<'a>(mut env: Vec<(&'a str, &'a str)>, name: &'a str, value: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    env.retain(|(k, _)| *k != name);
    if let Some(value) = value {
        env.push((name, value));
    }
    env
}

const CHECKS: [&str; 6] = ["configuration", "database", "migrations", "commerce7", "cookies/framing", "callbacks"];

#[test]
fn a_healthy_sqlite_setup_passes_every_check_and_exits_0() {
    let (dir, url) = migrated_sqlite();
    let commerce7 = commerce7_stand_in();
    let report = doctor(dir.path(), &healthy_env(&url, &commerce7));
    assert!(report.success, "{}", report.all);
    assert_eq!(report.lines.len(), CHECKS.len(), "one line per check:\n{}", report.all);
    for name in CHECKS {
        assert_eq!(report.status(name), "ok", "{}", report.all);
    }
    assert!(report.line("commerce7").contains("HTTP 401"), "any HTTP answer counts as reachable: {}", report.all);
}

#[test]
fn an_unmigrated_database_fails_and_says_run_libero_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.db");
    std::fs::File::create(&file).unwrap(); // an empty file is an empty SQLite database
    let url = format!("sqlite://{}", file.display());
    let commerce7 = commerce7_stand_in();
    let report = doctor(dir.path(), &healthy_env(&url, &commerce7));
    assert!(!report.success, "{}", report.all);
    assert_eq!(report.status("database"), "ok", "{}", report.all);
    assert_eq!(report.status("migrations"), "FAIL", "{}", report.all);
    assert!(report.line("migrations").contains("run `libero migrate`"), "{}", report.all);
}

#[test]
fn doctor_does_not_apply_pending_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.db");
    std::fs::File::create(&file).unwrap();
    let url = format!("sqlite://{}", file.display());
    let commerce7 = commerce7_stand_in();
    let first = doctor(dir.path(), &healthy_env(&url, &commerce7));
    let second = doctor(dir.path(), &healthy_env(&url, &commerce7));
    assert_eq!(first.status("migrations"), "FAIL", "{}", first.all);
    assert_eq!(second.status("migrations"), "FAIL", "still pending after a first run: {}", second.all);
    assert_eq!(first.line("migrations"), second.line("migrations"));
}

#[test]
fn a_missing_sqlite_file_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nowhere.db");
    let url = format!("sqlite://{}", file.display());
    let commerce7 = commerce7_stand_in();
    let report = doctor(dir.path(), &healthy_env(&url, &commerce7));
    assert_eq!(report.status("database"), "warn", "{}", report.all);
    assert_eq!(report.status("migrations"), "FAIL", "{}", report.all);
    assert!(!report.success);
    assert!(!file.exists(), "the doctor must not leave an empty database behind");
}

// The file's directory missing too: `libero migrate` could not create the file, so it fails and
// says so (the test above, a missing file in a directory that exists, is the control).
#[test]
fn a_sqlite_file_in_a_missing_directory_fails_and_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("data");
    let url = format!("sqlite://{}", missing.join("libero.db").display());
    let report = doctor(dir.path(), &healthy_env(&url, &commerce7_stand_in()));
    assert_eq!(report.status("database"), "FAIL", "{}", report.all);
    assert!(
        report.line("database").contains(&format!("{}, which does not exist", missing.display())),
        "{}",
        report.all
    );
    assert!(!missing.exists(), "nothing is created");
}

#[test]
fn an_unreachable_commerce7_fails_with_the_url_and_the_reason() {
    let (dir, url) = migrated_sqlite();
    let closed = format!("http://{CLOSED}/v1");
    let report = doctor(dir.path(), &healthy_env(&url, &closed));
    assert!(!report.success, "{}", report.all);
    assert_eq!(report.status("commerce7"), "FAIL", "{}", report.all);
    let line = report.line("commerce7");
    assert!(line.contains(&format!("http://{CLOSED}/v1/account/user")), "names the URL: {line}");
    assert!(line.to_lowercase().contains("connection refused"), "gives the reason: {line}");
    for name in ["configuration", "database", "migrations", "cookies/framing", "callbacks"] {
        assert_eq!(report.status(name), "ok", "only Commerce7 is broken: {}", report.all);
    }
}

#[test]
fn insecure_cookies_with_a_cross_site_frame_ancestor_fail() {
    let (dir, url) = migrated_sqlite();
    let commerce7 = commerce7_stand_in();
    let env = with(healthy_env(&url, &commerce7), "COOKIE_SECURE", Some("false"));
    let env = with(env, "FRAME_ANCESTORS", Some("https://*.platform.commerce7.com"));
    let report = doctor(dir.path(), &env);
    assert!(!report.success, "{}", report.all);
    assert_eq!(report.status("cookies/framing"), "FAIL", "{}", report.all);
    let line = report.line("cookies/framing");
    assert!(line.contains("SameSite=Lax") && line.contains("COOKIE_SECURE=true"), "says why and what to do: {line}");
}

#[test]
fn an_unreachable_database_fails() {
    let dir = tempfile::tempdir().unwrap();
    let commerce7 = commerce7_stand_in();
    let url = format!("postgres://libero:db-password-never-printed@{CLOSED}/libero");
    let report = doctor(dir.path(), &healthy_env(&url, &commerce7));
    assert!(!report.success, "{}", report.all);
    assert_eq!(report.status("database"), "FAIL", "{}", report.all);
    assert!(report.line("database").contains(&format!("postgres://libero:***@{CLOSED}/libero")), "{}", report.all);
    assert_eq!(report.status("migrations"), "skip", "{}", report.all);
}

#[test]
fn a_database_url_that_is_neither_sqlite_nor_postgres_fails_the_database_line_and_the_rest_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let commerce7 = commerce7_stand_in();
    let url = "mysql://libero:db-password-never-printed@db.example/libero";
    let report = doctor(dir.path(), &healthy_env(url, &commerce7));
    assert!(!report.success, "{}", report.all);
    assert_eq!(report.status("database"), "FAIL", "{}", report.all);
    assert!(report.line("database").contains("sqlite://<file> or postgres://"), "says what it takes: {}", report.all);
    assert!(!report.all.contains("db-password-never-printed"), "{}", report.all);
    assert_eq!(report.status("commerce7"), "ok", "the check that needs no database still runs: {}", report.all);
}

#[test]
fn no_secret_or_database_password_is_ever_printed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://libero:db-password-never-printed@{CLOSED}/libero?password=query-pw-never-printed");
    let closed = format!("http://{CLOSED}/v1");
    let env = with(healthy_env(&url, &closed), "METRICS_TOKEN", Some("metrics-token-never-printed"));
    let report = doctor(dir.path(), &env);
    assert!(!report.success);
    assert_eq!(report.lines.len(), CHECKS.len(), "control: every check printed its line:\n{}", report.all);
    assert!(report.line("database").contains("postgres://libero:***@"), "{}", report.all);
    for secret in
        [SECRET, C7_PASSWORD, "db-password-never-printed", "query-pw-never-printed", "metrics-token-never-printed"]
    {
        assert!(!report.all.contains(secret), "{secret} printed:\n{}", report.all);
    }
}

#[test]
fn a_missing_session_secret_fails_the_configuration_line_and_the_other_checks_still_run() {
    let (dir, url) = migrated_sqlite();
    let commerce7 = commerce7_stand_in();
    let report = doctor(dir.path(), &with(healthy_env(&url, &commerce7), "SESSION_SECRET", None));
    assert!(!report.success, "{}", report.all);
    assert_eq!(report.status("configuration"), "FAIL", "{}", report.all);
    assert!(report.line("configuration").contains("Missing SESSION_SECRET"), "{}", report.all);
    assert!(report.line("configuration").contains("libero secret"), "says how to make one: {}", report.all);
    for name in ["database", "migrations", "commerce7"] {
        assert_eq!(report.status(name), "ok", "checks that need no SESSION_SECRET still run: {}", report.all);
    }
}

#[test]
fn warnings_alone_exit_0() {
    let (dir, url) = migrated_sqlite();
    let commerce7 = commerce7_stand_in();
    let env = with(healthy_env(&url, &commerce7), "COMMERCE7_PASSWORD", None);
    let report = doctor(dir.path(), &env);
    assert_eq!(report.status("callbacks"), "warn", "{}", report.all);
    assert!(report.line("callbacks").contains("COMMERCE7_PASSWORD"), "{}", report.all);
    assert!(report.success, "a warning is not a failure: {}", report.all);
}

// Read as `libero serve` reads it: unset loads Commerce7's script (the control), set but empty
// loads none, and the doctor says so for a framed app.
#[test]
fn an_empty_frame_script_warns_while_an_unset_one_names_commerce7s() {
    let (dir, url) = migrated_sqlite();
    let commerce7 = commerce7_stand_in();
    let unset = doctor(dir.path(), &healthy_env(&url, &commerce7));
    assert_eq!(unset.status("cookies/framing"), "ok", "{}", unset.all);
    assert!(unset.line("cookies/framing").contains("dev-center.platform.commerce7.com"), "{}", unset.all);

    let env = with(healthy_env(&url, &commerce7), "COMMERCE7_FRAME_SCRIPT", Some(""));
    let empty = doctor(dir.path(), &env);
    assert_eq!(empty.status("cookies/framing"), "warn", "{}", empty.all);
    assert!(empty.line("cookies/framing").contains("COMMERCE7_FRAME_SCRIPT is empty"), "{}", empty.all);
    assert!(empty.success, "a warning is not a failure: {}", empty.all);
}

#[test]
fn a_commerce7_url_that_is_not_http_fails_the_configuration_and_skips_only_the_commerce7_check() {
    let (dir, url) = migrated_sqlite();
    let report = doctor(dir.path(), &healthy_env(&url, "ftp://api.commerce7.com/v1"));
    assert!(!report.success, "{}", report.all);
    assert!(report.line("configuration").contains("COMMERCE7_API_URL"), "{}", report.all);
    assert_eq!(report.status("commerce7"), "skip", "{}", report.all);
    assert!(report.line("commerce7").contains("not an http(s) URL"), "{}", report.all);
    assert_eq!(report.status("database"), "ok", "the database check still runs: {}", report.all);
}

// A database migrated by this release passes the migrations check (the control); the same
// database with one migration recorded as failed, one whose file changed after it was applied and
// one this release does not know fails it, with what to do about each — on both databases.
on_both_databases!(migration_records_that_would_stop_serve_fail_the_migrations_check, |kind| async move {
    let Some(database) = common::FreshDatabase::create(kind).await else { return };
    let db = libero::server::db::Db::connect(&database.url).await.unwrap();
    db.migrate().await.unwrap();
    let url = database.url.clone();
    let run = move || {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let dir = tempfile::tempdir().unwrap();
            doctor(dir.path(), &healthy_env(&url, &commerce7_stand_in()))
        })
    };
    let healthy = run().await.unwrap();
    assert_eq!(healthy.status("migrations"), "ok", "{}", healthy.all);

    let checksum = vec![0u8; 48];
    libero_sessions::on_pool!(&db, |c| {
        sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = 1").execute(&mut *c).await.unwrap();
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 2")
            .bind(&checksum)
            .execute(&mut *c)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                  VALUES (999, 'from a newer release', true, $1, 0)",
        )
        .bind(&checksum)
        .execute(&mut *c)
        .await
        .unwrap();
    })
    .unwrap();
    let broken = run().await.unwrap();
    assert_eq!(broken.status("migrations"), "FAIL", "{}", broken.all);
    let line = broken.line("migrations");
    assert!(line.contains("migration 1 failed part-way"), "{line}");
    assert!(line.contains("migration 002 ") && line.contains("edited after it was applied"), "{line}");
    assert!(line.contains("migration 999 that this release does not know"), "{line}");
    db.close().await;
});
