//! The real `switchyard` binary as a child process: temp config and auth dir, a Claude OAuth
//! account valid for a day, upstream URLs on the mock, and its CPU time and RSS from `/proc`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tempfile::TempDir;

pub const MODEL: &str = "claude-sonnet-4-5";
const STARTUP: Duration = Duration::from_secs(30);

/// The workspace root (the bench lives in `<root>/bench`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ has a parent").to_path_buf()
}

/// `<target>/release/switchyard`, honouring `CARGO_TARGET_DIR`.
pub fn default_binary() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    target.join("release").join("switchyard")
}

/// `cargo build --release -p switchyard` (a no-op when it is up to date).
pub fn build_release() -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release -p switchyard");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "switchyard"])
        .current_dir(workspace_root())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release -p switchyard failed ({status})");
    }
    Ok(())
}

/// A running gateway; killed on drop, its temp dir removed.
pub struct Gateway {
    child: Child,
    pub base: String,
    pub pid: u32,
    /// When the process was started.
    pub started: Instant,
    /// The gateway's auth dir (the floor proxy has none: an empty path).
    pub auth_dir: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| path.display().to_string())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

impl Gateway {
    /// `extra_yaml` is appended to the config (the burst mode's `usage-store` and management key).
    pub fn spawn(binary: &Path, upstream_urls_yaml: &str, extra_yaml: &str) -> anyhow::Result<Gateway> {
        Self::spawn_with(binary, upstream_urls_yaml, extra_yaml, |auth_dir| {
            let expired = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
            let account = json!({
                "type": "claude", "email": "bench@example.com", "access_token": "bench-access-token",
                "refresh_token": "bench-refresh-token", "expired": expired,
            });
            write_private(&auth_dir.join("claude-bench@example.com.json"), &serde_json::to_vec_pretty(&account)?)
        })
    }

    /// [`Gateway::spawn`] with the auth dir filled by `fill_auth_dir` instead of the one account.
    pub fn spawn_with(
        binary: &Path,
        upstream_urls_yaml: &str,
        extra_yaml: &str,
        fill_auth_dir: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<Gateway> {
        if !binary.is_file() {
            bail!("{} not found: build it with `cargo build --release -p switchyard`", binary.display());
        }
        let dir = tempfile::tempdir()?;
        let auth_dir = dir.path().join("auths");
        std::fs::create_dir_all(&auth_dir)?;
        std::fs::set_permissions(&auth_dir, std::fs::Permissions::from_mode(0o700))?;
        fill_auth_dir(&auth_dir)?;

        let port = free_port()?;
        let config = dir.path().join("config.yaml");
        let yaml = format!(
            "host: 127.0.0.1\nport: {port}\nauth-dir: {}\n{upstream_urls_yaml}{extra_yaml}",
            auth_dir.display()
        );
        write_private(&config, yaml.as_bytes())?;

        let mut command = Command::new(binary);
        command.arg("--config").arg(&config);
        launch(command, dir, port, auth_dir).with_context(|| format!("cannot start {}", binary.display()))
    }

    /// The floor proxy (`switchyard-bench floor-proxy`) in front of `upstream`, launched like the
    /// gateway (same pinning, same trusted CA).
    pub fn spawn_floor(upstream: &str) -> anyhow::Result<Gateway> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut command = Command::new(std::env::current_exe()?);
        command.arg(crate::floor::SUBCOMMAND).arg(port.to_string()).arg(upstream);
        launch(command, dir, port, PathBuf::new()).context("cannot start the floor proxy")
    }

    /// Waits for `/healthz`, then for a real request to be served by the account.
    pub async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        let probe = json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("switchyard exited early with {status}:\n{}", self.log_tail());
            }
            let last = match client.post(format!("{}/v1/messages", self.base)).json(&probe).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => format!("HTTP {}: {}", response.status(), response.text().await.unwrap_or_default()),
                Err(error) => error.to_string(),
            };
            if Instant::now() > deadline {
                bail!("switchyard not ready after {STARTUP:?} (last: {last}):\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of the gateway's stderr (warnings and errors only: `RUST_LOG=warn`).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Number of warning/error lines the gateway logged so far.
    pub fn log_lines(&self) -> usize {
        std::fs::read_to_string(&self.log).map(|t| t.lines().count()).unwrap_or(0)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// How every child (gateway or floor proxy) is started: the CPU it is pinned to and the CA file
/// it trusts. Set once by `main` before the first spawn.
#[derive(Clone, Default)]
pub struct ChildSettings {
    pub cpu: Option<usize>,
    pub ca_file: Option<PathBuf>,
}

static CHILD_SETTINGS: std::sync::OnceLock<ChildSettings> = std::sync::OnceLock::new();

pub fn set_child_settings(settings: ChildSettings) {
    let _ = CHILD_SETTINGS.set(settings);
}

/// Starts `command` with the bench's environment (`RUST_LOG=warn`, no proxies, the bench CA, the
/// pinned CPU), stderr to `dir/child.log`.
fn launch(mut command: Command, dir: TempDir, port: u16, auth_dir: PathBuf) -> anyhow::Result<Gateway> {
    let settings = CHILD_SETTINGS.get().cloned().unwrap_or_default();
    let log = dir.path().join("child.log");
    command
        .env("HOME", dir.path())
        .env("RUST_LOG", "warn")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("MANAGEMENT_PASSWORD")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        command.env_remove(proxy);
    }
    if let Some(ca_file) = &settings.ca_file {
        command.env("SSL_CERT_FILE", ca_file);
    }
    if let Some(cpu) = settings.cpu {
        use std::os::unix::process::CommandExt;
        // SAFETY: sched_setaffinity is async-signal-safe; only the child's own mask changes.
        unsafe {
            command.pre_exec(move || crate::pin::to_cpu(cpu));
        }
    }
    let started = Instant::now();
    let child = command.spawn()?;
    let pid = child.id();
    Ok(Gateway { child, base: format!("http://127.0.0.1:{port}"), pid, started, auth_dir, log, _dir: dir })
}

/// User + system CPU time of `pid` so far (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    stat_cpu_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User + system CPU of the threads of `pid` named `name` (`/proc/<pid>/task/*/comm`), e.g. the
/// records writer `usage-store`; `None` when no such thread runs.
pub fn thread_cpu_time(pid: u32, name: &str) -> Option<Duration> {
    let mut total = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name
            && let Some(cpu) = std::fs::read_to_string(task.path().join("stat")).ok().and_then(|s| stat_cpu_time(&s))
        {
            total = Some(total.unwrap_or(Duration::ZERO) + cpu);
        }
    }
    total
}

/// utime + stime of one `/proc/.../stat` line.
fn stat_cpu_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces; the fields after it start past its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as u64 } else { 100 };
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / ticks))
}

/// Resident set size of `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_counters_of_this_process_are_read() {
        let pid = std::process::id();
        // Burn a little CPU so the counter is not zero.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        assert!(cpu_time(pid).is_some_and(|t| t > Duration::ZERO));
        assert!(rss_kib(pid).is_some_and(|k| k > 0));
        assert_eq!(cpu_time(u32::MAX), None);
    }
}
