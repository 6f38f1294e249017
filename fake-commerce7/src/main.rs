//! `fake-commerce7`: runs the fake Commerce7 (account API, callbacks, admin simulator) for
//! local development.
//!
//! Settings (environment, or `.env` in the working directory):
//! - `FAKE_C7_ADDR`: listen address, default `127.0.0.1:4010`
//! - `FAKE_C7_APP_URL`: the app's base URL, default `http://127.0.0.1:3000`
//! - `FAKE_C7_LATENCY_MS`: latency added to `GET /v1/account/user`, default 0
//! - `FAKE_C7_USERS`: optional path to a JSON file with an array of users (camelCase
//!   `token`, `tenantId`, `id`, `firstName`, `lastName`, `email`, optional `role`) replacing
//!   the demo users
//! - `FAKE_C7_TOKENS`: `fresh` (default) — every open from the admin simulator mints a new
//!   JWT-shaped account token, as Commerce7 does — or `fixed`: each open hands out the user's
//!   fixed `token`. The fixed tokens are accepted by `GET /v1/account/user` in both modes
//! - `FAKE_C7_CLIENT_SETTINGS`: optional JSON object of client-settings answers, sent at the top
//!   level of the install body under their codes (default none: Libero declares none)
//! - `COMMERCE7_USER` / `COMMERCE7_PASSWORD`: Basic-auth credentials of the install and
//!   uninstall callbacks, default `libero-dev` / `libero-dev-callback-password`

use std::env::{self, VarError};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use fake_commerce7::{FakeCommerce7, FakeConfig, FakeUser, TokenMode, admin_url_of};
use tracing_subscriber::EnvFilter;

const DEFAULT_ADDR: &str = "127.0.0.1:4010";
const DEFAULT_APP_URL: &str = "http://127.0.0.1:3000";
const DEFAULT_CALLBACK_USER: &str = "libero-dev";
const DEFAULT_CALLBACK_PASSWORD: &str = "libero-dev-callback-password";

/// The binary's settings, read from the environment.
struct Settings {
    addr: SocketAddr,
    config: FakeConfig,
}

/// A setting's value, `None` when unset or blank.
fn var(name: &str) -> Result<Option<String>, String> {
    match env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value.trim().to_owned())),
        Err(VarError::NotPresent) => Ok(None),
        Err(VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

fn read_settings() -> Result<Settings, String> {
    let addr_text = var("FAKE_C7_ADDR")?.unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let addr: SocketAddr = addr_text.parse().map_err(|_| {
        format!("FAKE_C7_ADDR must be an IP address and port such as {DEFAULT_ADDR}, got {addr_text:?}")
    })?;

    let app_url = var("FAKE_C7_APP_URL")?.unwrap_or_else(|| DEFAULT_APP_URL.to_owned());
    match reqwest::Url::parse(&app_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        _ => {
            return Err(format!("FAKE_C7_APP_URL must be an http(s) URL such as {DEFAULT_APP_URL}, got {app_url:?}"));
        }
    }
    let app_url = app_url.trim_end_matches('/').to_owned();

    let latency = match var("FAKE_C7_LATENCY_MS")? {
        None => Duration::ZERO,
        Some(text) => text
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("FAKE_C7_LATENCY_MS must be a whole number of milliseconds, got {text:?}"))?,
    };

    let callback_user = var("COMMERCE7_USER")?.unwrap_or_else(|| DEFAULT_CALLBACK_USER.to_owned());
    let callback_password = var("COMMERCE7_PASSWORD")?.unwrap_or_else(|| DEFAULT_CALLBACK_PASSWORD.to_owned());

    let tokens = match var("FAKE_C7_TOKENS")? {
        None => TokenMode::Fresh,
        Some(text) => {
            text.parse::<TokenMode>().map_err(|_| format!("FAKE_C7_TOKENS must be fresh or fixed, got {text:?}"))?
        }
    };
    let client_settings = match var("FAKE_C7_CLIENT_SETTINGS")? {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(answers)) => answers,
            _ => {
                return Err(format!(
                    "FAKE_C7_CLIENT_SETTINGS must be a JSON object such as {{\"code\":\"answer\"}}, got {text:?}"
                ));
            }
        },
    };

    let mut config = FakeConfig::demo(app_url, callback_user, callback_password);
    config.latency = latency;
    config.tokens = tokens;
    config.client_settings = client_settings;
    if let Some(path) = var("FAKE_C7_USERS")? {
        config.users = read_users(&path)?;
    }
    Ok(Settings { addr, config })
}

fn read_users(path: &str) -> Result<Vec<FakeUser>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("FAKE_C7_USERS: cannot read {path}: {err}"))?;
    let users: Vec<FakeUser> = serde_json::from_str(&text).map_err(|err| {
        format!("FAKE_C7_USERS: {path} is not a JSON array of users (token, tenantId, id, firstName, lastName, email, role?): {err}")
    })?;
    if users.is_empty() {
        return Err(format!("FAKE_C7_USERS: {path} has no users"));
    }
    for (index, user) in users.iter().enumerate() {
        if user.token.is_empty() || user.tenant_id.is_empty() || user.id.is_empty() {
            return Err(format!("FAKE_C7_USERS: user #{index} in {path} needs a non-empty token, tenantId and id"));
        }
    }
    Ok(users)
}

/// Reads `./.env` into the environment (variables already set win). A missing file is fine;
/// one that cannot be parsed is not.
fn load_dotenv() -> Result<(), String> {
    match dotenvy::from_path(".env") {
        Ok(()) => Ok(()),
        Err(dotenvy::Error::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("cannot read .env: {err} (values with spaces need quotes: KEY=\"a b\")")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(message) = load_dotenv() {
        eprintln!("fake-commerce7: {message}");
        return ExitCode::FAILURE;
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let settings = match read_settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("fake-commerce7: {message}");
            return ExitCode::FAILURE;
        }
    };
    let tenants = {
        let mut tenants: Vec<&str> = Vec::new();
        for user in &settings.config.users {
            if !tenants.contains(&user.tenant_id.as_str()) {
                tenants.push(&user.tenant_id);
            }
        }
        tenants.join(", ")
    };
    let user_count = settings.config.users.len();
    let app_url = settings.config.app_url.clone();
    let tokens = settings.config.tokens.as_str();

    let fake = match FakeCommerce7::start(settings.addr, settings.config).await {
        Ok(fake) => fake,
        Err(err) => {
            eprintln!(
                "fake-commerce7: cannot listen on {}: {err} (is another server using that port? set FAKE_C7_ADDR)",
                settings.addr
            );
            return ExitCode::FAILURE;
        }
    };
    println!(
        "Fake Commerce7 on {} — admin simulator: {} (API: {})",
        fake.origin(),
        admin_url_of(fake.addr()),
        fake.api_url()
    );
    tracing::info!(
        app_url = %app_url,
        users = user_count,
        tenants = %tenants,
        tokens,
        "fake Commerce7 ready"
    );

    // A stand-in needs no drain on SIGTERM (the default action ends it); ctrl-c stops it
    // cleanly in a terminal.
    if let Err(err) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %err, "cannot listen for ctrl-c");
        std::future::pending::<()>().await;
    }
    tracing::info!("shutting down");
    fake.shutdown().await;
    ExitCode::SUCCESS
}
