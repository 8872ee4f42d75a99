//! `switchyard login <provider>`: the real binary, as a user runs it in a terminal, against
//! loopback mocks of the authorization servers (served by this test's runtime). HOME, config and
//! auth dir live in a temp dir. Waits are bounded; no sleep is an assertion.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use switchyard_testkit::claude::{self as claude_mock, MockClaudeAuth};
use switchyard_testkit::google::MockGoogle;
use switchyard_testkit::openai::{self as openai_mock, MockOpenAiAuth};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Bound on every wait for the child: a broken build fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(30);
const CLAUDE_FILE: &str = "claude-claude-user@example.com.json";

/// A temp HOME with a config pointing the providers at a mock and the auth dir inside it.
struct Home {
    dir: TempDir,
    config: PathBuf,
}

impl Home {
    fn new(upstream_yaml: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        let yaml = format!("port: 8317\nauth-dir: {}\n{upstream_yaml}", dir.path().join("auths").display());
        std::fs::write(&config, yaml).unwrap();
        Home { dir, config }
    }

    fn auth_dir(&self) -> PathBuf {
        self.dir.path().join("auths")
    }

    /// The `.json` files in the auth dir.
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
            .arg("login")
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("MANAGEMENT_PASSWORD")
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        command
    }

    /// Starts `switchyard login <args>` with piped stdio.
    fn spawn(&self, args: &[&str]) -> Login {
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Login { child, stdout, seen: String::new() }
    }

    /// Runs `switchyard login <args>` to completion without input.
    async fn run(&self, args: &[&str]) -> Finished {
        let mut login = self.spawn(args);
        drop(login.child.stdin.take());
        login.finish().await
    }
}

/// A running `switchyard login`; killed when dropped.
struct Login {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Stdout read so far.
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

impl Login {
    /// Reads stdout up to the authorize URL the user is told to open.
    async fn url(&mut self) -> String {
        let read = async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                self.seen.push_str(&line);
                self.seen.push('\n');
                if line.starts_with("http://") || line.starts_with("https://") {
                    return Some(line);
                }
            }
            None
        };
        let line = tokio::time::timeout(DEADLINE, read).await.expect("no URL printed in time");
        match line {
            Some(url) => url,
            None => {
                let finished = self.finish().await;
                panic!("exited ({}) before printing a URL: {}{}", finished.status, finished.stdout, finished.stderr)
            }
        }
    }

    /// Types `text` and Enter into the terminal.
    async fn type_line(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{text}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Waits (bounded) for the process to exit; returns all of its output.
    async fn finish(&mut self) -> Finished {
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("switchyard login did not exit in time")
            .unwrap();
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

fn param(url: &str, key: &str) -> Option<String> {
    reqwest::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A browser on this machine: follows the authorize redirect to the CLI's listener.
async fn open_in_browser(url: &str) -> String {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let page = client.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

/// A browser on another machine: stops at the redirect; the user copies the address bar.
async fn location_after_login(url: &str) -> String {
    let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Asserts the "Credential saved to <path>" line and that the file is there with mode 0600.
fn assert_saved(home: &Home, finished: &Finished, name: &str) -> serde_json::Value {
    let path = home.auth_dir().join(name);
    let line = format!("Credential saved to {}", path.display());
    assert!(finished.stdout.contains(&line), "stdout lacks {line:?}:\n{}\n{}", finished.stdout, finished.stderr);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn assert_exit(finished: &Finished, code: i32) {
    assert_eq!(
        finished.code(),
        Some(code),
        "expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
        finished.status,
        finished.stdout,
        finished.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_login_through_the_local_listener_saves_the_credential() {
    let mock = MockClaudeAuth::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());
    let port = free_port();
    let mut login = home.spawn(&["anthropic", "--no-browser", "--callback-port", &port.to_string()]);

    let url = login.url().await;
    assert!(url.starts_with(&mock.url(claude_mock::AUTHORIZE_PATH)), "{url}");
    assert_eq!(param(&url, "redirect_uri"), Some(format!("http://localhost:{port}/callback")));
    assert!(login.seen.contains("Open this URL"), "{}", login.seen);
    let page = open_in_browser(&url).await;
    assert!(page.contains("Authentication successful!"), "{page}");

    let finished = login.finish().await;
    assert_exit(&finished, 0);
    assert!(
        finished.stdout.contains(&format!("ssh -L {port}:127.0.0.1:{port}")),
        "--no-browser prints the tunnel hint"
    );
    let file = assert_saved(&home, &finished, CLAUDE_FILE);
    assert_eq!(file["type"], "claude");
    assert_eq!(file["email"], "claude-user@example.com");
    assert!(file["access_token"].as_str().unwrap().starts_with("mock-claude-at-"), "{file}");
    assert_eq!(home.auth_files(), [CLAUDE_FILE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_logs_in_through_the_global_proxy() {
    use switchyard_testkit::proxy::{MockProxy, Via};
    let mock = MockClaudeAuth::start().await;
    let proxy = MockProxy::http(Some(("cli", "pw"))).await;
    let home =
        Home::new(&format!("{}proxy-url: {}\n", mock.upstream_urls_yaml(), proxy.url_as("http", Some(("cli", "pw")))));
    let port = free_port();
    let mut login = home.spawn(&["anthropic", "--no-browser", "--callback-port", &port.to_string()]);
    let url = login.url().await;
    // The browser is the user's, not Switchyard's: it goes direct.
    let page = open_in_browser(&url).await;
    assert!(page.contains("Authentication successful!"), "{page}");
    let finished = login.finish().await;
    assert_exit(&finished, 0);
    assert_saved(&home, &finished, CLAUDE_FILE);

    let token_url = mock.url(claude_mock::TOKEN_PATH);
    let seen = proxy.seen();
    assert!(
        seen.iter().any(|r| matches!(&r.via, Via::Forward { method, uri } if method == "POST" && uri == &token_url)),
        "the token exchange went through the proxy: {seen:?}"
    );
    assert!(seen.iter().all(|r| r.accepted && r.credentials == Some(("cli".into(), "pw".into()))), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_login_by_pasting_the_callback_url() {
    let mock = MockOpenAiAuth::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["codex", "--no-browser", "--callback-port", "0"]);

    let url = login.url().await;
    let location = location_after_login(&url).await;
    // Something that is not the callback first: the CLI says so and keeps waiting.
    login.type_line("not a callback").await;
    login.type_line(&location).await;

    let finished = login.finish().await;
    assert_exit(&finished, 0);
    assert!(finished.stderr.contains("does not look like the callback URL"), "{}", finished.stderr);
    let name = home.auth_files().pop().expect("a credential was saved");
    assert!(name.starts_with("codex-") && name.ends_with("-codex-user@example.com-plus.json"), "{name}");
    let file = assert_saved(&home, &finished, &name);
    assert_eq!(file["account_id"], "mock-chatgpt-account-0001");
    assert_eq!(mock.requests_to(openai_mock::TOKEN_PATH).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_logins_work_from_the_cli_too() {
    let mock = MockGoogle::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());

    let mut login = home.spawn(&["gemini-cli", "--no-browser", "--callback-port", "0", "--project-id", "my-project"]);
    let page = open_in_browser(&login.url().await).await;
    assert!(page.contains("Authentication successful!"), "{page}");
    let finished = login.finish().await;
    assert_exit(&finished, 0);
    let file = assert_saved(&home, &finished, "gemini-jane.doe@example.com-my-project.json");
    assert_eq!(file["project_id"], "my-project");

    let mut login = home.spawn(&["antigravity", "--no-browser", "--callback-port", "0"]);
    let location = location_after_login(&login.url().await).await;
    login.type_line(&location).await;
    let finished = login.finish().await;
    assert_exit(&finished, 0);
    let file = assert_saved(&home, &finished, "antigravity-jane.doe@example.com.json");
    assert_eq!(file["project_id"], "mock-managed-project");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_answering_times_out_with_exit_4() {
    let mock = MockClaudeAuth::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["anthropic", "--no-browser", "--callback-port", "0", "--timeout", "1"]);
    login.url().await;

    let finished = login.finish().await;
    assert_exit(&finished, 4);
    assert!(finished.stderr.contains("Timeout waiting for OAuth callback"), "{}", finished.stderr);
    assert!(home.auth_files().is_empty());
    assert!(mock.requests_to(claude_mock::TOKEN_PATH).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_provider_is_a_usage_error_listing_the_names() {
    let home = Home::new("");
    let finished = home.run(&["nope"]).await;
    assert_exit(&finished, 2);
    assert!(finished.stderr.contains("unknown provider `nope`"), "{}", finished.stderr);
    for name in ["anthropic", "codex", "gemini-cli", "antigravity"] {
        assert!(finished.stderr.contains(name), "available names lack {name}: {}", finished.stderr);
    }
    assert!(home.auth_files().is_empty());

    // Clap's own usage errors are exit 2 as well.
    let finished = home.run(&["anthropic", "--callback-port", "not-a-port"]).await;
    assert_exit(&finished, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_callback_port_is_a_provider_error_with_exit_3() {
    let mock = MockClaudeAuth::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();

    let finished = home.run(&["anthropic", "--no-browser", "--callback-port", &port.to_string()]).await;
    assert_exit(&finished, 3);
    assert!(finished.stderr.contains(&format!("callback port {port} is already in use")), "{}", finished.stderr);
    assert!(finished.stderr.contains("--callback-port"), "the error says how to get around it: {}", finished.stderr);
    assert!(!finished.stdout.contains("http"), "no URL is offered when the login cannot work: {}", finished.stdout);
    assert!(home.auth_files().is_empty());
    drop(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_denied_exits_5_and_writes_nothing() {
    let mock = MockClaudeAuth::start().await;
    mock.set_fault(claude_mock::Fault::DenyConsent);
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["anthropic", "--no-browser", "--callback-port", "0"]);

    let page = open_in_browser(&login.url().await).await;
    assert!(page.contains("access_denied"), "{page}");
    let finished = login.finish().await;
    assert_exit(&finished, 5);
    assert!(finished.stderr.contains("access_denied"), "{}", finished.stderr);
    assert!(home.auth_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_token_exchange_exits_3_and_keeps_the_existing_file() {
    let mock = MockClaudeAuth::start().await;
    mock.set_fault(claude_mock::Fault::TokenServerError);
    let home = Home::new(&mock.upstream_urls_yaml());
    std::fs::create_dir_all(home.auth_dir()).unwrap();
    let existing = b"{\"type\": \"claude\", \"email\": \"claude-user@example.com\", \"access_token\": \"old\"}\n";
    std::fs::write(home.auth_dir().join(CLAUDE_FILE), existing).unwrap();
    let mut login = home.spawn(&["anthropic", "--no-browser", "--callback-port", "0"]);

    let location = location_after_login(&login.url().await).await;
    login.type_line(&location).await;
    let finished = login.finish().await;
    assert_exit(&finished, 3);
    assert!(finished.stderr.contains("Failed to exchange authorization code for tokens"), "{}", finished.stderr);
    let code = param(&location, "code").unwrap();
    assert!(!finished.stderr.contains(&code) && !finished.stdout.contains(&code), "the code must not be printed");
    assert_eq!(std::fs::read(home.auth_dir().join(CLAUDE_FILE)).unwrap(), existing, "the old credential is intact");
    assert_eq!(home.auth_files(), [CLAUDE_FILE]);
}

/// Masking goes by value: a short code the token endpoint echoes back is no token-shaped word,
/// yet it never reaches the terminal, and neither does the PKCE verifier the server echoes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_short_code_and_verifier_are_never_printed() {
    let mock = MockClaudeAuth::start().await;
    mock.set_fault(claude_mock::Fault::EchoRejectedGrant);
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["anthropic", "--no-browser", "--callback-port", "0"]);

    let location = location_after_login(&login.url().await).await;
    let issued = param(&location, "code").unwrap();
    let short = "k3Q9x";
    login.type_line(&location.replace(&issued, short)).await;
    let finished = login.finish().await;
    assert_exit(&finished, 3);
    let printed = format!("{}{}", finished.stdout, finished.stderr);
    assert!(printed.contains("invalid_grant") && printed.contains("Invalid code"), "{printed}");
    assert!(!printed.contains(short), "the short code was printed:\n{printed}");
    let sent = mock.requests_to(claude_mock::TOKEN_PATH);
    let body: serde_json::Value = serde_json::from_slice(&sent.last().expect("a token request").body).unwrap();
    let verifier = body["code_verifier"].as_str().unwrap();
    assert_eq!(body["code"], short, "the pasted code went to the token endpoint");
    assert!(!printed.contains(verifier), "the verifier was printed:\n{printed}");
    assert!(home.auth_files().is_empty());
}

#[test]
fn login_help_documents_flags_and_exit_codes() {
    let output = std::process::Command::new(BIN).args(["login", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--no-browser",
        "--callback-port",
        "--timeout",
        "--project-id",
        "Exit codes",
        "0 saved",
        "2 usage",
        "3 provider error",
        "4 timed out",
        "5 cancelled or consent denied",
        "paste",
    ] {
        assert!(help.contains(needle), "`login --help` lacks {needle:?}:\n{help}");
    }
}
