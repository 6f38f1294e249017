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
        println!("{}", serde_json::to_string_pretty(&sessions).expect("sessions serialise"));
    } else {
        print!("{}", sessions.to_text());
    }
    Ok(())
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

    #[test]
    fn secrets_are_64_hex_characters_and_differ() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
