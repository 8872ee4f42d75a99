//! `switchyard login <provider>` for the device and custom-scheme logins, from the real binary
//! against the loopback mocks of `switchyard-testkit` (served by this test's runtime): GitHub
//! Copilot, Qwen, xAI, Codex's device login, Kiro Builder ID / IAM Identity Center / Google. Each
//! run ends in the saved file (name, `type`, key fields, 0600) and the documented exit code; one
//! denial per device family exits 5 and saves nothing. Mocks announce 1 s poll intervals; every
//! wait is bounded and no sleep is an assertion.

mod support;

use serde_json::{Value, json};
use support::{Home, keys, location_after_login, open_in_browser};
use switchyard_testkit::github::{self, MockGithub};
use switchyard_testkit::kiro::{self, MockKiro, PROFILE_ARN, oidc_path};
use switchyard_testkit::openai::{self as openai_mock, DeviceAnswer, MockOpenAiAuth};
use switchyard_testkit::qwen::{self, MockQwen};
use switchyard_testkit::xai::{self, MockXai};

const CODEX_FILE: &str = "codex-e13f9773-codex-user@example.com-plus.json";

/// The lines of `out` the user reads for a device login: the page and the code.
fn assert_device_prompt(out: &str, uri: &str, user_code: &str) {
    assert!(out.lines().any(|l| l.trim() == uri), "the verification URI {uri} is printed on its own line:\n{out}");
    assert!(out.contains(&format!("confirm the code {user_code}")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_copilot_device_login_saves_the_users_file() {
    let mock = MockGithub::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["login", "github-copilot", "--no-browser"]);
    let user_code = login.user_code().await;
    assert!(user_code.starts_with("MOCK-"), "{user_code}");
    // The user enters the code on github.com and authorizes the app.
    mock.approve();
    let finished = login.finish().await;
    finished.assert_exit(0);
    // GitHub gives no complete URI: the plain one is shown, with the code beside it.
    assert_device_prompt(&finished.stdout, github::VERIFICATION_URI, &user_code);

    let file = home.saved(&finished, "github-copilot-octocat.json");
    assert_eq!(keys(&file), ["type", "username", "email", "name", "access_token", "token_type", "scope", "timestamp"]);
    assert_eq!(file["type"], "github-copilot");
    assert_eq!(file["username"], "octocat");
    assert_eq!(file["email"], "octocat@github.example");
    let token = file["access_token"].as_str().unwrap();
    assert!(token.starts_with(github::GITHUB_TOKEN_MARK), "{file}");
    assert_eq!(mock.exchanges(), 1, "the login checked the Copilot subscription");
    assert_eq!(home.auth_files(), ["github-copilot-octocat.json"]);
    assert!(!finished.shows(token) && !finished.shows("mock-gh-device-"), "no token or device code is printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_copilot_denied_exits_5_and_saves_nothing() {
    let mock = MockGithub::start().await;
    mock.script_polls(&[github::PollAnswer::Pending, github::PollAnswer::Deny]);
    let home = Home::new(&mock.upstream_urls_yaml());
    let finished = home.run(&["login", "github-copilot", "--no-browser"], "").await;
    finished.assert_exit(5);
    assert!(
        finished.stderr.contains("Login failed: Authentication failed: the user denied the device login"),
        "{finished}"
    );
    assert!(home.snapshot().is_empty(), "{:?}", home.auth_files());
    assert_eq!(mock.exchanges(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qwen_device_login_with_pkce_is_named_after_the_alias() {
    let mock = MockQwen::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["login", "qwen", "--alias", "A", "--no-browser"]);
    let user_code = login.user_code().await;
    mock.approve();
    let finished = login.finish().await;
    finished.assert_exit(0);
    let complete = format!("{}?user_code={user_code}&client=qwen-code", qwen::VERIFICATION_URI);
    assert_device_prompt(&finished.stdout, &complete, &user_code);

    let file = home.saved(&finished, "qwen-A.json");
    assert_eq!(
        keys(&file),
        ["type", "access_token", "refresh_token", "last_refresh", "resource_url", "email", "expired"]
    );
    assert_eq!(file["type"], "qwen");
    assert_eq!(file["email"], "A", "the alias labels the account");
    assert_eq!(file["resource_url"], qwen::DEFAULT_RESOURCE_URL);
    assert_eq!(file["access_token"].as_str(), mock.last_access_token().as_deref());
    // PKCE: the challenge went with the device request, its verifier with every poll.
    let start = mock.requests_to(qwen::DEVICE_CODE_PATH).pop().unwrap();
    assert_eq!(start.form_value("code_challenge_method").as_deref(), Some("S256"));
    let polls = mock.requests_to(qwen::TOKEN_PATH);
    assert!(!polls.is_empty() && polls.iter().all(|p| p.form_value("code_verifier").is_some()));
    assert!(!finished.shows(qwen::TOKEN_MARK), "no token, device code or verifier is printed:\n{finished}");
    assert_eq!(home.auth_files(), ["qwen-A.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qwen_denied_exits_5_and_a_bad_alias_is_a_usage_error() {
    let mock = MockQwen::start().await;
    mock.script_polls(&[qwen::PollAnswer::Deny]);
    let home = Home::new(&mock.upstream_urls_yaml());
    let denied = home.run(&["login", "qwen", "--alias", "A", "--no-browser"], "").await;
    denied.assert_exit(5);
    assert!(denied.stderr.contains("the user denied the device login"), "{denied}");

    let requests = mock.requests().len();
    let bad = home.run(&["login", "qwen", "--alias", "a/b", "--no-browser"], "").await;
    bad.assert_exit(2);
    assert!(bad.stderr.contains("alias may contain only letters, digits and @ . _ - +"), "{bad}");
    assert_eq!(mock.requests().len(), requests, "a bad alias fails before Qwen is asked");
    assert!(home.snapshot().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xai_device_login_discovers_the_endpoints_from_the_issuer() {
    let mock = MockXai::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["login", "xai", "--no-browser"]);
    let user_code = login.user_code().await;
    assert!(mock.approve(&user_code), "the mock issued the code the CLI shows");
    let finished = login.finish().await;
    finished.assert_exit(0);
    let complete = format!("{}?user_code={user_code}", mock.url(xai::VERIFY_PATH));
    assert_device_prompt(&finished.stdout, &complete, &user_code);
    assert!(finished.stdout.contains("The code expires in 10:00."), "{finished}");

    let file = home.saved(&finished, "xai-grok-user@example.com.json");
    assert_eq!(file["type"], "xai");
    assert_eq!(file["email"], "grok-user@example.com");
    assert_eq!(file["sub"], "mock-xai-subject-0001");
    assert_eq!(file["auth_kind"], "oauth");
    assert_eq!(file["token_endpoint"], mock.url(xai::TOKEN_PATH).as_str(), "the discovered token endpoint");
    for key in ["access_token", "refresh_token", "id_token", "expired", "last_refresh"] {
        assert!(file[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {file}");
    }
    assert!(mock.count(xai::DISCOVERY_PATH) >= 1, "the endpoints came from the discovery document");
    assert!(!finished.shows(xai::TOKEN_MARK), "no token or device code is printed:\n{finished}");
    assert_eq!(home.auth_files(), ["xai-grok-user@example.com.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xai_denied_exits_5_and_saves_nothing() {
    let mock = MockXai::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["login", "xai", "--no-browser"]);
    let user_code = login.user_code().await;
    assert!(mock.deny(&user_code));
    let finished = login.finish().await;
    finished.assert_exit(5);
    assert!(finished.stderr.contains("the user denied the device login"), "{finished}");
    assert!(home.snapshot().is_empty());
}

/// A Codex mock whose device codes ask for 1 s between polls, and a HOME aimed at it whose
/// browser-login listener takes any free port.
async fn codex() -> (MockOpenAiAuth, Home) {
    let mock = MockOpenAiAuth::start().await;
    mock.set_device_answer(DeviceAnswer { interval: json!("1"), ..DeviceAnswer::default() });
    let home = Home::new(&format!("{}oauth-callback-ports:\n  codex: 0\n", mock.upstream_urls_yaml()));
    (mock, home)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_device_login_saves_the_file_the_browser_login_saves() {
    let (mock, home) = codex().await;

    // The browser login first, for the name and shape to compare with.
    let mut login = home.spawn(&["login", "codex", "--no-browser"]);
    let (status, page) = open_in_browser(&login.url().await).await;
    assert_eq!(status, 200, "{page}");
    let finished = login.finish().await;
    finished.assert_exit(0);
    let by_browser = home.saved(&finished, CODEX_FILE);
    std::fs::remove_file(home.auth_dir().join(CODEX_FILE)).unwrap();

    let mut login = home.spawn(&["login", "codex", "--device", "--no-browser"]);
    let user_code = login.user_code().await;
    assert!(mock.approve_device(&user_code), "the mock issued the code the CLI shows");
    let finished = login.finish().await;
    finished.assert_exit(0);
    assert_device_prompt(&finished.stdout, "https://auth.openai.com/codex/device", &user_code);
    let by_device = home.saved(&finished, CODEX_FILE);
    assert_eq!(home.auth_files(), [CODEX_FILE], "the same name as the browser login's");
    assert_eq!(keys(&by_device), keys(&by_browser));
    for same in ["type", "email", "account_id", "disabled"] {
        assert_eq!(by_device[same], by_browser[same], "{same}");
    }
    assert_eq!(by_device["type"], "codex");
    assert_ne!(by_device["access_token"], by_browser["access_token"]);
    let exchange = mock.requests_to(openai_mock::TOKEN_PATH).pop().unwrap();
    assert_eq!(exchange.form_value("redirect_uri").as_deref(), Some(openai_mock::DEVICE_REDIRECT_URI));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_device_denied_exits_5_and_saves_nothing() {
    let (mock, home) = codex().await;
    let mut login = home.spawn(&["login", "codex", "--method", "device", "--no-browser"]);
    let user_code = login.user_code().await;
    assert!(mock.deny_device(&user_code));
    let finished = login.finish().await;
    finished.assert_exit(5);
    // The command's own message only: no log line repeats it.
    assert_eq!(
        finished.stderr, "Login failed: Authentication failed: the user denied the device login\n",
        "{finished}"
    );
    assert!(home.snapshot().is_empty());
    assert!(mock.requests_to(openai_mock::TOKEN_PATH).is_empty(), "no code was exchanged");
}

/// The JSON body of every request the Kiro mock got at `path`.
fn bodies(mock: &MockKiro, path: &str) -> Vec<Value> {
    mock.requests_to(path).iter().map(|r| r.json()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiro_builder_id_registers_a_client_and_saves_the_aws_file() {
    let mock = MockKiro::start().await;
    mock.set_jwt_email(Some("dev@example.com"));
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["login", "kiro", "--method", "builder-id", "--no-browser"]);
    let user_code = login.user_code().await;
    assert!(mock.approve(&user_code));
    let finished = login.finish().await;
    finished.assert_exit(0);
    let complete = format!("https://device.sso.us-east-1.amazonaws.com/?user_code={user_code}");
    assert_device_prompt(&finished.stdout, &complete, &user_code);

    let registered = bodies(&mock, &oidc_path("us-east-1", "client/register"));
    assert_eq!(registered.len(), 1, "one fresh client for the login");
    assert_eq!(registered[0]["clientType"], "public");
    let started = bodies(&mock, &oidc_path("us-east-1", "device_authorization"));
    assert_eq!(started[0]["startUrl"], "https://view.awsapps.com/start");

    let file = home.saved(&finished, "kiro-aws-dev@example.com.json");
    for (key, value) in [
        ("type", "kiro"),
        ("auth_method", "builder-id"),
        ("provider", "AWS"),
        ("region", "us-east-1"),
        ("email", "dev@example.com"),
    ] {
        assert_eq!(file[key], value, "{key}: {file}");
    }
    for key in ["access_token", "refresh_token", "expires_at", "client_id", "client_secret", "last_refresh"] {
        assert!(file[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {file}");
    }
    assert!(file.get("start_url").is_none(), "Builder ID files carry no start URL: {file}");
    assert!(!finished.shows(kiro::TOKEN_MARK), "no token, client secret or device code is printed:\n{finished}");
    assert_eq!(home.auth_files(), ["kiro-aws-dev@example.com.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiro_identity_center_login_uses_the_start_url_and_region() {
    let mock = MockKiro::start().await;
    mock.set_jwt_email(Some("jane@acme.example"));
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&[
        "login",
        "kiro",
        "--method",
        "idc",
        "--start-url",
        "https://acme.awsapps.com/start",
        "--region",
        "eu-west-1",
        "--no-browser",
    ]);
    let user_code = login.user_code().await;
    assert!(mock.approve(&user_code));
    let finished = login.finish().await;
    finished.assert_exit(0);
    let complete = format!("https://device.sso.eu-west-1.amazonaws.com/?user_code={user_code}");
    assert_device_prompt(&finished.stdout, &complete, &user_code);

    // Everything happened at the region's SSO-OIDC, nothing at us-east-1.
    assert_eq!(mock.count(&oidc_path("eu-west-1", "client/register")), 1);
    assert_eq!(
        bodies(&mock, &oidc_path("eu-west-1", "device_authorization"))[0]["startUrl"],
        "https://acme.awsapps.com/start"
    );
    assert!(mock.count(&oidc_path("eu-west-1", "token")) >= 1);
    assert!(mock.requests().iter().all(|r| !r.path.contains("us-east-1")), "{:?}", mock.requests());

    let file = home.saved(&finished, "kiro-idc-jane@acme.example.json");
    for (key, value) in [
        ("type", "kiro"),
        ("auth_method", "idc"),
        ("provider", "AWS"),
        ("region", "eu-west-1"),
        ("start_url", "https://acme.awsapps.com/start"),
        ("email", "jane@acme.example"),
    ] {
        assert_eq!(file[key], value, "{key}: {file}");
    }
    for key in ["access_token", "refresh_token", "client_id", "client_secret"] {
        assert!(file[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {file}");
    }

    // Without --start-url the method is a usage error naming the flag; nothing reaches AWS.
    let requests = mock.requests().len();
    let missing = home.run(&["login", "kiro", "--method", "idc", "--no-browser"], "").await;
    missing.assert_exit(2);
    assert!(missing.stderr.contains("`kiro --method idc` needs --start-url"), "{missing}");
    assert_eq!(mock.requests().len(), requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiro_denied_exits_5_and_saves_nothing() {
    let mock = MockKiro::start().await;
    mock.script_polls(&[kiro::PollAnswer::Pending, kiro::PollAnswer::Deny]);
    let home = Home::new(&mock.upstream_urls_yaml());
    let finished = home.run(&["login", "kiro", "--method", "aws", "--no-browser"], "").await;
    finished.assert_exit(5);
    assert!(
        finished.stderr.contains("Login failed: Authentication failed: the user denied the device login"),
        "{finished}"
    );
    assert!(home.snapshot().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiro_google_login_is_finished_by_pasting_the_kiro_url() {
    let mock = MockKiro::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());
    let mut login = home.spawn(&["login", "kiro", "--method", "google", "--no-browser"]);
    let url = login.url().await;
    assert!(url.starts_with(&mock.url("/social/login?idp=Google&redirect_uri=kiro%3A%2F%2F")), "{url}");
    // No listener can take kiro://: the CLI says to paste the final URL.
    let says = login.line_starting("This login ends on a page of the provider's app").await;
    assert!(says.contains(&format!("({})", kiro::REDIRECT_URI)), "{says}");
    login.line_containing("paste it here and press Enter").await;

    let pasted = location_after_login(&url).await;
    assert!(pasted.starts_with("kiro://kiro.kiroAgent/authenticate-success?code="), "{pasted}");
    let state = support::param(&url, "state").unwrap();
    // A URL of another login first: refused, and the CLI keeps waiting for the right one.
    login.type_line(&pasted.replace(&state, "0123456789abcdef0123456789abcdef")).await;
    login.type_line(&pasted).await;
    let finished = login.finish().await;
    finished.assert_exit(0);
    assert!(
        finished.stderr.contains("That URL was not accepted: it belongs to another login (its state does not match)"),
        "{finished}"
    );

    let file = home.saved(&finished, "kiro-google-MOCKPROFILE01.json");
    for (key, value) in
        [("type", "kiro"), ("auth_method", "social"), ("provider", "Google"), ("profile_arn", PROFILE_ARN)]
    {
        assert_eq!(file[key], value, "{key}: {file}");
    }
    for key in ["access_token", "refresh_token", "expires_at", "last_refresh"] {
        assert!(file[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {file}");
    }
    assert!(file.get("client_secret").is_none(), "{file}");
    assert_eq!(mock.count("/social/oauth/token"), 1, "one exchange, for the right URL's code");
    let code = support::param(&pasted.replacen("kiro://", "http://", 1), "code").unwrap();
    assert!(!finished.shows(&code) && !finished.shows(kiro::TOKEN_MARK), "no code or token is printed");
    assert_eq!(home.auth_files(), ["kiro-google-MOCKPROFILE01.json"]);
}
