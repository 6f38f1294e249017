//! Logging set-up: `RUST_LOG` filters, `LOG_FORMAT=json` switches to JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, fmt::MakeWriter, prelude::*};

use super::config::LogFormat;

/// Installs the global subscriber once, writing to standard output. Later calls (tests) are
/// ignored. Text lines are coloured only on a terminal: a log file or collector gets plain text.
pub fn init(format: LogFormat) {
    init_with_writer(format, std::io::stdout, std::io::stdout().is_terminal());
}

/// [`init`] with another destination (the stack benchmark logs exactly as the server does, to
/// `std::io::sink`), coloured or not.
pub fn init_with_writer<W>(format: LogFormat, writer: W, ansi: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,leptos_axum=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Text => {
            registry.with(fmt::layer().with_target(false).with_ansi(ansi).with_writer(writer)).try_init()
        }
    };
}
