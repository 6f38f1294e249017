//! The real `libero` binary as a child process: it binds port 0 itself (no race on a port freed
//! by the test), reports the address in its start-up log line, is killed when the handle is
//! dropped (a panicking test leaks no server), and every wait is bounded.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// How long start-up and shutdown may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running `libero serve` with JSON logs, its stdout lines collected as they come.
pub struct ChildServer {
    child: Child,
    pub base: String,
    lines: Arc<Mutex<Vec<String>>>,
    /// Set by the reader thread when stdout reaches its end.
    drained: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl ChildServer {
    /// Starts the binary from an empty temporary directory (no `.env`) against a fresh SQLite
    /// file, with only the environment given here, and waits until it listens.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_libero"));
        command
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SESSION_SECRET", super::TEST_SECRET)
            .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("app.db").display()))
            .env("LEPTOS_OUTPUT_NAME", "libero")
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("LEPTOS_SITE_ROOT", dir.path())
            .env("COOKIE_SECURE", "false")
            .env("COMMERCE7_USER", super::CALLBACK_USER)
            .env("COMMERCE7_PASSWORD", super::CALLBACK_PASSWORD)
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("libero starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let drained = Arc::new(AtomicBool::new(false));
        let (sink, done) = (lines.clone(), drained.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
            done.store(true, Ordering::Release);
        });
        let mut server = Self { child, base: String::new(), lines, drained, _dir: dir };
        server.base = format!("http://{}", server.listening_address().await);
        server
    }

    /// The address from the "Libero is listening" line.
    async fn listening_address(&mut self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self.lines().iter().find_map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).ok()?;
                (value["message"] == "Libero is listening")
                    .then(|| value["address"].as_str().or(value["fields"]["address"].as_str()).map(str::to_owned))
                    .flatten()
            });
            if let Some(address) = found {
                return address;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("libero exited during start-up ({status}); output:\n{}", self.lines().join("\n"));
            }
            assert!(Instant::now() < deadline, "libero did not listen within {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process id (the soak test reads the server's memory from `/proc/<pid>`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Sends SIGTERM, as an orchestrator stopping the container does.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM");
    }

    /// Waits (bounded) for the process to exit, then for its last log lines.
    pub async fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "libero did not exit within {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        while !self.drained.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "libero's output did not end within {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        status
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a one-shot `libero` command (`migrate`, `sessions …`) from an empty directory with
/// nothing but `PATH`, `DATABASE_URL`, `env` and, when given, a `.env` file with `dotenv`.
pub fn run_libero(
    args: &[&str],
    database_url: &str,
    env: &[(&str, &str)],
    dotenv: Option<&str>,
) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    if let Some(contents) = dotenv {
        std::fs::write(dir.path().join(".env"), contents).unwrap();
    }
    Command::new(env!("CARGO_BIN_EXE_libero"))
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}
