//! The `libero` server binary.

/// mimalloc instead of the system allocator: measured in `bench/profile.md` (The allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    libero::server::cli::run().await
}
