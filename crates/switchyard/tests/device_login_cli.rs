//! `switchyard login kimi` (a device login) and `switchyard providers`, from the real binary,
//! against the mock Kimi server served by this test's runtime. HOME, config and auth dir live in
//! a temp dir. Waits are bounded; no sleep is an assertion.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use switchyard_providers::Registry;
use switchyard_testkit::kimi::{DeviceAnswer, MockKimi, VERIFICATION_URI};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Bound on every wait for the child: a broken build fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(60);

/// A temp HOME with a config pointing Kimi at the mock and the auth dir inside it.
struct Home {
    dir: TempDir,
    config: PathBuf,
}

impl Home {
    fn new(mock: &MockKimi) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        let yaml =
            format!("port: 8317\nauth-dir: {}\n{}", dir.path().join("auths").display(), mock.upstream_urls_yaml());
        std::fs::write(&config, yaml).unwrap();
        Home { dir, config }
    }

    fn auth_dir(&self) -> PathBuf {
        self.dir.path().join("auths")
    }

    fn auth_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.auth_dir()) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        names
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self.command(args).spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Running { child, stdout, seen: String::new() }
    }

    async fn run(&self, args: &[&str]) -> Finished {
        self.spawn(args).finish().await
    }
}

struct Running {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    seen: String,
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl Running {
    /// Reads stdout up to (and including) the first line starting with `prefix`.
    async fn read_until(&mut self, prefix: &str) -> String {
        let read = async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                self.seen.push_str(&line);
                self.seen.push('\n');
                if line.starts_with(prefix) {
                    return true;
                }
            }
            false
        };
        let found = tokio::time::timeout(DEADLINE, read).await.expect("no output in time");
        if !found {
            let finished = self.finish().await;
            panic!("exited ({}) before printing {prefix:?}: {}{}", finished.status, finished.stdout, finished.stderr);
        }
        self.seen.clone()
    }

    async fn finish(&mut self) -> Finished {
        let status =
            tokio::time::timeout(DEADLINE, self.child.wait()).await.expect("switchyard did not exit in time").unwrap();
        let mut stdout = std::mem::take(&mut self.seen);
        while let Some(line) = self.stdout.next_line().await.unwrap() {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
        Finished { status, stdout, stderr }
    }
}

#[tokio::test]
async fn a_device_login_prints_the_code_and_uri_and_saves_the_file() {
    let mock = MockKimi::start().await;
    mock.set_device_timing(900, 1);
    mock.set_answers(&[DeviceAnswer::Pending, DeviceAnswer::Approve]);
    let home = Home::new(&mock);
    let finished = home.run(&["login", "kimi", "--no-browser"]).await;
    assert_eq!(finished.code(), Some(0), "{}{}", finished.stdout, finished.stderr);

    let polls = mock.requests_to(switchyard_testkit::kimi::TOKEN_PATH);
    let code = polls[0].form_value("device_code").unwrap();
    let out = &finished.stdout;
    let user_code = out.lines().find_map(|l| l.strip_prefix("Code: ")).expect("the user code is printed").to_owned();
    let uri = format!("{VERIFICATION_URI}?user_code={user_code}");
    assert!(out.lines().any(|l| l.trim() == uri), "the complete verification URI is printed:\n{out}");
    assert!(out.contains("The code expires in 15:00."), "{out}");
    assert!(!out.contains('\u{2588}'), "no QR code on a pipe without --qr");
    assert!(!out.contains(&code) && !finished.stderr.contains(&code), "the device code is a secret");

    let files = home.auth_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let path = home.auth_dir().join(&files[0]);
    assert!(out.contains(&format!("Credential saved to {}", path.display())), "{out}");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved["type"], "kimi");
    assert_eq!(files[0], format!("kimi-{}.json", saved["timestamp"]));
    assert!(saved["access_token"].as_str().unwrap().starts_with("mock-kimi-at-"));
}

#[tokio::test]
async fn qr_on_request_and_the_device_flag_pick_the_device_method() {
    let mock = MockKimi::start().await;
    mock.set_device_timing(600, 1);
    let home = Home::new(&mock);
    let finished = home.run(&["login", "kimi", "--device", "--qr", "--no-browser"]).await;
    assert_eq!(finished.code(), Some(0), "{}{}", finished.stdout, finished.stderr);
    assert!(finished.stdout.contains("Or scan it:"), "{}", finished.stdout);
    let blocks = finished.stdout.lines().filter(|l| l.contains('\u{2588}') || l.contains('\u{2580}')).count();
    assert!(blocks > 10, "a QR code of half blocks:\n{}", finished.stdout);
    assert!(finished.stdout.contains("The code expires in 10:00."), "{}", finished.stdout);
}

#[tokio::test]
async fn an_expired_code_exits_4_and_a_denial_exits_5_without_saving() {
    let mock = MockKimi::start().await;
    mock.set_device_timing(600, 1);
    let home = Home::new(&mock);

    mock.set_answers(&[DeviceAnswer::Pending, DeviceAnswer::Expire]);
    let expired = home.run(&["login", "kimi", "--no-browser"]).await;
    assert_eq!(expired.code(), Some(4), "{}{}", expired.stdout, expired.stderr);
    assert!(
        expired.stderr.contains("Login failed: device code expired before the login was confirmed"),
        "{}",
        expired.stderr
    );

    mock.set_answers(&[DeviceAnswer::Deny]);
    let denied = home.run(&["login", "kimi", "--no-browser"]).await;
    assert_eq!(denied.code(), Some(5), "{}{}", denied.stdout, denied.stderr);
    assert!(denied.stderr.contains("Authentication failed: the user denied the device login"), "{}", denied.stderr);
    assert!(home.auth_files().is_empty());
}

#[tokio::test]
async fn ctrl_c_cancels_the_device_login_with_exit_5_and_saves_nothing() {
    let mock = MockKimi::start().await;
    mock.set_device_timing(600, 1);
    mock.set_answers(&[DeviceAnswer::Pending]);
    let home = Home::new(&mock);
    let mut login = home.spawn(&["login", "kimi", "--no-browser"]);
    login.read_until("The code expires").await;
    let pid = login.child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let finished = login.finish().await;
    assert_eq!(finished.code(), Some(5), "{}{}", finished.stdout, finished.stderr);
    assert!(finished.stderr.contains("Login failed: login cancelled"), "{}", finished.stderr);
    assert!(home.auth_files().is_empty());
}

#[tokio::test]
async fn usage_errors_exit_2_and_name_what_is_valid() {
    let mock = MockKimi::start().await;
    let home = Home::new(&mock);

    let unknown_method = home.run(&["login", "kimi", "--method", "browser"]).await;
    assert_eq!(unknown_method.code(), Some(2));
    assert!(
        unknown_method.stderr.contains("unknown login method `browser` for kimi; use: device"),
        "{}",
        unknown_method.stderr
    );

    let foreign_flag = home.run(&["login", "kimi", "--project-id", "p-1"]).await;
    assert_eq!(foreign_flag.code(), Some(2));
    assert!(
        foreign_flag.stderr.contains("--project-id is not an option of `kimi --method device`; it takes no options"),
        "{}",
        foreign_flag.stderr
    );

    let unknown = home.run(&["login", "nope"]).await;
    assert_eq!(unknown.code(), Some(2));
    assert!(unknown.stderr.contains("unknown provider `nope`; available: "), "{}", unknown.stderr);
    assert!(unknown.stderr.contains("kimi"), "{}", unknown.stderr);
    assert_eq!(mock.requests().len(), 0, "usage errors reach no provider");

    // A provider that is down is a provider error, not a usage error.
    mock.set_fault(switchyard_testkit::kimi::Fault::DeviceEndpointDown);
    let down = home.run(&["login", "kimi", "--no-browser"]).await;
    assert_eq!(down.code(), Some(3), "{}{}", down.stdout, down.stderr);
    assert!(down.stderr.contains("device authorization endpoint answered HTTP 503"), "{}", down.stderr);
}

#[tokio::test]
async fn providers_json_lists_every_builtin_provider_with_its_logins_and_endpoints() {
    let mock = MockKimi::start().await;
    let home = Home::new(&mock);
    let finished = home.run(&["providers", "--json"]).await;
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    let body: Value = serde_json::from_str(&finished.stdout).unwrap();
    let providers = body["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 11, "the eleven built-in providers");

    let expected = Registry::new(&Default::default()).capabilities();
    assert_eq!(providers.len(), expected.len());
    for (entry, capability) in providers.iter().zip(&expected) {
        assert_eq!(entry["id"], capability.id.as_str());
        let logins: Vec<(String, String)> = entry["logins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["login"].as_str().unwrap().to_owned(), l["method"].as_str().unwrap().to_owned()))
            .collect();
        let want: Vec<(String, String)> =
            capability.logins.iter().map(|l| (l.login.clone(), l.method.clone())).collect();
        assert_eq!(logins, want, "{}", capability.id);
        let endpoints: Vec<&str> =
            entry["endpoints"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        let want: Vec<&str> = capability.endpoints.iter().map(|e| e.name).collect();
        assert_eq!(endpoints, want, "{}", capability.id);
    }
    let kimi = providers.iter().find(|p| p["id"] == "kimi").unwrap();
    assert_eq!(kimi["logins"][0]["cli"], "switchyard login kimi --method device");
    let names: Vec<&str> = kimi["endpoints"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["device", "token", "api", "usage"]);

    let table = home.run(&["providers"]).await;
    assert_eq!(table.code(), Some(0));
    assert!(table.stdout.contains("kimi — Kimi"), "{}", table.stdout);
    assert!(table.stdout.contains("upstream-urls.kimi.device"), "{}", table.stdout);
}

#[test]
fn login_help_lists_every_login_from_the_registry() {
    let output = std::process::Command::new(BIN).args(["login", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for provider in switchyard_providers::all() {
        for method in provider.login_methods() {
            assert!(help.contains(method.login.name()), "{} missing from:\n{help}", method.login.name());
        }
    }
    for flag in ["--method", "--device", "--qr", "--no-browser", "--project-id", "--start-url", "--region"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(help.contains("kimi") && help.contains("device*"), "{help}");
}
