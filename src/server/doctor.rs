//! `libero doctor`: checks a set-up before (or instead of) starting the server, printing one line
//! per check — `ok`, `warn`, `FAIL` or `skip` — and, when a check is not ok, what to do.
//!
//! It reads the settings exactly as `libero serve` does (environment, then `./.env`), but changes
//! nothing: it never creates the SQLite file, never applies a migration and never signs anyone in.
//! Secrets are never printed: URLs are shown with their password replaced by `***`, and every
//! line is scrubbed of the values of `SESSION_SECRET`, `COMMERCE7_PASSWORD`, `METRICS_TOKEN` and
//! the database password before it is written.

use std::{
    fmt,
    io::Write,
    path::Path,
    process::ExitCode,
    str::FromStr,
    time::{Duration, Instant},
};

use sqlx::{
    Connection, PgConnection, SqliteConnection, migrate::Migration, postgres::PgConnectOptions,
    sqlite::SqliteConnectOptions,
};

use super::config::{self, Config, DEFAULT_COMMERCE7_API_URL};
use super::terminal::{redact_url, scrub, url_passwords};
// What `libero migrate` would apply.
use super::db::{self, Backend};

/// How long the database may take to accept a connection.
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long Commerce7 may take to answer.
pub const COMMERCE7_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one check, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Not checked, because something it depends on failed.
    Skip,
    /// Works, but probably not as intended.
    Warn,
    /// Will not work: the exit code is 1.
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Skip => "skip",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it went.
    pub status: Status,
    /// What was found and, when not ok, what to do.
    pub message: String,
}

impl Check {
    fn new(name: &'static str, status: Status, message: impl Into<String>) -> Self {
        Self { name, status, message: message.into() }
    }

    /// One check made of several findings: the worst status wins, the messages are joined.
    fn from_findings(name: &'static str, ok_message: String, findings: Vec<(Status, String)>) -> Self {
        match findings.iter().map(|(status, _)| *status).max() {
            None => Self::new(name, Status::Ok, ok_message),
            Some(status) => {
                let message = findings.into_iter().map(|(_, message)| message).collect::<Vec<_>>().join("; ");
                Self::new(name, status, message)
            }
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<5} {:<16} {}", self.status.label(), self.name, self.message)
    }
}

/// Prints each check as soon as it is known (slow checks are bounded, but a person is waiting),
/// without any secret, and remembers the worst status.
struct Report {
    secrets: Vec<String>,
    worst: Status,
}

impl Report {
    fn print(&mut self, check: Check) {
        self.worst = self.worst.max(check.status);
        // `libero doctor | head -1` must not panic on the closed pipe.
        let _ = writeln!(std::io::stdout(), "{}", scrub(&check.to_string(), &self.secrets));
    }
}

/// Runs every check, prints one line each, and fails when any check fails (warnings alone
/// succeed).
pub async fn run() -> ExitCode {
    let dotenv = config::load_dotenv();
    let env = config::env_setting;
    let mut report = Report { secrets: secrets_in(&env), worst: Status::Ok };

    // Raw, as `libero serve` reads them: an empty COMMERCE7_FRAME_SCRIPT means "none", not "unset".
    let parsed = dotenv.and_then(|()| Config::from_lookup(|name| std::env::var(name).ok()));
    let config = match parsed {
        Ok(config) => {
            let source = if Path::new(".env").exists() {
                "the environment and ./.env"
            } else {
                "the environment (no ./.env in the working directory)"
            };
            report.print(Check::new("configuration", Status::Ok, format!("settings parse, read from {source}")));
            Some(config)
        }
        Err(err) => {
            report.print(Check::new("configuration", Status::Fail, err.to_string()));
            None
        }
    };

    // The database and Commerce7 checks need one setting each, so they also run when another
    // setting is broken.
    let database_url = match &config {
        Some(config) => Ok(config.database_url.clone()),
        None => config::database_url(env("DATABASE_URL")),
    };
    let database = match database_url {
        Ok(url) => connect(url.expose()).await,
        Err(err) => Database::Unusable(Check::new("database", Status::Fail, err.to_string())),
    };
    report.print(database.check());
    report.print(migrations(database).await);

    let commerce7_url = match &config {
        Some(config) => Ok(config.commerce7_api_url.clone()),
        None => config::commerce7_api_url(env("COMMERCE7_API_URL")),
    };
    report.print(match commerce7_url {
        Ok(url) => commerce7(&url, config.as_ref().map(|c| c.commerce7_timeout)).await,
        Err(_) => Check::new("commerce7", Status::Skip, "COMMERCE7_API_URL is not an http(s) URL (see configuration)"),
    });

    match &config {
        Some(config) => {
            report.print(cookies_and_framing(config));
            report.print(callbacks(config));
        }
        None => {
            for name in ["cookies/framing", "callbacks"] {
                report.print(Check::new(name, Status::Skip, "needs a configuration that parses (see configuration)"));
            }
        }
    }

    if report.worst == Status::Fail { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

// ---------------------------------------------------------------------------------------------
// Database

enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Conn {
    fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }
}

/// What connecting to `DATABASE_URL` gave.
enum Database {
    Connected {
        conn: Conn,
        shown: String,
        elapsed: Duration,
    },
    /// An SQLite file that does not exist yet (the server would create it, empty).
    MissingFile {
        shown: String,
    },
    Unusable(Check),
}

impl Database {
    fn check(&self) -> Check {
        match self {
            Self::Connected { conn, shown, elapsed } => Check::new(
                "database",
                Status::Ok,
                format!("{} {shown} reachable ({} ms)", conn.backend().name(), elapsed.as_millis()),
            ),
            Self::MissingFile { shown } => {
                let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "?".into());
                Check::new(
                    "database",
                    Status::Warn,
                    format!(
                        "{shown} does not exist yet: `libero migrate` (or `libero serve`) creates it empty; if you \
                         expected data there, DATABASE_URL names the wrong file (a relative path is resolved from \
                         the working directory, {cwd})"
                    ),
                )
            }
            Self::Unusable(check) => check.clone(),
        }
    }
}

async fn connect(url: &str) -> Database {
    let shown = redact_url(url);
    let unusable = |message: String| Database::Unusable(Check::new("database", Status::Fail, message));
    let started = Instant::now();
    let conn = match Backend::of_url(url) {
        Some(Backend::Postgres) => {
            let options = match PgConnectOptions::from_str(url) {
                Ok(options) => options,
                Err(err) => return unusable(format!("DATABASE_URL {shown} cannot be used: {err}")),
            };
            tokio::time::timeout(DATABASE_TIMEOUT, PgConnection::connect_with(&options))
                .await
                .map(|result| result.map(Conn::Postgres))
        }
        Some(Backend::Sqlite) => {
            // Never create the file: a doctor that leaves an empty database behind would hide a
            // DATABASE_URL that points to the wrong place.
            let options = match SqliteConnectOptions::from_str(url) {
                Ok(options) => options.create_if_missing(false),
                Err(err) => return unusable(format!("DATABASE_URL {shown} cannot be used: {err}")),
            };
            if !Backend::is_in_memory(url) && !options.get_filename().exists() {
                // SQLite creates a missing file, never a missing directory.
                return match options.get_filename().parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    Some(dir) if !dir.is_dir() => unusable(format!(
                        "DATABASE_URL {shown} names a file in {}, which does not exist: create that directory \
                         or correct DATABASE_URL",
                        dir.display()
                    )),
                    _ => Database::MissingFile { shown },
                };
            }
            tokio::time::timeout(DATABASE_TIMEOUT, SqliteConnection::connect_with(&options))
                .await
                .map(|result| result.map(Conn::Sqlite))
        }
        None => unreachable!("config::database_url takes only SQLite and PostgreSQL URLs"),
    };
    match conn {
        Ok(Ok(conn)) => Database::Connected { conn, shown, elapsed: started.elapsed() },
        Ok(Err(err)) => unusable(format!(
            "cannot connect to {shown}: {}: check the host, port, database name, user and password in \
             DATABASE_URL, and that this machine may reach the database (firewall, TLS: ?sslmode=require)",
            error_chain(&err)
        )),
        Err(_) => unusable(format!(
            "no answer from {shown} within {} s: check the host and port in DATABASE_URL and the network \
             (firewall, VPN, Supabase network restrictions)",
            DATABASE_TIMEOUT.as_secs()
        )),
    }
}

fn label(migration: &Migration) -> String {
    format!("{:03} {}", migration.version, migration.description)
}

/// Compares what this release would apply with what the database recorded, the way
/// `Migrator::run` does before it applies anything — but applies nothing.
async fn migrations(database: Database) -> Check {
    const NAME: &str = "migrations";
    let (backend, conn) = match database {
        Database::Connected { conn, .. } => (conn.backend(), Some(conn)),
        Database::MissingFile { .. } => (Backend::Sqlite, None),
        Database::Unusable(_) => return Check::new(NAME, Status::Skip, "needs a reachable database"),
    };
    let known: Vec<&Migration> = backend.migrator().iter().filter(|m| !m.migration_type.is_down_migration()).collect();
    let Some(mut conn) = conn else {
        let message = format!("all {} pending (the database file does not exist): run `libero migrate`", known.len());
        return Check::new(NAME, Status::Fail, message);
    };
    let applied = match &mut conn {
        Conn::Sqlite(conn) => db::recorded_migrations_sqlite(conn).await,
        Conn::Postgres(conn) => db::recorded_migrations_postgres(conn).await,
    };
    match conn {
        Conn::Sqlite(conn) => drop(conn.close().await),
        Conn::Postgres(conn) => drop(conn.close().await),
    }
    let applied = match applied {
        Ok(applied) => applied,
        Err(err) => {
            let chain = error_chain(&err);
            let message = format!("cannot read _sqlx_migrations: {chain}: does the DATABASE_URL user own the tables?");
            return Check::new(NAME, Status::Fail, message);
        }
    };
    let mut findings = Vec::new();
    let mut fail = |message: String| findings.push((Status::Fail, message));

    let failed: Vec<String> = applied.iter().filter(|a| !a.success).map(|a| a.version.to_string()).collect();
    if !failed.is_empty() {
        fail(format!(
            "migration {} failed part-way (success = false in _sqlx_migrations): `libero serve` will refuse \
             to start; repair the schema by hand, delete that row, then run `libero migrate`",
            failed.join(", ")
        ));
    }
    let unknown: Vec<String> = applied
        .iter()
        .filter(|a| !known.iter().any(|m| m.version == a.version))
        .map(|a| a.version.to_string())
        .collect();
    if !unknown.is_empty() {
        fail(format!(
            "the database has migration {} that this release does not know (was a newer release \
             deployed?): `libero serve` will refuse to start; run the matching release",
            unknown.join(", ")
        ));
    }
    let changed: Vec<String> = known
        .iter()
        .filter(|m| applied.iter().any(|a| a.version == m.version && a.success && *a.checksum != *m.checksum))
        .map(|m| label(m))
        .collect();
    if !changed.is_empty() {
        fail(format!(
            "migration {} was edited after it was applied (checksum differs): `libero serve` will refuse to \
             start; restore the original file from the release",
            changed.join(", ")
        ));
    }
    let pending: Vec<String> =
        known.iter().filter(|m| !applied.iter().any(|a| a.version == m.version)).map(|m| label(m)).collect();
    if !pending.is_empty() {
        fail(format!(
            "{} of {} pending ({}): run `libero migrate` (`libero serve` also applies them at start-up)",
            pending.len(),
            known.len(),
            pending.join(", ")
        ));
    }
    let latest = known.last().map(|m| label(m)).unwrap_or_default();
    Check::from_findings(NAME, format!("all {} applied (latest: {latest})", known.len()), findings)
}

// ---------------------------------------------------------------------------------------------
// Commerce7

/// `GET {COMMERCE7_API_URL}/account/user` without a token: any HTTP answer (Commerce7 says 401)
/// proves the API is reachable from here.
async fn commerce7(api_url: &str, sign_in_timeout: Option<Duration>) -> Check {
    const NAME: &str = "commerce7";
    let url = format!("{api_url}/account/user");
    let shown = redact_url(&url);
    let client = match reqwest::Client::builder()
        .timeout(COMMERCE7_TIMEOUT)
        .connect_timeout(COMMERCE7_TIMEOUT)
        .user_agent(concat!("libero-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            return Check::new(NAME, Status::Fail, format!("cannot build an HTTP client: {}", error_chain(&err)));
        }
    };
    let started = Instant::now();
    let response = client.get(&url).send().await;
    let elapsed = started.elapsed();
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            let reason = if err.is_timeout() {
                format!("no answer within {} s", COMMERCE7_TIMEOUT.as_secs())
            } else {
                error_chain(&err.without_url())
            };
            let message = format!(
                "cannot reach {shown}: {reason}: every sign-in would fail with a 503 page; check \
                 COMMERCE7_API_URL and that this machine can reach it (DNS, firewall, proxy)"
            );
            return Check::new(NAME, Status::Fail, message);
        }
    };
    let status = response.status().as_u16();
    let mut findings = Vec::new();
    let mut warn = |message: String| findings.push((Status::Warn, message));
    if response.status().is_server_error() {
        warn(format!("{shown} is reachable but answered HTTP {status}: sign-ins fail with a 503 page while it does"));
    } else if status == 404 {
        warn(format!(
            "{shown} answered HTTP 404: is COMMERCE7_API_URL the API base including the version (e.g. \
             {DEFAULT_COMMERCE7_API_URL})?"
        ));
    }
    if let Some(limit) = sign_in_timeout.filter(|limit| elapsed > *limit) {
        warn(format!(
            "{shown} took {} ms, longer than COMMERCE7_TIMEOUT ({} ms): sign-ins would fail with a 503 page; \
             raise COMMERCE7_TIMEOUT or check the network",
            elapsed.as_millis(),
            limit.as_millis()
        ));
    }
    let ok = format!("{shown} reachable (HTTP {status} to a request without a token, {} ms)", elapsed.as_millis());
    Check::from_findings(NAME, ok, findings)
}

// ---------------------------------------------------------------------------------------------
// Cookies, framing, callbacks

/// `FRAME_ANCESTORS` against `COOKIE_SECURE`: the cookie must be able to travel inside the
/// frames the app allows; and a framed app loads Commerce7's frame script
/// (`COMMERCE7_FRAME_SCRIPT`), without which the admin cannot size its frame.
pub fn cookies_and_framing(config: &Config) -> Check {
    const NAME: &str = "cookies/framing";
    let is_keyword = |s: &str| s.eq_ignore_ascii_case("'self'") || s.eq_ignore_ascii_case("'none'");
    let others: Vec<&str> =
        config.frame_ancestors.iter().map(String::as_str).filter(|origin| !is_keyword(origin)).collect();
    let mut findings = Vec::new();

    if !config.cookie_secure && !others.is_empty() {
        findings.push((
            Status::Fail,
            format!(
                "COOKIE_SECURE=false makes the session cookie SameSite=Lax and not Partitioned, so browsers do \
                 not send it inside a frame on another site, yet FRAME_ANCESTORS lets {} frame the app: every \
                 merchant in the Commerce7 iframe would be sent back to the landing page; set COOKIE_SECURE=true \
                 and serve the app over HTTPS (browsers treat http://localhost as secure), or, if the app is never \
                 framed, FRAME_ANCESTORS=\"'self'\"",
                others.join(" ")
            ),
        ));
    }
    let mut warn = |message: String| findings.push((Status::Warn, message));
    for origin in &others {
        let lower = origin.to_ascii_lowercase();
        if !(origin.chars().all(|c| c.is_ascii_graphic()) && !origin.contains(';')) {
            warn(format!("FRAME_ANCESTORS entry {origin:?} is ignored (it contains ';')"));
        } else if matches!(lower.as_str(), "*" | "http:" | "https:" | "http://*" | "https://*") {
            warn(format!(
                "FRAME_ANCESTORS {origin} lets any site frame the app (clickjacking): name Commerce7's \
                 origin, {}",
                config::DEFAULT_FRAME_ANCESTORS
            ));
        // A CSP host-source may name any port (`http://localhost:*`), which no URL does.
        } else if lower.starts_with("http://") && !config::is_loopback_url(&lower.replacen(":*", "", 1)) {
            warn(format!(
                "FRAME_ANCESTORS allows {origin} over plain http: anyone on the network path can change that \
                 page; use https://"
            ));
        }
    }
    if config.commerce7_frame_script.is_none() && !others.is_empty() {
        warn(format!(
            "COMMERCE7_FRAME_SCRIPT is empty, so pages load no frame script: inside the Commerce7 admin the \
             frame keeps a fixed height with scrollbars; unset it (Commerce7's {})",
            config::DEFAULT_COMMERCE7_FRAME_SCRIPT
        ));
    }
    let cookie = if config.cookie_secure {
        "COOKIE_SECURE=true (Secure; SameSite=None; Partitioned)"
    } else {
        "COOKIE_SECURE=false (SameSite=Lax; the app is not framed by other sites)"
    };
    let ancestors = std::iter::once("'self'").chain(others.iter().copied()).collect::<Vec<_>>().join(" ");
    let script = config.commerce7_frame_script.as_deref().unwrap_or("none");
    Check::from_findings(NAME, format!("{cookie}, frame-ancestors {ancestors}, frame script {script}"), findings)
}

/// The Basic-auth pair of the install/uninstall callbacks.
pub fn callbacks(config: &Config) -> Check {
    let missing: Vec<&str> = [
        ("COMMERCE7_USER", config.commerce7_user.is_none()),
        ("COMMERCE7_PASSWORD", config.commerce7_password.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect();
    if missing.is_empty() {
        return Check::new("callbacks", Status::Ok, "COMMERCE7_USER and COMMERCE7_PASSWORD are set");
    }
    Check::new(
        "callbacks",
        Status::Warn,
        format!(
            "{} not set: every install and uninstall callback would be refused (401), so no tenant can install \
             Libero; set both to the Basic-auth pair entered in the Commerce7 Dev Center",
            missing.join(" and ")
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Never printing secrets

/// The values no line may contain: the secrets in the environment and the database password.
fn secrets_in(env: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut secrets: Vec<String> =
        ["SESSION_SECRET", "COMMERCE7_PASSWORD", "METRICS_TOKEN"].into_iter().filter_map(env).collect();
    secrets.extend(env("DATABASE_URL").as_deref().map(url_passwords).unwrap_or_default());
    // Very short values would blank out ordinary words; they are not worth hiding anyway.
    secrets.retain(|secret| secret.len() >= 4);
    secrets
}

/// An error and its causes, `outer: inner: innermost`, without repeats.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for text in std::iter::successors(Some(err), |err| err.source()).map(ToString::to_string) {
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars = std::iter::once(&("SESSION_SECRET", SECRET)).chain(vars);
        Config::from_lookup(|name| vars.clone().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())).unwrap()
    }

    #[test]
    fn the_database_password_is_scrubbed_even_percent_encoded() {
        let env = |name: &str| (name == "DATABASE_URL").then(|| "postgres://u:p%40ssword@h/db".to_owned());
        let secrets = secrets_in(&env);
        assert_eq!(scrub("failed for p@ssword and p%40ssword", &secrets), "failed for *** and ***");
    }

    #[test]
    fn insecure_cookies_with_a_cross_site_frame_ancestor_fail() {
        let check = cookies_and_framing(&config(&[("COOKIE_SECURE", "false")]));
        assert_eq!(check.status, Status::Fail, "{check}");
        assert!(check.message.contains("COOKIE_SECURE=true"), "{check}");
    }

    #[test]
    fn insecure_cookies_for_an_unframed_app_are_fine() {
        let check = cookies_and_framing(&config(&[("COOKIE_SECURE", "false"), ("FRAME_ANCESTORS", "'self'")]));
        assert_eq!(check.status, Status::Ok, "{check}");
    }

    #[test]
    fn plain_http_frame_ancestors_warn_unless_loopback() {
        // CSP's `:*` (any port) is no URL port; the host still decides.
        for origin in ["http://localhost:4010", "http://localhost:*", "http://127.0.0.1:*/", "http://[::1]:8080"] {
            let check = cookies_and_framing(&config(&[("FRAME_ANCESTORS", origin)]));
            assert_eq!(check.status, Status::Ok, "{origin}: {check}");
        }
        for origin in ["http://admin.example.com", "http://example.com:*", "http://app.localhost"] {
            let check = cookies_and_framing(&config(&[("FRAME_ANCESTORS", origin)]));
            assert_eq!(check.status, Status::Warn, "{origin}: {check}");
            assert!(check.message.contains("over plain http"), "{origin}: {check}");
        }
    }

    #[test]
    fn a_framed_app_without_the_frame_script_warns() {
        let check = cookies_and_framing(&config(&[("COMMERCE7_FRAME_SCRIPT", "")]));
        assert_eq!(check.status, Status::Warn, "{check}");
        assert!(check.message.contains("COMMERCE7_FRAME_SCRIPT"), "{check}");
        let unframed = cookies_and_framing(&config(&[("COMMERCE7_FRAME_SCRIPT", ""), ("FRAME_ANCESTORS", "'self'")]));
        assert_eq!(unframed.status, Status::Ok, "not framed: nothing to size");
        let control = cookies_and_framing(&config(&[]));
        assert_eq!(control.status, Status::Ok, "{control}");
        assert!(control.message.contains(config::DEFAULT_COMMERCE7_FRAME_SCRIPT), "{control}");
    }

    #[test]
    fn a_wildcard_frame_ancestor_warns() {
        let check = cookies_and_framing(&config(&[("FRAME_ANCESTORS", "*")]));
        assert_eq!(check.status, Status::Warn, "{check}");
    }

    #[test]
    fn missing_callback_credentials_warn_and_name_the_variable() {
        let check = callbacks(&config(&[("COMMERCE7_USER", "c7")]));
        assert_eq!(check.status, Status::Warn);
        assert!(check.message.starts_with("COMMERCE7_PASSWORD not set"), "{check}");
        let check = callbacks(&config(&[("COMMERCE7_USER", "c7"), ("COMMERCE7_PASSWORD", "pw-pw-pw")]));
        assert_eq!(check.status, Status::Ok);
    }
}
