//! Sessions on the web: the signed cookie and the guard, over the session core
//! ([`libero_sessions`], re-exported here: the store, the tokens, the lists).

pub mod cookie;
pub mod guard;

pub use cookie::{SessionCookies, session_layer};
pub use guard::{Credential, CurrentSession, TabBootstrap, csrf_guard, session_guard};
pub use libero_sessions::*;
