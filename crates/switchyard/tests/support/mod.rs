//! The real `switchyard` binary run as a user runs it, for the provider login tests: a temp HOME
//! with a config (mock `upstream-urls`) and the auth dir inside it, piped stdio, every wait
//! bounded. Shared by `provider_logins_cli.rs` and `provider_imports_cli.rs`.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Bound on every wait for the child: a broken build fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A temp HOME holding `config.yaml` and the auth dir `auths/`.
pub struct Home {
    pub dir: TempDir,
    pub config: PathBuf,
}

impl Home {
    /// `yaml` is appended to the config (mock `upstream-urls`, `oauth-callback-ports`, ...).
    pub fn new(yaml: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        let text = format!("port: 8317\nauth-dir: {}\n{yaml}", dir.path().join("auths").display());
        std::fs::write(&config, text).unwrap();
        Home { dir, config }
    }

    pub fn auth_dir(&self) -> PathBuf {
        self.dir.path().join("auths")
    }

    /// Every file in the auth dir with its bytes, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let Ok(entries) = std::fs::read_dir(self.auth_dir()) else { return Vec::new() };
        let mut files: Vec<(String, Vec<u8>)> = entries
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    }

    /// The names of the `.json` files in the auth dir, sorted.
    pub fn auth_files(&self) -> Vec<String> {
        self.snapshot().into_iter().map(|(name, _)| name).filter(|n| n.ends_with(".json")).collect()
    }

    /// Writes `content` as `relative` under HOME (parents created) and returns its path.
    pub fn write(&self, relative: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Starts `switchyard --config <config> <args>` with piped stdin, stdout and stderr.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("MANAGEMENT_PASSWORD")
            .env_remove("RUST_LOG")
            .env_remove("IFLOW_CLIENT_SECRET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Running { child, stdout, seen: String::new() }
    }

    /// Runs `switchyard <args>` to the end with `stdin` as its input (then end of input).
    pub async fn run(&self, args: &[&str], stdin: &str) -> Finished {
        let mut running = self.spawn(args);
        if !stdin.is_empty() {
            running.type_text(stdin).await;
        }
        drop(running.child.stdin.take());
        running.finish().await
    }

    /// The saved file `name`: checks the "saved to <path>" line, mode 0600 and returns its JSON.
    pub fn saved(&self, finished: &Finished, name: &str) -> Value {
        let path = self.auth_dir().join(name);
        let line = format!("Credential saved to {}", path.display());
        assert!(finished.stdout.contains(&line), "stdout lacks {line:?}:\n{finished}");
        let mode = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{name}: {e}\n{finished}")).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name} has mode {:o}", mode & 0o777);
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }
}

/// A running `switchyard`; killed when dropped.
pub struct Running {
    pub child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Stdout read so far.
    pub seen: String,
}

impl Running {
    /// Reads stdout up to the first line starting with `prefix` and returns that line.
    pub async fn line_starting(&mut self, prefix: &str) -> String {
        self.line_where(&format!("starting with {prefix:?}"), |line| line.starts_with(prefix)).await
    }

    /// Reads stdout up to the first line containing `needle` and returns that line.
    pub async fn line_containing(&mut self, needle: &str) -> String {
        self.line_where(&format!("containing {needle:?}"), |line| line.contains(needle)).await
    }

    async fn line_where(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let read = async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                self.seen.push_str(&line);
                self.seen.push('\n');
                if matches(&line) {
                    return Some(line);
                }
            }
            None
        };
        let found = tokio::time::timeout(DEADLINE, read).await.unwrap_or_else(|_| panic!("no line {what} in time"));
        match found {
            Some(line) => line,
            None => {
                let finished = self.finish().await;
                panic!("exited before printing a line {what}:\n{finished}")
            }
        }
    }

    /// The user code a device login shows (`Code: <code>`).
    pub async fn user_code(&mut self) -> String {
        self.line_starting("Code: ").await.trim_start_matches("Code: ").trim().to_owned()
    }

    /// The URL a browser login asks to open.
    pub async fn url(&mut self) -> String {
        self.line_starting("http").await
    }

    /// Types `text` into the process's stdin.
    pub async fn type_text(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin is open");
        stdin.write_all(text.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Types `line` and Enter.
    pub async fn type_line(&mut self, line: &str) {
        self.type_text(&format!("{line}\n")).await;
    }

    /// Waits (bounded) for the process to exit; returns all of its output.
    pub async fn finish(&mut self) -> Finished {
        let status =
            tokio::time::timeout(DEADLINE, self.child.wait()).await.expect("switchyard did not exit in time").unwrap();
        let mut stdout = std::mem::take(&mut self.seen);
        while let Some(line) = self.stdout.next_line().await.unwrap() {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).await.unwrap();
        }
        Finished { status, stdout, stderr }
    }
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn assert_exit(&self, code: i32) {
        assert_eq!(self.status.code(), Some(code), "expected exit {code}\n{self}");
    }

    /// Whether `needle` shows anywhere in stdout or stderr.
    pub fn shows(&self, needle: &str) -> bool {
        self.stdout.contains(needle) || self.stderr.contains(needle)
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status: {}\nstdout:\n{}\nstderr:\n{}", self.status, self.stdout, self.stderr)
    }
}

/// The query parameter `key` of `url`.
pub fn param(url: &str, key: &str) -> Option<String> {
    reqwest::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A browser on this machine: follows the redirects (to the CLI's listener); the final page.
pub async fn open_in_browser(url: &str) -> (u16, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let page = client.get(url).send().await.unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

/// A browser that stops at the login's redirect: the URL the user copies from the address bar.
pub async fn location_after_login(url: &str) -> String {
    let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302, "{url}");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The keys of a JSON object, in file order.
pub fn keys(value: &Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}
