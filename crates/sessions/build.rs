//! `sqlx::migrate!` (src/db.rs) embeds the repository's `migrations/` when the crate compiles:
//! rebuild it whenever a migration is added or changed, not only when some Rust file changes.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
