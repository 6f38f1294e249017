//! The `libero` server binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    libero::server::cli::run().await
}
