//! The `libero` command line: `serve` (default), `migrate`, `sessions cleanup|stats`, `secret`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leptos::config::get_configuration;
use rand::{TryRngCore, rngs::OsRng};

use super::{
    Application,
    config::Config,
    db::Db,
    sessions::{cleanup, stats},
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
    let app = Application::build(config, leptos.leptos_options).await.map_err(|e| e.to_string())?;
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
        SessionsCommand::Cleanup { batch_size } => cleanup::delete_expired(&db, batch_size)
            .await
            .map(|deleted| println!("Session cleanup: deleted {deleted} expired sessions"))
            .map_err(|e| format!("session cleanup failed: {e}")),
        SessionsCommand::Stats { json } => match stats::collect(&db).await {
            Ok(stats) if json => {
                println!("{}", serde_json::to_string_pretty(&stats).expect("stats serialise"));
                Ok(())
            }
            Ok(stats) => {
                print!("{}", stats.to_text());
                Ok(())
            }
            Err(e) => Err(format!("cannot read session statistics: {e}")),
        },
    };
    db.close().await;
    result
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
