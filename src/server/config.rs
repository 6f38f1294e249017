//! Settings, parsed once at start-up from the environment (and `.env` in development).
//!
//! Every setting documented in docs/configuration.md lives here. A bad or missing value stops the process
//! with a message that says how to fix it; no secret has a fallback value and none can be printed
//! through `Debug`.

use std::{fmt, time::Duration};

use super::db::Backend;

/// The default database: an SQLite file next to the process, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://libero.db";
/// Commerce7's public API.
pub const DEFAULT_COMMERCE7_API_URL: &str = "https://api.commerce7.com/v1";
/// Who may frame the app besides itself: Commerce7's platform (the admin is
/// `{tenant}.admin.platform.commerce7.com`; POS and reservations are platform apps too), not every
/// commerce7.com host — the partitioned cookie is keyed to the top-level site, all of commerce7.com.
pub const DEFAULT_FRAME_ANCESTORS: &str = "https://*.platform.commerce7.com";

/// Commerce7's frame script, which every page framed in the admin must load so that the admin
/// can size the frame (`COMMERCE7_FRAME_SCRIPT`'s default).
pub const DEFAULT_COMMERCE7_FRAME_SCRIPT: &str = "https://dev-center.platform.commerce7.com/v2/commerce7.js";
/// Minimum length of `SESSION_SECRET`.
pub const MIN_SECRET_LEN: usize = 32;
/// The least estimated entropy ([`estimated_entropy_bits`]) production accepts in
/// `SESSION_SECRET` and `METRICS_TOKEN`.
pub const MIN_SECRET_BITS: f64 = 128.0;
/// The callback password `.env.example` ships with: fine on a laptop, refused in production.
pub const EXAMPLE_CALLBACK_PASSWORD: &str = "libero-dev-callback-password";

const SECRET_HINT: &str = "generate one with `libero secret` or `openssl rand -hex 32` and put it in \
the environment or in .env as SESSION_SECRET=<value>";

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the few places that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (development).
    Text,
    /// One JSON object per line (production log shipping).
    Json,
}

/// A rate limit: at most `count` requests per `per`, per client IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in a window (also the burst).
    pub count: u32,
    /// The window.
    pub per: Duration,
}

impl RateLimit {
    /// Parses `30/min`, `5/s`, `100/h`; `0` or `off` disables (`None`).
    pub fn parse(input: &str) -> Option<Option<Self>> {
        let input = input.trim();
        if input == "0" || input.eq_ignore_ascii_case("off") {
            return Some(None);
        }
        let (count, unit) = input.split_once('/')?;
        let count: u32 = count.trim().parse().ok().filter(|c| *c > 0)?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => parse_duration(other).filter(|d| !d.is_zero())?,
        };
        Some(Some(Self { count, per }))
    }
}

/// Libero's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: `sqlite://…` (default `sqlite://libero.db`) or `postgres://…`.
    pub database_url: Secret,
    /// `SESSION_SECRET`: at least 32 characters; the cookie-signing key is derived from it.
    pub session_secret: Secret,
    /// `SESSION_TTL`: absolute session lifetime from sign-in (default 8h).
    pub session_ttl: Duration,
    /// `SESSION_IDLE_TIMEOUT`: idle limit from `last_activity_at` (default 1h; `None` when 0).
    pub session_idle_timeout: Option<Duration>,
    /// `SESSION_TOUCH_INTERVAL`: how often `last_activity_at` is refreshed (default 60s; 0 = always).
    pub session_touch_interval: Duration,
    /// `COMMERCE7_API_URL`: base of Commerce7's API, without a trailing slash.
    pub commerce7_api_url: String,
    /// `COMMERCE7_USER`: Basic-auth user of the install/uninstall callbacks.
    pub commerce7_user: Option<String>,
    /// `COMMERCE7_PASSWORD`: Basic-auth password of the install/uninstall callbacks.
    pub commerce7_password: Option<Secret>,
    /// `COMMERCE7_TIMEOUT`: limit for one Commerce7 call (default 5s).
    pub commerce7_timeout: Duration,
    /// `COOKIE_SECURE`: mark the session cookie `Secure` (default true).
    pub cookie_secure: bool,
    /// `FRAME_ANCESTORS`: origins allowed to frame the app, space separated.
    pub frame_ancestors: Vec<String>,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `SESSION_CLEANUP_INTERVAL`: how often the server deletes expired sessions (default 1h;
    /// `None` when 0).
    pub session_cleanup_interval: Option<Duration>,
    /// `METRICS_TOKEN`: bearer token for `/metrics`; without it `/metrics` answers 404.
    pub metrics_token: Option<Secret>,
    /// `RATE_LIMIT_SIGN_IN`: sign-in attempts per client IP (default 30/min; `None` when 0).
    pub rate_limit_sign_in: Option<RateLimit>,
    /// `RATE_LIMIT_CALLBACKS`: install/uninstall callbacks per client IP (default 60/min).
    pub rate_limit_callbacks: Option<RateLimit>,
    /// `TRUSTED_PROXY_HOPS`: how many reverse proxies in front of the app append to
    /// `X-Forwarded-For` (default 0: the header is ignored and the peer address is the client).
    pub trusted_proxy_hops: usize,
    /// `SUPPORT_URL`: the app's support docs, linked from every error page (none when unset).
    /// An absolute `http(s)://` URL; `https://` only in production.
    pub support_url: Option<String>,
    /// `COMMERCE7_FRAME_SCRIPT`: the script every framed page loads (`async`) so that the admin
    /// sizes its frame; [`DEFAULT_COMMERCE7_FRAME_SCRIPT`] when unset, `None` when set empty.
    pub commerce7_frame_script: Option<String>,
}

/// Why the settings could not be read. The message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `SESSION_SECRET` is not set.
    #[error("Missing SESSION_SECRET: {SECRET_HINT}")]
    MissingSecret,
    /// `SESSION_SECRET` is too short to derive a signing key from.
    #[error("SESSION_SECRET must be at least 32 characters (it has {0}): {SECRET_HINT}")]
    ShortSecret(usize),
    /// `./.env` exists but cannot be read.
    #[error("cannot read .env: {0} (values with spaces need quotes: KEY=\"a b\")")]
    DotEnv(String),
    /// A development value in production (`LEPTOS_ENV=PROD`).
    #[error("{name} {problem} in production (LEPTOS_ENV=PROD): {fix}")]
    NotForProduction {
        /// The variable's name.
        name: &'static str,
        /// What is wrong with its value.
        problem: &'static str,
        /// What to set instead.
        fix: &'static str,
    },
    /// A binary built with the cargo feature `bench` (`make bench`) in production: its
    /// `/__bench/*` routes serve a signed-in dashboard and a Commerce7 token checker to anyone.
    #[error(
        "this binary was built with the `bench` feature (make bench) and serves unguarded /__bench/* routes: \
         it refuses to run in production (LEPTOS_ENV=PROD); deploy the build of `make release` \
         (target/release/libero) instead"
    )]
    BenchBuildInProduction,
    /// A secret that is easy to guess, in production (`LEPTOS_ENV=PROD`). The value is never
    /// shown.
    #[error(
        "{name} is too easy to guess for production (LEPTOS_ENV=PROD): about {bits} bits of entropy, \
         at least 128 needed (length times the bits of the character classes it uses, a repeated \
         pattern counted once); generate one with `libero secret` or `openssl rand -hex 32`"
    )]
    WeakSecret {
        /// The variable's name.
        name: &'static str,
        /// The estimate, rounded down.
        bits: u32,
    },
    /// A setting has a value that cannot be parsed.
    #[error("{name} has an invalid value {value:?}: {expected}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// What it was set to.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
}

/// A setting whose value cannot be parsed: what it was set to, and what it should look like.
fn invalid(name: &'static str, value: impl Into<String>, expected: &'static str) -> ConfigError {
    ConfigError::Invalid { name, value: value.into(), expected }
}

/// A setting from the process environment as every reader takes it: trimmed, and set but empty
/// as unset. (`Config::from_env` reads them all; the CLI's commands read the few they need.)
pub fn env_setting(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `SESSION_SECRET`: set, and at least [`MIN_SECRET_LEN`] characters.
pub fn session_secret(value: Option<String>) -> Result<Secret, ConfigError> {
    match value {
        None => Err(ConfigError::MissingSecret),
        Some(s) if s.chars().count() < MIN_SECRET_LEN => Err(ConfigError::ShortSecret(s.chars().count())),
        Some(s) => Ok(Secret::new(s)),
    }
}

/// `DATABASE_URL` (default [`DEFAULT_DATABASE_URL`]): a SQLite or a PostgreSQL URL.
pub fn database_url(value: Option<String>) -> Result<Secret, ConfigError> {
    let url = value.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    if Backend::of_url(&url).is_none() {
        let shown = super::terminal::redact_url(&url);
        return Err(invalid("DATABASE_URL", shown, "sqlite://<file> or postgres://user:password@host/database"));
    }
    Ok(Secret::new(url))
}

/// `COMMERCE7_API_URL` (default [`DEFAULT_COMMERCE7_API_URL`]): an http(s) URL, kept without a
/// trailing slash.
pub fn commerce7_api_url(value: Option<String>) -> Result<String, ConfigError> {
    let url = value.as_deref().unwrap_or(DEFAULT_COMMERCE7_API_URL).trim_end_matches('/');
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_owned())
    } else {
        Err(invalid("COMMERCE7_API_URL", url, "an http(s) URL such as https://api.commerce7.com/v1"))
    }
}

/// `SESSION_IDLE_TIMEOUT` (default 1h); `0` turns the idle rule off (`None`).
pub fn session_idle_timeout(value: Option<String>) -> Result<Option<Duration>, ConfigError> {
    let idle = duration_setting("SESSION_IDLE_TIMEOUT", value, Duration::from_secs(3600))?;
    Ok((!idle.is_zero()).then_some(idle))
}

fn duration_setting(name: &'static str, value: Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => parse_duration(&v).ok_or(invalid(name, v, "a duration such as 8h, 30m, 60s, 1500ms or 0")),
    }
}

/// A development value in production: what is wrong with it, and what to set instead.
fn not_for_production(name: &'static str, problem: &'static str, fix: &'static str) -> ConfigError {
    ConfigError::NotForProduction { name, problem, fix }
}

impl Config {
    /// Reads the process environment, after loading `./.env` (if present) without overriding
    /// variables that are already set.
    pub fn from_env() -> Result<Self, ConfigError> {
        load_dotenv()?;
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses the settings from any variable source (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Set but empty means "off", unlike the other settings.
        let frame_script = get("COMMERCE7_FRAME_SCRIPT");
        let get = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let session_secret = session_secret(get("SESSION_SECRET"))?;
        let duration = |name: &'static str, default: Duration| duration_setting(name, get(name), default);

        let session_ttl = duration("SESSION_TTL", Duration::from_secs(8 * 3600))?;
        if session_ttl.is_zero() {
            return Err(invalid("SESSION_TTL", "0", "a positive duration such as 8h"));
        }
        if session_ttl > Duration::from_secs(30 * 86_400) {
            return Err(invalid("SESSION_TTL", format!("{}s", session_ttl.as_secs()), "at most 30 days (30d)"));
        }
        let idle = session_idle_timeout(get("SESSION_IDLE_TIMEOUT"))?;
        let touch = duration("SESSION_TOUCH_INTERVAL", Duration::from_secs(60))?;
        if idle.is_some_and(|idle| touch >= idle) {
            return Err(invalid(
                "SESSION_TOUCH_INTERVAL",
                format!("{}s", touch.as_secs()),
                "shorter than SESSION_IDLE_TIMEOUT, or active merchants would be signed out as idle",
            ));
        }
        let commerce7_timeout = duration("COMMERCE7_TIMEOUT", Duration::from_secs(5))?;
        if commerce7_timeout.is_zero() {
            return Err(invalid("COMMERCE7_TIMEOUT", "0", "a positive duration such as 5s"));
        }

        let commerce7_api_url = commerce7_api_url(get("COMMERCE7_API_URL"))?;

        let cookie_secure = match get("COOKIE_SECURE").as_deref() {
            None => true,
            Some(v) => parse_bool(v).ok_or(invalid("COOKIE_SECURE", v.to_owned(), "true or false"))?,
        };

        let log_format = match get("LOG_FORMAT").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(invalid("LOG_FORMAT", other.to_owned(), "text or json")),
        };

        let database_url = database_url(get("DATABASE_URL"))?;

        let rate_limit = |name: &'static str, default: &str| -> Result<Option<RateLimit>, ConfigError> {
            let value = get(name).unwrap_or_else(|| default.to_owned());
            RateLimit::parse(&value).ok_or(invalid(
                name,
                value,
                "a limit such as 30/min, 5/s or 100/h, or 0 to disable",
            ))
        };
        let trusted_proxy_hops = match get("TRUSTED_PROXY_HOPS") {
            None => 0,
            Some(v) => v.parse().ok().filter(|n| *n <= 10).ok_or(invalid(
                "TRUSTED_PROXY_HOPS",
                v,
                "the number of proxies in front of the app (0 to 10)",
            ))?,
        };
        let cleanup = duration("SESSION_CLEANUP_INTERVAL", Duration::from_secs(3600))?;
        let commerce7_user = get("COMMERCE7_USER");
        if let Some((user, _)) = commerce7_user.as_ref().and_then(|user| user.split_once(':')) {
            // What follows the colon is not shown: most likely a pasted "user:password".
            let shown = format!("{user}:…");
            return Err(invalid(
                "COMMERCE7_USER",
                shown,
                "a user without ':' (Basic auth's user ends at its first colon)",
            ));
        }
        let support_url = get("SUPPORT_URL").map(|url| parse_support_url(&url)).transpose()?;
        let commerce7_frame_script = match frame_script.as_deref().map(str::trim) {
            None => Some(DEFAULT_COMMERCE7_FRAME_SCRIPT.to_owned()),
            Some("") => None,
            Some(url) => Some(parse_script_url(url)?),
        };

        let config = Self {
            support_url,
            commerce7_frame_script,
            session_cleanup_interval: (!cleanup.is_zero()).then_some(cleanup),
            metrics_token: get("METRICS_TOKEN").map(Secret::new),
            rate_limit_sign_in: rate_limit("RATE_LIMIT_SIGN_IN", "30/min")?,
            rate_limit_callbacks: rate_limit("RATE_LIMIT_CALLBACKS", "60/min")?,
            trusted_proxy_hops,
            database_url,
            session_secret,
            session_ttl,
            session_idle_timeout: idle,
            session_touch_interval: touch,
            commerce7_api_url,
            commerce7_user,
            commerce7_password: get("COMMERCE7_PASSWORD").map(Secret::new),
            commerce7_timeout,
            cookie_secure,
            frame_ancestors: get("FRAME_ANCESTORS")
                .unwrap_or_else(|| DEFAULT_FRAME_ANCESTORS.to_owned())
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            log_format,
        };
        // `LEPTOS_ENV` names production as leptos reads it: `prod` or `production`, any case.
        let production = get("LEPTOS_ENV")
            .is_some_and(|env| env.eq_ignore_ascii_case("prod") || env.eq_ignore_ascii_case("production"));
        refuse_bench_routes(production, HAS_BENCH_ROUTES)?;
        if production {
            config.refuse_development_values()?;
        }
        Ok(config)
    }

    /// Refuses the values that are fine on a laptop but unsafe in production.
    fn refuse_development_values(&self) -> Result<(), ConfigError> {
        let secrets = [("SESSION_SECRET", Some(&self.session_secret)), ("METRICS_TOKEN", self.metrics_token.as_ref())];
        for (name, secret) in secrets {
            if let Some(secret) = secret {
                let bits = estimated_entropy_bits(secret.expose());
                if bits < MIN_SECRET_BITS {
                    return Err(ConfigError::WeakSecret { name, bits: bits as u32 });
                }
            }
        }
        if self.commerce7_password.as_ref().is_some_and(|p| p.expose() == EXAMPLE_CALLBACK_PASSWORD) {
            return Err(not_for_production(
                "COMMERCE7_PASSWORD",
                "is the example value from .env.example",
                "set COMMERCE7_PASSWORD to a secret of your own (e.g. from `libero secret`) and enter the same in the Commerce7 Dev Center",
            ));
        }
        if self.commerce7_api_url.starts_with("http://") && !is_loopback_url(&self.commerce7_api_url) {
            return Err(not_for_production(
                "COMMERCE7_API_URL",
                "uses plain http:// to another host, which would send account tokens in clear,",
                "set COMMERCE7_API_URL=https://api.commerce7.com/v1 (or another https:// URL)",
            ));
        }
        if self
            .support_url
            .as_deref()
            .is_some_and(|url| !url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")))
        {
            // Unlike COMMERCE7_API_URL, not even to this machine: the merchant's browser follows
            // this link, where "localhost" is the merchant's own computer.
            return Err(not_for_production(
                "SUPPORT_URL",
                "is a plain http:// link, which error pages served over HTTPS would send merchants to,",
                "set SUPPORT_URL to an https:// address of your support docs (or leave it unset)",
            ));
        }
        if self
            .commerce7_frame_script
            .as_deref()
            .is_some_and(|url| url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")) && !is_loopback_url(url))
        {
            return Err(not_for_production(
                "COMMERCE7_FRAME_SCRIPT",
                "is a plain http:// script, which any network on the way could replace,",
                "leave COMMERCE7_FRAME_SCRIPT unset (Commerce7's https:// script) or set another https:// URL",
            ));
        }
        if !self.cookie_secure {
            return Err(not_for_production(
                "COOKIE_SECURE",
                "is false, which drops Secure/SameSite=None/Partitioned from the session cookie,",
                "set COOKIE_SECURE=true (or leave it unset) and serve the app over HTTPS",
            ));
        }
        Ok(())
    }
}

/// An estimate of how hard `value` is to guess, in bits: its length times log2 of its alphabet,
/// where the alphabet is the sum of the character classes it uses — lowercase (26), uppercase
/// (26), digits (10), any other ASCII (33: punctuation and space; control characters count here
/// too), and anything beyond ASCII (counted generously as 1,024 characters, but bounded, so
/// that a few emoji do not make a value strong). A repeated pattern is counted once: the length
/// is that of the value's shortest period, so `abcabcabc…` (or `abcabcab`) counts as `abc`.
///
/// It is an upper bound for a random value and says nothing good about a chosen one (a long
/// passphrase scores well), but it catches what is typed by hand: short values, one repeated
/// character or pattern. The 64 hex characters of `libero secret` or `openssl rand -hex 32`
/// score about 330 bits.
pub fn estimated_entropy_bits(value: &str) -> f64 {
    let chars: Vec<char> = value.chars().collect();
    let unit = &chars[..shortest_period(&chars)];
    /// A character class: who belongs to it, and how many characters it has.
    type Class = (fn(&char) -> bool, u32);
    let classes: [Class; 5] = [
        (char::is_ascii_lowercase, 26),
        (char::is_ascii_uppercase, 26),
        (char::is_ascii_digit, 10),
        (|c: &char| c.is_ascii() && !c.is_ascii_alphanumeric(), 33),
        (|c: &char| !c.is_ascii(), 1024),
    ];
    let alphabet: u32 = classes.iter().filter(|(is, _)| unit.iter().any(is)).map(|(_, size)| size).sum();
    if alphabet <= 1 {
        return 0.0;
    }
    unit.len() as f64 * f64::from(alphabet).log2()
}

/// The length of the shortest `p` such that `s` is a prefix of its first `p` characters repeated
/// (`s.len()` when nothing repeats), from the longest proper border (KMP's failure function).
fn shortest_period(s: &[char]) -> usize {
    let mut border = vec![0usize; s.len()];
    let mut k = 0;
    for i in 1..s.len() {
        while k > 0 && s[i] != s[k] {
            k = border[k - 1];
        }
        if s[i] == s[k] {
            k += 1;
        }
        border[i] = k;
    }
    s.len() - border.last().copied().unwrap_or(0)
}

/// Whether this binary serves the bench-only `/__bench/*` routes (cargo feature `bench`).
pub const HAS_BENCH_ROUTES: bool = cfg!(feature = "bench");

/// A binary with the bench routes (`make bench`, which builds into `target/bench`) never runs in
/// production: `/__bench/app` shows a signed-in dashboard with no guard and `/__bench/reauth` is
/// an unmetered Commerce7 token checker. Development and the bench itself run it as they like.
pub fn refuse_bench_routes(production: bool, has_bench_routes: bool) -> Result<(), ConfigError> {
    if production && has_bench_routes { Err(ConfigError::BenchBuildInProduction) } else { Ok(()) }
}

/// `SUPPORT_URL` as the pages link it: an absolute `http://` or `https://` URL with a host and
/// no credentials ([`plain_web_url`]).
fn parse_support_url(value: &str) -> Result<String, ConfigError> {
    match plain_web_url(value, &[]) {
        Some(_) => Ok(value.to_owned()),
        None => Err(invalid(
            "SUPPORT_URL",
            value.to_owned(),
            "an absolute https:// URL of the app's support docs, such as https://example.com/libero/help",
        )),
    }
}

/// `COMMERCE7_FRAME_SCRIPT` as the pages load it: a [`plain_web_url`] without `;` or `,` (it goes
/// into the Content-Security-Policy too), query or fragment.
fn parse_script_url(value: &str) -> Result<String, ConfigError> {
    match plain_web_url(value, &[';', ',']) {
        Some(url) if url.query().is_none() && url.fragment().is_none() => Ok(value.to_owned()),
        _ => Err(invalid(
            "COMMERCE7_FRAME_SCRIPT",
            value.to_owned(),
            "the absolute URL of Commerce7's frame script (https://dev-center.platform.commerce7.com/v2/commerce7.js), or empty to load none",
        )),
    }
}

/// `value` as a URL the pages put into an attribute as given: written `http://` or `https://`
/// and a host, no credentials, without spaces, quotes, `<`, `>`, `\`, `` ` `` or any of `refused`.
fn plain_web_url(value: &str, refused: &[char]) -> Option<reqwest::Url> {
    let plain = value.len() <= 2000
        && value.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`') && !refused.contains(&c)
        });
    let lower = value.to_ascii_lowercase();
    let after_scheme = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    if !plain || after_scheme.is_none_or(|rest| rest.starts_with('/')) {
        return None;
    }
    let url = reqwest::Url::parse(value).ok()?;
    let host = url.host_str().is_some_and(|host| !host.is_empty());
    (host && url.username().is_empty() && url.password().is_none()).then_some(url)
}

/// Whether `url`'s host is this machine (`localhost`, 127.0.0.0/8, `::1`; not `*.localhost`,
/// which a resolver may send elsewhere). The settings and `libero doctor` ask this.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Loads `./.env` (only the working directory's: searching parents surprises people) without
/// overriding variables that are already set. A missing file is fine; a broken one is an error.
pub fn load_dotenv() -> Result<(), ConfigError> {
    match dotenvy::from_path(".env") {
        Ok(()) => Ok(()),
        Err(dotenvy::Error::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(ConfigError::DotEnv(err.to_string())),
    }
}

/// Parses a bare number of seconds (`0` is zero) or a duration as `humantime` reads it in the units
/// `ms`, `s`, `m`, `h` and `d`: `8h`, `30m`, `60s`, `1500ms`, `1h30m`, `1h 30m`, `1.5h`, `1d`.
/// humantime's other units are refused: its `M` is months, so `30M` would turn the idle rule off.
pub fn parse_duration(input: &str) -> Option<Duration> {
    let input = input.trim();
    let mut units = input.split(|c: char| c.is_ascii_digit() || c == '.' || c == ' ').filter(|u| !u.is_empty());
    match input.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) if units.all(|unit| matches!(unit, "ms" | "s" | "m" | "h" | "d")) => {
            humantime::parse_duration(input).ok()
        }
        Err(_) => None,
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn loopback_urls_are_recognised() {
        for url in
            ["http://localhost:4010", "http://127.0.0.1", "http://127.1.2.3/x", "http://[::1]:8080", "HTTP://LOCALHOST"]
        {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "http://admin.example.com",
            "http://localhost.example.com",
            "http://10.0.0.1",
            "http://app.localhost",
            "not a url",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }

    #[test]
    fn durations_accept_hours_minutes_seconds_and_millis() {
        assert_eq!(parse_duration("8h"), Some(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 1h 30m "), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
    }

    #[test]
    fn durations_reject_garbage() {
        for bad in ["", "h", "8x", "-1s", "1,5h", "m30", "30 minutes ago", "30M", "1y", "2w", "5min"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn missing_secret_is_refused_with_the_documented_message() {
        let err = config(&[]).unwrap_err();
        assert!(err.to_string().starts_with("Missing SESSION_SECRET"), "{err}");
        assert!(err.to_string().contains("libero secret"));
    }

    #[test]
    fn short_secret_is_refused_with_the_documented_message() {
        let err = config(&[("SESSION_SECRET", "too-short")]).unwrap_err();
        assert!(err.to_string().starts_with("SESSION_SECRET must be at least 32 characters"), "{err}");
    }

    #[test]
    fn defaults_follow_the_architecture() {
        let c = config(&[("SESSION_SECRET", SECRET)]).unwrap();
        assert_eq!(c.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(c.session_ttl, Duration::from_secs(8 * 3600));
        assert_eq!(c.session_idle_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(c.session_touch_interval, Duration::from_secs(60));
        assert_eq!(c.commerce7_api_url, DEFAULT_COMMERCE7_API_URL);
        assert_eq!(c.commerce7_timeout, Duration::from_secs(5));
        assert!(c.cookie_secure);
        assert_eq!(c.frame_ancestors, vec![DEFAULT_FRAME_ANCESTORS.to_owned()]);
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn frame_ancestors_default_to_commerce7s_platform_not_every_commerce7_host() {
        let c = config(&[("SESSION_SECRET", SECRET)]).unwrap();
        assert_eq!(c.frame_ancestors, ["https://*.platform.commerce7.com"]);
        // The documented default is the same (docs/configuration.md's settings table, .env.example).
        let settings = include_str!("../../docs/configuration.md");
        assert!(settings.contains("| `FRAME_ANCESTORS` | `https://*.platform.commerce7.com` |"));
        let example = include_str!("../../.env.example");
        assert!(example.contains("FRAME_ANCESTORS=\"https://*.platform.commerce7.com "), "{example}");
        // Positive control: an explicit list still replaces it.
        let c = config(&[("SESSION_SECRET", SECRET), ("FRAME_ANCESTORS", "https://*.commerce7.com 'self'")]).unwrap();
        assert_eq!(c.frame_ancestors, ["https://*.commerce7.com", "'self'"]);
    }

    #[test]
    fn a_touch_interval_not_shorter_than_the_idle_timeout_is_refused() {
        let err =
            config(&[("SESSION_SECRET", SECRET), ("SESSION_IDLE_TIMEOUT", "1m"), ("SESSION_TOUCH_INTERVAL", "2m")])
                .unwrap_err();
        assert!(err.to_string().starts_with("SESSION_TOUCH_INTERVAL"), "{err}");
        let err = config(&[("SESSION_SECRET", SECRET), ("SESSION_TTL", "365d")]).unwrap_err();
        assert!(err.to_string().starts_with("SESSION_TTL"), "{err}");
    }

    #[test]
    fn zero_idle_timeout_disables_it() {
        let c = config(&[("SESSION_SECRET", SECRET), ("SESSION_IDLE_TIMEOUT", "0")]).unwrap();
        assert_eq!(c.session_idle_timeout, None);
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let err = config(&[("SESSION_SECRET", SECRET), ("SESSION_TTL", "forever")]).unwrap_err();
        assert!(err.to_string().starts_with("SESSION_TTL has an invalid value"), "{err}");
        let err = config(&[("SESSION_SECRET", SECRET), ("COOKIE_SECURE", "maybe")]).unwrap_err();
        assert!(err.to_string().starts_with("COOKIE_SECURE"), "{err}");
        let err = config(&[("SESSION_SECRET", SECRET), ("DATABASE_URL", "mysql://u:pw@h/db")]).unwrap_err();
        assert!(!err.to_string().contains("pw"), "the password must not be echoed: {err}");
        let err = config(&[("SESSION_SECRET", SECRET), ("COMMERCE7_USER", "winery:pasted-password")]).unwrap_err();
        assert!(err.to_string().starts_with("COMMERCE7_USER has an invalid value \"winery:…\""), "{err}");
        assert!(!err.to_string().contains("pasted-password"), "what follows the colon is not echoed: {err}");
        assert!(config(&[("SESSION_SECRET", SECRET), ("COMMERCE7_USER", "winery-callbacks")]).is_ok(), "control");
    }

    #[test]
    fn database_url_may_name_a_postgres_unix_socket() {
        // A PostgreSQL on the same machine, reached over its socket (docs/operations.md); the
        // same URL with another scheme is refused (the control).
        let socket = "postgres:///libero?host=/var/run/postgresql&user=libero";
        let c = config(&[("SESSION_SECRET", SECRET), ("DATABASE_URL", socket)]).unwrap();
        assert_eq!(c.database_url.expose(), socket);
        let refused = "mysql:///libero?host=/var/run/mysqld&user=libero";
        assert!(config(&[("SESSION_SECRET", SECRET), ("DATABASE_URL", refused)]).is_err());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = config(&[
            ("SESSION_SECRET", SECRET),
            ("COMMERCE7_PASSWORD", "hunter2-hunter2"),
            ("DATABASE_URL", "postgres://app:dbpass@db/libero"),
        ])
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains(SECRET));
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("dbpass"));
    }

    #[test]
    fn rate_limits_parse_counts_and_windows() {
        assert_eq!(RateLimit::parse("30/min"), Some(Some(RateLimit { count: 30, per: Duration::from_secs(60) })));
        assert_eq!(RateLimit::parse("5/s"), Some(Some(RateLimit { count: 5, per: Duration::from_secs(1) })));
        assert_eq!(RateLimit::parse("100/h"), Some(Some(RateLimit { count: 100, per: Duration::from_secs(3600) })));
        assert_eq!(RateLimit::parse("10/30s"), Some(Some(RateLimit { count: 10, per: Duration::from_secs(30) })));
        assert_eq!(RateLimit::parse("0"), Some(None));
        for bad in ["", "30", "0/min", "x/min", "5/fortnight"] {
            assert_eq!(RateLimit::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn operations_defaults() {
        let c = config(&[("SESSION_SECRET", SECRET)]).unwrap();
        assert_eq!(c.session_cleanup_interval, Some(Duration::from_secs(3600)));
        assert!(c.metrics_token.is_none());
        assert_eq!(c.rate_limit_sign_in, Some(RateLimit { count: 30, per: Duration::from_secs(60) }));
        assert_eq!(c.rate_limit_callbacks, Some(RateLimit { count: 60, per: Duration::from_secs(60) }));
        assert_eq!(c.trusted_proxy_hops, 0);
        let c = config(&[("SESSION_SECRET", SECRET), ("SESSION_CLEANUP_INTERVAL", "0")]).unwrap();
        assert_eq!(c.session_cleanup_interval, None);
    }

    /// `openssl rand -hex 32` output, as an operator would paste it.
    const STRONG_SECRET: &str = "9f2c4e7a1b8d3f60c5a94e2d7b1f08c3a6e5d4c2b19f7e8a0d3c6b5a4e2f1d09";

    /// A production configuration with good values.
    const PRODUCTION: [(&str, &str); 5] = [
        ("SESSION_SECRET", STRONG_SECRET),
        ("LEPTOS_ENV", "PROD"),
        ("COMMERCE7_USER", "winery-callbacks"),
        ("COMMERCE7_PASSWORD", "a-password-of-our-own-0123456789"),
        ("COMMERCE7_API_URL", "https://api.commerce7.com/v1"),
    ];

    fn production_with(overrides: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut vars: Vec<(&str, &str)> =
            PRODUCTION.iter().filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k)).copied().collect();
        vars.extend_from_slice(overrides);
        config(&vars)
    }

    #[test]
    fn a_production_configuration_with_good_values_parses() {
        let c = production_with(&[]).unwrap();
        assert!(c.cookie_secure);
        for env in ["prod", "Production", "PRODUCTION"] {
            production_with(&[("LEPTOS_ENV", env)]).unwrap();
        }
        production_with(&[("COMMERCE7_API_URL", "http://127.0.0.1:4010/v1")]).expect("loopback may be plain http");
        production_with(&[("COMMERCE7_API_URL", "http://localhost:4010/v1")]).expect("localhost too");
        production_with(&[("COMMERCE7_API_URL", "http://[::1]:4010/v1")]).expect("and ::1");
    }

    #[test]
    fn production_refuses_the_example_callback_password() {
        let err = production_with(&[("COMMERCE7_PASSWORD", EXAMPLE_CALLBACK_PASSWORD)]).unwrap_err();
        assert!(err.to_string().starts_with("COMMERCE7_PASSWORD is the example value"), "{err}");
        assert!(err.to_string().contains("set COMMERCE7_PASSWORD to a secret of your own"), "{err}");
        assert!(!err.to_string().contains(EXAMPLE_CALLBACK_PASSWORD), "the password is not echoed: {err}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }

    #[test]
    fn production_refuses_plain_http_to_commerce7_on_another_host() {
        for url in ["http://api.commerce7.com/v1", "http://10.0.0.5:4010/v1", "http://localhost.evil.example/v1"] {
            let err = production_with(&[("COMMERCE7_API_URL", url)]).unwrap_err();
            assert!(err.to_string().starts_with("COMMERCE7_API_URL uses plain http://"), "{url}: {err}");
            assert!(err.to_string().contains("set COMMERCE7_API_URL=https://"), "{err}");
        }
    }

    #[test]
    fn the_frame_script_is_commerce7s_by_default_off_when_empty_and_must_be_a_plain_url() {
        let c = config(&[("SESSION_SECRET", SECRET)]).unwrap();
        assert_eq!(c.commerce7_frame_script.as_deref(), Some(DEFAULT_COMMERCE7_FRAME_SCRIPT));
        let off = config(&[("SESSION_SECRET", SECRET), ("COMMERCE7_FRAME_SCRIPT", "")]).unwrap();
        assert_eq!(off.commerce7_frame_script, None, "set empty: no script");
        let local =
            config(&[("SESSION_SECRET", SECRET), ("COMMERCE7_FRAME_SCRIPT", "http://localhost:4010/v2/commerce7.js")]);
        assert_eq!(local.unwrap().commerce7_frame_script.as_deref(), Some("http://localhost:4010/v2/commerce7.js"));
        for bad in [
            "commerce7.js",
            "javascript:alert(1)",
            "https://x.example/a.js?x=1",
            "https://x.example/a\"b.js",
            "https://u:p@x.example/a.js",
            "https://x.example/a;b.js",
            "https://x.example/a,b.js",
            "https:///x.example/a.js",
        ] {
            let err = config(&[("SESSION_SECRET", SECRET), ("COMMERCE7_FRAME_SCRIPT", bad)]).unwrap_err();
            assert!(err.to_string().starts_with("COMMERCE7_FRAME_SCRIPT has an invalid value"), "{bad}: {err}");
        }
    }

    #[test]
    fn production_loads_the_frame_script_over_https_or_from_this_machine_only() {
        assert!(production_with(&[("COMMERCE7_FRAME_SCRIPT", "http://cdn.example/commerce7.js")]).is_err());
        assert!(production_with(&[("COMMERCE7_FRAME_SCRIPT", "HTTP://cdn.example/commerce7.js")]).is_err(), "any case");
        production_with(&[("COMMERCE7_FRAME_SCRIPT", "http://127.0.0.1:4010/v2/commerce7.js")]).expect("loopback");
        production_with(&[]).expect("control: the default is https");
    }

    #[test]
    fn support_url_is_optional_and_must_be_an_absolute_http_link() {
        assert_eq!(config(&[("SESSION_SECRET", SECRET)]).unwrap().support_url, None, "unset by default");
        assert_eq!(config(&[("SESSION_SECRET", SECRET), ("SUPPORT_URL", "  ")]).unwrap().support_url, None, "blank");
        for url in [
            "https://example.com/libero/help",
            "https://help.example.com/libero?topic=sign-in&lang=en#top",
            "HTTPS://EXAMPLE.COM/",
            "http://localhost:8080/help",
        ] {
            let c =
                config(&[("SESSION_SECRET", SECRET), ("SUPPORT_URL", url)]).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(c.support_url.as_deref(), Some(url), "kept as given");
        }
        let trimmed = config(&[("SESSION_SECRET", SECRET), ("SUPPORT_URL", " https://example.com/help\n")]).unwrap();
        assert_eq!(trimmed.support_url.as_deref(), Some("https://example.com/help"));
        for url in [
            "example.com/help",
            "/help",
            "javascript:alert(1)",
            "ftp://example.com/help",
            "mailto:help@example.com",
            "https://",
            "https:///path",
            "https://user:pass@example.com/help",
            "https://example.com/a b",
            r#"https://example.com/"onmouseover="x"#,
            "https://example.com/<script>",
            "https://exa mple.com/",
        ] {
            let err = config(&[("SESSION_SECRET", SECRET), ("SUPPORT_URL", url)]).unwrap_err();
            assert!(err.to_string().starts_with("SUPPORT_URL has an invalid value"), "{url}: {err}");
            assert!(err.to_string().contains("https://"), "says what to set: {err}");
        }
    }

    #[test]
    fn production_accepts_only_an_https_support_url() {
        let c = production_with(&[("SUPPORT_URL", "https://example.com/libero/help")]).unwrap();
        assert_eq!(c.support_url.as_deref(), Some("https://example.com/libero/help"));
        assert_eq!(production_with(&[]).unwrap().support_url, None, "optional in production too");
        for url in ["http://example.com/help", "http://localhost:8080/help", "http://127.0.0.1/help"] {
            let err = production_with(&[("SUPPORT_URL", url)]).unwrap_err();
            assert!(err.to_string().starts_with("SUPPORT_URL is a plain http:// link"), "{url}: {err}");
            assert!(err.to_string().contains("set SUPPORT_URL to an https:// address"), "{err}");
        }
    }

    #[test]
    fn production_refuses_cookie_secure_false() {
        let err = production_with(&[("COOKIE_SECURE", "false")]).unwrap_err();
        assert!(err.to_string().starts_with("COOKIE_SECURE is false"), "{err}");
        assert!(err.to_string().contains("set COOKIE_SECURE=true"), "{err}");
    }

    #[test]
    fn development_keeps_accepting_development_values() {
        for env in [None, Some("DEV"), Some("development")] {
            let mut vars = vec![
                ("SESSION_SECRET", SECRET),
                ("COMMERCE7_PASSWORD", EXAMPLE_CALLBACK_PASSWORD),
                ("COMMERCE7_API_URL", "http://fake-c7.internal:4010/v1"),
                ("COOKIE_SECURE", "false"),
            ];
            vars.extend(env.map(|e| ("LEPTOS_ENV", e)));
            config(&vars).unwrap_or_else(|e| panic!("{env:?}: {e}"));
        }
    }

    #[test]
    fn the_refused_example_password_is_the_one_in_env_example() {
        let example = include_str!("../../.env.example");
        assert!(example.lines().any(|l| l == format!("COMMERCE7_PASSWORD={EXAMPLE_CALLBACK_PASSWORD}")));
    }

    #[test]
    fn the_entropy_estimate_counts_classes_and_a_repeated_pattern_once() {
        let bits = |s: &str| estimated_entropy_bits(s);
        assert!((bits("abc") - 3.0 * 26f64.log2()).abs() < 1e-9);
        assert!((bits("aB3!") - 4.0 * 95f64.log2()).abs() < 1e-9, "every ASCII class: 95 printable");
        assert_eq!(bits("abcabcabcabc"), bits("abc"));
        assert_eq!(bits("abcabcab"), bits("abc"), "a truncated repetition too");
        assert_eq!(bits(&"a".repeat(64)), 26f64.log2(), "one repeated character counts once");
        assert_eq!(bits(""), 0.0);
        assert!(bits("é") <= 10.0 + 1e-9, "non-ASCII is bounded");
        // `openssl rand -base64 32` output passes too.
        assert!(bits("q3L7v0f+T8yGkB2mZc9XwR4dHs1NaPeJ6uYtVx5oQiE=") >= MIN_SECRET_BITS);
    }

    #[test]
    fn libero_secret_and_openssl_rand_hex_32_always_pass_in_production() {
        for _ in 0..2_000 {
            let secret = crate::server::cli::new_secret();
            assert!(estimated_entropy_bits(&secret) >= MIN_SECRET_BITS, "{secret}");
            production_with(&[("SESSION_SECRET", &secret)]).unwrap_or_else(|e| panic!("{secret}: {e}"));
        }
        // `openssl rand -hex 32` prints the same form: real outputs of it, and random hex strings
        // of the least favourable kinds (digits only, letters only: the smallest alphabets).
        for secret in [
            STRONG_SECRET,
            "b8478a7cb0997336727b1506e7d4fc22ff0577057fa197807579bd205258d19f",
            "f712686bcad5cfafb9d3ec34d9d321bf79c4416ce5d750588503952ad0f80539",
            "6963332745780042862228514821952372348219917292867054584511773324",
            "affabacdaebaeebdbaafeceebeddceeecbffcafacdbefbfaffcbfbfccdaeffcb",
        ] {
            assert!(estimated_entropy_bits(secret) >= MIN_SECRET_BITS, "{secret}");
            production_with(&[("SESSION_SECRET", secret), ("METRICS_TOKEN", secret)])
                .unwrap_or_else(|e| panic!("{secret}: {e}"));
        }
    }

    #[test]
    fn production_refuses_a_guessable_session_secret_or_metrics_token() {
        let repeated_a = "a".repeat(32);
        let repeated_abcd = "abcd".repeat(8);
        let weak_secrets = [
            repeated_a.as_str(),
            repeated_abcd.as_str(),
            "0123456789abcdef0123456789abcdef",
            "passwordpasswordpasswordpassword",
            "Password1Password1Password1Password1",
        ];
        for weak in weak_secrets {
            let err = production_with(&[("SESSION_SECRET", weak)]).unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with("SESSION_SECRET is too easy to guess for production"), "{weak}: {message}");
            assert!(message.contains("`libero secret`") && message.contains("openssl rand -hex 32"), "{message}");
            assert!(!message.contains(weak) && !message.contains('\n'), "one line, value not echoed: {message}");
        }
        // The message docs/operations.md shows.
        let err = production_with(&[("SESSION_SECRET", "0123456789abcdef0123456789abcdef")]).unwrap_err();
        assert!(err.to_string().contains("about 82 bits of entropy, at least 128 needed"), "{err}");
        for weak in ["metrics-token", "scrape-secret", "hunter2", "tokentokentokentokentokentokentoken"] {
            let err = production_with(&[("METRICS_TOKEN", weak)]).unwrap_err();
            assert!(err.to_string().starts_with("METRICS_TOKEN is too easy to guess"), "{weak}: {err}");
            assert!(!err.to_string().contains(weak), "{err}");
        }
        // Positive controls: strong values pass, and without METRICS_TOKEN there is nothing to judge.
        production_with(&[("METRICS_TOKEN", STRONG_SECRET)]).expect("a strong metrics token");
        assert!(production_with(&[]).unwrap().metrics_token.is_none());
    }

    #[test]
    fn outside_production_a_guessable_secret_still_starts() {
        let repeated = "abcd".repeat(8);
        for env in [None, Some("DEV"), Some("development")] {
            let mut vars = vec![("SESSION_SECRET", repeated.as_str()), ("METRICS_TOKEN", "metrics-token")];
            vars.extend(env.map(|e| ("LEPTOS_ENV", e)));
            config(&vars).unwrap_or_else(|e| panic!("{env:?}: {e}"));
        }
    }

    #[test]
    fn a_binary_with_bench_routes_refuses_production_in_one_line() {
        let err = refuse_bench_routes(true, true).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("`bench` feature") && message.contains("LEPTOS_ENV=PROD"), "{message}");
        assert!(message.contains("make release"), "says what to deploy: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
        // Positive controls: production without the routes, and the bench build outside production.
        refuse_bench_routes(true, false).expect("a release build starts in production");
        refuse_bench_routes(false, true).expect("a bench build starts outside production");
        refuse_bench_routes(false, false).expect("a development build starts");
    }

    #[test]
    fn this_build_is_refused_in_production_exactly_when_it_has_the_bench_routes() {
        let started = production_with(&[]);
        if HAS_BENCH_ROUTES {
            assert_eq!(started.unwrap_err(), ConfigError::BenchBuildInProduction);
        } else {
            started.expect("this test build has no bench routes: production starts");
        }
        let development = config(&[("SESSION_SECRET", SECRET), ("LEPTOS_ENV", "DEV")]);
        development.expect("outside production every build starts");
    }

    #[test]
    fn trailing_slash_is_removed_from_the_commerce7_url() {
        let c = config(&[("SESSION_SECRET", SECRET), ("COMMERCE7_API_URL", "http://127.0.0.1:9/v1/")]).unwrap();
        assert_eq!(c.commerce7_api_url, "http://127.0.0.1:9/v1");
    }
}
