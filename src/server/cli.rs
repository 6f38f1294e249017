//! The `libero` command line: `serve` (default), `migrate`, `sessions cleanup|stats|revoke|list|find`,
//! `import typescript-app`, `secret`, `doctor`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leptos::config::get_configuration;
use rand::{TryRngCore, rngs::OsRng};

use super::{
    config::{self, Config},
    db::{Db, on_pool},
    sessions::{cleanup, manage, stats},
    startup::Application,
    telemetry,
    terminal::escape_controls,
};

/// Libero: a Commerce7 merchant app with database-backed sessions.
#[derive(Debug, Parser)]
#[command(name = "libero", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server (the default).
    Serve,
    /// Apply pending database migrations to DATABASE_URL and exit.
    Migrate,
    /// Operate on app sessions (for cron and monitoring).
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Print a new random SESSION_SECRET.
    Secret,
    /// Check the settings, the database and its migrations, Commerce7 and the cookie/framing
    /// settings without changing anything; one line per check, exit 1 if any check fails.
    Doctor,
    /// Bring the clients of another app's database into Libero.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Make each Commerce7 tenant of the TypeScript app's `clients` table an installed client of
    /// DATABASE_URL (its pending migrations are applied first). Tenants Libero already knows,
    /// installed or not, are left as they are; rows of other platforms and invalid tenant ids are
    /// skipped; old sessions are not imported. One line per row and a summary; running it again
    /// changes nothing.
    #[command(name = "typescript-app")]
    TypescriptApp {
        /// The TypeScript app's PostgreSQL URL, read only (its password is never printed; it may
        /// be left out of the URL and given in PGPASSWORD instead).
        #[arg(long, value_name = "POSTGRES_URL")]
        from: String,
        /// Print what would be done and write nothing, to either database.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// Delete expired sessions in bounded batches; prints how many.
    Cleanup {
        /// Rows deleted per statement.
        #[arg(long, default_value_t = cleanup::DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
    },
    /// Print the monitoring query: total, active, expired, unique clients, average idle minutes,
    /// and active sessions per client.
    Stats {
        /// Machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete every session of a tenant, or of one user of it (incident response); prints how many.
    Revoke {
        /// Commerce7 tenant id.
        #[arg(long)]
        tenant: String,
        /// Only this Commerce7 user id.
        #[arg(long)]
        user: Option<String>,
    },
    /// List a tenant's active sessions: who, from where, since when. Never ids or tokens.
    List {
        /// Commerce7 tenant id.
        #[arg(long)]
        tenant: String,
        /// Machine-readable JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the session a browser's __libero_session cookie names: tenant, user, signed in, last
    /// active, expires, active/idle/expired, install generation, and its row id (the SHA-256 of
    /// the cookie's token). Checks the cookie's signature with SESSION_SECRET, read as `serve`
    /// reads it (environment, then .env). Never prints the token; changes nothing.
    Find {
        /// The cookie's value as the browser holds it, with or without `__libero_session=`; `-`
        /// reads it from standard input (keeps it out of shell history).
        #[arg(long, value_name = "COOKIE", allow_hyphen_values = true)]
        cookie: String,
        /// Machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Parses the arguments and runs the command; the exit code says whether it worked.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Migrate => migrate().await,
        Command::Sessions { command } => sessions(command).await,
        Command::Secret => {
            println!("{}", new_secret());
            Ok(())
        }
        // Prints its own report; the exit code says whether any check failed.
        Command::Doctor => return super::doctor::run().await,
        Command::Import { command } => import(command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// 32 bytes from the operating system's CSPRNG, hex encoded (64 characters).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.try_fill_bytes(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

async fn serve() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    telemetry::init(config.log_format);
    let leptos = get_configuration(None).map_err(|e| format!("invalid LEPTOS_* settings: {e}"))?;
    let options = crate::server::delivery::with_build_defaults(leptos.leptos_options);
    let app = Application::build(config, options).await.map_err(|e| e.to_string())?;
    tracing::info!(address = %app.local_addr(), backend = ?app.state().db.backend(), "Libero is listening");
    app.run_until(shutdown_signal()).await.map_err(|e| format!("server error: {e}"))?;
    tracing::info!("Libero stopped");
    Ok(())
}

/// `DATABASE_URL` (or its default), after loading `./.env`: the operator commands need only the
/// database, no SESSION_SECRET, no LEPTOS_* settings.
fn database_url_from_env() -> Result<String, String> {
    config::load_dotenv().map_err(|e| e.to_string())?;
    Ok(config::database_url(config::env_setting("DATABASE_URL")).map_err(|e| e.to_string())?.expose().to_owned())
}

async fn connect_from_env() -> Result<Db, String> {
    Db::connect(&database_url_from_env()?).await.map_err(|e| format!("cannot connect to the database: {e}"))
}

async fn sessions(command: SessionsCommand) -> Result<(), String> {
    let db = connect_from_env().await?;
    let result = match command {
        SessionsCommand::Cleanup { batch_size } => cleanup_sessions(&db, batch_size).await,
        SessionsCommand::Stats { json } => print_stats(&db, json).await,
        SessionsCommand::Revoke { tenant, user } => revoke(&db, &tenant, user.as_deref()).await,
        SessionsCommand::List { tenant, json } => list(&db, &tenant, json).await,
        SessionsCommand::Find { cookie, json } => find(&db, &cookie, json).await,
    };
    db.close().await;
    result
}

/// Deletes expired sessions and those idle for `SESSION_IDLE_TIMEOUT` (read as `serve` reads it).
async fn cleanup_sessions(db: &Db, batch_size: i64) -> Result<(), String> {
    let deleted = cleanup::delete_expired(db, batch_size, idle_timeout_from_env()?)
        .await
        .map_err(|e| format!("session cleanup failed: {e}"))?;
    println!("Session cleanup: deleted {deleted} expired sessions");
    Ok(())
}

/// The monitoring query; sessions idle for `SESSION_IDLE_TIMEOUT` are not counted as active.
async fn print_stats(db: &Db, json: bool) -> Result<(), String> {
    let stats = stats::collect(db, idle_timeout_from_env()?)
        .await
        .map_err(|e| format!("cannot read session statistics: {e}"))?;
    show(json, stats, "stats serialise", |stats| stats.to_text())
}

/// `value` as pretty JSON (`what` says what failed to serialise), or as `text` writes it for people.
fn show<T: serde::Serialize>(json: bool, value: T, what: &str, text: impl FnOnce(T) -> String) -> Result<(), String> {
    if json {
        println!("{}", serde_json::to_string_pretty(&value).expect(what));
    } else {
        print!("{}", text(value));
    }
    Ok(())
}

async fn revoke(db: &Db, tenant: &str, user: Option<&str>) -> Result<(), String> {
    let client_id = known_tenant(db, tenant).await?;
    let revoked = manage::revoke(db, client_id, user).await.map_err(|e| format!("cannot revoke sessions: {e}"))?;
    let whose = user.map_or_else(|| format!("tenant {tenant}"), |user| format!("tenant {tenant} user {user}"));
    println!("Revoked {revoked} sessions for {whose}");
    Ok(())
}

async fn list(db: &Db, tenant: &str, json: bool) -> Result<(), String> {
    let client_id = known_tenant(db, tenant).await?;
    let sessions = manage::list_tenant(db, client_id, tenant, idle_timeout_from_env()?)
        .await
        .map_err(|e| format!("cannot list sessions: {e}"))?;
    // As JSON, serde_json escapes every control character itself.
    show(json, sessions, "sessions serialise", |sessions| for_terminal(sessions).to_text())
}

/// The sessions with every text field made safe to print on an operator's terminal: names,
/// emails and user ids come from Commerce7 (and the browser label from a user agent), so an
/// escape sequence in them could rewrite the screen, and a line break could forge a row.
fn for_terminal(mut sessions: manage::TenantSessions) -> manage::TenantSessions {
    sessions.tenant_id = escape_controls(&sessions.tenant_id);
    for s in &mut sessions.sessions {
        s.user_id = escape_controls(&s.user_id);
        s.browser = escape_controls(&s.browser);
        for value in [&mut s.user_name, &mut s.user_email, &mut s.ip_address].into_iter().flatten() {
            *value = escape_controls(value);
        }
    }
    sessions
}

async fn known_tenant(db: &Db, tenant: &str) -> Result<uuid::Uuid, String> {
    manage::client_of_tenant(db, tenant)
        .await
        .map_err(|e| format!("cannot read clients: {e}"))?
        .ok_or_else(|| format!("unknown tenant {tenant:?}: no client with that tenant id has installed Libero"))
}

/// `SESSION_IDLE_TIMEOUT` as `serve` reads it (default 1 h, `0` = off), so that `sessions list`,
/// `stats` and `cleanup` draw the line between active and idle where the server does.
fn idle_timeout_from_env() -> Result<Option<std::time::Duration>, String> {
    config::session_idle_timeout(config::env_setting("SESSION_IDLE_TIMEOUT")).map_err(|e| e.to_string())
}

/// `libero import typescript-app`: the source is read first; the report is printed even when a
/// write failed part-way (then exit 1).
async fn import(command: ImportCommand) -> Result<(), String> {
    let ImportCommand::TypescriptApp { from, dry_run } = command;
    let report = super::import::typescript_app(&from, &database_url_from_env()?, dry_run).await?;
    print!("{}", report.to_text());
    report.failure.map_or(Ok(()), Err)
}

/// `SESSION_SECRET` as `serve` reads it (trimmed, at least 32 characters), with its messages.
fn session_secret_from_env() -> Result<String, String> {
    Ok(config::session_secret(config::env_setting("SESSION_SECRET")).map_err(|e| e.to_string())?.expose().to_owned())
}

/// A `Cookie` header carrying what the operator pasted: the value alone, `__libero_session=…`,
/// or a whole `Cookie:` header; surrounding blanks and quotes are dropped.
fn cookie_header(input: &str) -> Result<String, String> {
    let mut value = input.trim();
    if value.get(..7).is_some_and(|prefix| prefix.eq_ignore_ascii_case("cookie:")) {
        value = value[7..].trim();
    }
    for quote in ['\'', '"'] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            value = value[1..value.len() - 1].trim();
        }
    }
    let prefix = format!("{}=", super::sessions::COOKIE_NAME);
    if value.is_empty() || value == prefix {
        return Err(format!("no cookie value given: pass the {} cookie's value", super::sessions::COOKIE_NAME));
    }
    Ok(if value.contains(&prefix) { value.to_owned() } else { format!("{prefix}{value}") })
}

/// A session as `sessions find` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
struct FoundSession {
    /// `app_sessions.id`: the SHA-256 (hex) of the cookie's token, not the token.
    row_id: String,
    tenant_id: String,
    user_id: String,
    user_name: Option<String>,
    user_email: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    last_activity_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    /// `active`, `idle` or `expired`, by the server's own rule.
    #[sqlx(skip)]
    verdict: &'static str,
    /// The install generation the session was signed in under.
    install_generation: i64,
    /// The client's install generation now, and whether it is installed.
    client_install_generation: i64,
    client_installed: bool,
}

/// The row of `row_id` with its client, read and nothing else (a dead row is shown, not deleted).
async fn session_row(db: &Db, row_id: &str) -> Result<Option<FoundSession>, sqlx::Error> {
    on_pool!(db, |c| sqlx::query_as(
        "SELECT s.id AS row_id, c.tenant_id, s.user_id, s.user_name, s.user_email, s.created_at,
                s.last_activity_at, s.expires_at, s.install_generation,
                c.install_generation AS client_install_generation, c.uninstalled_at IS NULL AS client_installed
           FROM app_sessions s JOIN clients c ON c.id = s.client_id WHERE s.id = $1",
    )
    .bind(row_id)
    .fetch_optional(c)
    .await?)
}

/// `libero sessions find --cookie …`: verifies the cookie as the server does
/// ([`SessionCookies::read`](super::sessions::SessionCookies::read)), then reads the row its
/// token names (`hash_token`).
async fn find(db: &Db, cookie: &str, json: bool) -> Result<(), String> {
    use super::sessions::{AppSessionStore, SessionCookies, cookie::CookieToken, hash_token, store};
    let secret = session_secret_from_env()?;
    let idle = idle_timeout_from_env()?;
    let pasted = if cookie == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the cookie from standard input: {e}"))?;
        line
    } else {
        cookie.to_owned()
    };
    let header = cookie_header(&pasted)?;
    let value = axum::http::HeaderValue::from_str(&header)
        .map_err(|_| "the cookie value has characters no cookie has: copy it again".to_owned())?;
    let headers = axum::http::HeaderMap::from_iter([(axum::http::header::COOKIE, value)]);
    let cookies = SessionCookies::new(&secret, true, std::sync::Arc::new(AppSessionStore::new(db.clone(), idle)));
    let token = match cookies.read(&headers) {
        CookieToken::Signed(token) => token,
        CookieToken::Absent => return Err(format!("no {} cookie in what was given", super::sessions::COOKIE_NAME)),
        CookieToken::Rejected(reason) => {
            return Err(format!(
                "not a session cookie signed with this SESSION_SECRET ({reason}): forged, tampered with, cut short \
                 when copied, or from another deployment; no session was looked up"
            ));
        }
    };
    let row_id = hash_token(&token.to_string());
    let found = session_row(db, &row_id).await.map_err(|e| format!("cannot read sessions: {e}"))?;
    let Some(mut found) = found else {
        return Err("no such session (signed out, expired and cleaned up, or never stored)".to_owned());
    };
    let facts = store::Facts { expires_at: found.expires_at, last_activity_at: found.last_activity_at };
    found.verdict = match store::verdict(&facts, super::db::now(), idle) {
        None => "active",
        Some(store::Invalid::Idle) => "idle",
        Some(_) => "expired",
    };
    show(json, found, "a session serialises", |found| found_text(&found, super::db::now(), idle))
}

/// `key  value` lines; values from Commerce7 with their control characters escaped.
fn found_text(s: &FoundSession, now: chrono::DateTime<chrono::Utc>, idle: Option<std::time::Duration>) -> String {
    use chrono::SecondsFormat;
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let relative = |t: chrono::DateTime<chrono::Utc>| {
        let d = t - now;
        if d >= chrono::TimeDelta::zero() { format!("in {}", span(d)) } else { format!("{} ago", span(-d)) }
    };
    let or_none = |v: &Option<String>| v.as_deref().map_or_else(|| "-".to_owned(), escape_controls);
    let verdict = match s.verdict {
        "active" => "active".to_owned(),
        "idle" => format!(
            "idle: no request for SESSION_IDLE_TIMEOUT ({}); its next request is signed out",
            idle.map_or_else(|| "off".to_owned(), |d| span(chrono::TimeDelta::from_std(d).unwrap_or_default()))
        ),
        _ => "expired: its next request is signed out".to_owned(),
    };
    let installed = if s.client_installed { "installed" } else { "uninstalled" };
    format!(
        "session             {}\n\
         \x20                   (app_sessions.id: the SHA-256 of the cookie's token; the token is not printed)\n\
         tenant              {}\n\
         user id             {}\n\
         user name           {}\n\
         user email          {}\n\
         signed in           {} ({})\n\
         last active         {} ({})\n\
         expires             {} ({})\n\
         verdict             {verdict}\n\
         install generation  {} (the client's: {}, {installed})\n",
        s.row_id,
        escape_controls(&s.tenant_id),
        escape_controls(&s.user_id),
        or_none(&s.user_name),
        or_none(&s.user_email),
        at(s.created_at),
        relative(s.created_at),
        at(s.last_activity_at),
        relative(s.last_activity_at),
        at(s.expires_at),
        relative(s.expires_at),
        s.install_generation,
        s.client_install_generation,
    )
}

/// `3 d 4 h`, `2 h 5 min`, `7 min`, `12 s`.
fn span(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

async fn migrate() -> Result<(), String> {
    let db = connect_from_env().await?;
    db.migrate().await.map_err(|e| format!("database migration failed: {e}"))?;
    println!("Migrations applied ({:?}).", db.backend());
    db.close().await;
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM, so that in-flight requests can finish.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(user_id: &str, name: &str, email: &str) -> manage::TenantSessions {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        manage::TenantSessions {
            tenant_id: "demo-winery".into(),
            sessions: vec![manage::ListedSession {
                user_id: user_id.into(),
                user_name: Some(name.into()),
                user_email: Some(email.into()),
                ip_address: Some("203.0.113.7".into()),
                browser: "Chrome on Windows".into(),
                created_at: at,
                last_activity_at: at,
                expires_at: at,
            }],
        }
    }

    #[test]
    fn sessions_list_escapes_control_characters_from_commerce7() {
        // An ESC sequence that would clear the screen, a line break that would forge a row, a
        // carriage return that would overwrite one, and a tab.
        let name = "Dana\u{1b}[2J\u{1b}[31mOwner";
        let email = "dana@example.com\nfake-user  Mallory  root@example.com\r";
        let text = for_terminal(listed("user-1\tx", name, email)).to_text();
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "no control character but line ends: {text:?}");
        assert_eq!(text.lines().count(), 3, "title, header, one row: {text}");
        assert!(text.contains(r"Dana\u{1b}[2J\u{1b}[31mOwner"), "{text}");
        assert!(text.contains(r"dana@example.com\nfake-user  Mallory  root@example.com\r"), "{text}");
        assert!(text.contains(r"user-1\tx"), "{text}");
        // The control: without for_terminal the row really would carry them.
        let raw = listed("user-1", name, email).to_text();
        assert!(raw.contains('\u{1b}') && raw.lines().count() == 4, "{raw:?}");
    }

    #[test]
    fn sessions_list_keeps_plain_and_accented_names_as_they_are() {
        let plain = listed("user-1", "Zoë Ørsted-Łukasz", "dana@example.com");
        assert_eq!(for_terminal(plain.clone()), plain);
        let text = for_terminal(plain).to_text();
        assert!(text.contains("Zoë Ørsted-Łukasz") && text.contains("dana@example.com"), "{text}");
    }

    #[test]
    fn a_pasted_cookie_becomes_a_cookie_header_with_or_without_its_name() {
        let value = "AbC+/d%2F0123=token";
        let header = format!("__libero_session={value}");
        for pasted in [
            value.to_owned(),
            header.clone(),
            format!("  {header}\n"),
            format!("'{value}'"),
            format!("\"{header}\""),
            format!("Cookie: {header}"),
        ] {
            assert_eq!(cookie_header(&pasted).unwrap(), header, "{pasted:?}");
        }
        // A whole Cookie header is kept as it is: the cookie reader picks ours out of it.
        let several = format!("theme=dark; {header}; other=1");
        assert_eq!(cookie_header(&several).unwrap(), several);
        for empty in ["", "   ", "''", "__libero_session="] {
            assert!(cookie_header(empty).unwrap_err().contains("no cookie value given"), "{empty:?}");
        }
        // A character of several bytes across the length of "cookie:" is a value, not a panic.
        assert_eq!(cookie_header("cookieé=1").unwrap(), "__libero_session=cookieé=1");
    }

    fn found(verdict: &'static str) -> FoundSession {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        FoundSession {
            row_id: hash_of_token(),
            tenant_id: "demo-winery".into(),
            user_id: "c7-user\u{1b}[2J".into(),
            user_name: Some("Dana\nOwner".into()),
            user_email: None,
            created_at: at,
            last_activity_at: at + chrono::TimeDelta::minutes(5),
            expires_at: at + chrono::TimeDelta::hours(8),
            verdict,
            install_generation: 2,
            client_install_generation: 2,
            client_installed: true,
        }
    }

    fn hash_of_token() -> String {
        crate::server::sessions::hash_token("the-token")
    }

    #[test]
    fn a_found_session_prints_one_line_per_field_escaped_and_never_the_token() {
        let s = found("active");
        let now = s.created_at + chrono::TimeDelta::minutes(65);
        let text = found_text(&s, now, Some(std::time::Duration::from_secs(3600)));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                format!("session             {}", hash_of_token()).as_str(),
                "                    (app_sessions.id: the SHA-256 of the cookie's token; the token is not printed)",
                "tenant              demo-winery",
                r"user id             c7-user\u{1b}[2J",
                r"user name           Dana\nOwner",
                "user email          -",
                "signed in           2023-11-14T22:13:20Z (1 h 5 min ago)",
                "last active         2023-11-14T22:18:20Z (1 h ago)",
                "expires             2023-11-15T06:13:20Z (in 6 h 55 min)",
                "verdict             active",
                "install generation  2 (the client's: 2, installed)",
            ]
        );
        assert!(!text.contains("the-token"));
        let idle = found_text(&found("idle"), now, Some(std::time::Duration::from_secs(3600)));
        assert!(idle.contains("verdict             idle: no request for SESSION_IDLE_TIMEOUT (1 h)"), "{idle}");
        let expired = found_text(&found("expired"), now, None);
        assert!(expired.contains("verdict             expired: its next request is signed out"), "{expired}");
    }

    #[test]
    fn spans_read_as_days_hours_minutes_or_seconds() {
        let span_of = |secs| span(chrono::TimeDelta::seconds(secs));
        assert_eq!(span_of(12), "12 s");
        assert_eq!(span_of(7 * 60 + 3), "7 min");
        assert_eq!(span_of(3_600), "1 h");
        assert_eq!(span_of(2 * 3_600 + 5 * 60), "2 h 5 min");
        assert_eq!(span_of(86_400 + 60), "1 d");
        assert_eq!(span_of(3 * 86_400 + 4 * 3_600), "3 d 4 h");
    }

    #[test]
    fn secrets_are_64_hex_characters_and_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
