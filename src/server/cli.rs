//! The `libero` command line: `serve` (default), `migrate`, `sessions cleanup|stats|revoke|list`,
//! `secret`, `doctor`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leptos::config::get_configuration;
use rand::{TryRngCore, rngs::OsRng};

use super::{
    Application,
    config::Config,
    db::Db,
    sessions::{cleanup, manage, stats},
    telemetry,
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

/// The operator commands need only the database: no SESSION_SECRET, no LEPTOS_* settings.
async fn connect_from_env() -> Result<Db, String> {
    super::config::load_dotenv().map_err(|e| e.to_string())?;
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| super::config::DEFAULT_DATABASE_URL.to_owned());
    Db::connect(&url).await.map_err(|e| format!("cannot connect to the database: {e}"))
}

async fn sessions(command: SessionsCommand) -> Result<(), String> {
    let db = connect_from_env().await?;
    let result = match command {
        SessionsCommand::Cleanup { batch_size } => cleanup_sessions(&db, batch_size).await,
        SessionsCommand::Stats { json } => print_stats(&db, json).await,
        SessionsCommand::Revoke { tenant, user } => revoke(&db, &tenant, user.as_deref()).await,
        SessionsCommand::List { tenant, json } => list(&db, &tenant, json).await,
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
    if json {
        println!("{}", serde_json::to_string_pretty(&stats).expect("stats serialise"));
    } else {
        print!("{}", stats.to_text());
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
    if json {
        // serde_json escapes every control character itself.
        println!("{}", serde_json::to_string_pretty(&sessions).expect("sessions serialise"));
    } else {
        print!("{}", for_terminal(sessions).to_text());
    }
    Ok(())
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

/// `value` with each control character (`char::is_control`: C0 including ESC, CR, LF and tab,
/// DEL, C1) and each bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069, which
/// reorder what follows on screen) written as a Rust escape (`\u{1b}`, `\n`, `\t`, `\u{202e}`);
/// everything else, non-ASCII letters included, is kept.
pub fn escape_controls(value: &str) -> String {
    let is_bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !value.chars().any(|c| c.is_control() || is_bidi(c)) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if is_bidi(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
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
    let Some(value) = std::env::var("SESSION_IDLE_TIMEOUT").ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(Some(std::time::Duration::from_secs(3600)));
    };
    super::config::parse_duration(value.trim())
        .map(|idle| (!idle.is_zero()).then_some(idle))
        .ok_or_else(|| format!("SESSION_IDLE_TIMEOUT={value:?} is not a duration such as 1h, 30m or 0"))
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
        // carriage return that would overwrite one, a tab and a right-to-left override.
        let name = "Dana\u{1b}[2J\u{1b}[31mOwner";
        let email = "dana@example.com\nfake-user  Mallory  root@example.com\r";
        let text = for_terminal(listed("user-1\tx", name, email)).to_text();
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "no control character but line ends: {text:?}");
        assert_eq!(text.lines().count(), 3, "title, header, one row: {text}");
        assert!(text.contains(r"Dana\u{1b}[2J\u{1b}[31mOwner"), "{text}");
        assert!(text.contains(r"dana@example.com\nfake-user  Mallory  root@example.com\r"), "{text}");
        assert!(text.contains(r"user-1\tx"), "{text}");
        assert_eq!(escape_controls("evil\u{202e}gpj.exe\u{7f}\u{9b}"), r"evil\u{202e}gpj.exe\u{7f}\u{9b}");
        // The control: without for_terminal the row really would carry them.
        let raw = listed("user-1", name, email).to_text();
        assert!(raw.contains('\u{1b}') && raw.lines().count() == 4, "{raw:?}");
    }

    #[test]
    fn sessions_list_keeps_plain_and_accented_names_as_they_are() {
        let plain = listed("user-1", "Dana Owner", "dana@example.com");
        assert_eq!(for_terminal(plain.clone()), plain);
        for value in ["Zoë Ørsted-Łukasz", "渡辺 ワイン", "o'brien+c7@example.com", "Mozilla/5.0 (X11; Linux)"]
        {
            assert_eq!(escape_controls(value), value);
        }
        let text = for_terminal(plain).to_text();
        assert!(text.contains("Dana Owner") && text.contains("dana@example.com"), "{text}");
    }

    #[test]
    fn secrets_are_64_hex_characters_and_differ() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
