//! Everything that only runs on the server: settings, database, HTTP stack, CLI.
//!
//! [`state`] is low (what every request shares); [`startup`] is the top, the only place that wires
//! the modules together into the HTTP application.

#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod commerce7;
pub mod config;
pub mod csp;
pub mod delivery;
pub mod doctor;
pub mod error_page;
pub mod http;
pub mod import;
pub mod metrics;
pub mod ratelimit;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod terminal;
pub mod webhooks;

pub use libero_sessions::{clients, db};
